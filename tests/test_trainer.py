"""The training loop: it learns, logs the tags it promises, computes gradient norms
right, reports divergence, and reproduces itself exactly on CPU."""

import math

import pytest
import torch

from conftest import make_cfg
from normbench.data import load_data
from normbench.models import build_model
from normbench.batchnorm import evaluate
from normbench.trainer import Trainer


def trainer_for(*overrides):
    cfg = make_cfg("progress=false", *overrides)
    data = load_data(cfg.data)
    torch.manual_seed(cfg.seed)
    return Trainer(build_model(cfg, data.input_shape, data.num_classes), data, cfg)


def collect(trainer):
    rows = []
    outcome = trainer.run(lambda step, epoch, m: rows.append((step, epoch, dict(m))))
    return outcome, rows


def test_grad_norms_match_a_plain_per_parameter_computation():
    tr = trainer_for("model.depth=2")
    x, y = tr.data.train.x[:64], tr.data.train.y[:64]
    torch.nn.functional.cross_entropy(tr.model(x), y).backward()
    got = tr.grad_norms().tolist()
    expected = []
    for module in tr.model.modules():
        own = [p.grad for p in module.parameters(recurse=False)]
        if own:
            expected.append(math.sqrt(sum(float(g.pow(2).sum()) for g in own)))
    total = math.sqrt(sum(float(p.grad.pow(2).sum()) for p in tr.model.parameters()))
    assert tr.grad_norms.tags == ["grad_norm/block1.linear", "grad_norm/block1.norm", "grad_norm/block2.linear",
                                  "grad_norm/block2.norm", "grad_norm/head", "grad_norm/total"]
    assert all(math.isclose(a, b, rel_tol=1e-4) for a, b in zip(got, expected + [total], strict=True))


def test_the_default_config_learns_digits():
    tr = trainer_for("epochs=5")
    before = evaluate(tr.model, tr.data.val, 1024)[1]
    outcome, rows = collect(tr)
    assert outcome.status == "completed" and outcome.epochs_completed == 5
    assert outcome.steps == 5 * (1437 // 64) == tr.step
    assert before < 0.3 and outcome.final["val/acc"] > 0.93
    assert outcome.steps_to_target is not None and outcome.steps_to_target % 22 == 0
    assert outcome.best_val_acc >= outcome.final["val/acc"]
    train_rows = [m for _, _, m in rows if "train/loss" in m]
    assert train_rows[-1]["train/loss"] < train_rows[0]["train/loss"] / 3
    assert {"train/loss", "train/acc", "lr", "grad_norm/total", "grad_norm/head", "perf/steps_per_s",
            "perf/samples_per_s"} <= set(train_rows[0])
    assert [s for s, _, m in rows if "val/acc" in m] == [22 * e for e in range(1, 6)]
    assert all(s % 10 == 0 for s, _, m in rows if "train/loss" in m)


def test_same_seed_same_numbers_other_seed_other_numbers():
    def values(seed):
        _, rows = collect(trainer_for("epochs=2", "dropout=0.2", f"seed={seed}"))
        return [(s, k, v) for s, _, m in rows for k, v in m.items() if not k.startswith("perf/")]

    a, b, c = values(0), values(0), values(1)
    assert a == b
    assert a != c


def test_a_diverging_run_stops_with_its_status_and_step():
    tr = trainer_for("norm=none", "lr=1e4", "epochs=5", "log_every=1")
    outcome, rows = collect(tr)
    assert outcome.status == "diverged"
    assert outcome.diverged_at_step == tr.step < tr.total_steps
    assert not math.isfinite(rows[-1][2]["train/loss"]) or not math.isfinite(rows[-1][2]["grad_norm/total"])


def test_the_last_incomplete_batch_is_dropped_so_bn_never_sees_one_sample():
    tr = trainer_for("batch_size=479")  # 1437 = 3 * 479: exact; 1437 // 478 = 3 with 3 left over
    assert tr.steps_per_epoch == 3
    tr = trainer_for("batch_size=718", "epochs=1")  # leaves 1 sample over
    outcome, _ = collect(tr)
    assert tr.steps_per_epoch == 2 and outcome.status == "completed"


def test_the_steps_after_the_last_record_are_logged_at_the_end():
    tr = trainer_for("epochs=1", "log_every=1000")
    outcome, rows = collect(tr)
    train_rows = [(s, m) for s, _, m in rows if "train/loss" in m]
    assert [s for s, _ in train_rows] == [22]
    assert outcome.final["train/loss"] == train_rows[0][1]["train/loss"]
    assert math.isfinite(outcome.final["train/loss"])


def test_evaluate_uses_eval_mode_and_restores_the_mode():
    tr = trainer_for()
    tr.model.train()
    bn = tr.model.block1.norm
    before = bn.running_mean.clone()
    evaluate(tr.model, tr.data.val, 100)
    assert tr.model.training and torch.equal(bn.running_mean, before)


def test_train_mode_evaluation_counts_every_sample_once_with_full_batches():
    # 360 validation samples, batches of 64: the last batch (40 samples) is topped up to 64
    tr = trainer_for("batch_size=64")
    n, sizes = len(tr.data.val), []
    hook = tr.model.block1.norm.register_forward_hook(lambda m, i, o: sizes.append(len(i[0])))
    evaluate(tr.model, tr.data.val, 64, bn_mode="train")
    hook.remove()
    # the 5 full batches in one pass (each normalised over its own 64), then the topped-up last
    assert n % 64 and sizes == [64, 64]
    # a per-sample norm computes the same function in both modes: the gap is exactly 0
    ln = trainer_for("norm=ln", "batch_size=64")
    eval_loss, eval_acc = evaluate(ln.model, ln.data.val, 64)
    train_loss, train_acc = evaluate(ln.model, ln.data.val, 64, bn_mode="train")
    assert train_acc == eval_acc and math.isclose(train_loss, eval_loss, rel_tol=1e-5)


@pytest.mark.parametrize("overrides", [
    ["batch_size=8"], ["batch_size=7", "dropout=0.3"], ["model=cnn", "model.channels=[8,16]", "batch_size=8"],
    ["model=cnn", "model.channels=[8,16]", "batch_size=16", "channels_last=true"],
    ["model=resnet", "model.depth=8", "batch_size=16"],
    ["model=vit", "model.depth=2", "model.dim=32", "model.patch=2", "batch_size=16"],
    ["norm=bn_ghost", "batch_size=16"], ["norm=brn", "batch_size=16"]], ids=lambda o: " ".join(o))
def test_train_mode_evaluation_in_one_pass_gives_the_numbers_of_one_batch_at_a_time(monkeypatch, overrides):
    """torch's BatchNorm: the full batches in one pass (vmap), the numbers of evaluating
    them one at a time to float32 rounding; ghost batches and Batch Renormalization, whose
    train mode computes more than the batch's statistics, one batch at a time."""
    import normbench.batchnorm as batchnorm

    tr = trainer_for(*overrides)
    for _ in range(5):  # running statistics away from their initial values
        tr.model(tr.data.train.x[:tr.cfg.batch_size])
    running = [m.running_mean.clone() for m in batchnorm.batchnorm_layers(tr.model)]
    custom = overrides[0] in ("norm=bn_ghost", "norm=brn")
    assert batchnorm._batchwise(tr.model) is not custom
    one_pass = evaluate(tr.model, tr.data.val, tr.cfg.batch_size, bn_mode="train")
    # at most per_pass samples a pass (what memory one may take): 360 samples in passes of 3 batches
    B, passes, batchwise_logits = tr.cfg.batch_size, [], batchnorm._batchwise_logits
    monkeypatch.setattr(batchnorm, "_batchwise_logits", lambda m, x, b: passes.append(len(x)) or batchwise_logits(m, x, b))
    in_passes = evaluate(tr.model, tr.data.val, B, bn_mode="train", per_pass=3 * B)
    assert in_passes[1] == one_pass[1] and math.isclose(in_passes[0], one_pass[0], rel_tol=1e-6)
    if not custom:
        assert max(passes) == 3 * B and sum(passes) == len(tr.data.val) // B * B
    monkeypatch.setattr(batchnorm, "_batchwise", lambda model: False)
    one_at_a_time = evaluate(tr.model, tr.data.val, tr.cfg.batch_size, bn_mode="train")
    assert one_pass[1] == one_at_a_time[1] and math.isclose(one_pass[0], one_at_a_time[0], rel_tol=1e-6)
    assert all(torch.equal(m.running_mean, r) and m.track_running_stats
               for m, r in zip(batchnorm.batchnorm_layers(tr.model), running))
    # a batch statistic differs from the running one: the train-mode numbers are not eval mode's
    assert one_pass != evaluate(tr.model, tr.data.val, tr.cfg.batch_size)


def test_train_mode_is_evaluated_only_where_a_norm_uses_batch_statistics(monkeypatch):
    import normbench.trainer as trainer_module

    modes = []

    def counting(model, split, batch_size, bn_mode="eval", **kwargs):
        modes.append(bn_mode)
        return evaluate(model, split, batch_size, bn_mode, **kwargs)

    monkeypatch.setattr(trainer_module, "evaluate", counting)
    for norm, expected in [("gn", ["eval"]), ("ln", ["eval"]), ("none", ["eval"]), ("bn", ["eval", "train"])]:
        modes.clear()
        _, rows = collect(trainer_for("epochs=1", f"norm={norm}", "probe_every=0"))
        (val,) = [m for _, _, m in rows if "val/acc" in m]
        assert modes == expected, norm
        if norm != "bn":  # one function in both modes: the same numbers, no gap
            assert (val["val/loss_train_mode"], val["val/acc_train_mode"]) == (val["val/loss"], val["val/acc"])
            assert val["val/train_eval_gap"] == 0
