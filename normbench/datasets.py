"""The data sets themselves: how each is read or generated, and the stratified split.

Every loader returns the pool the train/validation split is drawn from (and the official
test split, where the data set has one) as tensors: images as float (N, C, H, W), feature
vectors as (N, F), labels int64. ``data.py`` holds the table that names them.

scikit-learn's digits and its ``make_blobs`` and stratified split are written out here
(same draws in the same order; tests check each against scikit-learn) because importing
scikit-learn takes about 2 s: a run on the bundled data imports none of it.
"""

from __future__ import annotations

import gzip
import importlib.util
import math
import os
from dataclasses import dataclass
from typing import Optional

import numpy as np
import torch

from .errors import UsageError


@dataclass
class Split:
    x: torch.Tensor  # (N, *input_shape) float32
    y: torch.Tensor  # (N,) int64

    def __len__(self) -> int:
        return len(self.y)

    def to(self, device) -> "Split":
        return Split(self.x.to(device), self.y.to(device))


@dataclass
class Raw:
    """A data set before splitting: the pool train/val is drawn from, and an optional test split."""
    x: torch.Tensor
    y: torch.Tensor
    test: Optional[Split] = None


def digits_arrays() -> tuple[np.ndarray, np.ndarray]:
    """scikit-learn's digits as ``load_digits()`` gives them: images (1797, 8, 8) float64
    and targets (1797,) int64, read straight from the file scikit-learn ships
    (``sklearn/datasets/data/digits.csv.gz``, found without importing scikit-learn: its
    import pulls in scipy and pandas, about 2 s). If that file is missing or not what
    is expected, ``load_digits()`` itself is used; a test checks both give the same arrays."""
    spec = importlib.util.find_spec("sklearn")
    locations = list(spec.submodule_search_locations or []) if spec is not None else []
    for where in locations:
        path = os.path.join(where, "datasets", "data", "digits.csv.gz")
        try:
            with gzip.open(path, mode="rt", encoding="utf-8") as f:
                table = np.loadtxt(f, delimiter=",")  # as load_digits reads it
        except (OSError, ValueError, EOFError):
            continue
        if table.shape != (1797, 65) or not np.array_equal(table, np.floor(table)):
            continue
        pixels, target = table[:, :-1], table[:, -1]
        if pixels.min() >= 0 and pixels.max() <= 16 and set(np.unique(target)) == set(range(10)):
            return pixels.reshape(-1, 8, 8), target.astype(np.int64)
    # scikit-learn (~2 s, scipy and pandas): only when its digits file cannot be read directly
    from sklearn.datasets import load_digits

    bunch = load_digits()
    return bunch.images, bunch.target.astype(np.int64)


def digits(cfg) -> Raw:
    images, target = digits_arrays()
    x = torch.from_numpy(images.astype(np.float32) / 16.0).unsqueeze(1)  # (N, 1, 8, 8)
    return Raw(x, torch.from_numpy(target))


def _per_feature(values, n: int) -> np.ndarray:
    return np.broadcast_to(np.asarray(list(values), dtype=np.float64), (n,))


def blobs(cfg) -> Raw:
    """Gaussian classes with centres ``separation * cluster_std`` apart (on a line for two
    classes, at random for more), then scaled and shifted per feature, so that the raw
    features sit off-centre and on different scales."""
    rng = np.random.default_rng(cfg.seed)
    k, d, step = cfg.n_classes, cfg.n_features, cfg.separation * cfg.cluster_std
    if k == 2:
        centers = np.zeros((2, d))
        centers[:, 0] = [-step / 2, step / 2]
    else:
        centers = rng.normal(0.0, step, size=(k, d))
    x, y = make_blobs(cfg.n_samples, centers, cfg.cluster_std, cfg.seed)
    x = x * _per_feature(cfg.feature_scale, d) + _per_feature(cfg.feature_shift, d)
    return Raw(torch.from_numpy(x.astype(np.float32)), torch.from_numpy(y.astype(np.int64)))


def synthetic(cfg) -> Raw:
    """Each class a fixed random mean input (standard normal values), each sample its
    class's mean plus ``noise`` times standard normal noise; classes in equal numbers."""
    g = torch.Generator().manual_seed(cfg.seed)
    shape = tuple(cfg.shape)
    means = torch.randn((cfg.n_classes, *shape), generator=g)
    y = (torch.arange(cfg.n_samples) % cfg.n_classes)[torch.randperm(cfg.n_samples, generator=g)]
    x = means[y].add_(torch.randn((cfg.n_samples, *shape), generator=g), alpha=cfg.noise)
    return Raw(x, y)


def make_blobs(n_samples: int, centers: np.ndarray, cluster_std: float, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """``sklearn.datasets.make_blobs(n_samples, centers=centers, cluster_std=cluster_std,
    random_state=seed)``, the same draws in the same order (BSD-3, scikit-learn 1.x),
    written out because importing scikit-learn takes about 2 s. A test checks both agree."""
    rng = np.random.RandomState(seed)
    k, d = centers.shape
    per_center = [n_samples // k + (1 if i < n_samples % k else 0) for i in range(k)]
    x = np.empty((n_samples, d), dtype=np.float64)
    y = np.empty(n_samples, dtype=int)
    start = 0
    for i, n in enumerate(per_center):
        x[start:start + n] = rng.normal(loc=centers[i], scale=cluster_std, size=(n, d))
        y[start:start + n] = i
        start += n
    order = np.arange(n_samples)  # sklearn.utils.shuffle
    rng.shuffle(order)
    return x[order], y[order]


def _images(data: np.ndarray, targets: np.ndarray) -> tuple[torch.Tensor, torch.Tensor]:
    """A torchvision data set's whole array as float (N, C, H, W) in [0, 1], labels int64."""
    x = torch.as_tensor(data)
    x = x.unsqueeze(1) if x.ndim == 3 else x.permute(0, 3, 1, 2)  # MNIST (N,H,W); CIFAR (N,H,W,C)
    return x.float().div_(255.0).contiguous(), torch.as_tensor(targets, dtype=torch.int64)


def _files(ds, where: str, split: str) -> str:
    """The files a torchvision data set's split was read from, as a refusal names them."""
    legacy = getattr(ds, "training_file" if split == "train" else "test_file", None)
    processed = getattr(ds, "processed_folder", None)
    if legacy and processed and os.path.isfile(os.path.join(processed, legacy)):  # MNIST's old processed/*.pt
        return os.path.join(processed, legacy)
    if hasattr(ds, "train_list"):  # CIFAR-10's pickled batches
        return os.path.join(where, "data_batch_1..5" if split == "train" else "test_batch")
    prefix = "train" if split == "train" else "t10k"
    return f"{os.path.join(where, prefix)}-images-idx3-ubyte and {prefix}-labels-idx1-ubyte"


def _arrays(ds, name: str, where: str, split: str) -> tuple[np.ndarray, np.ndarray]:
    """A torchvision data set's images and labels, after checking that its files agree with
    themselves: as many labels as images, integer labels among its classes, images as an
    (N, H, W) or (N, H, W, C) array. Refused in one line naming the files and the reason."""
    data, targets = np.asarray(ds.data), np.asarray(ds.targets)
    classes = len(getattr(ds, "classes", None) or range(10))

    def refuse(why: str):
        raise UsageError(f"data={name}: {_files(ds, where, split)}: {why}; allowed: {type(ds).__name__} files in "
                         f"torchvision's format (as many labels as images, labels 0..{classes - 1}, images of "
                         f"one shape)")

    if data.ndim not in (3, 4) or len(data) == 0:
        refuse(f"its images are an array of shape {data.shape}, not (N, H, W) or (N, H, W, C)")
    if targets.ndim != 1 or len(targets) != len(data):
        refuse(f"{len(data)} images but {targets.size} labels")
    if targets.dtype.kind not in "iu":
        refuse(f"its labels are {targets.dtype}, not integers")
    wrong = targets[(targets < 0) | (targets >= classes)]
    if len(wrong):
        refuse(f"label {wrong[0]} is not a class of {type(ds).__name__} ({len(wrong)} such labels)")
    return data, targets


def torchvision_set(cfg, cls_name: str, folder: str, files: str) -> Raw:
    """torchvision's data set ``cls_name`` from ``data.root``, whose ``folder`` holds ``files``."""
    # torchvision: only for its data sets; a run of digits or blobs imports torch and tensorboard only
    from torchvision import datasets

    cls = getattr(datasets, cls_name)
    where = os.path.join(cfg.root, folder)
    try:
        train = cls(cfg.root, train=True, download=cfg.download)
        test = cls(cfg.root, train=False, download=cfg.download)
    except Exception as e:  # torchvision: missing files, a failed download, a truncated or foreign file
        reason = " ".join(str(e).split())
        if not cfg.download and ("not found" in reason.lower() or "corrupted" in reason.lower()):
            raise UsageError(
                f"data={cfg.name}: no readable {cls_name} files in {where} (data.root={cfg.root}); "
                f"allowed: put {files} there, or pass data.download=true"
            ) from None
        if cfg.download:
            raise UsageError(f"data={cfg.name}: could not download {cls_name} into {where} ({reason}); "
                             f"allowed: put {files} there yourself") from None
        raise UsageError(f"data={cfg.name}: could not read the files in {where} ({type(e).__name__}: {reason}); "
                         f"allowed: {cls_name} files in torchvision's format") from None
    (data, targets), (test_data, test_targets) = (_arrays(ds, cfg.name, where, split)
                                                  for ds, split in ((train, "train"), (test, "test")))
    if test_data.shape[1:] != data.shape[1:]:
        raise UsageError(f"data={cfg.name}: {_files(test, where, 'test')}: its images are of shape "
                         f"{test_data.shape[1:]}, the training images of shape {data.shape[1:]}; allowed: "
                         f"{cls_name} files in torchvision's format (images of one shape)")
    x, y = _images(data, targets)
    tx, ty = _images(test_data, test_targets)
    return Raw(x, y, Split(tx, ty))


def stratified_split(y: torch.Tensor, val_fraction: float, seed: int) -> tuple[torch.Tensor, torch.Tensor]:
    """Indices (train, val), sorted, with class proportions kept in both: the split
    ``sklearn.model_selection.train_test_split(..., test_size=val_fraction, stratify=y,
    random_state=seed)`` makes (StratifiedShuffleSplit's algorithm and random draws, BSD-3,
    scikit-learn 1.x), written out here because importing scikit-learn takes about 2 s.
    A test checks that both give the same split."""
    labels = y.numpy()
    n = len(labels)
    n_val = math.ceil(val_fraction * n)
    n_train = n - n_val
    _, y_indices, class_counts = np.unique(labels, return_inverse=True, return_counts=True)
    class_indices = np.split(np.argsort(y_indices, kind="stable"), np.cumsum(class_counts)[:-1])
    rng = np.random.RandomState(seed)
    n_i = _approximate_mode(class_counts, n_train, rng)
    t_i = _approximate_mode(class_counts - n_i, n_val, rng)
    train, val = [], []
    for i in range(len(class_counts)):
        members = class_indices[i].take(rng.permutation(class_counts[i]), mode="clip")
        train.extend(members[:n_i[i]])
        val.extend(members[n_i[i]:n_i[i] + t_i[i]])
    return torch.from_numpy(np.sort(np.asarray(train, dtype=np.int64))), torch.from_numpy(
        np.sort(np.asarray(val, dtype=np.int64)))


def _approximate_mode(class_counts: np.ndarray, n_draws: int, rng: np.random.RandomState) -> np.ndarray:
    """How many of each class to draw so that ``n_draws`` keeps the class proportions, ties
    broken at random (scikit-learn's ``utils.extmath._approximate_mode``)."""
    continuous = class_counts / class_counts.sum() * n_draws
    floored = np.floor(continuous)
    need_to_add = int(n_draws - floored.sum())
    if need_to_add > 0:
        remainder = continuous - floored
        for value in np.sort(np.unique(remainder))[::-1]:
            (inds,) = np.where(remainder == value)
            add_now = min(len(inds), need_to_add)
            inds = rng.choice(inds, size=add_now, replace=False)
            floored[inds] += 1
            need_to_add -= add_now
            if need_to_add == 0:
                break
    return floored.astype(int)


def standardize(train: Split, *others: Optional[Split]) -> tuple[torch.Tensor, torch.Tensor]:
    """z-score in place with the training split's mean and std: per channel for images
    (over samples and space), per feature for vectors; returns that mean and std."""
    dims = (0, 2, 3) if train.x.ndim == 4 else (0,)
    mean = train.x.mean(dim=dims, keepdim=True)
    std = train.x.std(dim=dims, keepdim=True).clamp_min(1e-8)
    for split in (train, *others):
        if split is not None:
            split.x.sub_(mean).div_(std)
    return mean, std
