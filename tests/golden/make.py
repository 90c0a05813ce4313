"""Writes the golden metrics the site-contract test compares against: every logged value
(probes included, perf/ excluded) of a short run of each configuration below, as
float.hex (a histogram as the SHA-256 of its values' hex), with the torch version and CPU
capability they were made with, on 2 threads (torch's intra-op split changes the rounding of
reductions, so bits are only defined for one thread count: ``rows`` always computes on 2,
whatever the test process uses, e.g. one thread per pytest-xdist worker).

    python tests/golden/make.py        # made at commit 2b1b5c1 (before models declared norm sites)

The ``act/<site>/<where>/feature_var`` histograms were made again when the probes moved
them onto a log scale (issue 24, branch dashboards); every other value is as made at
2b1b5c1, and re-making it there changed none of them, except those the file's
``changed_since`` lists, each with why and its value before (issue 26: the train-mode
validation loss of a network without batch statistics, and of one evaluated in one pass).
"""

import hashlib
import json
import sys
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from test_trainer import collect, trainer_for  # noqa: E402

CONFIGS = {
    "mlp-bn": ["epochs=1", "dropout=0.2", "probe_every=10"],
    "mlp-wn": ["epochs=1", "norm=wn", "probe_every=10"],
    "cnn-bn": ["epochs=1", "model=cnn", "model.channels=[8,16]", "probe_every=10", "norm.precise_bn=true"],
    "cnn-gn_ws": ["epochs=1", "model=cnn", "model.channels=[8,16]", "norm=gn_ws", "norm.groups=4",
                  "probe_every=10", "probe_landscape=true", "model.activation=tanh"],
}


THREADS = 2


def rows(overrides: list[str]) -> list:
    """[step, epoch, tag, values...] of every value the run logged, floats as hex, computed
    on THREADS threads."""
    threads = torch.get_num_threads()
    torch.set_num_threads(THREADS)
    try:
        _, logged = collect(trainer_for(*overrides))
    finally:
        torch.set_num_threads(threads)
    out = []
    for step, epoch, metrics in logged:
        for tag, v in sorted(metrics.items()):
            if tag.startswith("perf/"):
                continue
            if hasattr(v, "counts"):
                values = [v.min, v.max, v.num, v.sum, v.sum_squares, *v.edges, *v.counts]
                text = ",".join(float(x).hex() for x in values)
                out.append([step, epoch, tag, "sha256:" + hashlib.sha256(text.encode()).hexdigest()])
            else:
                out.append([step, epoch, tag, float(v).hex()])
    return out


def made_with() -> dict:
    return {"torch": torch.__version__, "cpu": torch.backends.cpu.get_cpu_capability()}


if __name__ == "__main__":
    golden = {"made_with": made_with(), "runs": {name: rows(o) for name, o in CONFIGS.items()}}
    path = Path(__file__).with_name("site_contract.json")
    path.write_text(json.dumps(golden, separators=(",", ":")) + "\n")
    print(f"{path}: {sum(len(r) for r in golden['runs'].values())} values, {path.stat().st_size} bytes")
