"""The data axis: a table from ``data=<name>`` to its schema, its loader and its
constraints, and ``load_data``: load, split, standardise, put on the run's device.
Adding a data set is one row of ``DATASETS`` and one file ``conf/data/<name>.yaml``.

Every data set here is small enough to live whole on the device; training batches are
taken by indexing a shuffled permutation (see ``trainer.py``), with no per-sample Python.

| data           | source                                        | input shape   | classes   |
| -------------- | --------------------------------------------- | ------------- | --------- |
| digits         | scikit-learn's bundled 8x8 digits (no network) | (1, 8, 8)     | 10        |
| blobs          | generated Gaussian classes                    | (n_features,) | n_classes |
| synthetic      | generated images: class mean + noise          | data.shape    | n_classes |
| mnist          | torchvision.datasets.MNIST under data.root     | (1, 28, 28)   | 10        |
| fashion_mnist  | torchvision.datasets.FashionMNIST              | (1, 28, 28)   | 10        |
| cifar10        | torchvision.datasets.CIFAR10                   | (3, 32, 32)   | 10        |

digits, blobs and synthetic are split into train/validation with a stratified, fixed
split (``data.split_seed``); the torchvision sets hold ``data.val_fraction`` of their
official training split out for validation and keep their official test split as
``test``. Pixel values are scaled to [0, 1]; ``data.standardize=true`` then z-scores
inputs with training-split statistics: per channel for images, per feature for vectors.
The loaders are in ``datasets.py``, imported (with torch) only when data is loaded.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Callable, List, Optional

from omegaconf import MISSING

from . import checks
from .checks import option
from .augment import Augment, active
from .errors import UsageError

if TYPE_CHECKING:
    from .datasets import Raw, Split


# --- the schemas ---------------------------------------------------------------------------


@dataclass
class DataConfig:
    name: str = MISSING
    standardize: bool = MISSING
    """z-score inputs with training-split statistics"""
    val_fraction: float = MISSING
    """share of the samples held out for validation (stratified)"""
    split_seed: int = MISSING
    """seed of the train/validation split; fixed so every run sees the same split"""


@dataclass
class ImageDataConfig(DataConfig):
    augment: Augment = MISSING
    """augmentation of training batches, on the device: none, or crop_flip (random crop after
    padding, horizontal flip); evaluation and probes see the data as it is"""
    augment_pad: int = MISSING
    """crop_flip: pixels of black padding on each side before the random crop (4 for 32x32)"""
    augment_flip: bool = MISSING
    """crop_flip: mirror half the images left-right (refused where a mirror changes the class)"""


@dataclass
class DigitsConfig(ImageDataConfig):
    name: str = "digits"


@dataclass
class BlobsConfig(DataConfig):
    name: str = "blobs"
    n_samples: int = MISSING
    """samples in all, split evenly over the classes"""
    n_classes: int = MISSING
    n_features: int = MISSING
    separation: float = MISSING
    """distance between neighbouring class centres, in units of cluster_std"""
    cluster_std: float = MISSING
    feature_scale: List[float] = MISSING
    """per-feature multiplier applied after generation (one value, or one per feature)"""
    feature_shift: List[float] = MISSING
    """per-feature offset applied after scaling (one value, or one per feature)"""
    seed: int = MISSING
    """seed of the generator; fixed so every run sees the same data"""


@dataclass
class SyntheticConfig(ImageDataConfig):
    name: str = "synthetic"
    shape: List[int] = MISSING
    """shape of one input: [C, H, W] images (for the CNN or the MLP), or [n] feature vectors"""
    n_samples: int = MISSING
    """samples in all, split evenly over the classes"""
    n_classes: int = MISSING
    noise: float = MISSING
    """std of the Gaussian noise added to the class's mean image (whose values are standard normal)"""
    seed: int = MISSING
    """seed of the generator; fixed so every run sees the same data"""


@dataclass
class TorchvisionDataConfig(ImageDataConfig):
    root: str = MISSING
    """directory holding the data set's files (torchvision's layout)"""
    download: bool = MISSING
    """fetch the files into root when they are missing"""


# --- constraints beyond the types ---------------------------------------------------------


def _check_blobs(d) -> None:
    checks.integer("data.n_classes", d.n_classes, 2)
    checks.integer("data.n_features", d.n_features, 1)
    checks.integer("data.n_samples", d.n_samples, 4 * d.n_classes)
    checks.number("data.separation", d.separation, 0)
    checks.number("data.cluster_std", d.cluster_std, 0, lo_open=True)
    checks.per_feature("data.feature_scale", d.feature_scale, d.n_features)
    checks.per_feature("data.feature_shift", d.feature_shift, d.n_features)
    checks.integer("data.seed", d.seed, 0, checks.SEED_MAX)


def _check_synthetic(d) -> None:
    if len(d.shape) not in (1, 3) or not all(isinstance(s, int) and s >= 1 for s in d.shape):
        checks.fail("data.shape", d.shape, "[C,H,W] (images) or [n] (feature vectors), positive integers")
    checks.integer("data.n_classes", d.n_classes, 2)
    checks.integer("data.n_samples", d.n_samples, 4 * d.n_classes)
    checks.number("data.noise", d.noise, 0)
    checks.integer("data.seed", d.seed, 0, checks.SEED_MAX)



def _check_torchvision(d) -> None:
    if not str(d.root).strip():
        checks.fail("data.root", "''", "a directory (an empty value would read the working directory)")


# --- the table -------------------------------------------------------------------------------


def _load(name: str, *args) -> Callable[[Any], "Raw"]:
    """The loader ``name`` of datasets.py (given ``args`` after the config), imported (with
    torch) when called."""
    def load(cfg):
        # datasets.py imports numpy and torch: only when data are loaded, not at start-up
        from . import datasets

        return getattr(datasets, name)(cfg, *args)
    return load


_MNIST_FILES = "train-images-idx3-ubyte, train-labels-idx1-ubyte, t10k-*"


@dataclass(frozen=True)
class Dataset:
    label: str
    summary: str
    schema: type
    load: Callable[[Any], "Raw"]
    inputs: str  # "images" (C, H, W), "vectors", or "data.shape" (images when it has three entries)
    check: Optional[Callable[[Any], None]] = None
    schema_name: str = ""  # the ConfigStore name of its schema, when rows share one (default: the row's)
    flip_keeps_class: bool = False  # a left-right mirror of an image is still of its class (data.augment_flip)
    mirror: str = ""  # why not, when it is not: what a mirror does to its images


DATASETS: dict[str, Dataset] = {
    "digits": Dataset("digits", "scikit-learn's bundled 8x8 handwritten digits (1797 samples, 10 classes)",
                      DigitsConfig, _load("digits"), inputs="images", mirror="a mirrored digit is another shape"),
    "blobs": Dataset("blobs", "generated Gaussian classes (feature vectors)", BlobsConfig, _load("blobs"),
                     inputs="vectors", check=_check_blobs),
    "synthetic": Dataset("synthetic", "generated images (or vectors): a class's mean plus noise", SyntheticConfig,
                         _load("synthetic"), inputs="data.shape", check=_check_synthetic,
                         mirror="a mirrored class template is another random image"),
    "mnist": Dataset("MNIST", "torchvision's MNIST from data.root", TorchvisionDataConfig,
                     _load("torchvision_set", "MNIST", "MNIST/raw", _MNIST_FILES), inputs="images",
                     check=_check_torchvision, schema_name="torchvision", mirror="a mirrored digit is another shape"),
    "fashion_mnist": Dataset("Fashion-MNIST", "torchvision's FashionMNIST from data.root", TorchvisionDataConfig,
                             _load("torchvision_set", "FashionMNIST", "FashionMNIST/raw", _MNIST_FILES),
                             inputs="images", check=_check_torchvision, schema_name="torchvision",
                             flip_keeps_class=True),
    "cifar10": Dataset("CIFAR-10", "torchvision's CIFAR10 from data.root", TorchvisionDataConfig,
                       _load("torchvision_set", "CIFAR10", "cifar-10-batches-py",
                             "data_batch_1..5, test_batch, batches.meta"),
                       inputs="images", check=_check_torchvision, schema_name="torchvision",
                       flip_keeps_class=True),
}


def check_augment(d) -> None:
    """``data.augment`` and its settings: image data only, a flip only where it keeps the class."""
    if "augment_pad" in d:
        checks.integer("data.augment_pad", d.augment_pad, 0)
    if not active(d):
        return
    row = DATASETS[d.name]
    if row.inputs == "vectors" or (row.inputs == "data.shape" and len(d.shape) != 3):
        raise UsageError(f"data.augment={option(d.augment)} is not allowed with data={d.name} of feature vectors: "
                         f"it crops and mirrors images; allowed: data.augment=none")
    if d.augment_flip and not row.flip_keeps_class:
        raise UsageError(f"data.augment_flip=true is not allowed with data={d.name}: {row.mirror}, so a flip would "
                         f"change what the class looks like; allowed: data.augment_flip=false")


@dataclass
class Data:
    train: "Split"
    val: "Split"
    test: Optional["Split"]
    input_shape: tuple[int, ...]
    num_classes: int
    blank: Any = None  # images: (C,) the value of a black pixel after standardization (augmentation's padding)


def load_data(cfg, device="cpu") -> Data:
    """``cfg`` is the ``data`` config node."""
    # datasets.py and torch: only when data are loaded, not at start-up (train --help)
    from .datasets import Split, standardize, stratified_split
    import torch

    raw = DATASETS[cfg.name].load(cfg)
    classes = int(raw.y.max()) + 1
    counts = torch.bincount(raw.y, minlength=classes)
    n_val = math.ceil(cfg.val_fraction * len(raw.y))  # as scikit-learn's splitter counts it
    if n_val < classes or len(raw.y) - n_val < classes or int(counts.min()) < 2:
        raise UsageError(
            f"data.val_fraction={cfg.val_fraction} leaves a split without every class "
            f"({len(raw.y)} samples, {classes} classes); allowed: a fraction that gives each split "
            f"at least one sample per class"
        )
    tr, va = stratified_split(raw.y, cfg.val_fraction, cfg.split_seed)
    train, val = Split(raw.x[tr], raw.y[tr]), Split(raw.x[va], raw.y[va])
    blank = torch.zeros(raw.x.shape[1]) if raw.x.dim() == 4 else None
    if cfg.standardize:
        mean, std = standardize(train, val, raw.test)
        if blank is not None:
            blank = (blank - mean.flatten()) / std.flatten()
    test = raw.test.to(device) if raw.test is not None else None
    return Data(train.to(device), val.to(device), test, tuple(raw.x.shape[1:]), classes, blank)
