"""Tiny data sets in torchvision's real on-disk formats, made by the tests."""

from __future__ import annotations

import hashlib
import pickle
import struct
from pathlib import Path

import numpy as np


def _idx(path: Path, array: np.ndarray) -> None:
    """An IDX file as MNIST ships it: magic (0, 0, type 0x08 = ubyte, ndim), big-endian dims, data."""
    path.write_bytes(struct.pack(">BBBB", 0, 0, 0x08, array.ndim) + struct.pack(f">{array.ndim}I", *array.shape)
                     + array.astype(np.uint8).tobytes())


def write_mnist(root: Path, folder: str = "MNIST", n_train: int = 100, n_test: int = 20, seed: int = 0) -> Path:
    """root/<folder>/raw/{train,t10k}-{images-idx3,labels-idx1}-ubyte; label i%10 for sample i,
    and images whose brightness encodes the label so a model can learn them."""
    rng = np.random.default_rng(seed)
    raw = root / folder / "raw"
    raw.mkdir(parents=True)
    for prefix, n in (("train", n_train), ("t10k", n_test)):
        labels = np.arange(n) % 10
        images = rng.integers(0, 40, size=(n, 28, 28)) + (labels * 20)[:, None, None]
        _idx(raw / f"{prefix}-images-idx3-ubyte", images)
        _idx(raw / f"{prefix}-labels-idx1-ubyte", labels)
    return raw


def write_cifar10(root: Path, per_batch: int = 20, n_test: int = 20, seed: int = 0) -> dict:
    """root/cifar-10-batches-py/{data_batch_1..5,test_batch,batches.meta} as Python pickles;
    returns the md5 of each file, for torchvision's integrity table."""
    rng = np.random.default_rng(seed)
    folder = root / "cifar-10-batches-py"
    folder.mkdir(parents=True)
    md5 = {}

    def dump(name, obj):
        (folder / name).write_bytes(pickle.dumps(obj))
        md5[name] = hashlib.md5((folder / name).read_bytes()).hexdigest()

    for name, n in [*((f"data_batch_{i}", per_batch) for i in range(1, 6)), ("test_batch", n_test)]:
        labels = [i % 10 for i in range(n)]
        data = rng.integers(0, 255, size=(n, 3 * 32 * 32), dtype=np.uint8)
        dump(name, {"data": data, "labels": labels, "batch_label": name})
    dump("batches.meta", {"label_names": [f"class{i}" for i in range(10)], "num_vis": 3072})
    return md5
