"""Training throughput of normbench's trainer against a bare PyTorch loop, in one run.

    python scripts/bench.py                       # digits MLP on CPU
    python scripts/bench.py --model cnn --repeats 7
    python scripts/bench.py --device cuda

For each configuration it times, alternating, with the same model, data, batch size and
number of steps:

  (a) bare:       a hand-written loop: data as device tensors, index batches, forward,
                  backward, optimizer step, nothing logged
  (b) probes off: normbench's Trainer with probe_every=0 (loss, accuracy, gradient norms
                  and update ratios every log_every steps)
  (c) probes on:  normbench's Trainer with the default probe_every

and prints the median steps/s of each, and the ratios b/a and c/a as the median over
rounds of the ratio within a round (a, b and c run back to back in each round, so a
slow spell of the machine slows all three and cancels out). Time spent in
evaluation at the end of each epoch is left out of (b) and (c), as the bare loop has
none; probes are inside the timed steps.
"""

from __future__ import annotations

import argparse
import statistics
import time

import torch
import torch.nn.functional as F
from hydra import compose, initialize_config_module

import normbench.config  # noqa: F401  (registers the schemas)
from normbench.data import load_data
from normbench.models import build_model
from normbench.run import resolve_device
from normbench.trainer import Trainer, build_optimizer


def config(overrides: list[str]):
    with initialize_config_module(config_module="normbench.conf", version_base="1.3"):
        return compose(config_name="config", overrides=["progress=false", "checkpoint=false", *overrides])


def bare_loop(cfg, data, device) -> float:
    """Steps per second of the fastest plain loop a user would write."""
    torch.manual_seed(cfg.seed)
    model = build_model(cfg, data.input_shape, data.num_classes).to(device)
    opt = build_optimizer(cfg, model.parameters())
    X, Y = data.train.x, data.train.y
    B = cfg.batch_size
    steps_per_epoch = len(Y) // B
    g = torch.Generator().manual_seed(cfg.seed)
    model.train()
    sync = torch.cuda.synchronize if device.type == "cuda" else (lambda: None)
    sync()
    start = time.perf_counter()
    for _ in range(cfg.epochs):
        perm = torch.randperm(len(Y), generator=g).to(device)
        for i in range(steps_per_epoch):
            idx = perm[i * B:(i + 1) * B]
            loss = F.cross_entropy(model(X[idx]), Y[idx])
            opt.zero_grad(set_to_none=True)
            loss.backward()
            opt.step()
    sync()
    return cfg.epochs * steps_per_epoch / (time.perf_counter() - start)


def trainer_loop(cfg, data, device) -> float:
    torch.manual_seed(cfg.seed)
    model = build_model(cfg, data.input_shape, data.num_classes).to(device)
    outcome = Trainer(model, data, cfg).run(lambda step, epoch, metrics: None)
    return outcome.steps / outcome.train_seconds


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--model", choices=["mlp", "cnn"], default="mlp")
    ap.add_argument("--device", default="cpu")
    ap.add_argument("--epochs", type=int, default=10)
    ap.add_argument("--repeats", type=int, default=5)
    ap.add_argument("--threads", type=int, default=0, help="torch threads (0: torch's default)")
    ap.add_argument("overrides", nargs="*", help="more Hydra overrides, e.g. norm=gn batch_size=32")
    args = ap.parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)

    base = [f"model={args.model}", f"epochs={args.epochs}", f"device={args.device}", *args.overrides]
    cfg_on = config(base)
    cfg_off = config([*base, "probe_every=0"])
    device = resolve_device(cfg_on.device)
    data = load_data(cfg_on.data, device)
    runs = {"bare": (bare_loop, cfg_on), "probes off": (trainer_loop, cfg_off), "probes on": (trainer_loop, cfg_on)}
    for fn, cfg in runs.values():  # warm-up: first-call imports and allocations
        fn(config([*base, "epochs=1"]) if cfg is cfg_on else config([*base, "epochs=1", "probe_every=0"]), data, device)
    rates: dict[str, list[float]] = {name: [] for name in runs}
    for _ in range(args.repeats):
        for name, (fn, cfg) in runs.items():
            rates[name].append(fn(cfg, data, device))

    med = {name: statistics.median(r) for name, r in rates.items()}
    ratio = {name: statistics.median(x / a for x, a in zip(rates[name], rates["bare"], strict=True))
             for name in ("probes off", "probes on")}
    steps = cfg_on.epochs * (len(data.train) // cfg_on.batch_size)
    print(f"{args.model} on {device} ({torch.get_num_threads()} threads), data={cfg_on.data.name}, "
          f"batch {cfg_on.batch_size}, {steps} steps, probe_every={cfg_on.probe_every}, "
          f"log_every={cfg_on.log_every}, median of {args.repeats}")
    for name, r in med.items():
        spread = f"{min(rates[name]):.0f}-{max(rates[name]):.0f}"
        print(f"  {name:<11} {r:9.1f} steps/s  (range {spread})")
    print(f"  probes off / bare = {ratio['probes off']:.3f}  (b/a)")
    print(f"  probes on  / bare = {ratio['probes on']:.3f}  (c/a)")


if __name__ == "__main__":
    main()
