"""What the probes measure inside the network, checked on known cases and against direct
computations, and that measuring never changes a run's numbers."""

import contextlib
import math

import numpy as np
import pytest
import torch
import torch.nn.functional as F

from normbench.batchnorm import bn_in_train_mode, recompute_bn_stats
from normbench.probes import Histogram, _unpack_histogram, histograms, log_histograms
from normbench.batchnorm import evaluate
from test_trainer import collect, trainer_for


def probe_rows(rows):
    """[(step, {tag: value})] of the probe records (those with activation statistics)."""
    return [(s, m) for s, _, m in rows if "act/block1/pre_norm/mean" in m]


def test_probe_statistics_equal_a_direct_computation():
    tr = trainer_for("model.activation=relu", "model.depth=2", "probe_batch_size=200")
    model, x = tr.model, tr.data.train.x[:200]
    got = tr.probes.measure()
    with torch.no_grad():
        pre = model.block1.linear(x.flatten(1))
        post = F.batch_norm(pre, None, None, training=True, eps=model.block1.norm.eps)
    for where, t in (("pre_norm", pre), ("post_norm", post)):
        var = t.var(0)
        expected = {"mean": t.mean(), "std": t.std(), "feature_mean_std": t.mean(0).std(),
                    "feature_var_mean": var.mean(), "feature_var_std": var.std()}
        for stat, value in expected.items():
            assert got[f"act/block1/{where}/{stat}"] == pytest.approx(float(value), rel=1e-4, abs=1e-6), (where, stat)
        h = got[f"act/block1/{where}"]
        assert isinstance(h, Histogram) and len(h.counts) == 30 and len(h.edges) == 31
        assert h.num == sum(h.counts) == t.numel() == 200 * 128
        assert (h.min, h.max) == pytest.approx((float(t.min()), float(t.max())))
        assert h.sum == pytest.approx(float(t.sum()), abs=1e-2)
        assert h.sum_squares == pytest.approx(float(t.square().sum()))
        counts, _ = np.histogram(t.numpy(), bins=30, range=(h.min, h.max))
        assert np.abs(counts - np.array(h.counts)).sum() <= 2  # float32 rounding at bin edges
        assert got[f"act/block1/{where}/feature_var"].num == 128
    assert got["act/block1/dead"] == float((post.amax(0) <= 0).float().mean())  # placement=pre: post_norm enters ReLU
    assert got["affine/block1/gamma_mean"] == 1.0 and got["affine/block1/beta_std"] == 0.0
    bn = model.block1.norm
    var = pre.var(0)
    kept = var >= 0.01 * var.median()  # features that are not quiet on the probe batch
    ratio = ((1 + bn.eps) / (var + bn.eps))[kept]
    gap = (pre.mean(0).abs() / (var + bn.eps).sqrt())[kept]
    assert got["bn/block1/running_var_ratio"] == pytest.approx(float(ratio.median()), rel=1e-4)
    assert got["bn/block1/running_mean_gap"] == pytest.approx(float(gap.median()), rel=1e-4)
    assert got["bn/block1/quiet_features"] == float((~kept).sum())


def test_dead_relu_units_are_counted():
    tr = trainer_for("model.depth=2", "norm=none", "placement=post")
    with torch.no_grad():
        tr.model.block1.linear.bias[:64] = -1e3  # half the units never fire
        a = tr.model.block1.linear(tr.probes.x.flatten(1))
    got = tr.probes.measure()
    assert got["act/block1/dead"] == float((a.amax(0) <= 0).float().mean()) >= 0.5


def test_saturated_sigmoid_units_are_counted():
    tr = trainer_for("model.activation=sigmoid", "model.depth=2", "norm=none")
    with torch.no_grad():
        tr.model.block1.linear.weight.mul_(30)
        a = torch.sigmoid(tr.model.block1.linear(tr.probes.x.flatten(1)))
    got = tr.probes.measure()
    expected = float(((a < 0.01) | (a > 0.99)).float().mean())
    assert expected > 0.3 and got["act/block1/saturated"] == pytest.approx(expected)
    assert "act/block1/dead" not in got and "bn/block1/running_var_ratio" not in got


def test_histograms_leave_out_values_that_are_not_finite():
    rows = torch.tensor([[1.0, math.nan, math.inf, 2.0, 3.0, -math.inf], [math.nan] * 6])
    packed = histograms(rows, bins=4)
    lo, hi, num, total, squares = packed[0, :5].tolist()
    assert (lo, hi, num, total, squares) == (1.0, 3.0, 3.0, 6.0, 14.0)
    assert packed[0, 5:10].tolist() == [1.0, 1.5, 2.0, 2.5, 3.0] and packed[0, 10:].tolist() == [1, 0, 1, 1]
    assert packed[1, 2] == 0 and packed[1, 10:].sum() == 0


def test_batchnorm_output_has_zero_mean_and_unit_std_in_train_mode_throughout():
    tr = trainer_for("norm.affine=false", "epochs=3", "probe_every=10")
    _, rows = collect(tr)
    probes = probe_rows(rows)
    assert [s for s, _ in probes] == [0, 10, 20, 30, 40, 50, 60, 66]  # and the last step
    for _, m in probes:
        for b in ("block1", "block2", "block3"):
            assert abs(m[f"act/{b}/post_norm/mean"]) < 1e-3 and m[f"act/{b}/post_norm/feature_mean_std"] < 1e-3
            assert m[f"act/{b}/post_norm/std"] == pytest.approx(1.0, abs=0.01)
            assert m[f"act/{b}/post_norm/feature_var_mean"] == pytest.approx(1.0, abs=0.01)
    assert probes[0][1]["act/block1/pre_norm/std"] < 0.8  # what went in was not standardised


def test_a_deep_sigmoid_mlp_without_norm_has_vanishing_first_layer_gradients():
    def first_over_last(norm):
        _, rows = collect(trainer_for(f"norm={norm}", "model.activation=sigmoid", "model.depth=6", "epochs=1"))
        g = next(m for _, _, m in rows if "grad_norm/total" in m)
        return g["grad_norm/block1.linear"] / g["grad_norm/block6.linear"]

    assert first_over_last("none") < 1e-3
    assert first_over_last("bn") > 0.1  # BatchNorm keeps them flowing


def test_none_and_bn_runs_have_the_same_tags_where_both_have_the_thing_measured():
    def tags(norm):
        _, rows = collect(trainer_for(f"norm={norm}", "epochs=1", "probe_every=10"))
        return {t for _, _, m in rows for t in m}

    bn, none = tags("bn"), tags("none")
    assert none < bn
    # only what a model without norm layers does not have: their parameters and BatchNorm's statistics
    assert all(t.startswith(("affine/", "bn/")) or t.endswith(".norm") for t in bn - none)
    assert {t for t in bn if t.startswith("act/")} == {t for t in none if t.startswith("act/")}
    assert {"act/block2/pre_norm/feature_var", "act/block2/post_norm", "act/block3/dead", "val/acc_train_mode",
            "val/train_eval_gap", "update_ratio/block1.linear"} <= none


def test_probes_do_not_change_what_training_computes():
    def values(probe_every):
        _, rows = collect(trainer_for("dropout=0.3", "epochs=3", f"probe_every={probe_every}"))
        return [(s, k, v) for s, _, m in rows for k, v in m.items() if k.startswith(("train/", "val/", "grad_norm/"))]

    assert values(7) == values(0)


@pytest.mark.parametrize("overrides, steps", [(["model=cnn", "epochs=2"], 44), (["epochs=5"], 110),
                                              (["epochs=1", "batch_size=256"], 5)])
def test_every_run_is_probed_at_the_start_the_end_and_enough_points_between(overrides, steps):
    _, rows = collect(trainer_for(*overrides))
    probed = [s for s, _ in probe_rows(rows)]
    assert probed[0] == 0 and probed[-1] == steps and probed == sorted(set(probed))
    assert len(probed) - 2 >= min(8, steps - 1)  # a curve, however short the run
    updates = [s for s, _, m in rows if "update_ratio/head" in m]
    assert updates == probed[1:]


def test_variance_shift_and_running_ratios_are_robust_to_quiet_features():
    """BN after ReLU: units that hardly fire on the probe batch used to make the mean of
    per-feature ratios explode (634 at step 22); the median over the other features does not."""
    _, rows = collect(trainer_for("placement=post", "epochs=5"))
    shifts = [v for _, _, m in rows for k, v in m.items() if k.endswith("/variance_shift")]  # every epoch
    # once the running averages have caught up (at step 0 they are the initial 1s, truly far off)
    ratios = [v for s, _, m in rows for k, v in m.items() if k.endswith("/running_var_ratio") and s >= 55]
    assert len(shifts) == 15 and len(ratios) >= 15 and all(0.8 <= v <= 1.25 for v in shifts + ratios), (shifts, ratios)
    assert any(m.get("bn/block1/quiet_features", 0) > 0 for _, _, m in rows)  # counted, not averaged in
    outcome, _ = collect(trainer_for("placement=post", "epochs=5", "dropout=0.5"))
    assert all(outcome.final[f"bn/{b}/variance_shift"] > 1.1 for b in ("block2", "block3"))  # the shift stays


def test_update_ratios_are_the_step_over_the_weights():
    tr = trainer_for("model.depth=1")
    before = {n: p.detach().clone() for n, p in tr.model.named_parameters()}
    F.cross_entropy(tr.model(tr.data.train.x[:64]), tr.data.train.y[:64]).backward()
    tr.update_ratios.snapshot()
    tr.optimizer.step()
    got = dict(zip(tr.update_ratios.tags, tr.update_ratios().tolist(), strict=True))
    p = dict(tr.model.named_parameters())
    w = p["block1.linear.weight"].detach()
    expected = (w - before["block1.linear.weight"]).norm() / w.norm()
    assert got["update_ratio/block1.linear"] == pytest.approx(float(expected), rel=1e-4)
    assert set(got) == {"update_ratio/block1.linear", "update_ratio/block1.norm", "update_ratio/head"}


def test_dropout_before_batchnorm_shifts_its_variance_and_precise_bn_removes_the_shift():
    def final(*overrides):
        outcome, _ = collect(trainer_for(*overrides))
        return outcome.final

    with_dropout = final("dropout=0.5")
    assert 0.9 < with_dropout["bn/block1/variance_shift"] < 1.1  # block1's input never passed a dropout
    for b in ("block2", "block3"):
        assert 1.15 < with_dropout[f"bn/{b}/variance_shift"] < 1.5
    without = final("dropout=0")
    assert all(0.95 < without[f"bn/{b}/variance_shift"] < 1.1 for b in ("block1", "block2", "block3"))

    precise = final("dropout=0.5", "norm.precise_bn=true")
    assert all(0.93 < precise[f"bn/{b}/variance_shift_precise"] < 1.07 for b in ("block1", "block2", "block3"))
    assert precise["bn/block3/variance_shift"] > 1.15  # measured before the recomputation, as in training
    assert {"val/acc_running_stats", "val/loss_running_stats"} <= set(precise)
    assert "val/acc_running_stats" not in with_dropout


def test_batchnorm_at_batch_size_2_differs_in_train_and_eval_mode_and_groupnorm_does_not():
    def gap(*overrides):
        outcome, _ = collect(trainer_for("batch_size=2", "lr=0.01", "epochs=1", *overrides))
        f = outcome.final
        assert f["val/train_eval_gap"] == f["val/acc_train_mode"] - f["val/acc"]
        return f["val/train_eval_gap"]

    assert gap("norm=bn") < -0.05  # batch statistics of 2 samples: worse than the running ones
    assert gap("norm=gn", "norm.groups=8") == 0.0


def test_train_mode_evaluation_leaves_running_statistics_and_modes_alone():
    tr = trainer_for("dropout=0.5")
    bn = tr.model.block2.norm
    bn.running_mean.fill_(3.0)
    tr.model.train()
    tr.model.block2.drop.eval()
    loss, acc = evaluate(tr.model, tr.data.val, 60, bn_mode="train")
    assert torch.all(bn.running_mean == 3.0) and int(bn.num_batches_tracked) == 0
    assert tr.model.training and not tr.model.block2.drop.training and tr.model.block1.drop.training
    with bn_in_train_mode(tr.model):  # batch statistics, dropout off
        x = tr.data.val.x[:60]
        assert torch.equal(tr.model(x), tr.model(x))
    assert (loss, acc) != evaluate(tr.model, tr.data.val, 60)


def test_precise_bn_sets_population_statistics_and_keeps_the_rest():
    tr = trainer_for("dropout=0.5", "model.depth=1")
    x = tr.data.train.x[:600]
    bn = tr.model.block1.norm
    bn.num_batches_tracked.fill_(17)
    tr.model.train()
    used = recompute_bn_stats(tr.model, x, batch_size=200, max_batches=50)
    assert used == 3 and bn.momentum == 0.1 and int(bn.num_batches_tracked) == 17 and tr.model.training
    with torch.no_grad():
        h = tr.model.block1.linear(x.flatten(1)).view(3, 200, -1)
    assert torch.allclose(bn.running_mean, h.mean(1).mean(0), atol=1e-5)
    assert torch.allclose(bn.running_var, h.var(1).mean(0), rtol=1e-4)
    assert recompute_bn_stats(tr.model, x, batch_size=200, max_batches=2) == 2


def test_the_probe_batch_is_fixed_and_its_dropout_masks_too():
    tr = trainer_for("dropout=0.5", "probe_batch_size=100")
    assert torch.equal(tr.probes.x, tr.data.train.x[:100])
    rng = torch.get_rng_state()
    a, b = tr.probes.measure(), tr.probes.measure()
    assert torch.equal(torch.get_rng_state(), rng)
    assert a == b and math.isfinite(a["act/block2/pre_norm/std"])


def test_the_landscape_probe_measures_along_the_gradient_and_changes_nothing():
    def run(*overrides):
        return collect(trainer_for("dropout=0.3", "epochs=3", "probe_every=20", *overrides))

    off, rows_off = run()
    on, rows_on = run("probe_landscape=true")
    strip = [(s, k, v) for s, _, m in rows_on for k, v in m.items() if not k.startswith(("landscape/", "perf/"))]
    assert strip == [(s, k, v) for s, _, m in rows_off for k, v in m.items() if not k.startswith("perf/")]
    landscape = [m for _, _, m in rows_on if "landscape/beta" in m]
    assert len(landscape) == len(probe_rows(rows_on)) == 5  # steps 0, 20, 40, 60 and 66
    for m in landscape:
        assert m["landscape/loss_range"] >= 0 and m["landscape/grad_change"] > 0 and m["landscape/beta"] > 0
    assert on.landscape_probes == 5 and on.landscape["landscape/beta"] == pytest.approx(
        sum(m["landscape/beta"] for m in landscape))


def test_the_landscape_probe_is_its_definition():
    """beta over a quadratic's gradient: for L = 0.5 * a * w^2 the gradient changes by a per
    unit moved, so beta is a (a direct check of the arithmetic on a one-weight model)."""
    from normbench.landscape import STEPS, Landscape

    model = torch.nn.Linear(1, 2, bias=False)
    with torch.no_grad():
        model.weight.copy_(torch.tensor([[0.5], [-0.5]]))
    x, y = torch.tensor([[1.0], [2.0]]), torch.tensor([0, 1])
    before = model.weight.detach().clone()
    got = Landscape(model, x, y, lr=lambda: 0.1, seeded_rng=contextlib.nullcontext).measure()
    assert torch.equal(model.weight, before) and model.weight.grad is None  # nothing changed
    losses, changes, betas = [], [], []
    w = before.clone().requires_grad_()
    loss0 = F.cross_entropy(x @ w.T, y)
    (g0,) = torch.autograd.grad(loss0, w)
    losses.append(float(loss0.detach()))
    for f in STEPS:
        w1 = (before - f * 0.1 * g0).requires_grad_()
        loss = F.cross_entropy(x @ w1.T, y)
        (g,) = torch.autograd.grad(loss, w1)
        losses.append(float(loss.detach()))
        changes.append(float((g - g0).norm()))
        betas.append(changes[-1] / (f * 0.1 * float(g0.norm())))
    assert got["landscape/loss_range"] == pytest.approx(max(losses) - min(losses), rel=1e-5)
    assert got["landscape/grad_change"] == pytest.approx(max(changes), rel=1e-5)
    assert got["landscape/beta"] == pytest.approx(max(betas), rel=1e-5)


def test_weight_norm_probes_record_the_magnitudes_g():
    tr = trainer_for("norm=wn", "model.depth=2")
    got = tr.probes.measure()
    g = tr.model.block1.linear.parametrizations.weight.original0.detach().flatten()
    assert got["wn/block1/g_mean"] == pytest.approx(float(g.mean())) and got["wn/block2/g_std"] > 0
    assert isinstance(got["wn/block1/g"], Histogram) and got["wn/block1/g"].num == 128


def test_per_feature_variances_are_binned_on_a_log_scale_with_the_zeros_apart():
    var = torch.tensor([[0.0, 0.0, 1e-4, 1e-3, 0.01, 0.1, 1.0, 10.0, math.nan],
                        [2.0] * 9])
    h = [_unpack_histogram(row, 5) for row in log_histograms(var, bins=5).tolist()]
    zeros_first = h[0]
    assert zeros_first.edges[0] == 0 and zeros_first.counts[0] == 2  # a ReLU unit that never fires
    inner = np.array(zeros_first.edges[1:])
    assert inner[0] == pytest.approx(1e-4) and inner[-1] == pytest.approx(10.0)
    assert np.allclose(inner[1:] / inner[:-1], 10 ** 1.25, rtol=1e-4)  # equal on the log scale
    expected, _ = np.histogram(np.log([1e-4, 1e-3, 0.01, 0.1, 1.0, 10.0]), bins=np.log(inner))
    assert zeros_first.counts[1:] == tuple(expected) == (2, 1, 1, 2)
    assert (zeros_first.min, zeros_first.max, zeros_first.num) == (0.0, pytest.approx(10.0), 8.0)  # the values'
    assert zeros_first.sum == pytest.approx(11.1111, rel=1e-4)
    assert h[1].num == sum(h[1].counts) == 9 and h[1].counts[0] == 0  # no zeros; one value: all in one bin


def test_the_probes_record_per_feature_variances_binned_on_a_log_scale():
    tr = trainer_for("model.depth=2", "norm=none", "placement=post")
    with torch.no_grad():
        tr.model.block1.linear.bias[:64] = -1e3  # half the units never fire: variance 0 after the ReLU
    got = tr.probes.measure()
    h = got["act/block1/pre_norm/feature_var"]  # placement=post: the norm's input is the ReLU's output
    assert h.edges[0] == 0 and h.counts[0] >= 64 and h.num == 128
    inner = np.array(h.edges[1:])
    assert np.allclose(inner[1:] / inner[:-1], inner[1] / inner[0], rtol=1e-3)
