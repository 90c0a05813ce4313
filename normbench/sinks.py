"""Where logged values go: metrics.csv, histograms.csv, TensorBoard, the terminal. Sinks
know nothing about models; each takes ``(step, epoch, {tag: value})``, where a value is a
number or a :class:`~normbench.probes.Histogram`, and the same tag means the same thing
in every sink (``train/loss``, ``val/acc``, ``grad_norm/block1.linear``,
``act/block1/pre_norm``)."""

from __future__ import annotations

import csv
import re
import sys
import time
from pathlib import Path
from typing import Optional

from .files import open_append, writing
from .probes import Histogram
from .rundir import CSV_COLUMNS, HISTOGRAM_COLUMNS, atomic_write


def layout(layers: list[str], blocks: list[str]) -> dict:
    """TensorBoard's Custom Scalars tab: one chart per quantity with a line per run (in a
    sweep, every job side by side), and per-layer (per-block) detail in charts of their
    own, so no chart holds runs x layers lines. Charts are regular expressions over tags;
    TensorBoard merges the same chart of many runs into one."""
    def one(tag: str) -> list:
        return ["Multiline", [f"^{re.escape(tag)}$"]]

    def per(template: str, names: list[str]) -> dict:
        return {template.format(n): one(template.format(n)) for n in names}

    return {
        "results (a line per run)": {
            "validation accuracy (eval mode)": one("val/acc"),
            "validation accuracy, BatchNorm in train mode": one("val/acc_train_mode"),
            "train - eval accuracy gap": one("val/train_eval_gap"),
            "training loss": one("train/loss"),
            "validation loss": one("val/loss"),
            "total gradient norm": one("grad_norm/total"),
        },
        "gradient norm per layer": per("grad_norm/{}", layers),
        "update / weight per layer": per("update_ratio/{}", layers),
        "std entering the norm layer": per("act/{}/pre_norm/std", blocks),
        "std leaving the norm layer": per("act/{}/post_norm/std", blocks),
        "spread of per-feature variances entering the norm layer": per("act/{}/pre_norm/feature_var_std", blocks),
        "dead (ReLU) or saturated (sigmoid, tanh) units": {
            **per("act/{}/dead", blocks), **per("act/{}/saturated", blocks)},
        "scale (gamma) and shift (beta) means": {**per("affine/{}/gamma_mean", blocks),
                                                 **per("affine/{}/beta_mean", blocks)},
        "BatchNorm variance shift (running / eval-mode input variance)": {
            **per("bn/{}/variance_shift", blocks), **per("bn/{}/variance_shift_precise", blocks)},
        "BatchNorm running / batch variance": per("bn/{}/running_var_ratio", blocks),
        "loss landscape along the gradient": per("landscape/{}", ["loss_range", "grad_change", "beta"]),
    }


def keep_rows_up_to(path: Path, step: int, columns: int) -> None:
    """Resuming at ``step``: keep the rows of a CSV log written up to and including that
    step (rows after it belong to the part of the run being redone; a torn last line,
    from a killed process, is dropped). At step 0 nothing is kept: the step-0 probes are
    measured again."""
    import io

    from .files import MAX_CSV_BYTES, read_bytes

    if not path.exists() and not path.is_symlink():
        return
    text = read_bytes(path, MAX_CSV_BYTES, within=path.parent).decode("utf-8", errors="replace")  # typed, bounded
    rows = list(csv.reader(io.StringIO(text, newline="")))
    kept = rows[:1] + [r for r in rows[1:] if step > 0 and len(r) == columns and r[0].isdigit() and int(r[0]) <= step]
    out = io.StringIO()
    csv.writer(out).writerows(kept)
    atomic_write(path, lambda f: f.write(out.getvalue().encode()))


def _open_csv(path: Path, columns: list[str], resume_step: Optional[int]):
    """A CSV log opened for writing: new, or when resuming at ``resume_step``, with the
    rows up to that step kept and appended to."""
    if resume_step is not None and path.exists():
        keep_rows_up_to(path, resume_step, len(columns))
        f = open_append(path)
        return f, csv.writer(f)
    f = open_append(path, truncate=True)
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
        self._path = path
        self._file, self._writer = _open_csv(path, CSV_COLUMNS, resume_step)

    def log(self, step: int, epoch: int, metrics: dict) -> None:
        now = time.time()
        with writing(self._path):  # a full disk names this file
            self._writer.writerows([step, epoch, tag, float(v), now] for tag, v in metrics.items()
                                   if not isinstance(v, Histogram))
            self._file.flush()

    def close(self) -> None:
        self._file.close()


class HistogramCSVSink:
    """histograms.csv in long form, one row per bin: ``step,epoch,tag,left,right,count``,
    the same bins TensorBoard gets. Flushed after every call."""

    def __init__(self, path: Path, resume_step: Optional[int] = None):
        self._path = path
        self._file, self._writer = _open_csv(path, HISTOGRAM_COLUMNS, resume_step)

    def log(self, step: int, epoch: int, metrics: dict) -> None:
        rows = [[step, epoch, tag, left, right, count]
                for tag, h in metrics.items() if isinstance(h, Histogram)
                for left, right, count in zip(h.edges[:-1], h.edges[1:], map(int, h.counts), strict=True)]
        if rows:
            with writing(self._path):
                self._writer.writerows(rows)
                self._file.flush()

    def close(self) -> None:
        self._file.close()


class TensorBoardSink:
    """One SummaryWriter for the run, writing into the run directory itself. Resuming at
    step S, a new event file starts with a purge at S + 1: TensorBoard drops what the
    earlier session logged after S, the part being redone (at S = 0, everything)."""

    def __init__(self, run_dir: Path, resume_step: Optional[int] = None, charts: Optional[dict] = None):
        from torch.utils.tensorboard import SummaryWriter  # imports TensorBoard: only when a run starts

        purge = None if resume_step is None else resume_step + 1 if resume_step > 0 else 0
        self._writer = SummaryWriter(log_dir=str(run_dir), flush_secs=10, purge_step=purge)
        if charts:
            self._writer.add_custom_scalars(charts)

    def log(self, step: int, epoch: int, metrics: dict) -> None:
        now = time.time()
        for tag, value in metrics.items():
            if isinstance(value, Histogram):
                self._writer.add_histogram_raw(tag, value.min, value.max, value.num, value.sum, value.sum_squares,
                                               list(value.edges[1:]), list(value.counts), step, walltime=now)
            else:
                self._writer.add_scalar(tag, value, step, walltime=now)

    def write(self, summaries: list) -> None:
        """Summary protos made elsewhere (the run's HParams session, hparams.py) in this
        run's own event file, so each run directory is one row of the HParams tab."""
        for summary in summaries:
            self._writer.file_writer.add_summary(summary)
        self._writer.flush()

    def flush(self) -> None:
        self._writer.flush()

    def close(self) -> None:
        self._writer.close()


class ProgressSink:
    """A progress bar on a terminal; one line per epoch when output is not a terminal."""

    def __init__(self, total_steps: int, epochs: int, stream=None, start: int = 0):
        self._stream = stream if stream is not None else sys.stderr  # None: stderr closed, nothing shown
        self._epochs = epochs
        self._bar = None
        self._step = start
        self._last: dict = {}
        if self._stream is not None and self._stream.isatty():
            from tqdm import tqdm

            self._bar = tqdm(total=total_steps, initial=start, unit="step", file=self._stream, dynamic_ncols=True,
                             leave=True)

    def log(self, step: int, epoch: int, metrics: dict) -> None:
        self._last.update({k: v for k, v in metrics.items() if k in ("train/loss", "val/loss", "val/acc")})
        if self._bar is not None:
            self._bar.update(step - self._step)
            self._bar.set_postfix({k: f"{v:.4f}" for k, v in self._last.items()}, refresh=False)
        elif "val/acc" in metrics and self._stream is not None:
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
