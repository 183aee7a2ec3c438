"""The dataset checker (ppnets check-data, tools/check_dataset.py) on a generated dataset with one
of each defect, its reproducible --split, and the hint a training run's data error gives."""
from __future__ import annotations

import json
import os
import shutil

import cv2
import numpy as np
import pytest
from PIL import Image

from ppnets.cli import run
from ppnets.cli.check_data import main as check_data
from ppnets.data import CHECK_HINT, FailedSample, ImageFolder, build_dataloader
from ppnets.errors import DataError

from helpers.runs import load_small_config, load_tool

RNG = np.random.default_rng(0)


def _png(path: str, size=(16, 16), mode: str = "RGB") -> str:
    os.makedirs(os.path.dirname(path), exist_ok=True)
    shape = (size[1], size[0], 3) if mode == "RGB" else (size[1], size[0])
    Image.fromarray(RNG.integers(0, 256, shape, dtype=np.uint8), mode).save(path)
    return path


def _jpeg(path: str, mode: str = "RGB", orientation: int = 1) -> str:
    img = Image.fromarray(RNG.integers(0, 256, (16, 16, 3), dtype=np.uint8)).convert(mode)
    exif = Image.Exif()
    if orientation != 1:
        exif[0x0112] = orientation
    img.save(path, exif=exif)
    return path


@pytest.fixture(scope="module")
def defective(tmp_path_factory) -> dict:
    """train/{a,b,c}/ class folders and a flat val/ read through val_list.txt, with one of each defect."""
    root = str(tmp_path_factory.mktemp("defective"))
    train = os.path.join(root, "train")
    for cls in "abc":
        for i in range(5):
            _png(os.path.join(train, cls, f"{i}.png"))
    bad = {
        "unreadable": os.path.join(train, "a", "garbage.png"),
        "cmyk": _jpeg(os.path.join(train, "a", "cmyk.jpg"), "CMYK"),
        "exif-rotated": _jpeg(os.path.join(train, "a", "rotated.jpg"), orientation=6),
        "truncated": os.path.join(train, "b", "cut.png"),
        "16-bit": os.path.join(train, "b", "deep.png"),
        "size-outlier": _png(os.path.join(train, "b", "wide.png"), size=(80, 16)),
        "zero-byte": os.path.join(train, "c", "empty.png"),
        "grayscale": _png(os.path.join(train, "c", "gray.png"), mode="L"),
        "duplicate": os.path.join(train, "c", "dup.png"),
    }
    with open(bad["unreadable"], "wb") as f:
        f.write(b"label,value\n1,2\n")
    whole = open(_png(os.path.join(root, "whole.png"), size=(32, 32)), "rb").read()
    with open(bad["truncated"], "wb") as f:
        f.write(whole[:len(whole) // 2])
    cv2.imwrite(bad["16-bit"], RNG.integers(0, 65536, (16, 16, 3)).astype(np.uint16))
    open(bad["zero-byte"], "wb").close()
    shutil.copy(os.path.join(train, "c", "0.png"), bad["duplicate"])
    val = [(_png(os.path.join(root, "val", f"{i}.png")), i % 3) for i in range(6)]
    bad["leakage"] = shutil.copy(os.path.join(train, "a", "1.png"), os.path.join(root, "val", "leak.png"))
    lines = [f"val/{os.path.basename(p)} {label}" for p, label in val] + ["val/leak.png 0"]
    _png(os.path.join(root, "val", "extra.png"))
    lines += ["val/gone.png 1", "val/extra.png 3"]  # a path that does not exist, a label outside class_num=3
    with open(os.path.join(root, "val_list.txt"), "w") as f:
        f.write("\n".join(lines) + "\n")
    with open(os.path.join(root, "labels.txt"), "w") as f:
        f.write("a\nc\nb\n")  # not the order of the class folders
    return {"root": root, "bad": bad}


def test_every_defect_is_found_once(defective, tmp_path, capsys):
    root, bad = defective["root"], defective["bad"]
    with pytest.raises(SystemExit) as exc:
        run(check_data, ["--train", os.path.join(root, "train"), "--val", os.path.join(root, "val_list.txt"),
                         "--class-num", "3", "--label-map", os.path.join(root, "labels.txt"),
                         "--report", str(tmp_path / "report")])
    assert exc.value.code == 1
    out = capsys.readouterr().out.strip().splitlines()
    assert len(out) == 1 and out[0].startswith("check-data: FAILED: 7 errors (1 missing, 1 zero-byte, 1 unreadable, "
                                               "1 truncated, 1 label-range, 1 label-map, 1 leakage) and 6 warnings "
                                               "(1 cmyk, 1 16-bit, 1 grayscale, 1 exif-rotated, 1 size-outlier, "
                                               "1 duplicate) in 32 images (train 24, val 8)")
    report = json.load(open(tmp_path / "report.json"))
    assert not report["ok"] and (tmp_path / "report.md").read_text().startswith("# Dataset check\n\n**FAILED**")
    by_kind = {p["kind"]: p for p in report["problems"]}
    for kind, path in bad.items():
        if kind not in ("duplicate", "leakage"):  # a group: its files are listed below
            assert by_kind[kind]["path"] == path, kind
    assert by_kind["16-bit"]["message"].endswith("PNG RGB 16-bit: more than 8 bits per channel (scaled to 8 bits)")
    assert by_kind["truncated"]["message"].endswith("truncated PNG: the file ends before its IEND chunk")
    assert by_kind["size-outlier"]["message"].endswith("80×16, the median image is 16×16 (more than 4× off)")
    list_path = os.path.join(root, "val_list.txt")
    assert by_kind["missing"]["message"] == f"{list_path}:8: image not found: {os.path.join(root, 'val/gone.png')}"
    assert by_kind["label-range"]["message"] == f"{list_path}:9: label 3 out of range [0, 3) (Arch.class_num)"
    assert by_kind["label-map"]["message"].endswith("class 1 is 'c' in the map but folder 'b' (ImageFolder numbers "
                                                    "the sorted folder names)")
    assert sorted(by_kind["leakage"]["paths"]) == [f"[train] {os.path.join(root, 'train', 'a', '1.png')}",
                                                   f"[val] {list_path}:7 (label 0)"]
    assert by_kind["duplicate"]["split"] == "train"
    assert by_kind["duplicate"]["paths"] == [f"[train] {os.path.join(root, 'train', 'c', n)}" for n in ("0.png", "dup.png")]
    # counts per class and split, and the imbalance ratio (largest / smallest class)
    assert report["splits"]["train"]["classes"] == {"a": 8, "b": 8, "c": 8}
    assert report["splits"]["train"]["imbalance_ratio"] == 1.0
    assert report["splits"]["val"]["classes"] == {"a": 3, "c": 2, "b": 2, "3": 1}  # named by the label map
    assert report["splits"]["val"]["imbalance_ratio"] == 3.0


def test_a_clean_dataset_passes_and_decode_finds_a_corrupt_middle(tmp_path, capsys):
    root = tmp_path / "clean"
    for cls in "xy":
        for i in range(3):
            _png(str(root / cls / f"{i}.png"), mode="L")
    run(check_data, [str(root), "--report", str(tmp_path / "r")])
    assert capsys.readouterr().out.startswith("check-data: OK: 0 errors and 0 warnings in 6 images (all 6)")
    assert json.load(open(tmp_path / "r.json"))["notes"] == ["all 6 images are grayscale (decoded as RGB, the "
                                                             "channel repeated)"]   # shared by all: not a warning
    data = bytearray((root / "y" / "2.png").read_bytes())
    data[60:80] = bytes(20)  # header and end intact, pixel data corrupt: only decoding finds it
    (root / "y" / "2.png").write_bytes(bytes(data))
    run(check_data, [str(root), "--report", str(tmp_path / "r")])
    assert "check-data: OK" in capsys.readouterr().out
    with pytest.raises(SystemExit):
        run(check_data, [str(root), "--decode", "--report", str(tmp_path / "r")])
    assert capsys.readouterr().out.startswith("check-data: FAILED: 1 error (1 unreadable) and 0 warnings")
    assert json.load(open(tmp_path / "r.json"))["problems"][0]["message"] == \
        f"{root / 'y' / '2.png'}: not a decodable image (corrupt, truncated or not an image)"


def _split(root, out, seed, *extra):
    run(check_data, [root, "--split", "0.8", "--seed", str(seed), "--out", out, "--report", os.path.join(out, "r")]
        + list(extra))
    return {f: open(os.path.join(out, f)).read() for f in ("train_list.txt", "val_list.txt", "label_list.txt")}


def test_split_is_stratified_and_reproducible(tmp_path, capsys):
    root = str(tmp_path / "all")
    for cls, n in (("cat", 7), ("dog", 5), ("eel", 2)):
        for i in range(n):
            _png(os.path.join(root, cls, f"{i}.png"), size=(4, 4))
    first = _split(root, str(tmp_path / "s1"), 1)
    assert first == _split(root, str(tmp_path / "s2"), 1)              # same seed: the same bytes
    assert first["train_list.txt"] != _split(root, str(tmp_path / "s3"), 2)["train_list.txt"]
    assert first["label_list.txt"] == "0 cat\n1 dog\n2 eel\n"
    rows = {s: [line.split() for line in first[f"{s}_list.txt"].splitlines()] for s in ("train", "val")}
    per_class = {s: [sum(1 for _, label in r if label == str(c)) for c in range(3)] for s, r in rows.items()}
    assert per_class == {"train": [6, 4, 1], "val": [1, 1, 1]}     # round(0.8 n), at least one each side
    assert all(path.split("/")[0] == ["cat", "dog", "eel"][int(label)] for path, label in rows["train"] + rows["val"])
    assert sorted(p for p, _ in rows["train"] + rows["val"]) == sorted(
        f"{c}/{i}.png" for c, n in (("cat", 7), ("dog", 5), ("eel", 2)) for i in range(n))
    assert "check-data: OK" in capsys.readouterr().out                  # the written lists are checked
    with pytest.raises(SystemExit) as exc:                               # never overwritten unasked
        run(check_data, [root, "--split", "0.8", "--out", str(tmp_path / "s1")])
    assert exc.value.code == 2
    assert capsys.readouterr().err == (f"ppnets: error: {tmp_path / 's1' / 'train_list.txt'} exists: add --overwrite "
                                       "to replace it, or write elsewhere with --out DIR\n")


def test_a_training_data_error_names_the_checker(tmp_path, digits_slice):
    cfg = load_small_config(digits_slice, str(tmp_path), **{"DataLoader.Train.dataset.root": str(tmp_path / "nope")})
    with pytest.raises(DataError) as e:
        build_dataloader(cfg, "Train")
    assert str(e.value) == (f"dataset root not found: {tmp_path / 'nope'} (expected a folder with one sub-folder per "
                            "class); ppnets check-data -c CONFIG lists every problem of the dataset")
    root = tmp_path / "data"
    _png(str(root / "a" / "0.png"))
    (root / "a" / "1.png").write_bytes(b"")
    failed = ImageFolder(str(root), [{"DecodeImage": {}}])[1]         # what a run with bad_image: stop raises
    assert isinstance(failed, FailedSample) and failed.message == f"{root / 'a' / '1.png'}: empty file (0 bytes){CHECK_HINT}"


def test_the_tool_is_the_command():
    assert load_tool("check_dataset").main is check_data
