"""The norm-site contract: every model declares its sites, everything that looks inside
reads them, and moving the MLP and the CNN onto it changed no number."""

import json
import math
from pathlib import Path

import pytest

from golden.make import CONFIGS, made_with, rows

GOLDEN = json.loads((Path(__file__).parent / "golden" / "site_contract.json").read_text())


def _close(a: list, b: list) -> bool:
    """Rows equal in their step, epoch and tag, and in value to 1e-5 (histograms by hash)."""
    if a[:3] != b[:3]:
        return False
    if str(a[3]).startswith("sha256:"):
        return True  # a histogram's bins move with its edges: compared exactly only where bits are defined
    x, y = float.fromhex(a[3]), float.fromhex(b[3])
    return math.isclose(x, y, rel_tol=1e-5, abs_tol=1e-8) or (math.isnan(x) and math.isnan(y))


@pytest.mark.parametrize("name", list(CONFIGS))
def test_the_mlp_and_cnn_keep_every_number_they_had_before_the_sites(name):
    """Same seed, same metrics as before the change: every value bit for bit where the
    golden file was made with this torch on this kind of CPU (bit equality is only
    defined there), to 1e-5 elsewhere."""
    got, expected = rows(CONFIGS[name]), GOLDEN["runs"][name]
    assert len(got) == len(expected)
    if made_with() == GOLDEN["made_with"]:
        mismatch = [(g, e) for g, e in zip(got, expected) if g != e]
        assert not mismatch, mismatch[:3]
    else:
        assert all(_close(g, e) for g, e in zip(got, expected))
