"""Hand-made run directories in normbench's layout (summary.json, metrics.csv,
histograms.csv, .hydra/), written directly and fast, for the report's tests and
scripts/bench_report.py."""

from __future__ import annotations

import copy
import json
from pathlib import Path

import numpy as np

CONFIG = {
    "model": {"name": "mlp", "depth": 3, "width": 128, "activation": "relu"},
    "norm": {"name": "bn", "momentum": 0.1, "eps": 1e-05, "affine": True, "precise_bn": False,
             "precise_bn_batches": 50},
    "data": {"name": "digits", "standardize": True, "val_fraction": 0.2, "split_seed": 0},
    "optim": {"name": "sgd", "momentum": 0.9, "weight_decay": 0.0, "nesterov": False},
    "placement": "pre", "dropout": 0.0, "init": "default", "lr": 0.05, "batch_size": 64, "epochs": 2,
    "seed": 0, "device": "auto", "target_acc": 0.95, "log_every": 10, "eval_batch_size": 1024,
    "checkpoint": True, "progress": False, "probe_every": 100, "probe_batch_size": 256, "resume": None,
}
NORM_KEYS = {"bn": CONFIG["norm"], "ln": {"name": "ln", "eps": 1e-05, "affine": True},
             "gn": {"name": "gn", "groups": 8, "eps": 1e-05, "affine": True}, "none": {"name": "none"}}


def config(norm: str = "bn", seed: int = 0, **top) -> dict:
    c = copy.deepcopy(CONFIG)
    c["norm"] = copy.deepcopy(NORM_KEYS[norm])
    c["seed"] = seed
    for key, value in top.items():
        if "." in key:
            group, name = key.split(".", 1)
            c[group][name] = value
        else:
            c[key] = value
    return c


def write_run(run_dir: Path, *, norm: str = "bn", seed: int = 0, status: str = "completed",
              final_val_acc: float | None = 0.9, best_val_acc: float | None = None,
              steps_to_target: int | None = None, seconds_to_target: float | None = None,
              final_train_loss: float | None = 0.3, train_eval_gap: float | None = None,
              steps: int = 40, log_every: int = 10, layers: tuple = ("block1.linear", "block1.norm", "head"),
              metrics: bool = True, histograms: bool = False, val_samples: int | None = None,
              **config_keys) -> Path:
    """One run directory; the curves in metrics.csv end at the summary's final values."""
    run_dir.mkdir(parents=True, exist_ok=True)
    cfg = config(norm, seed, **config_keys)
    overrides = [f"norm={norm}", f"seed={seed}"]
    summary = {
        "status": status, "error": "ValueError: boom" if status == "failed" else None, "run_dir": str(run_dir),
        "overrides": overrides, "config": cfg,
        "final_val_acc": final_val_acc, "final_val_loss": 0.2, "final_train_loss": final_train_loss,
        "final_train_acc": 0.95, "best_val_acc": final_val_acc if best_val_acc is None else best_val_acc,
        "best_val_loss": 0.2, "steps_to_target": steps_to_target, "seconds_to_target": seconds_to_target,
        "epochs_completed": 2, "diverged_at_step": 25 if status == "diverged" else None, "steps_per_s": 100.0,
        "samples_per_s": 6400.0, "train_time_s": steps / 100, "train_eval_gap": train_eval_gap,
        "target_acc": cfg["target_acc"], "steps": steps, "wall_time_s": 1.0, "num_params": 43018,
        "val_samples": val_samples, "versions": {"normbench": "0.1.0", "torch": "2.14.1"},
    }
    (run_dir / "summary.json").write_text(json.dumps(summary, indent=2))
    hydra = run_dir / ".hydra"
    hydra.mkdir(exist_ok=True)
    (hydra / "config.yaml").write_text(json.dumps(cfg))  # JSON is YAML
    (hydra / "overrides.yaml").write_text("".join(f"- {o}\n" for o in overrides))
    (hydra / "hydra.yaml").write_text("hydra: {}\n")
    if metrics and status != "failed":
        write_metrics(run_dir, seed, steps, log_every, layers, final_val_acc, final_train_loss)
    if histograms:
        write_histograms(run_dir, seed)
    return run_dir


def write_metrics(run_dir: Path, seed: int, steps: int, log_every: int, layers: tuple, final_val_acc, final_loss):
    rng = np.random.default_rng(seed)
    record = np.arange(log_every, steps + 1, log_every)
    lines = ["step,epoch,tag,value,wall_time"]
    final_loss = 0.3 if final_loss is None else final_loss
    final_val_acc = 0.9 if final_val_acc is None else final_val_acc
    loss = final_loss * (1 + (record[-1] - record) / record[-1]) + 0.01 * rng.random(len(record))
    loss[-1] = final_loss
    acc = final_val_acc * (0.5 + 0.5 * record / record[-1])
    for i, s in enumerate(record):
        lines.append(f"{s},1,train/loss,{float(loss[i])!r},0.0")
        lines.append(f"{s},1,train/acc,0.5,0.0")
        lines += [f"{s},1,grad_norm/{layer},{float(0.1 * (j + 1) * (1 + rng.random()))!r},0.0"
                  for j, layer in enumerate(layers)]
        lines.append(f"{s},1,grad_norm/total,1.0,0.0")
        lines.append(f"{s},1,val/acc,{float(acc[i])!r},0.0")
    (run_dir / "metrics.csv").write_text("\n".join(lines) + "\n")


def write_histograms(run_dir: Path, seed: int, blocks=("block1", "block2", "block3"), step: int = 0,
                     variances: tuple = ((4, 12), (0.999, 1.0)), log: bool = True, zeros: int = 0):
    """histograms.csv of a run: values, and per-feature variances uniform in ``variances``
    (before, after the norm), binned as the probes bin them: on a log scale with a first bin
    for the zeros (``zeros`` of them before the norm), or (``log=False``) in equal widths, as
    normbench did before."""
    rng = np.random.default_rng(seed)
    lines = ["step,epoch,tag,left,right,count"]
    for block in blocks:
        for tag, values in ((f"act/{block}/pre_norm", rng.normal(2, 3, 1000)),
                            (f"act/{block}/post_norm", rng.normal(0, 1, 1000)),
                            (f"act/{block}/pre_norm/feature_var",
                             np.r_[np.zeros(zeros), rng.uniform(*variances[0], 64 - zeros)]),
                            (f"act/{block}/post_norm/feature_var", rng.uniform(*variances[1], 64))):
            if log and tag.endswith("feature_var"):
                positive = values[values > 0]
                counts, edges = np.histogram(positive, bins=np.geomspace(positive.min(), positive.max(), 30))
                counts, edges = np.r_[len(values) - len(positive), counts], np.r_[0.0, edges]
            else:
                counts, edges = np.histogram(values, bins=30)
            lines += [f"{step},0,{tag},{float(a)!r},{float(b)!r},{int(c)}"
                      for a, b, c in zip(edges[:-1], edges[1:], counts, strict=True)]
    (run_dir / "histograms.csv").write_text("\n".join(lines) + "\n")


def write_sweep(sweep: Path) -> Path:
    """A directory Hydra would call a sweep: it holds multirun.yaml."""
    sweep.mkdir(parents=True, exist_ok=True)
    (sweep / "multirun.yaml").write_text("hydra: {}\n")
    return sweep
