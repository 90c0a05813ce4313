"""One run: prepare -> train -> record.

``train(cfg, place, stop)`` trains ``cfg`` in ``place.run_dir`` and returns its summary
(``completed``, ``diverged`` or ``interrupted``), written to summary.json. It raises
``UsageError`` for bad input found before training (nothing written: the caller decides
what to leave), ``NothingToDo`` when a resumed run has done all its epochs, and
``RunFailed`` when something broke (its summary.json says ``failed`` and why). It never
exits and never prints an error: the command line (a single run) and the sweep's job
wrapper (a sweep) decide what an outcome means.

    data = load_data(cfg.data)                       # data.py
    model = build_model(cfg, data.input_shape, ...)  # models.py
    outcome = Trainer(model, data, cfg).run(sinks.log, after_epoch)   # trainer.py, sinks.py
    write_summary(run_dir, summary)                  # rundir.py
"""

from __future__ import annotations

import datetime as _dt
import logging
import math
import platform
import time
import traceback
from contextlib import ExitStack
from dataclasses import dataclass
from pathlib import Path
from typing import Optional

from . import __version__
from .checkpoint import CheckpointWriter
from .data import load_data
from .errors import NothingToDo, RunFailed, UsageError, described, disk_problem
from .extension import finished_kept
from .files import LOG, shown
from .heap import settled
from .models import build_model
from .resume import checkpoint_to_resume
from .rundir import (CHECKPOINT, FINISHED, HISTOGRAMS, METRICS, Summary, remove_unfinished_writes, summary_or_none,
                     write_summary)
from .signals import Stop
from .sites import describe
from .budget import effective_lr
from .validate import check_against_data

log = logging.getLogger("normbench")


@dataclass
class Place:
    """Where and how a run runs, as its caller decided."""
    run_dir: Path
    overrides: list
    resume: bool = False  # training continues from the checkpoint in run_dir
    threads: Optional[int] = None  # torch threads; None leaves torch's default
    device: Optional[str] = None  # instead of cfg.device (a sweep job's slot of a GPU)
    progress: bool = True  # a progress bar or line per epoch (a sweep job says one line when it ends)


@dataclass
class Prepared:
    device: object
    data: object
    checkpoint: Optional[dict]


def resolve_device(name: str):
    import torch  # torch: app.py imports this module at train --help, which stays without torch

    if name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    if name.startswith("cuda"):
        if not torch.cuda.is_available():
            raise UsageError(f"device={name} is not allowed here: torch sees no CUDA device; allowed: auto, cpu")
        index = int(name.split(":")[1]) if ":" in name else 0
        if index >= torch.cuda.device_count():
            raise UsageError(f"device={name} is not allowed here: {torch.cuda.device_count()} CUDA device(s) visible; "
                             f"allowed: auto, cpu, cuda, cuda:0..{torch.cuda.device_count() - 1}")
    return torch.device(name)


def versions() -> dict:
    # what a run records of its libraries; numpy and torch are in memory by then (Hydra:
    # evaluate reads this module without it)
    import hydra
    import numpy
    import torch

    return {"normbench": __version__, "python": platform.python_version(), "torch": torch.__version__,
            "hydra": hydra.__version__, "numpy": numpy.__version__}


def _now() -> str:
    return _dt.datetime.now().astimezone().isoformat(timespec="seconds")


def _prepare(cfg, place: Place, summary: Summary) -> Prepared:
    """Threads, device, data and (resuming) the checkpoint; the checks that need the data."""
    import torch  # torch: app.py imports this module at train --help, which stays without torch

    if place.threads:
        torch.set_num_threads(place.threads)
    device = resolve_device(place.device or cfg.device)
    data = load_data(cfg.data, device)
    check_against_data(cfg, len(data.train), data.input_shape)
    summary.val_samples, summary.train_samples = len(data.val), len(data.train)
    summary.effective_lr = effective_lr(cfg)
    checkpoint = None
    if place.resume:
        checkpoint = checkpoint_to_resume(place.run_dir, cfg, summary.config, len(data.train))
    return Prepared(device, data, checkpoint)


def new_summary(cfg, run_dir: Path, overrides, **fields) -> Summary:
    """The summary of ``cfg`` in ``run_dir`` before any training (``fields`` set on it)."""
    from omegaconf import OmegaConf  # evaluate reads this module without OmegaConf's import

    return Summary(**{"status": "failed", **fields}, run_dir=str(run_dir), overrides=list(overrides),
                   config=OmegaConf.to_container(cfg, resolve=True, enum_to_str=True), target_acc=cfg.target_acc,
                   steps=0)


def _never_trained(summary: Summary, run_dir: Path, error: str, t0: float) -> Summary:
    """Record a run that failed before training, keeping a finished summary already there
    (a resume that fails must not overwrite the result it was continuing)."""
    earlier = summary_or_none(run_dir)
    summary.error, summary.wall_time_s, summary.finished_at = error, time.perf_counter() - t0, _now()
    if earlier is not None and earlier.finished:
        log.error("kept the earlier summary.json (%s)", earlier.status)
        return earlier
    write_summary(run_dir, summary)
    return summary


def train(cfg, place: Place, stop: Stop) -> Summary:
    """Train ``cfg`` in ``place.run_dir``; see the module docstring for what it returns and raises."""
    from . import sinks, trainer  # noqa: F401  (torch and TensorBoard: imported before the clock starts)

    with settled():  # what the imports made is walked by no collection during the run (heap.py)
        return _train(cfg, place, stop)


def _train(cfg, place: Place, stop: Stop) -> Summary:
    t0 = time.perf_counter()
    summary = new_summary(cfg, place.run_dir, place.overrides, started_at=_now(), versions=versions())
    try:
        prepared = _prepare(cfg, place, summary)
    except (UsageError, NothingToDo):
        raise
    except Exception as e:  # not the user's input: recorded as a failed run, never dropped
        log.error("run failed before training:\n%s", traceback.format_exc())
        kept = _never_trained(summary, place.run_dir, f"{type(e).__name__}: {e}", t0)
        raise RunFailed(f"run failed: {type(e).__name__}: {e}; details in {shown(place.run_dir / LOG)}"
                        + ("" if kept is summary else f" (its earlier summary.json, {kept.status}, is kept)")) from e
    with finished_kept(place.run_dir, prepared.checkpoint) as finish:  # extending a finished run: kept until done
        outcome, trainer, error = _fit(cfg, place, prepared, summary, stop)
        summary = _record(summary, outcome, trainer, prepared.device, cfg, t0)
        kept = finish(summary)  # summary.json, or an extension that did not complete rolled back
    if error is not None:
        raise RunFailed(f"run failed: {summary.error}; details in {shown(place.run_dir / LOG)}"
                        + (f" ({kept})" if kept else "")) from error
    return summary


def _fit(cfg, place: Place, prepared: Prepared, summary: Summary, stop: Stop):
    """Build the model, the trainer and the sinks and train: (outcome, trainer, error)."""
    # torch, TensorBoard (sinks, hparams) and the trainer: only once a run starts (train --help stays light)
    import torch
    from .hparams import session
    from .sinks import CSVSink, HistogramCSVSink, ProgressSink, Sinks, TensorBoardSink
    from .trainer import Trainer

    run_dir, data = place.run_dir, prepared.data
    trainer = outcome = None
    try:  # from here on, whatever happens is recorded in summary.json
        torch.manual_seed(cfg.seed)
        model = build_model(cfg, data.input_shape, data.num_classes).to(prepared.device)
        summary.num_params = sum(p.numel() for p in model.parameters())
        summary.sites = describe(model)
        trainer = Trainer(model, data, cfg, stop)
        resume_step = _resume(trainer, prepared.checkpoint, run_dir)
        log.info("model:\n%s", model)
        log.info("data=%s: %d train, %d val samples of shape %s; device %s", cfg.data.name, len(data.train),
                 len(data.val), data.input_shape, prepared.device)
        tensorboard = TensorBoardSink(run_dir, resume_step)
        sinks = Sinks(CSVSink(run_dir / METRICS, resume_step), HistogramCSVSink(run_dir / HISTOGRAMS, resume_step),
                      tensorboard, ProgressSink(trainer.total_steps, -(-trainer.total_steps // trainer.steps_per_epoch),
                                                start=trainer.step)
                      if cfg.progress and place.progress else None)

        checkpoints = CheckpointWriter(run_dir)

        def save(tr):
            checkpoints.save({**tr.state_dict(), "config": summary.config, "normbench_version": __version__})

        def after_epoch(tr):
            sinks.flush()  # a crash loses at most the steps since the last epoch in TensorBoard
            if cfg.checkpoint:
                save(tr)

        with ExitStack() as closing:
            closing.callback(sinks.close)
            closing.callback(checkpoints.wait)  # every checkpoint on disk before the run is said to have ended
            outcome = trainer.run(sinks.log, after_epoch)
            if outcome.status == "interrupted" and cfg.checkpoint and not trainer.torn:
                save(trainer)  # exactly where it stopped, so resume=<run dir> goes on from there
            if outcome.status in FINISHED:  # final: logged once
                sinks.log(trainer.step, trainer.epoch, summary_scalars(outcome_fields(outcome, cfg.batch_size)))
            tensorboard.write(session(summary.config, summary.started_at, outcome.status, run_dir))
        return outcome, trainer, None
    except UsageError:  # a checkpoint that does not fit: refused, the run directory left as it was
        raise
    except Exception as e:  # recorded, never silently dropped
        summary.error = disk_problem(e) or f"{type(e).__name__}: {e}"
        log.error("run failed at step %d:\n%s", trainer.step if trainer else 0, traceback.format_exc())
        return None, trainer, e


def _resume(trainer, checkpoint: Optional[dict], run_dir: Path) -> Optional[int]:
    """Load ``checkpoint`` into ``trainer``; the step the run goes on from (None: a new run)."""
    if checkpoint is None:
        return None
    remove_unfinished_writes(run_dir)
    try:
        trainer.load_state_dict(checkpoint)
    except (RuntimeError, KeyError, ValueError, TypeError, IndexError) as e:
        raise UsageError(f"resume={run_dir}: its {CHECKPOINT} does not fit the run its config describes "
                         f"({described(e).rstrip(':')}); allowed: the checkpoint the run wrote") from e
    log.info("resumed from %s at step %d (epoch %d, step %d of it)", run_dir / CHECKPOINT, trainer.step,
             trainer.epoch + 1, trainer.position)
    return trainer.step


def outcome_fields(o, batch_size: int) -> dict:
    """The summary.json numbers of a training outcome (none when training never ran)."""
    if o is None:
        return {}
    rate = o.steps / o.train_seconds if o.train_seconds > 0 else None
    running = o.final.get("val/acc_running_stats")
    shifts = {suffix: {tag.split("/")[1]: v for tag, v in o.final.items()
                       if tag.startswith("bn/") and tag.endswith("/variance_shift" + suffix)} or None
              for suffix in ("", "_precise")}
    return {
        "final_val_acc": o.final.get("val/acc"), "final_val_loss": o.final.get("val/loss"),
        "final_train_loss": o.final.get("train/loss"), "final_train_acc": o.final.get("train/acc"),
        "best_val_acc": o.best_val_acc, "best_val_acc_step": o.best_val_acc_step, "best_val_loss": o.best_val_loss,
        "steps_to_target": o.steps_to_target, "seconds_to_target": o.seconds_to_target,
        "samples_to_target": None if o.steps_to_target is None else o.steps_to_target * batch_size,
        "epochs_completed": o.epochs_completed, "diverged_at_step": o.diverged_at_step,
        "steps_per_s": rate, "samples_per_s": rate and rate * batch_size, "train_time_s": o.train_seconds,
        "final_val_acc_train_mode": o.final.get("val/acc_train_mode"), "train_eval_gap": o.final.get("val/train_eval_gap"),
        "final_val_acc_running_stats": running,
        "precise_bn_gain": None if running is None else o.final["val/acc"] - running,
        "variance_shift": shifts[""], "variance_shift_precise": shifts["_precise"],
        **{f"landscape_{tag.split('/')[1]}": total / o.landscape_probes for tag, total in o.landscape.items()},
    }


def summary_scalars(numbers: dict) -> dict:
    """The summary's numbers that no logged tag holds, as ``summary/<name>`` values logged at
    the end of the run (metrics.csv and TensorBoard); those not measured are left out."""
    return {f"summary/{k}": float(numbers[k]) for k in ("best_val_acc", "steps_to_target", "precise_bn_gain")
            if numbers.get(k) is not None and math.isfinite(numbers[k])}


def _record(summary: Summary, outcome, trainer, device, cfg, t0: float) -> Summary:
    import torch  # torch: app.py imports this module at train --help, which stays without torch

    for name, value in outcome_fields(outcome, cfg.batch_size).items():
        setattr(summary, name, value)
    summary.status = outcome.status if outcome is not None else "failed"
    summary.steps = trainer.step if trainer else 0
    if trainer is not None:
        summary.samples_seen, summary.epochs_seen = trainer.plan.samples_at(trainer.step), \
            trainer.plan.epochs_at(trainer.step)
    summary.wall_time_s, summary.finished_at = time.perf_counter() - t0, _now()
    summary.device, summary.threads = str(device), torch.get_num_threads()
    summary.device_name = (torch.cuda.get_device_name(device) if device.type == "cuda"
                           else platform.processor() or "cpu")
    return summary


def result_lines(s: Summary, run_dir: Path) -> list[str]:
    """What a single run says when it ends."""
    if s.status == "completed":
        line = (f"completed: val/acc {s.final_val_acc:.4f} (best {s.best_val_acc:.4f}), "
                f"{s.steps} steps in {s.wall_time_s:.1f} s")
    elif s.status == "diverged":
        line = f"diverged: the loss or a gradient became NaN/inf at step {s.diverged_at_step}"
    else:
        line = f"{s.status} after {s.steps} steps"
    return [line, f"run directory: {shown(run_dir)}", f"tensorboard --logdir {shown(run_dir)}"]
