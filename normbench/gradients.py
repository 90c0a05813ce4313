"""Per-layer numbers of the training step itself: the L2 norm of each layer's gradient
(every ``log_every`` steps) and the size of the optimizer's step relative to the layer's
weights (at probe steps). Both are computed with PyTorch's fused multi-tensor ops
(``torch._foreach_norm``, as torch.optim's own clipping and optimizers use them: one call
over all parameters, no Python loop per parameter), grouped by the layer that owns each
parameter (``models.parameterised_layers``)."""

from __future__ import annotations

from typing import Optional

import torch
from torch import nn

from .models import parameterised_layers


class _PerLayer:
    """Parameters grouped by the layer that owns them, for per-layer norms in one fused call."""

    def __init__(self, model: nn.Module):
        layers = parameterised_layers(model)
        self.layer_names = [name for name, _ in layers]
        self.params = [p for _, ps in layers for p in ps]
        self.layer_of = torch.tensor([i for i, (_, ps) in enumerate(layers) for _ in ps])

    def _squared(self, tensors: list[torch.Tensor]) -> torch.Tensor:
        """(layers,) sum of squares of ``tensors`` (one per parameter) per layer."""
        norms = torch.stack(torch._foreach_norm(tensors))
        if self.layer_of.device != norms.device:
            self.layer_of = self.layer_of.to(norms.device)
        sq = torch.zeros(len(self.layer_names), device=norms.device, dtype=norms.dtype)
        return sq.index_add_(0, self.layer_of, norms.square())


class GradNorms(_PerLayer):
    """L2 norm of the gradient of every parameterised layer and of all of them."""

    def __init__(self, model: nn.Module):
        super().__init__(model)
        self.tags = [f"grad_norm/{name}" for name in self.layer_names] + ["grad_norm/total"]

    def __call__(self) -> torch.Tensor:
        """(layers + 1,) norms on the parameters' device; the last entry is the total."""
        grads = [p.grad if p.grad is not None else torch.zeros_like(p) for p in self.params]
        sq = self._squared(grads)
        return torch.cat([sq, sq.sum().reshape(1)]).sqrt()


class UpdateRatios(_PerLayer):
    """||step|| / ||parameters|| per layer: ``snapshot()`` before ``optimizer.step()``,
    call after it."""

    def __init__(self, model: nn.Module):
        super().__init__(model)
        self.tags = [f"update_ratio/{name}" for name in self.layer_names]
        self._before: Optional[list[torch.Tensor]] = None

    @torch.no_grad()
    def snapshot(self) -> None:
        self._before = torch._foreach_mul(self.params, 1.0)  # copies, in one fused call

    @torch.no_grad()
    def __call__(self) -> torch.Tensor:
        assert self._before is not None, "snapshot() before the optimizer step"
        step = torch._foreach_sub(self.params, self._before)
        self._before = None
        return (self._squared(step) / self._squared(self.params)).sqrt()
