"""PaddleClas → ppnets checkpoint conversion (ppnets.arch.convert) and tools/convert_weights.py."""
from __future__ import annotations

import os
import subprocess
import sys

import numpy as np
import paddle
import pytest

import ppnets
from ppnets.cli import run
from ppnets.arch.convert import (check_layout, convert_paddleclas_state_dict, is_paddleclas_layout,
                                 model_layout)
from ppnets.errors import CheckpointError, ConfigError

from helpers.runs import load_tool
from helpers.reference import manifest

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
TOOL = os.path.join(ROOT, "tools", "convert_weights.py")


def _fake(name: str, seed: int = 0) -> dict:
    rng = np.random.default_rng(seed)
    return {k: (np.abs(rng.standard_normal(s)) + 0.5).astype("float32") for k, s in manifest(name)}


def _tool():
    return load_tool("convert_weights")


def test_model_layout_is_the_models_state_dict():
    model = ppnets.build_model("EfficientNetB0", class_num=10)
    assert model_layout("EfficientNetB0", class_num=10) == {k: tuple(v.shape) for k, v in model.state_dict().items()}


def test_converts_efficientnet_to_exactly_the_models_keys():
    sd = _fake("EfficientNetB0")
    out = convert_paddleclas_state_dict("EfficientNetB0", sd)
    assert {k: tuple(v.shape) for k, v in out.items()} == model_layout("EfficientNetB0")
    assert out["conv_head.bn._variance"] is sd["_conv._bn._variance"]
    # already converted: returned unchanged (and still checked)
    again = convert_paddleclas_state_dict("EfficientNetB0", out)
    assert again.keys() == out.keys() and all(again[k] is out[k] for k in out)


def test_same_layout_family_is_only_checked():
    sd = _fake("MobileNetV2_x0_5")
    out = convert_paddleclas_state_dict("MobileNetV2_x0_5", sd)
    assert list(out) == list(sd) and all(out[k] is sd[k] for k in sd)
    with pytest.raises(CheckpointError, match=r"weights do not fit MobileNetV2_x0_5: 1 unexpected key\(s\): extra"):
        convert_paddleclas_state_dict("MobileNetV2_x0_5", {**sd, "extra": np.zeros(1)})


def test_errors_name_missing_unexpected_and_mismatched_keys():
    sd = _fake("EfficientNetB0")
    del sd["_ef._blocks.15.._se._conv1._conv.bias"]
    with pytest.raises(CheckpointError, match=r"converted from PaddleClas.s layout do not fit EfficientNetB0: "
                                              r"1 missing key\(s\): blocks\.6\.0\.se\.conv_reduce\.bias") as e:
        convert_paddleclas_state_dict("EfficientNetB0", sd)
    assert "\n" not in str(e.value)
    sd = _fake("EfficientNetB0")
    sd["_fc.weight"] = np.zeros([1280, 10], "float32")
    sd["_fc.bias"] = np.zeros([10], "float32")
    with pytest.raises(CheckpointError, match=r"2 shape mismatch\(es\): classifier\.weight \[1280, 10\] vs model "
                                              r"\[1280, 1000\].*another class count"):
        convert_paddleclas_state_dict("EfficientNetB0", sd)
    out = convert_paddleclas_state_dict("EfficientNetB0", sd, class_num=10)
    assert out["classifier.bias"].shape == (10,)
    with pytest.raises(CheckpointError, match="unrecognised key.*bogus"):
        convert_paddleclas_state_dict("EfficientNetB0", {**_fake("EfficientNetB0"), "bogus": np.zeros(1)})
    with pytest.raises(CheckpointError, match=r"\+\d+ more"):   # long lists are shortened
        check_layout("EfficientNetB0", {})
    with pytest.raises(ConfigError, match="unknown model"):
        convert_paddleclas_state_dict("EfficientNetB9", sd)


def test_is_paddleclas_layout():
    pc = _fake("EfficientNetB0")
    assert is_paddleclas_layout("EfficientNetB0", pc)
    assert not is_paddleclas_layout("EfficientNetB0", convert_paddleclas_state_dict("EfficientNetB0", pc))
    assert not is_paddleclas_layout("EfficientNetB1", pc)           # B1 has more blocks
    assert not is_paddleclas_layout("EfficientNetB0", {"foo": np.zeros(1)})
    assert is_paddleclas_layout("MobileNetV2_x0_5", _fake("MobileNetV2_x0_5"))
    assert not is_paddleclas_layout("MobileNetV2_x0_5", pc)


def test_cli_converts_a_pdparams_from_the_repo_root(tmp_path):
    src, dst = tmp_path / "pc.pdparams", tmp_path / "out" / "b0.pdparams"
    sd = _fake("EfficientNetB0", seed=3)
    paddle.save({k: paddle.to_tensor(v) for k, v in sd.items()}, str(src))
    run = subprocess.run([sys.executable, "tools/convert_weights.py", "--model", "EfficientNetB0",
                          "--src", str(src), "--dst", str(dst)], cwd=ROOT, capture_output=True, text=True,
                         timeout=300)
    assert run.returncode == 0, run.stderr
    assert "converted from PaddleClas's layout" in run.stdout
    out = paddle.load(str(dst))
    model = ppnets.build_model("EfficientNetB0")
    missing, unexpected = model.set_state_dict(out)
    assert not missing and not unexpected
    np.testing.assert_array_equal(model.blocks[2][1].conv_dw.conv_layer.weight.numpy(),
                                  sd["_ef.block.4.._dcn._conv._conv._conv.weight"])


def _cli_error(tool, args, capsys) -> str:
    with pytest.raises(SystemExit) as exc:
        run(tool.main, args)
    assert exc.value.code == 2
    err = capsys.readouterr().err
    assert err.startswith("ppnets: error: ") and err.count("\n") == 1
    return err.strip()[len("ppnets: error: "):]


def test_cli_errors_are_one_line_with_exit_code_2(tmp_path, capsys):
    tool = _tool()
    dst = str(tmp_path / "x.pdparams")
    assert _cli_error(tool, ["--model", "EfficientNetB0", "--src", str(tmp_path / "nope"), "--dst", dst], capsys) == \
        f"weights file not found: {tmp_path / 'nope.pdparams'}"
    bad = tmp_path / "bad.pdparams"
    bad.write_bytes(b"not a checkpoint")
    assert _cli_error(tool, ["--model", "EfficientNetB0", "--src", str(bad), "--dst", dst], capsys).startswith(
        "cannot read weights file")
    wrong = tmp_path / "wrong.pdparams"
    paddle.save({k: paddle.to_tensor(v) for k, v in _fake("MobileNetV2_x0_5").items()}, str(wrong))
    assert "unrecognised key" in _cli_error(tool, ["--model", "EfficientNetB0", "--src", str(wrong), "--dst", dst],
                                            capsys)
    assert "unknown model 'EfficientNetB9'" in _cli_error(
        tool, ["--model", "EfficientNetB9", "--src", str(wrong), "--dst", dst], capsys)
    assert not os.path.exists(dst)
    # a same-layout family: checked and written
    run(tool.main, ["--model", "MobileNetV2_x0_5", "--src", str(wrong), "--dst", dst])
    assert "checked" in capsys.readouterr().out and os.path.exists(dst)


def test_pretrained_model_accepts_a_paddleclas_layout_file(tmp_path):
    from ppnets.checkpoint import load_pretrained
    sd = _fake("EfficientNetB0", seed=5)
    path = tmp_path / "EfficientNetB0_pretrained.pdparams"
    paddle.save({k: paddle.to_tensor(v) for k, v in sd.items()}, str(path))
    model = ppnets.build_model("EfficientNetB0")
    report = load_pretrained(model, str(path), "EfficientNetB0")
    assert report["missing"] == [] and report["unexpected"] == [] and report["skipped"] == []
    assert len(report["loaded"]) == len(sd)
    np.testing.assert_array_equal(model.blocks[2][1].conv_dw.conv_layer.weight.numpy(),
                                  sd["_ef.block.4.._dcn._conv._conv._conv.weight"])
    # fine-tuning to 10 classes: only the classifier is skipped
    small = ppnets.build_model("EfficientNetB0", class_num=10)
    report = load_pretrained(small, str(path), "EfficientNetB0")
    assert sorted(k.split()[0] for k in report["skipped"]) == ["classifier.bias", "classifier.weight"]
