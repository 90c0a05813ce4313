"""Normalization layers torch does not ship, each built on torch's public modules:

- ``RMSNorm2d``: RMSNorm of feature maps over channels and space, with a per-channel
  scale (as LayerNorm on maps is ``GroupNorm(1, C)``); vectors use ``nn.RMSNorm``.
- ``BatchRenorm1d`` / ``2d``: Batch Renormalization (Ioffe 2017). In training,
  ``y = (x - mu_B) / sigma_B * r + d`` with ``r = clip(sigma_B / sigma, 1/r_max, r_max)``
  and ``d = clip((mu_B - mu) / sigma, -d_max, d_max)`` against the running statistics
  (``sigma = sqrt(running_var + eps)``), both held constant in the backward pass (stop
  gradient), then the affine scale and shift. ``r_max`` grows from 1 and ``d_max`` from 0
  to their final values linearly over ``warmup_steps`` training batches (the paper's
  warm-up: with r = 1 and d = 0 it is BatchNorm). Running statistics are updated as
  BatchNorm's are, so eval mode is exactly BatchNorm's.
- ghost batches (Hoffer et al. 2017): ``GhostBatchNorm1d`` / ``2d`` and Batch Renorm with
  ``ghost_batch``: a training batch is normalised in chunks of ``ghost_batch`` samples,
  each with its own statistics (each chunk also updates the running statistics, as a
  batch would); eval mode unchanged. A last chunk of one sample joins the one before it.
- ``TokenNorm``: a norm of feature vectors applied to a Transformer's tokens (N, T, C):
  each token alone (GroupNorm per token, as LayerNorm is), or the batch's tokens together
  as the length axis of (N, C, T) (BatchNorm's statistics per channel over the batch and
  the tokens; ghost batches are of samples).
- ``Standardized``: weight standardization (Qiao et al. 2019), a parametrization
  (``torch.nn.utils.parametrize``) that gives each conv filter zero mean and unit
  variance over its inputs and kernel in every forward pass.

Every BatchNorm variant here is a subclass of torch's BatchNorm1d or BatchNorm2d, so
whatever looks for BatchNorm layers (probes, precise BN, train-mode evaluation) finds it.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn
from torch.nn.utils import parametrize
from torch.nn.utils.parametrizations import weight_norm


def chunks(x: torch.Tensor, size: int) -> list[torch.Tensor]:
    """``x`` split along the batch into chunks of ``size`` (a last chunk of one sample,
    which has no batch statistics, joins the one before it)."""
    parts = list(torch.split(x, size))
    if len(parts) > 1 and len(parts[-1]) == 1:
        parts[-2:] = [torch.cat(parts[-2:])]
    return parts


class _GhostBatches:
    """Normalise a training batch in ghost batches of ``ghost_batch`` samples (None: whole),
    each with torch's BatchNorm forward (the next class in the method resolution order)."""

    def __init__(self, num_features: int, ghost_batch: int | None = None, **kwargs):
        super().__init__(num_features, **kwargs)
        self.ghost_batch = ghost_batch

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if self.training and self.ghost_batch and len(x) > self.ghost_batch:
            return torch.cat([self.normalize(c) for c in chunks(x, self.ghost_batch)])
        return self.normalize(x)

    def normalize(self, x: torch.Tensor) -> torch.Tensor:
        return super().forward(x)


class GhostBatchNorm1d(_GhostBatches, nn.BatchNorm1d):
    """BatchNorm1d in ghost batches."""


class GhostBatchNorm2d(_GhostBatches, nn.BatchNorm2d):
    """BatchNorm2d in ghost batches."""


class _Renorm(_GhostBatches):
    """Batch Renormalization's training-mode forward (see the module docstring). Its limits
    and momentum are worked out as tensors on the layer's device: a training step never
    waits to read a number back."""

    def __init__(self, num_features: int, r_max: float = 3.0, d_max: float = 5.0, warmup_steps: int = 100,
                 ghost_batch: int | None = None, **kwargs):
        super().__init__(num_features, ghost_batch, **kwargs)
        self.r_max, self.d_max, self.warmup_steps = r_max, d_max, warmup_steps

    def _limits(self) -> tuple[torch.Tensor, torch.Tensor]:
        done = (self.num_batches_tracked / self.warmup_steps).clamp(max=1.0) if self.warmup_steps > 0 \
            else torch.ones((), device=self.num_batches_tracked.device)
        return 1.0 + (self.r_max - 1.0) * done, self.d_max * done

    def limits(self) -> tuple[float, float]:
        """(r_max, d_max) after ``num_batches_tracked`` training batches of the warm-up."""
        r_max, d_max = self._limits()
        return float(r_max), float(d_max)

    def normalize(self, x: torch.Tensor) -> torch.Tensor:
        if not self.training or not self.track_running_stats:
            return super().normalize(x)  # torch's BatchNorm
        dims = [0, *range(2, x.dim())]
        shape = (1, -1) + (1,) * (x.dim() - 2)
        mean, var = x.mean(dims), x.var(dims, unbiased=False)
        std = (var + self.eps).sqrt()
        running_std = (self.running_var + self.eps).sqrt()
        r_max, d_max = self._limits()
        r = torch.clamp((std / running_std).detach(), 1.0 / r_max, r_max)
        d = torch.clamp(((mean - self.running_mean) / running_std).detach(), -d_max, d_max)
        y = (x - mean.view(shape)) / std.view(shape) * r.view(shape) + d.view(shape)
        if self.affine:
            y = y * self.weight.view(shape) + self.bias.view(shape)
        self._update(mean.detach(), var.detach(), x.numel() // x.shape[1])
        return y

    @torch.no_grad()
    def _update(self, mean: torch.Tensor, var: torch.Tensor, n: int) -> None:
        """The running statistics, updated as BatchNorm updates them (unbiased variance;
        momentum None: a cumulative average)."""
        self.num_batches_tracked.add_(1)
        factor = self.momentum if self.momentum is not None else 1.0 / self.num_batches_tracked
        self.running_mean.lerp_(mean, factor)
        self.running_var.lerp_(var * n / max(n - 1, 1), factor)


class BatchRenorm1d(_Renorm, nn.BatchNorm1d):
    """Batch Renormalization of feature vectors."""


class BatchRenorm2d(_Renorm, nn.BatchNorm2d):
    """Batch Renormalization of feature maps."""


class RMSNorm2d(nn.Module):
    """RMSNorm of each sample over its channels and space, a scale per channel."""

    def __init__(self, num_channels: int, eps: float = 1e-5, affine: bool = True):
        super().__init__()
        self.eps = eps
        self.weight = nn.Parameter(torch.ones(num_channels)) if affine else None

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        y = F.rms_norm(x, x.shape[1:], eps=self.eps)
        return y * self.weight.view(1, -1, 1, 1) if self.weight is not None else y

    def extra_repr(self) -> str:
        return f"{0 if self.weight is None else len(self.weight)}, eps={self.eps}, affine={self.weight is not None}"


class TokenNorm(nn.Module):
    """``norm`` (a norm of (N, C) feature vectors) applied to tokens (N, T, C); see the
    module docstring. ``norm`` is its child ``norm``, so its parameters and buffers are
    found where any norm's are."""

    def __init__(self, norm: nn.Module, over_tokens: bool):
        super().__init__()
        self.norm, self.over_tokens = norm, over_tokens

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if self.over_tokens:  # (N, C, T): statistics per channel over the batch and the tokens
            return self.norm(x.transpose(1, 2)).transpose(1, 2)
        return self.norm(x.reshape(-1, x.shape[-1])).reshape(x.shape)

    def extra_repr(self) -> str:
        return "over the batch's tokens" if self.over_tokens else "per token"


class Standardized(nn.Module):
    """Weight standardization as a parametrization: each output filter of a conv weight
    (C_out, C_in, kH, kW) minus its mean, over its standard deviation plus eps (a filter's
    weights are small: eps under the square root would shrink their variance by 1%)."""

    def __init__(self, eps: float = 1e-5):
        super().__init__()
        self.eps = eps

    def forward(self, w: torch.Tensor) -> torch.Tensor:
        dims = list(range(1, w.dim()))
        mean = w.mean(dims, keepdim=True)
        std = w.std(dims, keepdim=True, unbiased=False)
        return (w - mean) / (std + self.eps)


def standardize_weights(layer: nn.Module, eps: float = 1e-5) -> nn.Module:
    parametrize.register_parametrization(layer, "weight", Standardized(eps))
    return layer


def weight_normalize(layer: nn.Module) -> nn.Module:
    """``layer``'s weight as ``g * v / ||v||`` per output unit (Salimans and Kingma 2016),
    through torch's parametrization: ``g`` is ``parametrizations.weight.original0``."""
    return weight_norm(layer, name="weight", dim=0)
