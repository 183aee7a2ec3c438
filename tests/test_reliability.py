"""Fault injection: every bad input is one clear stderr line with exit code 2, and nothing is lost.

Each test is one case of docs/reliability.md. Most run the real tool ``main`` in-process
through ``ppnets.cli.run`` (the path the scripts take); a few run the scripts as
subprocesses to show the behaviour end to end.
"""
from __future__ import annotations

import ast
import glob
import os
import re
import shutil
import subprocess
import sys

import cv2
import numpy as np
import paddle
import pytest

import ppnets
from ppnets.checkpoint import sets as ckpt
from ppnets.cli import run
from ppnets.data import CHECK_HINT

from helpers.cli import CONFIG, tool_main, train_args, user_error
from helpers.runs import REPO


# ----------------------------------------------------------------------------- config and command line

def test_missing_config_file(capsys):
    assert user_error("train", ["-c", "configs/missing.yaml"], capsys) == "config file not found: configs/missing.yaml"


def test_malformed_yaml(tmp_path, capsys):
    bad = tmp_path / "bad.yaml"
    bad.write_text("Global: {epochs: 3\nArch: x\n")
    assert re.fullmatch(r".*bad\.yaml: line \d+ column \d+: malformed YAML: .+", user_error("train", ["-c", str(bad)], capsys))


def test_unknown_section_with_did_you_mean(capsys):
    msg = user_error("train", ["-c", CONFIG, "-o", "Optimzer.name=SGD"], capsys)
    assert msg.startswith("unknown section 'Optimzer' (did you mean 'Optimizer'?)")


def test_unknown_key_with_did_you_mean(capsys):
    msg = user_error("train", ["-c", CONFIG, "-o", "Global.print_batch_steps=5"], capsys)
    assert msg.startswith("Global: unknown key 'print_batch_steps' (did you mean 'print_batch_step'?)")


def test_wrong_value_type(capsys):
    msg = user_error("train", ["-c", CONFIG, "-o", "DataLoader.Train.sampler.batch_size=many"], capsys)
    assert msg == "DataLoader.Train.sampler.batch_size: expected int, got 'many' (str)"


def test_bad_override_syntax(capsys):
    assert user_error("train", ["-c", CONFIG, "-o", "Global.epochs"], capsys) == \
        "bad override 'Global.epochs': expected Section.key=value (or Section.list.+=value, ~Section.key)"


@pytest.mark.parametrize("override, expected", [
    ("Arch.name=MobileNetV4", "Arch.name: unknown model 'MobileNetV4'"),
    ("DataLoader.Train.dataset.transform_ops.1={RandomResizedCrop: {size: 32}}",
     "DataLoader.Train.dataset.transform_ops.1: unknown transform op 'RandomResizedCrop'"),
    ("Optimizer.name=Lamb", "Optimizer.name: unknown optimizer 'Lamb'"),
    ("Optimizer.lr.name=Linear", "Optimizer.lr.name: unknown LR schedule 'Linear'"),
    ("Loss.Train.0={SmoothL1Loss: {}}", "Loss.Train.0: unknown loss 'SmoothL1Loss'"),
    ("Metric.Eval.0={Recall: {}}", "Metric.Eval.0: unknown metric 'Recall'"),
])
def test_unknown_component_names_list_the_valid_ones(override, expected, capsys):
    msg = user_error("train", ["-c", CONFIG, "-o", override], capsys)
    # small registries list every name; the model registry only the closest few
    assert msg.startswith(expected) and ("; valid: " in msg or "; closest: " in msg and len(msg) < 300)


# ----------------------------------------------------------------------------- datasets

def test_missing_dataset_root(tmp_path, capsys):
    msg = user_error("train", train_args("/nonexistent", str(tmp_path / "o")), capsys)
    assert msg.startswith("dataset root not found: /nonexistent/train")


def test_empty_class_folder(data, tmp_path, capsys):
    os.makedirs(os.path.join(data, "train", "9"))
    msg = user_error("train", train_args(data, str(tmp_path / "o")), capsys)
    assert msg == f"{os.path.join(data, 'train', '9')}: class folder has no images " \
        "(.jpg, .jpeg, .png, .bmp, .ppm, .pgm, .tif, .tiff, .webp)" + CHECK_HINT


def test_train_and_val_class_folders_differ(data, tmp_path, capsys):
    shutil.rmtree(os.path.join(data, "val", "2"))
    msg = user_error("train", train_args(data, str(tmp_path / "o")), capsys)
    assert msg == f"{os.path.join(data, 'val')}: class folders differ from the training classes " \
        "(missing: ['2'], unexpected: none)" + CHECK_HINT


@pytest.mark.parametrize("content, reason", [
    (b"\x89PNG\r\n\x1a\n\x00\x00\x00\rIHDR", "not a decodable image"),      # truncated
    (b"", "empty file (0 bytes)"),                                            # zero bytes
    (b"label,value\n1,2\n", "not a decodable image"),                         # not an image
])
def test_bad_image_stops_and_names_the_path(data, tmp_path, capsys, content, reason):
    bad = os.path.join(data, "train", "1", "zz_bad.png")
    with open(bad, "wb") as f:
        f.write(content)
    msg = user_error("train", train_args(data, str(tmp_path / "o"), **{"DataLoader.Train.sampler.shuffle": False,
                                                                        "DataLoader.Train.sampler.batch_size": 5}),
                     capsys)
    assert msg.startswith(f"{bad}: {reason}")


def test_grayscale_rgba_and_16bit_png_inputs_train(data, tmp_path):
    cls = os.path.join(data, "train", "0")
    cv2.imwrite(os.path.join(cls, "gray.png"), np.full((32, 32), 128, np.uint8))
    cv2.imwrite(os.path.join(cls, "rgba.png"), np.full((32, 32, 4), 200, np.uint8))
    cv2.imwrite(os.path.join(cls, "deep.png"), np.full((32, 32), 40000, np.uint16))
    run(tool_main("train"), train_args(data, str(tmp_path / "o"), **{"Global.epochs": 1,
                                                                   "DataLoader.Train.sampler.batch_size": 9}))
    assert os.path.isfile(os.path.join(str(tmp_path / "o"), "MobileNetV2_x0_25", "latest.pdparams"))


def _file_list(data, tmp_path, lines):
    path = tmp_path / "list.txt"
    path.write_text("\n".join(lines) + "\n")
    return {"DataLoader.Train.dataset": "{name: FileListDataset, image_root: %s, cls_label_path: %s, class_num: 3, "
                                        "transform_ops: [{DecodeImage: {}}, {NormalizeImage: {}}, {ToCHWImage: {}}]}"
                                        % (os.path.join(data, "train"), path)}


def _first(data, cls):
    return f"{cls}/" + sorted(os.listdir(os.path.join(data, "train", cls)))[0]


def test_file_list_with_a_missing_file(data, tmp_path, capsys):
    extra = _file_list(data, tmp_path, [f"{_first(data, '0')} 0", "0/gone.png 0"])
    msg = user_error("train", train_args(data, str(tmp_path / "o"), **extra), capsys)
    assert msg == f"{tmp_path / 'list.txt'}:2: image not found: {os.path.join(data, 'train', '0/gone.png')}{CHECK_HINT}"


def test_file_list_with_a_bad_label(data, tmp_path, capsys):
    extra = _file_list(data, tmp_path, [f"{_first(data, '0')} zero"])
    assert user_error("train", train_args(data, str(tmp_path / "o"), **extra), capsys) == \
        f"{tmp_path / 'list.txt'}:1: label must be an integer, got 'zero'{CHECK_HINT}"


def test_file_list_label_not_below_class_num(data, tmp_path, capsys):
    extra = _file_list(data, tmp_path, [f"{_first(data, '0')} 0", f"{_first(data, '1')} 3"])
    assert user_error("train", train_args(data, str(tmp_path / "o"), **extra), capsys) == \
        f"{tmp_path / 'list.txt'}:2: label 3 out of range [0, 3){CHECK_HINT}"


def test_file_list_path_escaping_the_root(data, tmp_path, capsys):
    extra = _file_list(data, tmp_path, [f"../val/{_first(data, '0')} 0"])
    msg = user_error("train", train_args(data, str(tmp_path / "o"), **extra), capsys)
    assert "escapes the dataset root" in msg and "allow_outside_root: true" in msg


def test_class_num_mismatching_the_dataset(data, tmp_path, capsys):
    msg = user_error("train", train_args(data, str(tmp_path / "o"), **{"Arch.class_num": 5}), capsys)
    assert msg == "Arch.class_num=5 but the dataset has 3 classes (0, 1, 2)"


def test_batch_size_larger_than_the_dataset(data, tmp_path, capsys):
    msg = user_error("train", train_args(data, str(tmp_path / "o"), **{"DataLoader.Train.sampler.batch_size": 64}),
                     capsys)
    assert msg == ("DataLoader.Train.sampler.batch_size=64 is larger than the dataset (24 samples) and drop_last is "
                   "true: no batch would be produced")


def test_worker_exception_surfaces_with_the_file_path(data, tmp_path, capsys):
    bad = os.path.join(data, "train", "2", "zz_bad.png")
    open(bad, "wb").write(b"junk")
    msg = user_error("train", train_args(data, str(tmp_path / "o"), **{"DataLoader.Train.loader.num_workers": 2,
                                                                        "DataLoader.Train.sampler.batch_size": 5,
                                                                        "DataLoader.Train.sampler.shuffle": False}),
                     capsys)
    assert msg.startswith(f"{bad}: not a decodable image")


# ----------------------------------------------------------------------------- weights and checkpoints


def test_pretrained_file_missing(data, tmp_path, capsys):
    msg = user_error("train", train_args(data, str(tmp_path / "o"), **{"Global.pretrained_model": "/no/such/w"}), capsys)
    assert msg == "weights file not found: /no/such/w.pdparams"


def test_pretrained_file_with_no_matching_shape(trained, data, tmp_path, capsys):
    msg = user_error("train", train_args(data, str(tmp_path / "o"), **{"Arch.name": "ShuffleNetV2_x0_5",
                                                                        "Global.pretrained_model": trained["prefix"]}),
                     capsys)
    assert msg.startswith(f"pretrained weights {trained['prefix']}.pdparams share no key and shape with the model")


def test_pretrained_file_truncated(trained, data, tmp_path, capsys):
    blob = open(trained["prefix"] + ".pdparams", "rb").read()
    (tmp_path / "cut.pdparams").write_bytes(blob[: len(blob) // 3])
    msg = user_error("train", train_args(data, str(tmp_path / "o"), **{
        "Global.pretrained_model": str(tmp_path / "cut")}), capsys)
    assert msg.startswith(f"cannot read weights file {tmp_path / 'cut.pdparams'}: truncated or not a Paddle file")


def test_checkpoint_from_another_architecture(trained, data, tmp_path, capsys):
    msg = user_error("train", train_args(data, str(tmp_path / "o"), **{"Arch.name": "MobileNetV2_x0_5",
                                                                        "Global.checkpoints": trained["prefix"]}),
                     capsys)
    assert msg == (f"checkpoint {trained['prefix']} was saved from Arch.name=MobileNetV2_x0_25, but the config builds "
                   "MobileNetV2_x0_5")


# ----------------------------------------------------------------------------- the training run


def test_output_dir_not_writable(data, tmp_path, capsys):
    locked = tmp_path / "locked"
    locked.mkdir()
    (locked / "MobileNetV2_x0_25").write_text("a file where the run folder should be")
    msg = user_error("train", train_args(data, str(locked)), capsys)
    assert msg.startswith(f"Global.output_dir: cannot write to {locked / 'MobileNetV2_x0_25'}: ")


def test_full_disk_while_saving_keeps_the_previous_checkpoint(data, tmp_path, capsys, monkeypatch):
    out = str(tmp_path / "o")
    run(tool_main("train"), train_args(data, out, **{"Global.epochs": 1}))
    prefix = os.path.join(out, "MobileNetV2_x0_25", "latest")
    before = {p: open(p, "rb").read() for p in glob.glob(prefix + ".*")}
    import ppnets.checkpoint.sets as ck
    real = ck._write_synced

    def full_disk(path, blob):
        if path.startswith(prefix + ".pdopt"):
            raise OSError(28, "No space left on device")
        real(path, blob)

    monkeypatch.setattr(ck, "_write_synced", full_disk)
    msg = user_error("train", train_args(data, out, **{"Global.epochs": 2, "Global.checkpoints": prefix}), capsys)
    assert msg == f"cannot write checkpoint {prefix}: No space left on device"
    assert {p: open(p, "rb").read() for p in glob.glob(prefix + ".*")} == before  # untouched, no temp files left


# ----------------------------------------------------------------------------- security

def test_no_eval_or_exec_in_the_code():
    offenders = []
    for folder in ("ppnets", "tools"):
        for path in glob.glob(os.path.join(REPO, folder, "**", "*.py"), recursive=True):
            tree = ast.parse(open(path, encoding="utf-8").read(), path)
            for node in ast.walk(tree):
                if isinstance(node, ast.Call) and isinstance(node.func, ast.Name) and node.func.id in ("eval", "exec"):
                    offenders.append(f"{path}:{node.lineno}")
    assert not offenders


def test_yaml_is_only_safe_loaded():
    for folder in ("ppnets", "tools"):
        for path in glob.glob(os.path.join(REPO, folder, "**", "*.py"), recursive=True):
            text = open(path, encoding="utf-8").read()
            assert not re.search(r"yaml\.(unsafe_load|full_load|load_all)\(|Loader=yaml\.(Full|Unsafe)?Loader\b", text), path
            for m in re.finditer(r"yaml\.load\(([^)]*)\)", text):
                assert "Loader=_Loader" in m.group(1), f"{path}: {m.group(0)}"


def test_user_error_through_the_real_script_has_no_traceback_unless_debug():
    r = subprocess.run([sys.executable, "tools/train.py", "-c", "configs/mobilenetv2.yaml", "-o", "Global.epochs=x"],
                       cwd=REPO, capture_output=True, text=True, timeout=300)
    assert r.returncode == 2 and r.stderr.strip() == "ppnets: error: Global.epochs: expected int, got 'x' (str)"
    r = subprocess.run([sys.executable, "tools/train.py", "-c", "configs/mobilenetv2.yaml", "-o", "Global.epochs=x",
                        "--debug"], cwd=REPO, capture_output=True, text=True, timeout=300)
    assert r.returncode == 1 and "Traceback (most recent call last)" in r.stderr


def test_internal_errors_keep_their_traceback():
    code = ("from ppnets.cli import run\n"
            "def main(argv): raise RuntimeError('boom')\n"
            "run(main, [])\n")
    r = subprocess.run([sys.executable, "-c", code], cwd=REPO, capture_output=True, text=True, timeout=300)
    assert r.returncode == 1 and "Traceback" in r.stderr and "RuntimeError: boom" in r.stderr


@pytest.mark.parametrize("policy", ["skip", "warn"])
def test_bad_images_can_be_skipped_and_counted(data, tmp_path, policy):
    bad = [os.path.join(data, "train", "1", "zz_bad.png"), os.path.join(data, "train", "2", "zz_empty.png")]
    open(bad[0], "wb").write(b"not a png")
    open(bad[1], "wb").write(b"")
    out = str(tmp_path / "o")
    run(tool_main("train"), train_args(data, out, **{"Global.epochs": 1, "DataLoader.Train.sampler.batch_size": 13,
                                                 "DataLoader.Train.loader.num_workers": 2,
                                                 "DataLoader.Train.dataset.bad_image": policy}))
    log = open(os.path.join(out, "MobileNetV2_x0_25", "train.log")).read()
    assert "[Train][Epoch 1] skipped 2 unreadable image(s) (DataLoader.Train.dataset.bad_image: " + policy + ")" in log
    assert ("skipping unreadable image: " + bad[0] in log) == (policy == "warn")
    assert re.search(r"\[Iter 2/2\].*ips", log)  # both batches trained (26 files, 24 readable)


def test_unknown_bad_image_policy(data, tmp_path, capsys):
    msg = user_error("train", train_args(data, str(tmp_path / "o"), **{"DataLoader.Train.dataset.bad_image": "ignore"}),
                     capsys)
    assert msg == "ImageFolder.bad_image: expected one of stop, skip, warn, got 'ignore'"


# ----------------------------------------------------------------------------- interrupted saves, partial files

class _Killed(BaseException):
    """Stands for SIGKILL: nothing after it runs, not even except-clauses for Exception."""


@pytest.mark.parametrize("flag", ["--topk", "--batch_size", "--threads"])
def test_predict_counts_must_be_positive(tmp_path, capsys, flag):
    args = ["--model_dir", str(tmp_path), "--image", str(tmp_path), flag, "0"]
    assert user_error("predict", args, capsys) == f"{flag}: expected a positive integer, got 0"


def test_second_interrupted_save_still_leaves_a_complete_checkpoint(tmp_path, monkeypatch):
    model = paddle.nn.Linear(3, 2)
    prefix = str(tmp_path / "latest")
    first = {k: v.numpy().copy() for k, v in model.state_dict().items()}
    ckpt.save_checkpoint(prefix, model, None, {"epoch": 1})
    real_replace = os.replace

    def killed_after_first_file(src, dst):
        real_replace(src, dst)
        raise _Killed()

    for epoch in (2, 3):  # the run resumes from the backup, and is killed again while saving
        with paddle.no_grad():
            model.weight.set_value(model.weight + 1.0)
        monkeypatch.setattr(ckpt.os, "replace", killed_after_first_file)
        with pytest.raises(_Killed):
            ckpt.save_checkpoint(prefix, model, None, {"epoch": epoch})
        monkeypatch.setattr(ckpt.os, "replace", real_replace)
        restored = paddle.nn.Linear(3, 2)
        states = ckpt.load_checkpoint(prefix, restored, None)
        assert states["epoch"] == 1
        for key, value in restored.state_dict().items():
            assert (value.numpy() == first[key]).all(), key
    # the next save that completes replaces everything and leaves no backup or temporary file behind
    ckpt.save_checkpoint(prefix, model, None, {"epoch": 4})
    assert ckpt.load_checkpoint(prefix, paddle.nn.Linear(3, 2), None)["epoch"] == 4
    assert sorted(os.listdir(tmp_path)) == ["latest.pdparams", "latest.pdstates"]


def test_atomic_open_keeps_the_old_file_when_writing_fails(tmp_path):
    from ppnets.utils.files import atomic_open, atomic_write
    path = str(tmp_path / "label_list.txt")
    atomic_write(path, "a\nb\n")
    with pytest.raises(OSError):
        with atomic_open(path, "w", encoding="utf-8") as f:
            f.write("half")
            raise OSError("disk full")
    assert open(path, encoding="utf-8").read() == "a\nb\n"
    assert os.listdir(tmp_path) == ["label_list.txt"]


@pytest.mark.slow
def test_export_writes_only_complete_files(tmp_path):
    from ppnets.export import save_inference_model
    out = str(tmp_path / "inference")
    save_inference_model(ppnets.build_model("MobileNetV2_x0_25", class_num=3), out, [3, 32, 32], {"label_names": None})
    assert sorted(os.listdir(out)) == ["inference.json", "inference.pdiparams", "inference.yml"]
