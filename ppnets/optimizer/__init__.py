"""Optimizers and learning-rate schedules (``paddle.optimizer`` / ``paddle.optimizer.lr``).

Config::

    Optimizer:
      name: Momentum
      momentum: 0.9
      lr: {name: Cosine, learning_rate: 0.1, warmup_epoch: 1, warmup_start_lr: 0.0}
      regularizer: {name: L2, coeff: 4.0e-05}     # coupled weight decay (Momentum/SGD/Adam)

Schedules are stepped every iteration by default (``by_epoch: false``).
"""
from __future__ import annotations

import math
from typing import Any, Dict, List, Optional

import paddle

from ..errors import ConfigError
from ..registry import Registry

OPTIMIZERS = Registry("optimizer")
LR_SCHEDULES = Registry("LR schedule")

__all__ = ["OPTIMIZERS", "LR_SCHEDULES", "build_lr", "build_optimizer"]


# --------------------------------------------------------------------------- LR schedules

class _Schedule:
    """Base of the LR schedule specs: user options in ``__init__``, ``build(epochs, steps)`` makes the scheduler."""

    def __init__(self, learning_rate: float, warmup_epoch: float = 0, warmup_start_lr: float = 0.0,
                 by_epoch: bool = False) -> None:
        if learning_rate < 0:
            raise ConfigError(f"Optimizer.lr.learning_rate: expected a non-negative number, got {learning_rate}")
        self.learning_rate = learning_rate
        self.warmup_epoch = warmup_epoch
        self.warmup_start_lr = warmup_start_lr
        self.by_epoch = by_epoch

    def main(self, total_steps: int, steps_per_epoch: int) -> paddle.optimizer.lr.LRScheduler:
        raise NotImplementedError

    def build(self, epochs: int, step_each_epoch: int) -> paddle.optimizer.lr.LRScheduler:
        unit = 1 if self.by_epoch else step_each_epoch
        warmup_steps = int(round(self.warmup_epoch * unit))
        total = epochs * unit
        if warmup_steps > total:
            raise ConfigError(f"Optimizer.lr.warmup_epoch={self.warmup_epoch} exceeds Global.epochs={epochs}")
        sched = self.main(max(total - warmup_steps, 1), unit)
        if warmup_steps > 0:
            sched = paddle.optimizer.lr.LinearWarmup(sched, warmup_steps, self.warmup_start_lr, self.learning_rate)
        sched.by_epoch = self.by_epoch  # the engine steps per epoch or per iteration accordingly
        return sched


@LR_SCHEDULES.register
class Constant(_Schedule):
    """A fixed learning rate (after the optional warmup)."""

    def main(self, total_steps: int, steps_per_epoch: int) -> paddle.optimizer.lr.LRScheduler:
        return paddle.optimizer.lr.LambdaDecay(self.learning_rate, lambda _: 1.0)


@LR_SCHEDULES.register
class Cosine(_Schedule):
    """Cosine decay from ``learning_rate`` to ``eta_min`` over the epochs after warmup."""

    def __init__(self, learning_rate: float, eta_min: float = 0.0, warmup_epoch: float = 0,
                 warmup_start_lr: float = 0.0, by_epoch: bool = False) -> None:
        super().__init__(learning_rate, warmup_epoch, warmup_start_lr, by_epoch)
        self.eta_min = eta_min

    def main(self, total_steps: int, steps_per_epoch: int) -> paddle.optimizer.lr.LRScheduler:
        return paddle.optimizer.lr.CosineAnnealingDecay(self.learning_rate, T_max=total_steps, eta_min=self.eta_min)


@LR_SCHEDULES.register
class Piecewise(_Schedule):
    """``values[i]`` until epoch ``decay_epochs[i]`` (PaddleClas's Piecewise); the first value is the base LR."""

    def __init__(self, decay_epochs: List[float], values: List[float], learning_rate: Optional[float] = None,
                 warmup_epoch: float = 0, warmup_start_lr: float = 0.0, by_epoch: bool = False) -> None:
        if len(values) != len(decay_epochs) + 1:
            raise ConfigError(f"Optimizer.lr: Piecewise needs len(values) == len(decay_epochs) + 1, "
                              f"got {len(values)} values and {len(decay_epochs)} decay_epochs")
        super().__init__(values[0] if learning_rate is None else learning_rate, warmup_epoch, warmup_start_lr,
                         by_epoch)
        self.decay_epochs = decay_epochs
        self.values = values

    def main(self, total_steps: int, steps_per_epoch: int) -> paddle.optimizer.lr.LRScheduler:
        warm = int(round(self.warmup_epoch * steps_per_epoch))
        # boundaries count from the start of training; the warmup wrapper offsets the inner step
        boundaries = [max(int(round(e * steps_per_epoch)) - warm, 0) for e in self.decay_epochs]
        return paddle.optimizer.lr.PiecewiseDecay(boundaries, list(self.values))


def build_lr(cfg: Dict[str, Any], epochs: int, step_each_epoch: int) -> paddle.optimizer.lr.LRScheduler:
    """The scheduler of ``Optimizer.lr`` for ``epochs`` × ``step_each_epoch`` iterations."""
    cfg = dict(cfg)
    spec = LR_SCHEDULES.build(cfg.pop("name"), cfg, where="Optimizer.lr")
    return spec.build(epochs, step_each_epoch)


# --------------------------------------------------------------------------- optimizers

def _regularizer(cfg: Optional[Dict[str, Any]]) -> Any:
    if not cfg:
        return None
    cfg = dict(cfg)
    name = cfg.pop("name", "L2")
    coeff = cfg.pop("coeff", 0.0)
    if cfg:
        raise ConfigError(f"Optimizer.regularizer: unknown key '{next(iter(cfg))}'; valid: name, coeff")
    kinds = {"L2": paddle.regularizer.L2Decay, "L1": paddle.regularizer.L1Decay}
    if name not in kinds:
        raise ConfigError(f"Optimizer.regularizer.name: unknown regularizer '{name}'; valid: L1, L2")
    return kinds[name](float(coeff))


@OPTIMIZERS.register
def Momentum(momentum: float = 0.9, use_nesterov: bool = False):
    """SGD with (Nesterov) momentum."""
    return lambda lr, params, wd: paddle.optimizer.Momentum(lr, momentum, params, use_nesterov=use_nesterov,
                                                            weight_decay=wd)


@OPTIMIZERS.register
def SGD():
    """Plain SGD."""
    return lambda lr, params, wd: paddle.optimizer.SGD(lr, params, weight_decay=wd)


@OPTIMIZERS.register
def Adam(beta1: float = 0.9, beta2: float = 0.999, epsilon: float = 1e-8):
    """Adam with coupled (L2) weight decay from ``regularizer``."""
    return lambda lr, params, wd: paddle.optimizer.Adam(lr, beta1, beta2, epsilon, params, weight_decay=wd)


@OPTIMIZERS.register
def AdamW(beta1: float = 0.9, beta2: float = 0.999, epsilon: float = 1e-8, weight_decay: float = 0.01):
    """Adam with decoupled weight decay ``weight_decay`` (Loshchilov & Hutter)."""
    return lambda lr, params, wd: paddle.optimizer.AdamW(lr, beta1, beta2, epsilon, params,
                                                         weight_decay=weight_decay)


def build_optimizer(cfg: Dict[str, Any], epochs: int, step_each_epoch: int,
                    parameters: List[paddle.Tensor]) -> paddle.optimizer.Optimizer:
    """Build ``Optimizer`` (with its LR scheduler, reachable as ``optimizer._learning_rate``)."""
    cfg = dict(cfg)
    name = cfg.pop("name")
    lr = build_lr(cfg.pop("lr"), epochs, step_each_epoch)
    regularizer = cfg.pop("regularizer", None)
    if name == "AdamW" and regularizer:
        raise ConfigError("Optimizer: AdamW decays weights itself (Optimizer.weight_decay); "
                          "remove Optimizer.regularizer")
    make = OPTIMIZERS.build(name, cfg, where="Optimizer")
    return make(lr, parameters, _regularizer(regularizer))
