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
    (["epochs=3", "steps=100"], "epochs=3 and steps=100 are both given", "one of them"),
    (["steps=0"], "steps=0", "an integer >= 1"),
    (["lr_scaling=linear", "base_batch_size=0"], "base_batch_size=0", ">= 1"),
    (["schedule.warmup_steps=-1"], "schedule.warmup_steps=-1", ">= 0"),
    (["schedule.warmup_epochs=-0.5"], "schedule.warmup_epochs=-0.5", "0 <= warmup_epochs"),
    (["schedule.warmup_steps=5", "schedule.warmup_epochs=1"], "schedule.warmup_steps=5 and schedule.warmup_epochs=1.0",
     "one of them"),
    (["schedule.warmup_start_factor=0"], "schedule.warmup_start_factor=0.0", "0 < warmup_start_factor <= 1"),
    (["schedule=step", "schedule.milestones=[]"], "schedule.milestones=[]", "increasing list of epochs > 0"),
    (["schedule=step", "schedule.milestones=[5,3]"], "schedule.milestones=[5.0,3.0]", "increasing"),
    (["schedule=step", "schedule.gamma=0"], "schedule.gamma=0.0", "0 < gamma"),
    (["schedule=cosine", "schedule.min_lr=0.5"], "schedule.min_lr=0.5", "the effective learning rate (0.05)"),
    (["schedule=cosine", "schedule.min_lr=0.03", "lr_scaling=linear", "batch_size=32"], "schedule.min_lr=0.03",
     "the effective learning rate (0.025)"),
    (["optim.norm_weight_decay=-1"], "optim.norm_weight_decay=-1.0", "0 <= norm_weight_decay"),
    (["optim=adamw", "optim.bias_weight_decay=nan"], "optim.bias_weight_decay=nan", "finite"),
    (["data.augment=crop_flip", "data.augment_flip=true"], "data.augment_flip=true is not allowed with data=digits",
     "data.augment_flip=false"),
    (["data=synthetic", "data.augment=crop_flip", "data.augment_flip=true"],
     "data.augment_flip=true is not allowed with data=synthetic",
     "data.augment_flip=false"),
    (["data=synthetic", "data.shape=[20]", "data.augment=crop_flip", "data.augment_flip=false"],
     "data.augment=crop_flip is not allowed with data=synthetic of feature vectors", "data.augment=none"),
    (["data.augment=crop_flip", "data.augment_pad=-1"], "data.augment_pad=-1", ">= 0"),
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
    ["steps=100"], ["epochs=null", "steps=7"], ["optim=adamw", "optim.norm_weight_decay=0", "optim.bias_weight_decay=0"],
    ["schedule=cosine", "schedule.warmup_epochs=0.5", "lr_scaling=sqrt", "batch_size=16"],
    ["schedule=step", "schedule.milestones=[1.5,3]", "schedule.warmup_steps=10"],
    ["data.augment=crop_flip"], ["data=cifar10", "data.augment=crop_flip", "data.augment_flip=true"],
])
def test_good_configs_pass(overrides):
    check_config(make_cfg(*overrides))


def test_checks_that_need_the_data():
    with pytest.raises(UsageError, match=r"batch_size=2000 .*1437 samples"):
        check_against_data(make_cfg("batch_size=2000"), 1437, (1, 8, 8))
    with pytest.raises(UsageError, match=r"batch_size=1 .*norm=bn"):
        check_against_data(make_cfg("batch_size=1"), 1437, (1, 8, 8))
    check_against_data(make_cfg("batch_size=1", "norm=gn"), 1437, (1, 8, 8))
    with pytest.raises(UsageError, match=r"data.augment_pad=8 .*fewer pixels than the images' side \(8"):
        check_against_data(make_cfg("data.augment=crop_flip", "data.augment_pad=8"), 1437, (1, 8, 8))
    # a milestone inside the warm-up (1 epoch = 22 steps at batch 64) has no place in the schedule
    with pytest.raises(UsageError, match=r"schedule.milestones=\[0.5\] .*after the warm-up's 22 steps"):
        check_against_data(make_cfg("schedule=step", "schedule.milestones=[0.5]", "schedule.warmup_epochs=1"),
                           1437, (1, 8, 8))


def test_a_warm_up_or_milestone_past_the_end_is_said_not_refused(caplog):
    """A short trial of a long recipe (a few steps of a 164-epoch schedule) runs, saying what it leaves out."""
    check_against_data(make_cfg("schedule=step", "schedule.milestones=[82,123]", "schedule.warmup_steps=500",
                                "steps=10"), 1437, (1, 8, 8))
    text = caplog.text
    assert "warm-up (500 steps) is longer than the run (10 steps)" in text
    assert "milestones [82.0, 123.0] are at or after the run's last step (10)" in text


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
