"""Shared fixtures: every test gets its own run store, so tests never touch ./runs or each other."""
import os
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


def run_python(code: str, tmp_path, **env) -> str:
    "Run `code` in a fresh interpreter with TRITON_INTERPRET unset unless given in `env`; fail with its stderr."
    base = {k: v for k, v in os.environ.items() if k != "TRITON_INTERPRET"}
    base["TRITON_CACHE_DIR"] = str(tmp_path / "triton-cache")  # compile for real, not from an earlier run's cache
    out = subprocess.run([sys.executable, "-c", textwrap.dedent(code)], env={**base, **env}, capture_output=True,
                         text=True, timeout=300)
    assert out.returncode == 0, out.stderr[-4000:]
    return out.stdout
