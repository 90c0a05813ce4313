"""Checks of config values and combinations that Hydra's types cannot express.

Each check raises :class:`UsageError` with one line: the key, the value, what is
allowed. They run before anything is written (see ``preflight.py``); checks that need
the data (its shape, its size) run in ``check_against_data`` once it is loaded.
"""

from __future__ import annotations

import math
import re
from typing import Any, Sequence

from omegaconf import DictConfig

from .errors import UsageError
from .norms import NORMS


def _fail(key: str, value: Any, allowed: str) -> None:
    raise UsageError(f"{key}={_show(value)} is not allowed; allowed: {allowed}")


def _show(value: Any) -> str:
    if isinstance(value, (list, tuple)) or type(value).__name__ == "ListConfig":
        return "[" + ",".join(_show(v) for v in value) + "]"
    return str(value)


def _number(key: str, value: Any, lo: float | None = None, hi: float | None = None,
            lo_open: bool = False, hi_open: bool = False) -> None:
    """value must be a finite number within [lo, hi] (bounds optional, open or closed)."""
    ok = isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value)
    if ok and lo is not None:
        ok = value > lo if lo_open else value >= lo
    if ok and hi is not None:
        ok = value < hi if hi_open else value <= hi
    if not ok:
        left = "" if lo is None else f"{lo} {'<' if lo_open else '<='} "
        right = "" if hi is None else f" {'<' if hi_open else '<='} {hi}"
        _fail(key, value, f"a finite number, {left}{key.split('.')[-1]}{right}")


def _integer(key: str, value: Any, lo: int, hi: int | None = None) -> None:
    if not isinstance(value, int) or isinstance(value, bool) or value < lo or (hi is not None and value > hi):
        rng = f">= {lo}" if hi is None else f"in [{lo}, {hi}]"
        _fail(key, value, f"an integer {rng}")


def _per_feature(key: str, values: Sequence[float], n_features: int) -> None:
    if len(values) not in (1, n_features):
        _fail(key, values, f"one value or one per feature (data.n_features={n_features})")
    for v in values:
        _number(key, v)


AMP = ("none", "bf16")
DEVICE = re.compile(r"^(auto|cpu|cuda(:\d+)?)$")


def check_config(cfg: DictConfig) -> None:
    """Every value and combination that can be judged without loading data."""
    _number("dropout", cfg.dropout, 0, 1, hi_open=True)
    _number("lr", cfg.lr, 0, lo_open=True)
    _integer("batch_size", cfg.batch_size, 1)
    _integer("epochs", cfg.epochs, 1)
    _integer("seed", cfg.seed, 0, 2**32 - 1)
    _number("target_acc", cfg.target_acc, 0, 1, lo_open=True)
    _integer("log_every", cfg.log_every, 1)
    _integer("eval_batch_size", cfg.eval_batch_size, 1)
    _integer("probe_every", cfg.probe_every, 0)
    _integer("probe_batch_size", cfg.probe_batch_size, 2)
    if cfg.threads is not None:
        _integer("threads", cfg.threads, 1)
    _integer("jobs_per_gpu", cfg.jobs_per_gpu, 1)
    if not DEVICE.match(str(cfg.device)):
        _fail("device", cfg.device, "auto, cpu, cuda, cuda:N")
    if cfg.amp not in AMP:
        _fail("amp", cfg.amp, ", ".join(AMP) + " (fp16 would need loss scaling, which skips steps whose gradients "
              "overflow; normbench would record those as divergence)")
    if cfg.channels_last and cfg.model.name != "cnn":
        raise UsageError(f"channels_last=true is not allowed with model={cfg.model.name}: it is a memory layout "
                         f"for feature maps, and an MLP has none; allowed: model=cnn, or channels_last=false")
    _check_model(cfg.model)
    _check_norm(cfg)
    _check_data(cfg.data)
    _check_optim(cfg.optim)
    if cfg.model.name == "cnn" and cfg.data.name == "blobs":
        raise UsageError(
            "model=cnn needs image data, but data=blobs gives feature vectors; "
            "allowed: model=mlp with data=blobs, or model=cnn with digits, synthetic, mnist, fashion_mnist, cifar10"
        )


def _check_model(m: DictConfig) -> None:
    if m.name == "mlp":
        _integer("model.depth", m.depth, 1)
        _integer("model.width", m.width, 1)
    else:
        if len(m.channels) == 0:
            _fail("model.channels", m.channels, "a non-empty list of positive integers, e.g. [32,64]")
        for c in m.channels:
            if not isinstance(c, int) or c < 1:
                _fail("model.channels", m.channels, "a non-empty list of positive integers, e.g. [32,64]")


def hidden_widths(model: DictConfig) -> list[int]:
    """The feature (channel) count of every hidden block, where a norm layer sits."""
    return [model.width] * model.depth if model.name == "mlp" else list(model.channels)


def _check_norm(cfg: DictConfig) -> None:
    n, kind = cfg.norm, ("vector" if cfg.model.name == "mlp" else "maps")
    spec = NORMS[n.name]
    if spec.build(kind) is None:
        raise UsageError(
            f"norm={n.name} is not allowed with model={cfg.model.name}: {spec.label} needs feature maps "
            f"(it normalises each channel over space, and an MLP's features have none); "
            f"allowed: model=cnn, or norm=bn, ln, gn, none"
        )
    if "eps" in n:
        _number("norm.eps", n.eps, 0, lo_open=True)
    if "momentum" in n and n.momentum is not None:
        _number("norm.momentum", n.momentum, 0, 1)
    if "precise_bn_batches" in n:
        _integer("norm.precise_bn_batches", n.precise_bn_batches, 1)
    if n.name == "gn":
        _integer("norm.groups", n.groups, 1)
        widths = hidden_widths(cfg.model)
        if any(w % n.groups for w in widths):
            what = (f"model.width={cfg.model.width}" if cfg.model.name == "mlp"
                    else f"model.channels={_show(cfg.model.channels)}")
            divisors = ", ".join(map(str, _common_divisors(widths)))
            raise UsageError(f"norm.groups={n.groups} does not divide {what}; "
                             f"allowed: a number of groups that divides every hidden width: {divisors}")
    if kind == "vector" and n.name in ("gn", "ln"):
        per_group = cfg.model.width // (n.groups if n.name == "gn" else 1)
        if per_group < 2:
            what = f"norm.groups={n.groups} with model.width={cfg.model.width}" if n.name == "gn" \
                else f"model.width={cfg.model.width} with norm=ln"
            raise UsageError(f"{what} normalises single features, which makes every output 0; "
                             f"allowed: at least 2 features per group (width / groups >= 2)")


def _common_divisors(widths: list[int]) -> list[int]:
    g = 0
    for w in widths:
        g = math.gcd(g, w)
    return [d for d in range(1, g + 1) if g % d == 0]


def _check_data(d: DictConfig) -> None:
    _number("data.val_fraction", d.val_fraction, 0, 1, lo_open=True, hi_open=True)
    _integer("data.split_seed", d.split_seed, 0, 2**32 - 1)
    if d.name == "blobs":
        _integer("data.n_classes", d.n_classes, 2)
        _integer("data.n_features", d.n_features, 1)
        _integer("data.n_samples", d.n_samples, 4 * d.n_classes)
        _number("data.separation", d.separation, 0)
        _number("data.cluster_std", d.cluster_std, 0, lo_open=True)
        _per_feature("data.feature_scale", d.feature_scale, d.n_features)
        _per_feature("data.feature_shift", d.feature_shift, d.n_features)
        _integer("data.seed", d.seed, 0, 2**32 - 1)
    elif d.name == "synthetic":
        if len(d.shape) not in (1, 3) or not all(isinstance(s, int) and s >= 1 for s in d.shape):
            _fail("data.shape", d.shape, "[C,H,W] (images) or [n] (feature vectors), positive integers")
        _integer("data.n_classes", d.n_classes, 2)
        _integer("data.n_samples", d.n_samples, 4 * d.n_classes)
        _number("data.noise", d.noise, 0)
        _integer("data.seed", d.seed, 0, 2**32 - 1)
    elif d.name not in ("digits", "mnist", "fashion_mnist", "cifar10"):
        _fail("data.name", d.name, "digits, blobs, synthetic, mnist, fashion_mnist, cifar10")


def _check_optim(o: DictConfig) -> None:
    _number("optim.weight_decay", o.weight_decay, 0)
    if o.name == "sgd":
        _number("optim.momentum", o.momentum, 0, 1, hi_open=True)
        if o.nesterov and o.momentum == 0:
            _fail("optim.nesterov", True, "false when optim.momentum=0 (Nesterov needs momentum)")
    else:
        if len(o.betas) != 2 or not all(isinstance(b, float) and 0 <= b < 1 for b in o.betas):
            _fail("optim.betas", o.betas, "two numbers [beta1,beta2], each 0 <= beta < 1")
        _number("optim.eps", o.eps, 0, lo_open=True)


def check_against_data(cfg: DictConfig, n_train: int, input_shape: tuple[int, ...]) -> None:
    """Checks that need the loaded data: enough samples for a batch, big enough images."""
    if cfg.batch_size > n_train:
        _fail("batch_size", cfg.batch_size,
              f"at most the training split's size ({n_train} samples for data={cfg.data.name})")
    if cfg.norm.name == "bn" and cfg.batch_size < 2:
        _fail("batch_size", cfg.batch_size, "at least 2 with norm=bn (BatchNorm needs two samples per batch)")
    if cfg.model.name == "cnn":
        if len(input_shape) != 3:
            raise UsageError(f"model=cnn needs image data, but data={cfg.data.name} has shape {input_shape}; "
                             "allowed: model=mlp")
