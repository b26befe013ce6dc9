"""Tests of workbench.kernels.na2d_triton.

`@triton.jit` reads TRITON_INTERPRET when the kernels are defined, i.e. when the module is first imported, and pytest
imports many test files into one process; so every check runs in a fresh Python with the environment it needs."""
import pytest

from conftest import run_python, sm90_program


def test_kernels_match_the_reference_in_the_interpreter(tmp_path):
    code = """
    import torch
    from workbench.kernels.na2d import na2d_av_reference
    from workbench.kernels.na2d_triton import na2d_av_triton, triton_available

    assert triton_available("cpu")
    g = torch.Generator().manual_seed(0)
    # non-square maps, K == H == W, c not a power of two, several pixel blocks per (b, g)
    for B, G, H, W, c, k in [(1, 2, 5, 6, 3, 3), (2, 1, 7, 7, 4, 5), (1, 1, 5, 5, 2, 5), (1, 2, 9, 8, 16, 7),
                             (1, 1, 20, 13, 5, 3)]:
        a = torch.randn(B, G, H, W, k * k, generator=g, dtype=torch.float64).softmax(-1)
        v = torch.randn(B, G, H, W, c, generator=g, dtype=torch.float64)
        go = torch.randn(B, G, H, W, c, generator=g, dtype=torch.float64)
        a32, v32 = a.float().requires_grad_(), v.float().requires_grad_()
        out = na2d_av_triton(a32, v32, k)
        out.backward(go.float())
        a.requires_grad_(), v.requires_grad_()
        ref = na2d_av_reference(a, v, k)
        ref.backward(go)
        for got, want in [(out, ref), (a32.grad, a.grad), (v32.grad, v.grad)]:
            torch.testing.assert_close(got, want.float(), rtol=0, atol=1e-5)
    print("ok")
    """
    assert run_python(code, tmp_path, TRITON_INTERPRET="1").strip() == "ok"


def test_gradcheck_in_float64_in_the_interpreter(tmp_path):
    "Both gradients of the autograd Function against finite differences, in float64 (which the kernels support)."
    # A full Jacobian costs ~30 s in the interpreter even at 3x4 pixels: `fast_mode` checks random projections of it.
    # Non-square maps, two groups, two pixel blocks (12x11), K = H; tolerances far below gradcheck's defaults.
    code = """
    import torch
    from workbench.kernels.na2d_triton import NA2DAVTriton

    torch.manual_seed(0)  # fast_mode's random projections
    g = torch.Generator().manual_seed(0)
    for B, G, H, W, c, k in [(1, 2, 5, 4, 2, 3), (1, 1, 12, 11, 2, 3), (1, 1, 5, 6, 2, 5)]:
        a = torch.randn(B, G, H, W, k * k, generator=g, dtype=torch.float64).softmax(-1).requires_grad_()
        v = torch.randn(B, G, H, W, c, generator=g, dtype=torch.float64, requires_grad=True)
        assert torch.autograd.gradcheck(lambda a, v: NA2DAVTriton.apply(a, v, k), (a, v), fast_mode=True,
                                        atol=1e-8, rtol=1e-6)
    print("ok")
    """
    assert run_python(code, tmp_path, TRITON_INTERPRET="1").strip() == "ok"


def test_cpu_tensors_without_the_interpreter_are_refused(tmp_path):
    code = """
    import torch
    from workbench.kernels.na2d_triton import na2d_av_triton, triton_available

    assert not triton_available("cpu")
    try:
        na2d_av_triton(torch.rand(1, 1, 5, 5, 9), torch.rand(1, 1, 5, 5, 2), 3)
    except RuntimeError as e:
        assert "CUDA tensors (got cpu tensors)" in str(e) and "TRITON_INTERPRET=1" in str(e), e
    else:
        raise AssertionError("no error")
    print("ok")
    """
    assert run_python(code, tmp_path).strip() == "ok"


def test_the_module_imports_without_triton(tmp_path):
    code = """
    import sys
    sys.modules["triton"] = None  # as on CPU-only PyTorch wheels: `import triton` raises ImportError
    import torch
    from workbench.kernels.na2d_triton import na2d_av_triton, triton_available

    assert not triton_available("cuda") and not triton_available("cpu")
    try:
        na2d_av_triton(torch.rand(1, 1, 5, 5, 9), torch.rand(1, 1, 5, 5, 2), 3)
    except RuntimeError as e:
        assert "Triton, which is not installed" in str(e), e
    else:
        raise AssertionError("no error")
    print("ok")
    """
    assert run_python(code, tmp_path, TRITON_INTERPRET="1").strip() == "ok"


def test_kernels_compile_for_sm90(tmp_path):
    "The interpreter never compiles; build every kernel for an H100 ahead of time (no GPU needed), as the launchers call it."
    pytest.importorskip("triton")
    code = sm90_program("""
    import workbench.kernels.na2d_triton as m

    recorders = record(m, ["_na2d_av_fwd_kernel", "_na2d_av_bwd_attn_kernel", "_na2d_av_bwd_value_kernel"])
    for dtype, (c, k) in [(torch.float16, (16, 13)), (torch.float16, (14, 7)), (torch.bfloat16, (16, 7)),
                          (torch.float32, (128, 3)), (torch.float64, (16, 5))]:
        attn, value = torch.rand(2, 4, 28, 28, k * k, dtype=dtype), torch.rand(2, 4, 28, 28, c, dtype=dtype)
        m._forward(attn, value, k), m._backward_attn(value, value, k), m._backward_value(value, attn, k)
    for name, rec in recorders.items():
        for args, constexprs in rec.calls:
            ptx = build(rec.kernel, args, constexprs)
            if args[1].dtype == torch.float16 and args[6] == 16:  # 32-byte channel rows: 128-bit vector loads
                assert "ld.global.v4" in ptx, name
    print(sum(len(rec.calls) for rec in recorders.values()))
    """)
    assert run_python(code, tmp_path).strip() == "15"
