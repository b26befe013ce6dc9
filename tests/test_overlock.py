"""OverLoCK: timm conformance, exact official parameter counts, re-parameterisation, checkpoints, official logits."""
from pathlib import Path

import pytest
import timm
import torch
import torch.nn as nn
from timm.layers import DropPath
from timm.optim import create_optimizer_v2
from timm.utils import reparameterize_model

import workbench.models  # noqa: F401  (registers the overlock_* entrypoints with timm)
from workbench.core import ParameterError
from workbench.models.overlock import OverLoCK, load_official_checkpoint, overlock_loss, to_official_state_dict

FIXTURE = Path(__file__).parent / "fixtures" / "overlock_official_tiny.pt"
TINY = dict(depth=[1, 1, 1, 1], sub_depth=[2, 2], embed_dim=[8, 16, 24, 32], sub_num_heads=[1, 2],
            kernel_size=[17, 15, 13, 7], sub_mlp_ratio=[3, 3], projection=32)
# Official code, 1000 classes, aux head included (shared reference backbones.md §1.3, measured by instantiating it).
OFFICIAL_COUNTS = dict(overlock_xt=(17_307_272, 16_791_384), overlock_t=(34_990_472, 33_981_064),
                       overlock_s=(58_309_772, 56_670_476), overlock_b=(98_012_968, 95_520_680))


@pytest.fixture(scope="module")
def official():
    return torch.load(FIXTURE, weights_only=True)


def randomize(model, seed=0):
    "Unit-scale conv weights and random BatchNorm statistics and tables, so that outputs depend on every branch."
    g = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for m in model.modules():
            if isinstance(m, nn.Conv2d):
                m.weight.copy_(torch.randn(m.weight.shape, generator=g) / m.weight[0].numel() ** 0.5)
            elif isinstance(m, nn.BatchNorm2d):
                n = m.num_features
                m.weight.copy_(1 + 0.2 * torch.randn(n, generator=g))
                m.bias.copy_(0.2 * torch.randn(n, generator=g))
                m.running_mean.copy_(0.2 * torch.randn(n, generator=g))
                m.running_var.copy_(0.5 + torch.rand(n, generator=g))
        for name, p in model.named_parameters():
            if name.endswith(("rpb1", "rpb2", "gamma", "beta")):
                p.copy_(0.5 * torch.randn(p.shape, generator=g))
    return model


def n_params(model):
    return sum(p.numel() for p in model.parameters())


def test_list_models():
    assert timm.list_models("overlock*") == ["overlock_b", "overlock_s", "overlock_t", "overlock_xt"]


@pytest.mark.parametrize("variant", list(OFFICIAL_COUNTS))
def test_parameter_counts_equal_official(variant):
    with torch.device("meta"):
        train = timm.create_model(variant)
        deployed = timm.create_model(variant, deploy=True)
    assert (n_params(train), n_params(deployed)) == OFFICIAL_COUNTS[variant]


def test_create_train_step_and_kwargs():
    torch.manual_seed(0)
    model = timm.create_model("overlock_xt", num_classes=10, in_chans=1, drop_path_rate=0.1)
    assert model.stem[0].in_channels == 1 and model.num_classes == 10
    drop_probs = [m.drop_prob for m in model.modules() if isinstance(m, DropPath)]
    assert max(drop_probs) == pytest.approx(0.1) and len(drop_probs) == 9 + 8 - 1  # all blocks but the first (rate 0)
    assert model.pretrained_cfg["crop_pct"] == 0.925 and model.pretrained_cfg["interpolation"] == "bicubic"
    model.train()
    out = model(torch.randn(2, 1, 32, 32))
    assert set(out) == {"main", "aux"} and out["main"].shape == out["aux"].shape == (2, 10)
    overlock_loss(out, torch.tensor([1, 2])).backward()
    assert all(p.grad is not None for p in model.parameters())
    model.eval()
    with torch.no_grad():
        for size in [(32, 32), (40, 40), (64, 64), (48, 72)]:
            assert model(torch.randn(1, 1, *size)).shape == (1, 10)


def test_features_only():
    model = timm.create_model("overlock_xt", features_only=True).eval()
    info = model.feature_info
    assert info.channels() == [56, 112, 256 + 84, 336 + 84]
    assert info.reduction() == [4, 8, 16, 32]
    assert info.module_name() == ["stages.0", "stages.1", "focus_stages.0", "focus_stages.1"]
    with torch.no_grad():
        maps = model(torch.randn(1, 3, 64, 96))
    assert [tuple(m.shape) for m in maps] == [(1, 56, 16, 24), (1, 112, 8, 12), (1, 340, 4, 6), (1, 420, 2, 3)]
    two = timm.create_model("overlock_xt", features_only=True, out_indices=(0, 1))
    assert len(two.model.stages) == 2 and len(two.model.focus_stages) == 0  # pruned to what the two maps need


def test_forward_intermediates_agree_with_forward():
    torch.manual_seed(0)
    model = timm.create_model("overlock_xt", num_classes=5, **TINY).eval()
    x = torch.randn(2, 3, 48, 64)
    with torch.no_grad():
        final, maps = model.forward_intermediates(x)
        assert torch.equal(final, model.forward_features(x)) and torch.equal(maps[-1], final)
        assert torch.allclose(model.forward_head(final), model(x))
        assert [m.shape[1] for m in model.forward_intermediates(x, indices=2, intermediates_only=True)] == [32, 40]
        overview = model.forward_overview(x)
    assert overview["ctx_up"].shape[-2:] == maps[2].shape[-2:] and overview["ctx"].shape[1] == 32


def test_reset_classifier_and_timm_utilities():
    model = timm.create_model("overlock_xt", **TINY)
    model.reset_classifier(7)
    assert model.get_classifier().out_channels == 7 and model.aux_head.fc.out_channels == 7
    model.reset_classifier(0)
    with torch.no_grad():
        assert model.eval()(torch.randn(1, 3, 32, 32)).shape == (1, model.head_hidden_size)
    model = timm.create_model("overlock_xt", num_classes=3, **TINY)
    optimizer = create_optimizer_v2(model, "adamw", lr=1e-3, weight_decay=0.05, layer_decay=0.8)
    decayed = {id(p) for g in optimizer.param_groups if g["weight_decay"] > 0 for p in g["params"]}
    assert id(model.focus_stages[0].blocks[0].rpb1) not in decayed and id(model.stem[0].weight) in decayed
    assert len({g["lr_scale"] for g in optimizer.param_groups}) > 5  # stem, blocks and heads get their own scales
    model.set_grad_checkpointing()
    out = model.train()(torch.randn(2, 3, 32, 32))
    overlock_loss(out, torch.tensor([0, 2])).backward()


def test_reparameterize_keeps_outputs():
    torch.manual_seed(0)
    model = randomize(timm.create_model("overlock_xt", num_classes=10, **TINY), seed=3).eval()
    x = torch.randn(2, 3, 40, 56)
    with torch.no_grad():
        before = model(x)
        reparameterize_model(model, inplace=True)  # calls model.reparameterize(), as for timm's models
        after = model(x)
    assert (before[0] - before[1]).abs().max() > 0.1  # the logits depend on the input
    torch.testing.assert_close(after, before, atol=1e-5, rtol=1e-5)
    assert sorted(model.state_dict()) == sorted(OverLoCK(**TINY, num_classes=10, deploy=True).state_dict())


def test_official_key_mapping_round_trip(official):
    torch.manual_seed(0)
    model = randomize(OverLoCK(**official["config"]), seed=4).eval()
    state = to_official_state_dict(model)
    assert set(state) == set(official["state_dict"])  # exactly the official key names
    assert {k.split(".")[0] for k in state} == {"patch_embed1", "patch_embed2", "patch_embed3", "patch_embed4",
                                                "patch_embedx", "blocks1", "blocks2", "blocks3", "blocks4",
                                                "sub_blocks3", "sub_blocks4", "high_level_proj", "head", "aux_head"}
    x = torch.randn(1, 3, 64, 64)
    with torch.no_grad():
        restored = load_official_checkpoint(OverLoCK(**official["config"]), dict(state_dict=state)).eval()
        torch.testing.assert_close(restored(x), model(x), atol=0, rtol=0)
        model.reparameterize()
        deployed_state = to_official_state_dict(model)
        assert set(deployed_state) == set(official["reparam_state_dict"])
        restored = load_official_checkpoint(OverLoCK(**official["config"]), dict(model=deployed_state)).eval()
        torch.testing.assert_close(restored(x), model(x), atol=0, rtol=0)


def test_checkpoint_errors_name_the_keys(official, tmp_path):
    with pytest.raises(ParameterError, match=r"missing keys \['focus_stages\.0\.blocks\.2\."):
        load_official_checkpoint(OverLoCK(**{**official["config"], "sub_depth": [3, 2]}), official["state_dict"])
    with pytest.raises(ParameterError, match=r"unexpected keys \['focus_stages\.0\.blocks\.1\."):
        load_official_checkpoint(OverLoCK(**{**official["config"], "sub_depth": [1, 2]}), official["state_dict"])
    path = tmp_path / "ckpt.pth"
    torch.save(dict(state_dict=official["state_dict"]), path)
    load_official_checkpoint(OverLoCK(**official["config"]), path)
    no_aux = load_official_checkpoint(OverLoCK(**official["config"], use_ds=False), path)  # aux weights dropped
    assert no_aux.aux_head is None


@pytest.mark.parametrize("form", ["state_dict", "reparam_state_dict"])
def test_logits_match_official_code(official, form):
    model = load_official_checkpoint(OverLoCK(**official["config"]), official[form]).eval()
    assert model.stages[0].blocks[0].proj[1].deploy == (form == "reparam_state_dict")
    expected = official["logits" if form == "state_dict" else "reparam_logits"]
    with torch.no_grad():
        for name, x in official["inputs"].items():
            torch.testing.assert_close(model(x.float() * official["input_scale"]), expected[name], atol=1e-5, rtol=1e-5)


def test_reparameterize_matches_official_reparam(official):
    model = load_official_checkpoint(OverLoCK(**official["config"]), official["state_dict"])
    model.reparameterize()
    ours = to_official_state_dict(model)
    assert set(ours) == set(official["reparam_state_dict"])
    for key, value in official["reparam_state_dict"].items():
        if value.is_floating_point():  # the fixture stores the official folded weights rounded to float16
            torch.testing.assert_close(ours[key].half(), value, atol=1e-3, rtol=1e-3, msg=key)


def test_timm_pretrained_path_uses_the_filter(official):
    config = official["config"]
    overlay = dict(state_dict=official["reparam_state_dict"], num_classes=config["num_classes"])
    model = timm.create_model("overlock_xt", pretrained=True, pretrained_cfg_overlay=overlay, **config).eval()
    x = official["inputs"]["input"].float() * official["input_scale"]
    with torch.no_grad():
        torch.testing.assert_close(model(x), official["reparam_logits"]["input"], atol=1e-5, rtol=1e-5)
    # other class count and input channels: timm drops both classifiers and folds the stem over the channels
    adapted = timm.create_model("overlock_xt", pretrained=True, pretrained_cfg_overlay=dict(state_dict=official["state_dict"]),
                                **{**config, "num_classes": 4, "in_chans": 1})
    assert adapted.stem[0].weight.shape[1] == 1 and adapted.aux_head.fc.out_channels == 4
    assert torch.equal(adapted.stages[1].blocks[0].dwconv.weight, official["state_dict"]["blocks2.0.dwconv.weight"].float())
