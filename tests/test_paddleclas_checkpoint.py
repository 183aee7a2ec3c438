"""A checkpoint written the way PaddleClas's trainer writes it resumes in ppnets.

PaddleClas's ``save_model`` writes ``paddle.save(model.state_dict(), p + ".pdparams")``,
``paddle.save([opt.state_dict() for opt in optimizers], p + ".pdopt")`` and
``paddle.save({"metric": acc, "epoch": epoch}, p + ".pdstates")``; the files here are written
the same way by this test (with Paddle's own save), not copied from PaddleClas.
"""
from __future__ import annotations

import os

import numpy as np
import paddle
import pytest

import ppnets
from ppnets.engine import Trainer
from ppnets.checkpoint import portable_optimizer_state
from ppnets.errors import CheckpointError

from helpers.runs import load_small_config


def _paddleclas_checkpoint(prefix: str, arch: str = "MobileNetV2_x0_25", epoch: int = 1, steps: int = 3) -> dict:
    """Train a few Momentum steps on random data and save the files as PaddleClas's trainer does."""
    paddle.seed(7)
    model = ppnets.build_model(arch, class_num=3)
    opt = paddle.optimizer.Momentum(0.01, momentum=0.9, parameters=model.parameters())
    for _ in range(steps):
        loss = paddle.nn.functional.cross_entropy(model(paddle.rand([4, 3, 32, 32])), paddle.to_tensor([0, 1, 2, 0]))
        loss.backward()
        opt.step()
        opt.clear_grad()
    os.makedirs(os.path.dirname(prefix), exist_ok=True)
    paddle.save(model.state_dict(), prefix + ".pdparams")
    paddle.save([opt.state_dict()], prefix + ".pdopt")
    paddle.save({"metric": 0.25, "epoch": epoch}, prefix + ".pdstates")
    return {"weights": {k: v.numpy() for k, v in model.state_dict().items()},
            "velocity": {k: v.numpy() for k, v in portable_optimizer_state(opt, model).items()
                         if k != "LR_Scheduler"}}


def test_paddleclas_epoch_checkpoint_resumes_weights_optimizer_and_epoch(digits_slice, tmp_path):
    prefix = str(tmp_path / "ppcls_output" / "MobileNetV2_x0_25" / "epoch_1")
    saved = _paddleclas_checkpoint(prefix)
    ppnets.build_model("MobileNetV2_x0_25")  # the resuming process has built other layers first: other names
    cfg = load_small_config(digits_slice, str(tmp_path / "run"), **{"Global.epochs": 3, "Global.checkpoints": prefix})
    engine = Trainer(cfg)
    assert engine.state.start_epoch == 2 and engine.state.global_step == engine.steps_per_epoch
    assert engine.state.best_metric == -np.inf  # as PaddleClas, the best metric restarts on resume
    for key, value in engine.model.state_dict().items():
        np.testing.assert_array_equal(value.numpy(), saved["weights"][key])
    restored = {k: v.numpy() for k, v in portable_optimizer_state(engine.optimizer, engine.model).items()
                if k != "LR_Scheduler"}
    assert restored.keys() == saved["velocity"].keys() and restored
    for key, value in saved["velocity"].items():
        np.testing.assert_array_equal(restored[key], value)
    # the cosine schedule (1 warmup epoch in the small config) is at the start of epoch 2
    fresh = Trainer(load_small_config(digits_slice, str(tmp_path / "fresh"), **{"Global.epochs": 3}))
    for _ in range(fresh.steps_per_epoch):
        fresh.lr_scheduler.step()
    assert engine.optimizer.get_lr() == pytest.approx(fresh.optimizer.get_lr())
    result = engine.train()
    assert result["best_epoch"] in (2, 3)


def test_paddleclas_checkpoint_of_another_model_is_refused_saying_what_differs(digits_slice, tmp_path):
    prefix = str(tmp_path / "ppcls" / "latest")
    _paddleclas_checkpoint(prefix, arch="MobileNetV2_x0_5")
    cfg = load_small_config(digits_slice, str(tmp_path / "run"), **{"Global.checkpoints": prefix})
    with pytest.raises(CheckpointError, match=r"does not fit the model: \d+ missing or mismatched keys"):
        Trainer(cfg)


def test_paddleclas_optimizer_state_without_name_table_is_refused(digits_slice, tmp_path):
    prefix = str(tmp_path / "ppcls" / "latest")
    _paddleclas_checkpoint(prefix)
    weights = paddle.load(prefix + ".pdparams")  # drops Paddle's name table
    import pickle
    with open(prefix + ".pdparams", "wb") as f:
        pickle.dump({k: np.asarray(v) for k, v in weights.items()}, f, protocol=2)
    cfg = load_small_config(digits_slice, str(tmp_path / "run"), **{"Global.checkpoints": prefix})
    with pytest.raises(CheckpointError, match=r"epoch_1|latest.pdopt: the weights file has no parameter name table"):
        Trainer(cfg)
