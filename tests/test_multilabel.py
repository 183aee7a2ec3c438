"""Multi-label classification: PaddleClas's MultiLabelDataset list and its multi-label config layout,
the sigmoid export, labels above the threshold at inference, and the config rules."""
from __future__ import annotations

import importlib.util
import os
import re
import subprocess
import sys

import numpy as np
import pytest
import yaml

from ppnets.config import load_config
from ppnets.data import MultiLabelDataset
from ppnets.deploy import Predictor
from ppnets.deploy.postprocess import threshold_results
from ppnets.errors import ConfigError, DataError

from helpers.runs import DIGITS, REPO, load_small_config


def _make_pairs():
    spec = importlib.util.spec_from_file_location("make_multilabel", os.path.join(DIGITS, "make_multilabel.py"))
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module.make_pairs


@pytest.fixture(scope="module")
def pairs(tmp_path_factory):
    """A small digit-pairs set: 96 training and 24 validation images, two digits each."""
    root = str(tmp_path_factory.mktemp("pairs"))
    _make_pairs()(root, n_train=96, n_val=24, seed=3)
    return root


def test_pairs_generator_writes_paddleclas_multilabel_lists(pairs):
    lines = open(os.path.join(pairs, "train_list.txt")).read().splitlines()
    assert len(lines) == 96
    path, flags = lines[0].split("\t")
    assert path == "train/00000.png" and len(flags.split(",")) == 10 and flags.count("1") == 2
    ds = MultiLabelDataset(pairs, os.path.join(pairs, "train_list.txt"),
                           transform_ops=[{"DecodeImage": {"to_rgb": True, "channel_first": False}}],
                           class_names_file=os.path.join(pairs, "label_list.txt"))
    assert ds.class_names == [str(d) for d in range(10)] and len(ds) == 96
    target = ds.target(0)
    assert target.dtype == np.float32 and target.shape == (10,) and target.sum() == 2
    assert (ds.label_matrix().sum(axis=1) == 2).all()
    image, label = ds[0]
    assert image.shape == (3, 32, 64)  # no ToCHWImage in the list: the dataset hands over CHW
    assert np.array_equal(label, target)


@pytest.mark.parametrize("line, message", [
    ("train/00000.png 0,1,0", r"expected 'relative/path'\\t'0,1,…'"),
    ("train/00000.png\t0,2,0", r"expected comma-separated 0/1 flags, one per class .*got '0,2,0'"),
    ("train/00000.png\t0,1,0\ntrain/00001.png\t1,0", r":2: 2 flags, expected 3 \(one per class\)"),
    ("../x.png\t0,1,0", r"escapes the dataset root"),
    ("train/missing.png\t0,1,0", r"image not found"),
])
def test_bad_list_lines_name_the_file_and_line(pairs, tmp_path, line, message):
    path = tmp_path / "list.txt"
    path.write_text(line + "\n")
    with pytest.raises(DataError, match=message):
        MultiLabelDataset(pairs, str(path))


def test_dataset_options(pairs, tmp_path):
    with pytest.raises(ConfigError, match="label_ratio: true"):
        MultiLabelDataset(pairs, os.path.join(pairs, "train_list.txt"), label_ratio=True)
    names = tmp_path / "names.txt"
    names.write_text("0 zero\n1 one\n")  # PaddleClas's label map, but for 2 of the 10 classes
    with pytest.raises(DataError, match=r"names 2 classes, but .* has 10 flags per line"):
        MultiLabelDataset(pairs, os.path.join(pairs, "train_list.txt"), class_names_file=str(names))


def test_threshold_results():
    probs = np.array([[0.9, 0.2, 0.6], [0.1, 0.3, 0.2]])
    out = threshold_results(["a.png", "b.png"], probs, 0.5, ["x", "y", "z"])
    assert out[0] == {"file": "a.png", "class_ids": [0, 2], "scores": [0.9, 0.6], "label_names": ["x", "z"]}
    assert out[1]["class_ids"] == []  # no class above the threshold


# a config in PaddleClas's multi-label layout (written for this test, shaped like PaddleClas's
# quick_start multi-label YAML): MultiLabelDataset, MultiLabelLoss, AccuracyScore/HammingDistance,
# PostProcess MultiLabelThreshOutput, lists without ToCHWImage
PADDLECLAS_MULTILABEL = """
Global:
  checkpoints: null
  pretrained_model: null
  output_dir: {out}
  device: cpu
  save_interval: 1
  eval_during_train: True
  eval_interval: 1
  epochs: 2
  print_batch_step: 1
  use_visualdl: False
  image_shape: [3, 32, 64]
  save_inference_dir: {out}/inference
  use_multilabel: True
Arch:
  name: MobileNetV1_x0_25
  class_num: 10
  pretrained: False
Loss:
  Train:
    - MultiLabelLoss:
        weight: 1.0
  Eval:
    - MultiLabelLoss:
        weight: 1.0
Optimizer:
  name: Momentum
  momentum: 0.9
  lr:
    name: Cosine
    learning_rate: 0.05
  regularizer:
    name: 'L2'
    coeff: 0.00004
DataLoader:
  Train:
    dataset:
      name: MultiLabelDataset
      image_root: {root}
      cls_label_path: {root}/train_list.txt
      transform_ops:
        - DecodeImage:
            to_rgb: True
            channel_first: False
        - NormalizeImage:
            scale: 1.0/255.0
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
      name: MultiLabelDataset
      image_root: {root}
      cls_label_path: {root}/val_list.txt
      transform_ops:
        - DecodeImage:
            to_rgb: True
            channel_first: False
        - NormalizeImage:
            scale: 1.0/255.0
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
  infer_imgs: {root}/val
  batch_size: 8
  transforms:
    - DecodeImage:
        to_rgb: True
        channel_first: False
    - ResizeImage:
        size: [64, 32]
    - NormalizeImage:
        scale: 1.0/255.0
        mean: [0.485, 0.456, 0.406]
        std: [0.229, 0.224, 0.225]
        order: ''
    - ToCHWImage:
  PostProcess:
    name: MultiLabelThreshOutput
    threshold: 0.3
    class_id_map_file: {root}/label_list.txt
    delimiter: " "
Metric:
  Train:
    - AccuracyScore:
    - HammingDistance:
  Eval:
    - AccuracyScore:
    - HammingDistance:
"""


def _tool(path, name, *args):
    r = subprocess.run([sys.executable, f"tools/{name}.py", "-c", str(path), *args], cwd=REPO,
                       capture_output=True, text=True, timeout=600)
    assert r.returncode == 0, r.stderr[-3000:]
    return r.stdout


@pytest.fixture(scope="module")
def multilabel_run(pairs, tmp_path_factory):
    """The PaddleClas-layout multi-label config trained for 2 epochs with tools/train.py and
    exported (paddle + onnx) with tools/export_model.py."""
    tmp = tmp_path_factory.mktemp("multilabel")
    out = str(tmp / "out")
    path = tmp / "multilabel.yaml"
    path.write_text(PADDLECLAS_MULTILABEL.format(out=out, root=pairs))
    _tool(path, "train")
    best = os.path.join(out, "MobileNetV1_x0_25", "best_model")
    _tool(path, "export_model", "-o", f"Global.pretrained_model={best}", "-o", "Export.formats=[paddle,onnx]")
    return {"path": path, "out": out, "best": best, "model_dir": os.path.join(out, "inference")}


def test_paddleclas_multilabel_config_trains_evaluates_exports_and_infers(pairs, multilabel_run):
    path, best, run = multilabel_run["path"], multilabel_run["best"], os.path.dirname(multilabel_run["best"])
    cfg = load_config(str(path), [f"Global.pretrained_model={best}"])
    assert cfg["Infer"]["threshold"] == 0.3 and cfg["Global"]["use_multilabel"]
    log = open(os.path.join(run, "train.log")).read()
    assert "[Eval][Epoch 2][Avg] loss: " in log and "AccuracyScore: " in log and "HammingDistance: " in log
    report = _tool(path, "eval", "-o", f"Global.pretrained_model={best}")
    assert "per-class metrics (precision / recall / F1 at threshold 0.3)" in report
    rows = open(os.path.join(run, "per_class_metrics.csv")).read().splitlines()
    assert rows[0] == "class,ap,precision,recall,f1,positives" and len(rows) == 11
    meta = yaml.safe_load(open(os.path.join(multilabel_run["model_dir"], "inference.yml")))
    assert meta["multilabel"] is True and meta["threshold"] == 0.3 and meta["softmax"] is False
    # PaddleClas's deploy config gets its multi-label post-processing
    deploy = yaml.safe_load(open(os.path.join(multilabel_run["model_dir"], "inference_cls.yaml")))
    assert deploy["PostProcess"]["main_indicator"] == "MultiLabelThreshOutput"
    assert deploy["PostProcess"]["MultiLabelThreshOutput"]["threshold"] == 0.3
    # the exported model ends in a sigmoid: its outputs are the dynamic model's logits through a sigmoid,
    # on paddle.inference and on ONNX Runtime alike
    from ppnets.checkpoint import load_model_for_inference
    from ppnets.export import preprocess_transform
    from ppnets.deploy.inputs import iterate_batches, list_inputs
    from ppnets.engine.infer import dynamic_runner
    run_dynamic = dynamic_runner(load_model_for_inference(cfg), multilabel=True)
    predictors = [Predictor(multilabel_run["model_dir"], backend=b, cpu_threads=1) for b in ("paddle", "onnxruntime")]
    assert all(p.multilabel and p.threshold == 0.3 for p in predictors)
    files = list_inputs(os.path.join(pairs, "val"))
    for _, batch in iterate_batches(files, preprocess_transform(cfg), 8):
        reference = run_dynamic(batch)
        for predictor in predictors:
            probs = predictor.run(batch)
            np.testing.assert_allclose(probs, reference, atol=1e-4)
            assert ((probs > 0) & (probs < 1)).all() and not np.allclose(probs.sum(axis=1), 1.0)
    # inference prints the classes above the threshold (possibly none), named by the label map
    text = _tool(path, "infer", "-o", f"Global.pretrained_model={best}", "-o", "Infer.threshold=0.0")
    lines = [line for line in text.splitlines() if line.startswith(os.path.join(pairs, "val"))]
    assert len(lines) == 24 and all(line.count("(") == 10 for line in lines)  # threshold 0: every class
    text = _tool(path, "infer", "-o", f"Global.pretrained_model={best}", "-o", "Infer.threshold=1.0")
    assert text.count("(no class above the threshold)") == 24


def test_predict_tool_prints_the_classes_above_the_threshold(pairs, multilabel_run):
    from ppnets.deploy.inputs import classify_files, list_inputs
    from ppnets.deploy.postprocess import format_result
    model_dir, val = multilabel_run["model_dir"], os.path.join(pairs, "val")
    predictor = Predictor(model_dir, backend="paddle", cpu_threads=1)

    def predict(*extra):
        r = subprocess.run([sys.executable, "tools/predict.py", "--model_dir", model_dir, "--image", val,
                            "--backend", "paddle", *extra], cwd=REPO, capture_output=True, text=True, timeout=600)
        assert r.returncode == 0, r.stderr[-2000:]
        return r.stdout.strip().splitlines()

    for threshold, extra in ((0.3, ()), (0.45, ("--threshold", "0.45"))):  # the export's, then the option's
        expected = [format_result(r) for r in classify_files(list_inputs(val), predictor.transform, 16,
                                                             predictor.run, 5, predictor.label_names,
                                                             threshold=threshold)]
        assert predict(*extra) == expected
        assert all(s >= threshold for r in expected for s in map(float, re.findall(r": ([\d.]+)", r)))
    r = subprocess.run([sys.executable, "tools/predict.py", "--model_dir", model_dir, "--image", val, "--threshold",
                        "1.5"], cwd=REPO, capture_output=True, text=True, timeout=600)
    assert r.returncode == 2 and "--threshold: expected a probability in [0, 1], got 1.5" in r.stderr


def test_serving_answers_the_classes_above_the_threshold(pairs, multilabel_run):
    import httpx
    from helpers.deploy import start_server
    from ppnets.deploy.postprocess import threshold_results
    model_dir = multilabel_run["model_dir"]
    predictor = Predictor(model_dir, backend="paddle", cpu_threads=1)
    proc, url = start_server(model_dir, ["--backend", "paddle", "--threads", "1"])
    try:
        info = httpx.get(url + "/model", timeout=30).json()
        assert info["multilabel"] is True and info["threshold"] == 0.3
        for name in sorted(os.listdir(os.path.join(pairs, "val")))[:4]:
            data = open(os.path.join(pairs, "val", name), "rb").read()
            probs = predictor.run(np.asarray(predictor.transform(data))[None])
            for query, threshold in (("", 0.3), ("?threshold=0.05", 0.05)):
                answer = httpx.post(url + "/predict" + query, files={"image": (name, data, "image/png")},
                                    timeout=60).json()["results"]
                expected = threshold_results(["upload"], probs, threshold, predictor.label_names)[0]
                assert [r["class_id"] for r in answer] == expected["class_ids"]
                np.testing.assert_allclose([r["score"] for r in answer], expected["scores"], atol=1e-4)
                assert all(r["score"] >= threshold for r in answer)
        bad = httpx.post(url + "/predict?threshold=2", content=data, headers={"Content-Type": "image/png"},
                         timeout=60)
        assert bad.status_code == 400 and bad.json() == {"error": "threshold: expected a probability from 0 to 1, "
                                                                  "got '2'"}
    finally:
        proc.terminate()
        proc.wait(timeout=30)


def test_multilabel_config_rules(pairs, digits_slice, tmp_path):
    ml = {"Global.use_multilabel": True, "Global.image_shape": "[3, 32, 64]",
          "DataLoader.Train.dataset": f"{{name: MultiLabelDataset, image_root: {pairs}, "
                                      f"cls_label_path: {pairs}/train_list.txt}}",
          "DataLoader.Eval.dataset": f"{{name: MultiLabelDataset, image_root: {pairs}, "
                                     f"cls_label_path: {pairs}/val_list.txt}}"}
    with pytest.raises(ConfigError) as e:
        load_small_config(digits_slice, str(tmp_path), **ml, **{
            "DataLoader.Train.dataset.batch_transform_ops": "[{MixupOperator: {alpha: 0.2}}]"})
    lines = str(e.value).splitlines()
    assert lines[0].startswith("Loss.Train.0.CELoss: Global.use_multilabel is true; use a multi-label loss "
                               "(MultiLabelAsymmetricLoss, MultiLabelLoss)")
    assert "Metric.Eval.0.TopkAcc: Global.use_multilabel is true; use a multi-label metric (AccuracyScore, " \
           "HammingDistance, MultiLabelF1, MultiLabelMAP)" in lines
    assert any(line.startswith("DataLoader.Train.dataset.batch_transform_ops: Mixup/CutMix") for line in lines)
    with pytest.raises(ConfigError, match=r"DataLoader\.Train\.dataset\.name: MultiLabelDataset with "
                                          r"Global\.use_multilabel: false; set Global\.use_multilabel: true"):
        load_small_config(digits_slice, str(tmp_path), **dict(ml, **{"Global.use_multilabel": False}))
    with pytest.raises(ConfigError, match=r"Metric\.Eval\.0\.HammingDistance: lower is better"):
        load_small_config(digits_slice, str(tmp_path), **ml, **{
            "Loss.Train": "[{MultiLabelLoss: {}}]", "Loss.Eval": "[{MultiLabelAsymmetricLoss: {}}]",
            "Metric.Train": "[{AccuracyScore: {}}]", "Metric.Eval": "[{HammingDistance: {}}, {MultiLabelMAP: {}}]"})
