"""Typed schemas of every config key, registered in Hydra's ConfigStore.

The values live in the YAML files under ``conf/``; these dataclasses give each key its
type, so Hydra refuses ``dropout=abc`` or ``placement=middle`` while composing, and a
one-line description (the string under each field). A YAML option extends its schema:

    # conf/model/mlp.yaml
    defaults:
      - /schema/model@_here_: mlp
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import Enum
from typing import Any, List, Optional

from hydra.core.config_store import ConfigStore
from omegaconf import OmegaConf, MISSING


class Activation(Enum):
    relu = "relu"
    sigmoid = "sigmoid"
    tanh = "tanh"
    gelu = "gelu"


class Placement(Enum):
    pre = "pre"
    """Linear/Conv -> norm -> act"""
    post = "post"
    """Linear/Conv -> act -> norm"""


class Init(Enum):
    default = "default"
    xavier = "xavier"
    kaiming = "kaiming"


# --- model -------------------------------------------------------------------------


@dataclass
class MLPConfig:
    name: str = "mlp"
    depth: int = MISSING
    """number of hidden blocks (Linear -> norm/act -> dropout)"""
    width: int = MISSING
    """units in every hidden block"""
    activation: Activation = MISSING
    """hidden activation"""


@dataclass
class CNNConfig:
    name: str = "cnn"
    channels: List[int] = MISSING
    """output channels of each 3x3 conv block; 2x2 max-pooling follows every block but the last"""
    activation: Activation = MISSING
    """hidden activation"""


# --- norm --------------------------------------------------------------------------


@dataclass
class BatchNormConfig:
    name: str = "bn"
    momentum: Optional[float] = MISSING
    """running-statistics momentum (PyTorch convention); null for a cumulative average"""
    eps: float = MISSING
    affine: bool = MISSING
    """learn a per-feature scale (gamma) and shift (beta)"""
    precise_bn: bool = MISSING
    """before each evaluation, recompute the population statistics over training batches
    (weights frozen, dropout off) in place of the running averages; both accuracies are kept"""
    precise_bn_batches: int = MISSING
    """training batches precise BN averages over (all of the training split, if it has fewer)"""


@dataclass
class LayerNormConfig:
    name: str = "ln"
    eps: float = MISSING
    affine: bool = MISSING


@dataclass
class InstanceNormConfig:
    name: str = "in"
    eps: float = MISSING
    affine: bool = MISSING


@dataclass
class GroupNormConfig:
    name: str = "gn"
    groups: int = MISSING
    """number of groups; must divide the width (MLP) or every channel count (CNN)"""
    eps: float = MISSING
    affine: bool = MISSING


@dataclass
class NoNormConfig:
    name: str = "none"


# --- data --------------------------------------------------------------------------


@dataclass
class DigitsConfig:
    name: str = "digits"
    standardize: bool = MISSING
    """z-score inputs with training-split statistics"""
    val_fraction: float = MISSING
    """share of the samples held out for validation (stratified)"""
    split_seed: int = MISSING
    """seed of the train/validation split; fixed so every run sees the same split"""


@dataclass
class BlobsConfig:
    name: str = "blobs"
    standardize: bool = MISSING
    val_fraction: float = MISSING
    split_seed: int = MISSING
    n_samples: int = MISSING
    """samples in all, split evenly over the classes"""
    n_classes: int = MISSING
    n_features: int = MISSING
    separation: float = MISSING
    """distance between neighbouring class centres, in units of cluster_std"""
    cluster_std: float = MISSING
    feature_scale: List[float] = MISSING
    """per-feature multiplier applied after generation (one value, or one per feature)"""
    feature_shift: List[float] = MISSING
    """per-feature offset applied after scaling (one value, or one per feature)"""
    seed: int = MISSING
    """seed of the generator; fixed so every run sees the same data"""


@dataclass
class SyntheticConfig:
    name: str = "synthetic"
    standardize: bool = MISSING
    val_fraction: float = MISSING
    split_seed: int = MISSING
    shape: List[int] = MISSING
    """shape of one input: [C, H, W] images (for the CNN or the MLP), or [n] feature vectors"""
    n_samples: int = MISSING
    """samples in all, split evenly over the classes"""
    n_classes: int = MISSING
    noise: float = MISSING
    """std of the Gaussian noise added to the class's mean image (whose values are standard normal)"""
    seed: int = MISSING
    """seed of the generator; fixed so every run sees the same data"""


@dataclass
class TorchvisionDataConfig:
    name: str = MISSING
    root: str = MISSING
    """directory holding the data set's files (torchvision's layout)"""
    download: bool = MISSING
    """fetch the files into root when they are missing"""
    standardize: bool = MISSING
    val_fraction: float = MISSING
    """share of the official training split held out for validation (stratified)"""
    split_seed: int = MISSING


# --- optim -------------------------------------------------------------------------


@dataclass
class SGDConfig:
    name: str = "sgd"
    momentum: float = MISSING
    weight_decay: float = MISSING
    nesterov: bool = MISSING


@dataclass
class AdamConfig:
    name: str = "adam"
    betas: List[float] = MISSING
    eps: float = MISSING
    weight_decay: float = MISSING


# --- one run -----------------------------------------------------------------------


@dataclass
class TrainConfig:
    model: Any = MISSING
    """model group: mlp, cnn"""
    norm: Any = MISSING
    """norm group: bn, ln, in, gn, none"""
    data: Any = MISSING
    """data group: digits, blobs, synthetic, mnist, fashion_mnist, cifar10"""
    optim: Any = MISSING
    """optim group: sgd, adam"""
    placement: Placement = MISSING
    """norm before (pre) or after (post) the activation"""
    dropout: float = MISSING
    """dropout probability after each hidden block, in [0, 1)"""
    init: Init = MISSING
    """weight initialisation of Linear/Conv layers"""
    lr: float = MISSING
    """learning rate (constant)"""
    batch_size: int = MISSING
    """training batch size; the last incomplete batch of an epoch is dropped"""
    epochs: int = MISSING
    """passes over the training split"""
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
    probe_every: int = MISSING
    """measure activations, saturation, scale/shift and BatchNorm statistics on the probe
    batch every this many steps, and at step 0; 0 turns probes off"""
    probe_batch_size: int = MISSING
    """samples in the fixed probe batch (the first of the training split)"""
    amp: str = MISSING
    """mixed precision of the training steps: none (float32) or bf16 (torch.autocast with
    bfloat16); evaluation and probes stay in float32"""
    channels_last: bool = MISSING
    """CNN only: weights and images in channels-last memory layout (faster convolutions on GPUs)"""
    compile: bool = MISSING
    """torch.compile the model for the training steps; probes and evaluation run the same
    weights uncompiled (their hooks and mode switches would recompile it)"""
    resume: Optional[str] = None
    """a run directory to continue from its checkpoint.pt, in that directory, with its
    own settings (epochs, device and progress may change); with -m, true (or the sweep
    directory) finishes an earlier sweep of the same overrides"""
    threads: Optional[int] = None
    """torch threads of this run; null: torch's default for one run, and in a local sweep
    the cores divided by the parallel jobs (1 when as many jobs as cores)"""
    jobs_per_gpu: int = MISSING
    """in a local sweep on a machine with GPUs, how many jobs share one GPU at a time"""


def register() -> None:
    """Put every schema in Hydra's ConfigStore (idempotent)."""
    from hydra._internal.core_plugins.basic_sweeper import BasicSweeperConf

    cs = ConfigStore.instance()
    # hydra/sweeper=normbench: Hydra's basic sweeper's settings, normbench's class
    cs.store(group="hydra/sweeper", name="normbench", provider="normbench", node=OmegaConf.merge(
        OmegaConf.structured(BasicSweeperConf),
        {"_target_": "hydra_plugins.normbench_sweeper.normbench_sweeper.NormbenchSweeper"}))
    cs.store(name="normbench_schema", node=TrainConfig)
    for group, name, node in [
        ("model", "mlp", MLPConfig),
        ("model", "cnn", CNNConfig),
        ("norm", "bn", BatchNormConfig),
        ("norm", "ln", LayerNormConfig),
        ("norm", "in", InstanceNormConfig),
        ("norm", "gn", GroupNormConfig),
        ("norm", "none", NoNormConfig),
        ("data", "digits", DigitsConfig),
        ("data", "blobs", BlobsConfig),
        ("data", "synthetic", SyntheticConfig),
        ("data", "torchvision", TorchvisionDataConfig),
        ("optim", "sgd", SGDConfig),
        ("optim", "adam", AdamConfig),
    ]:
        cs.store(group=f"schema/{group}", name=name, node=node)


register()
