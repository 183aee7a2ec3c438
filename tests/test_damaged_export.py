"""tools/predict.py on a damaged, tampered or mixed-up export folder, and tools/export_model.py
replacing one: one line naming the file, and an export folder that is one unit (docs/reliability.md,
"Export folders")."""
from __future__ import annotations

import os
import shutil
import subprocess

import onnx
import paddle
import pytest
import yaml

import ppnets
from ppnets.cli import run
from ppnets.deploy import Predictor
from ppnets.deploy import folders
from ppnets.deploy.exported import check_export_files, file_digests, read_export_meta, write_export_meta
from ppnets.deploy.folders import commit_folder, staging_folder

from helpers.cli import tool_main, train_args, user_error


@pytest.fixture(scope="module")
def export_dir(trained, tmp_path_factory):  # noqa: F811
    """The trained digits model exported to Paddle + ONNX (3 classes, 32 px)."""
    out = str(tmp_path_factory.mktemp("export"))
    run(tool_main("export_model"), train_args(trained["data"], out, **{"Global.pretrained_model": trained["prefix"],
                                                                   "Global.save_inference_dir": out,
                                                                   "Export.formats": "[paddle,onnx]"}))
    return {"dir": out, "images": os.path.join(trained["data"], "val", "0"), "data": trained["data"]}


def _damaged(export_dir, tmp_path, damage):
    bad = str(tmp_path / "bad")
    shutil.copytree(export_dir["dir"], bad)
    damage(bad)
    return bad


def _truncate(path, size=5000):
    with open(path, "r+b") as f:
        f.truncate(size)


def _flip_a_byte(path):
    with open(path, "r+b") as f:
        f.seek(os.path.getsize(path) // 2)
        byte = f.read(1)
        f.seek(-1, os.SEEK_CUR)
        f.write(bytes([byte[0] ^ 0xFF]))


def _edit_meta(folder, edit):
    meta_path = os.path.join(folder, "inference.yml")
    meta = yaml.safe_load(open(meta_path))
    edit(meta)
    yaml.safe_dump(meta, open(meta_path, "w"))


def _relisted(folder):
    """Record the folder's files as they now are, as someone tampering with it would."""
    _edit_meta(folder, lambda meta: meta.update(files=file_digests(folder)))


def _replace(path, content):
    if os.path.lexists(path):
        os.remove(path)
    if isinstance(content, str) and content.startswith("->"):
        os.symlink(content[2:], path)
    else:
        open(path, "wb").write(content)
    _relisted(os.path.dirname(path))


def _with_external_data(folder, location):
    """inference.onnx with its weights in an external file at ``location`` (relisted)."""
    path = os.path.join(folder, "inference.onnx")
    model = onnx.load(path)
    onnx.external_data_helper.convert_model_to_external_data(model, location=location, size_threshold=0)
    open(path, "wb").write(model.SerializeToString())
    _relisted(folder)


def _transforms(folder, resize, shape=None):
    def edit(meta):
        meta["transform_ops"][1] = {"ResizeImage": resize}
        meta["input_shape"] = shape or meta["input_shape"]
    _edit_meta(folder, edit)


def test_the_intact_export_predicts(export_dir, capsys):
    run(tool_main("predict"), ["--model_dir", export_dir["dir"], "--image", export_dir["images"]])
    assert capsys.readouterr().out.count(": ") >= 4


REEXPORT = "re-export it with tools/export_model.py"


@pytest.mark.parametrize("damage, expected, args", [
    (lambda d: open(os.path.join(d, "inference.yml"), "w").close(),
     "{d}/inference.yml: empty; " + REEXPORT, []),
    (lambda d: open(os.path.join(d, "inference.yml"), "w").write("transform_ops: 5\n"),
     "{d}/inference.yml: 'transform_ops' must be a list of {{Op: {{options}}}} items, got 5; " + REEXPORT, []),
    (lambda d: open(os.path.join(d, "inference.yml"), "w").write("[1, 2]\n"),
     "{d}/inference.yml: expected a mapping of sections at the top level, got list", []),
    (lambda d: open(os.path.join(d, "inference.yml"), "w").write("a: [1\n"),
     "{d}/inference.yml: line 2 column 1: malformed YAML: expected ',' or ']', but got '<stream end>'", []),
    (lambda d: _truncate(os.path.join(d, "inference.pdiparams")),
     "{d}/inference.pdiparams: 5000 bytes, but inference.yml records {size} (truncated, or from another export?); "
     + REEXPORT, []),
    (lambda d: _flip_a_byte(os.path.join(d, "inference.pdiparams")),
     "{d}/inference.pdiparams: its content differs from what inference.yml records (damaged, or from another "
     "export?); " + REEXPORT, []),
    (lambda d: (_edit_meta(d, lambda m: m.pop("files")), _truncate(os.path.join(d, "inference.pdiparams"))),
     "{d}/inference.yml: records no 'files' (their sizes and digests; an export of an older ppnets?); " + REEXPORT,
     []),
    # a model file of another export beside this one's
    (lambda d: _edit_meta(d, lambda m: m["files"].pop("inference.onnx")),
     "{d}/inference.onnx: not listed in inference.yml, so it is not part of this export (left from another model?); "
     "remove it, or " + REEXPORT, ["--backend", "paddle"]),
    (lambda d: shutil.copy(os.path.join(d, "inference.onnx"), os.path.join(d, "inference.int8.onnx")),
     "{d}/inference.int8.onnx: not listed in inference.yml, so it is not part of this export (left from another "
     "model?); remove it, or run tools/quantize.py again", []),
    # tampered files, their digests recorded again
    (lambda d: _replace(os.path.join(d, "inference.onnx"), "->/etc/passwd"),
     "{d}/inference.onnx: a symbolic link (to '/etc/passwd'); an export folder holds its own files, so it is not "
     "followed; " + REEXPORT, []),
    (lambda d: _replace(os.path.join(d, "inference.onnx"), b"root:x:0:0:root:/root:/bin/bash\n"),
     "{d}/inference.onnx: not an ONNX model (DecodeError); " + REEXPORT, ["--backend", "openvino"]),
    (lambda d: _replace(os.path.join(d, "inference.int8.onnx"), b"\x08\x07\x12\x00"),
     "{d}/inference.int8.onnx: not an ONNX model (no graph with inputs, nodes and outputs); run tools/quantize.py "
     "again", ["--precision", "int8"]),
    (lambda d: _with_external_data(d, "../../../../etc/passwd"),
     "{d}/inference.onnx: the external data of tensor '{tensor}' are at '../../../../etc/passwd', outside the export "
     "folder: refused; " + REEXPORT, []),
    (lambda d: (_with_external_data(d, "weights.bin"), open(os.path.join(d, "weights.bin"), "wb").close()),
     "{d}/inference.onnx: the external data of tensor '{tensor}' are at 'weights.bin', a file inference.yml does not "
     "list: refused; " + REEXPORT, []),
    # preprocessing that does not fit the model
    (lambda d: _transforms(d, {"size": 64}),
     "{d}/inference.yml: transform_ops: the preprocessing gives [3, 64, 64] images, but the model takes input_shape "
     "[3, 32, 32]; " + REEXPORT, []),
    (lambda d: _transforms(d, {"size": 64}, [3, 64, 64]),
     "{d}/inference.json: the model takes inputs of shape ['N', 3, 32, 32], but inference.yml says input_shape "
     "[3, 64, 64]; " + REEXPORT, ["--backend", "paddle"]),
    (lambda d: _transforms(d, {"size": [16384, 16384]}),
     "{d}/inference.yml: transform_ops: ResizeImage.size: 16384x16384 is 268,435,456 pixels, more than the "
     "100,000,000 an image may have (the decoding limit, DecodeImage.max_pixels); " + REEXPORT, []),
    (lambda d: _transforms(d, {"resize_short": 9000}),
     "{d}/inference.yml: transform_ops: the preprocessing fails on a 389x517 image (ResizeImage: resizing a 389x517 "
     "image to short side 9000 gives 9000x11961, more than 100,000,000 pixels (the decoding limit)); " + REEXPORT, []),
    (lambda d: _edit_meta(d, lambda m: m.update(transform_ops=[{"ToCHWImage": None}])),
     "{d}/inference.yml: transform_ops: must begin with DecodeImage (the export's preprocessing reads image files), "
     "got {{'ToCHWImage': None}}; " + REEXPORT, []),
    (lambda d: _edit_meta(d, lambda m: m.update(label_names=[str(i) for i in range(10)])),
     "{d}/inference.yml: 10 label names for 3 classes (class_num); " + REEXPORT, []),
], ids=["empty-yml", "bad-transform-ops", "yml-not-a-mapping", "malformed-yml", "truncated-pdiparams",
        "changed-pdiparams", "no-recorded-files", "unlisted-onnx", "unlisted-int8", "symlink", "not-onnx",
        "not-onnx-int8", "external-data-outside", "external-data-unlisted", "resize-not-input-shape",
        "input-shape-not-the-model's", "huge-resize", "huge-resize-short", "no-decode", "label-names"])
def test_a_damaged_export_dir(damage, expected, args, export_dir, tmp_path, capsys):
    bad = _damaged(export_dir, tmp_path, damage)
    size = os.path.getsize(os.path.join(export_dir["dir"], "inference.pdiparams"))
    tensor = onnx.load(os.path.join(export_dir["dir"], "inference.onnx")).graph.initializer[0].name
    msg = user_error("predict", ["--model_dir", bad, "--image", export_dir["images"], *args], capsys)
    assert msg == expected.format(d=bad, size=size, tensor=tensor)


def _dead_pid():
    proc = subprocess.Popen(["true"])
    proc.wait()
    return proc.pid


def test_a_reexport_replaces_the_whole_folder(export_dir, tmp_path, capsys):
    """Model A (Paddle + ONNX + INT8) re-exported as model B (Paddle only) into the same folder: nothing
    of A is left, so neither --backend auto nor --precision int8 can answer with A; the temporaries of
    killed exports are removed."""
    folder = str(tmp_path / "inference")
    shutil.copytree(export_dir["dir"], folder)
    # A's INT8 files, recorded as tools/quantize.py records them (its graph stands in for a quantized one)
    shutil.copy(os.path.join(folder, "inference.onnx"), os.path.join(folder, "inference.int8.onnx"))
    open(os.path.join(folder, "inference.int8.json"), "w").write("{}")
    write_export_meta(folder, read_export_meta(folder))
    assert Predictor(folder, precision="int8").backend == "onnxruntime"   # A complete, with INT8
    dead = _dead_pid()
    leftovers = [str(tmp_path / f".inference.export.tmp.{dead}"), str(tmp_path / f".inference.export.old.{dead}"),
                 os.path.join(folder, f".export.tmp.{dead}")]   # the last: written by older ppnets
    for path in leftovers:
        os.makedirs(path)
        open(os.path.join(path, "inference.onnx"), "w").write("half")
    paddle.seed(5)
    weights = str(tmp_path / "b.pdparams")
    paddle.save(ppnets.build_model("PPLCNet_x0_25", class_num=3).state_dict(), weights)
    run(tool_main("export_model"), train_args(export_dir["data"], str(tmp_path / "o"), **{
        "Arch.name": "PPLCNet_x0_25", "Global.pretrained_model": weights, "Global.save_inference_dir": folder}))
    assert sorted(os.listdir(folder)) == ["inference.json", "inference.pdiparams", "inference.yml",
                                          "inference_cls.yaml"]   # B's weights name no classes: no label map
    assert sorted(os.listdir(tmp_path)) == ["b.pdparams", "inference"]
    b = Predictor(folder)
    assert b.meta["model_name"] == "PPLCNet_x0_25" and b.backend == "paddle"
    assert user_error("predict", ["--model_dir", folder, "--image", export_dir["images"], "--precision", "int8"],
                      capsys) == f"{folder}: no int8 model for any installed runtime (looked for inference.int8.onnx)"


def test_an_export_interrupted_between_its_renames_is_restored(export_dir, tmp_path, caplog, monkeypatch):
    """Where the atomic exchange is unavailable the swap is two renames; killed between them, the folder
    is missing and the previous export sits aside: the next export (or quantize) puts it back first."""
    folder = str(tmp_path / "inference")
    aside = str(tmp_path / f".inference.export.old.{_dead_pid()}")
    shutil.copytree(export_dir["dir"], aside)
    stage = staging_folder(folder)
    assert os.path.isdir(stage) and sorted(os.listdir(folder)) == sorted(os.listdir(export_dir["dir"]))
    assert not os.path.exists(aside) and f"{folder}: restored the previous export from {aside}" in caplog.text
    check_export_files(folder, read_export_meta(folder))   # the whole previous export, intact
    open(os.path.join(stage, "inference.yml"), "w").write("new")
    monkeypatch.setattr(folders, "_exchange", lambda a, b: False)   # the two-rename swap itself
    commit_folder(stage, folder)
    assert os.listdir(folder) == ["inference.yml"] and sorted(os.listdir(tmp_path)) == ["inference"]


def test_export_refuses_what_cannot_be_one_unit(export_dir, tmp_path, capsys):
    """Checked before any weights are loaded: a label file that does not name Arch.class_num classes, a
    folder holding other files (the export would delete them), preprocessing that cannot give the
    model's input (no DecodeImage first; a resize beyond the pixel limit)."""
    labels = tmp_path / "labels.txt"
    labels.write_text("".join(f"name{i}\n" for i in range(10 ** 6)))
    data, out = export_dir["data"], str(tmp_path / "o")
    base = {"Global.pretrained_model": "/never/loaded", "Global.save_inference_dir": str(tmp_path / "inference")}
    assert user_error("export_model", train_args(data, out, **base, **{"Infer.class_id_map_file": str(labels)}),
                      capsys) == (f"Infer.class_id_map_file: {labels} names 1,000,000 classes, but Arch.class_num "
                                  "is 3; the label file needs one name per class")
    assert not os.path.exists(tmp_path / "inference")
    busy = tmp_path / "busy"
    busy.mkdir()
    (busy / "notes.txt").write_text("mine")
    assert user_error("export_model", train_args(data, out, **dict(base, **{"Global.save_inference_dir": busy})),
                      capsys) == (f"Global.save_inference_dir: {busy} holds notes.txt, which are not export files; "
                                  "an export replaces the whole folder, so choose a new or empty folder (or move them)")
    no_decode = "[{ResizeImage: {size: 32}}, {NormalizeImage: {}}]"
    assert user_error("export_model", train_args(data, out, **base, **{"Infer.transforms": no_decode}), capsys) == \
        "Infer.transforms: must begin with DecodeImage (the exported preprocessing reads image files), got " \
        "{'ResizeImage': {'size': 32}}"
    huge = "[{DecodeImage: {}}, {ResizeImage: {resize_short: 9000}}, {NormalizeImage: {}}]"
    assert user_error("export_model", train_args(data, out, **base, **{"Infer.transforms": huge}), capsys) == \
        "Infer.transforms: the preprocessing fails on a 389x517 image (ResizeImage: resizing a 389x517 image to " \
        "short side 9000 gives 9000x11961, more than 100,000,000 pixels (the decoding limit)); end it with a fixed " \
        "size (CropImage or ResizeImage size) equal to Global.image_shape [3, 32, 32]"
