"""PaddleClas-format data: ImageNetDataset file lists, transform lists without ToCHWImage, label maps.

The fixtures are written here in PaddleClas's formats (a file list of digits images, an ``id name``
label map, a config shaped like PaddleClas's ImageNet configs); none is a copy of a PaddleClas file.
"""
from __future__ import annotations

import os
import re
import subprocess
import sys

import numpy as np
import pytest
import yaml

from ppnets.config import load_config
from ppnets.data import (Compose, FileListDataset, ImageNetDataset, build_dataloader, build_transforms, check_model_input,
                         ensure_chw, iterate_loader, read_label_file)
from ppnets.data.rng import sample_rng
from ppnets.data.transforms import output_layout
from ppnets.engine import Evaluator, Trainer
from ppnets.checkpoint import trained_class_names
from ppnets.deploy.inputs import iterate_batches, list_inputs
from ppnets.errors import ConfigError, DataError

from helpers.runs import REPO

# PaddleClas's ImageNet lists: HWC after NormalizeImage, no ToCHWImage (its dataset transposes)
NORMALIZE = {"NormalizeImage": {"scale": "1.0/255.0", "mean": [0.485, 0.456, 0.406], "std": [0.229, 0.224, 0.225],
                                "order": ""}}
TRAIN_OPS = [{"DecodeImage": {"to_rgb": True, "channel_first": False}}, {"RandCropImage": {"size": 32}},
             {"RandFlipImage": {"flip_code": 1}}, NORMALIZE]
EVAL_OPS = [{"DecodeImage": {"to_rgb": True, "channel_first": False}}, {"ResizeImage": {"resize_short": 36}},
            {"CropImage": {"size": 32}}, NORMALIZE]
INFER_OPS = EVAL_OPS + [{"ToCHWImage": None}]  # PaddleClas's Infer.transforms end with it


def write_file_list(root: str, split: str, per_class: int, labels=(0, 1, 2), name=None, delimiter=" ") -> str:
    """``<root>/<name>`` listing ``<split>/<class>/<file><delimiter><label>`` for the digit folders 0, 1, 2."""
    lines = []
    for folder, label in zip(("0", "1", "2"), labels):
        files = sorted(os.listdir(os.path.join(root, split, folder)))[:per_class]
        lines += [f"{split}/{folder}/{f}{delimiter}{label}" for f in files]
    path = os.path.join(root, name or f"{split}_list.txt")
    with open(path, "w") as f:
        f.write("\n".join(lines) + "\n")
    return path


@pytest.fixture(scope="module")
def ppcls_root(digits_slice, tmp_path_factory):
    """The digits slice with PaddleClas's ``train_list.txt`` / ``val_list.txt`` and an ``id name`` label map."""
    write_file_list(digits_slice, "train", 40)
    write_file_list(digits_slice, "val", 10)
    label_map = os.path.join(str(tmp_path_factory.mktemp("labels")), "digits_label_list.txt")
    with open(label_map, "w") as f:
        f.write("0 zero\n1 one\n2 two, the digit\n")
    return {"root": digits_slice, "label_map": label_map}


def paddleclas_config(root: str, out: str, label_map: str, infer_ops=None) -> str:
    """A config shaped like PaddleClas's ImageNet ones, for the digits slice."""
    def split(name, ops, batch, shuffle):
        return {"dataset": {"name": "ImageNetDataset", "image_root": root,
                            "cls_label_path": os.path.join(root, f"{name}_list.txt"), "transform_ops": ops},
                "sampler": {"name": "DistributedBatchSampler", "batch_size": batch, "drop_last": False,
                            "shuffle": shuffle},
                "loader": {"num_workers": 0, "use_shared_memory": True}}

    cfg = {"Global": {"checkpoints": None, "pretrained_model": None, "output_dir": out, "device": "cpu",
                      "save_interval": 1, "eval_during_train": True, "eval_interval": 1, "epochs": 1,
                      "print_batch_step": 1, "use_visualdl": False, "image_shape": [3, 32, 32],
                      "save_inference_dir": os.path.join(out, "inference"), "to_static": False},
           "Arch": {"name": "MobileNetV2_x0_25", "class_num": 3},
           "Loss": {"Train": [{"CELoss": {"weight": 1.0}}], "Eval": [{"CELoss": {"weight": 1.0}}]},
           "Optimizer": {"name": "Momentum", "momentum": 0.9, "lr": {"name": "Cosine", "learning_rate": 0.02},
                         "regularizer": {"name": "L2", "coeff": 0.00004}},
           "DataLoader": {"Train": split("train", TRAIN_OPS, 16, True), "Eval": split("val", EVAL_OPS, 8, False)},
           "Infer": {"infer_imgs": os.path.join(root, "val"), "batch_size": 10, "topk": 2,
                     "class_id_map_file": label_map},
           "Metric": {"Train": [{"TopkAcc": {"topk": [1, 2]}}], "Eval": [{"TopkAcc": {"topk": [1, 2]}}]}}
    if infer_ops is not None:
        cfg["Infer"]["transforms"] = infer_ops
    path = os.path.join(out, "paddleclas_style.yaml")
    os.makedirs(out, exist_ok=True)
    with open(path, "w") as f:
        yaml.safe_dump(cfg, f, sort_keys=False)
    return path


def _tool(*args):
    return subprocess.run([sys.executable, *args], cwd=REPO, capture_output=True, text=True, timeout=600)


def _top1(stdout: str) -> dict:
    """``{file: (top-1 name, its score)}`` of the result lines ``<file>.png: <name> (<id>): <score>, …``."""
    rows = {}
    for line in stdout.splitlines():
        m = re.fullmatch(r"(.+\.png): (.+?) \((\d+)\): ([\d.]+)(?:, .*)?", line)
        if m:
            rows[m[1]] = (m[2], float(m[4]))
    return rows


# ----------------------------------------------------------------------------- ImageNetDataset

def test_imagenet_dataset_hands_the_model_chw_like_paddleclas(ppcls_root):
    root = ppcls_root["root"]
    ds = ImageNetDataset(image_root=root, cls_label_path=os.path.join(root, "train_list.txt"),
                         transform_ops=TRAIN_OPS, seed=3)
    assert isinstance(ds, FileListDataset) and len(ds) == 120 and ds.class_names == ["0", "1", "2"]
    assert [lbl for _, lbl in ds.samples[::40]] == [0, 1, 2]
    hwc = build_transforms(TRAIN_OPS)
    for i in (0, 57, 119):
        with open(ds.samples[i][0], "rb") as f:
            want = hwc(f.read(), sample_rng(3, 0, i)).transpose(2, 0, 1)  # PaddleClas: transform, then transpose
        img, label = ds[i]
        assert img.shape == (3, 32, 32) and img.dtype == np.float32 and np.array_equal(img, want)
        assert int(label) == i // 40
    with_chw = ImageNetDataset(image_root=root, cls_label_path=os.path.join(root, "train_list.txt"),
                               transform_ops=TRAIN_OPS + [{"ToCHWImage": None}], seed=3)
    assert np.array_equal(with_chw[57][0], ds[57][0])  # an explicit ToCHWImage is not doubled


def test_imagenet_dataset_relabel_and_delimiter(ppcls_root, tmp_path):
    root = ppcls_root["root"]
    lst = write_file_list(root, "val", 3, labels=(3, 7, 9), name="gappy_list.txt", delimiter="\t")
    ds = ImageNetDataset(image_root=root, cls_label_path=lst, delimiter="\t", relabel=True)
    assert [lbl for _, lbl in ds.samples] == [0] * 3 + [1] * 3 + [2] * 3 and ds.class_names == ["3", "7", "9"]
    plain = ImageNetDataset(image_root=root, cls_label_path=lst, delimiter="\t")
    assert [lbl for _, lbl in plain.samples][::3] == [3, 7, 9] and len(plain.class_names) == 10
    names = tmp_path / "names.txt"
    names.write_text("2 nine\n0 three\n1 seven\n")
    named = ImageNetDataset(image_root=root, cls_label_path=lst, delimiter="\t", relabel=True,
                            class_names_file=str(names))
    assert named.class_names == ["three", "seven", "nine"]
    with pytest.raises(ConfigError, match=r"ImageNetDataset.delimiter: expected a non-empty string, got ''"):
        ImageNetDataset(image_root=root, cls_label_path=lst, delimiter="")


def test_absolute_list_paths_inside_the_root_are_accepted(ppcls_root, tmp_path):
    """PaddleClas's lists may hold absolute paths; those under image_root (as given, or through a
    symbolic link to it) are inside it. Absolute paths elsewhere still escape it."""
    root = ppcls_root["root"]
    files = [os.path.join(root, "val", c, sorted(os.listdir(os.path.join(root, "val", c)))[0]) for c in "012"]
    link = tmp_path / "linked_root"
    link.symlink_to(root)
    absolute = tmp_path / "absolute.txt"
    absolute.write_text("".join(f"{f} {i}\n" for i, f in enumerate(files)))
    for image_root in (root, str(link)):
        ds = ImageNetDataset(image_root=image_root, cls_label_path=str(absolute))
        assert ds.samples == [(f, i) for i, f in enumerate(files)]
    outside = tmp_path / "outside.png"
    outside.write_bytes(open(files[0], "rb").read())
    for path in (str(outside), os.path.join(root, "..", os.path.basename(root), "..", "x.png")):
        (tmp_path / "escaping.txt").write_text(f"{path} 0\n")
        # a long path is shortened in the middle; its end (the file name) stays
        with pytest.raises(DataError, match=rf"escaping.txt:1: path '[^']*{re.escape(os.path.basename(path))}' "
                                            r"escapes the dataset root"):
            ImageNetDataset(image_root=root, cls_label_path=str(tmp_path / "escaping.txt"))


def test_imagenet_dataset_in_a_config_is_checked_against_its_options(ppcls_root, tmp_path):
    path = paddleclas_config(ppcls_root["root"], str(tmp_path), ppcls_root["label_map"])
    with pytest.raises(ConfigError, match=r"DataLoader\.Train\.dataset.*unknown key 'relable' \(did you mean "
                                          r"'relabel'\?\)"):
        load_config(path, ["DataLoader.Train.dataset.relable=true"])
    cfg = load_config(path, ["DataLoader.Train.dataset.relabel=true"])
    loader = build_dataloader(cfg, "Train", seed=0, class_num=3)
    images, labels, _ = next(iterate_loader(loader))
    assert images.shape == [16, 3, 32, 32] and sorted(set(labels.numpy().tolist())) <= [0, 1, 2]


# ----------------------------------------------------------------------------- label files

@pytest.mark.parametrize("text, names", [
    ("zero\none\ntwo\n", ["zero", "one", "two"]),                                   # names only
    ("0 tench, Tinca tinca\n1 goldfish\n\n2 great white shark\n",                   # PaddleClas's label map
     ["tench, Tinca tinca", "goldfish", "great white shark"]),
    ("1 one\n0 zero\n", ["zero", "one"]),                                           # ids in any order
    ("0\n1\n2\n", ["0", "1", "2"]),                                                 # names that are digits
    ("7 dwarfs\nsnow white\n", ["7 dwarfs", "snow white"]),                         # not every line has an id
])
def test_label_files_in_both_formats(tmp_path, text, names):
    (tmp_path / "labels.txt").write_text(text)
    assert read_label_file(str(tmp_path / "labels.txt")) == names


@pytest.mark.parametrize("text, msg", [
    ("0 a\n1 b\n1 c\n", r"labels\.txt:3: class id 1 appears twice"),
    ("0 a\n2 c\n", r"labels\.txt: a label map needs the ids 0…1, each once; id 1 is missing"),
    ("\n\n", r"labels\.txt: no class names"),
])
def test_label_file_errors(tmp_path, text, msg):
    (tmp_path / "labels.txt").write_text(text)
    with pytest.raises(DataError, match=msg):
        read_label_file(str(tmp_path / "labels.txt"))
    (tmp_path / "binary.txt").write_bytes(b"\xff\xfe\x00\x81")
    with pytest.raises(DataError, match=r"binary\.txt: not a UTF-8 text file"):
        read_label_file(str(tmp_path / "binary.txt"))


def test_a_run_label_list_in_label_map_format_names_the_classes(tmp_path):
    (tmp_path / "label_list.txt").write_text("1 cat\n0 dog\n")
    assert trained_class_names(str(tmp_path / "best_model")) == ["dog", "cat"]


# ----------------------------------------------------------------------------- the CHW rule

def test_the_chw_rule_and_contradictory_lists():
    assert output_layout(TRAIN_OPS) == "hwc" and ensure_chw(TRAIN_OPS) == TRAIN_OPS + [{"ToCHWImage": None}]
    assert ensure_chw(INFER_OPS) == INFER_OPS
    first = [{"DecodeImage": {"channel_first": True}}, {"NormalizeImage": {"order": "chw"}}]
    assert output_layout(first) == "chw" and ensure_chw(first) == first
    assert ensure_chw([]) == [] and output_layout([{"ResizeImage": {"size": 8}}]) is None  # nothing decoded
    with pytest.raises(ConfigError) as e:
        ensure_chw(first + [{"ToCHWImage": None}], "Infer.transforms")
    assert str(e.value) == ("Infer.transforms.2.ToCHWImage: the image is already CHW here "
                            "(DecodeImage.channel_first: true); remove one of the two")
    with pytest.raises(ConfigError) as e:
        ensure_chw([{"DecodeImage": None}, {"ToCHWImage": None}, NORMALIZE], "DataLoader.Eval.dataset.transform_ops")
    assert str(e.value) == ("DataLoader.Eval.dataset.transform_ops.2.NormalizeImage.order: '', but the image is CHW "
                            "here; set order: chw")
    check_model_input([4, 3, 32, 32], "x")
    with pytest.raises(ConfigError) as e:
        check_model_input([4, 32, 32, 3], "Infer.transforms")
    assert str(e.value) == ("Infer.transforms: the model takes NCHW batches with 3 channels, but these ops give a "
                            "batch of shape [4, 32, 32, 3]; end the list with ToCHWImage")


def test_a_batch_in_the_wrong_layout_is_a_config_error_naming_the_list(ppcls_root, tmp_path):
    path = paddleclas_config(ppcls_root["root"], str(tmp_path), ppcls_root["label_map"])
    # channel_first, then an HWC-only op: the batch comes out [N, 16, 16, 32]
    cfg = load_config(path, ["DataLoader.Train.dataset.transform_ops=[{DecodeImage: {channel_first: true}}, "
                             "{ResizeImage: {size: 16}}]"])
    with pytest.raises(ConfigError) as e:
        next(iterate_loader(build_dataloader(cfg, "Train", seed=0)))
    assert str(e.value).startswith("DataLoader.Train.dataset.transform_ops: the model takes NCHW batches with 3 "
                                   "channels, but these ops give a batch of shape [16, 16, 16, 32]; ")
    files = list_inputs(os.path.join(ppcls_root["root"], "val", "0"))[:2]

    class TwoSizes:
        sizes = iter([32, 16])

        def __call__(self, data, rng=None):
            return np.zeros((3,) + (next(self.sizes),) * 2, np.float32)

    with pytest.raises(ConfigError, match=r"^Infer\.transforms: the ops give images of different sizes \(\[3, 32, 32\] "
                                          r"for .*, \[3, 16, 16\] for .*\); resize or crop them to one size$"):
        list(iterate_batches(files, Compose([TwoSizes()], "Infer.transforms"), 2))


# ----------------------------------------------------------------------------- the whole job, PaddleClas-style

def test_a_paddleclas_style_run_trains_evaluates_exports_and_predicts(ppcls_root, tmp_path):
    root, label_map = ppcls_root["root"], ppcls_root["label_map"]
    out = str(tmp_path / "run")
    path = paddleclas_config(root, out, label_map)
    cfg = load_config(path, ["Global.epochs=2"])
    result = Trainer(cfg).train()
    assert 0.0 < result["best_metric"] <= 1.0 and result["best_epoch"] in (1, 2)
    weights = os.path.join(out, "MobileNetV2_x0_25", "best_model")
    evaluated = Evaluator(load_config(path, [f"Global.pretrained_model={weights}"])).evaluate()
    assert evaluated["top1"] == pytest.approx(result["best_metric"])

    inference = str(tmp_path / "inference")
    over = ["-o", f"Global.pretrained_model={weights}", "-o", f"Global.save_inference_dir={inference}"]
    r = _tool("tools/export_model.py", "-c", path, *over)
    assert r.returncode == 0, r.stderr
    meta = yaml.safe_load(open(os.path.join(inference, "inference.yml")))
    assert meta["transform_ops"] == EVAL_OPS + [{"ToCHWImage": None}]  # Eval's list, made to yield CHW
    assert meta["label_names"] == ["zero", "one", "two, the digit"]    # from the label map
    r = _tool("tools/predict.py", "--model_dir", inference, "--image", os.path.join(root, "val"), "--topk", "2")
    assert r.returncode == 0, r.stderr
    predicted = _top1(r.stdout)
    assert sorted(predicted) == list_inputs(os.path.join(root, "val"))
    assert {name for name, _ in predicted.values()} <= {"zero", "one", "two, the digit"}

    # tools/infer.py with PaddleClas's Infer.transforms (ending with ToCHWImage) agrees with the predictor
    path2 = paddleclas_config(root, str(tmp_path / "infer"), label_map, infer_ops=INFER_OPS)
    r = _tool("tools/infer.py", "-c", path2, "-o", f"Global.pretrained_model={weights}")
    assert r.returncode == 0, r.stderr
    inferred = _top1(r.stdout)
    assert sorted(inferred) == sorted(predicted)
    for f, (name, score) in inferred.items():
        assert name == predicted[f][0] and score == pytest.approx(predicted[f][1], abs=1e-4), f

    # an inference.yml whose list cannot give the model's input is one line and exit code 2 when the
    # folder is loaded, not a Paddle traceback
    meta["transform_ops"] = [{"DecodeImage": {"channel_first": True}}, {"ResizeImage": {"size": 16}}]
    with open(os.path.join(inference, "inference.yml"), "w") as f:
        yaml.safe_dump(meta, f)
    r = _tool("tools/predict.py", "--model_dir", inference, "--image", os.path.join(root, "val", "0"))
    assert r.returncode == 2 and "Traceback" not in r.stderr
    assert r.stderr.strip().startswith(f"ppnets: error: {os.path.join(inference, 'inference.yml')}: transform_ops: "
                                       "the preprocessing fails on a 389x517 image (error: OpenCV")
    assert len(r.stderr.strip().splitlines()) == 1
    # the same list on arrays of the right layout: a batch check names the list
    predictor_files = list_inputs(os.path.join(root, "val", "0"))
    with pytest.raises(ConfigError, match=r"the model takes NCHW batches with 3 channels"):
        next(iterate_batches(predictor_files, build_transforms([{"DecodeImage": None}, {"ResizeImage": {"size": 16}}],
                                                               "Infer.transforms"), 4))


def test_export_refuses_a_list_that_cannot_be_built(ppcls_root, tmp_path):
    path = paddleclas_config(ppcls_root["root"], str(tmp_path), ppcls_root["label_map"],
                             infer_ops=[{"DecodeImage": None}, {"ResizeImage": {"size": 32, "resize_short": 32}}])
    r = _tool("tools/export_model.py", "-c", path, "-o", "Global.pretrained_model=/nonexistent/weights")
    assert r.returncode == 2
    assert r.stderr.strip() == "ppnets: error: ResizeImage: give exactly one of 'size' or 'resize_short'"
    assert not os.path.exists(os.path.join(str(tmp_path), "inference"))
