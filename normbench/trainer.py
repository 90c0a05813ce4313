"""The training loop. It knows nothing about files: it reports through ``log`` and
``after_epoch`` callables, and its state is what ``state_dict`` returns.

One step (shapes for the digits MLP, batch B):

    idx = perm[i*B:(i+1)*B]          # (B,) indices into the device-resident split
    x, y = X[idx], Y[idx]            # (B, 1, 8, 8), (B,)
    [x = augment(x)]                 # data.augment: on the device, the whole batch (augment.py)
    loss = cross_entropy(model(x), y)
    backward; [every log_every steps: per-layer gradient norms]
    optimizer.step()
    [at each probe step: update-to-weight ratios, probes on the fixed probe batch (probes.py)]
    [scheduler.step()]               # the schedule (schedules.py): the next step's learning rate

The run's length is its budget (budget.py): ``epochs`` full passes, or ``steps`` optimizer
steps, whose last pass may stop mid-epoch. The ``lr`` tag is the learning rate the step it
is logged at used.

Probe steps: step 0, the last step, and every ``probe_every`` steps between them; with
``probe_every`` null (the default) at least 8 evenly spaced probes between those two
(``probe_interval``), so any run, however short, is probed at enough points to draw a curve.

Performance options: ``amp=bf16`` runs each step's forward pass (and loss) under
``torch.autocast`` with bfloat16; ``channels_last`` puts the CNN's weights and the image
tensors in channels-last layout once, before training; ``compile`` trains through
``torch.compile(model)``. Probes and evaluation always run the uncompiled model in
float32: they share its weights, and their hooks and mode switches would make the
compiled one recompile.

Each step's loss and logits are kept on the device and read back only every
``log_every`` steps, so the loop neither waits on the device nor runs extra kernels each
step. After each epoch (and after the last step of a budget in steps) the validation split is
evaluated in eval mode and with BatchNorm in train mode (``evaluate_now``).
"""

from __future__ import annotations

import dataclasses
import math
import time
from contextlib import contextmanager, nullcontext
from dataclasses import dataclass, field
from typing import Callable, Optional

import torch
import torch.nn.functional as F
from torch import nn

from .augment import build_augment
from .batchnorm import batchnorm_layers, evaluate, recompute_bn_stats
from .budget import effective_lr, plan
from .checkpoint import evaluated_at
from .data import Data
from .datasets import Split
from .optim import build_optimizer
from .schedules import build_scheduler
from .gradients import GradNorms, UpdateRatios
from .landscape import Landscape
from .probes import Probes
from .signals import Stop

LogFn = Callable[[int, int, dict], None]  # (step, epoch, {tag: value})


@dataclass
class Outcome:
    """What a run achieved; the runner turns it into summary.json."""
    status: str = "completed"  # completed | diverged | interrupted
    steps: int = 0
    epochs_completed: int = 0  # full passes over the training split
    final: dict = field(default_factory=dict)  # last value of every train/ and val/ metric
    best_val_acc: Optional[float] = None
    best_val_acc_step: Optional[int] = None
    best_val_loss: Optional[float] = None
    steps_to_target: Optional[int] = None
    seconds_to_target: Optional[float] = None
    diverged_at_step: Optional[int] = None
    train_seconds: float = 0.0  # time in training steps, evaluation and checkpoints excluded
    wall_seconds: float = 0.0
    landscape: dict = field(default_factory=dict)  # landscape/<tag>: the sum over the probes that measured it
    landscape_probes: int = 0


def probe_interval(probe_every: Optional[int], total_steps: int) -> int:
    """Steps between probes: ``probe_every``, or when it is null the largest interval that
    puts at least 8 probes between the one at step 0 and the one at the last step; 0: off."""
    if probe_every is None:
        return max(1, (total_steps - 1) // 8)
    return probe_every


class Trainer:
    """Trains ``model`` on ``data`` per ``cfg``. Everything needed to continue exactly where
    it stopped, mid-epoch included, is in ``state_dict()``; ``load_state_dict`` restores it.
    Setting ``stop`` (a signal handler does) ends ``run`` after the current step."""

    def __init__(self, model: nn.Module, data: Data, cfg, stop: Optional[Stop] = None):
        device = data.train.x.device
        if cfg.channels_last:  # once, here: indexing a batch keeps the layout
            model.to(memory_format=torch.channels_last)
            data = dataclasses.replace(data, train=_channels_last(data.train), val=_channels_last(data.val))
        if device.type == "cuda":
            torch.backends.cudnn.benchmark = True  # fixed shapes: let cuDNN pick its fastest kernels once
        self.model, self.data, self.cfg = model, data, cfg
        # what the training steps call: the model, or its compiled form (same parameters)
        self.forward = torch.compile(model) if cfg.compile else model
        self.autocast = (torch.autocast(device.type, dtype=torch.bfloat16) if cfg.amp == "bf16"
                         else nullcontext())
        self.plan = plan(cfg, len(data.train))
        self.steps_per_epoch, self.total_steps = self.plan.steps_per_epoch, self.plan.total_steps
        self.optimizer = build_optimizer(cfg, model, effective_lr(cfg))
        self.scheduler = build_scheduler(self.optimizer, cfg.schedule, self.plan)
        self.augment = build_augment(cfg.data, data.blank, cfg.seed, device)
        self.grad_norms = GradNorms(model)
        self.update_ratios = UpdateRatios(model)
        self.batch_stats = bool(batchnorm_layers(model))  # a norm whose train and eval modes differ
        n_probe = min(cfg.probe_batch_size, len(data.train))
        self.probe_every = probe_interval(cfg.probe_every, self.total_steps)
        self.probes = Probes(model, data.train.x[:n_probe], seed=cfg.seed) if self.probe_every > 0 else None
        self.landscape = None
        if self.probes is not None and cfg.probe_landscape:
            self.landscape = Landscape(model, data.train.x[:n_probe], data.train.y[:n_probe], self.lr,
                                       self.probes.seeded_rng)
        self.shuffle = torch.Generator().manual_seed(cfg.seed)  # CPU: same order on every device
        self.step = 0
        self.epoch = 0  # epochs completed (trained and evaluated)
        self.perm: Optional[torch.Tensor] = None  # this epoch's order, once drawn
        self.position = 0  # steps of this epoch done
        self.evaluated = 0  # the step of the last evaluation (an end of epoch, or a budget's last step)
        self.losses: list[torch.Tensor] = []  # this logging window's losses and (logits, targets)
        self.outputs: list[tuple[torch.Tensor, torch.Tensor]] = []
        self.outcome = Outcome()
        self.stop = stop or Stop()  # a signal handler sets stop.signum: the run ends after that step
        self.torn = False  # interrupted inside a step: the state is not one to save

    def lr(self) -> float:
        """The learning rate of the step being taken (the schedule steps after each step)."""
        return self.optimizer.param_groups[0]["lr"]

    def state_dict(self) -> dict:
        """Tensors, numbers, strings, None and containers of them: loads with weights_only=True."""
        state = {
            "model": self.model.state_dict(),
            "optimizer": self.optimizer.state_dict(),
            "step": self.step,
            "epoch": self.epoch,
            "position": self.position,
            "evaluated": self.evaluated,
            "perm": None if self.perm is None else self.perm.cpu(),
            "window": None if not self.losses else {
                "losses": torch.stack(self.losses).cpu(),
                "logits": torch.cat([o for o, _ in self.outputs]).cpu(),
                "targets": torch.cat([y for _, y in self.outputs]).cpu(),
                "sizes": [len(y) for _, y in self.outputs],
            },
            "outcome": dataclasses.asdict(self.outcome),
            "rng": {"torch": torch.get_rng_state(), "shuffle": self.shuffle.get_state()},
            "schedule": None if self.scheduler is None else self.scheduler.state_dict(),
            "augment": None if self.augment is None else self.augment.state_dict(),
        }
        if torch.cuda.is_available():
            state["rng"]["cuda"] = torch.cuda.get_rng_state_all()
        return state

    def load_state_dict(self, state: dict) -> None:
        """Continue from ``state`` (a checkpoint loaded with map_location="cpu")."""
        device = self.data.train.x.device
        self.model.load_state_dict(state["model"])
        self.optimizer.load_state_dict(state["optimizer"])
        self.step, self.epoch, self.position = state["step"], state["epoch"], state["position"]
        self.evaluated = evaluated_at(state)
        self.perm = None if state["perm"] is None else state["perm"].to(device)
        window = state["window"]
        self.losses, self.outputs = [], []
        if window is not None:
            self.losses = list(window["losses"].to(device).unbind())
            logits, targets = window["logits"].to(device), window["targets"].to(device)
            self.outputs = list(zip(logits.split(window["sizes"]), targets.split(window["sizes"]), strict=True))
        self.outcome = Outcome(**state["outcome"])
        self.outcome.status = "completed"
        for part, name in ((self.scheduler, "schedule"), (self.augment, "augment")):
            if (part is None) != (state.get(name) is None):
                raise ValueError(f"the checkpoint's {name} state does not match this run's {name}")
            if part is not None:
                part.load_state_dict(state[name])
        torch.set_rng_state(state["rng"]["torch"])
        self.shuffle.set_state(state["rng"]["shuffle"])
        if "cuda" in state["rng"] and torch.cuda.is_available():
            torch.cuda.set_rng_state_all(state["rng"]["cuda"])

    def run(self, log: LogFn, after_epoch: Optional[Callable[["Trainer"], None]] = None) -> Outcome:
        """Train until the budget's last step, the run diverges, or ``stop`` is set; from
        where a loaded state left off. Returns the outcome, counted over every session."""
        cfg, model, opt, forward, autocast = self.cfg, self.model, self.optimizer, self.forward, self.autocast
        scheduler, augment, channels_last = self.scheduler, self.augment, cfg.channels_last
        X, Y = self.data.train.x, self.data.train.y
        # plain ints: reading a DictConfig key costs ~25 us, a tenth of a digits MLP step's overhead budget
        B, every, total, probe_every = cfg.batch_size, cfg.log_every, self.total_steps, self.probe_every
        device = X.device
        out = self.outcome
        clock = _Clock(out)
        self._window = [len(self.losses), time.perf_counter()]  # steps logged in it, its start
        model.train()
        probes = self.probes
        try:
            if probes is not None and self.step == 0:  # the network as initialised
                log(0, 0, self._probe(first=True))
            while self.step < total or self.evaluated != self.step:  # steps left, or the last ones unevaluated
                epoch = self.epoch + 1
                if self.perm is None:
                    self.perm, self.position = torch.randperm(len(Y), generator=self.shuffle).to(device), 0
                perm = self.perm
                for i in range(self.position, min(self.steps_per_epoch, self.position + total - self.step)):
                    if self.stop.signum:
                        return clock.finish("interrupted", self.step)
                    idx = perm[i * B:(i + 1) * B]
                    x, y = X[idx], Y[idx]
                    if augment is not None:
                        x = augment(x)
                        if channels_last:
                            x = x.contiguous(memory_format=torch.channels_last)
                    with autocast:
                        logits = forward(x)
                        loss = F.cross_entropy(logits, y)
                    opt.zero_grad(set_to_none=True)
                    loss.backward()
                    self.step += 1
                    # every log_every steps, and the last step so the end of the run is recorded
                    recording = self.step % every == 0 or self.step == total
                    probing = probes is not None and (self.step % probe_every == 0 or self.step == total)
                    if recording:
                        gnorms = self.grad_norms()
                    if probing:
                        self.update_ratios.snapshot()
                    opt.step()
                    self.position = i + 1
                    self.losses.append(loss.detach())
                    self.outputs.append((logits.detach(), y))
                    self._window[0] += 1
                    if recording and not self._record(gnorms, epoch, log):
                        return clock.finish("diverged", self.step)
                    if probing:
                        log(self.step, epoch, self._probe())
                    if scheduler is not None:
                        scheduler.step()
                if self.stop.signum:
                    return clock.finish("interrupted", self.step)
                if device.type == "cuda":
                    torch.cuda.synchronize(device)  # queued steps belong to training time, not evaluation
                with clock.excluded() as t:
                    if not self._end_epoch(epoch, log, clock.train_seconds(t), after_epoch):
                        return clock.finish("diverged", self.step)
                self._window[1] += time.perf_counter() - t
        except KeyboardInterrupt:  # a second Ctrl-C, or no handler installed: the state may be mid-step
            self.torn = True
            return clock.finish("interrupted", self.step)
        return clock.finish("completed", self.step)

    def _record(self, gnorms: torch.Tensor, epoch: int, log: LogFn) -> bool:
        """Log the window's training metrics; False when the run diverged in it (the last
        finite values stay in the outcome)."""
        out = self.outcome
        # reading the values waits for the device, so the window's time is read after it
        metrics, bad_step = self._train_metrics(gnorms)
        steps, start = self._window
        seconds = time.perf_counter() - start
        metrics["perf/steps_per_s"] = steps / seconds
        metrics["perf/samples_per_s"] = steps * self.cfg.batch_size / seconds
        log(self.step, epoch, metrics)
        self._window = [0, time.perf_counter()]
        if bad_step is not None:
            out.diverged_at_step = bad_step
            return False
        out.final.update({k: v for k, v in metrics.items() if k.startswith("train/")})
        return True

    def _probe(self, first: bool = False) -> dict:
        """What a probe step records: the update ratios of the step just taken (none at step
        0), the probes of the probe batch, and with probe_landscape the loss landscape."""
        measured = {} if first else dict(zip(self.update_ratios.tags, self.update_ratios().tolist(), strict=True))
        measured.update(self.probes.measure())
        if self.landscape is not None:
            landscape = self.landscape.measure()
            self.outcome.landscape_probes += 1
            for tag, value in landscape.items():
                self.outcome.landscape[tag] = self.outcome.landscape.get(tag, 0.0) + value
            measured.update(landscape)
        return measured

    def _end_epoch(self, epoch: int, log: LogFn, train_seconds: float,
                   after_epoch: Optional[Callable[["Trainer"], None]]) -> bool:
        """Evaluate, record and checkpoint the epoch just trained (or, with a budget in steps,
        the part of it the budget ends in: its order and position are kept, so training can
        go on from there); False when it diverged."""
        out = self.outcome
        metrics = self.evaluate_now()
        metrics.update({"progress/epochs": self.plan.epochs_at(self.step),
                        "progress/samples": float(self.plan.samples_at(self.step))})
        log(self.step, epoch, metrics)
        val_loss, val_acc = metrics["val/loss"], metrics["val/acc"]
        if not math.isfinite(val_loss):
            out.diverged_at_step = self.step
            return False
        self.evaluated = self.step
        if self.position == self.steps_per_epoch:  # a full pass
            self.epoch, self.perm, self.position = epoch, None, 0
        out.final.update(metrics)
        out.epochs_completed = self.epoch
        if out.best_val_acc is None or val_acc > out.best_val_acc:
            out.best_val_acc, out.best_val_acc_step = val_acc, self.step
        if out.best_val_loss is None or val_loss < out.best_val_loss:
            out.best_val_loss = val_loss
        if out.steps_to_target is None and val_acc >= self.cfg.target_acc:
            out.steps_to_target, out.seconds_to_target = self.step, train_seconds
        if after_epoch is not None:
            after_epoch(self)
        return True

    def evaluate_now(self) -> dict:
        """The validation metrics of the model as it is now.

        ``val/loss``, ``val/acc``: eval mode, the way the model is used after training.
        ``val/loss_train_mode``, ``val/acc_train_mode``: BatchNorm with the statistics of
        each batch of ``batch_size`` instead (dropout off in both), and
        ``val/train_eval_gap`` = train-mode minus eval-mode accuracy. Without a norm that
        uses batch statistics the two modes compute the same function: the train-mode
        numbers are the eval-mode ones, and the gap is 0.
        With ``norm.precise_bn``, the running statistics are first evaluated as they are
        (``val/loss_running_stats``, ``val/acc_running_stats``), then replaced by precise
        population statistics, which ``val/acc`` uses and the checkpoint keeps.
        With probes on, ``bn/<block>/variance_shift`` (and ``..._precise``) too."""
        cfg, model, val = self.cfg, self.model, self.data.val
        metrics: dict = {}
        if self.probes is not None:
            metrics.update(self.probes.variance_shift())
        loss, acc = evaluate(model, val, cfg.eval_batch_size)
        if cfg.norm.get("precise_bn", False):
            metrics.update({"val/loss_running_stats": loss, "val/acc_running_stats": acc})
            recompute_bn_stats(model, self.data.train.x, cfg.batch_size, cfg.norm.precise_bn_batches)
            if self.probes is not None:
                metrics.update(self.probes.variance_shift("_precise"))
            loss, acc = evaluate(model, val, cfg.eval_batch_size)
        if self.batch_stats:
            train_loss, train_acc = evaluate(model, val, cfg.batch_size, bn_mode="train", per_pass=cfg.eval_batch_size)
        else:  # without a norm that uses batch statistics the two modes are one function: evaluated once
            train_loss, train_acc = loss, acc
        metrics.update({"val/loss": loss, "val/acc": acc, "val/loss_train_mode": train_loss,
                        "val/acc_train_mode": train_acc, "val/train_eval_gap": train_acc - acc})
        return metrics

    def _train_metrics(self, gnorms: torch.Tensor) -> tuple[dict, Optional[int]]:
        """The window's mean training loss and accuracy, the learning rate and gradient
        norms; and the first step of the window whose loss (or, at its end, gradient) is
        not finite, or None. The window is emptied."""
        losses = torch.stack(self.losses).float()
        logits = torch.cat([o for o, _ in self.outputs])
        correct = (logits.argmax(1) == torch.cat([y for _, y in self.outputs])).sum()
        loss, correct, *norms = torch.cat([torch.stack([losses.mean(), correct.float()]).to(gnorms.dtype),
                                           gnorms]).tolist()  # one read back from the device
        metrics = {"train/loss": loss, "train/acc": correct / len(logits), "lr": self.lr()}
        metrics.update(zip(self.grad_norms.tags, norms, strict=True))
        bad_step = None
        if not (math.isfinite(loss) and math.isfinite(metrics["grad_norm/total"])):
            first = int((~losses.isfinite()).nonzero()[0]) if not math.isfinite(loss) else len(losses) - 1
            bad_step = self.step - len(losses) + 1 + first
        self.losses, self.outputs = [], []
        return metrics, bad_step


def _channels_last(split: Split) -> Split:
    return Split(split.x.contiguous(memory_format=torch.channels_last), split.y)


class _Clock:
    """Training time over every session of a run: evaluation and checkpoints excluded."""

    def __init__(self, out: Outcome):
        self.out = out
        self.prior_train, self.prior_wall = out.train_seconds, out.wall_seconds
        self.started = time.perf_counter()
        self.excluded_s = 0.0

    @contextmanager
    def excluded(self):
        t = time.perf_counter()
        try:
            yield t
        finally:
            self.excluded_s += time.perf_counter() - t

    def train_seconds(self, now: float) -> float:
        return self.prior_train + now - self.started - self.excluded_s

    def finish(self, status: str, steps: int) -> Outcome:
        now = time.perf_counter()
        self.out.status, self.out.steps = status, steps
        self.out.wall_seconds = self.prior_wall + now - self.started
        self.out.train_seconds = self.train_seconds(now)
        return self.out
