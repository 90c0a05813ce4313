"""Learning-rate schedules and warm-up: the learning rate of every step against a direct
computation of the formula the README states, the lr the trainer logs, and the schedule's
state surviving a checkpoint."""

import io
import math

import pytest
import torch
from omegaconf import OmegaConf

from conftest import make_cfg
from normbench.budget import Plan
from normbench.schedules import build_scheduler
from test_trainer import collect, trainer_for

LR = 0.1
PLAN = Plan(steps_per_epoch=10, total_steps=60, batch_size=8, train_samples=80)


def schedule(name="constant", **keys):
    base = {"name": name, "warmup_steps": 0, "warmup_epochs": None, "warmup_start_factor": 0.01}
    return OmegaConf.create({**base, **keys})


def lrs(s, plan=PLAN, lr=LR, start=0, state=None):
    """The learning rate each optimizer step uses, from ``start`` (a loaded ``state``) to the end."""
    p = torch.nn.Parameter(torch.zeros(1))
    opt = torch.optim.SGD([p], lr=lr)
    sch = build_scheduler(opt, s, plan)
    if state is not None:
        opt.load_state_dict(state[0])
        sch.load_state_dict(state[1])
    used = []
    for _ in range(start, plan.total_steps):
        used.append(opt.param_groups[0]["lr"])
        opt.step()
        if sch is not None:
            sch.step()
    return used, opt, sch


def warm(step, length, factor=0.01, lr=LR):
    return lr * (factor + (1 - factor) * step / length)


def close(a, b):
    return len(a) == len(b) and all(math.isclose(x, y, rel_tol=1e-9, abs_tol=1e-15) for x, y in zip(a, b))


def test_constant_without_warm_up_builds_no_scheduler_and_keeps_the_rate():
    used, _, sch = lrs(schedule())
    assert sch is None and used == [LR] * 60


def test_a_warm_up_rises_linearly_from_its_start_factor_then_holds():
    used, _, _ = lrs(schedule(warmup_steps=8, warmup_start_factor=0.1))
    assert close(used, [warm(s, 8, 0.1) if s < 8 else LR for s in range(60)])


def test_step_divides_at_milestones_counted_in_epochs_from_the_start_whatever_the_warm_up():
    used, _, _ = lrs(schedule("step", milestones=[2, 3.5], gamma=0.1, warmup_epochs=0.5))
    # warm-up over half an epoch (5 steps); milestones at epochs 2 and 3.5 = steps 20 and 35
    expected = [warm(s, 5) if s < 5 else LR if s < 20 else LR * 0.1 if s < 35 else LR * 0.01 for s in range(60)]
    assert close(used, expected)


def test_warm_up_then_cosine_reaches_min_lr_at_the_last_step():
    used, _, _ = lrs(schedule("cosine", min_lr=0.001, warmup_steps=10))
    # after the warm-up: half a cosine over the remaining 50 steps, index 10 .. 59
    cos = [0.001 + 0.5 * (LR - 0.001) * (1 + math.cos(math.pi * (s - 10) / 49)) for s in range(10, 60)]
    assert close(used, [warm(s, 10) for s in range(10)] + cos)
    assert used[10] == pytest.approx(LR) and used[-1] == pytest.approx(0.001)
    assert max(used) == pytest.approx(LR)


def test_warm_up_in_epochs_covers_the_same_data_at_every_batch_size():
    for batch, per_epoch in ((8, 40), (32, 10)):
        used, _, _ = lrs(schedule(warmup_epochs=0.5), Plan(per_epoch, 4 * per_epoch, batch, 320))
        ramp = per_epoch // 2  # half an epoch of this batch size
        assert close(used, [warm(s, ramp) if s < ramp else LR for s in range(4 * per_epoch)])


@pytest.mark.parametrize("s", [schedule("cosine", min_lr=0.0, warmup_steps=15),
                               schedule("step", milestones=[2, 4], gamma=0.5, warmup_epochs=1.0),
                               schedule(warmup_steps=25)], ids=["cosine", "step", "constant"])
def test_the_schedule_state_survives_a_checkpoint_mid_warm_up(s):
    whole, _, _ = lrs(s)
    p = torch.nn.Parameter(torch.zeros(1))
    opt = torch.optim.SGD([p], lr=LR)
    sch = build_scheduler(opt, s, PLAN)
    for _ in range(7):  # inside every warm-up above
        opt.step()
        sch.step()
    buffer = io.BytesIO()
    torch.save({"optimizer": opt.state_dict(), "schedule": sch.state_dict()}, buffer)
    buffer.seek(0)
    saved = torch.load(buffer, weights_only=True)  # as a checkpoint is read
    rest, _, _ = lrs(s, start=7, state=(saved["optimizer"], saved["schedule"]))
    assert rest == whole[7:]


def test_the_logged_lr_is_the_rate_each_step_used():
    tr = trainer_for("epochs=2", "log_every=1", "schedule=cosine", "schedule.warmup_steps=10", "schedule.min_lr=0.005",
                     "probe_every=0")
    _, rows = collect(tr)
    logged = [m["lr"] for s, _, m in rows if "lr" in m]
    expected, _, _ = lrs(make_cfg("schedule=cosine", "schedule.warmup_steps=10", "schedule.min_lr=0.005").schedule,
                         tr.plan, lr=0.05)
    assert len(logged) == tr.total_steps == 44 and close(logged, expected)
    assert logged[-1] == pytest.approx(0.005)
