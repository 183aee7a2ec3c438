"""Transform ops, both dataset kinds, the dataloader, and their errors."""
from __future__ import annotations

import os
import random
import struct

import cv2
import numpy as np
import pytest

import paddle

from ppnets.data import (FailedSample, FileListDataset, ImageFolder, ResumableBatchSampler, build_dataloader,
                         build_transforms, iterate_loader)
from ppnets.data.batch_ops import BatchCollate
from ppnets.data.transforms import (CropImage, DecodeImage, NormalizeImage, RandCropImage, RandFlipImage,
                                    ResizeImage, ToCHWImage)
from ppnets.errors import ConfigError, DataError

from helpers.runs import load_small_config


def png_bytes(img: np.ndarray) -> bytes:
    ok, buf = cv2.imencode(".png", img)
    assert ok
    return buf.tobytes()


def jpeg_with_orientation(img: np.ndarray, orientation: int) -> bytes:
    """A JPEG of ``img`` carrying an EXIF APP1 segment with only the Orientation tag."""
    ok, buf = cv2.imencode(".jpg", img, [cv2.IMWRITE_JPEG_QUALITY, 95])
    assert ok
    data = buf.tobytes()
    ifd = struct.pack(">H", 1) + struct.pack(">HHIHH", 0x0112, 3, 1, orientation, 0) + struct.pack(">I", 0)
    payload = b"Exif\x00\x00" + b"MM\x00\x2a" + struct.pack(">I", 8) + ifd
    return data[:2] + b"\xff\xe1" + struct.pack(">H", len(payload) + 2) + payload + data[2:]


# ----------------------------------------------------------------------------- ops

def test_decode_image_bgr_to_rgb_and_layouts():
    bgr = np.zeros((4, 5, 3), np.uint8)
    bgr[..., 0] = 10   # blue
    bgr[..., 2] = 200  # red
    rgb = DecodeImage(to_rgb=True)(png_bytes(bgr))
    assert rgb.shape == (4, 5, 3) and rgb[0, 0].tolist() == [200, 0, 10]
    assert DecodeImage(to_rgb=False)(png_bytes(bgr))[0, 0].tolist() == [10, 0, 200]
    assert DecodeImage(channel_first=True)(png_bytes(bgr)).shape == (3, 4, 5)


def test_decode_grayscale_rgba_and_16bit_png():
    gray = np.full((6, 6), 77, np.uint8)
    assert DecodeImage()(png_bytes(gray))[0, 0].tolist() == [77, 77, 77]
    rgba = np.zeros((6, 6, 4), np.uint8)
    rgba[..., 2] = 255
    rgba[..., 3] = 128
    assert DecodeImage()(png_bytes(rgba))[0, 0].tolist() == [255, 0, 0]
    deep = np.full((6, 6), 65535, np.uint16)
    out = DecodeImage()(png_bytes(deep))
    assert out.dtype == np.uint8 and out[0, 0].tolist() == [255, 255, 255]


@pytest.mark.parametrize("data, msg", [(b"", "empty file"), (b"not an image at all", "not a decodable image")])
def test_decode_errors(data, msg):
    with pytest.raises(DataError, match=msg):
        DecodeImage()(data)


def test_resize_size_and_short_side():
    img = np.zeros((20, 40, 3), np.uint8)
    assert ResizeImage(size=10)(img).shape == (10, 10, 3)
    assert ResizeImage(size=[16, 8])(img).shape == (8, 16, 3)       # [w, h]
    assert ResizeImage(resize_short=10)(img).shape == (10, 20, 3)
    with pytest.raises(ConfigError, match="exactly one of"):
        ResizeImage()


def test_center_crop():
    img = np.arange(8 * 8).reshape(8, 8, 1).repeat(3, 2).astype(np.uint8)
    out = CropImage(size=4)(img)
    assert out.shape == (4, 4, 3) and out[0, 0, 0] == img[2, 2, 0]
    with pytest.raises(DataError, match="smaller than the crop"):
        CropImage(size=10)(img)


def test_rand_crop_area_and_ratio_within_bounds():
    op = RandCropImage(size=16, scale=[0.25, 0.5], ratio=[0.5, 2.0])
    rng = np.random.default_rng(0)
    for _ in range(200):
        top, left, h, w = op.get_params(100, 80, rng)
        assert 0 <= top and top + h <= 100 and 0 <= left and left + w <= 80
        assert 0.2 <= h * w / 8000 <= 0.55
        assert 0.45 <= w / h <= 2.2
    assert op(np.zeros((100, 80, 3), np.uint8)).shape == (16, 16, 3)


def test_rand_crop_fallback_is_center_crop():
    op = RandCropImage(size=8, scale=[1.0, 1.0], ratio=[1.0, 1.0])
    assert op.get_params(10, 40) == (0, 15, 10, 10)  # no 1:1 crop covers the whole 10×40 area


def test_rand_flip():
    img = np.arange(12).reshape(2, 6, 1).repeat(3, 2).astype(np.uint8)
    assert np.array_equal(RandFlipImage(prob=1.0)(img), img[:, ::-1])
    assert np.array_equal(RandFlipImage(flip_code=0, prob=1.0)(img), img[::-1])
    assert RandFlipImage(prob=0.0)(img) is img


def test_normalize_parses_fraction_scale_and_orders():
    img = np.full((2, 2, 3), 255, np.uint8)
    out = NormalizeImage(scale="1.0/255.0", mean=[0.5, 0.5, 0.5], std=[0.5, 0.5, 0.5])(img)
    assert out.dtype == np.float32 and np.allclose(out, 1.0)
    chw = NormalizeImage(scale=1 / 255, mean=[0, 0, 0], std=[1, 1, 2], order="chw")(np.full((3, 2, 2), 255, np.uint8))
    assert np.allclose(chw[2], 0.5) and np.allclose(chw[0], 1.0)
    with pytest.raises(ConfigError, match="expected a number or 'a/b'"):
        NormalizeImage(scale="__import__('os')")


def test_to_chw():
    img = np.random.rand(3, 4, 3).astype(np.float32)
    assert np.array_equal(ToCHWImage()(img), img.transpose(2, 0, 1))


def test_build_transforms_pipeline_and_unknown_op():
    ops = build_transforms([{"DecodeImage": {"to_rgb": True}}, {"ResizeImage": {"size": 8}},
                            {"NormalizeImage": None}, {"ToCHWImage": None}])
    out = ops(png_bytes(np.zeros((20, 20, 3), np.uint8)))
    assert out.shape == (3, 8, 8) and out.dtype == np.float32
    with pytest.raises(ConfigError, match="unknown transform op 'Blur'"):
        build_transforms([{"Blur": {}}])


# ----------------------------------------------------------------------------- datasets

def test_image_folder_sorted_classes_and_samples(digits_slice):
    ds = ImageFolder(root=os.path.join(digits_slice, "train"),
                     transform_ops=[{"DecodeImage": None}, {"ToCHWImage": None}])
    assert ds.class_names == ["0", "1", "2"]
    assert len(ds) == 120
    img, label = ds[50]
    assert img.shape == (3, 32, 32) and int(label) == 1


def test_file_list_dataset(digits_slice, tmp_path):
    root = os.path.join(digits_slice, "train")
    lines = [f"{c}/{f} {c}" for c in ("0", "2") for f in sorted(os.listdir(os.path.join(root, c)))[:3]]
    (tmp_path / "list.txt").write_text("\n".join(lines) + "\n")
    ds = FileListDataset(image_root=root, cls_label_path=str(tmp_path / "list.txt"), class_num=3,
                         transform_ops=[{"DecodeImage": None}])
    assert len(ds) == 6 and [int(ds[i][1]) for i in range(6)] == [0, 0, 0, 2, 2, 2]
    assert ds.class_names == ["0", "1", "2"]


def test_shipped_digits_file_lists_match_folders():
    from helpers.runs import DIGITS
    folder = ImageFolder(root=os.path.join(DIGITS, "val"))
    listed = FileListDataset(image_root=DIGITS, cls_label_path=os.path.join(DIGITS, "val_list.txt"), class_num=10)
    assert sorted((os.path.abspath(p), lbl) for p, lbl in folder.samples) == \
        sorted((os.path.abspath(p), lbl) for p, lbl in listed.samples)
    assert len(folder) == 360 and len(ImageFolder(root=os.path.join(DIGITS, "train"))) == 1437


@pytest.mark.parametrize("line, msg", [
    ("0/missing.png 0", r"list\.txt:1: image not found"),
    ("0/{f} x", r"list\.txt:1: label must be an integer, got 'x'"),
    ("0/{f} 7", r"list\.txt:1: label 7 out of range \[0, 3\)"),
    ("../{f} 0", r"list\.txt:1: path .* escapes the dataset root"),
    ("justonefield", r"list\.txt:1: expected 'relative/path label'"),
])
def test_file_list_errors(digits_slice, tmp_path, line, msg):
    root = os.path.join(digits_slice, "train")
    first = sorted(os.listdir(os.path.join(root, "0")))[0]
    (tmp_path / "list.txt").write_text(line.format(f=first) + "\n")
    with pytest.raises(DataError, match=msg):
        FileListDataset(image_root=root, cls_label_path=str(tmp_path / "list.txt"), class_num=3)


def test_file_list_follows_symlinks_inside_the_root(digits_slice, tmp_path):
    """A dataset folder linked into the root (``dataset/ILSVRC2012/train -> /data/…``) is the user's layout."""
    root = tmp_path / "root"
    root.mkdir()
    os.symlink(os.path.join(digits_slice, "train"), root / "train")
    first = sorted(os.listdir(os.path.join(digits_slice, "train", "0")))[0]
    (tmp_path / "list.txt").write_text(f"train/0/{first} 0\n")
    ds = FileListDataset(image_root=str(root), cls_label_path=str(tmp_path / "list.txt"), class_num=3)
    assert ds.samples == [(os.path.join(str(root), "train", "0", first), 0)]


def test_missing_root_and_empty_class_folder(tmp_path):
    with pytest.raises(DataError, match=r"dataset root not found: /no/such/dir"):
        ImageFolder(root="/no/such/dir")
    (tmp_path / "a").mkdir()
    (tmp_path / "b").mkdir()
    cv2.imwrite(str(tmp_path / "a" / "x.png"), np.zeros((4, 4), np.uint8))
    with pytest.raises(DataError, match=r"/b: class folder has no images"):
        ImageFolder(root=str(tmp_path))


def test_eval_classes_must_match_training_classes(digits_slice):
    with pytest.raises(DataError, match=r"class folders differ from the training classes \(missing: \['3'\]"):
        ImageFolder(root=os.path.join(digits_slice, "val"), class_names=["0", "1", "2", "3"])


def test_corrupt_image_is_reported_by_path(tmp_path):
    (tmp_path / "a").mkdir()
    (tmp_path / "a" / "bad.png").write_bytes(b"\x89PNG\r\n\x1a\n truncated")
    ds = ImageFolder(root=str(tmp_path), transform_ops=[{"DecodeImage": None}])
    with pytest.raises(DataError, match=r"/a/bad\.png: not a decodable image"):
        ds.load(0)
    failed = ds[0]  # inside the loader failures travel as data (see SafeCollate)
    assert isinstance(failed, FailedSample) and not failed.internal and "/a/bad.png: not a decodable" in failed.message


def test_augmentation_is_seeded_per_sample_and_epoch(digits_slice):
    ops = [{"DecodeImage": None}, {"RandCropImage": {"size": 16, "scale": [0.3, 1.0]}}]
    a = ImageFolder(root=os.path.join(digits_slice, "train"), transform_ops=ops, seed=3)
    b = ImageFolder(root=os.path.join(digits_slice, "train"), transform_ops=ops, seed=3)
    random.seed(123)  # global state must not matter
    assert np.array_equal(a[5][0], b[5][0])
    a.set_epoch(2)
    assert not all(np.array_equal(a[i][0], b[i][0]) for i in range(8))


def test_dataloader_batches_and_batch_size_errors(digits_slice, tmp_path):
    cfg = load_small_config(digits_slice, str(tmp_path))
    loader = build_dataloader(cfg, "Train", seed=0)
    images, labels, skipped = next(iterate_loader(loader))
    assert images.shape == [16, 3, 32, 32] and labels.shape == [16] and skipped == 0
    cfg["DataLoader"]["Train"]["sampler"]["batch_size"] = 200
    with pytest.raises(DataError, match=r"batch_size=200 is larger than the dataset \(120 samples\) and drop_last"):
        build_dataloader(cfg, "Train")


def test_dataloader_with_workers_surfaces_the_bad_file(tmp_path):
    for c in ("a", "b"):
        (tmp_path / c).mkdir()
        for i in range(3):
            cv2.imwrite(str(tmp_path / c / f"{i}.png"), np.zeros((8, 8), np.uint8))
    (tmp_path / "b" / "3.png").write_bytes(b"garbage")
    from ppnets.config import load_config
    from helpers.runs import REPO
    cfg = load_config(os.path.join(REPO, "configs", "mobilenetv2.yaml"), [
        f"DataLoader.Train.dataset.root={tmp_path}", "DataLoader.Train.loader.num_workers=2",
        "DataLoader.Train.sampler.batch_size=2", "DataLoader.Train.sampler.shuffle=false",
        "DataLoader.Train.sampler.drop_last=false"])
    with pytest.raises(DataError, match=r"^/\S+/b/3\.png: not a decodable image"):
        for _ in iterate_loader(build_dataloader(cfg, "Train")):
            pass


# ----------------------------------------------------------------------------- review fixes: decoding

def test_decode_applies_exif_orientation_like_imread_color():
    img = np.zeros((4, 8, 3), np.uint8)
    img[:, :4] = 255  # left half white
    data = jpeg_with_orientation(img, 6)  # "rotate 90° clockwise to display"
    out = DecodeImage(to_rgb=False)(data)
    expected = cv2.imdecode(np.frombuffer(data, np.uint8), cv2.IMREAD_COLOR)  # PaddleClas's decode
    assert out.shape == expected.shape == (8, 4, 3)
    assert np.array_equal(out, expected)
    assert out[0, :, 0].min() > 200 and out[-1, :, 0].max() < 50  # the white half is now on top
    assert DecodeImage()(jpeg_with_orientation(img, 1)).shape == (4, 8, 3)  # orientation 1: as stored


def test_decode_keeps_16bit_scaling_as_high_byte():
    deep = np.full((3, 3), 0x7FFF, np.uint16)  # 32767 >> 8 = 127 (a rounding conversion would give 128)
    assert DecodeImage()(png_bytes(deep))[0, 0].tolist() == [127, 127, 127]


@pytest.mark.parametrize("op, kwargs, msg", [
    (DecodeImage, {"to_np": False}, "DecodeImage.to_np: false (a PIL image) is not supported; remove it or set it "
                                    "to true"),
    (DecodeImage, {"backend": "pil"}, "DecodeImage.backend: only 'cv2' is supported, got 'pil'"),
    (ResizeImage, {"size": 8, "backend": "pil"}, "ResizeImage.backend: only 'cv2' is supported, got 'pil'"),
    (RandCropImage, {"size": 8, "backend": "pil"}, "RandCropImage.backend: only 'cv2' is supported, got 'pil'"),
    (ResizeImage, {"size": [224]}, "ResizeImage.size: expected a positive integer or a [width, height] pair of "
                                   "positive integers, got [224]"),
    (ResizeImage, {"size": 0}, "ResizeImage.size: expected a positive integer or a [width, height] pair of "
                               "positive integers, got 0"),
    (CropImage, {"size": [8, 8, 8]}, "CropImage.size: expected a positive integer or a [width, height] pair of "
                                     "positive integers, got [8, 8, 8]"),
    (RandCropImage, {"size": [8, -1]}, "RandCropImage.size: expected a positive integer or a [width, height] "
                                       "pair of positive integers, got [8, -1]"),
    (ResizeImage, {"resize_short": 0}, "ResizeImage.resize_short: expected a positive integer, got 0"),
    (RandCropImage, {"size": 8, "scale": [0.5]}, "RandCropImage.scale: expected two numbers [min, max] with "
                                                 "0 < min <= max, got [0.5]"),
    (RandCropImage, {"size": 8, "scale": [0.9, 0.1]}, "RandCropImage.scale: expected two numbers [min, max] with "
                                                      "0 < min <= max, got [0.9, 0.1]"),
    (RandCropImage, {"size": 8, "ratio": [0.0, 1.0]}, "RandCropImage.ratio: expected two numbers [min, max] with "
                                                      "0 < min <= max, got [0.0, 1.0]"),
    (NormalizeImage, {"order": "nchw"}, "NormalizeImage.order: expected '', 'hwc' or 'chw', got 'nchw'"),
    (NormalizeImage, {"channel_num": 4}, "NormalizeImage.channel_num: only 3 is supported, got 4"),
    (NormalizeImage, {"mean": [0.5, 0.5]}, "NormalizeImage.mean: expected 3 numbers (one per channel), "
                                           "got [0.5, 0.5]"),
    (NormalizeImage, {"std": [1, 0, 1]}, "NormalizeImage.std: expected 3 non-zero numbers (one per channel), "
                                         "got [1, 0, 1]"),
])
def test_transform_option_shapes_and_ranges_are_checked(op, kwargs, msg):
    with pytest.raises(ConfigError) as e:
        op(**kwargs)
    assert str(e.value) == msg


def test_transform_options_accept_paddleclas_defaults():
    DecodeImage(to_np=True, backend="cv2")
    assert ResizeImage(size=(16, 8), backend="cv2").size == (16, 8)
    assert RandCropImage(size=4, scale=[1, 1], ratio=[0.5, 2], backend="cv2").scale == (1.0, 1.0)
    img = np.full((2, 2, 3), 255, np.uint8)
    for order in ("", "hwc"):
        assert NormalizeImage(order=order, channel_num=3)(img).shape == (2, 2, 3)


# ----------------------------------------------------------------------------- review fixes: datasets

def test_file_list_label_beyond_the_class_names_file(digits_slice, tmp_path):
    root = os.path.join(digits_slice, "train")
    first = sorted(os.listdir(os.path.join(root, "0")))[0]
    (tmp_path / "list.txt").write_text(f"0/{first} 0\n\n0/{first} 2\n0/{first} 5\n")
    (tmp_path / "names.txt").write_text("zero\none\n")
    with pytest.raises(DataError) as e:
        FileListDataset(image_root=root, cls_label_path=str(tmp_path / "list.txt"),
                        class_names_file=str(tmp_path / "names.txt"))
    assert str(e.value) == (f"{tmp_path}/list.txt:3: label 2 out of range: {tmp_path}/names.txt names 2 classes "
                            "(labels 0…1)")
    (tmp_path / "names.txt").write_text("zero\none\ntwo\nthree\nfour\nfive\n")
    ds = FileListDataset(image_root=root, cls_label_path=str(tmp_path / "list.txt"),
                         class_names_file=str(tmp_path / "names.txt"))
    assert ds.class_names[5] == "five" and [lbl for _, lbl in ds.samples] == [0, 2, 5]


def test_image_folder_survives_a_symlink_cycle(tmp_path):
    (tmp_path / "a" / "sub").mkdir(parents=True)
    cv2.imwrite(str(tmp_path / "a" / "x.png"), np.zeros((4, 4), np.uint8))
    cv2.imwrite(str(tmp_path / "a" / "sub" / "y.png"), np.zeros((4, 4), np.uint8))
    os.symlink(str(tmp_path / "a"), str(tmp_path / "a" / "sub" / "loop"))  # a/sub/loop -> a
    (tmp_path / "b").mkdir()
    os.symlink(str(tmp_path / "a" / "sub"), str(tmp_path / "b" / "linked"))  # each class walks on its own
    ds = ImageFolder(root=str(tmp_path))
    rel = [(os.path.relpath(p, tmp_path), lbl) for p, lbl in ds.samples]
    assert rel == [("a/x.png", 0), ("a/sub/y.png", 0),
                   ("b/linked/y.png", 1), ("b/linked/loop/x.png", 1)]  # b/linked/loop/sub = b/linked: pruned


# ----------------------------------------------------------------------------- review fixes: data order

def _order(sampler, epoch):
    sampler.set_epoch(epoch)
    return [i for batch in sampler for i, _ in batch]


def _train_sampler(digits_slice, tmp_path, seed, **extra):
    cfg = load_small_config(digits_slice, str(tmp_path), **extra)
    return build_dataloader(cfg, "Train", seed=seed).batch_sampler


def test_shuffle_order_follows_the_seed_and_the_epoch(digits_slice, tmp_path):
    s1 = _train_sampler(digits_slice, tmp_path, seed=1)
    assert isinstance(s1, ResumableBatchSampler) and s1.seed == 1
    first = _order(s1, 1)
    assert len(first) == 112 and len(set(first)) == 112  # 120 images, batch 16, drop_last
    assert _order(_train_sampler(digits_slice, tmp_path, seed=1), 1) == first     # same seed: same order
    assert _order(_train_sampler(digits_slice, tmp_path, seed=2), 1) != first     # another seed: another order
    assert _order(s1, 2) != first                                                 # another epoch
    np.random.seed(0)                                                             # global state does not matter,
    assert _order(s1, 1) == first                                                 # nor iterating again


def test_resume_skips_into_the_same_order(digits_slice, tmp_path):
    s = _train_sampler(digits_slice, tmp_path, seed=7)
    s.set_epoch(3)
    full = list(s)
    resumed = _train_sampler(digits_slice, tmp_path, seed=7)
    resumed.set_epoch(3)
    resumed.skip(4)
    assert list(resumed) == full[4:]
    assert list(resumed) == full  # skip applies to one iteration only


def test_unseeded_order_is_paddles_epoch_order(digits_slice, tmp_path):
    s = _train_sampler(digits_slice, tmp_path, seed=None)
    plain = paddle.io.DistributedBatchSampler(s.inner.dataset, batch_size=16, shuffle=True, drop_last=True)
    plain.set_epoch(5)
    assert _order(s, 5) == [int(i) for b in plain for i in b]


def test_seeded_order_is_the_same_permutation_on_every_rank(digits_slice, tmp_path):
    ds = ImageFolder(root=os.path.join(digits_slice, "train"))
    ranks = [ResumableBatchSampler(paddle.io.DistributedBatchSampler(ds, 8, num_replicas=2, rank=r, shuffle=True),
                                   seed=11) for r in range(2)]
    parts = [_order(r, 1) for r in ranks]
    assert len(parts[0]) == len(parts[1]) == 60 and sorted(parts[0] + parts[1]) == list(range(120))


def test_batch_sampler_shuffle_is_seeded_and_unsharded(digits_slice, tmp_path):
    extra = {"DataLoader.Train.sampler.name": "BatchSampler"}
    s = _train_sampler(digits_slice, tmp_path, seed=3, **extra)
    np.random.seed(0)
    first = _order(s, 1)
    np.random.seed(1)  # numpy's global generator must not matter
    assert _order(s, 1) == first and len(set(first)) == 112
    assert _order(_train_sampler(digits_slice, tmp_path, seed=4, **extra), 1) != first
    assert s.inner.nranks == 1  # BatchSampler never shards
    s.set_epoch(1)
    s.skip(2)
    assert [i for b in s for i, _ in b] == first[32:]


def test_one_hot_targets_without_batch_ops():
    batch = [(np.zeros((3, 2, 2), np.float32), np.int64(lbl)) for lbl in (2, 0, 2)]
    images, targets = BatchCollate([], class_num=4)(batch)
    assert targets.dtype == np.float32 and targets.tolist() == [[0, 0, 1, 0], [1, 0, 0, 0], [0, 0, 1, 0]]


# ----------------------------------------------------------------------------- explicit randomness

def test_generators_derive_from_seed_epoch_and_position():
    from ppnets.data.rng import batch_seed, sample_rng

    def draw(g):
        return g.integers(0, 2 ** 62, size=4).tolist()

    assert draw(sample_rng(3, 1, 5)) == draw(sample_rng(3, 1, 5))
    others = [sample_rng(4, 1, 5), sample_rng(3, 2, 5), sample_rng(3, 1, 6), np.random.default_rng(batch_seed(3, 1, 5))]
    assert all(draw(g) != draw(sample_rng(3, 1, 5)) for g in others)  # seed, epoch, index and stream all count
    assert draw(sample_rng(None, 1, 5)) != draw(sample_rng(None, 1, 5))  # unseeded: fresh entropy
    assert draw(np.random.default_rng(batch_seed(-1, 0, 0))) == draw(np.random.default_rng(batch_seed(-1, 0, 0)))


def test_unseeded_datasets_draw_fresh_augmentation(digits_slice):
    ops = [{"DecodeImage": None}, {"RandCropImage": {"size": 16, "scale": [0.1, 0.3]}}]
    a, b = (ImageFolder(root=os.path.join(digits_slice, "train"), transform_ops=ops) for _ in range(2))
    assert not all(np.array_equal(a[i][0], b[i][0]) for i in range(8))
    assert not all(np.array_equal(a[i][0], a[i][0]) for i in range(8))  # not even reproducible within one


def test_the_data_pipeline_never_touches_the_global_generators(digits_slice, tmp_path):
    from ppnets.engine import Trainer
    cfg = load_small_config(digits_slice, str(tmp_path), **{
        "DataLoader.Train.dataset.transform_ops.1": "{RandCropImage: {size: 32, scale: [0.5, 1.0]}}",
        "DataLoader.Train.dataset.batch_transform_ops": "[{MixupCutmix: {mixup_alpha: 0.4, cutmix_alpha: 1.0}}]"})
    random.seed(5)
    np.random.seed(5)
    before = random.getstate(), np.random.get_state()
    engine = Trainer(cfg)  # Global.seed: 42 seeds Paddle only
    batches = list(iterate_loader(engine.train_loader))
    assert len(batches) == 7
    after = random.getstate(), np.random.get_state()
    assert after[0] == before[0]
    assert all(np.array_equal(x, y) for x, y in zip(after[1], before[1]))


def test_nothing_in_ppnets_reseeds_or_draws_from_the_global_generators():
    import ast
    import glob
    from helpers.runs import REPO
    offenders = []
    for folder in ("ppnets", "tools"):
        for path in glob.glob(os.path.join(REPO, folder, "**", "*.py"), recursive=True):
            for node in ast.walk(ast.parse(open(path, encoding="utf-8").read(), path)):
                if isinstance(node, (ast.Import, ast.ImportFrom)) and "random" in \
                        [a.name for a in node.names] + [getattr(node, "module", None)]:
                    offenders.append(f"{path}:{node.lineno}: imports random")
                if isinstance(node, ast.Attribute) and isinstance(node.value, ast.Attribute) \
                        and node.value.attr == "random" and node.attr not in ("default_rng", "Generator", "SeedSequence",
                                                                              "RandomState"):
                    offenders.append(f"{path}:{node.lineno}: np.random.{node.attr}")
    assert not offenders
