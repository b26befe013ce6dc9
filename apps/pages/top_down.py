"""Top-down maps: what OverLoCK's Overview-Net tells its Focus-Net about one image, drawn over the image."""
import sys
from pathlib import Path

import numpy as np
import streamlit as st
import torch
from timm.data import IMAGENET_DEFAULT_MEAN, IMAGENET_DEFAULT_STD

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # apps/: the shared widgets, under AppTest too
from widgets import PHOTO_SOURCES, checked_load, image_picker, load_model, model_picker, prediction_panel, side  # noqa: E402

from workbench.models.top_down import REGIONS, TopDownMaps, kernel_hover_chart, overlay_chart, prepare_image, top_down_maps  # noqa: E402

EXPERIMENT = "overlock_digits"  # nbs/33_overlock_digits.ipynb: its runs save model.pt
VARIANTS = ["overlock_xt", "overlock_t", "overlock_s", "overlock_b"]
SIZES = [32, 48, 64, 96, 128, 160, 192, 224, 256, 320, 384]
SQUARE_SOURCES_SIZE = 64  # digits are tiny: 64 px gives 4x4 maps at 1/16, where ContMix still upsamples to its kernel

st.title("Top-down maps")
st.caption("OverLoCK (Lou & Yu, CVPR 2025) first takes an overview of the image (Overview-Net, 1/32), then looks "
           "closely (Focus-Net): every Focus block compares its tokens with 7x7 regions of the overview context, "
           "builds a dynamic kernel per pixel from those affinities, and gates the result. Here, all of it over one image.")


@st.cache_data(max_entries=16, show_spinner="running the model…")
def compute_maps(model_key: tuple, image: np.ndarray, mean: tuple | None, std: tuple | None) -> TopDownMaps:
    model, _, lock = load_model(*model_key)
    with lock:
        return top_down_maps(model, torch.from_numpy(image), mean, std)


# ---- sidebar: image and model ---------------------------------------------------------------------
notice = st.empty()  # what the sidebar's choices still need, said in the main area
with st.sidebar:
    st.subheader("Image")
    raw, caption, source = image_picker("td", notice)
    st.subheader("Model")
    model_key = model_picker("td", VARIANTS, notice, experiments=[EXPERIMENT],
                             hint="run `workbench run nbs/33_overlock_digits.ipynb`")
    model, info, _ = checked_load(model_key, notice)
    model_source = model_key[0]
    channels = int(info.get("in_chans", model.stem[0].in_channels))
    if "input_size" in info:
        size = side(info["input_size"])
        st.caption(f"input: {channels} x {size} x {size} px, as the run trained")
    else:
        default_size = 224 if source in PHOTO_SOURCES else SQUARE_SOURCES_SIZE
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
with middle:
    prediction_panel(maps.logits[0], info, random_weights=model_source == "random init")
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
