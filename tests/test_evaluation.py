"""Evaluation uses the classes and the exact weights the model was trained with, and leaves the run alone."""
from __future__ import annotations

import os
import shutil

import numpy as np
import paddle
import pytest

import ppnets
from ppnets import checkpoint as ckpt
from ppnets.data import CHECK_HINT
from ppnets.errors import CheckpointError

from ppnets.cli import run

from helpers.cli import tool_main, train_args, user_error


def eval_args(data, out, weights, **extra):
    return train_args(data, out, **{"Global.pretrained_model": weights, **extra})


def test_eval_refuses_weights_that_do_not_fit(trained, tmp_path, capsys):
    other = ppnets.build_model("MobileNetV2_x0_25", class_num=5)  # another class count: another classifier
    paddle.save(other.state_dict(), str(tmp_path / "five.pdparams"))
    msg = user_error("eval", eval_args(trained["data"], str(tmp_path / "o"), str(tmp_path / "five")), capsys)
    assert msg.startswith(f"{tmp_path / 'five.pdparams'}: does not fit Arch MobileNetV2_x0_25 with class_num=3 "
                          "(2 mismatched, 0 missing keys, e.g. ")


def test_eval_classes_must_be_the_training_classes(trained, tmp_path, capsys):
    val = tmp_path / "val"
    shutil.copytree(os.path.join(trained["data"], "val"), val)
    os.rename(val / "2", val / "7")  # same number of classes, another class: ids would silently shift
    msg = user_error("eval", eval_args(trained["data"], str(tmp_path / "o"), trained["prefix"],
                                       **{"DataLoader.Eval.dataset.root": str(val)}), capsys)
    assert msg == f"{val}: class folders differ from the training classes (missing: ['2'], unexpected: ['7'])" \
        + CHECK_HINT


def test_eval_leaves_the_training_runs_files_alone(trained, capsys):
    run_dir = os.path.dirname(trained["prefix"])
    files = {name: open(os.path.join(run_dir, name), "rb").read() for name in ("config.yaml", "label_list.txt")}
    run(tool_main("eval"), eval_args(trained["data"], os.path.dirname(run_dir), trained["prefix"],
                                 **{"DataLoader.Eval.sampler.batch_size": 3}))
    assert "top1" in open(os.path.join(run_dir, "eval.log"), encoding="utf-8").read()
    for name, blob in files.items():
        assert open(os.path.join(run_dir, name), "rb").read() == blob, name
    capsys.readouterr()


def test_strict_load_names_what_does_not_fit(tmp_path):
    paddle.save(ppnets.build_model("MobileNetV2_x0_25", class_num=5).state_dict(), str(tmp_path / "w.pdparams"))
    with pytest.raises(CheckpointError, match=r"w\.pdparams: does not fit Arch MobileNetV2_x0_25 with class_num=3"):
        ckpt.load_pretrained(ppnets.build_model("MobileNetV2_x0_25", class_num=3), str(tmp_path / "w"),
                             "MobileNetV2_x0_25", strict=True)


def test_evaluation_slices_large_cpu_batches_without_changing_the_outputs():
    from ppnets.engine.models import forward_in_chunks
    paddle.seed(0)
    model = ppnets.build_model("MobileNetV2_x0_25", class_num=5)
    model.eval()
    images = paddle.randn([70, 3, 32, 32])
    calls = []
    model.register_forward_pre_hook(lambda layer, inputs: calls.append(inputs[0].shape[0]))
    with paddle.no_grad():
        sliced = forward_in_chunks(model, images, chunk=32)
        calls_sliced, calls[:] = list(calls), []
        whole = model(images)
    assert calls_sliced == [32, 32, 6] and sliced.shape == [70, 5]
    np.testing.assert_allclose(sliced.numpy(), whole.numpy(), rtol=1e-5, atol=1e-5)
    assert forward_in_chunks(lambda x: {"logits": x}, images, chunk=32)["logits"].shape == [70, 3, 32, 32]
