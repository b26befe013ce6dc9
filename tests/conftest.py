"""Shared fixtures: every test gets its own run store, so tests never touch ./runs or each other."""
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
