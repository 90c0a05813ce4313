"""Data augmentation of image batches, on the run's device, a whole batch at a time: a
table from ``data.augment=<name>`` to what it does. Adding one is a row of ``AUGMENTS``
(and a value of the ``data.augment`` key).

| name      | what                                                                                |
| --------- | ----------------------------------------------------------------------------------- |
| none      | the batch as it is                                                                  |
| crop_flip | a random crop of the image zero-padded by ``data.augment_pad`` pixels on each side, |
|           | then (``data.augment_flip``) a horizontal flip with probability 1/2                 |

"Zero-padding" is in pixel space, as torchvision's ``RandomCrop(padding=...)`` pads a raw
image with black: the padding is the value a black pixel has after ``data.standardize``.
Crop and flip are one gather over the padded batch, from per-sample offsets and flips
drawn from the augmentation's own generator (seeded from the run's seed, its state in the
checkpoint), so the same seed gives the same batches and a resumed run the batches of an
uninterrupted one. Only training batches are augmented: evaluation and the probes see the
data as it is.

A flip is refused where it changes what a class looks like (digits, MNIST, the synthetic
class templates: ``Dataset.flip_keeps_class`` in data.py).
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import Enum
from typing import Any, Callable, Optional

from .checks import option
from .inapplicable import NOT_APPLICABLE

STREAM = 0x617567  # the augmentation's random stream, apart from shuffling's and dropout's



def active(d) -> bool:
    """Whether ``d`` (the data config) changes training batches at all."""
    name = option(d.get("augment", "none"))
    return name != "none" and not (name == "crop_flip" and d.augment_pad == 0 and not d.augment_flip)


class CropFlip:
    """``crop_flip`` of (B, C, H, W) batches on their device; see the module docstring."""

    def __init__(self, pad: int, flip: bool, blank, seed: int, device):
        # numpy, torch: only when a run builds it; this table is read at start-up (train --help)
        import numpy as np
        import torch

        self.pad, self.flip = int(pad), bool(flip)
        self.blank = blank.to(device=device, dtype=torch.float32).view(1, -1, 1, 1)  # (1, C, 1, 1)
        self.generator = torch.Generator(device=device)
        self.generator.manual_seed(int(np.random.SeedSequence([seed, STREAM]).generate_state(1, np.uint64)[0]))
        self._grid: dict = {}

    def _positions(self, h: int, w: int, device):
        # torch: only in a run; this table is read at start-up (train --help)
        import torch

        key = (h, w)
        if key not in self._grid:
            self._grid[key] = (torch.arange(h, device=device), torch.arange(w, device=device),
                               torch.arange(w - 1, -1, -1, device=device))
        return self._grid[key]

    def __call__(self, x):
        # torch: only in a run; this table is read at start-up (train --help)
        import torch

        b, c, h, w = x.shape
        p, g = self.pad, self.generator
        rows, cols, mirrored = self._positions(h, w, x.device)
        offsets = torch.randint(0, 2 * p + 1, (2, b, 1), generator=g, device=x.device)  # (2, B, 1): dy, dx
        if self.flip:
            flipped = torch.rand((b, 1), generator=g, device=x.device) < 0.5
            cols = torch.where(flipped, mirrored, cols)  # (B, W)
        width = w + 2 * p
        index = ((rows + offsets[0]) * width)[:, :, None] + (cols + offsets[1])[:, None, :]  # (B, H, W)
        padded = self.blank.to(x.dtype).expand(b, c, h + 2 * p, width).clone()
        padded[:, :, p:p + h, p:p + w] = x
        return padded.flatten(2).gather(2, index.view(b, 1, h * w).expand(b, c, h * w)).view(b, c, h, w)

    def state_dict(self) -> dict:
        return {"generator": self.generator.get_state()}

    def load_state_dict(self, state: dict) -> None:
        self.generator.set_state(state["generator"])


def _crop_flip(d, blank, seed: int, device) -> CropFlip:
    return CropFlip(d.augment_pad, d.augment_flip, blank, seed, device)


@dataclass(frozen=True)
class Augmentation:
    summary: str
    build: Optional[Callable[[Any, Any, int, Any], Callable]]  # (data cfg, blank (C,), seed, device) -> batch -> batch


AUGMENTS: dict[str, Augmentation] = {
    "none": Augmentation("the batch as it is", None),
    "crop_flip": Augmentation("random crop after padding by data.augment_pad pixels, horizontal flip "
                              "(data.augment_flip)", _crop_flip),
}
Augment = Enum("Augment", {name: name for name in AUGMENTS})  # the type Hydra checks values against


def build_augment(d, blank, seed: int, device):
    """The augmentation of ``d`` (the data config) for training batches, or None when it
    would leave them as they are."""
    if not active(d):
        return None
    return AUGMENTS[option(d.augment)].build(d, blank, seed, device)


def same(config: dict) -> dict:
    """A resolved config with the augmentation's settings written one way: without an
    augmentation (none, or a crop of no padding without flips) they cannot change the run."""
    d = config.get("data")
    if not isinstance(d, dict) or "augment" not in d:
        return config
    if d["augment"] == "none" or (not d.get("augment_pad") and d.get("augment_flip") is False):
        d = {**d, "augment": "none", "augment_pad": NOT_APPLICABLE, "augment_flip": NOT_APPLICABLE}
        return {**config, "data": d}
    return config
