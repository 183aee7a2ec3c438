"""Guards found in review: evaluation uses the training classes and strict weights, numbers and
component options are checked when the config loads, a second interrupted save keeps a complete
checkpoint. Each is a user error with one stderr line (see test_reliability.user_error)."""
from __future__ import annotations

import os
import shutil

import paddle
import pytest

import ppnets
from ppnets.engine import checkpoint as ckpt
from ppnets.errors import CheckpointError
from ppnets.utils.cli import run

from test_reliability import _tool, train_args, trained, user_error, user_errors  # noqa: F401 (trained: a fixture)


def eval_args(data, out, weights, **extra):
    return train_args(data, out, **{"Global.pretrained_model": weights, **extra})


# ----------------------------------------------------------------------------- evaluation

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
    assert msg == f"{val}: class folders differ from the training classes (missing: ['2'], unexpected: ['7'])"


def test_eval_leaves_the_training_runs_files_alone(trained, capsys):
    run_dir = os.path.dirname(trained["prefix"])
    files = {name: open(os.path.join(run_dir, name), "rb").read() for name in ("config.yaml", "label_list.txt")}
    run(_tool("eval"), eval_args(trained["data"], os.path.dirname(run_dir), trained["prefix"],
                                 **{"DataLoader.Eval.sampler.batch_size": 3}))
    assert "top1" in open(os.path.join(run_dir, "eval.log"), encoding="utf-8").read()
    for name, blob in files.items():
        assert open(os.path.join(run_dir, name), "rb").read() == blob, name
    capsys.readouterr()


# ----------------------------------------------------------------------------- config values and options

@pytest.mark.parametrize("override, message", [
    ("Global.print_batch_step=0", "Global.print_batch_step: expected a number >= 1, got 0"),
    ("Global.eval_interval=0", "Global.eval_interval: expected a number >= 1, got 0"),
    ("Global.update_freq=0", "Global.update_freq: expected a number >= 1, got 0"),
    ("Global.save_steps=-3", "Global.save_steps: expected a number >= 0, got -3"),
    ("Infer.batch_size=0", "Infer.batch_size: expected a number >= 1, got 0"),
    ("Global.image_shape=[3,32]", "Global.image_shape: expected 3 items, got [3, 32]"),
    ("Global.image_shape=[3,0,32]", "Global.image_shape: expected numbers >= 1, got [3, 0, 32]"),
])
def test_numbers_out_of_range(trained, tmp_path, capsys, override, message):
    args = train_args(trained["data"], str(tmp_path / "o")) + ["-o", override]
    assert user_error("train", args, capsys) == message


@pytest.mark.parametrize("overrides, message", [
    (["Optimizer.lr={name: Cosine}"], "Optimizer.lr.Cosine: missing required key 'learning_rate'"),
    (["Optimizer.lr.name=Piecewise"], "Optimizer.lr.Piecewise: missing required key 'decay_epochs'\n"
                                      "Optimizer.lr.Piecewise: missing required key 'values'"),
    (["DataLoader.Train.dataset.seed=1"],
     "DataLoader.Train.dataset.ImageFolder: 'seed' is set by ppnets itself, remove it from the config"),
    (["Optimizer.regularizer={name: L2, coeff: abc}"], "Optimizer.regularizer.coeff: expected a number >= 0, got 'abc'"),
    (["Metric.Eval=[]"], "Metric.Eval: empty, but evaluating during training needs a metric to pick best_model, "
                         "e.g. [{TopkAcc: {topk: [1, 5]}}] (or Global.eval_during_train: false)"),
])
def test_component_options_checked_as_a_whole(trained, tmp_path, capsys, overrides, message):
    args = train_args(trained["data"], str(tmp_path / "o")) + [x for o in overrides for x in ("-o", o)]
    assert "\n".join(user_errors("train", args, capsys)) == message


def test_component_name_must_be_a_string(trained, tmp_path, capsys):
    args = train_args(trained["data"], str(tmp_path / "o")) + ["-o", "Optimizer.lr.name=[Cosine]"]
    assert user_error("train", args, capsys).startswith(
        "Optimizer.lr.name: expected the name of a LR schedule, got ['Cosine']; valid: Constant, Cosine")


@pytest.mark.parametrize("flag", ["--topk", "--batch_size", "--threads"])
def test_predict_counts_must_be_positive(tmp_path, capsys, flag):
    args = ["--model_dir", str(tmp_path), "--image", str(tmp_path), flag, "0"]
    assert user_error("predict", args, capsys) == f"{flag}: expected a positive integer, got 0"


# ----------------------------------------------------------------------------- checkpoints

class _Killed(BaseException):
    """Stands for SIGKILL: nothing after it runs, not even except-clauses for Exception."""


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


def test_strict_load_names_what_does_not_fit(tmp_path):
    paddle.save(ppnets.build_model("MobileNetV2_x0_25", class_num=5).state_dict(), str(tmp_path / "w.pdparams"))
    with pytest.raises(CheckpointError, match=r"w\.pdparams: does not fit Arch MobileNetV2_x0_25 with class_num=3"):
        ckpt.load_pretrained(ppnets.build_model("MobileNetV2_x0_25", class_num=3), str(tmp_path / "w"),
                             "MobileNetV2_x0_25", strict=True)


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
    from ppnets.engine.export import save_inference_model
    out = str(tmp_path / "inference")
    save_inference_model(ppnets.build_model("MobileNetV2_x0_25", class_num=3), out, [3, 32, 32], {"label_names": None})
    assert sorted(os.listdir(out)) == ["inference.json", "inference.pdiparams", "inference.yml"]


def test_no_weight_decay_name_accepts_paddleclas_string_form(trained, tmp_path):
    from ppnets.config import load_config
    from ppnets.optimizer import build_optimizer
    from conftest import small_overrides
    cfg = load_config(os.path.join(os.path.dirname(__file__), "..", "configs", "mobilenetv2.yaml"),
                      small_overrides(trained["data"], str(tmp_path), **{"Optimizer.no_weight_decay_name": "bn bias"}))
    assert cfg["Optimizer"]["no_weight_decay_name"] == "bn bias"
    model = ppnets.build_model("MobileNetV2_x0_25", class_num=3)
    opt = build_optimizer(cfg["Optimizer"], 1, 1, model)
    no_decay = {p.name for p in opt._parameter_list if getattr(p, "regularizer", None) is not None
                and float(getattr(p.regularizer, "_coeff", getattr(p.regularizer, "_regularization_coeff", 1))) == 0}
    named = {p.name: n for n, p in model.named_parameters()}
    assert no_decay and all("bn" in named[p] or "bias" in named[p] for p in no_decay)
