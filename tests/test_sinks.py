"""What the HParams tab gets from a run's config and summary."""

import math

from normbench.run import hparams, summary_scalars


def test_the_config_is_flattened_for_the_hparams_tab():
    config = {"model": {"name": "cnn", "channels": [8, 16]}, "norm": {"name": "gn", "groups": 4, "momentum": None},
              "lr": 0.1, "checkpoint": True}
    assert hparams(config) == {"model.name": "cnn", "model.channels": "[8, 16]", "norm.name": "gn",
                               "norm.groups": 4, "lr": 0.1, "checkpoint": "true"}


def test_summary_scalars_leave_out_what_was_not_measured():
    fields = {"best_val_acc": 0.9, "steps_to_target": None, "precise_bn_gain": math.nan}
    assert summary_scalars(fields) == {"summary/best_val_acc": 0.9}
