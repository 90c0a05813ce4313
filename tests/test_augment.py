"""Augmentation on the device: every augmented image is a crop of the black-padded image
(mirrored or not), drawn from the run's own seeded generator, the same for the same seed,
different for another, continued exactly from a checkpoint; and only training batches
are augmented."""

import io

import pytest
import torch
from omegaconf import OmegaConf

from normbench.augment import CropFlip, build_augment
from normbench.data import load_data
from test_trainer import collect, trainer_for

BLANK = torch.tensor([-1.5, 0.25, 2.0])


def batch(n=16, seed=0):
    return torch.randn((n, 3, 6, 5), generator=torch.Generator().manual_seed(seed))


def windows(image: torch.Tensor, pad: int, blank: torch.Tensor) -> list[tuple[int, int, bool, torch.Tensor]]:
    """Every crop of ``image`` padded with ``blank``, plain and mirrored: (dy, dx, mirrored, crop)."""
    c, h, w = image.shape
    padded = blank.view(c, 1, 1).expand(c, h + 2 * pad, w + 2 * pad).clone()
    padded[:, pad:pad + h, pad:pad + w] = image
    out = []
    for dy in range(2 * pad + 1):
        for dx in range(2 * pad + 1):
            crop = padded[:, dy:dy + h, dx:dx + w]
            out += [(dy, dx, False, crop), (dy, dx, True, crop.flip(-1))]
    return out


def test_every_augmented_image_is_a_padded_crop_and_both_flips_and_all_offsets_occur():
    x = batch(200)
    aug = CropFlip(pad=2, flip=True, blank=BLANK, seed=0, device="cpu")
    y = aug(x)
    assert y.shape == x.shape and y.dtype == x.dtype
    seen = set()
    for image, out in zip(x, y):
        found = [(dy, dx, m) for dy, dx, m, crop in windows(image, 2, BLANK) if torch.equal(crop, out)]
        assert found, "an output that is no crop of its padded input"
        seen.add(found[0])
    assert {m for *_, m in seen} == {False, True} and len({(dy, dx) for dy, dx, _ in seen}) == 25


def test_the_padding_is_a_black_pixel_after_standardization():
    cfg = OmegaConf.create({"name": "digits", "standardize": True, "val_fraction": 0.2, "split_seed": 0,
                            "augment": "crop_flip", "augment_pad": 1, "augment_flip": False})
    data = load_data(cfg)
    raw = load_data(OmegaConf.merge(cfg, {"standardize": False}))
    mean, std = raw.train.x.mean(), raw.train.x.std()
    assert data.blank.shape == (1,) and torch.allclose(data.blank, -mean / std, atol=1e-5)


def test_without_flips_no_image_is_mirrored():
    x = batch(100)
    y = CropFlip(pad=1, flip=False, blank=BLANK, seed=3, device="cpu")(x)
    for image, out in zip(x, y):
        assert any(torch.equal(crop, out) for _, _, m, crop in windows(image, 1, BLANK) if not m)


def test_the_same_seed_gives_the_same_batches_another_seed_others():
    x = batch()
    a, b, c = (CropFlip(4, True, BLANK, seed, "cpu") for seed in (0, 0, 1))
    first = [a(x) for _ in range(3)]
    assert all(torch.equal(p, q) for p, q in zip(first, [b(x) for _ in range(3)]))
    assert not torch.equal(first[0], c(x))
    assert not torch.equal(first[0], first[1])  # each batch draws afresh


def test_a_checkpointed_generator_continues_the_same_stream():
    x = batch()
    whole = CropFlip(3, True, BLANK, 7, "cpu")
    expected = [whole(x) for _ in range(4)]
    first = CropFlip(3, True, BLANK, 7, "cpu")
    first(x), first(x)
    buffer = io.BytesIO()
    torch.save(first.state_dict(), buffer)
    buffer.seek(0)
    resumed = CropFlip(3, True, BLANK, 7, "cpu")
    resumed.load_state_dict(torch.load(buffer, weights_only=True))
    assert torch.equal(resumed(x), expected[2]) and torch.equal(resumed(x), expected[3])


def test_no_augmentation_is_built_where_it_would_change_nothing():
    d = OmegaConf.create({"augment": "crop_flip", "augment_pad": 0, "augment_flip": False})
    assert build_augment(d, BLANK, 0, "cpu") is None
    assert build_augment(OmegaConf.create({"augment": "none"}), BLANK, 0, "cpu") is None


def test_training_batches_are_augmented_and_the_probes_and_evaluation_are_not():
    plain = trainer_for("epochs=1", "model=cnn", "model.channels=[8,8]")
    tr = trainer_for("epochs=1", "model=cnn", "model.channels=[8,8]", "data.augment=crop_flip")
    x_before = tr.data.train.x.clone()
    assert tr.augment is not None and torch.equal(tr.probes.x, tr.data.train.x[:256])
    seen = []
    hook = tr.model.block1.conv.register_forward_pre_hook(lambda m, i: seen.append(i[0].detach().clone()))
    outcome, _ = collect(tr)
    hook.remove()
    assert torch.equal(tr.data.train.x, x_before)  # augmented copies, never the split itself
    perm = torch.randperm(len(tr.data.train), generator=torch.Generator().manual_seed(0))
    first_batch = tr.data.train.x[perm[:64]]
    # the first forward pass is the step-0 probe (the probe batch as it is), the second the first step
    assert torch.equal(seen[0], tr.data.train.x[:256]) and not torch.equal(seen[1], first_batch)
    assert outcome.status == "completed" and collect(plain)[0].final["val/acc"] != outcome.final["val/acc"]


@pytest.mark.parametrize("seed", [0, 1])
def test_an_augmented_run_repeats_itself(seed):
    def final(s):
        return collect(trainer_for("epochs=1", "data.augment=crop_flip", f"seed={s}"))[0].final

    assert final(seed) == final(seed)
