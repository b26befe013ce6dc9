"""Tests of workbench.kernels.selective_scan_triton.

`@triton.jit` reads TRITON_INTERPRET when the kernels are defined, i.e. when the module is first imported, and pytest
imports many test files into one process; so every check runs in a fresh Python with the environment it needs."""
import pytest

from conftest import run_python, sm90_program


def test_kernels_match_the_reference_in_the_interpreter(tmp_path):
    code = """
    import torch
    from workbench.kernels.selective_scan import selective_scan, selective_scan_reference
    from workbench.kernels.selective_scan_triton import triton_available

    assert triton_available("cpu")
    g = torch.Generator().manual_seed(0)
    # E over two blocks and not a power of two, N not a power of two, L over two chunks with a short last one
    for Bt, E, N, L, with_D, with_bias, softplus in [(2, 40, 3, 20, True, True, True), (1, 5, 4, 3, False, False, False)]:
        r = lambda *s: torch.randn(*s, generator=g, dtype=torch.float64)
        inputs = [r(Bt, E, L), torch.rand(Bt, E, L, generator=g, dtype=torch.float64), -torch.exp(r(E, N)),
                  r(Bt, N, L), r(Bt, N, L), r(E) if with_D else None, r(E).abs() if with_bias else None]
        grad_y = r(Bt, E, L)
        results = []
        for impl, dtype in [("triton", torch.float32), ("reference", torch.float64)]:
            leaves = [t if t is None else t.to(dtype).requires_grad_() for t in inputs]
            y = selective_scan(*leaves, delta_softplus=softplus, impl=impl)
            y.backward(grad_y.to(dtype))
            results.append([y] + [t.grad for t in leaves if t is not None])
        for got, want in zip(*results):
            torch.testing.assert_close(got, want.float(), rtol=1e-5, atol=1e-5)
    print("ok")
    """
    assert run_python(code, tmp_path, TRITON_INTERPRET="1").strip() == "ok"


def test_gradcheck_in_float64_in_the_interpreter(tmp_path):
    "All seven gradients of the autograd Function against finite differences, in float64 (which the kernels support)."
    # Two chunks, softplus, D and δ_bias. A full Jacobian costs ~25 s in the interpreter even at L = 5: `fast_mode`
    # checks random projections of it; tolerances far below gradcheck's defaults.
    code = """
    import torch
    from workbench.kernels.selective_scan_triton import CHUNK, SelectiveScanTriton

    torch.manual_seed(0)  # fast_mode's random projections
    g = torch.Generator().manual_seed(0)
    r = lambda *s: torch.randn(*s, generator=g, dtype=torch.float64)
    Bt, E, N, L = 1, 2, 2, CHUNK + 1
    inputs = [r(Bt, E, L), torch.rand(Bt, E, L, generator=g, dtype=torch.float64), -torch.exp(r(E, N)),
              r(Bt, N, L), r(Bt, N, L), r(E), r(E).abs()]
    inputs = [t.requires_grad_() for t in inputs]
    assert torch.autograd.gradcheck(lambda *a: SelectiveScanTriton.apply(*a, True), inputs, fast_mode=True,
                                    atol=1e-8, rtol=1e-6)
    print("ok")
    """
    assert run_python(code, tmp_path, TRITON_INTERPRET="1").strip() == "ok"


def test_cpu_tensors_without_the_interpreter_are_refused(tmp_path):
    code = """
    import torch
    from workbench.kernels.selective_scan import selective_scan
    from workbench.kernels.selective_scan_triton import triton_available

    assert not triton_available("cpu")
    u, A, B = torch.rand(1, 2, 3), -torch.rand(2, 4), torch.rand(1, 4, 3)
    try:
        selective_scan(u, u, A, B, B, impl="triton")
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
    from workbench.kernels.selective_scan_triton import selective_scan_triton, triton_available

    assert not triton_available("cuda") and not triton_available("cpu")
    u, A, B = torch.rand(1, 2, 3), -torch.rand(2, 4), torch.rand(1, 4, 3)
    try:
        selective_scan_triton(u, u, A, B, B)
    except RuntimeError as e:
        assert "Triton, which is not installed" in str(e), e
    else:
        raise AssertionError("no error")
    print("ok")
    """
    assert run_python(code, tmp_path, TRITON_INTERPRET="1").strip() == "ok"


def test_kernels_compile_for_sm90(tmp_path):
    "The interpreter never compiles; build both kernels for an H100 ahead of time (no GPU needed), as the launchers call them."
    pytest.importorskip("triton")
    code = sm90_program("""
    import workbench.kernels.selective_scan_triton as m

    recorders = record(m, ["_scan_fwd_kernel", "_scan_bwd_kernel"])
    # VCMamba-S shapes in every input dtype; without D and δ_bias and softplus once; N = 12 (masked states) once
    for dtype, (E, N, L, extras) in [(torch.float16, (576, 16, 49, True)), (torch.bfloat16, (576, 16, 196, True)),
                                     (torch.float32, (1024, 16, 49, True)), (torch.float32, (100, 12, 7, False)),
                                     (torch.float64, (64, 16, 49, True))]:
        acc = torch.float64 if dtype == torch.float64 else torch.float32
        u = torch.rand(2, E, L, dtype=dtype)
        A, B = -torch.rand(E, N, dtype=acc), torch.rand(2, N, L, dtype=acc)
        D, bias = (torch.rand(E, dtype=acc), torch.rand(E, dtype=acc)) if extras else (None, None)
        m._forward(u, u, A, B, B, D, bias, extras)
        starts = torch.zeros(2, -(-L // m.CHUNK), E, N, dtype=acc)
        m._backward(u, starts, u, u, A, B, B, D, bias, extras)
    for name, rec in recorders.items():
        for args, constexprs in rec.calls:
            build(rec.kernel, args, constexprs)
    print(sum(len(rec.calls) for rec in recorders.values()))
    """)
    assert run_python(code, tmp_path).strip() == "10"
