"""Attention: where a backbone looks — softmax attention (CoSwin, Swin, DuoFormer) and the implicit attention of
VCMamba's selective scan — over one image, for one model or two side by side."""
import sys
from pathlib import Path

import numpy as np
import pandas as pd
import streamlit as st
import timm
import torch
from timm.data import IMAGENET_DEFAULT_MEAN, IMAGENET_DEFAULT_STD

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # apps/: the shared widgets, under AppTest too
from widgets import (checked_load, image_picker, load_model, model_picker, prediction_panel, side,  # noqa: E402
                     text_attention_view)

from workbench.models.attention import (attention_maps, attention_overlay, distance_chart, distance_table,  # noqa: E402
                                        grid_cell, token_matrix_chart)
from workbench.models.top_down import prepare_image  # noqa: E402

FAMILIES = ("coswin", "duoformer", "vcmamba")  # the workbench model modules whose models define attention_maps
SMALL_FIRST = ["coswin_cifar", "swin_cifar", "duoformer_r18_tiny", "vcmamba_s"]  # quick on a CPU: the defaults
SIZES = [32, 64, 96, 128, 160, 192, 224]

st.title("Attention")
st.caption("What a backbone attends to, block by block: CoSwin's and Swin's window attention put back into image space "
           "(with CoSwin's learned convolution-vs-attention gate), DuoFormer's attention among the scales of one region "
           "and among regions, and the implicit attention α (y = α u) that VCMamba's selective scans realise. "
           "Pick a query point: every map shows where that point looks.")


def variants() -> list[str]:
    registered = timm.list_models(module=list(FAMILIES))
    return [*[n for n in SMALL_FIRST if n in registered], *[n for n in registered if n not in SMALL_FIRST]]


def input_channels(model: torch.nn.Module, info: dict) -> int:
    "Input channels: as the run recorded them, else those of the model's first convolution (timm's `first_conv`)."
    if "input_size" in info and not np.isscalar(info["input_size"]) and len(info["input_size"]) == 3:
        return int(info["input_size"][0])
    first = model.pretrained_cfg.get("first_conv")
    return int(model.get_submodule(first).in_channels) if first else 3


@st.cache_data(max_entries=16, show_spinner="running the model…")
def compute(model_key: tuple, image: np.ndarray, mean: tuple, std: tuple):
    "(logits, attention maps) of one model on one image (C, H, W) in [0, 1]."
    model, _, lock = load_model(*model_key)
    x = ((torch.from_numpy(image) - torch.tensor(mean).view(-1, 1, 1)) / torch.tensor(std).view(-1, 1, 1))[None]
    with lock, torch.no_grad():
        logits = model(x)
        maps = attention_maps(model, x)
    return logits[0], maps


# ---- sidebar: image and models --------------------------------------------------------------------
notice = st.empty()
slots = {}
with st.sidebar:
    st.subheader("Image")
    raw, caption, source = image_picker("at", notice)
    compare = st.toggle("compare two models side by side", key="at_compare")
    for slot in ("A", "B") if compare else ("A",):
        st.subheader(f"Model {slot}" if compare else "Model")
        model_key = model_picker(f"at{slot}", variants(), notice,
                                 hint="train one of the attention models and save it with `save_checkpoint`")
        model, info, _ = checked_load(model_key, notice)
        if not hasattr(model, "attention_maps"):
            notice.error(f"{type(model).__name__} has no attention maps; pick one of: {', '.join(variants())}.")
            st.stop()
        name = model_key[1] or info.get("model_name", type(model).__name__)
        if "input_size" in info:
            size = side(info["input_size"])
            st.caption(f"input: {size} x {size} px, as the run trained")
        else:
            default = side(model.pretrained_cfg.get("input_size", 224))
            # CoSwin's maps are dense (tokens x tokens): beyond twice its own size they take gigabytes
            sizes = [p for p in SIZES if p <= 2 * default] if name.startswith(("coswin", "swin")) else SIZES
            size = st.select_slider("input size (px)", sizes, value=default if default in sizes else sizes[-1],
                                    key=f"at{slot}_size_{name}")
        if model_key[0] == "stored run" and info.get("mean") is not None:
            mean, std = info["mean"], info["std"]  # the run's own normalisation
        else:  # a checkpoint's own statistics (ImageNet's for random weights, for comparability)
            mean = model.pretrained_cfg.get("mean", IMAGENET_DEFAULT_MEAN)
            std = model.pretrained_cfg.get("std", IMAGENET_DEFAULT_STD)
        slots[slot] = dict(key=model_key, info=info, name=f"{slot}: {name}" if compare else name, size=size,
                           channels=input_channels(model, info), mean=tuple(mean), std=tuple(std))

st.markdown(f"**Image:** {caption}")
pick_row, pick_col = st.columns(2)
qy = pick_row.slider("query point: row (fraction of the height)", 0.0, 1.0, 0.5, 0.01, key="at_query_row")
qx = pick_col.slider("query point: column (fraction of the width)", 0.0, 1.0, 0.5, 0.01, key="at_query_col")

distances = []
for column, (slot, s) in zip(st.columns(len(slots)), slots.items()):
    with column:
        image = prepare_image(raw, s["size"], s["channels"])
        try:
            logits, maps = compute(s["key"], image.numpy(), s["mean"][:s["channels"]], s["std"][:s["channels"]])
        except Exception as e:  # an input size the model cannot take: say which, instead of a traceback
            st.error(f"{s['name']} cannot run on this input: {type(e).__name__}: {e}")
            continue
        st.markdown(f"#### {s['name']}")
        prediction_panel(logits, s["info"], random_weights=s["key"][0] == "random init")
        names = list(maps)
        block = st.selectbox("block", names, index=0, key=f"at{slot}_block_{len(names)}_{names[0]}")
        amap = maps[block]
        head = st.selectbox("direction" if amap.head_names else "head", ["mean", *amap.heads],
                            key=f"at{slot}_head_{block}")
        head = None if head == "mean" else head
        if amap.gate is not None:
            st.metric("gate σ(w): share of the convolution branch", f"{amap.gate:.3f}")
        size = (s["size"], s["size"])
        pixel = (min(int(qy * size[0]), size[0] - 1), min(int(qx * size[1]), size[1] - 1))
        background = image.numpy()
        if amap.region_grid is not None:  # attention among the scale tokens of the region that holds the point
            region = grid_cell(amap.region_grid, size, pixel)
            st.altair_chart(token_matrix_chart(amap, head, region=region, size=260,
                                               title=f"{block}: scales of region {divmod(region, amap.region_grid[1])}"),
                            width="content")
        elif amap.key_grid is not None:
            query = pixel if amap.query_grid is not None else amap.query_tokens[0]
            st.altair_chart(attention_overlay(amap, background, query, head, title=f"{block}: "
                                              + ("the point looks at" if query == pixel else f"{query} looks at")),
                            width="content")
        distances.append(distance_table(maps, size, model=s["name"]))
        gates = pd.DataFrame([dict(block=n, gate=m.gate) for n, m in maps.items() if m.gate is not None])
        if not gates.empty:
            st.caption("Learned gates of every block (σ(w) scales the convolution branch added to attention)")
            st.bar_chart(gates, x="block", y="gate", height=160)

table = pd.concat(distances) if distances else pd.DataFrame()
if not table.empty:
    st.subheader("How local is each block?")
    st.caption("Mean attention distance (Dosovitskiy et al. 2021): the distance in input pixels from a query to its "
               "keys, weighted by attention (|α| for the scan), averaged over queries; dots are heads or directions.")
    st.altair_chart(distance_chart(table), width="content")

st.subheader("A text encoder's attention")
st.caption("The same (query x key) maps for a typed sentence in a pretrained text encoder: the bundled MiniLM-L6 "
           "(6 layers x 12 heads), or any local Hugging Face encoder directory. The bias-in-representations page "
           "measures what this encoder's representations encode.")
text_attention_view("at_text")
