"""Real short training runs: logging, checkpoints, resume, pretrained loading, eval, export and the predictor."""
from __future__ import annotations

import copy
import glob
import os
import re
import subprocess
import sys

import numpy as np
import paddle
import pytest

from ppnets.data import build_transforms
from ppnets.engine import Trainer
from ppnets.checkpoint import load_pretrained, portable_optimizer_state, read_weights, save_checkpoint
from ppnets.checkpoint import load_model_for_inference
from ppnets.deploy import Predictor
from ppnets.export import export_model, preprocess_ops
from ppnets.deploy.inputs import classify_files, iterate_batches, list_inputs
from ppnets.engine.infer import dynamic_runner
from ppnets.errors import CheckpointError, DataError

import ppnets
from helpers.runs import REPO, load_small_config, small_overrides


@pytest.fixture(scope="module")
def trained(digits_slice, tmp_path_factory):
    """One 6-epoch run (7 iterations each) shared by the tests below."""
    out = str(tmp_path_factory.mktemp("run"))
    cfg = load_small_config(digits_slice, out, **{"Global.epochs": 6, "Global.save_interval": 4})
    engine = Trainer(cfg)
    result = engine.train()
    return {"cfg": cfg, "engine": engine, "result": result, "out": os.path.join(out, cfg["Arch"]["name"])}


def _log_losses(path):
    return [float(line.split("loss: ")[1].split()[0].rstrip(","))
            for line in open(path) if "[Train]" in line and "[Avg]" in line]


def test_training_writes_logs_checkpoints_and_visualdl(trained):
    out = trained["out"]
    losses = _log_losses(os.path.join(out, "train.log"))
    assert len(losses) == 6 and losses[-1] < 0.8 * losses[0]
    log = open(os.path.join(out, "train.log")).read()
    assert "[Train][Epoch 1/6][Iter 1/7] lr: " in log and "batch_cost: " in log and "ips: " in log
    assert "[Eval][Epoch 6][Avg] loss: " in log and "top1: " in log and "top5: " in log
    for name in ("latest", "best_model", "epoch_4"):
        for ext in ("pdparams", "pdopt", "pdstates"):
            assert os.path.isfile(os.path.join(out, f"{name}.{ext}")), (name, ext)
    assert not os.path.exists(os.path.join(out, "epoch_2.pdparams")) and not os.path.exists(os.path.join(out, "epoch_6.pdparams"))
    assert glob.glob(os.path.join(out, "vdl", "vdlrecords.*.log"))
    assert open(os.path.join(out, "label_list.txt")).read().split() == ["0", "1", "2"]
    assert os.path.isfile(os.path.join(out, "config.yaml"))
    assert not glob.glob(os.path.join(out, "*.tmp*"))
    states = paddle.load(os.path.join(out, "latest.pdstates"))
    assert states["epoch"] == 6 and states["arch"] == "MobileNetV2_x0_25"
    assert states["best_metric"] == trained["result"]["best_metric"]


def test_resume_continues_at_the_right_epoch_and_lr(trained, digits_slice, tmp_path):
    out = trained["out"]
    fresh = Trainer(load_small_config(digits_slice, str(tmp_path / "fresh"), **{"Global.epochs": 6}))
    for _ in range(4 * fresh.steps_per_epoch):
        fresh.lr_scheduler.step()
    cfg = load_small_config(digits_slice, str(tmp_path / "resumed"),
                            **{"Global.epochs": 6, "Global.checkpoints": os.path.join(out, "epoch_4")})
    engine = Trainer(cfg)
    assert engine.state.start_epoch == 5
    assert engine.state.global_step == 4 * engine.steps_per_epoch
    assert engine.optimizer.get_lr() == pytest.approx(fresh.optimizer.get_lr(), rel=1e-9)
    assert engine.optimizer.get_lr() != fresh.lr_scheduler.base_lr
    states = paddle.load(os.path.join(out, "epoch_4.pdstates"))
    assert engine.state.best_metric == pytest.approx(states["best_metric"])   # not reset (PaddleClas resets it)
    result = engine.train()
    log = open(os.path.join(str(tmp_path / "resumed"), "MobileNetV2_x0_25", "train.log")).read()
    assert "[Train][Epoch 4/6]" not in log and "[Train][Epoch 5/6][Iter 1/7]" in log and "[Train][Epoch 6/6]" in log
    # the best of the checkpoint's best and the two new evaluations (top1 of 30 images: k/30, 5 decimals logged)
    top1 = {int(e): float(v) for e, v in re.findall(r"\[Eval\]\[Epoch (\d+)\]\[Avg\] .*top1: ([\d.]+)", log)}
    assert sorted(top1) == [5, 6]
    best, best_epoch = states["best_metric"], states["best_epoch"]
    for epoch in (5, 6):
        if top1[epoch] > best + 1e-4:
            best, best_epoch = top1[epoch], epoch
    assert result["best_metric"] == pytest.approx(best, abs=1e-5)
    assert result["best_epoch"] == best_epoch


def test_resume_restores_weights_and_optimizer_exactly(trained, tmp_path):
    engine = trained["engine"]
    prefix = str(tmp_path / "ck")
    save_checkpoint(prefix, engine.model, engine.optimizer, {"epoch": 6, "arch": engine.arch_name})
    cfg = copy.deepcopy(trained["cfg"])  # the same run, but writing into this test's own directory
    cfg["Global"]["output_dir"] = str(tmp_path / "out")
    cfg["Global"]["save_inference_dir"] = str(tmp_path / "out" / "inference")
    fresh = Trainer(cfg)
    from ppnets.checkpoint import load_checkpoint
    load_checkpoint(prefix, fresh.model, fresh.optimizer, engine.arch_name)
    for (k, a), b in zip(engine.model.state_dict().items(), fresh.model.state_dict().values()):
        assert np.array_equal(a.numpy(), b.numpy()), k
    # optimizer state is keyed by structured names, which are the same across model instances
    opt_a = portable_optimizer_state(engine.optimizer, engine.model)
    opt_b = portable_optimizer_state(fresh.optimizer, fresh.model)
    velocity = [k for k in opt_a if "velocity" in k]
    assert len(velocity) == len([p for p in engine.model.parameters() if not p.stop_gradient])
    assert velocity[0].startswith("conv1._conv.weight@")
    assert all(np.array_equal(opt_a[k].numpy(), opt_b[k].numpy()) for k in velocity)
    assert any(np.abs(opt_a[k].numpy()).sum() > 0 for k in velocity)


def test_interrupted_checkpoint_is_detected(trained, tmp_path):
    engine = trained["engine"]
    a, b = str(tmp_path / "a"), str(tmp_path / "b")
    save_checkpoint(a, engine.model, engine.optimizer, {"epoch": 1})
    bias = engine.model.out.bias.numpy().copy()  # the model is shared by the module: restored bit-exactly below
    try:
        engine.model.out.bias.set_value(bias + 1.0)
        save_checkpoint(b, engine.model, engine.optimizer, {"epoch": 2})
    finally:
        engine.model.out.bias.set_value(bias)
    os.replace(f"{b}.pdparams", f"{a}.pdparams")  # as if killed between two renames
    from ppnets.checkpoint import load_checkpoint
    with pytest.raises(CheckpointError, match=r"is inconsistent: .*a\.pdparams does not belong"):
        load_checkpoint(a, engine.model, engine.optimizer)


def test_checkpoint_from_another_architecture_is_refused(trained, digits_slice, tmp_path):
    cfg = load_small_config(digits_slice, str(tmp_path), **{"Arch.name": "MobileNetV2_x0_5",
                                                            "Global.checkpoints": os.path.join(trained["out"], "latest")})
    with pytest.raises(CheckpointError, match=r"saved from Arch\.name=MobileNetV2_x0_25, but the config builds "
                                              r"MobileNetV2_x0_5"):
        Trainer(cfg)


def test_pretrained_skips_mismatched_keys_and_reports(trained, caplog):
    model = ppnets.build_model("MobileNetV2_x0_25", class_num=5)
    report = load_pretrained(model, os.path.join(trained["out"], "best_model"))
    assert sorted(k.split()[0] for k in report["skipped"]) == ["out.bias", "out.weight"]
    assert report["missing"] == [] and report["unexpected"] == []
    assert len(report["loaded"]) == len(model.state_dict()) - 2
    src = read_weights(os.path.join(trained["out"], "best_model"))
    assert np.array_equal(model.state_dict()["conv1._conv.weight"].numpy(), src["conv1._conv.weight"])


@pytest.mark.parametrize("content, msg", [(None, "weights file not found"), (b"", "is empty"),
                                          (b"\x80\x04truncated", "truncated or not a Paddle file")])
def test_bad_pretrained_files(tmp_path, content, msg):
    path = tmp_path / "w.pdparams"
    if content is not None:
        path.write_bytes(content)
    with pytest.raises(CheckpointError, match=msg):
        load_pretrained(ppnets.build_model("MobileNetV2_x0_25", class_num=3), str(path))


def test_truncated_real_checkpoint_is_refused(trained, tmp_path):
    data = open(os.path.join(trained["out"], "latest.pdparams"), "rb").read()
    (tmp_path / "t.pdparams").write_bytes(data[: len(data) // 2])
    with pytest.raises(CheckpointError, match="truncated or not a Paddle file"):
        load_pretrained(ppnets.build_model("MobileNetV2_x0_25", class_num=3), str(tmp_path / "t"))


def test_class_num_must_match_dataset(digits_slice, tmp_path):
    with pytest.raises(DataError, match=r"Arch\.class_num=10 but the dataset has 3 classes \(0, 1, 2\)"):
        Trainer(load_small_config(digits_slice, str(tmp_path), **{"Arch.class_num": 10}))


def test_eval_tool_reports_metrics_and_confusion_csv(trained, digits_slice, tmp_path):
    from ppnets.engine.eval_report import run_evaluation
    cfg = load_small_config(digits_slice, str(tmp_path),
                            **{"Global.pretrained_model": os.path.join(trained["out"], "best_model")})
    res = run_evaluation(cfg)
    cm = res["confusion_matrix"]
    assert cm.shape == (3, 3) and cm.sum() == 30
    assert res["metrics"]["top1"] == pytest.approx(np.trace(cm) / 30)
    assert res["metrics"]["top1"] == pytest.approx(trained["result"]["best_metric"])
    rows = open(os.path.join(str(tmp_path), "MobileNetV2_x0_25", "confusion_matrix.csv")).read().splitlines()
    assert rows[0] == "true\\pred,0,1,2" and len(rows) == 4


@pytest.mark.slow
def test_export_and_predictor_match_dynamic_model(trained, digits_slice, tmp_path):
    cfg = load_small_config(digits_slice, str(tmp_path),
                            **{"Global.pretrained_model": os.path.join(trained["out"], "best_model"),
                               "Global.save_inference_dir": str(tmp_path / "inf")})
    export_model(cfg)
    for f in ("inference.json", "inference.pdiparams", "inference.yml"):
        assert os.path.isfile(tmp_path / "inf" / f)
    predictor = Predictor(str(tmp_path / "inf"), cpu_threads=1)
    assert predictor.label_names == ["0", "1", "2"]
    files = list_inputs(os.path.join(digits_slice, "val"))
    model = load_model_for_inference(cfg)
    transform = build_transforms(preprocess_ops(cfg))
    run = dynamic_runner(model)
    probs = {}
    for paths, batch in iterate_batches(files, transform, 7):
        p_static, p_dynamic = predictor.run(batch), run(batch)
        assert p_static.shape == (len(batch), 3)
        np.testing.assert_allclose(p_static.sum(1), 1.0, atol=1e-5)
        np.testing.assert_allclose(p_static, p_dynamic, atol=1e-4)
        probs.update(zip(paths, p_static))
    # another batch size, the predictor's own preprocessing: each file still gets its own top classes
    results = classify_files(files, predictor.transform, 16, predictor.run, 2, predictor.label_names)
    assert [r["file"] for r in results] == files
    for r in results:
        p = probs[r["file"]]
        assert r["class_ids"] == list(np.argsort(-p, kind="stable")[:2]), r
        assert r["label_names"] == [predictor.label_names[i] for i in r["class_ids"]]
        np.testing.assert_allclose(r["scores"], p[r["class_ids"]], atol=1e-5)
    assert len({r["class_ids"][0] for r in results}) > 1  # the trained model does not answer one class


def _top1_lines(stdout):
    """``{file: (label, class_id, score)}`` of the first class on each line of format_result's output."""
    rows = {}
    for line in stdout.splitlines():
        m = re.fullmatch(r"(.+\.png): (\S+) \((\d+)\): ([\d.]+)(?:, .*)?", line)
        if m:
            rows[m[1]] = (m[2], int(m[3]), float(m[4]))
    return rows


def _tool(*args, cwd=REPO):
    return subprocess.run([sys.executable, *args], cwd=cwd, capture_output=True, text=True, timeout=600)


@pytest.mark.slow
def test_command_line_tools_end_to_end(trained, digits_slice, tmp_path):
    weights = os.path.join(trained["out"], "best_model")
    over = [x for o in small_overrides(digits_slice, str(tmp_path), **{"Global.pretrained_model": weights,
                                                                       "Global.save_inference_dir": str(tmp_path / "inf")})
            for x in ("-o", o)]
    r = _tool("tools/eval.py", "-c", "configs/mobilenetv2.yaml", *over)
    assert r.returncode == 0, r.stderr
    assert "confusion matrix" in r.stdout and "per-class accuracy" in r.stdout
    r = _tool("tools/export_model.py", "-c", "configs/mobilenetv2.yaml", *over)
    assert r.returncode == 0, r.stderr
    for f in ("inference.json", "inference.pdiparams", "inference.yml"):
        assert os.path.isfile(tmp_path / "inf" / f), f
    r = _tool("tools/predict.py", "--model_dir", str(tmp_path / "inf"), "--image", os.path.join(digits_slice, "val", "1"),
              "--topk", "2")
    assert r.returncode == 0, r.stderr
    lines = r.stdout.strip().splitlines()
    assert len(lines) == 10 and all(line.count(" (") == 2 for line in lines)  # top-2 on each line
    predicted = _top1_lines(r.stdout)
    files = list_inputs(os.path.join(digits_slice, "val", "1"))
    assert sorted(predicted) == files
    predictor = Predictor(str(tmp_path / "inf"), cpu_threads=1)
    for paths, batch in iterate_batches(files, predictor.transform, 4):
        for path, p in zip(paths, predictor.run(batch)):
            label, cid, score = predicted[path]
            assert (label, cid) == (predictor.label_names[int(p.argmax())], int(p.argmax())), path
            assert score == pytest.approx(float(p.max()), abs=1e-4)
    r = _tool("tools/infer.py", "-c", "configs/mobilenetv2.yaml", *over)
    assert r.returncode == 0, r.stderr
    inferred = _top1_lines(r.stdout)
    files = list_inputs(os.path.join(digits_slice, "val"))
    assert sorted(inferred) == files
    cfg = load_small_config(digits_slice, str(tmp_path), **{"Global.pretrained_model": weights})
    run = dynamic_runner(load_model_for_inference(cfg))
    for paths, batch in iterate_batches(files, build_transforms(preprocess_ops(cfg)), 8):
        for path, p in zip(paths, run(batch)):
            label, cid, score = inferred[path]
            assert (label, cid) == (["0", "1", "2"][int(p.argmax())], int(p.argmax())), path
            assert score == pytest.approx(float(p.max()), abs=1e-4)


@pytest.mark.parametrize("args, msg", [
    (["tools/train.py", "-c", "configs/nope.yaml"], "ppnets: error: config file not found: configs/nope.yaml"),
    (["tools/train.py", "-c", "configs/mobilenetv2.yaml", "-o", "Global.epoch=1"],
     "ppnets: error: Global: unknown key 'epoch' (did you mean 'epochs'?)"),
    (["tools/eval.py", "-c", "configs/mobilenetv2.yaml"], "ppnets: error: Global.pretrained_model: required"),
    (["tools/predict.py", "--model_dir", "/nonexistent", "--image", "x.png"],
     "ppnets: error: /nonexistent: not an exported ppnets model"),
])
def test_user_errors_are_one_line_exit_2(args, msg):
    r = _tool(*args)
    assert r.returncode == 2
    assert r.stderr.strip().startswith(msg), r.stderr
    assert len(r.stderr.strip().splitlines()) == 1 and "Traceback" not in r.stderr


def test_debug_flag_shows_traceback():
    r = _tool("tools/train.py", "-c", "configs/nope.yaml", "--debug")
    assert r.returncode != 0 and "Traceback" in r.stderr and "ConfigError" in r.stderr


def test_the_python_api_shows_no_paddle_warning_unless_debugging(tmp_path):
    """``import ppnets`` and the model API keep Paddle's notes (compiler cache, BatchNorm statistics)
    off stderr; ``PPNETS_DEBUG=1`` (as ``--debug`` on a tool) lets them through."""
    code = ("import ppnets, paddle\n"
            "model = ppnets.build_model('MobileNetV2_x0_25', class_num=3)\n"
            "model.train()\n"
            "model(paddle.rand([2, 3, 32, 32])).sum().backward()\n"
            "model.eval()\n"
            "print(model(paddle.rand([1, 3, 32, 32])).shape)\n")
    env = {k: v for k, v in os.environ.items() if k not in ("PPNETS_DEBUG", "GLOG_minloglevel")}
    quiet = subprocess.run([sys.executable, "-c", code], cwd=tmp_path, capture_output=True, text=True, timeout=300,
                           env=env)
    assert quiet.returncode == 0 and quiet.stdout.strip() == "paddle.Size([1, 3])" and quiet.stderr == "", quiet.stderr
    loud = subprocess.run([sys.executable, "-c", code], cwd=tmp_path, capture_output=True, text=True, timeout=300,
                          env={**env, "PPNETS_DEBUG": "1"})
    assert loud.returncode == 0
    assert "No ccache found" in loud.stderr and "we now always track global mean and variance" in loud.stderr


def test_a_run_opens_with_a_banner_closes_with_a_summary_and_shows_no_paddle_warnings(digits_slice, tmp_path):
    """The user sees what is about to happen and what happened, and no Paddle noise on stderr."""
    import subprocess
    import sys
    out = str(tmp_path / "run")
    args = [x for o in small_overrides(digits_slice, out, **{"Global.epochs": 1}) for x in ("-o", o)]
    r = subprocess.run([sys.executable, os.path.join(REPO, "tools", "train.py"), "-c",
                        os.path.join(REPO, "configs", "mobilenetv2.yaml"), *args],
                       capture_output=True, text=True, timeout=600)
    assert r.returncode == 0, r.stderr
    assert r.stderr == ""  # no warnings of Paddle (or of anything else)
    log = open(os.path.join(out, "MobileNetV2_x0_25", "train.log"), encoding="utf-8").read()
    for line in ("model: MobileNetV2_x0_25 (", "data: train 120 images, val 30 images, 3 classes",
                 "schedule: 1 epoch × 7 iterations, batch 16", f"output: {os.path.join(out, 'MobileNetV2_x0_25')}",
                 "best top1: ", f"→ {os.path.join(out, 'MobileNetV2_x0_25', 'best_model')}.pdparams",
                 f"latest (epoch 1): {os.path.join(out, 'MobileNetV2_x0_25', 'latest')}.pdparams", "wall time: "):
        assert line in log, line
    # resuming the finished run says so, and trains nothing
    latest = os.path.join(out, "MobileNetV2_x0_25", "latest")
    r = subprocess.run([sys.executable, os.path.join(REPO, "tools", "train.py"), "-c",
                        os.path.join(REPO, "configs", "mobilenetv2.yaml"), *args, "-o", f"Global.checkpoints={latest}"],
                       capture_output=True, text=True, timeout=600)
    assert r.returncode == 0 and r.stderr == "", r.stderr
    assert f"nothing to do: the checkpoint {latest} has finished epoch 1 and Global.epochs is 1" in r.stdout
    assert "[Train]" not in r.stdout
