"""Knowledge distillation: PaddleClas's config form, a frozen teacher that stays unchanged, the
student alone evaluated / saved as best_model / exported, any zoo model as teacher."""
from __future__ import annotations

import os
import re
import subprocess
import sys

import numpy as np
import paddle
import pytest
import yaml

import ppnets
from ppnets.arch.distillation import DistillationModel
from ppnets.config import load_config
from ppnets.engine import Trainer
from ppnets.checkpoint import build_run_model, read_weights
from ppnets.errors import CheckpointError, ConfigError

from helpers.runs import REPO, load_small_config


def _save_weights(model, path):
    paddle.save(model.state_dict(), path)
    return path


@pytest.fixture(scope="module")
def teacher_weights(tmp_path_factory):
    """An (untrained) MobileNetV2_x0_25 for 3 classes: a teacher's weights file."""
    paddle.seed(1)
    return _save_weights(ppnets.build_model("MobileNetV2_x0_25", class_num=3),
                         str(tmp_path_factory.mktemp("teacher") / "teacher.pdparams"))


def _distill(teacher, student="ShuffleNetV2_x0_25", **extra):
    """-o overrides turning the small default config into a distillation run."""
    over = {
        "Arch": "{name: DistillationModel, freeze_params_list: [true, false], infer_model_name: Student, models: "
                f"[{{Teacher: {{name: MobileNetV2_x0_25, class_num: 3, pretrained: {teacher}}}}}, "
                f"{{Student: {{name: {student}, class_num: 3}}}}]}}",
        "Loss.Train": "[{DistillationCELoss: {weight: 1.0, model_name_pairs: [[Student, Teacher]]}}, "
                      "{DistillationGTCELoss: {weight: 1.0, model_names: [Student]}}]",
        "Loss.Eval": "[{DistillationGTCELoss: {model_names: [Student]}}]",
        "Metric.Train": "[{DistillationTopkAcc: {model_key: Student, topk: [1, 2]}}]",
        "Metric.Eval": "[{DistillationTopkAcc: {model_key: Student, topk: [1, 2]}}]",
    }
    over.update(extra)
    return over


# a config in PaddleClas's distillation layout (written for this test, shaped like PaddleClas's
# quick_start distillation YAML): ImageNetDataset lists, HWC transform lists, DistillationPostProcess
PADDLECLAS_DISTILL = """
Global:
  checkpoints: null
  pretrained_model: null
  output_dir: {out}
  device: cpu
  save_interval: 1
  eval_during_train: True
  eval_interval: 1
  epochs: 1
  print_batch_step: 1
  use_visualdl: False
  image_shape: [3, 32, 32]
  save_inference_dir: {out}/inference
Arch:
  name: "DistillationModel"
  pretrained_list:
  freeze_params_list:
  - True
  - False
  models:
    - Teacher:
        name: MobileNetV2_x0_25
        class_num: 3
        pretrained: "{teacher}"
    - Student:
        name: MobileNetV3_small_x0_35
        class_num: 3
        pretrained: False
        dropout_prob: null
  infer_model_name: "Student"
Loss:
  Train:
    - DistillationCELoss:
        weight: 1.0
        model_name_pairs:
        - ["Student", "Teacher"]
  Eval:
    - DistillationGTCELoss:
        weight: 1.0
        model_names: ["Student"]
Optimizer:
  name: Momentum
  momentum: 0.9
  lr:
    name: Cosine
    learning_rate: 0.01
    warmup_epoch: 5
  regularizer:
    name: 'L2'
    coeff: 0.0001
DataLoader:
  Train:
    dataset:
        name: ImageNetDataset
        image_root: {root}
        cls_label_path: {root}/train_list.txt
        transform_ops:
          - DecodeImage:
              to_rgb: True
              channel_first: False
          - RandFlipImage:
              flip_code: 1
          - NormalizeImage:
              scale: 0.00392157
              mean: [0.485, 0.456, 0.406]
              std: [0.229, 0.224, 0.225]
              order: ''
    sampler:
        name: DistributedBatchSampler
        batch_size: 16
        drop_last: False
        shuffle: True
    loader:
        num_workers: 0
        use_shared_memory: True
  Eval:
    dataset:
        name: ImageNetDataset
        image_root: {root}
        cls_label_path: {root}/val_list.txt
        transform_ops:
          - DecodeImage:
              to_rgb: True
              channel_first: False
          - NormalizeImage:
              scale: 0.00392157
              mean: [0.485, 0.456, 0.406]
              std: [0.229, 0.224, 0.225]
              order: ''
    sampler:
        name: DistributedBatchSampler
        batch_size: 8
        drop_last: False
        shuffle: False
    loader:
        num_workers: 0
        use_shared_memory: True
Infer:
  infer_imgs: {root}/val/2
  batch_size: 4
  transforms:
      - DecodeImage:
          to_rgb: True
          channel_first: False
      - ResizeImage:
          resize_short: 36
      - CropImage:
          size: 32
      - NormalizeImage:
          scale: 1.0/255.0
          mean: [0.485, 0.456, 0.406]
          std: [0.229, 0.224, 0.225]
          order: ''
      - ToCHWImage:
  PostProcess:
    name: DistillationPostProcess
    func: Topk
    topk: 2
Metric:
    Train:
    - DistillationTopkAcc:
        model_key: "Student"
        topk: [1, 2]
    Eval:
    - DistillationTopkAcc:
        model_key: "Student"
        topk: [1, 2]
"""


def _file_lists(root):
    for split in ("train", "val"):
        lines = [f"{split}/{c}/{f} {c}" for c in sorted(os.listdir(os.path.join(root, split)))
                 for f in sorted(os.listdir(os.path.join(root, split, c)))]
        with open(os.path.join(root, f"{split}_list.txt"), "w") as f:
            f.write("\n".join(lines) + "\n")


def test_paddleclas_distillation_config_trains_evaluates_exports_and_predicts(digits_slice, teacher_weights,
                                                                             tmp_path):
    _file_lists(digits_slice)
    out = str(tmp_path / "out")
    path = tmp_path / "distill.yaml"
    path.write_text(PADDLECLAS_DISTILL.format(out=out, root=digits_slice, teacher=teacher_weights))
    cfg = load_config(str(path))
    assert cfg["Arch"]["class_num"] == 3 and cfg["Arch"]["models"][1]["Student"]["dropout"] == 0.0
    assert cfg["Infer"]["topk"] == 2

    def tool(name, *args):
        r = subprocess.run([sys.executable, f"tools/{name}.py", *args], cwd=REPO, capture_output=True, text=True,
                           timeout=600)
        assert r.returncode == 0, r.stderr[-3000:]
        return r.stdout

    tool("train", "-c", str(path))
    run = os.path.join(out, "DistillationModel")
    best = os.path.join(run, "best_model")
    # best_model is the student alone: it loads into the student's own architecture, strictly
    student = ppnets.build_model("MobileNetV3_small_x0_35", class_num=3, dropout=0.0)
    assert sorted(read_weights(best)) == sorted(student.state_dict())
    assert any(k.startswith("Teacher.") for k in read_weights(os.path.join(run, "latest")))
    log = open(os.path.join(run, "train.log")).read()
    logged = float(re.findall(r"\[Eval\]\[Epoch 1\]\[Avg\] loss: [\d.]+, top1: ([\d.]+)", log)[0])
    from ppnets.engine.eval_report import run_evaluation
    for weights in (best, os.path.join(run, "latest")):  # the student's own file, or the whole model's
        result = run_evaluation(load_config(str(path), [f"Global.pretrained_model={weights}"]))
        assert result["metrics"]["top1"] == pytest.approx(logged, abs=1e-5)  # the student, as in training
    tool("export_model", "-c", str(path), "-o", f"Global.pretrained_model={best}")
    meta = yaml.safe_load(open(os.path.join(out, "inference", "inference.yml")))
    assert meta["model_name"] == "MobileNetV3_small_x0_35" and meta["class_num"] == 3
    lines = tool("predict", "--model_dir", os.path.join(out, "inference"), "--image",
                 os.path.join(digits_slice, "val", "2"), "--topk", "2").strip().splitlines()
    assert len(lines) == 10 and all(line.count("(") == 2 for line in lines)


def test_teacher_stays_frozen_and_unchanged(digits_slice, teacher_weights, tmp_path):
    cfg = load_small_config(digits_slice, str(tmp_path), **_distill(teacher_weights, **{"Global.epochs": 1}))
    engine = Trainer(cfg)
    model = engine.model
    assert isinstance(model, DistillationModel) and model.infer_model_name == "Student"
    teacher_before = {k: v.numpy().copy() for k, v in model.Teacher.state_dict().items()}
    student_before = {k: v.numpy().copy() for k, v in model.Student.state_dict().items()}
    # the teacher comes from its weights file
    src = read_weights(teacher_weights)
    assert all(np.array_equal(teacher_before[k], src[k]) for k in src)
    assert all(p.stop_gradient for p in model.Teacher.parameters())
    fresh = ppnets.build_model("ShuffleNetV2_x0_25", class_num=3)
    assert [p.stop_gradient for p in model.Student.parameters()] == [p.stop_gradient for p in fresh.parameters()]
    engine.train()
    # BatchNorm statistics included: the teacher ran in eval mode throughout
    for k, v in model.Teacher.state_dict().items():
        assert np.array_equal(v.numpy(), teacher_before[k]), k
    assert all(p.grad is None for p in model.Teacher.parameters())
    changed = [k for k, v in model.Student.state_dict().items() if not np.array_equal(v.numpy(), student_before[k])]
    assert len(changed) > len(student_before) // 2
    # even after model.train(), a forward pass keeps the teacher in eval mode
    model.train()
    out = model(paddle.rand([2, 3, 32, 32]))
    assert sorted(out) == ["Student", "Teacher"] and out["Teacher"].stop_gradient
    assert not any(layer.training for layer in model.Teacher.sublayers(include_self=True))
    assert model.Student.training


def test_distillation_resumes_from_latest(digits_slice, teacher_weights, tmp_path):
    over = _distill(teacher_weights, **{"Global.epochs": 1, "Global.eval_during_train": False})
    first = Trainer(load_small_config(digits_slice, str(tmp_path / "a"), **over))
    first.train()
    latest = str(tmp_path / "a" / "DistillationModel" / "latest")
    over.update({"Global.epochs": 2, "Global.checkpoints": latest})
    resumed = Trainer(load_small_config(digits_slice, str(tmp_path / "b"), **over))
    assert resumed.state.start_epoch == 2
    for k, v in first.model.state_dict().items():
        assert np.array_equal(resumed.model.state_dict()[k].numpy(), v.numpy()), k


@pytest.mark.parametrize("teacher", ["MobileNetV1_x0_25", "MobileNetV3_small_x0_35", "ShuffleNetV1_g3_x0_25",
                                     "SqueezeNet1_1", "EfficientNetB0", "ShuffleNetV2_swish", "GhostNet_x0_5",
                                     "PPLCNet_x0_25", "MobileNetV4_conv_small"])
def test_any_zoo_model_can_teach(teacher, tmp_path):
    weights = _save_weights(ppnets.build_model(teacher, class_num=4), str(tmp_path / "t.pdparams"))
    # the constructor reads no file: whoever builds the run's model loads the sub-models' weights
    model = build_run_model({"name": "DistillationModel",
                             "models": [{"Teacher": {"name": teacher, "class_num": 4, "pretrained": weights}},
                                        {"Student": {"name": "MobileNetV2_x0_25", "class_num": 4}}],
                             "freeze_params_list": [True, False]}, "train")
    model.train()
    out = model(paddle.rand([2, 3, 32, 32]))
    assert out["Teacher"].shape == out["Student"].shape == [2, 4]
    reference = ppnets.build_model(teacher, class_num=4)
    reference.set_state_dict(paddle.load(weights))
    reference.eval()
    x = paddle.rand([2, 3, 32, 32])
    np.testing.assert_allclose(model(x)["Teacher"].numpy(), reference(x).numpy(), rtol=1e-4, atol=1e-5)


def test_a_teacher_must_fit_its_weights(teacher_weights):
    with pytest.raises(CheckpointError, match="does not fit"):  # a frozen teacher loads strictly
        build_run_model({"name": "DistillationModel",
                         "models": [{"Teacher": {"name": "MobileNetV2_x0_25", "class_num": 5,
                                                 "pretrained": teacher_weights}},
                                    {"Student": {"name": "MobileNetV2_x0_25", "class_num": 5}}],
                         "freeze_params_list": [True, False]}, "train")


def test_config_problems_are_reported_together(digits_slice, teacher_weights, tmp_path):
    over = _distill(teacher_weights, **{
        "Arch": "{name: DistillationModel, freeze_params_list: [true, false, false], infer_model_name: Pupil, "
                "models: [{Teacher: {name: MobileNetV2_x0_25, class_num: 3}}, "
                "{Student: {name: ShuffleNetV2_x0_25, class_num: 3, scale: huge}}]}",
        "Loss.Train": "[{CELoss: {}}, {DistillationKLDivLoss: {model_name_pairs: [[Student, Tutor]]}}]",
        "Loss.Eval": "[{DistillationGTCELoss: {model_names: [Teacher]}}]"})
    with pytest.raises(ConfigError) as e:
        load_small_config(digits_slice, str(tmp_path), **over)
    lines = str(e.value).splitlines()
    assert any(line.startswith("Arch.models.1.Student.scale: expected float, got 'huge'") for line in lines), lines
    assert any("Arch.freeze_params_list: 3 entries for 2 models (Teacher, Student)" in line for line in lines)
    # once the sections are well-formed, the rules across them
    over["Arch"] = over["Arch"].replace(", scale: huge", "").replace(", false, false]", ", false]")
    with pytest.raises(ConfigError) as e:
        load_small_config(digits_slice, str(tmp_path), **over)
    lines = str(e.value).splitlines()
    assert "Arch.models.0.Teacher: frozen (freeze_params_list) but it has no weights; set " \
           "Arch.models.0.Teacher.pretrained=<path of its .pdparams>" in lines
    assert "Arch.infer_model_name: 'Pupil' is not one of the models (Teacher, Student)" in lines
    over["Arch"] = over["Arch"].replace("Pupil", "Student").replace("class_num: 3}}, {", f"class_num: 3, "
                                                                    f"pretrained: {teacher_weights}}}}}, {{")
    with pytest.raises(ConfigError) as e:
        load_small_config(digits_slice, str(tmp_path), **over)
    lines = str(e.value).splitlines()
    assert lines[0].startswith("Loss.Train.0.CELoss: Arch is a DistillationModel whose output is {Teacher, Student}; "
                               "use DistillationGTCELoss with model_names")
    assert "Loss.Train.1.DistillationKLDivLoss: unknown model 'Tutor'; the models are Teacher, Student" in lines
    assert lines[-1].startswith("Loss.Eval.0.DistillationGTCELoss: evaluation runs only Arch.infer_model_name "
                                "(Student)")
    assert len(lines) == 3


def test_paddleclas_keys_of_sub_models(digits_slice, teacher_weights, tmp_path, monkeypatch):
    over = _distill(teacher_weights, **{"Arch.models.1.Student.pretrained": True})
    home = tmp_path / "home"
    monkeypatch.setenv("HOME", str(home))  # PaddleClas's download folder: ~/.paddleclas/weights
    monkeypatch.setenv("PPNETS_OFFLINE", "1")
    cfg = load_small_config(digits_slice, str(tmp_path), **over)  # PaddleClas's weights of the Student
    assert cfg["Arch"]["models"][1]["Student"]["pretrained"] == "paddleclas"
    assert any(n.startswith("Arch.models.1.Student.pretrained: true — paddleclas") for n in cfg.notices)
    cached = home / ".paddleclas" / "weights" / "ShuffleNetV2_x0_25_pretrained.pdparams"
    with pytest.raises(CheckpointError, match=re.escape(
            "cannot download https://paddle-imagenet-models-name.bj.bcebos.com/dygraph/ShuffleNetV2_x0_25_pretrained"
            f".pdparams: offline (PPNETS_OFFLINE=1); download it yourself and put it at {cached}")):
        build_run_model(cfg["Arch"], "train")
    cached.parent.mkdir(parents=True)
    student = ppnets.build_model("ShuffleNetV2_x0_25", class_num=3)
    _save_weights(student, str(cached))
    model = build_run_model(cfg["Arch"], "train")  # PaddleClas's copy in its cache, used offline
    np.testing.assert_array_equal(model.Student.state_dict()["_conv1._conv.weight"].numpy(),
                                  student.state_dict()["_conv1._conv.weight"].numpy())
    with pytest.raises(ConfigError, match=r"DistillationCELoss: needs Arch\.name: DistillationModel"):
        load_small_config(digits_slice, str(tmp_path), **{"Loss.Train": "[{DistillationCELoss: "
                                                                        "{model_name_pairs: [[Student, Teacher]]}}]"})
    with pytest.raises(ConfigError, match=r"Infer\.PostProcess\.model_name: 'Teacher' differs from "
                                          r"Arch\.infer_model_name \('Student'\)"):
        load_small_config(digits_slice, str(tmp_path), **_distill(teacher_weights, **{
            "Infer.PostProcess": "{name: DistillationPostProcess, model_name: Teacher, func: Topk, topk: 1}"}))
    # without model_name (PaddleClas's default: Student) the PostProcess follows infer_model_name
    cfg = load_small_config(digits_slice, str(tmp_path), **_distill(teacher_weights, **{
        "Arch.infer_model_name": "Teacher", "Metric.Eval": "[{DistillationTopkAcc: {model_key: Teacher}}]",
        "Loss.Eval": "[{CELoss: {}}]", "Infer.PostProcess": "{name: DistillationPostProcess, func: Topk, topk: 1}"}))
    assert cfg["Arch"]["infer_model_name"] == "Teacher" and "PostProcess" not in cfg["Infer"]
