"""Budgets and learning-rate scaling: epochs or steps, what a run records of the data it
saw, the effective learning rate under each rule, and settings that cannot change a run
counted as the same run."""

import pytest

from conftest import make_cfg
from normbench.budget import effective_lr
from normbench.identity import canonical
from omegaconf import OmegaConf
from test_trainer import collect, trainer_for


@pytest.mark.parametrize("rule,batch,expected", [
    ("none", 8, 0.05), ("linear", 8, 0.05 * 8 / 64), ("linear", 256, 0.2), ("sqrt", 16, 0.025), ("sqrt", 64, 0.05),
])
def test_the_effective_lr_scales_with_the_batch_by_the_rule(rule, batch, expected):
    assert effective_lr(make_cfg(f"lr_scaling={rule}", f"batch_size={batch}")) == pytest.approx(expected)
    tr = trainer_for(f"lr_scaling={rule}", f"batch_size={batch}", "epochs=1", "probe_every=0")
    assert tr.optimizer.param_groups[0]["lr"] == pytest.approx(expected)


def test_no_budget_means_twenty_epochs():
    tr = trainer_for()
    assert tr.total_steps == 20 * (1437 // 64)


def test_a_budget_in_steps_ends_mid_epoch_evaluated_and_counted_in_samples_and_epochs():
    tr = trainer_for("steps=50", "probe_every=0")  # 22 steps per epoch: two full epochs and 6 steps
    outcome, rows = collect(tr)
    assert outcome.status == "completed" and tr.step == outcome.steps == 50
    assert outcome.epochs_completed == 2 and tr.position == 6 and tr.perm is not None  # goes on from there
    evaluated = [(s, e, m["progress/epochs"], m["progress/samples"]) for s, e, m in rows if "val/acc" in m]
    assert evaluated == [(22, 1, 22 * 64 / 1437, 22 * 64), (44, 2, 44 * 64 / 1437, 44 * 64),
                         (50, 3, 50 * 64 / 1437, 50 * 64)]
    assert tr.plan.samples_at(50) == 3200 and tr.plan.epochs_at(50) == pytest.approx(2.2269, abs=1e-4)


def test_equal_epochs_are_equal_samples_at_every_batch_size():
    small, large = trainer_for("batch_size=8", "epochs=2"), trainer_for("batch_size=32", "epochs=2")
    assert small.total_steps == 2 * (1437 // 8) and large.total_steps == 2 * (1437 // 32)
    assert small.plan.samples_at(small.total_steps) / large.plan.samples_at(large.total_steps) == \
        pytest.approx(1.0, abs=0.03)  # the dropped last batch of each epoch


def resolved(*overrides) -> dict:
    return canonical(OmegaConf.to_container(make_cfg(*overrides), resolve=True, enum_to_str=True))


@pytest.mark.parametrize("a,b", [
    (["epochs=null"], ["epochs=20"]),
    (["lr_scaling=linear"], ["lr_scaling=none"]),  # at the base batch size (64)
    (["lr_scaling=none", "batch_size=32", "base_batch_size=16"], ["lr_scaling=none", "batch_size=32"]),
    (["schedule.warmup_start_factor=0.5"], ["schedule.warmup_start_factor=0.1"]),  # no warm-up steps
    (["schedule.warmup_steps=100", "schedule.warmup_start_factor=1"], []),  # a warm-up from the full lr
    (["data.augment_pad=3"], []),  # no augmentation
    (["data.augment=crop_flip", "data.augment_pad=0"], []),  # a crop of nothing, no flip
])
def test_settings_that_cannot_change_a_run_make_the_same_run(a, b):
    assert resolved(*a) == resolved(*b)


@pytest.mark.parametrize("a,b", [
    (["lr_scaling=linear", "batch_size=32"], ["lr_scaling=none", "batch_size=32"]),
    (["schedule.warmup_steps=10"], []),
    (["data.augment=crop_flip"], []),
])
def test_settings_that_change_a_run_make_another(a, b):
    assert resolved(*a) != resolved(*b)


def checkpointed(tmp_path, *overrides):
    """A run trained to its end in-process, its checkpoint in ``tmp_path``."""
    from normbench.checkpoint import save_checkpoint

    tr = trainer_for(*overrides, "probe_every=0")
    collect(tr)
    config = OmegaConf.to_container(tr.cfg, resolve=True, enum_to_str=True)
    save_checkpoint(tmp_path, {**tr.state_dict(), "config": config})
    return tr


def resuming(tmp_path, *overrides):
    from normbench.resume import checkpoint_to_resume

    cfg = make_cfg("progress=false", *overrides, "probe_every=0")
    return checkpoint_to_resume(tmp_path, cfg, OmegaConf.to_container(cfg, resolve=True, enum_to_str=True), 1437)


def test_a_longer_budget_goes_on_where_the_lr_is_a_function_of_the_step(tmp_path):
    checkpointed(tmp_path, "epochs=2", "schedule=step", "schedule.milestones=[3]", "schedule.warmup_steps=10")
    state = resuming(tmp_path, "epochs=4", "schedule=step", "schedule.milestones=[3]", "schedule.warmup_steps=10")
    assert state["step"] == 44
    state = resuming(tmp_path, "steps=100", "epochs=null", "schedule=step", "schedule.milestones=[3]",
                     "schedule.warmup_steps=10")
    assert state["step"] == 44


def test_a_cosine_run_is_not_extended_and_a_finished_budget_has_nothing_to_do(tmp_path):
    from normbench.errors import NothingToDo, UsageError

    checkpointed(tmp_path, "epochs=2", "schedule=cosine")
    with pytest.raises(UsageError, match=r"^epochs=3 is not allowed with resume=.*: schedule=cosine spreads its "
                                         r"learning rates over the run's planned 44 steps.*allowed: the run's own "
                                         r"budget, or a new run$"):
        resuming(tmp_path, "epochs=3", "schedule=cosine")
    with pytest.raises(NothingToDo, match="has done its 44 steps"):
        resuming(tmp_path, "epochs=2", "schedule=cosine")
    with pytest.raises(UsageError, match=r"steps=30 is not allowed with resume=.*has done 44 steps"):
        resuming(tmp_path, "epochs=null", "steps=30", "schedule=cosine")


@pytest.mark.parametrize("budget", ["steps=50", "epochs=2"])
def test_a_run_stopped_after_its_last_step_but_before_its_evaluation_evaluates_when_resumed(tmp_path, budget):
    """The last evaluation belongs to the run: a stop between the last step and it leaves
    something to do, which resume does (and nothing more)."""
    import signal

    from normbench.checkpoint import save_checkpoint

    tr = trainer_for(budget, "probe_every=0")
    total = tr.total_steps

    def log(step, epoch, metrics):
        if step == total and "train/loss" in metrics:  # the last step's record: stop before the evaluation
            tr.stop.signum = signal.SIGINT

    assert tr.run(log).status == "interrupted" and tr.step == total and tr.evaluated < total
    config = OmegaConf.to_container(tr.cfg, resolve=True, enum_to_str=True)
    save_checkpoint(tmp_path, {**tr.state_dict(), "config": config})
    state = resuming(tmp_path, budget)  # not "nothing to do"
    again = trainer_for(budget, "probe_every=0")
    again.load_state_dict(state)
    outcome, rows = collect(again)
    assert outcome.status == "completed" and again.step == total
    assert [s for s, _, m in rows] == [total] and "val/acc" in rows[0][2]  # only the evaluation
