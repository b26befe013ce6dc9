"Tests of workbench.dynamics.groups and workbench.dynamics.grokking (groups, Fourier analysis, training, stages)."
import math

import numpy as np
import pandas as pd
import pytest
import torch

from conftest import default_sigint
from workbench.core import ParameterError
from workbench.dynamics.grokking import (GrokkingConfig, GroupArithmeticNet, centred_targets, detect_stages,
                                         frequency_coverage, grokking_loss, node_energy, ridge_top_layer,
                                         train_grokking)
from workbench.dynamics.groups import (check_group_axioms, critical_train_fraction, critical_train_size, cyclic_group,
                                       dihedral_group, fourier_basis, fourier_entropy, fourier_power, group_from_spec,
                                       group_task, product_group, split_task, symmetric_group)

GROUPS = [cyclic_group(2), cyclic_group(9), product_group(2, 3, 4), product_group(3, 3), symmetric_group(2),
          symmetric_group(3), symmetric_group(4), dihedral_group(3), dihedral_group(8)]


@pytest.mark.parametrize("group", GROUPS, ids=lambda g: g.name)
def test_group_axioms_and_irreps(group):
    assert check_group_axioms(group)
    # each row and column of a group table is a permutation (Latin square)
    ar = torch.arange(group.order)
    assert (group.table.sort(dim=1).values == ar).all() and (group.table.sort(dim=0).values == ar[:, None]).all()
    dims = np.array(group.irrep_dims)
    assert (dims**2).sum() == group.order
    bases = fourier_basis(group)
    Q = np.concatenate(bases, axis=1)
    np.testing.assert_allclose(Q.conj().T @ Q, np.eye(group.order), atol=1e-9)  # orthonormal and complete
    assert (group.max_irrep_dim == 1) == group.is_abelian


def test_axiom_check_rejects_non_groups():
    from workbench.dynamics.groups import FiniteGroup
    # a commutative Latin square with identity 0 that is not associative (order 5 loop)
    loop = torch.tensor([[0, 1, 2, 3, 4], [1, 0, 3, 4, 2], [2, 4, 0, 1, 3], [3, 2, 4, 0, 1], [4, 3, 1, 2, 0]])
    assert not check_group_axioms(FiniteGroup("loop", loop))


def test_known_irrep_dimensions():
    assert symmetric_group(3).irrep_dims == (1, 1, 2)
    assert symmetric_group(4).irrep_dims == (1, 1, 2, 3, 3)
    assert sorted(dihedral_group(5).irrep_dims) == [1, 1, 2, 2]
    assert product_group(2, 3, 4).irrep_dims == (1,) * 24


def test_cyclic_power_is_fft_power():
    M = 31
    u = torch.randn(20, M, dtype=torch.float64)
    expected = np.abs(np.fft.fft(u.numpy(), axis=1)) ** 2
    np.testing.assert_allclose(fourier_power(u, cyclic_group(M)).numpy(), expected / expected.sum(1, keepdims=True),
                               atol=1e-12)
    assert cyclic_group(M).irrep_labels[:3] == ["k=0", "k=1", "k=2"]
    cosine = torch.cos(2 * math.pi * 4 * torch.arange(M) / M)
    assert abs(fourier_entropy(fourier_power(cosine, cyclic_group(M)))[0] - math.log(2)) < 1e-5


def test_group_specs():
    assert [group_from_spec(s).order for s in ("Z23", "23", "z5", "2x3x4", "S4", "D5")] == [23, 23, 5, 24, 24, 10]
    for bad in ("Q8", "S9", "Z1", "", "2x", "D2"):
        with pytest.raises(ParameterError, match="group="):
            group_from_spec(bad)


def test_critical_sizes():
    assert [critical_train_size(cyclic_group(M)) for M in (23, 47, 71, 97, 127)] == [198, 497, 832, 1220, 1691]
    assert round(critical_train_fraction(cyclic_group(23)), 3) == 0.375
    assert critical_train_size(symmetric_group(4)) == round(1.5 * 2.7482 * 24 * math.log(24))


def test_task_and_split():
    g = cyclic_group(23)
    X, y = group_task(g)
    assert X.shape == (529, 2) and bool((y == (X[:, 0] + X[:, 1]) % 23).all())
    train, test = split_task(g, train_fraction=0.9, seed=3)
    assert (len(train), len(test)) == (476, 53) and len(np.intersect1d(train, test)) == 0
    assert (split_task(g, train_fraction=0.9, seed=3)[0] == train).all()
    assert len(split_task(g, critical=True)[0]) == 198
    with pytest.raises(ParameterError, match="exactly one"):
        split_task(g)
    with pytest.raises(ParameterError, match="train_size"):
        split_task(g, train_size=0)


@pytest.mark.parametrize("kwargs, field", [
    (dict(group="A5"), "group"), (dict(train_fraction=0.0), "train_fraction"), (dict(width=-3), "width"),
    (dict(activation="gelu"), "activation"), (dict(loss="l1"), "loss"), (dict(optimizer="rmsprop"), "optimizer"),
    (dict(lr=0.0), "lr"), (dict(steps=1.5), "steps"), (dict(log_every=0), "log_every"),
    (dict(lazy_ridge=1e-3, loss="ce"), "lazy_ridge"), (dict(lazy_ridge=-1.0), "lazy_ridge"), (dict(seed=-1), "seed"),
])
def test_config_validation(kwargs, field):
    with pytest.raises(ParameterError, match=field):
        GrokkingConfig(**kwargs)


def test_mse_loss_is_centred_target_distance():
    logits, y = torch.randn(40, 11), torch.randint(0, 11, (40,))
    o = logits - logits.mean(1, keepdim=True)
    expected = ((o - centred_targets(y, 11)) ** 2).sum(1).mean()
    assert torch.allclose(grokking_loss(logits, y, "mse"), expected, atol=1e-5)


def test_energy_gradient_matches_lazy_ridge_dynamics():
    torch.manual_seed(0)
    X, y = group_task(cyclic_group(13))
    net = GroupArithmeticNet(13, width=24)
    with torch.no_grad():
        net.V.weight.copy_(ridge_top_layer(net.hidden(X), centred_targets(y, 13), eta=1e4))
    loss_grad = torch.autograd.grad(grokking_loss(net(X), y), net.W.weight)[0]
    energy_grad = torch.autograd.grad(node_energy(net, X, y).sum(), net.W.weight)[0]
    assert torch.nn.functional.cosine_similarity(-loss_grad, energy_grad, dim=1).min() > 0.99


class FakeRun:
    def __init__(self, path):
        self.dir, self.logged, self.summary = path, [], {}

    def log(self, step, **metrics):
        self.logged.append((step, metrics))

    def summarize(self, **values):
        self.summary.update(values)


@pytest.mark.parametrize("optimizer, extra", [("adam", {}), ("sgd", {}), ("muon", {}), ("adam", dict(lazy_ridge=1e-2))])
def test_tiny_training_run_logs_and_snapshots(tmp_path, optimizer, extra):
    run = FakeRun(tmp_path)
    cfg = GrokkingConfig(group="S3", width=12, steps=30, log_every=10, snapshot_every=15, optimizer=optimizer, **extra)
    result = train_grokking(cfg, run=run, progress_bar=False)
    assert [s for s, _ in run.logged] == [0, 10, 20, 30]
    names = set(run.logged[0][1])
    assert {"train_loss", "test_loss", "train_acc", "test_acc", "weight_norm_W", "weight_norm_V",
            "fourier_entropy_median", "fourier_entropy_mean", "energy_median", "energy_mean",
            "n_frequencies_covered"} <= names
    assert all(np.isfinite(v) for _, m in run.logged for v in m.values())
    snaps = np.load(tmp_path / "snapshots.npz")
    assert list(snaps["steps"]) == [0, 15, 30]
    assert snaps["power"].shape == (3, 12, 3) and snaps["energy"].shape == (3, 12)
    assert list(snaps["irrep_labels"]) == ["1.0", "1.1", "2.0"]
    assert run.summary["n_train"] + run.summary["n_test"] == 36
    assert len(result.history) == 4 and set(result.stages) >= {"lazy", "independent", "interactive"}


def test_training_learns_and_is_deterministic():
    cfg = GrokkingConfig(group="Z11", width=64, steps=300, log_every=50, train_fraction=0.8)
    a = train_grokking(cfg, progress_bar=False)
    b = train_grokking(cfg, progress_bar=False)
    pd.testing.assert_frame_equal(a.history, b.history)
    assert a.final["train_acc"] == 1.0
    assert a.history["train_loss"].iloc[-1] < 0.1 * a.history["train_loss"].iloc[0]


def test_interrupt_keeps_logged_metrics(tmp_path):
    run = FakeRun(tmp_path)

    def stop(step, metrics):
        if step == 20:
            raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        train_grokking(GrokkingConfig(group="Z5", width=8, steps=100, log_every=10, snapshot_every=10), run=run,
                       callback=stop, progress_bar=False)
    assert [s for s, _ in run.logged] == [0, 10, 20]
    assert list(np.load(tmp_path / "snapshots.npz")["steps"]) == [0, 10, 20]


def test_stage_detection_on_synthetic_history():
    steps = np.arange(0, 5001, 50)
    entropy = np.interp(steps, [0, 800, 2025, 5000], [3.1, 3.1, 0.7, 0.7])
    history = pd.DataFrame(dict(step=steps, fourier_entropy_median=entropy,
                                train_acc=np.where(steps >= 300, 1.0, 0.2), test_acc=np.where(steps >= 2600, 1.0, 0.1),
                                n_frequencies_covered=np.minimum(steps // 200, 11)))
    st = detect_stages(history)
    # 10% of the 2.4-nat drop is done at step 922.5, 90% at step 1902.5
    assert st["lazy"] == (0, 950) and st["independent"] == (950, 1950) and st["interactive"] == (1950, 5000)
    assert (st["memorization_step"], st["generalization_step"], st["grokking_delay"]) == (300, 2600, 2300)
    assert st["coverage_step"] == 2200
    # robust to short, flat, empty or partial histories
    flat = detect_stages(history.assign(fourier_entropy_median=3.0).iloc[:3])
    assert flat["lazy"] == (0, 100) and flat["independent"] is None and flat["memorization_step"] is None
    assert detect_stages(pd.DataFrame())["lazy"] is None
    assert detect_stages(history[["step", "test_acc"]])["generalization_step"] == 2600


def test_frequency_coverage_counts_real_irreps():
    g = cyclic_group(9)
    k = torch.tensor([1, 8, 2, 2])  # k and M−k are one real frequency
    nodes = torch.cos(2 * math.pi * k[:, None] * torch.arange(9) / 9)
    assert frequency_coverage(fourier_power(nodes, g), g) == 2


@pytest.mark.parametrize("sig", ["SIGINT", "SIGTERM", "SIGKILL"])
def test_killed_training_run_keeps_its_metrics_and_is_interrupted(tmp_path, sig):
    "A real training process killed mid-way: its flushed metrics stay in the store and the run reads `interrupted`."
    import signal
    import subprocess
    import sys
    import time

    from workbench.runs import RunStore

    script = ("from workbench.dynamics.grokking import GrokkingConfig, run_grokking\n"
              f"run_grokking(GrokkingConfig(group='Z23', width=64, steps=10**7, log_every=5, snapshot_every=50), root={str(tmp_path)!r})\n")
    child = subprocess.Popen([sys.executable, "-c", script], preexec_fn=default_sigint)
    store = RunStore(tmp_path)
    try:
        deadline = time.time() + 60
        while time.time() < deadline:  # wait until at least one batch of metrics has been flushed
            runs = store.runs()
            if len(runs) and len(store.metrics(runs.run_id[0])) > 0:
                break
            time.sleep(0.2)
        else:
            pytest.fail("the training process logged no metrics within 60 s")
        child.send_signal(getattr(signal, sig))
        child.wait(timeout=30)
    finally:
        child.kill()
    run = store.runs().iloc[0]  # the query reaps a SIGKILLed run
    assert run.status == "interrupted", (run.status, run.error)
    metrics = store.metrics(run.run_id)
    steps = sorted(metrics[metrics.name == "train_loss"].step)
    assert steps[0] == 0 and steps == list(range(0, steps[-1] + 1, 5))  # no gaps up to the last flush
    if sig != "SIGKILL":  # a caught signal also writes the snapshots taken so far
        assert (store.artifact_dir(run.run_id) / "snapshots.npz").exists()
