"""The results a report can be about (``--metric``): each one's label, which way is
better, its decimals, what values it can take and the scale it is compared on. No pandas
here: ``normbench report --help`` and its refusals read this table without loading the
data stack."""

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
    scale: str = "linear"  # a row of SCALES: "log" for positive, right-skewed numbers (losses, counts, times)


@dataclass(frozen=True)
class Scale:
    """How a result is summarized and compared: on the values (linear), or on their
    logarithms (log: the geometric mean, and the ratio of two geometric means)."""
    center: str  # a group's centre, as column names say it
    spread: str  # its spread
    effect: str  # the comparison with the baseline
    effect_label: str  # what the comparison is of, after the metric's label
    no_effect: float  # the comparison's value when the groups do not differ
    spread_sign: str  # between the centre and the spread in a cell: 0.97 ± 0.01, 0.21 ×/÷ 1.3


SCALES = {
    "linear": Scale("mean", "std", "Δ", "", 0.0, "±"),
    "log": Scale("geometric mean", "geometric sd", "ratio", " (geometric means)", 1.0, "×/÷"),
}


# summary.json's numbers a report can be about (--metric); the table shows QUANTITIES
METRICS = {
    "final_val_acc": Metric("final val acc", True, 4, per_val_sample=True, bounds=(0.0, 1.0)),
    "best_val_acc": Metric("best val acc", True, 4, per_val_sample=True, bounds=(0.0, 1.0)),
    "final_val_loss": Metric("final val loss", False, 4, scale="log"),
    "best_val_loss": Metric("best val loss", False, 4, scale="log"),
    "final_train_loss": Metric("final train loss", False, 4, scale="log"),
    "final_train_acc": Metric("final train acc", True, 4, bounds=(0.0, 1.0)),
    "train_eval_gap": Metric("train-eval gap", None, 4, bounds=(-1.0, 1.0)),
    "steps_to_target": Metric("steps to target (runs reaching it)", False, 0, scale="log"),
    "samples_to_target": Metric("samples to target (runs reaching it)", False, 0, scale="log"),
    "seconds_to_target": Metric("seconds to target (runs reaching it)", False, 2, scale="log"),
    "steps_per_s": Metric("steps/s", True, 1, scale="log"),
    "samples_per_s": Metric("samples/s", True, 0, scale="log"),
    "train_time_s": Metric("train time (s)", False, 2, scale="log"),
    "precise_bn_gain": Metric("precise BN gain", True, 4, bounds=(-1.0, 1.0)),
    "landscape_loss_range": Metric("loss range along the gradient (mean over probes)", False, 4, scale="log"),
    "landscape_grad_change": Metric("gradient change along the gradient (mean over probes)", False, 4,
                                    scale="log"),
    "landscape_beta": Metric("effective beta-smoothness (mean over probes)", False, 3, scale="log"),
}
QUANTITIES = ("final_val_acc", "best_val_acc", "steps_to_target", "seconds_to_target", "final_train_loss",
              "train_eval_gap")
