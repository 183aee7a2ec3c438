"""Training features tested for their effect: accumulation, EMA, AMP state, reproducibility,
to_static, multi-process training (the NaN guard, kill -9 and signals: tests/test_run_control.py)."""
from __future__ import annotations

import os
import re
import subprocess
import sys

import numpy as np
import paddle
import pytest

from ppnets.engine import Trainer
from ppnets.errors import ConfigError

from helpers.processes import iter_losses, train_cmd
from helpers.runs import REPO, load_small_config, small_overrides

# SqueezeNet has no BatchNorm, so a micro-batch split does not change the maths
NO_BN = {"Arch.name": "SqueezeNet1_1", "Arch.dropout": 0.0}
CONSTANT_SGD = "{name: Momentum, momentum: 0.9, lr: {name: Constant, learning_rate: 0.01}}"


def _weights(engine):
    return {k: v.numpy().copy() for k, v in engine.model.state_dict().items()}


def test_gradient_accumulation_equals_one_step_on_a_k_times_batch(digits_slice, tmp_path):
    runs = {}
    for name, batch, freq in (("accum", 4, 2), ("big", 8, 1)):
        cfg = load_small_config(digits_slice, str(tmp_path / name), **NO_BN, **{
            "Global.epochs": 1, "Global.update_freq": freq, "Optimizer": CONSTANT_SGD,
            "DataLoader.Train.sampler.batch_size": batch, "DataLoader.Train.sampler.shuffle": False,
            "Global.eval_during_train": False})
        engine = Trainer(cfg)
        engine.train()
        runs[name] = (_weights(engine), engine.state.global_step)
    assert runs["accum"][1] == 30 and runs["big"][1] == 15
    start = Trainer(load_small_config(digits_slice, str(tmp_path / "init"), **NO_BN))
    moved = 0
    for key, value in runs["big"][0].items():
        np.testing.assert_allclose(runs["accum"][0][key], value, rtol=1e-4, atol=1e-6, err_msg=key)
        moved += not np.allclose(value, start.model.state_dict()[key].numpy())
    assert moved > 0  # training changed the weights, so the comparison is meaningful


def test_ema_weights_differ_and_are_restored_on_resume(digits_slice, tmp_path):
    cfg = load_small_config(digits_slice, str(tmp_path / "a"), **{"Global.epochs": 2, "EMA.decay": 0.9})
    engine = Trainer(cfg)
    engine.train()
    raw, ema = _weights(engine), {k: v.numpy().copy() for k, v in engine.ema.model.state_dict().items()}
    differ = [k for k in raw if not np.allclose(raw[k], ema[k])]
    assert len(differ) > len(raw) // 2
    out = os.path.join(str(tmp_path / "a"), "MobileNetV2_x0_25")
    log = open(os.path.join(out, "train.log")).read()
    assert "[Eval][Epoch 2][EMA][Avg] loss: " in log
    assert os.path.isfile(os.path.join(out, "latest.pdema")) and os.path.isfile(os.path.join(out, "best_model_ema.pdparams"))
    resumed = Trainer(load_small_config(digits_slice, str(tmp_path / "b"), **{
        "Global.epochs": 3, "EMA.decay": 0.9, "Global.checkpoints": os.path.join(out, "latest")}))
    assert resumed.ema.updates == engine.ema.updates == 14
    for k, v in resumed.ema.model.state_dict().items():
        assert np.array_equal(v.numpy(), ema[k]), k


def test_amp_on_a_cpu_without_bf16_trains_in_fp32_and_fp16_is_refused(digits_slice, tmp_path):
    from ppnets.engine.amp import AmpSettings
    cfg = load_small_config(digits_slice, str(tmp_path), **{"AMP.enabled": True})
    amp = AmpSettings(cfg["AMP"], "cpu")
    assert amp.dtype == "bfloat16"
    assert amp.enabled == paddle.amp.is_bfloat16_supported()
    with pytest.raises(ConfigError, match=r"AMP\.dtype: float16 needs a GPU"):
        AmpSettings(dict(cfg["AMP"], dtype="float16"), "cpu")


def test_amp_training_on_this_cpu(digits_slice, tmp_path):
    """AMP enabled trains: with bf16 support under autocast, without it in float32 with a warning
    in the log and the very same losses as a run without AMP."""
    runs, logs = {}, {}
    for amp in (False, True):
        out = str(tmp_path / str(amp))
        cfg = load_small_config(digits_slice, out, **{"Global.epochs": 1, "AMP.enabled": amp,
                                                      "Global.eval_during_train": False})
        Trainer(cfg).train()
        logs[amp] = open(os.path.join(out, "MobileNetV2_x0_25", "train.log"), encoding="utf-8").read()
        runs[amp] = iter_losses(os.path.join(out, "MobileNetV2_x0_25", "train.log"))
    assert len(runs[True]) == 7
    if paddle.amp.is_bfloat16_supported():
        assert np.isfinite(runs[True]).all()
    else:
        assert "AMP: this CPU has no bfloat16 support; training in float32" in logs[True]
        assert "no bfloat16 support" not in logs[False]
        assert runs[True] == runs[False]


class _CountingScaler:
    """Stands in for paddle.amp.GradScaler, which is GPU-only: same interface, observable state."""

    def __init__(self):
        self.scale_value, self.good_steps = 1024.0, 0

    def scale(self, loss):
        return loss * 1.0

    def step(self, optimizer):
        optimizer.step()

    def update(self):
        self.good_steps += 1
        if self.good_steps % 3 == 0:
            self.scale_value *= 2

    def state_dict(self):
        return {"scale": self.scale_value, "good_steps": self.good_steps}

    def load_state_dict(self, state):
        self.scale_value, self.good_steps = state["scale"], state["good_steps"]


def test_loss_scaler_state_is_saved_and_restored(digits_slice, tmp_path, monkeypatch):
    from ppnets.engine import amp as amp_mod
    monkeypatch.setattr(amp_mod.AmpSettings, "make_scaler", lambda self: _CountingScaler())
    cfg = load_small_config(digits_slice, str(tmp_path / "a"), **{"Global.epochs": 1})
    engine = Trainer(cfg)
    engine.train()
    assert engine.scaler.state_dict() == {"scale": 4096.0, "good_steps": 7}
    out = os.path.join(str(tmp_path / "a"), "MobileNetV2_x0_25", "latest")
    resumed = Trainer(load_small_config(digits_slice, str(tmp_path / "b"), **{
        "Global.epochs": 2, "Global.checkpoints": out}))
    assert resumed.scaler.state_dict() == {"scale": 4096.0, "good_steps": 7}


def test_seed_makes_two_runs_identical(digits_slice, tmp_path):
    losses = []
    common = {"Global.epochs": 2, "DataLoader.Train.loader.num_workers": 2, "Arch.dropout": 0.2,
              "DataLoader.Train.dataset.transform_ops.1": "{RandCropImage: {size: 32, scale: [0.5, 1.0]}}"}
    for name, seed in (("a", {}), ("b", {}), ("c", {"Global.seed": 7})):  # c differs in the seed only
        cfg = load_small_config(digits_slice, str(tmp_path / name), **common, **seed)
        Trainer(cfg).train()
        losses.append(iter_losses(os.path.join(str(tmp_path / name), "MobileNetV2_x0_25", "train.log")))
    assert len(losses[0]) == len(losses[2]) == 14 and losses[0] == losses[1]
    assert all(x != y for x, y in zip(losses[2], losses[0]))  # other weights, crops and dropout at every step


@pytest.mark.slow
def test_to_static_training_matches_dynamic_for_a_whole_epoch(digits_slice, tmp_path):
    # the dynamic graph would use oneDNN convolutions, to_static Paddle's own: with Paddle's kernels in
    # both, every step (forward, backward and update) must give the same loss
    runs = []
    for mode in (False, True):
        cfg = load_small_config(digits_slice, str(tmp_path / str(mode)), **{
            "Global.epochs": 1, "Global.to_static": mode, "Global.eval_during_train": False,
            "Global.conv_backend": "paddle"})
        Trainer(cfg).train()
        runs.append(iter_losses(os.path.join(str(tmp_path / str(mode)), "MobileNetV2_x0_25", "train.log")))
    assert len(runs[0]) == len(runs[1]) == 7
    assert len(set(runs[0])) > 1  # the weights were updated between steps
    np.testing.assert_allclose(runs[1], runs[0], rtol=1e-6)


# ----------------------------------------------------------------------------- processes


def _launch(nproc, tool, digits_slice, out, log_dir, **extra):
    over = [x for o in small_overrides(digits_slice, out, **{"Global.print_batch_step": 1, **extra}) for x in ("-o", o)]
    cmd = [sys.executable, "-m", "paddle.distributed.launch", "--nproc_per_node", str(nproc), "--log_dir", log_dir,
           tool, "-c", "configs/mobilenetv2.yaml", *over]
    r = subprocess.run(cmd, cwd=REPO, capture_output=True, text=True, timeout=600)
    assert r.returncode == 0, r.stdout[-3000:] + r.stderr[-3000:]


def _eval_line(path):
    m = re.findall(r"\[Eval\]\[Avg\] loss: ([\d.]+), top1: ([\d.]+), top5: ([\d.]+), samples: (\d+)", open(path).read())
    assert m, open(path).read()[-2000:]
    return [float(v) for v in m[-1]]


@pytest.mark.slow
@pytest.mark.distributed
def test_two_process_launch_equals_one_process_with_double_batch(digits_slice, tmp_path):
    common = dict(NO_BN, **{"Global.epochs": 1, "Optimizer": CONSTANT_SGD, "Global.eval_during_train": False,
                            "DataLoader.Eval.sampler.batch_size": 4})
    single = subprocess.run(train_cmd(digits_slice, str(tmp_path / "one"), **common,
                                       **{"DataLoader.Train.sampler.batch_size": 8}),
                            cwd=REPO, capture_output=True, text=True, timeout=600)
    assert single.returncode == 0, single.stderr
    _launch(2, "tools/train.py", digits_slice, str(tmp_path / "two"), str(tmp_path / "log"), **common,
            **{"DataLoader.Train.sampler.batch_size": 4})
    one = iter_losses(str(tmp_path / "one" / "SqueezeNet1_1" / "train.log"))
    two = iter_losses(str(tmp_path / "two" / "SqueezeNet1_1" / "train.log"))
    assert len(one) == len(two) == 15
    np.testing.assert_allclose(two, one, rtol=2e-4)
    import glob
    assert len(glob.glob(str(tmp_path / "two" / "SqueezeNet1_1" / "vdl" / "vdlrecords.*"))) == 1  # rank 0 only
    # distributed evaluation (30 images, 2 ranks × batch 4: the sampler pads to 32) equals a single process's
    weights = str(tmp_path / "one" / "SqueezeNet1_1" / "latest")
    ev = subprocess.run([sys.executable, "tools/eval.py", "-c", "configs/mobilenetv2.yaml"]
                        + [x for o in small_overrides(digits_slice, str(tmp_path / "ev1"), **common,
                                                      **{"Global.pretrained_model": weights}) for x in ("-o", o)],
                        cwd=REPO, capture_output=True, text=True, timeout=600)
    assert ev.returncode == 0, ev.stderr
    _launch(2, "tools/eval.py", digits_slice, str(tmp_path / "ev2"), str(tmp_path / "log2"), **common,
            **{"Global.pretrained_model": weights})
    one_eval = _eval_line(str(tmp_path / "ev1" / "SqueezeNet1_1" / "eval.log"))
    two_eval = _eval_line(str(tmp_path / "ev2" / "SqueezeNet1_1" / "eval.log"))
    assert one_eval[3] == two_eval[3] == 30
    np.testing.assert_allclose(two_eval, one_eval, rtol=1e-5)
