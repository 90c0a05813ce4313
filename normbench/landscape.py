"""The loss landscape along the gradient (Santurkar et al. 2018, "How does batch
normalization help optimization?", section 3.1), with ``probe_landscape=true``.

At each probe step, on the probe batch, in training mode (BatchNorm with the batch's
statistics, dropout with the probes' fixed masks): the loss L and gradient g at the
weights theta, then at ``theta - eta * g`` for each step size ``eta`` in ``STEPS`` times
the learning rate in effect at that step (after scaling, warm-up and schedule: the step the
optimizer just took used it), a range around it as the paper moves along the gradient,
recorded as

- ``landscape/loss_range``: the largest minus the smallest loss over theta and those points;
- ``landscape/grad_change``: the largest L2 distance between g and a gradient there;
- ``landscape/beta``: the effective beta-smoothness, the largest of those distances over
  the distance moved, ``||g(theta - eta g) - g(theta)|| / ||eta g||``.

Nothing of the run changes: the weights are put back exactly (copied), the BatchNorm
running statistics and the RNG are restored, gradients are taken with
``torch.autograd.grad`` (no parameter's ``.grad`` is touched) and the optimizer is never
called. It moves along the gradient itself, not along an optimizer's update (with Adam
they differ). It costs ``1 + len(STEPS)`` forward and backward passes of the probe batch.
"""

from __future__ import annotations

from contextlib import AbstractContextManager
from typing import Callable

import torch
import torch.nn.functional as F
from torch import nn

from .batchnorm import train_mode_untouched

STEPS = (0.25, 0.5, 1.0, 2.0, 4.0)  # the step sizes, in units of the learning rate


class Landscape:
    def __init__(self, model: nn.Module, x: torch.Tensor, y: torch.Tensor, lr: Callable[[], float],
                 seeded_rng: Callable[[], AbstractContextManager]):
        self.model, self.x, self.y, self.lr = model, x, y, lr  # lr(): the learning rate in effect now
        self.seeded_rng = seeded_rng  # the probes' fixed dropout masks, and the RNG as it was afterwards
        self.params = [p for p in model.parameters() if p.requires_grad]

    def _loss_and_grad(self) -> tuple[float, list[torch.Tensor]]:
        with self.seeded_rng():
            loss = F.cross_entropy(self.model(self.x), self.y)
        grads = torch.autograd.grad(loss, self.params, allow_unused=True)
        return float(loss.detach()), [torch.zeros_like(p) if g is None else g for p, g in zip(self.params, grads, strict=True)]

    def measure(self) -> dict[str, float]:
        saved = [p.detach().clone() for p in self.params]
        try:
            lr = self.lr()
            with train_mode_untouched(self.model):
                loss0, g0 = self._loss_and_grad()
                g_norm = _norm(g0)
                losses, changes, betas = [loss0], [], []
                for factor in STEPS:
                    eta = factor * lr
                    with torch.no_grad():  # from the weights the probe found
                        for p, s, g in zip(self.params, saved, g0, strict=True):
                            p.copy_(s).sub_(g, alpha=eta)
                    loss, g = self._loss_and_grad()
                    change = _norm([a - b for a, b in zip(g, g0, strict=True)])
                    losses.append(loss)
                    changes.append(change)
                    betas.append(change / (eta * g_norm) if g_norm > 0 else float("nan"))
        finally:
            self._put_back(saved)
        return {"landscape/loss_range": max(losses) - min(losses), "landscape/grad_change": max(changes),
                "landscape/beta": max(betas)}

    @torch.no_grad()
    def _put_back(self, saved: list[torch.Tensor]) -> None:
        for p, s in zip(self.params, saved, strict=True):
            p.copy_(s)


def _norm(tensors: list[torch.Tensor]) -> float:
    """The L2 norm of all of ``tensors`` together."""
    return float(torch.sqrt(sum(t.double().square().sum() for t in tensors)))
