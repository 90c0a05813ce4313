"""Refused values and combinations: one line naming the key, the value, what is allowed."""

import pytest

from conftest import make_cfg
from normbench.errors import UsageError
from normbench.validate import check_against_data, check_config, check_keys

BAD = [
    (["dropout=1.5"], "dropout=1.5", "0 <= dropout < 1"),
    (["dropout=-0.1"], "dropout=-0.1", "0 <= dropout < 1"),
    (["lr=-1"], "lr=-1.0", "0 < lr"),
    (["lr=0"], "lr=0.0", "0 < lr"),
    (["lr=nan"], "lr=nan", "finite"),
    (["batch_size=0"], "batch_size=0", ">= 1"),
    (["epochs=0"], "epochs=0", ">= 1"),
    (["seed=-1"], "seed=-1", "[0, 4294967295]"),
    (["target_acc=1.5"], "target_acc=1.5", "target_acc <= 1"),
    (["log_every=0"], "log_every=0", ">= 1"),
    (["device=tpu"], "device=tpu", "auto, cpu, cuda, cuda:N"),
    (["model.depth=0"], "model.depth=0", ">= 1"),
    (["model.width=0"], "model.width=0", ">= 1"),
    (["model=cnn", "model.channels=[]"], "model.channels=[]", "non-empty list"),
    (["model=cnn", "model.channels=[8,0]"], "model.channels=[8,0]", "positive integers"),
    (["norm=in"], "norm=in", "model=cnn"),
    (["norm=gn", "norm.groups=5"], "norm.groups=5", "divides every hidden width"),
    (["norm=gn", "norm.groups=3", "model=cnn", "model.channels=[6,8]"], "norm.groups=3",
     "divides every hidden width: 1, 2"),
    (["norm=gn", "norm.groups=0"], "norm.groups=0", ">= 1"),
    (["norm=gn", "norm.groups=128"], "norm.groups=128 with model.width=128", "width / groups >= 2"),
    (["norm=ln", "model.width=1"], "model.width=1 with norm=ln", "width / groups >= 2"),
    (["norm.eps=0"], "norm.eps=0.0", "0 < eps"),
    (["norm.momentum=1.5"], "norm.momentum=1.5", "momentum <= 1"),
    (["model=cnn", "data=blobs"], "model=cnn", "model=mlp with data=blobs"),
    (["data.val_fraction=0"], "data.val_fraction=0.0", "0 < val_fraction < 1"),
    (["data=blobs", "data.n_classes=1"], "data.n_classes=1", ">= 2"),
    (["data=blobs", "data.feature_scale=[1,2,3]"], "data.feature_scale=[1.0,2.0,3.0]", "one per feature"),
    (["data=blobs", "data.cluster_std=0"], "data.cluster_std=0.0", "0 < cluster_std"),
    (["optim.momentum=1"], "optim.momentum=1.0", "momentum < 1"),
    (["optim.weight_decay=-1"], "optim.weight_decay=-1.0", "0 <= weight_decay"),
    (["optim.nesterov=true", "optim.momentum=0"], "optim.nesterov=True", "needs momentum"),
    (["optim=adam", "optim.betas=[0.9]"], "optim.betas=[0.9]", "two numbers"),
    (["optim=adam", "optim.betas=[0.9,1.0]"], "optim.betas=[0.9,1.0]", "each 0 <= beta < 1"),
    (["norm=brn", "norm.r_max=0.5"], "norm.r_max=0.5", "a finite number, 1 <= r_max"),
    (["norm=brn", "norm.d_max=inf"], "norm.d_max=inf", "a finite number, 0 <= d_max"),
]


@pytest.mark.parametrize("overrides,shown,allowed", BAD, ids=[" ".join(b[0]) for b in BAD])
def test_bad_values_name_key_value_and_what_is_allowed(overrides, shown, allowed):
    with pytest.raises(UsageError) as e:
        check_config(make_cfg(*overrides))
    msg = str(e.value)
    assert shown in msg and allowed in msg and "\n" not in msg


@pytest.mark.parametrize("overrides", [
    [], ["model=cnn", "norm=in"], ["norm=gn", "norm.groups=4"], ["norm=none", "dropout=0.5"],
    ["optim=adam", "lr=1e-3"], ["data=blobs", "norm=ln"], ["norm.momentum=null"], ["device=cuda:1"],
    ["model=cnn", "data=cifar10", "norm=gn", "norm.groups=32"],
])
def test_good_configs_pass(overrides):
    check_config(make_cfg(*overrides))


def test_checks_that_need_the_data():
    with pytest.raises(UsageError, match=r"batch_size=2000 .*1437 samples"):
        check_against_data(make_cfg("batch_size=2000"), 1437, (1, 8, 8))
    with pytest.raises(UsageError, match=r"batch_size=1 .*norm=bn"):
        check_against_data(make_cfg("batch_size=1"), 1437, (1, 8, 8))
    check_against_data(make_cfg("batch_size=1", "norm=gn"), 1437, (1, 8, 8))


@pytest.mark.parametrize("off", ["false", "null", "None"])
def test_resume_switched_off_is_no_resume(off):
    """``resume=false`` (null, none) leaves the run and the sweep as if resume were not given."""
    from normbench.resume import run_args
    from normbench.sweep.resume import sweep_args

    assert run_args(["epochs=1", f"resume={off}"]) == ["epochs=1"]
    assert sweep_args(["-m", f"resume={off}", "seed=0,1"]) == ["-m", "seed=0,1"]


@pytest.mark.parametrize("overrides, message", [
    (["+dropuot=0.5"], "dropuot=0.5 is not a setting of normbench (did you mean dropout?); allowed: "),
    (["++lrr=0.1"], "lrr=0.1 is not a setting of normbench (did you mean lr?)"),
    (["+norm.groups=4"], "norm.groups=4 is not a setting of norm=bn; allowed: norm.name, norm.momentum"),
    (["norm=ln", "++norm.momentum=0.1"], "norm.momentum=0.1 is not a setting of norm=ln; allowed: norm.name, norm.eps"),
    (["+model.widht=3"], "model.widht=3 is not a setting of model=mlp (did you mean model.width?)"),
    (["~dropout"], "dropout has no value (deleted with ~dropout?)"),
    (["~norm"], "norm has no value (deleted with ~norm?)"),
])
def test_an_added_or_deleted_key_is_refused_with_the_key_it_may_have_meant(overrides, message):
    with pytest.raises(UsageError) as e:
        check_keys(make_cfg(*overrides))
    assert message in str(e.value) and "\n" not in str(e.value)


def test_every_documented_override_form_that_keeps_the_schema_passes():
    for overrides in (["++lr=0.1"], ["++norm.eps=1e-3"], ["~experiment"], ["experiment=init"], ["norm=gn"],
                      ["+hydra.job.env_set.X=1"]):
        check_keys(make_cfg(*overrides))
