"""Shared fixtures: every test gets its own run store, so tests never touch ./runs or each other."""
import os
import signal
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
NBS = ROOT / "nbs"
APPS = ROOT / "apps"
ARTIFACTS = ROOT / "test-artifacts"


@pytest.fixture
def runs_root(tmp_path, monkeypatch):
    root = tmp_path / "runs"
    monkeypatch.setenv("WORKBENCH_RUNS", str(root))
    return root


def default_sigint():
    "`preexec_fn` for children that must stop on Ctrl-C: a suite started as a background job (`./dev test &`) passes "
    "SIGINT on ignored, and a Python started with SIGINT ignored never raises KeyboardInterrupt."
    signal.signal(signal.SIGINT, signal.SIG_DFL)


def run_python(code: str, tmp_path, **env) -> str:
    "Run `code` in a fresh interpreter with TRITON_INTERPRET unset unless given in `env`; fail with its stderr."
    base = {k: v for k, v in os.environ.items() if k != "TRITON_INTERPRET"}
    base["TRITON_CACHE_DIR"] = str(tmp_path / "triton-cache")  # compile for real, not from an earlier run's cache
    out = subprocess.run([sys.executable, "-c", textwrap.dedent(code)], env={**base, **env}, capture_output=True,
                         text=True, timeout=300)
    assert out.returncode == 0, out.stderr[-4000:]
    return out.stdout


SM90_PRELUDE = """
import torch
import triton
from triton.backends.compiler import GPUTarget
from triton.compiler import ASTSource

TYPES = {torch.float16: "fp16", torch.bfloat16: "bf16", torch.float32: "fp32", torch.float64: "fp64"}


class Recorder:
    "Stands in for a kernel: `kernel[grid](*args, **constexprs)` records the call instead of launching."
    def __init__(self, kernel):
        self.kernel, self.calls = kernel, []

    def __getitem__(self, grid):
        return lambda *args, **constexprs: self.calls.append((args, constexprs))


def record(module, names):
    "Replace the kernels `names` of `module` by recorders; returns them by name."
    recorders = {name: Recorder(getattr(module, name)) for name in names}
    for name, rec in recorders.items():
        setattr(module, name, rec)
    return recorders


def build(kernel, args, constexprs):
    "PTX for sm_90, specialised as a launch with `args` is: None and ints equal to 1 become constants, multiples of 16 and (16-byte aligned) pointers are marked divisible by 16."
    sig, attrs, constexprs = {}, {}, dict(constexprs)
    for n, (name, arg) in enumerate(zip(kernel.arg_names, args)):
        if isinstance(arg, torch.Tensor):
            sig[name], attrs[(n,)] = "*" + TYPES[arg.dtype], [["tt.divisibility", 16]]
        elif arg is None or arg == 1:
            sig[name], constexprs[name] = "constexpr", arg
        else:
            sig[name] = "i32"
            if arg % 16 == 0:
                attrs[(n,)] = [["tt.divisibility", 16]]
    sig.update({name: "constexpr" for name in kernel.arg_names[len(args):]})
    src = ASTSource(kernel, sig, constexprs, attrs)
    return triton.compile(src, target=GPUTarget("cuda", 90, 32), options={"num_warps": 4}).asm["ptx"]
"""


def sm90_program(body: str) -> str:
    "A program that defines `record` and `build` (ahead-of-time sm_90 compilation of recorded launches), then `body`."
    return SM90_PRELUDE + textwrap.dedent(body)
