"""The training loop. It knows nothing about files: it reports through ``log`` and
``after_epoch`` callables, and its state is what ``state_dict`` returns.

One step (shapes for the digits MLP, batch B):

    idx = perm[i*B:(i+1)*B]          # (B,) indices into the device-resident split
    x, y = X[idx], Y[idx]            # (B, 1, 8, 8), (B,)
    loss = cross_entropy(model(x), y)
    backward; [every log_every steps: per-layer gradient norms]; optimizer.step()

Loss and accuracy are summed on the device and read back only every ``log_every``
steps, so the loop does not wait on the device each step.
"""

from __future__ import annotations

import math
import time
from dataclasses import dataclass, field
from typing import Callable, Optional

import torch
import torch.nn.functional as F
from torch import nn

from .data import Data, Split
from .models import parameterised_layers

LogFn = Callable[[int, int, dict], None]  # (step, epoch, {tag: value})


@dataclass
class Outcome:
    """What a run achieved; the runner turns it into summary.json."""
    status: str = "completed"  # completed | diverged | interrupted
    steps: int = 0
    epochs_completed: int = 0
    final: dict = field(default_factory=dict)  # last value of every train/ and val/ metric
    best_val_acc: Optional[float] = None
    best_val_acc_step: Optional[int] = None
    best_val_loss: Optional[float] = None
    steps_to_target: Optional[int] = None
    seconds_to_target: Optional[float] = None
    diverged_at_step: Optional[int] = None
    train_seconds: float = 0.0  # time in training steps, evaluation and checkpoints excluded
    wall_seconds: float = 0.0


def build_optimizer(cfg, params) -> torch.optim.Optimizer:
    o = cfg.optim
    if o.name == "sgd":
        return torch.optim.SGD(params, lr=cfg.lr, momentum=o.momentum, weight_decay=o.weight_decay,
                               nesterov=o.nesterov)
    return torch.optim.Adam(params, lr=cfg.lr, betas=tuple(o.betas), eps=o.eps, weight_decay=o.weight_decay)


class GradNorms:
    """L2 norm of the gradient of every parameterised layer and of all of them, with
    PyTorch's fused multi-tensor norm (one kernel over all parameters, no Python loop
    per parameter)."""

    def __init__(self, model: nn.Module):
        layers = parameterised_layers(model)
        self.tags = [f"grad_norm/{name}" for name, _ in layers] + ["grad_norm/total"]
        self.params = [p for _, ps in layers for p in ps]
        self.layer_of = torch.tensor([i for i, (_, ps) in enumerate(layers) for _ in ps])
        self.n_layers = len(layers)

    def __call__(self) -> torch.Tensor:
        """(layers + 1,) norms on the parameters' device; the last entry is the total."""
        grads = [p.grad if p.grad is not None else torch.zeros_like(p) for p in self.params]
        norms = torch.stack(torch._foreach_norm(grads))
        if self.layer_of.device != norms.device:
            self.layer_of = self.layer_of.to(norms.device)
        sq = torch.zeros(self.n_layers, device=norms.device, dtype=norms.dtype)
        sq.index_add_(0, self.layer_of, norms.square())
        return torch.cat([sq, sq.sum().reshape(1)]).sqrt()


@torch.no_grad()
def evaluate(model: nn.Module, split: Split, batch_size: int) -> tuple[float, float]:
    """(mean cross-entropy, accuracy) of ``split`` in eval mode; the model's mode is restored."""
    was_training = model.training
    model.eval()
    loss = torch.zeros((), device=split.x.device)
    correct = torch.zeros((), device=split.x.device, dtype=torch.int64)
    for i in range(0, len(split), batch_size):
        x, y = split.x[i:i + batch_size], split.y[i:i + batch_size]
        logits = model(x)
        loss += F.cross_entropy(logits, y, reduction="sum")
        correct += (logits.argmax(1) == y).sum()
    model.train(was_training)
    return loss.item() / len(split), correct.item() / len(split)


class Trainer:
    def __init__(self, model: nn.Module, data: Data, cfg):
        self.model, self.data, self.cfg = model, data, cfg
        self.optimizer = build_optimizer(cfg, model.parameters())
        self.grad_norms = GradNorms(model)
        self.shuffle = torch.Generator().manual_seed(cfg.seed)  # CPU: same order on every device
        self.step = 0
        self.epoch = 0
        self.steps_per_epoch = len(data.train) // cfg.batch_size  # last incomplete batch dropped

    @property
    def total_steps(self) -> int:
        return self.steps_per_epoch * self.cfg.epochs

    def state_dict(self) -> dict:
        state = {
            "model": self.model.state_dict(),
            "optimizer": self.optimizer.state_dict(),
            "step": self.step,
            "epoch": self.epoch,
            "rng": {"torch": torch.get_rng_state(), "shuffle": self.shuffle.get_state()},
        }
        if torch.cuda.is_available():
            state["rng"]["cuda"] = torch.cuda.get_rng_state_all()
        return state

    def run(self, log: LogFn, after_epoch: Optional[Callable[["Trainer"], None]] = None) -> Outcome:
        cfg, model, opt = self.cfg, self.model, self.optimizer
        X, Y = self.data.train.x, self.data.train.y
        B, every = cfg.batch_size, cfg.log_every
        device = X.device
        out = Outcome()
        started = time.perf_counter()
        excluded = 0.0  # seconds spent outside training steps (evaluation, checkpoints)
        loss_sum = torch.zeros((), device=device)
        correct = torch.zeros((), device=device, dtype=torch.int64)
        window_steps, window_start = 0, time.perf_counter()
        model.train()
        try:
            while self.epoch < cfg.epochs:
                epoch = self.epoch + 1
                perm = torch.randperm(len(Y), generator=self.shuffle).to(device)
                for i in range(self.steps_per_epoch):
                    idx = perm[i * B:(i + 1) * B]
                    x, y = X[idx], Y[idx]
                    logits = model(x)
                    loss = F.cross_entropy(logits, y)
                    opt.zero_grad(set_to_none=True)
                    loss.backward()
                    self.step += 1
                    logging_now = self.step % every == 0
                    if logging_now:
                        gnorms = self.grad_norms()
                    opt.step()
                    loss_sum += loss.detach()
                    correct += (logits.detach().argmax(1) == y).sum()
                    window_steps += 1
                    last_step = self.step == self.total_steps
                    if logging_now or last_step:
                        if not logging_now:  # the window since the last record, so the end is logged too
                            gnorms = self.grad_norms()
                        # .item() waits for the device, so the window's time is read after it
                        metrics = self._train_metrics(loss_sum.item() / window_steps,
                                                      correct.item() / (window_steps * B), gnorms)
                        seconds = time.perf_counter() - window_start
                        metrics["perf/steps_per_s"] = window_steps / seconds
                        metrics["perf/samples_per_s"] = window_steps * B / seconds
                        log(self.step, epoch, metrics)
                        out.final.update({k: v for k, v in metrics.items() if k.startswith("train/")})
                        loss_sum.zero_(), correct.zero_()
                        window_steps, window_start = 0, time.perf_counter()
                        if not (math.isfinite(metrics["train/loss"]) and math.isfinite(metrics["grad_norm/total"])):
                            return self._diverged(out, started, excluded)
                if device.type == "cuda":
                    torch.cuda.synchronize(device)  # queued steps belong to training time, not evaluation
                t = time.perf_counter()
                val_loss, val_acc = evaluate(model, self.data.val, cfg.eval_batch_size)
                self.epoch = epoch
                log(self.step, epoch, {"val/loss": val_loss, "val/acc": val_acc})
                out.final.update({"val/loss": val_loss, "val/acc": val_acc})
                out.epochs_completed = epoch
                if out.best_val_acc is None or val_acc > out.best_val_acc:
                    out.best_val_acc, out.best_val_acc_step = val_acc, self.step
                if math.isfinite(val_loss) and (out.best_val_loss is None or val_loss < out.best_val_loss):
                    out.best_val_loss = val_loss
                if out.steps_to_target is None and val_acc >= cfg.target_acc:
                    out.steps_to_target = self.step
                    out.seconds_to_target = t - started - excluded
                if not math.isfinite(val_loss):
                    return self._diverged(out, started, excluded)
                if after_epoch is not None:
                    after_epoch(self)
                excluded += time.perf_counter() - t
                window_start += time.perf_counter() - t
        except KeyboardInterrupt:
            out.status = "interrupted"
        out.steps = self.step
        out.wall_seconds = time.perf_counter() - started
        out.train_seconds = out.wall_seconds - excluded
        return out

    def _train_metrics(self, loss: float, acc: float, gnorms: torch.Tensor) -> dict:
        metrics = {"train/loss": loss, "train/acc": acc, "lr": self.optimizer.param_groups[0]["lr"]}
        metrics.update(zip(self.grad_norms.tags, gnorms.tolist(), strict=True))
        return metrics

    def _diverged(self, out: Outcome, started: float, excluded: float) -> Outcome:
        out.status, out.diverged_at_step, out.steps = "diverged", self.step, self.step
        out.wall_seconds = time.perf_counter() - started
        out.train_seconds = out.wall_seconds - excluded
        return out
