"""The benchmark script runs from a checkout and prints its figures (no timing is asserted)."""

import re
import subprocess
import sys
from pathlib import Path

BENCH = Path(__file__).resolve().parents[1] / "scripts" / "bench.py"


def test_bench_prints_steps_per_second_and_the_ratios_to_a_bare_loop():
    proc = subprocess.run([sys.executable, str(BENCH), "--epochs", "1", "--repeats", "1", "norm=gn"],
                          capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stderr
    out = proc.stdout
    assert out.startswith("mlp on cpu") and "probe_every=100" in out and "batch 64, 22 steps" in out
    for name in ("bare", "probes off", "probes on"):
        assert re.search(rf"^  {name} +\d+\.\d steps/s", out, re.M), out
    assert re.search(r"probes off / bare = \d\.\d{3}  \(b/a\)", out)
    assert re.search(r"probes on  / bare = \d\.\d{3}  \(c/a\)", out)
