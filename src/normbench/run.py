"""One run, end to end: config -> data -> model -> training loop -> sinks -> run directory.

This is the Hydra task function behind ``normbench train``. Hydra composes the config
and makes the run directory; this module wires the parts together and writes
``summary.json`` whatever happens (``completed``, ``diverged``, ``failed``,
``interrupted``).
"""

from __future__ import annotations

import datetime as _dt
import logging
import math
import platform
import shutil
import signal
import sys
import threading
import time
import traceback
import types
from contextlib import ExitStack, contextmanager
from pathlib import Path

import hydra
from hydra.core.hydra_config import HydraConfig
from hydra.types import RunMode
from omegaconf import DictConfig, OmegaConf

from . import __version__
from . import config as _schemas  # noqa: F401  (registers the schemas in Hydra's ConfigStore)
from . import sweep as _sweep  # noqa: F401  (the job-directory resolver)
from .errors import RunFailed, UsageError
from .rundir import (CHECKPOINT, HISTOGRAMS, METRICS, flat, load_checkpoint, remove_empty_dirs, save_checkpoint,
                     shown, write_summary)
from .validate import check_against_data, check_config

log = logging.getLogger("normbench")


def _register_sweeper() -> None:
    """Hydra finds plugins by listing the hydra_plugins package, which an editable install
    (pip install -e) hides; registering normbench's sweeper and launcher here makes them
    found either way. Hydra's
    first scan of plugins executes its own plugin modules again, so it must come before
    the sweeper's module imports Hydra's basic sweeper."""
    from hydra.core.plugins import Plugins

    plugins = Plugins.instance()
    from hydra_plugins.normbench_sweeper.normbench_sweeper import NormbenchJoblibLauncher, NormbenchSweeper

    plugins.register(NormbenchSweeper)
    plugins.register(NormbenchJoblibLauncher)


_register_sweeper()


def resolve_device(name: str):
    import torch

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
    import hydra as _hydra
    import numpy
    import torch

    return {"normbench": __version__, "python": platform.python_version(), "torch": torch.__version__,
            "hydra": _hydra.__version__, "numpy": numpy.__version__}


def _finite(value):
    """JSON has no NaN or infinity: a non-finite number is recorded as null."""
    return value if not isinstance(value, float) or math.isfinite(value) else None


def _discard_hydra_files(run_dir: Path) -> None:
    """Bad input in a single run: remove what Hydra wrote, so no directory is left that
    looks like a run. Only Hydra's own files are removed, never anything else."""
    shutil.rmtree(run_dir / ".hydra", ignore_errors=True)
    (run_dir / "train.log").unlink(missing_ok=True)
    remove_empty_dirs(run_dir)


def outcome_fields(o, batch_size: int) -> dict:
    """The summary.json numbers of a training outcome (all null when training never ran)."""
    if o is None:
        return dict.fromkeys(["final_val_acc", "final_val_loss", "final_train_loss", "final_train_acc",
                              "best_val_acc", "best_val_acc_step", "best_val_loss", "steps_to_target",
                              "seconds_to_target", "epochs_completed", "diverged_at_step", "steps_per_s",
                              "samples_per_s", "train_time_s", "final_val_acc_train_mode", "train_eval_gap",
                              "final_val_acc_running_stats", "precise_bn_gain", "variance_shift",
                              "variance_shift_precise"])
    rate = o.steps / o.train_seconds if o.train_seconds > 0 else None
    running = o.final.get("val/acc_running_stats")
    shifts = {suffix: {tag.split("/")[1]: v for tag, v in o.final.items()
                       if tag.startswith("bn/") and tag.endswith("/variance_shift" + suffix)} or None
              for suffix in ("", "_precise")}
    return {
        "final_val_acc": o.final.get("val/acc"),
        "final_val_loss": o.final.get("val/loss"),
        "final_train_loss": o.final.get("train/loss"),
        "final_train_acc": o.final.get("train/acc"),
        "best_val_acc": o.best_val_acc,
        "best_val_acc_step": o.best_val_acc_step,
        "best_val_loss": o.best_val_loss,
        "steps_to_target": o.steps_to_target,
        "seconds_to_target": o.seconds_to_target,
        "epochs_completed": o.epochs_completed,
        "diverged_at_step": o.diverged_at_step,
        "steps_per_s": rate,
        "samples_per_s": rate and rate * batch_size,
        "train_time_s": o.train_seconds,
        "final_val_acc_train_mode": o.final.get("val/acc_train_mode"),
        "train_eval_gap": o.final.get("val/train_eval_gap"),
        "final_val_acc_running_stats": running,
        "precise_bn_gain": None if running is None else o.final["val/acc"] - running,
        "variance_shift": shifts[""],
        "variance_shift_precise": shifts["_precise"],
    }


def hparams(config: dict) -> dict:
    """The config flattened for TensorBoard's HParams tab: ``model.depth``, ``norm.name``, ...
    Lists become strings (``[32, 64]``), booleans ``true``/``false``; null values are left out."""
    def as_text(value):
        if isinstance(value, bool):
            return "true" if value else "false"
        return str(list(value)) if isinstance(value, (list, tuple)) else value

    return {key: as_text(value) for key, value in flat(config).items() if value is not None}


# What the HParams tab shows beside each run's settings: the last value of these tags.
HPARAM_METRICS = ["val/acc", "val/loss", "train/loss", "val/train_eval_gap", "summary/best_val_acc",
                  "summary/steps_to_target", "summary/precise_bn_gain"]


def summary_scalars(fields: dict) -> dict:
    """The summary's numbers that no logged tag holds, as ``summary/<name>`` values logged at
    the end of the run (metrics.csv and TensorBoard); those not measured are left out."""
    return {f"summary/{k}": float(fields[k]) for k in ("best_val_acc", "steps_to_target", "precise_bn_gain")
            if fields.get(k) is not None and math.isfinite(fields[k])}


# what may differ between a run and its resumption
RESUME_MAY_CHANGE = ("epochs", "device", "progress", "resume", "threads", "jobs_per_gpu")


class NothingToDo(Exception):
    """Resuming a run that has already done all its epochs."""


def resume_checkpoint(run: Path, cfg, config: dict) -> dict:
    """The checkpoint of the run directory ``run``, after checking that ``config`` is that
    run's own (but for ``RESUME_MAY_CHANGE``) and that there is something left to do."""
    state = load_checkpoint(run)
    saved, now = flat(state["config"]), flat(config)
    for key in sorted(set(saved) | set(now)):
        if key not in RESUME_MAY_CHANGE and saved.get(key) != now.get(key):
            raise UsageError(f"resume={run}: {key}={now.get(key)} differs from the run's {key}="
                             f"{saved.get(key)}; allowed: the run's own settings (epochs, device and progress "
                             f"may change)")
    done = state["epoch"]  # epochs trained and evaluated
    if done > cfg.epochs:
        raise UsageError(f"epochs={cfg.epochs} is not allowed with resume={run}: the run has done "
                         f"{done} epochs; allowed: epochs >= {done}")
    if done == cfg.epochs:
        raise NothingToDo(f"resume={run}: the run has done its {done} epochs; nothing to do "
                          f"(epochs=N with N > {done} trains it longer)")
    return state


def _never_trained(cfg, t0: float) -> dict:
    """The rest of summary.json for a run that stopped before training: same keys, nulls."""
    return {**outcome_fields(None, cfg.batch_size), "target_acc": cfg.target_acc, "steps": 0,
            "wall_time_s": time.perf_counter() - t0,
            "finished_at": _dt.datetime.now().astimezone().isoformat(timespec="seconds"),
            "device": None, "device_name": None, "num_params": None}


def train(cfg: DictConfig) -> dict:
    """Train ``cfg`` in the current Hydra run directory, write its summary.json and return it.
    In a sweep, a job never raises: whatever happened is in its summary.json."""
    try:
        with ExitStack() as held:  # what the run holds until it ends (a GPU slot in a sweep)
            return _train(cfg, held)
    finally:
        _ignore_ctrl_c_between_jobs()


def _ignore_ctrl_c_between_jobs() -> None:
    """In a job process of a parallel sweep (no handler of the sweep's own here), Ctrl-C
    between two jobs would kill the process and with it the pool: it is ignored there. The
    sweep process itself records it, and the jobs not started yet do not start."""
    if (HydraConfig.initialized() and HydraConfig.get().mode == RunMode.MULTIRUN
            and threading.current_thread() is threading.main_thread()
            and signal.getsignal(signal.SIGINT) is signal.default_int_handler):
        signal.signal(signal.SIGINT, signal.SIG_IGN)


def _train(cfg: DictConfig, held: ExitStack) -> dict:
    import torch

    from .data import load_data
    from .models import build_model
    from .sinks import CSVSink, HistogramCSVSink, ProgressSink, Sinks, TensorBoardSink
    from .trainer import Trainer

    from .sweep_job import (JobStart, clear_attempt, gpu_slot, launcher_kind, read_summary, request_stop,
                            start_job, stop_requested, threads_for_job)

    hc = HydraConfig.get()
    run_dir = Path(hc.runtime.output_dir)
    sweeping = hc.mode == RunMode.MULTIRUN
    sweep_dir = Path(hc.sweep.dir)
    local_sweep = sweeping and launcher_kind(hc) == "local"
    t0 = time.perf_counter()
    summary: dict = {
        "status": "failed",
        "error": None,
        "run_dir": str(run_dir),
        "overrides": list(hc.overrides.task),
        "started_at": _dt.datetime.now().astimezone().isoformat(timespec="seconds"),
        "config": OmegaConf.to_container(cfg, resolve=True, enum_to_str=True),
        "versions": versions(),
    }

    start = JobStart(resume_from=Path(cfg.resume) if cfg.resume else None)
    if sweeping:
        if stop_requested(sweep_dir):  # the sweep was stopped before this job began
            earlier = read_summary(run_dir)
            if earlier is None:
                earlier = {**summary, **_never_trained(cfg, t0), "status": "interrupted"}
                write_summary(run_dir, earlier)
            return earlier
        start = start_job(run_dir, resume=bool(cfg.resume))
        if start.skip is not None:
            print(f"{start.skip['status']} earlier, skipped: {shown(run_dir, sweep_dir)}", flush=True)
            return start.skip
    # Ctrl-C / SIGTERM from here on stop the run gently: in a sweep from the job's start
    # (a job process must not die between jobs), in a single run once training starts.
    stop_targets: list = [types.SimpleNamespace(stop=0)]
    on_stop: dict = held.enter_context(stop_on_signals(stop_targets)) if sweeping else {}

    try:  # bad input: refuse before training starts
        check_config(cfg)
        device = resolve_device(cfg.device)
        threads = threads_for_job(cfg.threads, hc) if sweeping else cfg.threads
        if threads:
            torch.set_num_threads(threads)
        if local_sweep and device.type == "cuda" and cfg.device in ("auto", "cuda") and torch.cuda.device_count() > 1:
            device = torch.device("cuda", held.enter_context(gpu_slot(sweep_dir, torch.cuda.device_count(),
                                                                         cfg.jobs_per_gpu)))
        data = load_data(cfg.data, device)
        check_against_data(cfg, len(data.train), data.input_shape)
        checkpoint = None
        if start.resume_from is not None:
            try:
                checkpoint = resume_checkpoint(start.resume_from, cfg, summary["config"])
            except NothingToDo:
                if not sweeping:
                    raise
                clear_attempt(run_dir)  # killed between its last checkpoint and its summary: train again
                start.resume_from = None
    except UsageError as e:
        if sweeping:  # recorded in its own directory; the rest of the sweep goes on
            summary.update(_never_trained(cfg, t0), error=str(e))
            write_summary(run_dir, summary)
            print(f"normbench: error: {shown(run_dir, sweep_dir)}: {e}", file=sys.stderr, flush=True)
            return summary
        if not cfg.resume:  # never remove anything from the run being resumed
            _discard_hydra_files(run_dir)
        print(f"normbench: error: {e}", file=sys.stderr)
        sys.exit(e.exit_code)
    except NothingToDo as e:
        print(f"normbench: {e}")
        return {}
    except Exception as e:  # not the user's input: recorded as a failed run, never dropped
        summary.update(_never_trained(cfg, t0), error=f"{type(e).__name__}: {e}")
        log.error("run failed before training:\n%s", traceback.format_exc())
        write_summary(run_dir, summary)
        if sweeping:
            _report(summary, run_dir, sweep_dir)
            return summary
        raise RunFailed(f"run failed: {summary['error']}; details in {shown(run_dir / 'train.log')}") from e

    trainer = outcome = error = None
    try:  # from here on, whatever happens is recorded in summary.json
        torch.manual_seed(cfg.seed)
        model = build_model(cfg, data.input_shape, data.num_classes).to(device)
        summary["num_params"] = sum(p.numel() for p in model.parameters())
        trainer = Trainer(model, data, cfg)
        trainer.stop = stop_targets[0].stop  # a signal before training: it stops after the first step
        stop_targets.append(trainer)
        resume_step = None
        if start.resume_from is not None:
            for stale in run_dir.glob(".*.tmp"):  # a write that a killed process left unfinished
                stale.unlink()
            trainer.load_state_dict(checkpoint)
            resume_step = trainer.step
            log.info("resumed from %s at step %d (epoch %d, step %d of it)", run_dir / CHECKPOINT, trainer.step,
                     trainer.epoch + 1, trainer.position)
        log.info("model:\n%s", model)
        log.info("data=%s: %d train, %d val samples of shape %s; device %s", cfg.data.name, len(data.train),
                 len(data.val), data.input_shape, device)
        tensorboard = TensorBoardSink(run_dir, resume_step)
        sinks = Sinks(
            CSVSink(run_dir / METRICS, resume_step),
            HistogramCSVSink(run_dir / HISTOGRAMS, resume_step),
            tensorboard,
            # in a sweep each job says one line when it ends, no progress of its own
            ProgressSink(trainer.total_steps, cfg.epochs, start=trainer.step) if cfg.progress and not sweeping
            else None,
        )

        def save(tr):
            save_checkpoint(run_dir, {**tr.state_dict(), "config": summary["config"], "normbench_version": __version__})

        def after_epoch(tr):
            sinks.flush()  # a crash loses at most the steps since the last epoch in TensorBoard
            if cfg.checkpoint:
                save(tr)

        try:
            with ExitStack() as signals:
                if not sweeping:
                    on_stop = signals.enter_context(stop_on_signals(stop_targets))
                outcome = trainer.run(sinks.log, after_epoch)
            summary["status"] = outcome.status
            if outcome.status == "interrupted" and cfg.checkpoint and not trainer.torn:
                save(trainer)  # exactly where it stopped, so resume=<run dir> goes on from there
        finally:
            if summary["status"] in ("completed", "diverged"):  # final: logged once
                sinks.log(trainer.step, trainer.epoch, summary_scalars(outcome_fields(outcome, cfg.batch_size)))
            tensorboard.write_hparams({**hparams(summary["config"]), "status": summary["status"]}, HPARAM_METRICS)
            sinks.close()
    except Exception as e:  # recorded, never silently dropped
        error = e
        summary["error"] = f"{type(e).__name__}: {e}"
        log.error("run failed at step %d:\n%s", trainer.step if trainer else 0, traceback.format_exc())

    summary.update(outcome_fields(outcome, cfg.batch_size))
    summary.update({
        "target_acc": cfg.target_acc,
        "steps": trainer.step if trainer else 0,
        "wall_time_s": time.perf_counter() - t0,
        "finished_at": _dt.datetime.now().astimezone().isoformat(timespec="seconds"),
        "device": str(device),
        "threads": torch.get_num_threads(),
        "device_name": torch.cuda.get_device_name(device) if device.type == "cuda" else platform.processor() or "cpu",
    })
    summary = {k: _finite(v) for k, v in summary.items()}
    write_summary(run_dir, summary)
    _report(summary, run_dir, sweep_dir if sweeping else None)

    if summary["status"] == "interrupted" and trainer is not None:
        if trainer.stop == signal.SIGUSR2 and callable(on_stop.get(trainer.stop)):
            # submitit's "time is up": it requeues the job, which resumes from this checkpoint
            on_stop[trainer.stop](trainer.stop, None)
        if local_sweep:  # Ctrl-C in a local sweep: the jobs that have not started will not
            request_stop(sweep_dir)
    if sweeping:
        return summary
    if error is not None:
        raise RunFailed(f"run failed: {summary['error']}; details in {shown(run_dir / 'train.log')}") from error
    if summary["status"] == "interrupted":
        sys.exit(128 + (trainer.stop or signal.SIGINT))  # 130 after Ctrl-C, 143 after SIGTERM
    return summary


@contextmanager
def stop_on_signals(targets: list):
    """SIGINT (Ctrl-C) and SIGTERM (kill, SLURM's preemption) set ``.stop`` of each of
    ``targets`` (the trainer, once there is one) to the signal's number: the run ends after
    the current step, its checkpoint and metrics written. Under submitit, its USR2 ("time is
    up") too; the run then hands it on to submitit's handler, which requeues the job. A
    second signal acts as it would have without normbench. Handlers can only be
    set in the main thread; elsewhere the signals keep their usual effect."""
    if threading.current_thread() is not threading.main_thread():
        yield {}
        return
    signums = [signal.SIGINT, signal.SIGTERM]
    if callable(signal.getsignal(signal.SIGUSR2)):  # submitit's "time is up" signal: it requeues the job
        signums.append(signal.SIGUSR2)
    previous = {s: signal.getsignal(s) for s in signums}

    def on_signal(signum, _frame):
        for target in targets:
            target.stop = signum
        for s in signums:  # a signal ignored before (in a sweep's job) now stops the process
            signal.signal(s, signal.SIG_DFL if previous[s] == signal.SIG_IGN else previous[s])
        log.warning("%s: stopping after this step; a second one stops at once", signal.Signals(signum).name)
        print(f"\nnormbench: {signal.Signals(signum).name}: stopping after this step, saving the checkpoint",
              file=sys.stderr, flush=True)

    for s in signums:
        signal.signal(s, on_signal)
    try:
        yield previous  # the handlers before: the run calls submitit's after saving its checkpoint
    finally:
        for s in signums:
            signal.signal(s, previous[s])


def _report(s: dict, run_dir: Path, sweep_dir: Path | None = None) -> None:
    if sweep_dir is not None:  # one line per job: the sweep prints the tally and where things are
        done = {"completed": f"val/acc {s['final_val_acc']:.4f}" if s.get("final_val_acc") is not None else "",
                "diverged": f"at step {s.get('diverged_at_step')}", "failed": s.get("error") or "",
                "interrupted": f"after {s.get('steps')} steps"}[s["status"]]
        line = f"{s['status']} {shown(run_dir, sweep_dir)}: {done} ({s['wall_time_s']:.1f} s)"
        log.info(line)
        print(line, flush=True)
        return
    if s["status"] == "completed":
        line = (f"completed: val/acc {s['final_val_acc']:.4f} (best {s['best_val_acc']:.4f}), "
                f"{s['steps']} steps in {s['wall_time_s']:.1f} s")
    elif s["status"] == "diverged":
        line = f"diverged: the loss or a gradient became NaN/inf at step {s['diverged_at_step']}"
    else:
        line = f"{s['status']} after {s['steps']} steps"
    log.info(line)
    print(line)
    print(f"run directory: {shown(run_dir)}")
    print(f"tensorboard --logdir {shown(run_dir)}")


@hydra.main(config_path="pkg://normbench.conf", config_name="config", version_base="1.3")
def hydra_main(cfg: DictConfig) -> None:
    train(cfg)
