"""The x axis of the report's curves (``--x``): optimizer steps, training samples seen, or
epochs (samples seen over the training split). Runs of different batch sizes line up by
data seen, not by steps: the default is samples when the batch size varies between the
runs, else steps. The curves' positions come from each run's logged step times its
``batch_size`` (and over its ``train_samples``, from summary.json)."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd

from ..errors import UsageError


@dataclass(frozen=True)
class XAxis:
    label: str  # the axis label
    per: str  # what "at each logged ..." says in a caption


XAXES = {
    "steps": XAxis("training steps (optimizer updates)", "logged step"),
    "samples": XAxis("training samples seen (steps x batch size)", "logged number of samples seen"),
    "epochs": XAxis("epochs (training samples seen / training split)", "logged epoch"),
}


def choose(runs: pd.DataFrame, wanted: str | None) -> str:
    """``wanted``, or samples when the runs' batch sizes differ, else steps."""
    if wanted is not None:
        return wanted
    sizes = runs.get("config.batch_size", pd.Series(dtype=object)).dropna()
    return "samples" if sizes.nunique() > 1 else "steps"


def positions(metrics: pd.DataFrame, runs: pd.DataFrame, name: str) -> pd.DataFrame:
    """``metrics`` with its column ``x``: each row's position on the axis ``name``. Raises
    UsageError when a run lacks what that axis needs (runs made before it was recorded)."""
    if name == "steps":
        return metrics.assign(x=metrics["step"].astype(float))
    by_run = runs.set_index("run_dir")
    batch = pd.to_numeric(by_run.get("config.batch_size"), errors="coerce")
    factor = batch if name == "samples" else batch / by_run.get("train_samples", np.nan)
    factor = factor.where(np.isfinite(factor) & (factor > 0))
    used = factor.reindex(metrics["run_dir"].unique())
    if used.isna().any():
        missing = used.index[used.isna()][0]
        need = "batch_size" if name == "samples" else "batch_size and train_samples (recorded since normbench 0.2)"
        raise UsageError(f"--x {name}: {missing} has no {need} in its summary.json; allowed: --x steps")
    return metrics.assign(x=metrics["step"].to_numpy(dtype=float) * metrics["run_dir"].map(factor).to_numpy(float))
