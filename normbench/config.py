"""Typed schemas of every config key, registered in Hydra's ConfigStore.

The values live in the YAML files under ``conf/``. The top-level keys are typed here
(``TrainConfig``); each option of a group (``norm=bn``, ``model=cnn``, ...) has its schema
in its axis table (``norms.NORMS``, ``models.MODELS``, ``optim.OPTIMIZERS``,
``data.DATASETS``), so Hydra refuses ``dropout=abc`` or ``placement=middle`` while
composing, and each key has a one-line description (the string under its field). A YAML
option extends its schema:

    # conf/model/mlp.yaml
    defaults:
      - /schema/model@_here_: mlp
"""

from __future__ import annotations

import functools
from dataclasses import dataclass
from typing import Any, Optional

from omegaconf import MISSING

from .budget import LRScaling
from .data import DATASETS
from .models import MODELS, Init, Placement
from .norms import NORMS
from .optim import OPTIMIZERS
from .schedules import SCHEDULES

# group -> its table: the options a user picks with group=<name>
AXES = {"model": MODELS, "norm": NORMS, "data": DATASETS, "optim": OPTIMIZERS, "schedule": SCHEDULES}


@dataclass
class TrainConfig:
    model: Any = MISSING
    """model group: mlp, cnn, vgg, resnet, vit"""
    norm: Any = MISSING
    """norm group: bn, brn, ln, rms, in, gn, wn, none (the README's norm table)"""
    data: Any = MISSING
    """data group: digits, blobs, synthetic, mnist, fashion_mnist, cifar10"""
    optim: Any = MISSING
    """optim group: sgd, adam, adamw"""
    schedule: Any = MISSING
    """schedule group: constant, step, cosine (each with an optional linear warm-up)"""
    placement: Placement = MISSING
    """norm before (pre) or after (post) the activation"""
    dropout: float = MISSING
    """dropout probability after each hidden block, in [0, 1)"""
    init: Init = MISSING
    """weight initialisation of Linear/Conv layers"""
    lr: float = MISSING
    """learning rate at base_batch_size (lr_scaling scales it to batch_size); the schedule starts from it"""
    batch_size: int = MISSING
    """training batch size; the last incomplete batch of an epoch is dropped"""
    epochs: Optional[int] = None
    """passes over the training split; null: 20, unless steps is given (one of the two)"""
    steps: Optional[int] = None
    """optimizer steps to train (the last epoch may be partial); null: epochs decides"""
    lr_scaling: LRScaling = MISSING
    """none, linear or sqrt: the learning rate used is lr x (batch_size / base_batch_size)^(0, 1, 1/2)"""
    base_batch_size: int = MISSING
    """the batch size at which lr is the learning rate used (lr_scaling)"""
    seed: int = MISSING
    """seed of initialisation, shuffling and dropout; 0 is a seed like any other"""
    device: str = MISSING
    """auto (CUDA when present), cpu, cuda or cuda:N"""
    target_acc: float = MISSING
    """validation accuracy whose first crossing is reported as steps/seconds to target"""
    log_every: int = MISSING
    """record training metrics and gradient norms every this many steps"""
    eval_batch_size: int = MISSING
    """batch size of validation passes (no effect on results)"""
    checkpoint: bool = MISSING
    """write checkpoint.pt at the end of every epoch"""
    progress: bool = MISSING
    """show progress (a bar on a terminal, a line per epoch otherwise)"""
    probe_every: Optional[int] = None
    """measure activations, saturation, scale/shift and BatchNorm statistics on the probe
    batch every this many steps, at step 0 and at the last step; null (the default): at
    least 8 evenly spaced probes between those two; 0 turns probes off"""
    probe_batch_size: int = MISSING
    """samples in the fixed probe batch (the first of the training split)"""
    probe_landscape: bool = MISSING
    """at each probe, the loss and gradient along the gradient on the probe batch (Santurkar et
    al. 2018): landscape/loss_range, grad_change and beta; 1 + 5 passes of the probe batch each"""
    amp: str = MISSING
    """mixed precision of the training steps: none (float32) or bf16 (torch.autocast with
    bfloat16); evaluation and probes stay in float32"""
    channels_last: bool = MISSING
    """models with feature maps (cnn, vgg, resnet): weights and images in channels-last memory layout
    (faster convolutions on GPUs)"""
    compile: bool = MISSING
    """torch.compile the model for the training steps; probes and evaluation run the same
    weights uncompiled (their hooks and mode switches would recompile it)"""
    resume: Optional[str] = None
    """a run directory to continue from its checkpoint.pt, in that directory, with its
    own settings (epochs, device and progress may change); with -m, true (or the sweep
    directory) finishes an earlier sweep of the same overrides"""
    threads: Optional[int] = None
    """torch threads of this run (at most 4 x the cores); null: torch's default for one
    run, and in a local sweep the cores divided by the parallel jobs (1 when as many jobs
    as cores)"""
    jobs_per_gpu: int = MISSING
    """in a local sweep on a machine with GPUs, how many jobs share one GPU at a time"""


@functools.cache  # once per process: storing them again would build every schema again (15-30 ms)
def register() -> None:
    """Put every schema in Hydra's ConfigStore: ``normbench_schema`` (the top level) and
    ``schema/<group>/<option>`` for each row of each axis table. Idempotent."""
    # hydra: only for `normbench train`; `normbench evaluate` reads these schemas without it
    from hydra.core.config_store import ConfigStore

    cs = ConfigStore.instance()
    cs.store(name="normbench_schema", node=TrainConfig)
    for group, table in AXES.items():
        for name, row in table.items():
            cs.store(group=f"schema/{group}", name=getattr(row, "schema_name", "") or name, node=row.schema)
