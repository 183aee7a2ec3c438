"""Learning-rate schedules built on ``paddle.optimizer.lr``.

LR schedules: ``Constant``, ``Cosine``, ``Piecewise``, ``Step``, ``MultiStep``, ``Exponential``,
``Polynomial`` and ``OneCycle``, each built on the ``paddle.optimizer.lr`` scheduler of the same
idea. All share:

* ``warmup_epoch`` / ``warmup_start_lr``: a linear ramp from ``warmup_start_lr`` to the LR the
  main schedule starts at, over ``warmup_epoch`` epochs (fractions allowed when stepping by
  iteration);
* ``by_epoch``: step the schedule once per epoch (``true``) or once per optimizer update
  (``false``, the default; with ``Global.update_freq`` an update is several iterations). The
  warmup follows the same unit. The engine reads ``scheduler.by_epoch``.

Epoch arguments are converted to steps of that unit. Milestones — ``Piecewise.decay_epochs`` and
``MultiStep.milestones`` — count from the start of training (warmup included); the continuous
schedules — ``Cosine``, ``Step``, ``Exponential``, ``Polynomial``, ``OneCycle`` — begin when the
warmup ends and span the remaining epochs.
"""
from __future__ import annotations

from typing import Any, Dict, List, Optional, Sequence

import paddle

from ..errors import ConfigError
from ..registry import Registry

LR_SCHEDULES = Registry("LR schedule")

__all__ = ["LR_SCHEDULES", "LRScheduler", "build_lr"]

LRScheduler = paddle.optimizer.lr.LRScheduler


class _Schedule:
    """Base of the LR schedule specs: user options in ``__init__``, ``build(epochs, steps)`` makes the scheduler.

    A subclass implements :meth:`main`, the schedule after the warmup, over ``total_steps``
    steps of ``steps_per_epoch`` per epoch (1 when stepping by epoch).
    """

    def __init__(self, learning_rate: float, warmup_epoch: float = 0, warmup_start_lr: float = 0.0,
                 by_epoch: bool = False) -> None:
        if learning_rate < 0:
            raise ConfigError(f"Optimizer.lr.learning_rate: expected a non-negative number, got {learning_rate}")
        if warmup_epoch < 0:
            raise ConfigError(f"Optimizer.lr.warmup_epoch: expected a non-negative number, got {warmup_epoch}")
        if warmup_start_lr < 0:
            raise ConfigError(f"Optimizer.lr.warmup_start_lr: expected a non-negative number, got {warmup_start_lr}")
        self.learning_rate = learning_rate
        self.warmup_epoch = warmup_epoch
        self.warmup_start_lr = warmup_start_lr
        self.by_epoch = by_epoch

    def main(self, total_steps: int, steps_per_epoch: int) -> LRScheduler:
        raise NotImplementedError

    def warmup_steps(self, steps_per_epoch: int) -> int:
        return int(round(self.warmup_epoch * steps_per_epoch))

    def build(self, epochs: int, step_each_epoch: int) -> LRScheduler:
        """The scheduler for ``epochs`` epochs of ``step_each_epoch`` optimizer updates."""
        unit = 1 if self.by_epoch else step_each_epoch
        warmup_steps = self.warmup_steps(unit)
        total = epochs * unit
        if warmup_steps > total:
            raise ConfigError(f"Optimizer.lr.warmup_epoch={self.warmup_epoch} exceeds Global.epochs={epochs}")
        sched = self.main(max(total - warmup_steps, 1), unit)
        if warmup_steps > 0:
            target = float(sched.last_lr)  # the LR the main schedule starts at
            if self.warmup_start_lr >= target:
                raise ConfigError(f"Optimizer.lr.warmup_start_lr={self.warmup_start_lr} must be below the LR "
                                  f"the warmup ramps to ({target:g})")
            sched = paddle.optimizer.lr.LinearWarmup(sched, warmup_steps, self.warmup_start_lr, target)
        sched.by_epoch = self.by_epoch  # the engine steps per epoch or per iteration accordingly
        return sched


@LR_SCHEDULES.register
class Constant(_Schedule):
    """A fixed learning rate (after the optional warmup)."""

    def main(self, total_steps: int, steps_per_epoch: int) -> LRScheduler:
        return paddle.optimizer.lr.LambdaDecay(self.learning_rate, lambda _: 1.0)


@LR_SCHEDULES.register
class Cosine(_Schedule):
    """Cosine decay from ``learning_rate`` to ``eta_min`` over the epochs after warmup."""

    def __init__(self, learning_rate: float, eta_min: float = 0.0, warmup_epoch: float = 0,
                 warmup_start_lr: float = 0.0, by_epoch: bool = False) -> None:
        super().__init__(learning_rate, warmup_epoch, warmup_start_lr, by_epoch)
        if eta_min < 0:
            raise ConfigError(f"Optimizer.lr.eta_min: expected a non-negative number, got {eta_min}")
        self.eta_min = eta_min

    def main(self, total_steps: int, steps_per_epoch: int) -> LRScheduler:
        return paddle.optimizer.lr.CosineAnnealingDecay(self.learning_rate, T_max=total_steps, eta_min=self.eta_min)


def _milestones(epochs: Sequence[float], name: str) -> List[float]:
    values = [float(e) for e in epochs]
    if any(b <= a for a, b in zip(values, values[1:])):
        raise ConfigError(f"Optimizer.lr.{name}: expected strictly increasing epochs, got {list(epochs)}")
    return values


@LR_SCHEDULES.register
class Piecewise(_Schedule):
    """``values[i]`` until epoch ``decay_epochs[i]`` (PaddleClas's Piecewise); ``values[0]`` is the base LR.

    ``learning_rate`` is accepted for PaddleClas configs and must equal ``values[0]`` if given.
    """

    def __init__(self, decay_epochs: List[float], values: List[float], learning_rate: Optional[float] = None,
                 warmup_epoch: float = 0, warmup_start_lr: float = 0.0, by_epoch: bool = False) -> None:
        if len(values) != len(decay_epochs) + 1:
            raise ConfigError(f"Optimizer.lr: Piecewise needs len(values) == len(decay_epochs) + 1, "
                              f"got {len(values)} values and {len(decay_epochs)} decay_epochs")
        if learning_rate is not None and learning_rate != values[0]:
            raise ConfigError(f"Optimizer.lr: Piecewise starts at values[0]={values[0]}; "
                              f"learning_rate={learning_rate} differs (remove it)")
        super().__init__(values[0], warmup_epoch, warmup_start_lr, by_epoch)
        self.decay_epochs = _milestones(decay_epochs, "decay_epochs")
        self.values = values

    def main(self, total_steps: int, steps_per_epoch: int) -> LRScheduler:
        warm = self.warmup_steps(steps_per_epoch)
        # boundaries count from the start of training; the warmup wrapper offsets the inner step
        boundaries = [max(int(round(e * steps_per_epoch)) - warm, 0) for e in self.decay_epochs]
        return paddle.optimizer.lr.PiecewiseDecay(boundaries, list(self.values))


@LR_SCHEDULES.register
class MultiStep(_Schedule):
    """Multiply the LR by ``gamma`` at each of the ``milestones`` epochs (counted from the start of training)."""

    def __init__(self, learning_rate: float, milestones: List[float], gamma: float = 0.1, warmup_epoch: float = 0,
                 warmup_start_lr: float = 0.0, by_epoch: bool = False) -> None:
        super().__init__(learning_rate, warmup_epoch, warmup_start_lr, by_epoch)
        if not milestones:
            raise ConfigError("Optimizer.lr.milestones: expected at least one epoch")
        self.milestones = _milestones(milestones, "milestones")
        if self.milestones[0] <= warmup_epoch:
            raise ConfigError(f"Optimizer.lr.milestones: the first milestone ({self.milestones[0]:g}) must come "
                              f"after the warmup (warmup_epoch={warmup_epoch})")
        self.gamma = gamma

    def main(self, total_steps: int, steps_per_epoch: int) -> LRScheduler:
        warm = self.warmup_steps(steps_per_epoch)
        steps = [int(round(m * steps_per_epoch)) - warm for m in self.milestones]
        return paddle.optimizer.lr.MultiStepDecay(self.learning_rate, milestones=steps, gamma=self.gamma)


@LR_SCHEDULES.register
class Step(_Schedule):
    """Multiply the LR by ``gamma`` every ``step_size`` epochs after the warmup."""

    def __init__(self, learning_rate: float, step_size: float, gamma: float = 0.1, warmup_epoch: float = 0,
                 warmup_start_lr: float = 0.0, by_epoch: bool = False) -> None:
        super().__init__(learning_rate, warmup_epoch, warmup_start_lr, by_epoch)
        if step_size <= 0:
            raise ConfigError(f"Optimizer.lr.step_size: expected a positive number of epochs, got {step_size}")
        self.step_size = step_size
        self.gamma = gamma

    def main(self, total_steps: int, steps_per_epoch: int) -> LRScheduler:
        size = max(int(round(self.step_size * steps_per_epoch)), 1)
        return paddle.optimizer.lr.StepDecay(self.learning_rate, step_size=size, gamma=self.gamma)


@LR_SCHEDULES.register
class Exponential(_Schedule):
    """Multiply the LR by ``gamma`` per epoch after the warmup.

    Stepping by iteration multiplies by ``gamma^(1/steps_per_epoch)`` per step, so the LR at every
    epoch boundary is the same either way.
    """

    def __init__(self, learning_rate: float, gamma: float, warmup_epoch: float = 0, warmup_start_lr: float = 0.0,
                 by_epoch: bool = False) -> None:
        super().__init__(learning_rate, warmup_epoch, warmup_start_lr, by_epoch)
        if not 0.0 < gamma <= 1.0:
            raise ConfigError(f"Optimizer.lr.gamma: expected a per-epoch factor in (0, 1], got {gamma}")
        self.gamma = gamma

    def main(self, total_steps: int, steps_per_epoch: int) -> LRScheduler:
        return paddle.optimizer.lr.ExponentialDecay(self.learning_rate, gamma=self.gamma ** (1.0 / steps_per_epoch))


@LR_SCHEDULES.register
class Polynomial(_Schedule):
    """Polynomial decay ``(lr − end_lr)·(1 − t/T)^power + end_lr`` over the epochs after warmup.

    ``cycle``: restart with a longer period instead of staying at ``end_lr``.
    """

    def __init__(self, learning_rate: float, end_lr: float = 0.0, power: float = 1.0, cycle: bool = False,
                 warmup_epoch: float = 0, warmup_start_lr: float = 0.0, by_epoch: bool = False) -> None:
        super().__init__(learning_rate, warmup_epoch, warmup_start_lr, by_epoch)
        self.end_lr = end_lr
        self.power = power
        self.cycle = cycle

    def main(self, total_steps: int, steps_per_epoch: int) -> LRScheduler:
        return paddle.optimizer.lr.PolynomialDecay(self.learning_rate, decay_steps=total_steps, end_lr=self.end_lr,
                                                   power=self.power, cycle=self.cycle)


@LR_SCHEDULES.register
class OneCycle(_Schedule):
    """The 1cycle policy (Smith & Topin, 2019): up to ``learning_rate``, then down to ``end_learning_rate``.

    The LR rises from ``learning_rate / divide_factor`` to ``learning_rate`` over ``phase_pct`` of the
    steps, then anneals to ``end_learning_rate`` (``anneal_strategy``: cos or linear; ``three_phase``:
    back to the start LR before the final decay). It has its own ramp, so ``warmup_epoch`` is usually 0.
    """

    def __init__(self, learning_rate: float, divide_factor: float = 25.0, end_learning_rate: float = 0.0001,
                 phase_pct: float = 0.3, anneal_strategy: str = "cos", three_phase: bool = False,
                 warmup_epoch: float = 0, warmup_start_lr: float = 0.0, by_epoch: bool = False) -> None:
        super().__init__(learning_rate, warmup_epoch, warmup_start_lr, by_epoch)
        if anneal_strategy not in ("cos", "linear"):
            raise ConfigError(f"Optimizer.lr.anneal_strategy: expected cos or linear, got '{anneal_strategy}'")
        if not 0.0 < phase_pct < (0.5 if three_phase else 1.0):
            raise ConfigError(f"Optimizer.lr.phase_pct: expected a fraction in (0, {0.5 if three_phase else 1}), "
                              f"got {phase_pct}")
        if divide_factor <= 0:
            raise ConfigError(f"Optimizer.lr.divide_factor: expected a positive number, got {divide_factor}")
        self.divide_factor = divide_factor
        self.end_learning_rate = end_learning_rate
        self.phase_pct = phase_pct
        self.anneal_strategy = anneal_strategy
        self.three_phase = three_phase

    def main(self, total_steps: int, steps_per_epoch: int) -> LRScheduler:
        return paddle.optimizer.lr.OneCycleLR(float(self.learning_rate), total_steps,
                                              divide_factor=float(self.divide_factor),
                                              end_learning_rate=float(self.end_learning_rate),
                                              phase_pct=float(self.phase_pct), anneal_strategy=self.anneal_strategy,
                                              three_phase=self.three_phase)


def build_lr(cfg: Dict[str, Any], epochs: int, step_each_epoch: int) -> LRScheduler:
    """The scheduler of ``Optimizer.lr`` for ``epochs`` × ``step_each_epoch`` optimizer updates."""
    cfg = dict(cfg)
    spec = LR_SCHEDULES.build(cfg.pop("name"), cfg, where="Optimizer.lr")
    return spec.build(epochs, step_each_epoch)


# --------------------------------------------------------------------------- optimizers
