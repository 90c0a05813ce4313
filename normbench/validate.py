"""Checks of config values and combinations that Hydra's types cannot express.

Each check raises :class:`UsageError` with one line: the key, the value, what is
allowed. ``check_config`` runs before anything is written (``preflight.py`` for a run,
the sweeper for every job of a sweep); the axis tables supply each option's own
constraints and the "allowed:" lists. Checks that need the data (its shape, its size) run
in ``check_against_data`` once it is loaded.
"""

from __future__ import annotations

import dataclasses
import difflib
import logging
import os
import re

from omegaconf import DictConfig, OmegaConf

from . import checks
from .budget import check_budget, effective_lr, plan
from .checks import fail, integer, number, option
from .config import AXES, TrainConfig
from .augment import active
from .data import DATASETS, check_augment
from .errors import UsageError
from .models import MODELS
from .norms import NORMS
from .optim import OPTIMIZERS, check_decays
from .schedules import SCHEDULES, check_common, milestone_steps, warmup_steps

log = logging.getLogger("normbench")
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
    _same_keys(cfg, [f.name for f in dataclasses.fields(TrainConfig)], "", "normbench", extra=("hydra",))
    for group, table in AXES.items():
        row = table.get(cfg[group].get("name")) if isinstance(cfg[group], DictConfig) else None
        if row is not None:
            _same_keys(cfg[group], [f.name for f in dataclasses.fields(row.schema)], f"{group}.",
                       f"{group}={cfg[group].name}")


def _same_keys(node: DictConfig, expected: list[str], prefix: str, owner: str, extra: tuple = ()) -> None:
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
    check_budget(cfg)
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
                         f"for feature maps, and {HAS_NONE[model.kind]}; allowed: model={_with_maps()}, or "
                         f"channels_last=false")
    model.check(cfg.model)
    _check_norm(cfg)
    _check_data(cfg.data)
    _check_optim(cfg.optim)
    _check_schedule(cfg)
    if model.needs_images and DATASETS[cfg.data.name].inputs == "vectors":  # data.shape: checked with the data
        images = ", ".join(name for name, d in DATASETS.items() if d.inputs != "vectors")
        raise UsageError(f"model={cfg.model.name} needs image data, but data={cfg.data.name} gives feature vectors; "
                         f"allowed: model=mlp with data={cfg.data.name}, or model={cfg.model.name} with {images}")


def hidden_widths(model: DictConfig) -> list[int]:
    """The feature (channel) count of every hidden block, where a norm layer sits."""
    return MODELS[model.name].widths(model)


# a model's kind -> what its norms see, said when a norm has no form for it
HAS_NONE = {"vector": "an MLP's features have no spatial extent",
            "tokens": "a Transformer's norms see tokens, with no spatial extent and no single layer before them"}


def _with_maps() -> str:
    return ", ".join(name for name, m in MODELS.items() if m.kind == "maps")


def _check_norm(cfg: DictConfig) -> None:
    n, model = cfg.norm, MODELS[cfg.model.name]
    spec = NORMS[n.name]
    if spec.build(model.kind) is None:
        fits = ", ".join(name for name, row in NORMS.items() if row.build(model.kind) is not None)
        others = [name for name, m in MODELS.items() if spec.build(m.kind) is not None]
        raise UsageError(
            f"norm={n.name} is not allowed with model={cfg.model.name}: {spec.label} works on {spec.needs}, and "
            f"{HAS_NONE[model.kind]}; allowed: model={', '.join(others)}, or norm={fits}"
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
                         f"standardizes the filters of the convolutions before the norms, and {HAS_NONE[model.kind]}; "
                         f"allowed: model={_with_maps()}")
    if spec.check is not None:
        spec.check(n, hidden_widths(cfg.model), model.kind, model.what(cfg.model))
    if cfg.model.get("zero_init_residual", False):
        _check_zero_init(cfg)


def _check_zero_init(cfg: DictConfig) -> None:
    """``model.zero_init_residual`` needs a residual branch ending in a norm with a scale."""
    if not cfg.norm.get("affine", False):
        scaled = ", ".join(name for name, row in NORMS.items() if "affine" in
                           {f.name for f in dataclasses.fields(row.schema)})
        raise UsageError(f"model.zero_init_residual=true is not allowed with norm={cfg.norm.name}"
                         f"{' norm.affine=false' if 'affine' in cfg.norm else ''}: it starts each residual branch's "
                         f"last norm scale (gamma) at 0, and this norm has none; allowed: norm={scaled} with "
                         f"norm.affine=true, or model.zero_init_residual=false")
    if option(cfg.placement) == "post":
        raise UsageError("model.zero_init_residual=true is not allowed with placement=post: the block's last norm "
                         "then follows the addition and would zero the block's output, not its residual branch; "
                         "allowed: placement=pre")
    if cfg.model.get("preact", False):
        raise UsageError("model.zero_init_residual=true is not allowed with model.preact=true: a pre-activation "
                         "residual branch ends with a conv, not a norm; allowed: model.preact=false")


def _check_data(d: DictConfig) -> None:
    number("data.val_fraction", d.val_fraction, 0, 1, lo_open=True, hi_open=True)
    integer("data.split_seed", d.split_seed, 0, checks.SEED_MAX)
    row = DATASETS.get(d.name)
    if row is None:
        fail("data.name", d.name, ", ".join(DATASETS))
    if row.check is not None:
        row.check(d)
    check_augment(d)


def _check_optim(o: DictConfig) -> None:
    check_decays(o)
    OPTIMIZERS[o.name].check(o)


def _check_schedule(cfg: DictConfig) -> None:
    s = cfg.schedule
    check_common(s)
    row = SCHEDULES[s.name]
    if row.check is not None:
        row.check(s, effective_lr(cfg))


def check_against_data(cfg: DictConfig, n_train: int, input_shape: tuple[int, ...]) -> None:
    """Checks that need the loaded data: enough samples for a batch, big enough images."""
    if cfg.batch_size > n_train:
        fail("batch_size", cfg.batch_size, f"at most the training split's size ({n_train} samples for "
                                           f"data={cfg.data.name})")
    need = NORMS[cfg.norm.name].min_batch
    if cfg.batch_size < need:
        fail("batch_size", cfg.batch_size, f"at least {need} with norm={cfg.norm.name} "
                                           f"({NORMS[cfg.norm.name].label} needs {need} samples per batch)")
    model = MODELS[cfg.model.name]
    if model.needs_images and len(input_shape) != 3:
        raise UsageError(f"model={cfg.model.name} needs image data, but data={cfg.data.name} has shape "
                         f"{input_shape}; allowed: model=mlp")
    if model.check_data is not None:
        model.check_data(cfg.model, input_shape)
    if active(cfg.data) and len(input_shape) == 3 and cfg.data.augment_pad >= min(input_shape[1:]):
        fail("data.augment_pad", cfg.data.augment_pad, f"fewer pixels than the images' side ({min(input_shape[1:])} "
                                                       f"for data={cfg.data.name})")
    if cfg.batch_size <= n_train:
        _check_schedule_length(cfg, n_train)


def _check_schedule_length(cfg: DictConfig, n_train: int) -> None:
    """The warm-up and the milestones against the run's length: a milestone inside the
    warm-up is refused; a warm-up or milestone past the last step is said (a short trial
    run of a long recipe has them)."""
    p = plan(cfg, n_train)
    s = cfg.schedule
    warm = warmup_steps(s, p.steps_per_epoch)
    if warm > p.total_steps:
        log.warning("schedule: the warm-up (%d steps) is longer than the run (%d steps): the run ends before the "
                    "full learning rate", warm, p.total_steps)
    if s.name == "step":
        steps = milestone_steps(s, p)
        if steps[0] <= warm:
            fail("schedule.milestones", s.milestones, f"milestones after the warm-up's {warm} steps "
                                                      f"({p.steps_per_epoch} steps per epoch)")
        late = [m for m, at in zip(s.milestones, steps) if at >= p.total_steps]
        if late:
            log.warning("schedule: milestones %s are at or after the run's last step (%d): the learning rate never "
                        "drops there", late, p.total_steps)
