"""AppTest of every explorer page: each renders without an exception, on an empty store and on a populated one."""
from dataclasses import replace

import pytest
import timm
import torch
from streamlit.testing.v1 import AppTest

from conftest import APPS
from workbench.dynamics.grokking import GrokkingConfig, train_grokking
from workbench.models import coswin
from workbench.models.overlock import to_official_state_dict
from workbench.runs import RunStore
from workbench.training import save_checkpoint

PAGES = sorted((APPS / "pages").glob("*.py"))
TINY = GrokkingConfig(group="Z7", train_fraction=0.8, width=32, steps=60, log_every=5, snapshot_every=20)


def tiny_run(store: RunStore, **changes) -> str:
    config = replace(TINY, **changes)
    with store.create_run("grokking", config.__dict__, seed=config.seed) as run:
        train_grokking(config, run=run, progress_bar=False)
    return run.id


def run_app(path, timeout=60, **state) -> AppTest:
    "Run the page at `path` once, with widget values `state` (key -> value) set before the run."
    at = AppTest.from_file(str(path), default_timeout=timeout)
    for key, value in state.items():
        at.session_state[key] = value
    at.run()
    assert not at.exception, [e.value for e in at.exception]
    return at


def test_every_page_is_tested():
    assert {p.stem for p in PAGES} == {"attention", "grokking", "runs", "top_down"}


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


TOP_DOWN = APPS / "pages" / "top_down.py"
TINY_OVERLOCK = dict(depth=[1, 1, 1, 1], sub_depth=[1, 1], embed_dim=[16, 32, 32, 48], sub_num_heads=[2, 2],
                     projection=32, num_classes=10, in_chans=1)


def tiny_overlock_run(store: RunStore) -> str:
    "An overlock_digits run whose model.pt, saved as nbs/33_overlock_digits.ipynb does, is a tiny grey 32-px OverLoCK."
    torch.manual_seed(0)
    model = timm.create_model("overlock_xt", **TINY_OVERLOCK)
    with store.create_run("overlock_digits", {"model": "overlock_xt"}) as run:
        save_checkpoint(store.artifact_dir(run.id) / "model.pt", model, "overlock_xt", TINY_OVERLOCK,
                        input_size=(1, 32, 32), classes=[str(d) for d in range(10)], test_acc=0.1)
    return run.id


def test_top_down_page_default_renders(runs_root):
    at = run_app(TOP_DOWN, timeout=120)
    assert at.title[0].value == "Top-down maps"
    assert len(at.get("vega_lite_chart")) == 6  # overview, affinity, regions, gate, context, hover kernels
    assert len(at.dataframe[0].value) == 5  # ImageNet top-5 of the random-init OverLoCK-XT
    at.slider(key="td_region_row").set_value(0).run()
    at.radio(key="td_which").set_value("small").run()
    assert not at.exception, [e.value for e in at.exception]


def test_top_down_page_stored_run_needs_a_run(runs_root):
    tiny_run(RunStore(runs_root))  # a run of another experiment does not count
    at = run_app(TOP_DOWN, td_model_source="stored run")
    assert "No stored run of the *overlock_digits* experiment" in at.info[0].value


def test_top_down_page_stored_run(runs_root):
    run_id = tiny_overlock_run(RunStore(runs_root))
    at = run_app(TOP_DOWN, td_model_source="stored run", td_source="sample photos")
    assert at.sidebar.selectbox(key="td_run").value == run_id
    assert "1 x 32 x 32 px" in at.sidebar.caption[0].value  # the photo is converted to the run's grey 32-px input
    assert len(at.get("vega_lite_chart")) == 7  # class probabilities, then the six maps


def test_top_down_page_official_checkpoint(runs_root, tmp_path):
    broken = tmp_path / "broken.pth"
    broken.write_bytes(b"not a checkpoint")
    at = run_app(TOP_DOWN, td_model_source="checkpoint file", td_official_path=str(broken))
    assert "Could not load the model" in at.error[0].value
    official = tmp_path / "overlock_xt_in1k_224.pth"
    torch.manual_seed(0)
    torch.save({"model": to_official_state_dict(timm.create_model("overlock_xt"))}, official)
    at.sidebar.text_input(key="td_official_path").set_value(str(official)).run()
    assert not at.exception and not at.error, [e.value for e in at.exception] + [e.value for e in at.error]
    assert len(at.get("vega_lite_chart")) == 6


ATTENTION = APPS / "pages" / "attention.py"


def test_attention_page_default_renders(runs_root):
    at = run_app(ATTENTION, timeout=120)
    assert at.title[0].value == "Attention"
    assert at.sidebar.selectbox(key="atA_variant").value == "coswin_cifar"
    # prediction bars, the last block's map over the image, the gates of every block, mean attention distance
    assert len(at.get("vega_lite_chart")) + len(at.get("arrow_vega_lite_chart")) >= 3
    assert at.metric[0].value == f"{1 / (1 + 2.718281828 ** -0.5):.3f}"  # σ(0.5): CoSwin's gate at initialisation
    at.selectbox(key=at.selectbox[0].key).set_value("stage1.block2").run()  # a shifted-window block
    at.slider(key="at_query_row").set_value(0.1).run()
    assert not at.exception, [e.value for e in at.exception]


def test_attention_page_compares_two_models(runs_root):
    at = run_app(ATTENTION, at_compare=True, atB_variant="swin_cifar", timeout=120)
    assert [h.value for h in at.markdown if h.value.startswith("####")] == ["#### A: coswin_cifar", "#### B: swin_cifar"]
    assert len(at.metric) == 1  # only CoSwin has gates


def test_attention_page_stored_run_and_checkpoint_file(runs_root, tmp_path):
    store = RunStore(runs_root)
    at = run_app(ATTENTION, atA_model_source="stored run")
    assert "No stored run has a model.pt yet" in at.info[0].value
    torch.manual_seed(0)
    nano = timm.create_model("coswin_nano", num_classes=10, in_chans=1)
    with store.create_run("attention_test", {"model": "coswin_nano"}) as run:
        save_checkpoint(store.artifact_dir(run.id) / "model.pt", nano, "coswin_nano", dict(num_classes=10, in_chans=1),
                        input_size=(1, 32, 32), classes=[str(d) for d in range(10)])
    at = run_app(ATTENTION, atA_model_source="stored run", at_source="sklearn digits")
    assert "1 x 32" not in at.sidebar.caption[0].value and "32 x 32 px" in at.sidebar.caption[0].value
    assert not at.error, [e.value for e in at.error]

    official = tmp_path / "coswin_cifar10.pth"
    torch.save({"model_state_dict": coswin.to_official_state_dict(timm.create_model("coswin_cifar"))}, official)
    at = run_app(ATTENTION, atA_model_source="checkpoint file", atA_official_path=str(official))
    assert not at.error, [e.value for e in at.error]
    broken = tmp_path / "broken.pth"
    broken.write_bytes(b"not a checkpoint")
    at.sidebar.text_input(key="atA_official_path").set_value(str(broken)).run()
    assert "Could not load the model" in at.error[0].value


def test_attention_page_refuses_models_without_attention(runs_root):
    tiny_overlock_run(RunStore(runs_root))
    at = run_app(ATTENTION, atA_model_source="stored run")
    assert "has no attention maps" in at.error[0].value


@pytest.mark.parametrize("variant, block, head", [("duoformer_r18_tiny", "scale.block2", "head 1"),
                                                  ("duoformer_r18_tiny", "patch.rollout", "mean"),
                                                  ("vcmamba_nano", "stage4.mamba2", "column snake")])
def test_attention_page_every_family(runs_root, variant, block, head):
    "DuoFormer's scale matrix of the query's region, its CLS maps and rollout; VCMamba's scan directions."
    at = run_app(ATTENTION, atA_variant=variant, timeout=120)
    picked = next(s for s in at.selectbox if s.label == "block")
    picked.set_value(block).run()
    next(s for s in at.selectbox if s.label in ("head", "direction")).set_value(head).run()
    assert not at.exception, [e.value for e in at.exception]
    assert len(at.get("vega_lite_chart")) + len(at.get("arrow_vega_lite_chart")) >= 2
