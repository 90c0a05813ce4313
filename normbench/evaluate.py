"""``normbench evaluate <run dir or checkpoint> [split=val|test] [device=...] [data.root=...]``

Rebuilds the model from the checkpoint's own config, loads its weights (with
``torch.load(weights_only=True)``: a checkpoint that would unpickle Python objects is
refused), and prints the loss and accuracy of a split in eval mode, the way training
evaluated it, so the numbers match ``summary.json``'s ``final_val_loss`` and
``final_val_acc``. The checkpoint is data: its config is checked like any other (no
interpolation, nothing downloaded because it says so).
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

from omegaconf import OmegaConf
from omegaconf.errors import OmegaConfBaseException

from .checkpoint import checkpoint_path, load_checkpoint
from .data import load_data
from .errors import UsageError, described
from .models import build_model
from .run import resolve_device
from .validate import check_against_data, check_config, check_device

USAGE = ("usage: normbench evaluate <run dir or checkpoint.pt> [split=val|test] [device=auto|cpu|cuda|cuda:N] "
         "[data.root=DIR] [--json]")
OPTIONS = {"split": "val", "device": "auto", "data.root": None}


def parse(args: list[str]) -> tuple[Path, dict, bool]:
    """The path, the options and --json. ``key=value`` is an option when ``key`` is one
    of OPTIONS; anything else is the path (a sweep job's directory holds ``=``)."""
    options, paths, flags = dict(OPTIONS), [], []
    for a in args:
        name, eq, value = a.partition("=")
        if a.startswith("-"):
            flags.append(a)
        elif a.startswith("+") or (a.startswith("~") and not a.startswith("~/")):  # Hydra's forms, not a path
            raise UsageError(f"{a}: evaluate has no Hydra overrides (+key, ++key, ~key); allowed: "
                             f"{', '.join(f'{k}=...' for k in OPTIONS)}")
        elif eq and name in OPTIONS:
            options[name] = value
        elif eq and not Path(a).exists() and "/" not in a:
            raise UsageError(f"{a} is not an option of evaluate; allowed: {', '.join(OPTIONS)}")
        else:
            paths.append(a)
    unknown = [f for f in flags if f != "--json"]
    if unknown:
        raise UsageError(f"{unknown[0]} is not an option of evaluate; allowed: --json, {', '.join(OPTIONS)}")
    if len(paths) != 1:
        raise UsageError(f"evaluate takes one run directory or checkpoint, got {len(paths)}; {USAGE}")
    if options["split"] not in ("val", "test"):
        raise UsageError(f"split={options['split']} is not allowed; allowed: val, test")
    check_device(options["device"])
    if options["data.root"] is not None and not options["data.root"].strip():
        raise UsageError("data.root= is empty; allowed: a directory holding the data set's files")
    return Path(paths[0]).expanduser(), options, "--json" in flags


def _config(state: dict, file: Path, data_root: str | None):
    """The checkpoint's config, checked, with data.root replaced when given and never a
    download."""
    try:
        cfg = OmegaConf.create(state["config"])
        check_config(cfg)
        if "download" in cfg.data:
            cfg.data.download = False
        if data_root is not None:
            cfg.data.root = data_root
    except UsageError as e:
        raise UsageError(f"{file}: its config is not one normbench can build: {e}") from e
    except (OmegaConfBaseException, KeyError, AttributeError, TypeError, ValueError) as e:
        raise UsageError(f"{file}: its config is not one normbench can build: {described(e)}") from e
    return cfg


def evaluate_checkpoint(path: Path, split: str = "val", device: str = "auto", data_root: str | None = None) -> dict:
    """{split, loss, acc, samples, step, epoch, checkpoint} of the checkpoint at ``path``."""
    from .batchnorm import evaluate  # torch: a refused path or option is said before torch loads

    file = checkpoint_path(path)
    state = load_checkpoint(file)
    cfg = _config(state, file, data_root)
    dev = resolve_device(device)
    data = load_data(cfg.data, dev)
    check_against_data(cfg, len(data.train), data.input_shape)
    model = build_model(cfg, data.input_shape, data.num_classes).to(dev)
    try:
        model.load_state_dict(state["model"])
    except (RuntimeError, KeyError, TypeError, AttributeError) as e:
        first = str(e).strip().splitlines()[0].rstrip(":") if str(e).strip() else type(e).__name__
        raise UsageError(f"{file}: its weights do not fit the model its config describes "
                         f"(model={cfg.model.name}, norm={cfg.norm.name}): {first}") from e
    chosen = data.val if split == "val" else data.test
    if chosen is None:
        raise UsageError(f"split={split} is not allowed for data={cfg.data.name}: it has no test split; "
                         f"allowed: val")
    loss, acc = evaluate(model, chosen, cfg.eval_batch_size)
    return {"split": split, "loss": loss, "acc": acc, "samples": len(chosen), "step": state["step"],
            "epoch": state["epoch"], "checkpoint": str(file)}


def main(args: list[str]) -> int:
    if args and args[0] in ("-h", "--help"):
        print(USAGE + "\n\n" + __doc__.split("\n\n", 1)[1].strip())
        return 0
    path, options, as_json = parse(args)
    r = evaluate_checkpoint(path, options["split"], options["device"], options["data.root"])
    if as_json:
        print(json.dumps(r))
    else:
        print(f"{r['split']}: loss {r['loss']:.4f}  acc {r['acc']:.4f}  ({r['samples']} samples, eval mode; "
              f"{r['checkpoint']} at step {r['step']}, epoch {r['epoch']})")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
