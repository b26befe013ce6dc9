"""The run store under real processes: concurrent writers, training killed by SIGINT, SIGTERM and SIGKILL, attach."""
import signal
import sqlite3
import subprocess
import sys
import time

import pytest

from conftest import default_sigint
from workbench.runs import RunStore, RunStoreError

# One child program for every test; argv: mode, root, [extra]. Modes:
#   train  - log loss = 1/(step+1) for ever, printing each step after logging it (flush every 100 rows only)
#   writer - print "ready", wait for the file root/go, then write 2,000 steps x 5 metrics (flush every 50 rows)
#   attach - attach to run <extra> with open_run and log 500 steps
CHILD = r"""
import itertools, sys, time
from pathlib import Path
from workbench.runs import RunStore, open_run

mode, root = sys.argv[1], sys.argv[2]
if mode == "train":
    run = RunStore(root).create_run("train", {"lr": 0.1})
    run.flush_rows, run.flush_seconds = 100, 3600
    print("run", run.id, flush=True)
    with run:
        for step in itertools.count():
            run.log(step, loss=1 / (step + 1))
            print(step, flush=True)
            time.sleep(0.002)
elif mode == "writer":
    print("ready", flush=True)
    while not (Path(root) / "go").exists():
        time.sleep(0.01)
    with RunStore(root).create_run("concurrent", {"writer": int(sys.argv[3])}) as run:
        run.flush_rows = 50
        for step in range(2000):
            run.log(step, **{f"m{k}": step * 10 + k for k in range(5)})
            time.sleep(0.001)
elif mode == "attach":
    with open_run("attached", {"lr": 0.2, "extra": 1}, seed=5, run_id=sys.argv[3], root=root) as run:
        for step in range(500):
            run.log(step, loss=float(step))
"""


def child(mode, root, *extra):
    return subprocess.Popen([sys.executable, "-c", CHILD, mode, str(root), *map(str, extra)],
                            stdout=subprocess.PIPE, text=True, preexec_fn=default_sigint)


def test_concurrent_writers_lose_no_rows(tmp_path):
    writers = [child("writer", tmp_path, i) for i in range(4)]
    for proc in writers:  # all imported: start them together, on a store none has created yet
        assert proc.stdout.readline().strip() == "ready"
    (tmp_path / "go").touch()
    for proc in writers:
        proc.communicate(timeout=60)
        assert proc.returncode == 0
    store = RunStore(tmp_path)
    runs = store.runs(experiment="concurrent")
    assert sorted(runs["param.writer"]) == [0, 1, 2, 3]
    assert set(runs.status) == {"finished"}
    assert runs.started_at.max() < runs.ended_at.min()  # they really wrote at the same time
    m = store.metrics(runs.run_id)
    assert m.groupby("run_id").size().tolist() == [10_000] * 4
    assert (m.value == m.step * 10 + m.name.str[1:].astype(int)).all()


def start_training(root, min_step=350):
    "A training child that has logged at least `min_step` steps: (process, run id, last step read)."
    proc = child("train", root)
    run_id = proc.stdout.readline().split()[1]
    for line in proc.stdout:
        if int(line) >= min_step:
            return proc, run_id, int(line)
    raise AssertionError(f"training child ended early with code {proc.wait()}")


def stop(proc, sig, last_read: int) -> int:
    "Send `sig`, wait, and return the last step the child reported (it prints a step after logging it)."
    proc.send_signal(sig)
    rest = proc.stdout.read().split()  # what it printed after `last_read`, until it died
    proc.wait(timeout=30)
    return int(rest[-1]) if rest else last_read


def logged_steps(store, run_id):
    m = store.metrics(run_id)
    assert (m.value == 1 / (m.step + 1)).all()
    steps = m.step.tolist()
    assert steps == list(range(len(steps)))  # no hole: rows are lost only from the end
    return len(steps)


@pytest.mark.parametrize("sig, error", [(signal.SIGINT, "KeyboardInterrupt"), (signal.SIGTERM, "SIGTERM")])
def test_interrupted_training_keeps_every_logged_metric(tmp_path, sig, error):
    proc, run_id, last_read = start_training(tmp_path)
    last = stop(proc, sig, last_read)
    assert proc.returncode != 0  # the interrupt still stops the program
    store = RunStore(tmp_path)
    rec = store.get(run_id)
    assert rec["status"] == "interrupted" and error in rec["error"]
    # everything logged is there, the partial batch included (the child may have logged one step unreported)
    assert logged_steps(store, run_id) in (last + 1, last + 2)


def test_killed_training_is_reaped_with_metrics_up_to_last_flush(tmp_path):
    proc, run_id, last_read = start_training(tmp_path)
    last = stop(proc, signal.SIGKILL, last_read)
    with sqlite3.connect(tmp_path / "workbench.sqlite") as raw:  # SIGKILL cannot be caught: still 'running'
        assert raw.execute("SELECT status FROM runs WHERE run_id = ?", (run_id,)).fetchone() == ("running",)
    store = RunStore(tmp_path)
    rec = store.runs().iloc[0]
    assert (rec.run_id, rec.status) == (run_id, "interrupted")
    assert f"process {proc.pid}" in rec.error
    # every full batch of 100 rows is there; only the unflushed rest is lost
    assert (last + 1) // 100 * 100 <= logged_steps(store, run_id) <= (last + 2) // 100 * 100


def test_attach_from_another_process(tmp_path):
    store = RunStore(tmp_path)
    created = store.create_run("attached", {"lr": 0.2}, seed=0)  # what `workbench run` does
    proc = child("attach", tmp_path, created.id)
    proc.communicate(timeout=60)
    assert proc.returncode == 0
    rec = store.get(created.id)
    assert (rec["status"], rec["pid"], rec["seed"]) == ("finished", proc.pid, 5)
    assert rec["params"] == {"lr": 0.2, "extra": 1}
    assert store.metrics(created.id).value.tolist() == [float(s) for s in range(500)]
    created.finish()  # the CLI records the final status once the notebook is done
    assert store.get(created.id)["status"] == "finished"


def test_corrupt_file_is_refused_and_left_alone(tmp_path):
    db = tmp_path / "workbench.sqlite"
    db.write_bytes(b"\x00\x01 definitely not SQLite " * 200)
    with pytest.raises(RunStoreError, match="is not a usable SQLite database") as err:
        RunStore(tmp_path)
    assert str(db) in str(err.value)
    assert db.read_bytes() == b"\x00\x01 definitely not SQLite " * 200
    assert [p.name for p in tmp_path.iterdir()] == ["workbench.sqlite"]  # no -wal or -shm files either


def test_foreign_sqlite_database_is_refused_and_left_alone(tmp_path):
    db = tmp_path / "workbench.sqlite"
    with sqlite3.connect(db) as other:
        other.execute("CREATE TABLE customers (name TEXT)")
        other.execute("INSERT INTO customers VALUES ('ada')")
    with pytest.raises(RunStoreError, match=r"not a workbench run store: .*workbench.sqlite .*tables: customers"):
        RunStore(tmp_path)
    with sqlite3.connect(db) as other:
        assert other.execute("SELECT name FROM customers").fetchall() == [("ada",)]
        assert other.execute("PRAGMA journal_mode").fetchone() == ("delete",)


def test_newer_schema_is_refused_and_empty_file_gets_schema(tmp_path):
    (tmp_path / "workbench.sqlite").touch()
    store = RunStore(tmp_path)  # an empty file is a new store
    store.create_run("x", {}).finish()
    store.close()
    with sqlite3.connect(tmp_path / "workbench.sqlite") as raw:
        raw.execute("PRAGMA user_version = 99")
    with pytest.raises(RunStoreError, match="schema version 99, newer than"):
        RunStore(tmp_path)
