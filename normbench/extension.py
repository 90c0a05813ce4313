"""Finished stays finished: extending a finished run (``resume=<run> epochs=N`` after it
completed) writes its checkpoint, CSVs and TensorBoard file as any run does, but until the
extension completes the finished run is kept:

- its ``checkpoint.pt`` as ``.checkpoint.finished.pt`` (a hard link: no space needed);
- the step it ended at, and its TensorBoard files.

An extension that completes writes its summary over the finished one. One that does not
(failed, diverged, interrupted, or its summary could not be written: a full disk) is rolled
back: the finished checkpoint put back, the CSVs cut after the finished step (in place, so a
full disk cannot stop it), the extension's TensorBoard file removed and ``.hydra/`` as it
was; ``summary.json`` is never touched. The attempt is recorded beside them in
``extension.json`` (the summary of the attempt: status, error, steps reached) and in
``train.log``. The directory is then the finished run, whole: its summary, checkpoint,
metrics and TensorBoard describe the same state, and ``resume=<run> epochs=N`` tries again.
"""

from __future__ import annotations

import json
import os
import shutil
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Callable, Iterator, Optional

from . import files
from .files import atomic_write, shown
from .rundir import CHECKPOINT, HISTOGRAMS, METRICS, Summary, remove_unfinished_writes, summary_or_none, write_summary

KEPT = ".checkpoint.finished.pt"  # the finished run's checkpoint while an extension runs
RECORD = "extension.json"  # the last extension that did not complete


@dataclass
class Extension:
    run_dir: Path
    step: int  # where the finished run ended
    status: str  # and how (completed or diverged)
    events: frozenset  # its TensorBoard files

    def roll_back(self) -> None:
        """The directory as the finished run left it (summary.json is never touched)."""
        kept, checkpoint = self.run_dir / KEPT, self.run_dir / CHECKPOINT
        if kept.is_file() and checkpoint.is_file() and os.path.samefile(kept, checkpoint):
            kept.unlink()  # never replaced (rename would leave both links)
        elif kept.is_file():
            os.replace(kept, checkpoint)
        for name in (METRICS, HISTOGRAMS):
            cut_after(self.run_dir / name, self.step)
        for events in self.run_dir.glob("events.out.tfevents.*"):
            if events.name not in self.events:
                events.unlink()
        remove_unfinished_writes(self.run_dir)
        files.put_back(self.run_dir, log=False)  # .hydra/ as it was; the log keeps the attempt


def begin(run_dir: Path, checkpoint: Optional[dict]) -> Optional[Extension]:
    """An Extension when ``run_dir`` holds a finished run that training now continues,
    after keeping its checkpoint; None otherwise."""
    earlier = summary_or_none(run_dir)
    if checkpoint is None or earlier is None or not earlier.finished or earlier.steps is None:
        return None
    kept = run_dir / KEPT
    if not kept.is_file():  # else an extension killed outright kept it already: it is the finished one
        try:
            os.link(run_dir / CHECKPOINT, kept)
        except OSError:  # a file system without hard links
            with files.writing(kept):
                shutil.copyfile(run_dir / CHECKPOINT, kept)
    return Extension(run_dir, earlier.steps, earlier.status,
                     frozenset(p.name for p in run_dir.glob("events.out.tfevents.*")))


def cut_after(path: Path, step: int) -> None:
    """Drop the rows of a CSV log after ``step`` (and any torn line), truncating the file
    in place: it needs no space, so a full disk cannot stop it."""
    if not path.is_file() or path.is_symlink():
        return
    keep = 0
    with files.open_regular(path, files.MAX_CSV_BYTES) as f:
        for i, line in enumerate(f):
            first = line.split(b",", 1)[0]
            if i and (not line.endswith(b"\n") or not first.isdigit() or int(first) > step):
                break
            keep += len(line)
    os.truncate(path, keep)


def _record(run_dir: Path, summary: Summary, ext: Extension) -> str:
    """Record the attempt beside the finished run; what to tell the user."""
    note = (f"the run's {ext.status} result is kept as it was (summary.json, checkpoint.pt and metrics at step "
            f"{ext.step}); this attempt to extend it ({summary.status} at step {summary.steps}) is in ")
    again = f"; resume={shown(run_dir)} epochs={summary.config.get('epochs')} tries again from step {ext.step}"
    try:
        text = json.dumps(summary.as_dict(), indent=2, allow_nan=False) + "\n"
        atomic_write(run_dir / RECORD, lambda f: f.write(text.encode()))
        return note + f"{RECORD} and train.log" + again
    except OSError:
        return note + "train.log" + again


@contextmanager
def finished_kept(run_dir: Path, checkpoint: Optional[dict]) -> Iterator[Callable[[Summary], str]]:
    """Around the training of a run that ``checkpoint`` continues: yields ``finish``, which
    writes the run's summary, or, for an extension of a finished run that did not complete,
    rolls it back and records the attempt; ``finish`` returns a note for the user ("" when
    the summary was written). Anything raised inside rolls an extension back."""
    ext = begin(run_dir, checkpoint)

    def finish(summary: Summary) -> str:
        if ext is None:
            write_summary(run_dir, summary)
            return ""
        if summary.status == "completed":
            write_summary(run_dir, summary)  # on failure (a full disk) the except below rolls back
            for name in (KEPT, RECORD):
                (run_dir / name).unlink(missing_ok=True)
            return ""
        ext.roll_back()
        note = _record(run_dir, summary, ext)
        if summary.status != "failed":  # a failure says it in its one error line
            print(f"normbench: {note}", flush=True)
        return note

    try:
        yield finish
    except BaseException:
        if ext is not None:
            ext.roll_back()
        raise
