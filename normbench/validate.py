"""Checks of config values and combinations that Hydra's types cannot express.

Each check raises :class:`UsageError` with one line: the key, the value, what is
allowed. ``check_config`` runs before anything is written (``preflight.py`` for a run,
the sweeper for every job of a sweep); the axis tables supply each option's own
constraints and the "allowed:" lists. Checks that need the data (its shape, its size) run
in ``check_against_data`` once it is loaded.
"""

from __future__ import annotations

import os
import re

from omegaconf import DictConfig

from . import checks
from .checks import fail, integer, number
from .data import DATASETS
from .errors import UsageError
from .models import MODELS
from .norms import NORMS
from .optim import OPTIMIZERS

AMP = ("none", "bf16")
DEVICE = re.compile(r"^(auto|cpu|cuda(:\d+)?)$")


def max_threads() -> int:
    """The most torch threads a run may ask for: 4 x this machine's cores (beyond that a
    thread pool only thrashes; tens of thousands crash torch)."""
    return 4 * (os.cpu_count() or 1)


def check_device(device) -> None:
    if not DEVICE.match(str(device)):
        fail("device", device, "auto, cpu, cuda, cuda:N")


def check_keys(cfg: DictConfig) -> None:
    """A composed config has exactly its schema's keys: one added that the schema lacks
    (``+dropuot=0.5``, ``++norm.groups=4`` with ``norm=bn``, ``+norm@extra=ln``) is refused
    with the key it may have meant, and one deleted or left without a value (``~dropout``,
    ``~norm``) too. Checked where Hydra composed the config (a run, every job of a sweep)."""
    import dataclasses

    from .config import AXES, TrainConfig

    _same_keys(cfg, [f.name for f in dataclasses.fields(TrainConfig)], "", "normbench", extra=("hydra",))
    for group, table in AXES.items():
        row = table.get(cfg[group].get("name")) if isinstance(cfg[group], DictConfig) else None
        if row is not None:
            _same_keys(cfg[group], [f.name for f in dataclasses.fields(row.schema)], f"{group}.",
                       f"{group}={cfg[group].name}")


def _same_keys(node: DictConfig, expected: list[str], prefix: str, owner: str, extra: tuple = ()) -> None:
    import difflib

    from omegaconf import OmegaConf

    allowed = "the keys normbench train --help lists" if not prefix else ", ".join(prefix + k for k in expected)
    for k in node.keys():
        if k not in expected and k not in extra:
            close = difflib.get_close_matches(str(k), expected, n=1)
            value = OmegaConf.to_container(node, resolve=False).get(k)
            raise UsageError(f"{prefix}{k}={checks.show(value)} is not a setting of {owner}"
                             + (f" (did you mean {prefix}{close[0]}?)" if close else "") + f"; allowed: {allowed}")
    for k in expected:
        if k not in node or OmegaConf.is_missing(node, k):
            raise UsageError(f"{prefix}{k} has no value (deleted with ~{prefix}{k}?); allowed: a value for every "
                             f"setting of {owner}: {allowed}")


def check_config(cfg: DictConfig) -> None:
    """Every value and combination that can be judged without loading data."""
    number("dropout", cfg.dropout, 0, 1, hi_open=True)
    number("lr", cfg.lr, 0, lo_open=True)
    integer("batch_size", cfg.batch_size, 1)
    integer("epochs", cfg.epochs, 1)
    integer("seed", cfg.seed, 0, checks.SEED_MAX)
    number("target_acc", cfg.target_acc, 0, 1, lo_open=True)
    integer("log_every", cfg.log_every, 1)
    integer("eval_batch_size", cfg.eval_batch_size, 1)
    if cfg.probe_every is not None:
        integer("probe_every", cfg.probe_every, 0)
    integer("probe_batch_size", cfg.probe_batch_size, 2)
    if cfg.threads is not None:
        integer("threads", cfg.threads, 1, max_threads())
    integer("jobs_per_gpu", cfg.jobs_per_gpu, 1)
    check_device(cfg.device)
    if cfg.amp not in AMP:
        fail("amp", cfg.amp, ", ".join(AMP) + " (fp16 would need loss scaling, which skips steps whose gradients "
             "overflow; normbench would record those as divergence)")
    model = MODELS[cfg.model.name]
    if cfg.channels_last and model.kind != "maps":
        raise UsageError(f"channels_last=true is not allowed with model={cfg.model.name}: it is a memory layout "
                         f"for feature maps, and an MLP has none; allowed: model=cnn, or channels_last=false")
    model.check(cfg.model)
    _check_norm(cfg)
    _check_data(cfg.data)
    _check_optim(cfg.optim)
    if model.needs_images and DATASETS[cfg.data.name].inputs == "vectors":  # data.shape: checked with the data
        images = ", ".join(name for name, d in DATASETS.items() if d.inputs != "vectors")
        raise UsageError(f"model={cfg.model.name} needs image data, but data={cfg.data.name} gives feature vectors; "
                         f"allowed: model=mlp with data={cfg.data.name}, or model={cfg.model.name} with {images}")


def hidden_widths(model: DictConfig) -> list[int]:
    """The feature (channel) count of every hidden block, where a norm layer sits."""
    return MODELS[model.name].widths(model)


def _check_norm(cfg: DictConfig) -> None:
    n, model = cfg.norm, MODELS[cfg.model.name]
    spec = NORMS[n.name]
    if spec.build(model.kind) is None:
        fits = ", ".join(name for name, row in NORMS.items() if row.build(model.kind) is not None)
        others = [name for name, m in MODELS.items() if spec.build(m.kind) is not None]
        raise UsageError(
            f"norm={n.name} is not allowed with model={cfg.model.name}: {spec.label} needs feature maps "
            f"(it normalises each channel over space, and an MLP's features have none); "
            f"allowed: model={', '.join(others)}, or norm={fits}"
        )
    if "eps" in n:
        number("norm.eps", n.eps, 0, lo_open=True)
    if "momentum" in n and n.momentum is not None:
        number("norm.momentum", n.momentum, 0, 1)
    if n.get("ghost_batch") is not None:
        integer("norm.ghost_batch", n.ghost_batch, 2)
        if cfg.batch_size % n.ghost_batch:
            fail("norm.ghost_batch", n.ghost_batch, f"a divisor of batch_size={cfg.batch_size} (each training batch "
                                                    f"is normalised in ghost batches of this many samples)")
    if n.get("weight_standardization", False) and model.kind != "maps":
        raise UsageError(f"norm.weight_standardization=true is not allowed with model={cfg.model.name}: it "
                         f"standardizes convolution filters, and an MLP has none; allowed: model=cnn")
    if spec.check is not None:
        spec.check(n, hidden_widths(cfg.model), model.kind, model.what(cfg.model))


def _check_data(d: DictConfig) -> None:
    number("data.val_fraction", d.val_fraction, 0, 1, lo_open=True, hi_open=True)
    integer("data.split_seed", d.split_seed, 0, checks.SEED_MAX)
    row = DATASETS.get(d.name)
    if row is None:
        fail("data.name", d.name, ", ".join(DATASETS))
    if row.check is not None:
        row.check(d)


def _check_optim(o: DictConfig) -> None:
    number("optim.weight_decay", o.weight_decay, 0)
    OPTIMIZERS[o.name].check(o)


def check_against_data(cfg: DictConfig, n_train: int, input_shape: tuple[int, ...]) -> None:
    """Checks that need the loaded data: enough samples for a batch, big enough images."""
    if cfg.batch_size > n_train:
        fail("batch_size", cfg.batch_size, f"at most the training split's size ({n_train} samples for "
                                           f"data={cfg.data.name})")
    need = NORMS[cfg.norm.name].min_batch
    if cfg.batch_size < need:
        fail("batch_size", cfg.batch_size, f"at least {need} with norm={cfg.norm.name} "
                                           f"({NORMS[cfg.norm.name].label} needs {need} samples per batch)")
    if MODELS[cfg.model.name].needs_images and len(input_shape) != 3:
        raise UsageError(f"model={cfg.model.name} needs image data, but data={cfg.data.name} has shape "
                         f"{input_shape}; allowed: model=mlp")
