"""Every full-size model the backbone issues register, as `timm.create_model` builds it: one training step's forward
and backward on a batch of 2 at a small native input size. The notebooks test small configurations; this catches what
only the full ones show (head sizes, stage shapes at small inputs, parameters cut off from the loss)."""
import pytest
import timm
import torch
import torch.nn as nn
import torch.nn.functional as F

import workbench.models  # noqa: F401  registers the workbench models with timm

NUM_CLASSES = 7  # no model's default, so each head must honour num_classes
DUOFORMER_UNUSED = {"fc_norm.weight", "fc_norm.bias"}  # official quirk: fc_norm(CLS) is computed and discarded

# name: (input px, the parameters that get no gradient by design). DuoFormer at 32 px, its smallest input (one region);
# CoSwin/Swin/MLPs at their datasets' 32 or 64 px; VCMamba and OverLoCK (224 px defaults) at 64 px.
MODELS = {
    "duoformer_r50_s2": (32, DUOFORMER_UNUSED),
    "duoformer_r50_s4": (32, DUOFORMER_UNUSED),
    "duoformer_r18_tiny": (32, DUOFORMER_UNUSED),
    "coswin_cifar": (32, set()),
    "coswin_tiny_imagenet": (64, set()),
    "swin_cifar": (32, set()),
    "vcmamba_s": (64, set()),
    "vcmamba_m": (64, set()),
    "vcmamba_b": (64, set()),
    "bmlp_b6_wi512": (32, set()),
    "bmlp_b12_wi1024": (32, set()),
    "smlp_b6_wi512": (32, set()),
    "overlock_xt": (64, set()),
}


def training_outputs(output) -> list[torch.Tensor]:
    "The logits a training forward returns: one tensor, or a dict of heads (VCMamba's distillation, OverLoCK's aux)."
    return list(output.values()) if isinstance(output, dict) else [output]


@pytest.mark.parametrize("name", MODELS)
def test_forward_and_backward(name):
    size, unused = MODELS[name]
    torch.manual_seed(0)
    # stochastic depth off (CoSwin and Swin default to 0.1): a branch dropped for the whole batch would get no gradient
    model = timm.create_model(name, num_classes=NUM_CLASSES, drop_path_rate=0.0).train()
    for module in model.modules():  # timm zero-inits the last BN of each ResNet block, which zeroes the gradients above
        if isinstance(module, nn.modules.batchnorm._BatchNorm):
            nn.init.ones_(module.weight)
    logits = training_outputs(model(torch.randn(2, 3, size, size)))
    assert [tuple(t.shape) for t in logits] == [(2, NUM_CLASSES)] * len(logits)
    sum(F.cross_entropy(t, torch.tensor([1, 5])) for t in logits).backward()
    grads = {n: p.grad for n, p in model.named_parameters() if p.requires_grad}
    assert {n for n, g in grads.items() if g is None} == unused
    bad = [n for n, g in grads.items() if g is not None and not (torch.isfinite(g).all() and g.abs().sum() > 0)]
    assert not bad, f"gradients not finite or all zero: {bad[:10]}"
