"""Augmentation ops (ColorJitter, AutoAugment, RandAugment, RandomErasing), batch ops (Mixup, CutMix,
their switches) and the soft-target cross-entropy, each tested for its effect."""
from __future__ import annotations

import math
import os
import re

import numpy as np
import paddle
import pytest

from ppnets.config import load_config
from ppnets.data import build_dataloader, iterate_loader
from ppnets.data import transforms as T
from ppnets.data.transforms import autoaugment as AA, functional as F
from ppnets.data.transforms.base import interp_flag
from ppnets.data.batch_ops import (BatchCollate, CutmixOperator, MixupCutmix, MixupOperator, OpSampler,
                                   build_batch_transforms)
from ppnets.data.transforms import AutoAugment, ColorJitter, RandAugment, RandomErasing
from ppnets.errors import ConfigError, DataError
from ppnets.loss import CELoss

from helpers.runs import REPO, load_small_config


def rng(s):
    return np.random.default_rng(s)


def photo(h=32, w=40, s=0):
    """A smooth colourful uint8 image (gradients plus a square), like a real photo crop."""
    y, x = np.mgrid[0:h, 0:w].astype(np.float32)
    img = np.stack([x / w * 200 + 30, y / h * 180 + 40, (x + y) / (h + w) * 150 + 60], -1)
    img[h // 4:h // 2, w // 4:w // 2] = [220, 40, 90]
    return np.clip(img + s, 0, 255).astype(np.uint8)


# ----------------------------------------------------------------------------- RandomErasing

def erased_mask(before, after):
    return np.any(before != after, axis=-1) if before.ndim == 3 else before != after


def test_random_erasing_area_aspect_and_value():
    op = RandomErasing(prob=1.0, sl=0.1, sh=0.3, r1=0.5, mean=[7.0, 8.0, 9.0])
    img = np.zeros((40, 50, 3), np.float32)
    r = rng(0)
    for _ in range(100):
        out = op(img, r)
        mask = erased_mask(img, out)
        ys, xs = np.nonzero(mask)
        eh, ew = ys.max() - ys.min() + 1, xs.max() - xs.min() + 1
        assert mask.sum() == eh * ew                                       # one rectangle
        frac = mask.sum() / mask.size
        # h, w are rounded: allow the area of half a row and half a column around [sl, sh]
        slack = 0.5 * (eh + ew + 1) / mask.size
        assert 0.1 - slack <= frac <= 0.3 + slack
        assert 0.5 - 0.1 <= eh / ew <= 2.0 + 0.2
        assert out[ys[0], xs[0]].tolist() == [7.0, 8.0, 9.0]
    assert not img.any()  # the input is not modified


def test_random_erasing_probability():
    op = RandomErasing(prob=0.3, mean=[1.0, 1.0, 1.0])
    img = np.zeros((3, 24, 24), np.float32)
    r = rng(1)
    hits = sum(bool(np.any(op(img, r) != 0)) for _ in range(600))
    assert abs(hits / 600 - 0.3) < 0.06
    assert not np.any(RandomErasing(prob=0.0)(img, r) != 0)


def test_random_erasing_chw_and_hwc_layouts():
    chw = RandomErasing(prob=1.0, mean=[1.0, 2.0, 3.0], sl=0.2, sh=0.2)(np.zeros((3, 32, 40), np.float32), rng(2))
    mask = chw[0] != 0
    assert chw.shape == (3, 32, 40) and mask.any()
    for c, v in enumerate([1.0, 2.0, 3.0]):          # every channel erased over the same region, own value
        assert np.array_equal(chw[c] != 0, mask) and np.all(chw[c][mask] == v)
    hwc = RandomErasing(prob=1.0, mean=[1.0, 2.0, 3.0], sl=0.2, sh=0.2)(np.zeros((32, 40, 3), np.float32), rng(2))
    assert np.array_equal(np.moveaxis(chw, 0, -1), hwc)  # same draw, same region in either layout
    # a 3×6×3 array is ambiguous: auto treats it as HWC (3 rows, 3 channels), layout: chw as 3 planes of 6×3
    ambiguous = np.zeros((3, 6, 3), np.float32)
    auto = RandomErasing(prob=1.0, sl=0.25, sh=0.25, r1=1.0, mean=[1, 2, 3])(ambiguous, rng(3))
    hit = erased_mask(ambiguous, auto)
    assert hit.shape == (3, 6) and hit.any() and np.all(auto[hit] == [1, 2, 3])
    forced = RandomErasing(prob=1.0, sl=0.25, sh=0.25, r1=1.0, mean=[1, 2, 3], layout="chw")(ambiguous, rng(3))
    for c in range(3):
        assert set(np.unique(forced[c])) == {0.0, c + 1.0}
    assert np.array_equal(forced[0] != 0, forced[2] != 0)


def test_random_erasing_noise_modes_and_paddleclas_options():
    op = RandomErasing(EPSILON=1.0, sl="1.0/3.0", sh="1.0/3.0", r1=1.0, mode="pixel", use_log_aspect=True)
    assert op.prob == 1.0 and op.sl == pytest.approx(1 / 3)
    out = op(np.zeros((60, 60, 3), np.float32), rng(4))
    vals = out[erased_mask(np.zeros_like(out), out)]
    assert vals.size > 0.3 * 3600 and abs(vals.mean()) < 0.1 and abs(vals.std() - 1.0) < 0.1
    rand = RandomErasing(prob=1.0, r1=1.0, mode="rand")(np.zeros((60, 60, 3), np.float32), rng(5))
    region = rand[erased_mask(np.zeros_like(rand), rand)]
    assert len(np.unique(region[:, 0])) == 1                   # one value per channel
    with pytest.raises(ConfigError, match="'prob' or its PaddleClas name 'EPSILON', not both"):
        RandomErasing(prob=0.5, EPSILON=0.5)
    with pytest.raises(ConfigError, match="RandomErasing.mode: expected const, rand or pixel"):
        RandomErasing(mode="noise")
    with pytest.raises(ConfigError, match=r"RandomErasing: expected 0 < sl <= sh <= 1"):
        RandomErasing(sl=0.5, sh=0.2)


# ----------------------------------------------------------------------------- ColorJitter

def test_color_jitter_brightness_factor_in_range_and_applied():
    op = ColorJitter(brightness=0.4)
    img = photo()
    r = rng(5)
    factors = [op.get_params(r)[0][1] for _ in range(300)]
    assert 0.6 <= min(factors) < 0.7 and 1.3 < max(factors) <= 1.4
    (name, f), = op.get_params(rng(6))
    out = op(img, rng(6))
    assert name == "brightness"
    np.testing.assert_array_equal(out, np.clip(np.rint(img * np.float32(f)), 0, 255).astype(np.uint8))


def test_color_jitter_saturation_contrast_and_hue_effects():
    img = photo()
    gray = ColorJitter.apply(img, [("saturation", 0.0)])
    assert np.all(gray[..., 0] == gray[..., 1]) and np.all(gray[..., 1] == gray[..., 2])
    flat = ColorJitter.apply(img, [("contrast", 0.0)])
    assert len(np.unique(flat)) == 1
    red = np.zeros((4, 4, 3), np.uint8)
    red[..., 0] = 200
    np.testing.assert_array_equal(ColorJitter.apply(red, [("hue", 0.5)])[0, 0], [0, 200, 200])   # red → cyan
    np.testing.assert_array_equal(ColorJitter.apply(red, [("hue", 1 / 3)])[0, 0], [0, 200, 0])   # red → green
    assert np.array_equal(ColorJitter.apply(img, [("brightness", 1.0), ("contrast", 1.0)]), img)
    r = rng(7)
    orders = {tuple(n for n, _ in ColorJitter(0.2, 0.2, 0.2, 0.1).get_params(r)) for _ in range(60)}
    assert len(orders) > 6  # random order of the four adjustments
    with pytest.raises(ConfigError, match=r"ColorJitter.hue: expected values in \[-0.5, 0.5\]"):
        ColorJitter(hue=0.7)
    with pytest.raises(DataError, match="expected an RGB HWC uint8 image"):
        ColorJitter(brightness=0.2)(img.astype(np.float32), rng(0))


# ----------------------------------------------------------------------------- AutoAugment / RandAugment

@pytest.mark.parametrize("op", [AutoAugment(), AutoAugment(policy="v0"), RandAugment(num_layers=2, magnitude=9),
                                RandAugment(num_layers=3, magnitude=5, prob=1.0, increasing=False,
                                            magnitude_std=0.5)],
                         ids=["AA-original", "AA-v0", "RA-m9", "RA-legacy-mstd"])
def test_policy_ops_give_valid_changed_images_and_are_seeded(op):
    img = photo()
    changed = 0
    for s in range(40):
        out = op(img, rng(s))
        assert out.dtype == np.uint8 and out.shape == img.shape
        changed += not np.array_equal(out, img)
        assert np.array_equal(op(img, rng(s)), out)  # the same seed gives the same image
    assert changed >= 25
    assert np.array_equal(img, photo())  # the input is not modified


def test_autoaugment_original_policy_is_the_papers():
    policy = AA.AA_POLICIES["original"]
    assert len(policy) == 25 and all(len(sub) == 2 for sub in policy)
    assert policy[0] == [("PosterizeOriginal", 0.4, 8), ("Rotate", 0.6, 9)]
    assert policy[14] == [("Color", 0.6, 4), ("Contrast", 1.0, 8)]
    assert all(0 <= p <= 1 and 0 <= m <= 10 and n in AA.AUGMENT_OPS for sub in policy for n, p, m in sub)
    with pytest.raises(ConfigError, match="AutoAugment.policy: unknown policy 'imagenet'; valid: original, v0"):
        AutoAugment(policy="imagenet")


def test_randaugment_magnitude_scales_the_operations():
    img = photo()
    # rotation only, magnitude 0 → unchanged; magnitude 10 → ±30°, corners filled
    op = RandAugment(num_layers=1, magnitude=0, prob=1.0)
    op.ops = [o for o in op.ops if o.name == "Rotate"]
    assert np.array_equal(op(img, rng(0)), img)
    op = RandAugment(num_layers=1, magnitude=10, prob=1.0, fill=[1, 2, 3])
    op.ops = [o for o in op.ops if o.name == "Rotate"]
    assert op(img, rng(0))[0, 0].tolist() == [1, 2, 3]
    mags = [abs(AA.AUGMENT_OPS["Rotate"][1](m, rng(0))[0]) for m in (0, 5, 10)]
    assert mags == [0.0, 15.0, 30.0]
    # increasing variants get stronger with the magnitude; the legacy posterize does not
    assert [AA.AUGMENT_OPS["PosterizeIncreasing"][1](m, rng(0))[0] for m in (0, 5, 10)] == [4, 2, 0]
    assert [AA.AUGMENT_OPS["Posterize"][1](m, rng(0))[0] for m in (0, 5, 10)] == [0, 2, 4]
    with pytest.raises(ConfigError, match=r"RandAugment.magnitude: expected a value in \[0, 10\]"):
        RandAugment(magnitude=12)
    with pytest.raises(DataError, match="expected an RGB HWC uint8 image"):
        RandAugment()(np.zeros((3, 8, 8), np.uint8), rng(0))


def test_image_functions_match_pil():
    Image = pytest.importorskip("PIL.Image")
    ImageOps = pytest.importorskip("PIL.ImageOps")
    ImageEnhance = pytest.importorskip("PIL.ImageEnhance")
    rng = np.random.default_rng(0)
    img = (rng.random((24, 30, 3)) * 200 + 20).astype(np.uint8)
    pil = Image.fromarray(img)

    def close(ours, ref, tol):
        assert np.abs(ours.astype(int) - np.asarray(ref).astype(int)).max() <= tol

    close(F.equalize(img), ImageOps.equalize(pil), 0)
    close(F.posterize(img, 3), ImageOps.posterize(pil, 3), 0)
    close(F.solarize(img, 100), ImageOps.solarize(pil, 100), 0)
    close(F.auto_contrast(img), ImageOps.autocontrast(pil), 1)     # PIL truncates, we round
    for f in (0.1, 0.6, 1.8):
        close(F.color(img, f), ImageEnhance.Color(pil).enhance(f), 1)
        close(F.contrast(img, f), ImageEnhance.Contrast(pil).enhance(f), 1)
        close(F.brightness(img, f), ImageEnhance.Brightness(pil).enhance(f), 1)
        close(F.sharpness(img, f), ImageEnhance.Sharpness(pil).enhance(f), 1)
    nearest, fill = interp_flag("nearest", "test"), (128, 128, 128)
    close(F.shear_x(img, 0.3, fill, nearest), pil.transform(pil.size, Image.AFFINE, (1, 0.3, 0, 0, 1, 0),
                                                             Image.NEAREST, fillcolor=fill), 0)
    close(F.translate_y(img, -4.0, fill, nearest), pil.transform(pil.size, Image.AFFINE, (1, 0, 0, 0, 1, -4),
                                                                  Image.NEAREST, fillcolor=fill), 0)


def test_augmentation_ops_in_a_config_pipeline(tmp_path):
    from ppnets.config import validate
    cfg = load_small_config(str(tmp_path), str(tmp_path))
    ops = cfg["DataLoader"]["Train"]["dataset"]["transform_ops"]
    ops[2:2] = [{"AutoAugment": {}}, {"ColorJitter": {"brightness": 0.4, "contrast": [0.5, 1.5]}}]
    ops.append({"RandomErasing": {"EPSILON": 0.25, "sh": "1.0/3.0", "mode": "pixel"}})
    validate(cfg)
    pipeline = T.build_transforms(ops)
    import cv2
    ok, png = cv2.imencode(".png", photo())
    out = pipeline(png.tobytes(), rng(0))
    assert out.shape == (3, 32, 32) and out.dtype == np.float32
    ops.append({"RandAugment": {"num_layer": 2}})
    with pytest.raises(ConfigError, match=r"RandAugment: unknown key 'num_layer' \(did you mean 'num_layers'"):
        validate(cfg)


# ----------------------------------------------------------------------------- Mixup / CutMix

def batch(n=6, c=3, h=8, w=10, classes=5):
    images = np.stack([np.full((c, h, w), float(i + 1), np.float32) for i in range(n)])
    labels = np.arange(n) % classes
    return images, np.eye(classes, dtype=np.float32)[labels], labels


def test_mixup_targets_and_images_are_the_same_convex_combination():
    images, targets, labels = batch()
    perm = np.array([3, 0, 5, 1, 2, 4])
    out_img, out_t = MixupOperator(alpha=0.4).mix(images, targets, 0.3, perm)
    np.testing.assert_allclose(out_t.sum(1), 1.0, rtol=1e-6)
    np.testing.assert_allclose(out_t, 0.3 * np.eye(5)[labels] + 0.7 * np.eye(5)[labels[perm]], rtol=1e-6)
    np.testing.assert_allclose(out_img, 0.3 * images + 0.7 * images[perm], rtol=1e-6)
    # through __call__: λ ~ Beta(α, α) and the partner permutation are drawn once per batch
    images, targets, labels = batch(classes=6)
    r = rng(8)
    lam, perm = r.beta(0.4, 0.4), r.permutation(6)
    out_img, out_t = MixupOperator(alpha=0.4)(images, targets, rng(8))
    assert 0 < lam < 1 and not np.array_equal(perm, np.arange(6))
    np.testing.assert_allclose(out_t, lam * np.eye(6)[labels] + (1 - lam) * np.eye(6)[labels[perm]], rtol=1e-5)
    np.testing.assert_allclose(out_img, lam * images + (1 - lam) * images[perm], rtol=1e-5)
    np.testing.assert_allclose(out_t.sum(1), 1.0, rtol=1e-6)


def test_cutmix_target_weight_equals_the_pasted_area_exactly():
    images, targets, labels = batch(n=4, h=12, w=16, classes=4)
    r = rng(9)
    op = CutmixOperator(alpha=1.0)
    checked = 0
    for _ in range(30):
        out_img, out_t = op(images, targets, r)
        np.testing.assert_allclose(out_t.sum(1), 1.0, rtol=1e-6)
        for i in range(4):
            pasted = out_img[i, 0] != images[i, 0, 0, 0]
            if not pasted.any():
                continue
            partner = int(out_img[i, 0][pasted][0]) - 1
            frac = pasted.sum() / pasted.size
            assert out_t[i, labels[partner]] == pytest.approx(frac, abs=1e-6)
            assert out_t[i, labels[i]] == pytest.approx(1 - frac, abs=1e-6)
            assert np.all(out_img[i][:, pasted] == partner + 1)
            checked += 1
    assert checked > 30
    y0, y1, x0, x1 = (0, 6, 0, 8)
    out_img, out_t = op.mix(images, targets, (y0, y1, x0, x1), np.array([1, 0, 3, 2]))
    assert out_t[0].tolist() == [0.75, 0.25, 0.0, 0.0]          # 48 of 192 pixels pasted from sample 1
    assert np.all(out_img[0, :, :6, :8] == 2) and np.all(out_img[0, :, 6:, :] == 1)


def test_op_sampler_picks_each_op_with_its_probability():
    images, targets, _ = batch()
    op = OpSampler(MixupOperator={"alpha": 0.5, "prob": 0.5}, CutmixOperator={"alpha": 1.0, "prob": 0.3})
    r = rng(10)
    kinds = {"mixup": 0, "cutmix": 0, "none": 0}
    for _ in range(400):
        out_img, _ = op(images, targets, r)
        if np.array_equal(out_img, images):
            kinds["none"] += 1
        elif np.all([len(np.unique(x)) == 1 for x in out_img[:, 0]]):
            kinds["mixup"] += 1   # every image uniformly blended
        else:
            kinds["cutmix"] += 1  # a box pasted
    assert abs(kinds["mixup"] / 400 - 0.5) < 0.08 and abs(kinds["cutmix"] / 400 - 0.3) < 0.08
    with pytest.raises(ConfigError, match="probabilities sum to 1.2; expected at most 1"):
        OpSampler(MixupOperator={"prob": 0.6}, CutmixOperator={"prob": 0.6})
    with pytest.raises(ConfigError, match="OpSampler.CutmixOperator: expected options with a 'prob'"):
        OpSampler(CutmixOperator={"alpha": 1.0})


def test_mixup_cutmix_switch_and_prob():
    images, targets, _ = batch()
    r = rng(11)
    only_cut = MixupCutmix(mixup_alpha=0.8, cutmix_alpha=1.0, switch_prob=1.0)
    only_mix = MixupCutmix(mixup_alpha=0.8, cutmix_alpha=1.0, switch_prob=0.0)
    for _ in range(10):
        cut, _ = only_cut(images, targets, r)
        assert set(np.unique(cut)) <= set(np.unique(images))     # pasted pixels, no blends
        mix, _ = only_mix(images, targets, r)
        assert all(len(np.unique(x)) == 1 for x in mix[:, 0])
    never = MixupCutmix(prob=0.0)
    out_img, out_t = never(images, targets, r)
    assert out_img is images and out_t is targets
    with pytest.raises(ConfigError, match="at least one positive"):
        MixupCutmix(mixup_alpha=0.0, cutmix_alpha=0.0)
    with pytest.raises(ConfigError, match=r"MixupOperator.alpha: expected a positive number"):
        MixupOperator(alpha=0)


def test_collate_one_hots_and_checks():
    collate = BatchCollate([MixupOperator(alpha=1.0)], class_num=4)
    items = [(np.full((3, 4, 4), i, np.float32), np.int64(i % 4)) for i in range(5)]
    images, targets = collate(items, rng(12))
    assert images.shape == (5, 3, 4, 4) and images.dtype == np.float32
    assert targets.shape == (5, 4) and targets.dtype == np.float32
    np.testing.assert_allclose(targets.sum(1), 1.0, rtol=1e-6)
    assert np.array_equal(BatchCollate([], 4)(items)[1], np.eye(4, dtype=np.float32)[[0, 1, 2, 3, 0]])
    with pytest.raises(DataError, match=r"label 4 out of range \[0, 4\) \(Arch.class_num\)"):
        BatchCollate([], 4)(items + [(items[0][0], np.int64(4))])
    with pytest.raises(DataError, match="need CHW images"):
        BatchCollate([], 4)([(np.zeros((4, 4, 3), np.float32), np.int64(0))] * 2)
    assert build_batch_transforms(None, 4) is None
    with pytest.raises(ConfigError, match=r"unknown batch transform op 'Mixup'; valid: .*MixupCutmix"):
        build_batch_transforms([{"Mixup": {}}], 4)


def test_dataloader_with_batch_ops_yields_soft_targets(digits_slice, tmp_path):
    cfg = load_small_config(digits_slice, str(tmp_path), **{
        "DataLoader.Train.dataset.batch_transform_ops": "[{MixupCutmix: {mixup_alpha: 0.4, cutmix_alpha: 1.0}}]"})
    loader = build_dataloader(cfg, "Train", seed=0, class_num=5)
    images, targets, _ = next(iter(iterate_loader(loader)))
    assert images.shape == [16, 3, 32, 32] and images.dtype == paddle.float32
    assert targets.shape == [16, 5] and targets.dtype == paddle.float32
    t = targets.numpy()
    np.testing.assert_allclose(t.sum(1), 1.0, rtol=1e-5)
    assert np.all(t[:, 3:] == 0) and np.any((t > 0) & (t < 1))   # labels 0..2 mixed, padding classes empty
    # the same seed gives the same batch
    again = next(iter(iterate_loader(build_dataloader(cfg, "Train", seed=0, class_num=5))))[:2]
    assert np.array_equal(again[1].numpy(), t) and np.array_equal(again[0].numpy(), images.numpy())
    # without class_num the dataset's class count is used
    assert next(iter(build_dataloader(cfg, "Train", seed=0)))[1].shape == [16, 3]


def _mixed_batches(cfg, skip=0):
    loader = build_dataloader(cfg, "Train", seed=0, class_num=3)
    loader.batch_sampler.set_epoch(1)
    loader.dataset.set_epoch(1)
    loader.batch_sampler.skip(skip)
    return [(images.numpy(), targets.numpy()) for images, targets, _ in iterate_loader(loader)]


def test_batch_ops_draw_from_seed_epoch_and_batch_number(digits_slice, tmp_path):
    ops = "[{MixupOperator: {alpha: 0.4}}]"
    cfg = load_small_config(digits_slice, str(tmp_path), **{"DataLoader.Train.dataset.batch_transform_ops": ops})
    plain = _mixed_batches(cfg)
    assert len(plain) == 7
    lams = {round(float(t[(t > 0) & (t < 1)].max()), 6) for _, t in plain}  # max(λ, 1 − λ) of each batch
    assert len(lams) == 7                                 # every batch has its own draw
    workers = _mixed_batches(load_small_config(digits_slice, str(tmp_path), **{
        "DataLoader.Train.dataset.batch_transform_ops": ops, "DataLoader.Train.loader.num_workers": 2}))
    resumed = _mixed_batches(cfg, skip=4)
    for got, want in zip(workers + resumed, plain + plain[4:]):  # independent of num_workers; exact on resume
        assert np.array_equal(got[0], want[0]) and np.array_equal(got[1], want[1])
    assert len(resumed) == 3


def test_batch_ops_config_validation(digits_slice, tmp_path):
    with pytest.raises(ConfigError, match=r"batch_transform_ops\.0\.MixupOperator: unknown key 'alfa'"):
        load_small_config(digits_slice, str(tmp_path),
                          **{"DataLoader.Train.dataset.batch_transform_ops": "[{MixupOperator: {alfa: 0.2}}]"})
    cfg = load_small_config(digits_slice, str(tmp_path),
                            **{"DataLoader.Eval.dataset.batch_transform_ops": "[{MixupOperator: {alpha: 0.2}}]"})
    with pytest.raises(ConfigError, match="batch ops .* are for training only"):
        build_dataloader(cfg, "Eval")
    default = load_config(os.path.join(REPO, "configs", "mobilenetv2.yaml"))
    assert default["DataLoader"]["Train"]["dataset"]["batch_transform_ops"] is None


def test_training_with_mixup_and_cutmix_through_the_engine(digits_slice, tmp_path):
    from ppnets.engine import Trainer
    cfg = load_small_config(digits_slice, str(tmp_path), **{
        "Global.epochs": 2, "Global.eval_during_train": False, "Global.use_visualdl": False,
        "DataLoader.Train.dataset.batch_transform_ops":
            "[{OpSampler: {MixupOperator: {alpha: 0.2, prob: 0.5}, CutmixOperator: {alpha: 1.0, prob: 0.5}}}]"})
    engine = Trainer(cfg)
    targets, loss_fn = [], engine.train_loss

    def recording_loss(logits, labels):  # what the loss receives: the batch ops' mixed targets
        targets.append(labels.numpy().copy())
        return loss_fn(logits, labels)

    engine.train_loss = recording_loss
    engine.train()
    assert len(targets) == 2 * engine.steps_per_epoch
    for t in targets:  # every batch is mixed (the two probabilities sum to 1)
        assert t.dtype == np.float32 and t.ndim == 2 and t.shape[1] == 3, (t.dtype, t.shape)
        np.testing.assert_allclose(t.sum(1), 1.0, rtol=1e-5)
        assert (t >= 0).all() and ((t > 0).sum(1) <= 2).all()  # a blend of two one-hot labels
        assert ((t > 0) & (t < 1)).any(1).any()                 # ... not a one-hot label
    log = open(os.path.join(str(tmp_path), "MobileNetV2_x0_25", "train.log")).read()
    losses = [float(v) for v in re.findall(r"\[Train\]\[Epoch \d/2\]\[Avg\] loss: ([0-9.]+)", log)]
    assert len(losses) == 2 and all(0 < v < 5 for v in losses)
    assert "top1" not in log.split("[Train]")[1]  # batch accuracy is undefined for mixed targets: not logged


# ----------------------------------------------------------------------------- soft-target cross-entropy

def log_softmax(z):
    z = z - z.max(1, keepdims=True)
    return z - np.log(np.exp(z).sum(1, keepdims=True))


def test_ce_with_soft_targets_equals_the_hand_computed_value():
    rng = np.random.default_rng(0)
    logits = rng.normal(size=(4, 5)).astype(np.float32)
    labels = np.array([0, 3, 1, 4])
    lam, perm = 0.35, np.array([2, 0, 3, 1])
    t = lam * np.eye(5)[labels] + (1 - lam) * np.eye(5)[labels[perm]]
    want = -(t * log_softmax(logits)).sum(1).mean()
    got = float(CELoss()(paddle.to_tensor(logits), paddle.to_tensor(t.astype(np.float32))))
    assert got == pytest.approx(want, rel=1e-5)
    # PaddleClas softmaxes the soft labels first; that is a different (wrong) value
    e = np.exp(t)
    wrong = -((e / e.sum(1, keepdims=True)) * log_softmax(logits)).sum(1).mean()
    assert abs(got - wrong) > 0.05
    # label smoothing composes: (1 − ε)·t + ε/C
    eps = 0.1
    smoothed = -(((1 - eps) * t + eps / 5) * log_softmax(logits)).sum(1).mean()
    got = float(CELoss(epsilon=eps)(paddle.to_tensor(logits), paddle.to_tensor(t.astype(np.float32))))
    assert got == pytest.approx(smoothed, rel=1e-5)
    # hard labels with smoothing take the same path as their one-hot targets
    hard = float(CELoss(epsilon=eps)(paddle.to_tensor(logits), paddle.to_tensor(labels)))
    one_hot_t = paddle.to_tensor(np.eye(5, dtype=np.float32)[labels])
    one_hot = float(CELoss(epsilon=eps)(paddle.to_tensor(logits), one_hot_t))
    assert hard == pytest.approx(one_hot, rel=1e-6)
    assert float(CELoss()(paddle.to_tensor(logits), paddle.to_tensor(labels))) == \
        pytest.approx(-log_softmax(logits)[np.arange(4), labels].mean(), rel=1e-5)
    assert math.isfinite(got)
