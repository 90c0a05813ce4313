"""What TensorBoard gets from a run and a sweep: the HParams values of a config, the
summary scalars, and the Custom Scalars layout."""

import math
import re

from normbench.hparams import values
from normbench.run import summary_scalars
from normbench.sinks import layout


def test_the_config_is_flattened_for_the_hparams_tab_with_its_types():
    config = {"model": {"name": "cnn", "channels": [8, 16]}, "norm": {"name": "gn", "groups": 4, "momentum": None},
              "lr": 0.1, "checkpoint": True, "compile": False, "placement": "pre"}
    # integers stay integers, booleans booleans; nulls and how a run was managed are left out
    assert values(config) == {"model.name": "cnn", "model.channels": "[8, 16]", "norm.name": "gn",
                              "norm.groups": 4, "lr": 0.1, "compile": False, "placement": "pre"}
    assert values({"norm": {"name": "none"}, "placement": "post"}) == {"norm.name": "none", "placement": "n/a"}


def test_summary_scalars_leave_out_what_was_not_measured():
    fields = {"best_val_acc": 0.9, "steps_to_target": None, "precise_bn_gain": math.nan}
    assert summary_scalars(fields) == {"summary/best_val_acc": 0.9}


def test_custom_scalars_show_the_results_first_and_only_what_was_recorded():
    recorded = ["train/loss", "train/acc", "grad_norm/stem.conv", "grad_norm/stage1.block1.norm1", "grad_norm/head",
                "grad_norm/total", "act/stem/pre_norm/std", "act/stage1.block1.norm1/pre_norm/std",
                "act/stem/pre_norm/feature_var_mean", "act/stem/dead", "val/acc", "val/loss", "lr"]
    categories = {c.title: c for c in layout(recorded).category}
    charts = {title: [(ch.title, list(ch.multiline.tag)) for ch in cat.chart] for title, cat in categories.items()}
    # up front, open: one chart per result, a line per run
    first = layout(recorded).category[0]
    assert first.title == "results (a line per run)" and not first.closed
    assert [t for t, _ in charts[first.title]] == ["validation accuracy (eval mode)", "training loss",
                                                  "validation loss", "total gradient norm", "learning rate"]
    assert dict(charts[first.title])["total gradient norm"] == [r"^grad_norm/total$"]
    # per layer and per site: a category each, closed until clicked, a chart per place, in the order recorded
    assert all(c.closed for c in layout(recorded).category[1:])
    assert charts["gradient norm of each layer"] == [
        ("grad_norm/stem.conv", [r"^grad_norm/stem\.conv$"]),
        ("grad_norm/stage1.block1.norm1", [r"^grad_norm/stage1\.block1\.norm1$"]),
        ("grad_norm/head", [r"^grad_norm/head$"])]
    assert [t for t, _ in charts["std entering each norm"]] == ["act/stem/pre_norm/std",
                                                                "act/stage1.block1.norm1/pre_norm/std"]
    assert [t for t, _ in charts["dead (ReLU) units at each norm site"]] == ["act/stem/dead"]
    # nothing that was not recorded: no chart would say "Matches (0)"
    assert set(categories) == {"results (a line per run)", "gradient norm of each layer", "std entering each norm",
                               "dead (ReLU) units at each norm site"}
    tags = [t for cat in layout(recorded).category for ch in cat.chart for t in ch.multiline.tag]
    assert all(any(re.fullmatch(t, r) for r in recorded) for t in tags)
    assert all(sum(bool(re.fullmatch(t, r)) for r in recorded) == 1 for t in tags)  # one line per run
