"""AppTest of every explorer page: each renders without an exception, on an empty store and on a populated one."""
from dataclasses import replace

import pytest
from streamlit.testing.v1 import AppTest

from conftest import APPS
from workbench.dynamics.grokking import GrokkingConfig, train_grokking
from workbench.runs import RunStore

PAGES = sorted((APPS / "pages").glob("*.py"))
TINY = GrokkingConfig(group="Z7", train_fraction=0.8, width=32, steps=60, log_every=5, snapshot_every=20)


def tiny_run(store: RunStore, **changes) -> str:
    config = replace(TINY, **changes)
    with store.create_run("grokking", config.__dict__, seed=config.seed) as run:
        train_grokking(config, run=run, progress_bar=False)
    return run.id


def run_app(path, timeout=60) -> AppTest:
    at = AppTest.from_file(str(path), default_timeout=timeout)
    at.run()
    assert not at.exception, [e.value for e in at.exception]
    return at


def test_every_page_is_tested():
    assert {p.stem for p in PAGES} == {"grokking", "runs"}


def test_explorer_entry_point_renders(runs_root):
    tiny_run(RunStore(runs_root))
    at = run_app(APPS / "explorer.py")
    assert at.title[0].value == "Grokking dynamics"  # the default page


def test_runs_page_empty_store(runs_root):
    at = run_app(APPS / "pages" / "runs.py")
    assert "No runs yet" in at.info[0].value


def test_runs_page_lists_and_plots(runs_root):
    store = RunStore(runs_root)
    first, second = tiny_run(store), tiny_run(store, seed=1)
    at = run_app(APPS / "pages" / "runs.py")
    table = at.dataframe[0].value
    assert set(table.run_id) == {first, second}
    assert (table.status == "finished").all()
    assert len(at.get("vega_lite_chart")) >= 1
    at.multiselect(key="runs_statuses").set_value(["failed"]).run()
    assert len(at.dataframe[0].value) == 0


def test_grokking_page_first_start_trains_default(runs_root):
    at = run_app(APPS / "pages" / "grokking.py", timeout=180)
    runs = RunStore(runs_root).runs(experiment="grokking")
    assert len(runs) == 1 and runs.status[0] == "finished"
    assert runs.params[0]["group"] == "Z23"
    assert len(at.get("vega_lite_chart")) >= 4  # curves, two spectrum heatmaps, energy


def test_grokking_page_trains_from_sliders(runs_root):
    store = RunStore(runs_root)
    tiny_run(store)
    at = run_app(APPS / "pages" / "grokking.py")
    at.sidebar.slider[0].set_value(11)  # M
    at.sidebar.select_slider[0].set_value(32)  # width
    at.sidebar.slider[-1].set_value(200)  # steps
    at.sidebar.button[0].click().run()
    assert not at.exception, [e.value for e in at.exception]
    runs = store.runs(experiment="grokking")
    assert len(runs) == 2
    newest = runs.iloc[0]
    assert newest.params["group"] == "Z11" and newest.params["width"] == 32 and newest.params["steps"] == 200
    assert newest.status == "finished"
    assert at.multiselect(key="grokking_runs").value == [newest.run_id]
