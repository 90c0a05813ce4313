"""What is measured inside the network: gradients and updates per layer, and what each
norm layer does to the values passing through it.

Gradient norms and update-to-weight ratios are in ``gradients.py``; the loss landscape
along the gradient (``probe_landscape=true``) in ``landscape.py``.

Everything else is measured on a fixed probe batch (the first ``probe_batch_size``
samples of the training split, the same every time) every ``probe_every`` steps and at
step 0, by one forward pass with hooks on the norm and the activation of each norm site
the model declared (sites.py):

- in train mode, as training sees it: BatchNorm uses the probe batch's statistics and
  dropout is on with a fixed seed (the same masks every time). The running statistics
  and the training RNG are put back afterwards, so probes never change a run's numbers.
- at each evaluation, in eval mode (running statistics, dropout off), for the variance
  shift of each BatchNorm layer.

Every tag and histogram, with what it measures, is listed in README.md ("Probes: what the
normalization does inside"). ``<block>`` is the site's name (``block1``, ...,
``stage2.block1.norm1``, ``block3.attn_norm``); ``<where>`` is ``pre_norm`` (entering the
norm layer) or ``post_norm`` (leaving it); for ``norm=none`` the same place, an identity,
is measured, so runs compare. A Transformer's tokens (N, T, C) are measured as N * T
feature vectors.

The per-probe cost is mostly the number of small ops, not the arithmetic (a few hundred
kilobytes of values), so tensors of the same shape (the blocks of an MLP) are stacked and
measured together, and everything is read back from the device once.
"""

from __future__ import annotations

import math
from contextlib import contextmanager
from dataclasses import dataclass

import torch
from torch import nn

from .batchnorm import eval_mode, train_mode_untouched
from .sites import features, layer_parameter, norm_sites, running_stats, scale_and_shift

BINS = 30
HISTOGRAM_VALUES = 2**15  # values a histogram of activations counts at most (a fixed uniform subset beyond)
SATURATED = {nn.Sigmoid: lambda a: (a < 0.01) | (a > 0.99), nn.Tanh: lambda a: a.abs() > 0.99}


@dataclass(frozen=True)
class Histogram:
    """A histogram as TensorBoard stores one: ``len(edges) == len(counts) + 1``, left to
    right, and the moments of the values it counts (non-finite values are left out)."""
    min: float
    max: float
    num: float
    sum: float
    sum_squares: float
    edges: tuple[float, ...]
    counts: tuple[float, ...]


def histograms(x: torch.Tensor, bins: int = BINS) -> torch.Tensor:
    """Histograms of the rows of ``x`` (k, n), all in a few ops on x's device without
    waiting for it: (k, 5 + 2 * bins + 1) rows of [min, max, num, sum, sum_squares, *edges,
    *counts], ``bins`` equal bins from each row's smallest finite value to its largest.
    Non-finite values are not counted anywhere."""
    x = x.detach().float()
    k = x.shape[0]
    lo, hi = x.amin(1), x.amax(1)  # two passes: faster than aminmax(dim=1) on the CPU
    finite = None
    if not bool(torch.cat([lo, hi]).isfinite().all()):  # only once a run has diverged
        finite = x.isfinite()
        lo = torch.where(finite, x, math.inf).amin(1)
        hi = torch.where(finite, x, -math.inf).amax(1)
        nothing = lo > hi  # no finite value in the row
        lo, hi = lo.masked_fill(nothing, 0.0), hi.masked_fill(nothing, 0.0)
    width = (hi - lo).clamp_min(1e-12)
    # bin b of row r counts at r * (bins + 1) + 1 + b; non-finite values at r * (bins + 1), dropped
    slots = torch.arange(1, k * (bins + 1), bins + 1, device=x.device, dtype=x.dtype)[:, None]
    index = ((x - lo[:, None]) * (bins / width)[:, None]).floor_().clamp_(0, bins - 1).add_(slots)
    if finite is not None:
        index = torch.where(finite, index, slots - 1)
        x = torch.where(finite, x, 0.0)
    counts = torch.bincount(index.long().flatten(), minlength=k * (bins + 1)).view(k, bins + 1)[:, 1:].float()
    edges = lo[:, None] + width[:, None] * torch.linspace(0, 1, bins + 1, device=x.device)
    moments = torch.stack([lo, hi, counts.sum(1), x.sum(1), x.square().sum(1)], 1)
    return torch.cat([moments, edges, counts], 1)


def log_histograms(x: torch.Tensor, bins: int = BINS) -> torch.Tensor:
    """Histograms of the rows of ``x`` (k, n) of values >= 0 (variances), binned on a log
    scale, packed as ``histograms`` packs them: a first bin from 0 to the smallest positive
    value holds the zeros (a ReLU unit that never fires has a variance of exactly 0), the
    other ``bins - 1`` are equal on the log scale from the smallest positive value to the
    largest. The moments are of the values themselves. Non-finite values are not counted."""
    x = x.detach().float()
    finite = x.isfinite()
    logs = torch.where(finite & (x > 0), x, math.nan).log()
    packed = histograms(logs, bins - 1)
    edges, counts = packed[:, 5:5 + bins].exp(), packed[:, 5 + bins:]
    zeros = (finite & (x <= 0)).sum(1, keepdim=True).float()
    values = torch.where(finite, x, 0.0)
    lo = torch.where(finite, x, math.inf).amin(1)
    hi = torch.where(finite, x, -math.inf).amax(1)
    nothing = zeros[:, 0] + counts.sum(1) == 0
    lo, hi = lo.masked_fill(nothing, 0.0), hi.masked_fill(nothing, 0.0)
    moments = torch.stack([lo, hi, finite.sum(1).float(), values.sum(1), values.square().sum(1)], 1)
    return torch.cat([moments, torch.zeros_like(zeros), edges, zeros, counts], 1)


def _unpack_histogram(values: list[float], bins: int) -> Histogram:
    return Histogram(*values[:5], edges=tuple(values[5:6 + bins]), counts=tuple(values[6 + bins:]))


def feature_stats(s: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """Per-feature (per-channel) means and unbiased variances of a stack ``s`` of k
    (N, C) or (N, C, H, W) tensors, (k, N, C[, H, W]): two (k, C) tensors."""
    dims = [1, *range(3, s.dim())]
    mean = s.mean(dims, keepdim=True)  # two passes: faster than var_mean's on the CPU, and as exact
    n = s.numel() // (s.shape[0] * s.shape[2])
    var = (s - mean).square_().sum(dims) / (n - 1)
    return mean.flatten(1), var


ACT_STATS = ["mean", "std", "feature_mean_std", "feature_var_mean", "feature_var_std"]


def act_stats(fmean: torch.Tensor, fvar: torch.Tensor, per_feature_count: int) -> torch.Tensor:
    """(k, 5): ``ACT_STATS`` of each of k tensors from their (k, C) per-feature means and
    unbiased variances (every feature has ``per_feature_count`` values): the mean and
    unbiased std of all values, without another pass over them, and the spread of the
    per-feature means and variances."""
    n = per_feature_count
    mean = fmean.mean(1)
    sum_sq_dev = (fvar * (n - 1)).sum(1) + n * (fmean - mean[:, None]).square().sum(1)
    std = (sum_sq_dev / (n * fmean.shape[1] - 1)).sqrt()
    return torch.stack([mean, std, fmean.std(1), fvar.mean(1), fvar.std(1)], 1)


STACKED = 2**16  # tensors of up to this many values are stacked with those of their shape


def _by_shape(tensors: list[torch.Tensor]) -> list[tuple[list[int], torch.Tensor]]:
    """The tensors grouped by shape: (their positions, their stack), so that what is
    computed per tensor is computed once per shape (few small ops: they dominate here). A
    large tensor (a CNN's feature maps) is its own group: copying it into a stack would
    cost more than the ops it saves."""
    groups: dict[tuple, list[int]] = {}
    for i, t in enumerate(tensors):
        groups.setdefault(tuple(t.shape) if t.numel() <= STACKED else (i,), []).append(i)
    return [(idx, tensors[idx[0]][None] if len(idx) == 1 else torch.stack([tensors[i] for i in idx]))
            for idx in groups.values()]


QUIET = 0.01  # a feature whose probe-batch variance is below this share of its layer's median is "quiet"


def quiet_features(var: torch.Tensor) -> torch.Tensor:
    """(k, C) per-feature variances -> (k, C) bool: the features too quiet on the probe
    batch for a ratio to their variance to mean anything (a ReLU unit that hardly fires
    there): variance below QUIET times the median feature variance of their layer."""
    return var < QUIET * var.median(dim=1, keepdim=True).values


def robust(ratios: torch.Tensor, quiet: torch.Tensor) -> torch.Tensor:
    """(k, C) per-feature ratios -> (k,) their median over the features that are not
    quiet (torch's median: the lower middle value for an even count): one feature with a
    near-zero variance cannot dominate it, as it would a mean."""
    return ratios.masked_fill(quiet, float("nan")).nanmedian(dim=1).values


class Probes:
    """Measures the probe batch ``x`` in ``model``; see the module docstring for the tags."""

    def __init__(self, model: nn.Module, x: torch.Tensor, seed: int = 0, bins: int = BINS):
        self.model, self.x, self.bins = model, x, bins
        self._subsets: dict[int, torch.Tensor] = {}  # row length -> the positions histograms count
        self.sites = norm_sites(model)
        # weight normalization's magnitudes g (one per output unit) of each layer before a site
        self.weight_norms = [(site.name, g) for site in self.sites if site.layer is not None
                             and (g := layer_parameter(site.layer, "parametrizations.weight.original0")) is not None]
        self.bn_blocks = running_stats(model)
        dev = x.device
        self._cuda = None if dev.type != "cuda" else dev.index if dev.index is not None else torch.cuda.current_device()
        # the RNG states manual_seed(seed) gives, made once: manual_seed itself seeds every
        # accelerator type lazily, with a Python stack trace each time (~1 ms per call)
        with torch.random.fork_rng(devices=[] if self._cuda is None else [self._cuda]):
            torch.manual_seed(seed)
            self._seeded = (torch.get_rng_state(),
                            None if self._cuda is None else torch.cuda.get_rng_state(self._cuda))

    @contextmanager
    def seeded_rng(self):
        """The RNG as manual_seed(seed) leaves it, and as it was again afterwards."""
        cpu, cuda = torch.get_rng_state(), None if self._cuda is None else torch.cuda.get_rng_state(self._cuda)
        torch.set_rng_state(self._seeded[0])
        if cuda is not None:
            torch.cuda.set_rng_state(self._seeded[1], self._cuda)
        try:
            yield
        finally:
            torch.set_rng_state(cpu)
            if cuda is not None:
                torch.cuda.set_rng_state(cuda, self._cuda)

    def _sample(self, rows: torch.Tensor) -> torch.Tensor:
        """(k, n) values -> at most HISTOGRAM_VALUES of each row, the same fixed random subset
        of positions at every probe (a uniform sample: a strided one would pick the same
        pixel of every map). The MLP's 256 x 128 values are all kept."""
        n = rows.shape[1]
        if n <= HISTOGRAM_VALUES:
            return rows
        if n not in self._subsets:
            g = torch.Generator().manual_seed(n)
            self._subsets[n] = torch.randperm(n, generator=g)[:HISTOGRAM_VALUES].sort().values.to(rows.device)
        return rows[:, self._subsets[n]]

    def _capture(self, modules: dict[str, nn.Module]) -> dict[str, tuple[torch.Tensor, torch.Tensor]]:
        """One forward pass of the probe batch; the input and output of each named module."""
        seen: dict[str, tuple[torch.Tensor, torch.Tensor]] = {}
        handles = [m.register_forward_hook(lambda _m, inp, out, key=key: seen.__setitem__(key, (inp[0], out)))
                   for key, m in modules.items()]
        try:
            self.model(self.x)
        finally:
            for h in handles:
                h.remove()
        return seen

    @torch.no_grad()
    def measure(self) -> dict:
        """{tag: float or Histogram} from one train-mode pass of the probe batch."""
        places = {f"{site.name}.{part}": (m, site.kind) for site in self.sites
                  for part, m in (("norm", site.norm), ("act", site.act)) if m is not None}
        with train_mode_untouched(self.model), self.seeded_rng():  # the same dropout masks at every probe
            captured = self._capture({key: m for key, (m, _) in places.items()})
        seen = {key: (features(a, places[key][1]), features(b, places[key][1])) for key, (a, b) in captured.items()}

        scalars: list[tuple[list[str], torch.Tensor]] = []  # tags, their values flattened
        hists: list[tuple[list[str], torch.Tensor]] = []  # tags, the values of each, one row per tag
        variances: list[tuple[list[str], torch.Tensor]] = []  # the same, binned on a log scale
        entries = [(site.name, where, t) for site in self.sites
                   for where, t in zip(("pre_norm", "post_norm"), seen[f"{site.name}.norm"], strict=True)]
        batch_stats: dict[str, tuple[torch.Tensor, torch.Tensor]] = {}  # block: its pre-norm (mean, var)
        for idx, stack in _by_shape([t for *_, t in entries]):
            keys = [f"act/{entries[i][0]}/{entries[i][1]}" for i in idx]
            fmean, fvar = feature_stats(stack)
            n = stack[0].numel() // stack.shape[2]
            scalars.append(([f"{k}/{stat}" for k in keys for stat in ACT_STATS], act_stats(fmean, fvar, n).flatten()))
            hists.append((keys, self._sample(stack.flatten(1))))
            variances.append(([f"{k}/feature_var" for k in keys], fvar))
            batch_stats.update({entries[i][0]: (fmean[j], fvar[j]) for j, i in enumerate(idx)
                                if entries[i][1] == "pre_norm"})

        acts = [(site.name, site.act, seen[f"{site.name}.act"]) for site in self.sites if site.act is not None]
        relu = [(name, a_in) for name, act, (a_in, _) in acts if isinstance(act, nn.ReLU)]
        for idx, stack in _by_shape([a for _, a in relu]):  # dead: <= 0 for every sample (and position)
            unit_max = stack.amax(dim=[1, *range(3, stack.dim())])
            scalars.append(([f"act/{relu[i][0]}/dead" for i in idx], (unit_max <= 0).float().mean(1)))
        for kind, saturated in SATURATED.items():
            outs = [(name, a_out) for name, act, (_, a_out) in acts if type(act) is kind]
            for idx, stack in _by_shape([a for _, a in outs]):
                fraction = saturated(stack).flatten(1).float().mean(1)
                scalars.append(([f"act/{outs[i][0]}/saturated" for i in idx], fraction))

        params = [(f"affine/{site.name}/{label}", p) for site in self.sites
                  for label, p in zip(("gamma", "beta"), scale_and_shift(site.norm)) if isinstance(p, torch.Tensor)]
        params += [(f"wn/{name}/g", g.flatten()) for name, g in self.weight_norms]
        for idx, stack in _by_shape([p.detach() for _, p in params]):
            keys = [params[i][0] for i in idx]
            scalars.append(([f"{k}_{stat}" for k in keys for stat in ("mean", "std")],
                            torch.stack([stack.mean(1), stack.std(1)], 1).flatten()))
            hists.append((keys, stack))

        if self.bn_blocks:  # the running statistics are back in place: frozen_bn_buffers
            for idx, stack in _by_shape([bn.running_mean for _, bn in self.bn_blocks]):
                names = [self.bn_blocks[i][0] for i in idx]
                eps = torch.tensor([self.bn_blocks[i][1].eps for i in idx], device=stack.device)[:, None]
                running_var = torch.stack([self.bn_blocks[i][1].running_var for i in idx])
                bmean = torch.stack([batch_stats[name][0] for name in names])
                bvar = torch.stack([batch_stats[name][1] for name in names])
                quiet = quiet_features(bvar)
                gap = robust(((stack - bmean).abs() / (bvar + eps).sqrt()), quiet)
                ratio = robust((running_var + eps) / (bvar + eps), quiet)
                tags = [f"bn/{name}/{stat}" for name in names
                        for stat in ("running_mean_gap", "running_var_ratio", "quiet_features")]
                scalars.append((tags, torch.stack([gap, ratio, quiet.sum(1).float()], 1).flatten()))

        out: dict = {}
        if scalars:
            values = torch.cat([v.float() for _, v in scalars]).tolist()
            out.update(zip([t for tags, _ in scalars for t in tags], values, strict=True))
        for entries, binned in ((hists, histograms), (variances, log_histograms)):
            out.update(self._histograms(entries, binned))
        return out

    def _histograms(self, entries: list[tuple[list[str], torch.Tensor]], binned) -> dict:
        """{tag: Histogram} of each row of ``entries``, one ``binned`` call per row length."""
        tags = [t for tags, _ in entries for t in tags]
        values = [row for _, rows in entries for row in rows]
        packed: list = [None] * len(tags)
        for idx, stack in _by_shape(values):
            for i, row in zip(idx, binned(stack, self.bins).tolist(), strict=True):
                packed[i] = row
        out = {}
        for tag, row in zip(tags, packed, strict=True):
            h = _unpack_histogram(row, self.bins)
            if h.num > 0:  # a diverged network may leave nothing finite to count
                out[tag] = h
        return out

    @torch.no_grad()
    def variance_shift(self, suffix: str = "") -> dict[str, float]:
        """{``bn/<block>/variance_shift<suffix>``: ratio}: each BatchNorm's running variance
        over the variance its input has in eval mode on the probe batch (Li et al. 2019),
        per feature, and of those the median over the features that are not quiet there
        (``robust``). Above 1, eval-mode outputs are squeezed compared with what training saw."""
        if not self.bn_blocks:
            return {}
        with eval_mode(self.model):
            seen = self._capture({name: bn for name, bn in self.bn_blocks})
        ratios = []
        for name, bn in self.bn_blocks:
            var = feature_stats(seen[name][0][None])[1]  # (1, C)
            ratios.append(robust((bn.running_var + bn.eps) / (var + bn.eps), quiet_features(var))[0])
        return dict(zip([f"bn/{name}/variance_shift{suffix}" for name, _ in self.bn_blocks],
                        torch.stack(ratios).tolist(), strict=True))
