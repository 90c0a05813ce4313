"""What TensorBoard gets from a run and a sweep: the HParams values of a config, the
summary scalars, and the Custom Scalars layout."""

import math

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


def test_custom_scalars_charts_hold_one_quantity_each():
    charts = layout(["block1.linear", "block1.norm", "head"], ["block1", "block2"])
    overview = charts["results (a line per run)"]
    assert overview["total gradient norm"] == ["Multiline", [r"^grad_norm/total$"]]
    per_layer = charts["gradient norm per layer"]
    assert list(per_layer) == ["grad_norm/block1.linear", "grad_norm/block1.norm", "grad_norm/head"]
    assert per_layer["grad_norm/block1.norm"] == ["Multiline", [r"^grad_norm/block1\.norm$"]]
    # no chart matches more than one tag: in a sweep it draws one line per run
    for category in charts.values():
        for _, (kind, patterns) in category.items():
            assert kind == "Multiline" and len(patterns) == 1 and patterns[0].startswith("^")
