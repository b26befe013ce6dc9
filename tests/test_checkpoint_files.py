"""Checkpoint files as they come: timm training files (with `args`), DataParallel prefixes, EMA weights, .safetensors,
official key names and class counts other than the variant's; loaded by OverLoCK's `load_official_checkpoint` and by
`model_from_checkpoint_file` (the explorer's checkpoint-file source), refused by name when they cannot be."""
import argparse
import pickle
import re

import pytest
import safetensors.torch
import timm
import torch
from streamlit.testing.v1 import AppTest

from conftest import APPS
from workbench.core import ParameterError
from workbench.models import coswin, duoformer, model_from_checkpoint_file, read_checkpoint_file, vcmamba
from workbench.models.overlock import OverLoCK, load_official_checkpoint, to_official_state_dict

TINY_OVERLOCK = dict(depth=[1, 1, 1, 1], sub_depth=[1, 1], embed_dim=[8, 16, 16, 24], sub_num_heads=[1, 2],
                     projection=32)


def perturbed(model: torch.nn.Module, seed: int = 0) -> torch.nn.Module:
    "`model` (eval mode) with every float tensor moved off its initial value, so the logits depend on all of them."
    g = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for name, t in model.state_dict().items():
            if name.endswith("running_var"):
                t.copy_(0.5 + torch.rand(t.shape, generator=g))
            elif t.is_floating_point():
                t.copy_(t + 0.1 * torch.randn(t.shape, generator=g))
    return model.eval()


def assert_same_logits(source: torch.nn.Module, loaded: torch.nn.Module, x: torch.Tensor):
    with torch.no_grad():
        torch.testing.assert_close(loaded.eval()(x), source.eval()(x), atol=1e-5, rtol=1e-5)


def data_parallel(state_dict: dict) -> dict:
    "The keys as a DataParallel / DDP model saves them."
    return {f"module.{k}": v for k, v in state_dict.items()}


def train_file(state_dict: dict, **more) -> dict:
    "A timm-train-style checkpoint: the weights beside the argparse namespace of the run and other state."
    return dict(state_dict=state_dict, args=argparse.Namespace(model="overlock_xt", lr=4e-3, epochs=300), epoch=299,
                optimizer={"state": {}, "param_groups": [{"lr": 4e-3}]}, **more)


@pytest.fixture(scope="module")
def overlock_source():
    torch.manual_seed(0)
    return perturbed(OverLoCK(**TINY_OVERLOCK, num_classes=10))


X_OVERLOCK = torch.randn(2, 3, 48, 48, generator=torch.Generator().manual_seed(1))


# ---- OverLoCK: load_official_checkpoint -----------------------------------------------------------------------------

def test_overlock_train_file_with_args_and_module_prefix(overlock_source, tmp_path):
    path = tmp_path / "checkpoint-299.pth.tar"
    torch.save(train_file(data_parallel(to_official_state_dict(overlock_source))), path)
    with pytest.raises(pickle.UnpicklingError):  # what the plain weights-only load did with the `args` namespace
        torch.load(path, weights_only=True)
    loaded = load_official_checkpoint(OverLoCK(**TINY_OVERLOCK, num_classes=10), path)
    assert_same_logits(overlock_source, loaded, X_OVERLOCK)


@pytest.mark.parametrize("wrapper", ["state_dict_ema", "model_ema"])
def test_overlock_ema_only_file(overlock_source, tmp_path, wrapper):
    path = tmp_path / "ema.pth"
    torch.save({wrapper: data_parallel(to_official_state_dict(overlock_source)), "epoch": 299}, path)
    assert_same_logits(overlock_source, load_official_checkpoint(OverLoCK(**TINY_OVERLOCK, num_classes=10), path),
                       X_OVERLOCK)


def test_plain_weights_are_preferred_over_ema(overlock_source, tmp_path):
    plain = to_official_state_dict(overlock_source)
    ema = {k: v + 1 if v.is_floating_point() else v for k, v in plain.items()}
    path = tmp_path / "both.pth"
    torch.save(train_file(plain, state_dict_ema=ema), path)
    assert_same_logits(overlock_source, load_official_checkpoint(OverLoCK(**TINY_OVERLOCK, num_classes=10), path),
                       X_OVERLOCK)
    key = "head.4.weight"
    assert torch.equal(read_checkpoint_file(path)[key], plain[key])
    assert torch.equal(read_checkpoint_file(path, prefer_ema=True)[key], ema[key])


def test_overlock_safetensors_file(overlock_source, tmp_path):
    path = tmp_path / "overlock.safetensors"
    safetensors.torch.save_file(to_official_state_dict(overlock_source), path)
    assert_same_logits(overlock_source, load_official_checkpoint(OverLoCK(**TINY_OVERLOCK, num_classes=10), path),
                       X_OVERLOCK)


def bad_files(tmp_path, source: OverLoCK) -> dict:
    "(path, what the error says) of files that hold no loadable OverLoCK weights."
    files = {}
    junk = tmp_path / "junk.pth"
    junk.write_bytes(b"not a checkpoint")
    files["junk"] = (junk, "is not a checkpoint torch.load can read")
    junk_st = tmp_path / "junk.safetensors"
    junk_st.write_bytes(b"not a checkpoint either")
    files["junk safetensors"] = (junk_st, "is not a .safetensors file")
    objects = tmp_path / "objects.pth"
    torch.save(dict(model=to_official_state_dict(source), data_dir=tmp_path), objects)  # a pathlib.Path: not unpickled
    files["objects"] = (objects, "holds objects that a safe (weights-only) load refuses: pathlib")
    no_weights = tmp_path / "optimizer_only.pth"
    torch.save(dict(epoch=3, optimizer={"param_groups": []}), no_weights)
    files["no weights"] = (no_weights, "holds no state dict")
    files["absent"] = (tmp_path / "absent.pth", "is not a file")
    wrong = tmp_path / "other_model.pth"
    torch.save(train_file(to_official_state_dict(perturbed(OverLoCK(**{**TINY_OVERLOCK, "sub_depth": [2, 1]})))), wrong)
    files["other architecture"] = (wrong, r"does not fit the model \(official names are mapped to ours first\): "
                                          r"missing keys \[\]; unexpected keys \['focus_stages\.0\.blocks\.1\.")
    return files


def test_bad_files_give_a_parameter_error_naming_the_file(overlock_source, tmp_path):
    for name, (path, reason) in bad_files(tmp_path, overlock_source).items():
        with pytest.raises(ParameterError, match=re.escape(str(path)) + ".*" + (
                reason if name == "other architecture" else re.escape(reason))):
            load_official_checkpoint(OverLoCK(**TINY_OVERLOCK, num_classes=10), path)


def test_overlock_from_checkpoint_file_reads_class_count_and_aux_head(tmp_path):
    source = perturbed(timm.create_model("overlock_xt", **TINY_OVERLOCK, num_classes=3, use_ds=False), seed=2)
    source.reparameterize()  # a deployed file, without the aux head
    path = tmp_path / "deployed.pth"
    torch.save({"model": data_parallel(to_official_state_dict(source))}, path)
    loaded = model_from_checkpoint_file("overlock_xt", path, **TINY_OVERLOCK)
    assert loaded.num_classes == 3 and loaded.aux_head is None
    assert_same_logits(source, loaded, X_OVERLOCK)


# ---- the Attention page's families: model_from_checkpoint_file ------------------------------------------------------

DUOFORMER_TO_OFFICIAL = [  # the inverse of duoformer.official_key, enough for these models
    (r"^backbone\.conv1\.", "resnet_projector.0."),
    (r"^backbone\.bn1\.", "resnet_projector.1."),
    (r"^backbone\.layer([1-4])\.", lambda m: f"resnet_projector.{int(m[1]) + 3}."),
    (r"^proj\.([0-3])\.", lambda m: f"projection.proj_heads{3 - int(m[1])}."),
    (r"^scale_token$", "channel_token"),
    (r"^channel_token\.downsample\.0\.([01])\.", lambda m: f"chann_proj1.conv{int(m[1]) + 1}."),
    (r"^channel_token\.downsample\.1\.0\.", "chann_proj2.conv1."),
    (r"^channel_token\.fuse\.(\d+)\.0\.", r"chann_proj_all.nConvs.\1.conv."),
    (r"^channel_token\.fuse\.(\d+)\.1\.", r"chann_proj_all.nConvs.\1.norm."),
    (r"^scale_blocks\.", "vision_transformer.scaleBlocks."),
    (r"^scale_pos_embed$", "vision_transformer.pos_embed_for_scale"),
    (r"^patch_blocks\.(\d+)\.", r"vision_transformer.blocks.\1.attn."),
    (r"^(cls_token|pos_embed|fc_norm\.|head\.)", r"vision_transformer.\1"),
]
VCMAMBA_TO_OFFICIAL = [
    (r"^stem\.", "patch_embed."),
    (r"^head_dist\.", "dist_head."),
    (r"^stages\.(\d+)\.blocks\.", lambda m: f"network.{2 * int(m[1])}."),
    (r"^stages\.(\d+)\.downsample\.", lambda m: f"network.{2 * int(m[1]) - 1}."),
]


def renamed(state_dict: dict, renames, check) -> dict:
    "`state_dict` under the official names (first matching pattern), checked to map back with the family's `check`."
    out = {}
    for key, value in state_dict.items():
        official = next((re.sub(p, r, key) for p, r in renames if re.search(p, key)), key)
        assert check(official) == key, (key, official)
        out[official] = value
    return out


def test_coswin_official_file_with_100_classes(tmp_path):
    torch.manual_seed(0)
    source = perturbed(timm.create_model("coswin_nano", num_classes=100))
    path = tmp_path / "checkpoint_coswin_CIFAR100.pt"
    torch.save({"model_state_dict": coswin.to_official_state_dict(source), "epoch": 99}, path)
    loaded = model_from_checkpoint_file("coswin_nano", path)
    assert loaded.num_classes == 100 and not loaded.training
    assert_same_logits(source, loaded, torch.randn(2, 3, 32, 32))


@pytest.mark.parametrize("num_classes, num_scales, scale_token", [(7, 3, "channel"), (5, 4, "random")])
def test_duoformer_official_file_with_its_own_classes_scales_and_token(tmp_path, num_classes, num_scales, scale_token):
    "duoformer_r18_tiny defaults to 1000 classes, 2 scales and the 'random' token: the file's own settings win."
    torch.manual_seed(0)
    source = perturbed(timm.create_model("duoformer_r18_tiny", num_classes=num_classes, num_scales=num_scales,
                                         scale_token=scale_token, depth=2))
    official = renamed(source.state_dict(), DUOFORMER_TO_OFFICIAL, duoformer.official_key)
    assert any(k.startswith("vision_transformer.") for k in official)
    path = tmp_path / "duoformer_official.pth"
    torch.save(train_file(data_parallel(official)), path)
    loaded = model_from_checkpoint_file("duoformer_r18_tiny", path, depth=2)
    assert (loaded.num_classes, loaded.num_scales, loaded.scale_token_kind) == (num_classes, num_scales, scale_token)
    assert_same_logits(source, loaded, torch.randn(1, 3, 64, 64))


def test_vcmamba_official_file_with_other_classes(tmp_path):
    torch.manual_seed(0)
    source = perturbed(timm.create_model("vcmamba_nano", num_classes=6))
    path = tmp_path / "vcmamba_nano.pth"
    torch.save({"model": renamed(source.state_dict(), VCMAMBA_TO_OFFICIAL, vcmamba.official_to_workbench_key),
                "model_ema": source.state_dict(), "args": argparse.Namespace(model="vcmamba_nano")}, path)
    loaded = model_from_checkpoint_file("vcmamba_nano", path)
    assert loaded.num_classes == 6
    assert_same_logits(source, loaded, torch.randn(1, 3, 64, 64))


def test_file_of_another_architecture_is_refused_with_its_keys(tmp_path):
    path = tmp_path / "coswin.pt"
    torch.save({"model_state_dict": coswin.to_official_state_dict(timm.create_model("coswin_nano"))}, path)
    with pytest.raises(ParameterError, match=re.escape(f"{path}: the checkpoint does not fit the model swin_nano")
                       + r".*missing keys \[\]; unexpected keys \['stages\.0\.blocks\.0\.gate_logit', "
                       r"'stages\.0\.blocks\.0\.local_conv"):
        model_from_checkpoint_file("swin_nano", path)
    absent = path.with_name("absent.pt")
    with pytest.raises(ParameterError, match=re.escape(f"{absent} is not a file")):
        model_from_checkpoint_file("coswin_nano", absent)


def test_attention_page_loads_a_100_class_coswin_file(runs_root, tmp_path):
    torch.manual_seed(0)
    path = tmp_path / "checkpoint_coswin_CIFAR100.pt"
    torch.save({"model_state_dict": coswin.to_official_state_dict(timm.create_model("coswin_nano", num_classes=100))},
               path)
    at = AppTest.from_file(str(APPS / "pages" / "attention.py"), default_timeout=120)
    for key, value in dict(atA_model_source="checkpoint file", atA_official_variant="coswin_nano",
                           atA_official_path=str(path)).items():
        at.session_state[key] = value
    at.run()
    assert not at.exception, [e.value for e in at.exception]
    assert not at.error, [e.value for e in at.error]
    assert [h.value for h in at.markdown if h.value.startswith("####")] == ["#### coswin_nano"]
    assert len(at.get("vega_lite_chart")) + len(at.get("arrow_vega_lite_chart")) >= 2  # prediction bars and maps
