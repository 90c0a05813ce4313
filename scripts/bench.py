"""Throughput of normbench's trainer against a bare PyTorch loop, start-up, a whole run and a sweep, in one run.

    python scripts/bench.py                       # digits MLP and CNN on CPU (and CUDA when present), start-up
    python scripts/bench.py --model cnn --repeats 7 --no-startup
    python scripts/bench.py --model resnet,vgg,vit --no-startup --model-settings vgg:model.width_multiplier=0.25
    python scripts/bench.py --device cuda --model cnn --data synthetic --batch-size 512 --amp bf16 --channels-last

Throughput. For each model and device it times, alternating, with the same model, data,
batch size and number of steps:

  (a) bare:       a hand-written loop: data as device tensors, index batches, forward,
                  backward, optimizer step, nothing logged (with the same amp,
                  channels-last and compile settings as the trainer)
  (b) probes off: normbench's Trainer with probe_every=0 (loss, accuracy, gradient norms
                  and update ratios every log_every steps)
  (c) probes on:  normbench's Trainer with the default probe_every
  (d) augmented:  (b) with ``data.augment=crop_flip`` (on the device, a whole batch at a
                  time; the data set's own pad, and flips where they keep the class)

and prints the median steps/s of each, samples/s of the bare loop, and the ratios b/a,
c/a, c/b (what the probes cost) and d/b as the median over rounds of the ratio within a round (a, b and c run back to back in
each round, so a slow spell of the machine slows all three and cancels out). Time spent
in evaluation at the end of each epoch is left out of (b) and (c), as the bare loop has
none; probes are inside the timed steps. ``--data synthetic`` uses generated
CIFAR-10-shaped images (3x32x32, ``data=synthetic``), nothing downloaded.

Start-up. Whole-process wall time, interleaved, of ``python -c "import torch"``, of a
bare script that trains the digits MLP for one epoch with random data of the same shape
(what any PyTorch training script pays: torch, and torch.optim's import of torch._dynamo),
of ``normbench train epochs=1 progress=false`` in a temporary directory, and of the bare
script ending with ``gc.freeze()`` as normbench does (normbench/heap.py: the interpreter's
shut-down then skips walking torch's objects, ~0.6 s), so that what normbench itself adds
is shown like for like; medians and differences.

Whole run (``--run-repeats``, 5; 0 skips it). Whole-process wall time, interleaved, of a
bare script that trains the digits MLP for ``--run-epochs`` (40) epochs at batch
``--run-batch-size`` (8) and evaluates the validation split once per epoch, and of the
same run by ``normbench train`` with ``probe_every=0`` (logging, TensorBoard and
checkpoints on) and with its default probes, and of the bare script ending with
``gc.freeze()`` as normbench does (like for like); medians, and each normbench run's
ratio to both bare scripts (median over rounds of the ratio within a round).

Sweep (``--sweep-repeats N``). Whole-process wall time, interleaved, of a sweep of
``--sweep-runs`` seeds of the default config (plus the overrides given) run in parallel
(``normbench train -m seed=0,...``, the default: one job per core) and run one job at a
time (the same with ``hydra.launcher.n_jobs=1``); medians and the ratio parallel /
sequential (median over rounds of the ratio within a round).
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from contextlib import nullcontext
from pathlib import Path
from typing import Callable

import torch
import torch.nn.functional as F
from hydra import compose, initialize_config_module

from normbench.app import register
from normbench.data import load_data
from normbench.models import MODELS, build_model
from normbench.run import resolve_device
from normbench.optim import build_optimizer
from normbench.trainer import Trainer, probe_interval


def config(overrides: list[str]):
    register()
    with initialize_config_module(config_module="normbench.conf", version_base="1.3"):
        return compose(config_name="config", overrides=["progress=false", "checkpoint=false", *overrides])


# what --model-settings gives each model (a reduced VGG trains on a CPU; the others as their YAML)
MODEL_OVERRIDES: dict[str, list[str]] = {}


def bare_loop(cfg, data, device) -> float:
    """Steps per second of the fastest plain loop a user would write."""
    torch.manual_seed(cfg.seed)
    model = build_model(cfg, data.input_shape, data.num_classes).to(device)
    X, Y = data.train.x, data.train.y
    if cfg.channels_last:
        model.to(memory_format=torch.channels_last)
        X = X.contiguous(memory_format=torch.channels_last)
    if device.type == "cuda":
        torch.backends.cudnn.benchmark = True
    forward = torch.compile(model) if cfg.compile else model
    autocast = torch.autocast(device.type, dtype=torch.bfloat16) if cfg.amp == "bf16" else nullcontext()
    opt = build_optimizer(cfg, model, cfg.lr)
    B = cfg.batch_size
    steps_per_epoch = len(Y) // B
    g = torch.Generator().manual_seed(cfg.seed)
    epochs = cfg.epochs or 20
    model.train()
    sync = torch.cuda.synchronize if device.type == "cuda" else (lambda: None)
    sync()
    start = time.perf_counter()
    for _ in range(epochs):
        perm = torch.randperm(len(Y), generator=g).to(device)
        for i in range(steps_per_epoch):
            idx = perm[i * B:(i + 1) * B]
            with autocast:
                loss = F.cross_entropy(forward(X[idx]), Y[idx])
            opt.zero_grad(set_to_none=True)
            loss.backward()
            opt.step()
    sync()
    return epochs * steps_per_epoch / (time.perf_counter() - start)


def trainer_loop(cfg, data, device) -> float:
    torch.manual_seed(cfg.seed)
    model = build_model(cfg, data.input_shape, data.num_classes).to(device)
    outcome = Trainer(model, data, cfg).run(lambda step, epoch, metrics: None)
    return outcome.steps / outcome.train_seconds


def throughput(model: str, device_name: str, args) -> dict:
    base = [f"model={model}", f"epochs={args.epochs}", f"device={device_name}", f"amp={args.amp}",
            f"channels_last={str(args.channels_last and MODELS[model].kind == 'maps').lower()}",
            f"compile={str(args.compile).lower()}"]
    if args.data == "synthetic":
        base += ["data=synthetic"] + (["data.shape=[64]"] if model == "mlp" else [])
    if args.batch_size:
        base.append(f"batch_size={args.batch_size}")
    base += MODEL_OVERRIDES.get(model, []) + args.overrides
    cfg = config(base)  # the bare loop and the trainer with its default probes run the same config
    cfgs = {"bare": cfg, "probes off": config([*base, "probe_every=0"]), "probes on": cfg,
            "augmented": config([*base, "probe_every=0", "data.augment=crop_flip"])}
    fns = {"bare": bare_loop, "probes off": trainer_loop, "probes on": trainer_loop, "augmented": trainer_loop}
    device = resolve_device(cfgs["bare"].device)
    data = load_data(cfgs["bare"].data, device)
    for name, cfg in cfgs.items():  # warm-up: first-call allocations, kernel choice, compilation
        warm = cfg.copy()
        warm.epochs = 1
        fns[name](warm, data, device)
    rates: dict[str, list[float]] = {name: [] for name in cfgs}
    for _ in range(args.repeats):
        for name, cfg in cfgs.items():
            rates[name].append(fns[name](cfg, data, device))
    cfg = cfgs["probes on"]
    med = {name: statistics.median(r) for name, r in rates.items()}
    steps = cfg.epochs * (len(data.train) // cfg.batch_size)
    probes = _probe_count(cfg, len(data.train))
    per_probe = statistics.median((steps / on - steps / off) / probes * 1000 if probes else float("nan")
                                  for on, off in zip(rates["probes on"], rates["probes off"], strict=True))
    return {"probe_ms": per_probe,
        "model": model, "device": str(device), "data": cfg.data.name,
        "input": "x".join(map(str, data.input_shape)), "batch": cfg.batch_size,
        "steps": cfg.epochs * (len(data.train) // cfg.batch_size), "med": med, "rates": rates,
        "b/a": statistics.median(b / a for b, a in zip(rates["probes off"], rates["bare"], strict=True)),
        "c/a": statistics.median(c / a for c, a in zip(rates["probes on"], rates["bare"], strict=True)),
        "c/b": statistics.median(c / b for c, b in zip(rates["probes on"], rates["probes off"], strict=True)),
        "d/b": statistics.median(d / b for d, b in zip(rates["augmented"], rates["probes off"], strict=True)),
        "augment": f"pad {cfgs['augmented'].data.augment_pad}, flip {str(cfgs['augmented'].data.augment_flip).lower()}",
        "probes": _probes(cfg, len(data.train)), "log_every": cfg.log_every,
    }


def _probe_count(cfg, n_train: int) -> int:
    total = cfg.epochs * (n_train // cfg.batch_size)
    every = probe_interval(cfg.probe_every, total)
    return 0 if every == 0 else len(range(0, total + 1, every)) + (total % every != 0)


def _probes(cfg, n_train: int) -> str:
    """How often the default probes ran: ``every 22 steps and the last (11 probes; ...)``."""
    every = probe_interval(cfg.probe_every, cfg.epochs * (n_train // cfg.batch_size))
    return f"every {every} steps and the last ({_probe_count(cfg, n_train)} probes; probe_every={cfg.probe_every})"


BARE_SCRIPT = """\
import torch
import torch.nn.functional as F
from torch import nn

X, Y = torch.randn(1437, 1, 8, 8), torch.randint(0, 10, (1437,))  # the digits' training split's shape
blocks = [nn.Flatten()]
for i in range(3):
    blocks += [nn.Linear(64 if i == 0 else 128, 128, bias=False), nn.BatchNorm1d(128), nn.ReLU()]
model = nn.Sequential(*blocks, nn.Linear(128, 10))
opt = torch.optim.SGD(model.parameters(), lr=0.05, momentum=0.9)
perm = torch.randperm(len(Y))
for i in range(len(Y) // 64):
    idx = perm[i * 64:(i + 1) * 64]
    loss = F.cross_entropy(model(X[idx]), Y[idx])
    opt.zero_grad()
    loss.backward()
    opt.step()
"""


BARE_RUN_SCRIPT = """\
# A whole run as a user would write it: the digits MLP (3 x Linear-BatchNorm-ReLU, width 128),
# SGD with momentum, EPOCHS epochs at batch BATCH, the validation split evaluated once per epoch.
import gzip, importlib.util, os, sys
import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

EPOCHS, BATCH = int(sys.argv[1]), int(sys.argv[2])
where = importlib.util.find_spec("sklearn").submodule_search_locations[0]  # the digits scikit-learn ships
with gzip.open(os.path.join(where, "datasets", "data", "digits.csv.gz"), "rt") as f:
    table = np.loadtxt(f, delimiter=",")
X, Y = torch.tensor(table[:, :-1], dtype=torch.float32), torch.tensor(table[:, -1], dtype=torch.int64)
torch.manual_seed(0)
order = torch.randperm(len(Y))
val, train = order[:360], order[360:]
X = (X - X[train].mean(0)) / X[train].std(0).clamp_min(1e-8)
Xt, Yt, Xv, Yv = X[train], Y[train], X[val], Y[val]
blocks = []
for i in range(3):
    blocks += [nn.Linear(64 if i == 0 else 128, 128, bias=False), nn.BatchNorm1d(128), nn.ReLU()]
model = nn.Sequential(*blocks, nn.Linear(128, 10))
opt = torch.optim.SGD(model.parameters(), lr=0.05, momentum=0.9)
for epoch in range(EPOCHS):
    model.train()
    perm = torch.randperm(len(Yt))
    for i in range(len(Yt) // BATCH):
        idx = perm[i * BATCH:(i + 1) * BATCH]
        loss = F.cross_entropy(model(Xt[idx]), Yt[idx])
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()
    model.eval()
    with torch.no_grad():
        acc = (model(Xv).argmax(1) == Yv).float().mean().item()
print(f"val acc {acc:.4f}")
"""


# what normbench does before it exits (normbench/heap.py): the interpreter's shut-down no
# longer walks the objects torch's imports made; the same in the bare script says what
# normbench costs beyond it, like for like
FROZEN_AT_EXIT = """\
import gc
gc.freeze()
"""


def bare_scripts(tmp: str, stem: str, text: str) -> tuple[str, str]:
    """``text`` written to ``<stem>.py`` in ``tmp``, and again ending with ``gc.freeze()``
    (``<stem>_frozen.py``): the two paths."""
    paths = os.path.join(tmp, f"{stem}.py"), os.path.join(tmp, f"{stem}_frozen.py")
    for path, source in zip(paths, (text, text + FROZEN_AT_EXIT)):
        with open(path, "w") as f:
            f.write(source)
    return paths


def process_env() -> dict[str, str]:
    """The environment of a timed process. PYTHONDONTWRITEBYTECODE (set on some CI machines)
    would make every process compile normbench's modules again (~0.2 s): a user's Python
    caches them, and so does this bench."""
    return {k: v for k, v in os.environ.items() if k not in ("HYDRA_FULL_ERROR", "PYTHONDONTWRITEBYTECODE")}


def time_commands(commands: dict[str, list[str]], repeats: int,
                  after: Callable[[str, Path], None] | None = None) -> dict[str, list[float]]:
    """Whole-process wall times (s) of each command, run interleaved ``repeats`` times, each
    run in a fresh temporary directory (``after(name, directory)`` may read what it wrote);
    one list per command."""
    env = process_env()
    times: dict[str, list[float]] = {name: [] for name in commands}
    for _ in range(repeats):
        for name, cmd in commands.items():
            with tempfile.TemporaryDirectory(prefix="normbench-bench-") as tmp:
                t = time.perf_counter()
                proc = subprocess.run(cmd, cwd=tmp, env=env, capture_output=True, text=True)
                times[name].append(time.perf_counter() - t)
                if after is not None and proc.returncode == 0:
                    after(name, Path(tmp))
            if proc.returncode != 0:
                raise SystemExit(f"bench: {' '.join(cmd)} failed:\n{proc.stderr}")
    return times


def print_times(times: dict[str, list[float]]) -> None:
    for name, t in times.items():
        print(f"  {name:<48} {statistics.median(t):6.2f} s  ({min(t):.2f}-{max(t):.2f})")


def startup(repeats: int, import_repeats: int = 3) -> tuple[dict[str, list[float]], dict[str, float]]:
    """``import torch``, a bare training script (also ending with ``gc.freeze()``) and
    ``normbench train epochs=1``, timed; and what normbench imports beyond the bare
    script, by package (``import_parts``)."""
    with tempfile.TemporaryDirectory(prefix="normbench-bench-") as tmp:
        script, frozen = bare_scripts(tmp, "bare_loop", BARE_SCRIPT)
        train = [sys.executable, "-m", "normbench", "train", "epochs=1", "progress=false"]
        times = time_commands({
            'python -c "import torch"': [sys.executable, "-c", "import torch"],
            "bare loop script (digits MLP shapes, 1 epoch)": [sys.executable, script],
            "normbench train epochs=1 progress=false": train,
            "bare loop script, gc.freeze() at its end": [sys.executable, frozen],
        }, repeats)
        return times, import_parts([[sys.executable, script], train], import_repeats)


def import_parts(commands: list[list[str]], repeats: int = 3) -> dict[str, float]:
    """``python -X importtime``: the self time (s) of each top-level package's modules that the
    second command imports and the first does not, median of ``repeats`` runs of each."""
    def self_times(cmd: list[str]) -> dict[str, float]:
        env = process_env()
        with tempfile.TemporaryDirectory(prefix="normbench-bench-") as tmp:
            err = subprocess.run([cmd[0], "-X", "importtime", *cmd[1:]], cwd=tmp, env=env, capture_output=True,
                                 text=True).stderr
        rows = [line.split("|") for line in err.splitlines() if line.startswith("import time:") and "self [us]" not in line]
        return {r[2].strip(): int(r[0].split(":")[1]) / 1e6 for r in rows}

    runs = [[self_times(c) for _ in range(repeats)] for c in commands]
    bare, ours = ({m: statistics.median(r.get(m, 0.0) for r in rs) for m in set().union(*rs)} for rs in runs)
    parts: dict[str, float] = {}
    for module, t in ours.items():
        if module not in bare:
            parts[module.split(".")[0]] = parts.get(module.split(".")[0], 0.0) + t
    return dict(sorted(parts.items(), key=lambda kv: -kv[1]))


def whole_run(repeats: int, epochs: int, batch: int) -> dict[str, list[float]]:
    """A whole training run, as processes: the bare script, ``normbench train`` with the
    probes off and with its default probes (logging, TensorBoard, checkpoints on), and the
    bare script ending with ``gc.freeze()``."""
    with tempfile.TemporaryDirectory(prefix="normbench-bench-") as tmp:
        script, frozen = bare_scripts(tmp, "bare_run", BARE_RUN_SCRIPT)
        run = [sys.executable, "-m", "normbench", "train", f"epochs={epochs}", f"batch_size={batch}", "progress=false"]
        return time_commands({
            f"bare script ({epochs} epochs, batch {batch})": [sys.executable, script, str(epochs), str(batch)],
            "normbench train probe_every=0": [*run, "probe_every=0"],
            "normbench train (default probes)": run,
            "bare script, gc.freeze() at its end": [sys.executable, frozen, str(epochs), str(batch)],
        }, repeats)


def print_ratios(times: dict[str, list[float]], pairs: list[tuple[str, int, int]], kind: str = "ratio") -> None:
    """The median over rounds of the ratio (or difference) of two commands within a round."""
    t = list(times.values())
    for name, i, j in pairs:
        per_round = [a / b if kind == "ratio" else a - b for a, b in zip(t[i], t[j], strict=True)]
        print(f"  {name:<48} {statistics.median(per_round):{'6.3f' if kind == 'ratio' else '+6.2f'}}"
              f"{'' if kind == 'ratio' else ' s'}")


def sweep(repeats: int, runs: int, overrides: list[str]) -> tuple[dict[str, list[float]], dict[str, list[dict]]]:
    """A sweep of ``runs`` seeds in parallel and one job at a time, timed; and each job's
    summary.json (its own wall time and torch threads), per way of running."""
    grid = [sys.executable, "-m", "normbench", "train", "-m", "seed=" + ",".join(map(str, range(runs))),
            "progress=false", *overrides]
    jobs: dict[str, list[dict]] = {}

    def read_jobs(name: str, directory: Path) -> None:
        jobs.setdefault(name, []).extend(json.loads(p.read_text()) for p in directory.rglob("summary.json"))

    times = time_commands({"parallel (one job per core)": grid,
                           "sequential (hydra.launcher.n_jobs=1)": [*grid, "hydra.launcher.n_jobs=1"]}, repeats,
                          after=read_jobs)
    return times, jobs


def print_sweep_bound(times: dict[str, list[float]], jobs: dict[str, list[dict]]) -> None:
    """What the jobs themselves allow: a parallel job's time (torch threads shared out) and
    a sequential one's (every core's threads), and the ratio they set with no start-up at
    all: (parallel job time x jobs / jobs at once) / (sequential job time x jobs)."""
    per = {name: statistics.median(j["wall_time_s"] for j in js) for name, js in jobs.items()}
    threads = {name: statistics.median(j["threads"] for j in js) for name, js in jobs.items()}
    at_once = max(1, os.cpu_count() // int(threads[next(iter(jobs))]))
    p, q = per.values()
    parallel_times = next(iter(times.values()))
    runs = len(next(iter(jobs.values()))) / len(parallel_times)  # jobs in one sweep
    for name in jobs:
        print(f"  {'one job, ' + name.split(' (')[0] + f' ({threads[name]:.0f} threads)':<48} {per[name]:6.2f} s "
              f"(median of {len(jobs[name])}, its run.train)")
    print(f"  {'jobs alone: parallel / sequential':<48} {p / at_once / q:6.3f}  (no start-up, {at_once} at once)")
    spent = statistics.median(t - runs * p / at_once for t in parallel_times)
    print(f"  {'parallel sweep beyond its jobs (start-up, workers)':<48} {spent:6.2f} s")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--model", default="mlp,cnn", help=f"comma-separated, of {', '.join(MODELS)} (default: mlp,cnn)")
    ap.add_argument("--model-settings", action="append", default=[], metavar="MODEL:OVERRIDE",
                    help="an override for one model only, e.g. vgg:model.width_multiplier=0.25 (repeatable)")
    ap.add_argument("--device", action="append", help="cpu, cuda, cuda:N; repeatable (default: cpu, and cuda "
                                                      "when torch sees one)")
    ap.add_argument("--data", choices=["digits", "synthetic"], default="digits",
                    help="synthetic: generated 3x32x32 images (data=synthetic), CIFAR-10's shape")
    ap.add_argument("--batch-size", type=int, default=0, help="0: the config's (64)")
    ap.add_argument("--amp", choices=["none", "bf16"], default="none")
    ap.add_argument("--channels-last", action="store_true", help="CNN only")
    ap.add_argument("--compile", action="store_true", help="torch.compile the model (bare loop and trainer)")
    ap.add_argument("--epochs", type=int, default=20, help="the default run's 20 (its default probes: 8 between the first and the last)")
    ap.add_argument("--repeats", type=int, default=5)
    ap.add_argument("--startup-repeats", type=int, default=15, help="single rounds spread by ~0.8 s on 2 cores")
    ap.add_argument("--import-repeats", type=int, default=3, help="runs of each under python -X importtime")
    ap.add_argument("--run-repeats", type=int, default=5, help="rounds of the whole-run measurement (0: skip it)")
    ap.add_argument("--run-epochs", type=int, default=40)
    ap.add_argument("--run-batch-size", type=int, default=8)
    ap.add_argument("--no-startup", action="store_true", help="skip the start-up measurement")
    ap.add_argument("--no-throughput", action="store_true", help="only the start-up measurement")
    ap.add_argument("--sweep-repeats", type=int, default=0, help="rounds of the sweep measurement (0: skip it)")
    ap.add_argument("--sweep-runs", type=int, default=8, help="jobs of the measured sweep (seeds)")
    ap.add_argument("--threads", type=int, default=0, help="torch threads (0: torch's default)")
    ap.add_argument("overrides", nargs="*", help="more Hydra overrides, e.g. norm=gn")
    args = ap.parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)
    devices = args.device or ["cpu", *(["cuda"] if torch.cuda.is_available() else [])]
    models = [m.strip() for m in args.model.split(",") if m.strip()]
    unknown = [m for m in models if m not in MODELS]
    if unknown:
        ap.error(f"--model {unknown[0]}: not a model; allowed: {', '.join(MODELS)}")
    for setting in args.model_settings:
        name, _, override = setting.partition(":")
        MODEL_OVERRIDES.setdefault(name, []).append(override)

    print(f"normbench bench: torch {torch.__version__}, {torch.get_num_threads()} CPU threads, "
          f"{os.cpu_count()} CPUs" + "".join(f", {torch.cuda.get_device_name(0)}" for _ in
                                             [1] if torch.cuda.is_available()))
    if not args.no_throughput:
        rows = [throughput(m, d, args) for d in devices for m in models]
        r0 = rows[0]
        print(f"\nthroughput: steps/s, median of {args.repeats} rounds; b/a, c/a, c/b, d/b: median over rounds of the "
              f"ratio within a round; probes {r0['probes']}, log_every={r0['log_every']}, "
              f"amp={args.amp}, channels_last={args.channels_last}, compile={args.compile}")
        head = (f"  {'model':<5} {'device':<7} {'data':<9} {'input':<8} {'batch':>5} {'steps':>5} "
                f"{'bare (a)':>9} {'off (b)':>9} {'on (c)':>9} {'aug (d)':>9} {'b/a':>6} {'c/a':>6} {'c/b':>6} {'d/b':>6} "
                f"{'ms/probe':>8} {'bare samples/s':>15}  augmentation")
        print(head)
        for r in rows:
            m = r["med"]
            print(f"  {r['model']:<5} {r['device']:<7} {r['data']:<9} {r['input']:<8} {r['batch']:>5} "
                  f"{r['steps']:>5} {m['bare']:9.1f} {m['probes off']:9.1f} {m['probes on']:9.1f} "
                  f"{m['augmented']:9.1f} {r['b/a']:6.3f} {r['c/a']:6.3f} {r['c/b']:6.3f} {r['d/b']:6.3f} {r['probe_ms']:8.1f} "
                  f"{m['bare'] * r['batch']:15.0f}  {r['augment']}")
    if not args.no_startup:
        s, parts = startup(args.startup_repeats, args.import_repeats)
        print(f"\nstart-up: whole-process wall time, median of {args.startup_repeats} interleaved rounds (range); "
              f"differences: median over rounds of the difference within a round")
        print_times(s)
        print_ratios(s, [("normbench - import torch", 2, 0), ("normbench - bare loop script", 2, 1),
                         ("bare loop script - import torch", 1, 0),
                         ("normbench - bare loop script frozen at its end", 2, 3)], kind="difference")
        print(f"  what normbench imports beyond the bare script (python -X importtime, self times, median of "
              f"{args.import_repeats}): "
              f"{sum(parts.values()):.2f} s")
        print("    " + ", ".join(f"{name} {t:.3f}" for name, t in list(parts.items())[:12]))
    if args.run_repeats:
        s = whole_run(args.run_repeats, args.run_epochs, args.run_batch_size)
        print(f"\nwhole run: the digits MLP, {args.run_epochs} epochs at batch {args.run_batch_size}, whole-process "
              f"wall time, median of {args.run_repeats} interleaved rounds (range); ratios: median over rounds of the "
              f"ratio within a round")
        print_times(s)
        print_ratios(s, [("probes off / bare script", 1, 0), ("default probes / bare script", 2, 0),
                         ("probes off / bare script frozen at its end", 1, 3),
                         ("default probes / bare script frozen at its end", 2, 3)])

    if args.sweep_repeats:
        s, jobs = sweep(args.sweep_repeats, args.sweep_runs, args.overrides)
        print(f"\nsweep: {args.sweep_runs} runs (seeds) of the default config{' ' if args.overrides else ''}"
              f"{' '.join(args.overrides)}, whole-process wall time, median of {args.sweep_repeats} interleaved "
              f"rounds (range), {os.cpu_count()} CPUs")
        print_times(s)
        print_ratios(s, [("parallel / sequential", 0, 1)])
        print_sweep_bound(s, jobs)


if __name__ == "__main__":
    main()
