"""Data sets as device tensors: shapes, fixed stratified splits, standardisation, and the
torchvision sets read from tiny files in their real formats."""

import pytest
import torch
from torchvision import datasets

from conftest import make_cfg
from datasets_on_disk import write_cifar10, write_mnist
from normbench.data import load_data
from normbench.datasets import digits_arrays, make_blobs, stratified_split
from normbench.errors import UsageError


def test_digits_is_bundled_split_stratified_and_fixed():
    d = load_data(make_cfg().data)
    assert (len(d.train), len(d.val), d.test) == (1437, 360, None)
    assert d.input_shape == (1, 8, 8) and d.num_classes == 10
    assert d.train.x.dtype == torch.float32 and d.train.y.dtype == torch.int64
    # stratified: every class has its share (about 36) of the 360 validation samples
    counts = torch.bincount(d.val.y, minlength=10)
    assert counts.min() >= 34 and counts.max() <= 38
    again = load_data(make_cfg("seed=5").data)  # the training seed does not move the split
    assert torch.equal(again.val.y, d.val.y) and torch.equal(again.val.x, d.val.x)
    other = load_data(make_cfg("data.split_seed=1").data)
    assert not torch.equal(other.val.x, d.val.x)


def test_digits_read_directly_are_exactly_scikit_learns():
    """normbench reads the digits file scikit-learn ships without importing scikit-learn;
    scikit-learn's own loader is the source of truth."""
    import numpy as np
    from sklearn.datasets import load_digits

    images, target = digits_arrays()
    ref = load_digits()
    assert images.dtype == ref.images.dtype and images.shape == ref.images.shape == (1797, 8, 8)
    assert images.tobytes() == ref.images.tobytes()
    assert target.dtype == np.int64 and np.array_equal(target, ref.target)


@pytest.mark.parametrize("fraction,seed", [(0.2, 0), (0.2, 1), (0.1, 7), (0.33, 3), (0.5, 11)])
@pytest.mark.parametrize("labels", ["digits", "uneven"])
def test_stratified_split_is_scikit_learns_train_test_split(labels, fraction, seed):
    import numpy as np
    from sklearn.model_selection import train_test_split

    if labels == "digits":
        y = digits_arrays()[1]
    else:  # uneven classes, ties in the remainders
        y = np.random.RandomState(seed).choice(5, size=203, p=[0.4, 0.3, 0.15, 0.1, 0.05])
    tr, va = stratified_split(torch.from_numpy(y), fraction, seed)
    ref_tr, ref_va = train_test_split(np.arange(len(y)), test_size=fraction, stratify=y, random_state=seed)
    assert tr.tolist() == sorted(ref_tr.tolist()) and va.tolist() == sorted(ref_va.tolist())


@pytest.mark.parametrize("n,k,d,std,seed", [(1000, 2, 2, 1.0, 0), (1001, 3, 5, 0.5, 4), (97, 7, 1, 2.0, 9)])
def test_make_blobs_is_scikit_learns(n, k, d, std, seed):
    import numpy as np
    from sklearn import datasets

    centers = np.random.default_rng(seed).normal(size=(k, d))
    x, y = make_blobs(n, centers, std, seed)
    rx, ry = datasets.make_blobs(n_samples=n, centers=centers, cluster_std=std, random_state=seed)
    assert x.tobytes() == rx.tobytes() and np.array_equal(y, ry)


def test_standardize_uses_training_statistics():
    raw = load_data(make_cfg("data.standardize=false").data)
    assert raw.train.x.min() >= 0 and raw.train.x.max() <= 1
    z = load_data(make_cfg().data)
    assert abs(z.train.x.mean().item()) < 1e-5 and abs(z.train.x.std().item() - 1) < 1e-4
    mean, std = raw.train.x.mean(), raw.train.x.std()
    assert torch.allclose(z.val.x, (raw.val.x - mean) / std, atol=1e-5)  # val uses train's statistics


def test_blobs_default_is_two_2d_classes_off_centre_on_different_scales():
    raw = load_data(make_cfg("data=blobs", "data.standardize=false").data)
    assert raw.input_shape == (2,) and raw.num_classes == 2
    assert (len(raw.train), len(raw.val)) == (800, 200)
    x = torch.cat([raw.train.x, raw.val.x])
    assert abs(x[:, 0].mean().item() - 10) < 0.5 and abs(x[:, 1].mean().item() + 40) < 3
    assert x[:, 1].std() > 10 * x[:, 0].std() / 2
    z = load_data(make_cfg("data=blobs").data)
    assert torch.allclose(z.train.x.mean(0), torch.zeros(2), atol=1e-5)
    assert torch.allclose(z.train.x.std(0), torch.ones(2), atol=1e-4)


def test_blobs_sizes_and_separation_are_configurable():
    d = load_data(make_cfg("data=blobs", "data.n_classes=3", "data.n_features=5", "data.n_samples=300",
                           "data.feature_scale=[1.0]", "data.feature_shift=[0.0]").data)
    assert d.input_shape == (5,) and d.num_classes == 3 and len(d.train) + len(d.val) == 300
    far = load_data(make_cfg("data=blobs", "data.separation=20", "data.standardize=false").data)
    near = load_data(make_cfg("data=blobs", "data.separation=0.5", "data.standardize=false").data)

    def gap(d):
        x, y = d.train.x[:, 0], d.train.y
        return (x[y == 1].mean() - x[y == 0].mean()).abs().item()

    assert gap(far) > 10 * gap(near)


@pytest.mark.parametrize("name,cls", [("mnist", "MNIST"), ("fashion_mnist", "FashionMNIST")])
def test_mnist_family_reads_idx_files_through_torchvision(tmp_path, name, cls):
    write_mnist(tmp_path, folder=cls)
    d = load_data(make_cfg(f"data={name}", f"data.root={tmp_path}", "data.standardize=false").data)
    assert d.input_shape == (1, 28, 28) and d.num_classes == 10
    assert (len(d.train), len(d.val), len(d.test)) == (90, 10, 20)
    assert d.train.x.max() <= 1.0 and d.train.x.min() >= 0.0
    reference = getattr(datasets, cls)(str(tmp_path), train=False)
    assert torch.equal(d.test.y, reference.targets)
    assert torch.allclose(d.test.x[:, 0], reference.data.float() / 255)


def test_cifar10_reads_pickled_batches_through_torchvision(tmp_path, monkeypatch):
    md5 = write_cifar10(tmp_path)
    # torchvision checks each file's md5 against the real data set's; point it at ours
    monkeypatch.setattr(datasets.CIFAR10, "train_list",
                        [[f"data_batch_{i}", md5[f"data_batch_{i}"]] for i in range(1, 6)])
    monkeypatch.setattr(datasets.CIFAR10, "test_list", [["test_batch", md5["test_batch"]]])
    monkeypatch.setattr(datasets.CIFAR10, "meta",
                        {"filename": "batches.meta", "key": "label_names", "md5": md5["batches.meta"]})
    d = load_data(make_cfg("data=cifar10", f"data.root={tmp_path}").data)
    assert d.input_shape == (3, 32, 32) and d.num_classes == 10
    assert (len(d.train), len(d.val), len(d.test)) == (90, 10, 20)
    per_channel = d.train.x.mean(dim=(0, 2, 3))
    assert torch.allclose(per_channel, torch.zeros(3), atol=1e-4)


@pytest.mark.parametrize("name,folder", [("mnist", "MNIST/raw"), ("fashion_mnist", "FashionMNIST/raw"),
                                         ("cifar10", "cifar-10-batches-py")])
def test_missing_files_say_where_to_put_them(tmp_path, name, folder):
    with pytest.raises(UsageError) as e:
        load_data(make_cfg(f"data={name}", f"data.root={tmp_path}").data)
    msg = str(e.value)
    assert "\n" not in msg and str(tmp_path / folder) in msg and "data.download=true" in msg


def test_a_truncated_file_is_refused_in_one_line(tmp_path):
    raw = write_mnist(tmp_path)
    path = raw / "train-images-idx3-ubyte"
    path.write_bytes(path.read_bytes()[:1000])
    with pytest.raises(UsageError) as e:
        load_data(make_cfg("data=mnist", f"data.root={tmp_path}").data)
    assert "\n" not in str(e.value) and "could not read" in str(e.value)


def _mnist_refusal(tmp_path, change) -> str:
    import numpy as np

    from datasets_on_disk import _idx

    raw = write_mnist(tmp_path, n_train=100, n_test=20)
    change(raw, np, _idx)
    with pytest.raises(UsageError) as e:
        load_data(make_cfg("data=mnist", f"data.root={tmp_path}").data)
    assert "\n" not in str(e.value) and "allowed: MNIST files in torchvision's format" in str(e.value)
    return str(e.value)


def _legacy(raw, np, idx):  # torchvision reads processed/training.pt when it is there
    (raw.parent / "processed").mkdir()
    for name in ("training.pt", "test.pt"):
        torch.save((torch.zeros(5), torch.zeros(3)), raw.parent / "processed" / name)


@pytest.mark.parametrize("change, why", [
    (lambda raw, np, idx: idx(raw / "train-labels-idx1-ubyte", np.arange(120) % 10),
     "MNIST/raw/train-images-idx3-ubyte and train-labels-idx1-ubyte: 100 images but 120 labels"),
    (lambda raw, np, idx: idx(raw / "train-labels-idx1-ubyte", np.where(np.arange(100) == 5, 255, np.arange(100) % 10)),
     "train-labels-idx1-ubyte: label 255 is not a class of MNIST (1 such labels)"),
    (lambda raw, np, idx: idx(raw / "t10k-images-idx3-ubyte", np.zeros((20, 14, 14))),
     "MNIST/raw/t10k-images-idx3-ubyte and t10k-labels-idx1-ubyte: its images are of shape (14, 14), the training "
     "images of shape (28, 28)"),
    (_legacy, "MNIST/processed/training.pt: its images are an array of shape (5,), not (N, H, W) or (N, H, W, C)"),
], ids=["more labels than images", "a label of 255", "test images of another shape", "a malformed legacy file"])
def test_data_files_that_contradict_themselves_are_refused_naming_the_file(tmp_path, change, why):
    assert why in _mnist_refusal(tmp_path, change)
