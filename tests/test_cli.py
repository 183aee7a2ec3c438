"""The ``ppnets`` command: one implementation per tool, shipped configs by name from any directory,
one-line errors for a missing optional extra, and --bad-image over folders."""
from __future__ import annotations

import importlib
import os
import re
import shutil
import sys

import numpy as np
import paddle
import pytest

import ppnets
from ppnets.cli import run
from ppnets.cli.main import COMMANDS, main as ppnets_main
from ppnets.deploy.inputs import classify_files, list_inputs

from helpers.runs import REPO, load_tool, small_overrides

HINT = "pip install 'ppnets[deploy]'"


def errors_of(argv, capsys, code=2) -> list:
    """Run ``ppnets argv`` in-process; assert the exit code; return the stderr lines."""
    with pytest.raises(SystemExit) as exc:
        ppnets_main(argv)
    assert exc.value.code == code
    return capsys.readouterr().err.strip().splitlines()


def test_each_command_runs_the_code_of_its_tool(capsys):
    assert re.search(r'^\[project\.scripts\]\nppnets = "ppnets\.cli\.main:main"$',
                     open(os.path.join(REPO, "pyproject.toml")).read(), re.M)
    for name, (module, tool, _) in COMMANDS.items():
        if name == "weights" and not os.path.isfile(os.path.join(REPO, tool)):
            assert errors_of([name], capsys) == ["ppnets: error: 'ppnets weights' is not part of this version of "
                                                 "ppnets (ppnets/cli/weights.py is missing)"]
            continue
        assert load_tool(os.path.basename(tool)[:-3]).main is importlib.import_module(f"ppnets.cli.{module}").main
    assert errors_of(["trian"], capsys) == ["ppnets: error: unknown command 'trian' (did you mean 'train'?); commands: "
                                            + ", ".join(COMMANDS)]


def test_a_shipped_config_by_name_from_any_directory(tmp_path, monkeypatch, capsys):
    monkeypatch.chdir(tmp_path)  # no configs/ and no dataset/ here
    monkeypatch.setattr(sys, "argv", ["ppnets"])
    with pytest.raises(SystemExit) as exc:
        ppnets_main(["train", "-c", "mobilenetv2", "-o", "Global.epochs=1", "--print-config"])
    assert exc.value.code == 0
    out = capsys.readouterr().out
    digits = os.path.join(os.path.dirname(os.path.dirname(ppnets.__file__)), "dataset", "digits")
    assert "# notice: DataLoader.Train.dataset.root, DataLoader.Eval.dataset.root, Infer.infer_imgs: " \
           f"./dataset/digits is not in the working directory; using the digits dataset shipped with ppnets ({digits})" \
           in out
    assert f"root: {digits}/train\n" in out and "epochs: 1\n" in out and "name: MobileNetV2_x0_5\n" in out
    assert errors_of(["train", "-c", "mobilenet"], capsys) == [
        "ppnets: error: config file not found: mobilenet; shipped configs like it: mobilenetv2, digits/mobilenetv4, "
        "digits/mobilenetv3"]
    with pytest.raises(SystemExit):
        ppnets_main(["eval", "--help"])
    assert capsys.readouterr().out.startswith("usage: ppnets eval [-h] -c CONFIG")


def test_serve_without_the_deploy_extra_is_one_line(monkeypatch, capsys):
    monkeypatch.setitem(sys.modules, "uvicorn", None)  # as if not installed
    assert errors_of(["serve"], capsys) == [f"ppnets: error: ppnets serve needs uvicorn (the deploy extra): {HINT}"]
    assert capsys.readouterr().out == ""


def test_onnx_export_without_the_extra_stops_before_tracing(monkeypatch, capsys):
    for module in ("paddle2onnx", "onnx_graphsurgeon"):
        monkeypatch.setitem(sys.modules, module, None)
    # no weights either: the missing packages are named first, before anything is loaded or traced
    assert errors_of(["export", "-c", "mobilenetv2", "-o", "Export.formats=[paddle,onnx]"], capsys) == [
        f"ppnets: error: Export.formats: onnx needs paddle2onnx, onnx-graphsurgeon (the deploy extra): {HINT}"]


# ----------------------------------------------------------------------------- --bad-image

@pytest.fixture
def folder_with_a_bad_image(digits_slice, tmp_path):
    folder = tmp_path / "images"
    shutil.copytree(os.path.join(digits_slice, "val", "1"), folder)
    bad = folder / "0005_corrupt.png"
    bad.write_bytes(b"\x89PNG\r\n\x1a\n\x00\x00\x00\rIHDR")   # a truncated PNG, sorted among the good ones
    return str(folder), str(bad)


def test_infer_over_a_folder_with_a_bad_image(folder_with_a_bad_image, digits_slice, tmp_path, capsys):
    folder, bad = folder_with_a_bad_image
    weights = str(tmp_path / "w")
    paddle.seed(0)
    paddle.save(ppnets.build_model("MobileNetV2_x0_25", class_num=3).state_dict(), weights + ".pdparams")
    args = ["-c", os.path.join(REPO, "configs", "mobilenetv2.yaml")] + [
        x for o in small_overrides(digits_slice, str(tmp_path), **{"Global.pretrained_model": weights,
                                                                   "Infer.infer_imgs": folder, "Infer.batch_size": 4})
        for x in ("-o", o)]
    good = sorted(f for f in list_inputs(folder) if f != bad)
    message = f"{bad}: not a decodable image (corrupt, truncated or not an image)"
    infer = load_tool("infer").main
    with pytest.raises(SystemExit) as exc:               # warn (the default): every good image, a line, exit 1
        run(infer, args)
    assert exc.value.code == 1
    out, err = capsys.readouterr()
    assert [line.split(":")[0] for line in out.splitlines() if line.startswith(folder)] == good
    assert err.splitlines()[-1:] == [f"ppnets: warning: {message}"] and "ppnets: warning" not in "".join(err.splitlines()[:-1])
    run(infer, args + ["--bad-image", "skip"])          # skip: the same results, nothing said, exit 0
    out, err = capsys.readouterr()
    assert [line.split(":")[0] for line in out.splitlines() if line.startswith(folder)] == good
    assert "ppnets: warning" not in err
    with pytest.raises(SystemExit) as exc:               # error: stop, as before
        run(infer, args + ["--bad-image", "error"])
    assert exc.value.code == 2 and capsys.readouterr().err.splitlines()[-1] == f"ppnets: error: {message}"


def test_predict_takes_the_same_policy(folder_with_a_bad_image, monkeypatch, capsys):
    """tools/predict.py hands the policy to the same classify_files: a stand-in predictor, no export needed."""
    folder, bad = folder_with_a_bad_image
    from ppnets.cli import predict
    from ppnets.data.transforms import build_transforms

    class Stub:
        multilabel, threshold, label_names, backend_choice = False, None, ["zero", "one", "two"], None
        transform = build_transforms([{"DecodeImage": {}}, {"ResizeImage": {"size": 8}}, {"ToCHWImage": None}])

        def __init__(self, *args, **kwargs):
            pass

        @staticmethod
        def run(batch):
            return np.tile([0.1, 0.7, 0.2], (len(batch), 1))

    monkeypatch.setattr(predict, "Predictor", Stub)
    with pytest.raises(SystemExit) as exc:
        ppnets_main(["predict", "--model_dir", "m", "--image", folder, "--batch_size", "3", "--topk", "1"])
    assert exc.value.code == 1
    out, err = capsys.readouterr()
    good = [f for f in list_inputs(folder) if f != bad]
    assert out.splitlines() == [f"{f}: one (1): 0.70000" for f in good]
    assert err.splitlines() == [f"ppnets: warning: {bad}: not a decodable image (corrupt, truncated or not an image)"]
    assert classify_files([bad], Stub.transform, 3, Stub.run, 1, None, on_bad=lambda p, m: None) == []
