"""Where logged values go: metrics.csv, histograms.csv, TensorBoard, the terminal. Sinks
know nothing about models; each takes ``(step, epoch, {tag: value})``, where a value is a
number or a :class:`~normbench.probes.Histogram`, and the same tag means the same thing
in every sink (``train/loss``, ``val/acc``, ``grad_norm/block1.linear``,
``act/block1/pre_norm``)."""

from __future__ import annotations

import csv
import io
import re
import sys
import time
from pathlib import Path
from typing import Optional

from tensorboard.compat.proto.summary_pb2 import Summary
from tensorboard.compat.proto.tensor_pb2 import TensorProto
from tensorboard.compat.proto.tensor_shape_pb2 import TensorShapeProto
from tensorboard.plugins.custom_scalar import layout_pb2, metadata
from torch.utils.tensorboard import SummaryWriter

from .files import MAX_CSV_BYTES, atomic_write, open_append, read_bytes, writing
from .probes import Histogram
from .rundir import CSV_COLUMNS, HISTOGRAM_COLUMNS

# TensorBoard's Custom Scalars tab, open: the results, one chart per quantity with a line per run
RESULTS = {
    "val/acc": "validation accuracy (eval mode)",
    "val/acc_train_mode": "validation accuracy, BatchNorm in train mode",
    "val/train_eval_gap": "train - eval accuracy gap",
    "train/loss": "training loss",
    "val/loss": "validation loss",
    "grad_norm/total": "total gradient norm",
    "lr": "learning rate",
    "landscape/loss_range": "loss landscape: loss range along the gradient",
    "landscape/grad_change": "loss landscape: largest gradient change",
    "landscape/beta": "loss landscape: effective beta-smoothness",
}
# then one closed category per quantity measured at each layer or norm site, a chart per
# layer (site) in it: (title, tag prefix, tag suffix), the layer or site between them
PER_PLACE = [
    ("gradient norm of each layer", "grad_norm/", ""),
    ("update / weight of each layer", "update_ratio/", ""),
    ("std entering each norm", "act/", "/pre_norm/std"),
    ("std leaving each norm", "act/", "/post_norm/std"),
    ("spread of the per-feature variances entering each norm", "act/", "/pre_norm/feature_var_std"),
    ("dead (ReLU) units at each norm site", "act/", "/dead"),
    ("saturated (sigmoid, tanh) units at each norm site", "act/", "/saturated"),
    ("scale (gamma) mean of each norm", "affine/", "/gamma_mean"),
    ("shift (beta) mean of each norm", "affine/", "/beta_mean"),
    ("weight norm g mean of each layer", "wn/", "/g_mean"),
    ("BatchNorm variance shift (running / eval-mode input variance)", "bn/", "/variance_shift"),
    ("BatchNorm variance shift after precise BN", "bn/", "/variance_shift_precise"),
    ("BatchNorm running / batch variance", "bn/", "/running_var_ratio"),
]


def layout(tags):
    """TensorBoard's Custom Scalars layout (a ``layout_pb2.Layout``) for the scalar ``tags``
    a run recorded, in the order it recorded them: the results first, one chart per
    quantity with a line per run (in a sweep, every job side by side); then, closed until
    clicked, one category per quantity measured at each layer or norm site, a chart per
    layer (site). Only charts of recorded tags: none that would say "Matches (0)".
    TensorBoard merges the layouts of many runs, category by category."""
    def chart(title: str, tag: str):
        return layout_pb2.Chart(title=title, multiline=layout_pb2.MultilineChartContent(tag=[f"^{re.escape(tag)}$"]))

    recorded = list(dict.fromkeys(tags))
    categories = [layout_pb2.Category(title="results (a line per run)",
                                      chart=[chart(title, tag) for tag, title in RESULTS.items() if tag in recorded])]
    for title, prefix, suffix in PER_PLACE:
        places = [t for t in recorded if t.startswith(prefix) and t.endswith(suffix) and t not in RESULTS
                  and "/" not in t[len(prefix):len(t) - len(suffix)]]
        categories.append(layout_pb2.Category(title=title, chart=[chart(t, t) for t in places], closed=True))
    return layout_pb2.Layout(category=[c for c in categories if c.chart])


def layout_summary(tags):
    """The layout of ``tags`` as the Summary proto TensorBoard reads it from (the tensor of
    the ``custom_scalars__config__`` tag)."""
    tensor = TensorProto(dtype="DT_STRING", string_val=[layout(tags).SerializeToString()],
                         tensor_shape=TensorShapeProto())
    return Summary(value=[Summary.Value(tag=metadata.CONFIG_SUMMARY_TAG, tensor=tensor,
                                        metadata=metadata.create_summary_metadata())])


def keep_rows_up_to(path: Path, step: int, columns: int) -> None:
    """Resuming at ``step``: keep the rows of a CSV log written up to and including that
    step (rows after it belong to the part of the run being redone; a torn last line,
    from a killed process, is dropped). At step 0 nothing is kept: the step-0 probes are
    measured again."""
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
    earlier session logged after S, the part being redone (at S = 0, everything).

    The Custom Scalars layout is made from the scalar tags the run has recorded, at each
    flush (the end of every epoch) and at the end, and written where it changed;
    TensorBoard shows the last one written."""

    def __init__(self, run_dir: Path, resume_step: Optional[int] = None):
        purge = None if resume_step is None else resume_step + 1 if resume_step > 0 else 0
        # max_queue: events held for the writer thread before an add waits for it (10 by default:
        # a log call of a digits run then took 84 us, against 17 us with room to queue)
        self._writer = SummaryWriter(log_dir=str(run_dir), max_queue=1000, flush_secs=10, purge_step=purge)
        self._tags: dict[str, None] = {}  # the scalar tags recorded, in order
        self._laid_out = 0  # how many of them the last layout was made from
        self._layout = b""  # the last layout written
        self._step = 0 if resume_step is None else resume_step

    def log(self, step: int, epoch: int, metrics: dict) -> None:
        """The scalars of one call as one event (one Summary value per tag: what
        ``add_scalar`` writes, tag by tag, at a tenth of the cost), histograms each their own."""
        now = time.time()
        self._step = step
        scalars = []
        for tag, value in metrics.items():
            if isinstance(value, Histogram):
                self._writer.add_histogram_raw(tag, value.min, value.max, value.num, value.sum, value.sum_squares,
                                               list(value.edges[1:]), list(value.counts), step, walltime=now)
            else:
                self._tags.setdefault(tag)
                scalars.append(Summary.Value(tag=tag, simple_value=float(value)))
        if scalars:
            self._writer.file_writer.add_summary(Summary(value=scalars), step, now)

    def write(self, summaries: list) -> None:
        """Summary protos made elsewhere (the run's HParams session, hparams.py) in this
        run's own event file, so each run directory is one row of the HParams tab."""
        for summary in summaries:
            self._writer.file_writer.add_summary(summary)
        self._writer.flush()

    def _lay_out(self) -> None:
        if len(self._tags) == self._laid_out:
            return
        self._laid_out = len(self._tags)
        summary = layout_summary(self._tags)
        made = summary.value[0].tensor.string_val[0]
        if made != self._layout:
            self._writer.file_writer.add_summary(summary, self._step)
            self._layout = made

    def flush(self) -> None:
        self._lay_out()
        self._writer.flush()

    def close(self) -> None:
        self._lay_out()
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
            from tqdm import tqdm  # only on a terminal: runs in a sweep or a pipe never import it

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
