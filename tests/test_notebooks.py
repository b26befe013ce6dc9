"""A papermill smoke run of every experiment notebook, through `workbench run` as a user would start it."""
import json

import pytest

from conftest import NBS
from workbench.cli import experiment_notebooks, main
from workbench.runs import RunStore


def test_there_are_experiment_notebooks():
    names = [nb.name for nb in experiment_notebooks(NBS)]
    assert "12_grokking.ipynb" in names and "13_grokking_critical_ratio.ipynb" in names


def test_experiment_notebooks_are_smoke_sized_under_nbdev_test():
    "`./dev test` runs experiment notebooks only here, through papermill; a plain `nbdev_test` must still size them down."
    for nb in experiment_notebooks(NBS):
        code = "\n".join("".join(c["source"]) for c in json.loads(nb.read_text())["cells"] if c["cell_type"] == "code")
        assert "smoke = smoke or in_test()" in code, f"{nb.name} does not shrink under nbdev_test (in_test())"


@pytest.mark.parametrize("nb", experiment_notebooks(NBS), ids=lambda p: p.stem)
def test_smoke_run(nb, runs_root):
    assert main(["run", str(nb), "--smoke", "--runs", str(runs_root)]) == 0
    store = RunStore(runs_root)
    notebook_runs = store.runs(experiment=nb.stem.split("_", 1)[1])
    top = notebook_runs[notebook_runs.parent_id.isna()]
    assert len(top) == 1
    run = top.iloc[0]
    assert run.status == "finished", run.error
    assert run.params["smoke"] is True
    assert (store.artifact_dir(run.run_id) / "executed.ipynb").exists()
    # the notebook recorded results, not just a status
    assert run.summary, "the experiment notebook stored no summary"
