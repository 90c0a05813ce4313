"""The results a report can be about (``--metric``): each one's label, which way is
better, its decimals and what values it can take. No pandas here: ``normbench report
--help`` and its refusals read this table without loading the data stack."""

from __future__ import annotations

import math
from dataclasses import dataclass


@dataclass(frozen=True)
class Metric:
    label: str  # readable column name
    higher_is_better: bool | None  # None: sorted ascending, no better or worse
    digits: int  # decimals shown
    per_val_sample: bool = False  # an accuracy over the validation split: a difference is also a count of samples
    bounds: tuple[float, float] = (0.0, math.inf)  # what the number can be: a group's interval is cut to it


# summary.json's numbers a report can be about (--metric); the table shows QUANTITIES
METRICS = {
    "final_val_acc": Metric("final val acc", True, 4, per_val_sample=True, bounds=(0.0, 1.0)),
    "best_val_acc": Metric("best val acc", True, 4, per_val_sample=True, bounds=(0.0, 1.0)),
    "final_val_loss": Metric("final val loss", False, 4),
    "best_val_loss": Metric("best val loss", False, 4),
    "final_train_loss": Metric("final train loss", False, 4),
    "final_train_acc": Metric("final train acc", True, 4, bounds=(0.0, 1.0)),
    "train_eval_gap": Metric("train-eval gap", None, 4, bounds=(-1.0, 1.0)),
    "steps_to_target": Metric("steps to target (runs reaching it)", False, 0),
    "samples_to_target": Metric("samples to target (runs reaching it)", False, 0),
    "seconds_to_target": Metric("seconds to target (runs reaching it)", False, 2),
    "steps_per_s": Metric("steps/s", True, 1),
    "samples_per_s": Metric("samples/s", True, 0),
    "train_time_s": Metric("train time (s)", False, 2),
    "precise_bn_gain": Metric("precise BN gain", True, 4, bounds=(-1.0, 1.0)),
    "landscape_loss_range": Metric("loss range along the gradient (mean over probes)", False, 4),
    "landscape_grad_change": Metric("gradient change along the gradient (mean over probes)", False, 4),
    "landscape_beta": Metric("effective beta-smoothness (mean over probes)", False, 3),
}
QUANTITIES = ("final_val_acc", "best_val_acc", "steps_to_target", "seconds_to_target", "final_train_loss",
              "train_eval_gap")
