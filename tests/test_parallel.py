"""`workbench.parallel.run_tasks` on a local Ray cluster (the notebook covers the serial and process executors)."""
import os

import pytest

from workbench.parallel import ray_cluster, run_tasks, task_values


def square(x):
    return x * x


def fail_once(marker, x):
    "Fails the first time it sees `marker` (a transient failure), then works."
    if not os.path.exists(marker):
        open(marker, "w").close()
        raise RuntimeError("transient")
    return x


def crash(x):
    if x == 1:
        os._exit(5)  # the Ray worker process dies
    return x


def test_ray_executor_agrees_retries_and_reports(tmp_path, monkeypatch):
    # Ray pickles these importable functions by reference: its workers (started now, with this environment) import them.
    monkeypatch.setenv("PYTHONPATH", os.pathsep.join([os.path.dirname(__file__), os.environ.get("PYTHONPATH", "")]))
    with ray_cluster(jobs=2):
        assert task_values(run_tasks(square, [dict(x=x) for x in range(6)], executor="ray")) == [x * x for x in range(6)]
        results = run_tasks(fail_once, [dict(marker=str(tmp_path / f"m{i}"), x=i) for i in range(3)], executor="ray")
        assert [(r.status, r.value, r.attempts) for r in results] == [("finished", i, 2) for i in range(3)]
        seen = []
        results = run_tasks(crash, [dict(x=x) for x in range(3)], executor="ray", retries=1, on_done=seen.append)
        assert [(r.status, r.attempts) for r in results] == [("finished", 1), ("failed", 2), ("finished", 1)]
        assert "WorkerCrashedError" in results[1].error or "died" in results[1].error, results[1].error
        assert sorted(r.index for r in seen) == [0, 1, 2]
