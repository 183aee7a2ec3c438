"""LR schedules (values at chosen steps vs hand-computed ones), optimizers, weight-decay exclusion,
gradient clipping and tools/plot_lr.py."""
from __future__ import annotations

import math
import os
import subprocess
import sys

import numpy as np
import paddle
import pytest

import ppnets
from ppnets.config import load_config
from ppnets.errors import ConfigError
from ppnets.optimizer import build_lr, build_optimizer, no_weight_decay_params

from helpers.runs import REPO, load_tool

DEFAULT = os.path.join(REPO, "configs", "mobilenetv2.yaml")


def lrs(cfg, epochs, steps_per_epoch):
    """The LR each update uses, stepping the way the engine does (per update, or per epoch)."""
    sched = build_lr(cfg, epochs, steps_per_epoch)
    n = epochs if sched.by_epoch else epochs * steps_per_epoch
    out = []
    for _ in range(n):
        out.append(float(sched.last_lr))
        sched.step()
    return out


def warm(k, steps, start, end):
    return start + (end - start) * k / steps


# ----------------------------------------------------------------------------- schedules

def test_cosine_with_warmup_by_iteration():
    got = lrs({"name": "Cosine", "learning_rate": 0.1, "warmup_epoch": 1, "warmup_start_lr": 0.01}, 3, 4)
    want = [warm(k, 4, 0.01, 0.1) for k in range(4)] + [0.05 * (1 + math.cos(math.pi * t / 8)) for t in range(8)]
    np.testing.assert_allclose(got, want, rtol=1e-6, atol=1e-9)
    assert got[1] == pytest.approx(0.0325) and got[4] == pytest.approx(0.1) and got[8] == pytest.approx(0.05)


def test_cosine_with_warmup_by_epoch_ignores_the_iterations():
    got = lrs({"name": "Cosine", "learning_rate": 0.2, "eta_min": 0.02, "warmup_epoch": 2,
               "warmup_start_lr": 0.0, "by_epoch": True}, 6, 50)
    want = [0.0, 0.1] + [0.02 + 0.09 * (1 + math.cos(math.pi * t / 4)) for t in range(4)]
    np.testing.assert_allclose(got, want, rtol=1e-6, atol=1e-9)


def test_constant_warmup_by_fractional_epoch():
    got = lrs({"name": "Constant", "learning_rate": 0.4, "warmup_epoch": 0.5, "warmup_start_lr": 0.1}, 2, 8)
    np.testing.assert_allclose(got, [0.1, 0.175, 0.25, 0.325] + [0.4] * 12, rtol=1e-6)


def test_piecewise_boundaries_count_from_the_start_of_training():
    got = lrs({"name": "Piecewise", "decay_epochs": [2, 4], "values": [0.1, 0.01, 0.001], "warmup_epoch": 1,
               "warmup_start_lr": 0.04}, 5, 3)
    want = [0.04, 0.06, 0.08] + [0.1] * 3 + [0.01] * 6 + [0.001] * 3
    np.testing.assert_allclose(got, want, rtol=1e-6)


def test_multistep_milestones_count_from_the_start_of_training():
    got = lrs({"name": "MultiStep", "learning_rate": 0.2, "milestones": [2, 3], "gamma": 0.5,
               "warmup_epoch": 0.5, "warmup_start_lr": 0.0}, 4, 4)
    want = [0.0, 0.1] + [0.2] * 6 + [0.1] * 4 + [0.05] * 4
    np.testing.assert_allclose(got, want, rtol=1e-6, atol=1e-12)


def test_step_decays_every_step_size_epochs_after_warmup():
    got = lrs({"name": "Step", "learning_rate": 0.1, "step_size": 1.5, "gamma": 0.5, "warmup_epoch": 1,
               "warmup_start_lr": 0.05}, 5, 2)
    want = [0.05, 0.075] + [0.1 * 0.5 ** (t // 3) for t in range(8)]
    np.testing.assert_allclose(got, want, rtol=1e-6)
    by_epoch = lrs({"name": "Step", "learning_rate": 0.1, "step_size": 2, "gamma": 0.1, "by_epoch": True}, 5, 7)
    np.testing.assert_allclose(by_epoch, [0.1, 0.1, 0.01, 0.01, 0.001], rtol=1e-6)


def test_exponential_gamma_is_per_epoch_whatever_the_stepping():
    per_iter = lrs({"name": "Exponential", "learning_rate": 0.1, "gamma": 0.9}, 3, 4)
    np.testing.assert_allclose(per_iter, [0.1 * 0.9 ** (t / 4) for t in range(12)], rtol=1e-6)
    per_epoch = lrs({"name": "Exponential", "learning_rate": 0.1, "gamma": 0.9, "by_epoch": True}, 3, 4)
    np.testing.assert_allclose(per_epoch, [0.1, 0.09, 0.081], rtol=1e-6)
    np.testing.assert_allclose(per_iter[::4], per_epoch, rtol=1e-6)  # equal at every epoch boundary


def test_polynomial_after_warmup():
    got = lrs({"name": "Polynomial", "learning_rate": 0.1, "end_lr": 0.001, "power": 2.0, "warmup_epoch": 1,
               "warmup_start_lr": 0.0}, 4, 5)
    want = [warm(k, 5, 0.0, 0.1) for k in range(5)] + [0.099 * (1 - t / 15) ** 2 + 0.001 for t in range(15)]
    np.testing.assert_allclose(got, want, rtol=1e-6, atol=1e-12)


def test_one_cycle_rises_then_anneals():
    got = lrs({"name": "OneCycle", "learning_rate": 0.1, "divide_factor": 10, "end_learning_rate": 0.001,
               "phase_pct": 0.25}, 2, 10)

    def cos_anneal(a, b, pct):
        return b + (a - b) / 2 * (math.cos(math.pi * pct) + 1)

    want = [cos_anneal(0.01, 0.1, t / 4) for t in range(5)] + [cos_anneal(0.1, 0.001, (t - 4) / 15)
                                                               for t in range(5, 20)]
    np.testing.assert_allclose(got, want, rtol=1e-6)
    assert got[0] == pytest.approx(0.01) and got[4] == pytest.approx(0.1) and max(got) == pytest.approx(0.1)


def test_warmup_ramps_to_where_the_main_schedule_starts():
    # OneCycle starts at learning_rate / divide_factor: the warmup ends there, without a jump
    got = lrs({"name": "OneCycle", "learning_rate": 0.1, "divide_factor": 4, "warmup_epoch": 1,
               "warmup_start_lr": 0.0}, 3, 4)
    np.testing.assert_allclose(got[:5], [0.0, 0.00625, 0.0125, 0.01875, 0.025], rtol=1e-6)


@pytest.mark.parametrize("cfg, msg", [
    ({"name": "Cosine", "learning_rate": 0.1, "warmup_epoch": 1, "warmup_start_lr": 0.2},
     "warmup_start_lr=0.2 must be below"),
    ({"name": "Cosine", "learning_rate": 0.1, "warmup_epoch": 5}, "exceeds Global.epochs=3"),
    ({"name": "MultiStep", "learning_rate": 0.1, "milestones": [1, 2], "warmup_epoch": 1},
     "must come after the warmup"),
    ({"name": "MultiStep", "learning_rate": 0.1, "milestones": [2, 2]}, "strictly increasing"),
    ({"name": "Step", "learning_rate": 0.1, "step_size": 0}, "step_size"),
    ({"name": "Exponential", "learning_rate": 0.1, "gamma": 1.5}, "gamma"),
    ({"name": "OneCycle", "learning_rate": 0.1, "anneal_strategy": "exp"}, "cos or linear"),
    ({"name": "Piecewise", "decay_epochs": [1], "values": [0.1, 0.01], "learning_rate": 0.5}, "differs"),
])
def test_schedule_errors(cfg, msg):
    with pytest.raises(ConfigError, match=msg):
        build_lr(cfg, 3, 4)


def test_schedule_options_are_validated_by_the_config_loader(tmp_path):
    cfg = load_config(DEFAULT, ["Optimizer.lr={name: Step, learning_rate: 1, step_size: 2}"])
    assert cfg["Optimizer"]["lr"]["learning_rate"] == 1.0 and isinstance(cfg["Optimizer"]["lr"]["learning_rate"], float)
    with pytest.raises(ConfigError, match=r"Optimizer\.lr: unknown key 'step_sise' \(did you mean 'step_size'"):
        load_config(DEFAULT, ["Optimizer.lr={name: Step, learning_rate: 0.1, step_sise: 2}"])
    with pytest.raises(ConfigError, match=r"unknown LR schedule 'Cosin'.*did you mean 'Cosine'"):
        load_config(DEFAULT, ["Optimizer.lr.name=Cosin"])


# ----------------------------------------------------------------------------- optimizers

class Tiny(paddle.nn.Layer):
    def __init__(self):
        super().__init__()
        self.conv = paddle.nn.Conv2D(3, 4, 3)
        self.bn = paddle.nn.BatchNorm2D(4)
        self.fc = paddle.nn.Linear(4, 2)

    def forward(self, x):
        return self.fc(self.bn(self.conv(x)).mean(axis=[2, 3]))


def tiny():
    paddle.seed(0)
    model = Tiny()
    for _, p in model.named_parameters():
        if not p.stop_gradient:
            p.set_value(paddle.full(p.shape, 0.5, p.dtype))  # non-zero biases too: decay would show
    return model


def zero_grad_step(model, opt):
    """One update with all-zero gradients: only weight decay can move a parameter."""
    (model(paddle.ones([2, 3, 5, 5])) * 0.0).sum().backward()
    opt.step()
    opt.clear_grad()


def moved(model):
    return {name for name, p in model.named_parameters()
            if not p.stop_gradient and not np.allclose(p.numpy(), 0.5)}


OPT = {"lr": {"name": "Constant", "learning_rate": 0.1}}
COUPLED = {"regularizer": {"name": "L2", "coeff": 0.1}}
ALL = {"conv.weight", "conv.bias", "bn.weight", "bn.bias", "fc.weight", "fc.bias"}
WEIGHTS = {"conv.weight", "fc.weight"}


@pytest.mark.parametrize("name, extra", [("Momentum", COUPLED), ("SGD", COUPLED), ("Adam", COUPLED),
                                         ("RMSProp", COUPLED), ("AdamW", {"weight_decay": 0.1})])
def test_one_dim_params_are_not_decayed(name, extra):
    model = tiny()
    zero_grad_step(model, build_optimizer({"name": name, **OPT, **extra}, 1, 1, model))
    assert moved(model) == ALL  # decay moves every parameter by default
    model = tiny()
    zero_grad_step(model, build_optimizer({"name": name, **OPT, **extra, "one_dim_param_no_weight_decay": True},
                                          1, 1, model))
    assert moved(model) == WEIGHTS  # BN scale/shift and biases stay


def test_decay_amount_and_name_based_exclusion():
    model = tiny()
    opt = build_optimizer({"name": "SGD", **OPT, **COUPLED, "no_weight_decay_name": ["bias"]}, 1, 1, model)
    zero_grad_step(model, opt)
    assert moved(model) == {"conv.weight", "bn.weight", "fc.weight"}
    np.testing.assert_allclose(model.fc.weight.numpy(), 0.5 - 0.1 * 0.1 * 0.5, rtol=1e-6)  # w − lr·coeff·w
    assert [p.name for p in no_weight_decay_params(model, names="bn conv.bias")] == \
        [model.conv.bias.name, model.bn.weight.name, model.bn.bias.name]


def test_rebuilding_without_exclusion_restores_decay():
    model = tiny()
    build_optimizer({"name": "SGD", **OPT, **COUPLED, "one_dim_param_no_weight_decay": True}, 1, 1, model)
    opt = build_optimizer({"name": "SGD", **OPT, **COUPLED}, 1, 1, model)
    zero_grad_step(model, opt)
    assert moved(model) == ALL


def test_rmsprop_step_matches_its_formula():
    w0, g = np.array([1.0, -2.0, 3.0], np.float32), np.array([0.5, 1.0, -4.0], np.float32)
    lr, rho, eps = 0.01, 0.9, 1e-6
    w = paddle.create_parameter([3], "float32", default_initializer=paddle.nn.initializer.Assign(w0))
    opt = build_optimizer({"name": "RMSProp", "lr": {"name": "Constant", "learning_rate": lr}, "rho": rho,
                           "epsilon": eps}, 1, 1, [w])
    for step in range(2):
        (w * paddle.to_tensor(g)).sum().backward()
        opt.step()
        opt.clear_grad()
    r1 = (1 - rho) * g ** 2
    w1 = w0 - lr * g / np.sqrt(r1 + eps)
    r2 = rho * r1 + (1 - rho) * g ** 2
    np.testing.assert_allclose(w.numpy(), w1 - lr * g / np.sqrt(r2 + eps), rtol=1e-5)


def test_clip_norm_caps_the_global_norm_across_decay_groups():
    lin = paddle.nn.Linear(2, 1)
    lin.weight.set_value(paddle.zeros([2, 1]))
    lin.bias.set_value(paddle.zeros([1]))
    # gradients: weight (3, 4), bias 12 → global norm 13
    cfg = {"name": "SGD", "lr": {"name": "Constant", "learning_rate": 1.0}, **COUPLED, "clip_norm": 1.0,
           "one_dim_param_no_weight_decay": True}
    opt = build_optimizer(cfg, 1, 1, lin)
    ((lin.weight.flatten() * paddle.to_tensor([3.0, 4.0])).sum() + lin.bias.sum() * 12.0).backward()
    opt.step()
    update = -np.concatenate([lin.weight.numpy().ravel(), lin.bias.numpy()])  # decay of zeros is zero
    np.testing.assert_allclose(update, np.array([3.0, 4.0, 12.0]) / 13.0, rtol=1e-5)
    assert np.linalg.norm(update) == pytest.approx(1.0, rel=1e-5)


def test_small_gradients_are_not_clipped():
    w = paddle.create_parameter([2], "float32", default_initializer=paddle.nn.initializer.Constant(0.0))
    opt = build_optimizer({"name": "SGD", "lr": {"name": "Constant", "learning_rate": 1.0}, "clip_norm": 10.0},
                          1, 1, [w])
    (w * paddle.to_tensor([0.3, 0.4])).sum().backward()
    opt.step()
    np.testing.assert_allclose(w.numpy(), [-0.3, -0.4], rtol=1e-6)


def test_optimizer_config_keys_and_errors():
    cfg = load_config(DEFAULT, ["Optimizer.name=RMSProp", "Optimizer.momentum=0.5", "Optimizer.clip_norm=5",
                                "Optimizer.no_weight_decay_name=[bn, bias]"])
    opt = build_optimizer(cfg["Optimizer"], 2, 3, tiny())
    assert isinstance(opt, paddle.optimizer.RMSProp) and opt._grad_clip.clip_norm == 5.0
    with pytest.raises(ConfigError, match=r"Optimizer: unknown key 'rhoo' \(did you mean 'rho'"):
        load_config(DEFAULT, ["Optimizer.name=RMSProp", "Optimizer.rhoo=0.9", "Optimizer.momentum=0.0"])
    with pytest.raises(ConfigError, match="clip_norm: expected a positive number"):
        build_optimizer({"name": "SGD", **OPT, "clip_norm": 0}, 1, 1, tiny())


def test_default_config_optimizer_is_unchanged():
    cfg = load_config(DEFAULT)["Optimizer"]
    assert cfg["clip_norm"] is None and not cfg["one_dim_param_no_weight_decay"] and cfg["no_weight_decay_name"] is None
    model = tiny()
    opt = build_optimizer(cfg, 30, 22, model)
    assert isinstance(opt, paddle.optimizer.Momentum) and opt._grad_clip is None
    assert all(getattr(p, "regularizer", None) is None for p in model.parameters())
    sched = opt._learning_rate
    assert sched.warmup_steps == 22 and sched.start_lr == 0.002 and sched.end_lr == 0.02


# ----------------------------------------------------------------------------- tools/plot_lr.py

def test_plot_lr_writes_a_png_without_training(tmp_path, digits_slice):
    out = tmp_path / "lr.png"
    proc = subprocess.run([sys.executable, os.path.join(REPO, "tools", "plot_lr.py"), "-c", DEFAULT,
                           "-o", f"DataLoader.Train.dataset.root={digits_slice}/train",
                           "-o", "Optimizer.lr={name: MultiStep, learning_rate: 0.1, milestones: [10, 20], "
                                 "warmup_epoch: 2, warmup_start_lr: 0.01}",
                           "--out", str(out)], capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, proc.stderr
    # 120 images, batch 64, drop_last → 1 update per epoch
    assert f"{out}: MultiStep over 30 epochs × 1 updates" in proc.stdout
    data = out.read_bytes()
    assert data[:8] == b"\x89PNG\r\n\x1a\n" and len(data) > 10_000


def test_plot_lr_schedule_values_and_derived_steps(digits_slice):
    plot_lr = load_tool("plot_lr")
    cfg = load_config(DEFAULT, [f"DataLoader.Train.dataset.root={digits_slice}/train",
                                "DataLoader.Train.sampler.batch_size=16", "DataLoader.Train.sampler.drop_last=false",
                                "Global.epochs=2"])
    assert plot_lr.updates_per_epoch(cfg) == 8            # ceil(120 / 16)
    assert plot_lr.updates_per_epoch(cfg, nranks=2) == 4   # 60 per process
    xs, values, warmup, by_epoch = plot_lr.schedule_values(cfg, 8)
    assert len(values) == 16 and xs[8] == 1.0 and warmup == 1.0 and not by_epoch
    assert values[0] == pytest.approx(0.002) and values[8] == pytest.approx(0.02)


def test_plot_lr_user_error_is_one_line(tmp_path):
    proc = subprocess.run([sys.executable, os.path.join(REPO, "tools", "plot_lr.py"), "-c", DEFAULT,
                           "--steps_per_epoch", "0"], capture_output=True, text=True, timeout=120)
    assert proc.returncode == 2 and proc.stderr.strip().splitlines() == [
        "ppnets: error: --steps_per_epoch: expected a positive integer, got 0"]


def test_no_weight_decay_name_accepts_paddleclas_string_form(digits_slice, tmp_path):
    from ppnets.config import load_config
    from ppnets.optimizer import build_optimizer
    from helpers.runs import small_overrides
    cfg = load_config(os.path.join(os.path.dirname(__file__), "..", "configs", "mobilenetv2.yaml"),
                      small_overrides(digits_slice, str(tmp_path), **{"Optimizer.no_weight_decay_name": "bn bias"}))
    assert cfg["Optimizer"]["no_weight_decay_name"] == "bn bias"
    model = ppnets.build_model("MobileNetV2_x0_25", class_num=3)
    opt = build_optimizer(cfg["Optimizer"], 1, 1, model)
    no_decay = {p.name for p in opt._parameter_list if getattr(p, "regularizer", None) is not None
                and float(getattr(p.regularizer, "_coeff", getattr(p.regularizer, "_regularization_coeff", 1))) == 0}
    named = {p.name: n for n, p in model.named_parameters()}
    assert no_decay and all("bn" in named[p] or "bias" in named[p] for p in no_decay)
