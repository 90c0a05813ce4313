"""Where logged values go: metrics.csv, histograms.csv, TensorBoard, the terminal. Sinks
know nothing about models; each takes ``(step, epoch, {tag: value})``, where a value is a
number or a :class:`~normbench.probes.Histogram`, and the same tag means the same thing
in every sink (``train/loss``, ``val/acc``, ``grad_norm/block1.linear``,
``act/block1/pre_norm``)."""

from __future__ import annotations

import csv
import sys
import time
from pathlib import Path
from typing import Optional

from .probes import Histogram
from .rundir import CSV_COLUMNS, HISTOGRAM_COLUMNS, keep_rows_up_to


# TensorBoard's Custom Scalars tab: one chart per family, every layer (block) in it.
# Each entry is a regular expression over tags.
LAYOUT = {
    "gradients": {
        "gradient norm per layer": ["Multiline", [r"grad_norm/.*"]],
        "update / weight per layer": ["Multiline", [r"update_ratio/.*"]],
    },
    "activations": {
        "std entering the norm layer": ["Multiline", [r"act/[^/]+/pre_norm/std"]],
        "std leaving the norm layer": ["Multiline", [r"act/[^/]+/post_norm/std"]],
        "spread of per-feature variances entering the norm layer":
            ["Multiline", [r"act/[^/]+/pre_norm/feature_var_std"]],
        "dead (ReLU) or saturated (sigmoid, tanh) units": ["Multiline", [r"act/[^/]+/(dead|saturated)"]],
    },
    "normalization": {
        "scale (gamma) mean": ["Multiline", [r"affine/[^/]+/gamma_mean"]],
        "shift (beta) mean": ["Multiline", [r"affine/[^/]+/beta_mean"]],
        "BatchNorm variance shift (running / eval-mode input variance)": ["Multiline", [r"bn/[^/]+/variance_shift.*"]],
        "BatchNorm running / batch variance": ["Multiline", [r"bn/[^/]+/running_var_ratio"]],
    },
    "accuracy": {
        "validation accuracy: eval mode, train mode, running statistics": ["Multiline", [r"val/acc.*"]],
        "loss": ["Multiline", [r"train/loss", r"val/loss"]],
    },
}


def _open_csv(path: Path, columns: list[str], resume_step: Optional[int]):
    """A CSV log opened for writing: new, or when resuming at ``resume_step``, with the
    rows up to that step kept and appended to."""
    if resume_step is not None and path.exists():
        keep_rows_up_to(path, resume_step, len(columns))
        f = open(path, "a", newline="")
        return f, csv.writer(f)
    f = open(path, "w", newline="")
    writer = csv.writer(f)
    writer.writerow(columns)
    return f, writer


class CSVSink:
    """metrics.csv in long form, one row per value: ``step,epoch,tag,value,wall_time``.

    ``pd.read_csv`` reads it directly; ``.pivot_table(index="step", columns="tag",
    values="value")`` gives one column per metric. Floats are written in full
    (shortest round-trip repr), and the file is flushed after every call, so a crash
    loses nothing already logged."""

    def __init__(self, path: Path, resume_step: Optional[int] = None):
        self._file, self._writer = _open_csv(path, CSV_COLUMNS, resume_step)

    def log(self, step: int, epoch: int, metrics: dict) -> None:
        now = time.time()
        self._writer.writerows([step, epoch, tag, float(v), now] for tag, v in metrics.items()
                               if not isinstance(v, Histogram))
        self._file.flush()

    def close(self) -> None:
        self._file.close()


class HistogramCSVSink:
    """histograms.csv in long form, one row per bin: ``step,epoch,tag,left,right,count``,
    the same bins TensorBoard gets. Flushed after every call."""

    def __init__(self, path: Path, resume_step: Optional[int] = None):
        self._file, self._writer = _open_csv(path, HISTOGRAM_COLUMNS, resume_step)

    def log(self, step: int, epoch: int, metrics: dict) -> None:
        rows = [[step, epoch, tag, left, right, count]
                for tag, h in metrics.items() if isinstance(h, Histogram)
                for left, right, count in zip(h.edges[:-1], h.edges[1:], map(int, h.counts), strict=True)]
        if rows:
            self._writer.writerows(rows)
            self._file.flush()

    def close(self) -> None:
        self._file.close()


class TensorBoardSink:
    """One SummaryWriter for the run, writing into the run directory itself. Resuming at
    step S, a new event file starts with a purge at S + 1: TensorBoard drops what the
    earlier session logged after S, the part being redone (at S = 0, everything)."""

    def __init__(self, run_dir: Path, resume_step: Optional[int] = None):
        from torch.utils.tensorboard import SummaryWriter  # imports TensorBoard: only when a run starts

        purge = None if resume_step is None else resume_step + 1 if resume_step > 0 else 0
        self._writer = SummaryWriter(log_dir=str(run_dir), flush_secs=10, purge_step=purge)
        self._writer.add_custom_scalars(LAYOUT)

    def log(self, step: int, epoch: int, metrics: dict) -> None:
        now = time.time()
        for tag, value in metrics.items():
            if isinstance(value, Histogram):
                self._writer.add_histogram_raw(tag, value.min, value.max, value.num, value.sum, value.sum_squares,
                                               list(value.edges[1:]), list(value.counts), step, walltime=now)
            else:
                self._writer.add_scalar(tag, value, step, walltime=now)

    def write_hparams(self, hparams: dict, metric_tags: list[str]) -> None:
        """An HParams entry in this run's own event file (not a timestamped subdirectory, as
        ``SummaryWriter.add_hparams`` makes), so each run directory is one row of the
        HParams tab, its metrics the last values of ``metric_tags``."""
        from torch.utils.tensorboard.summary import hparams as hparams_summaries

        for summary in hparams_summaries(hparams, dict.fromkeys(metric_tags, 0.0)):
            self._writer.file_writer.add_summary(summary)
        self._writer.flush()

    def flush(self) -> None:
        self._writer.flush()

    def close(self) -> None:
        self._writer.close()


class ProgressSink:
    """A progress bar on a terminal; one line per epoch when output is not a terminal."""

    def __init__(self, total_steps: int, epochs: int, stream=None, start: int = 0):
        self._stream = stream or sys.stderr
        self._epochs = epochs
        self._bar = None
        self._step = start
        self._last: dict = {}
        if self._stream.isatty():
            from tqdm import tqdm

            self._bar = tqdm(total=total_steps, initial=start, unit="step", file=self._stream, dynamic_ncols=True,
                             leave=True)

    def log(self, step: int, epoch: int, metrics: dict) -> None:
        self._last.update({k: v for k, v in metrics.items() if k in ("train/loss", "val/loss", "val/acc")})
        if self._bar is not None:
            self._bar.update(step - self._step)
            self._bar.set_postfix({k: f"{v:.4f}" for k, v in self._last.items()}, refresh=False)
        elif "val/acc" in metrics:
            shown = "  ".join(f"{k} {v:.4f}" for k, v in self._last.items())
            print(f"epoch {epoch}/{self._epochs}  step {step}  {shown}", file=self._stream, flush=True)
        self._step = step

    def close(self) -> None:
        if self._bar is not None:
            self._bar.close()


class Sinks:
    """Fan one ``log`` call out to every sink."""

    def __init__(self, *sinks):
        self.sinks = [s for s in sinks if s is not None]

    def log(self, step: int, epoch: int, metrics: dict) -> None:
        for s in self.sinks:
            s.log(step, epoch, metrics)

    def flush(self) -> None:
        """Everything logged so far on disk (the CSV sinks flush at every call anyway)."""
        for s in self.sinks:
            if hasattr(s, "flush"):
                s.flush()

    def close(self) -> None:
        for s in self.sinks:
            s.close()
