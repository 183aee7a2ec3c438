"""Optimizers and learning-rate schedules (``paddle.optimizer`` / ``paddle.optimizer.lr``).

Config::

    Optimizer:
      name: Momentum                        # Momentum, SGD, Adam, AdamW or RMSProp
      momentum: 0.9
      lr: {name: Cosine, learning_rate: 0.1, warmup_epoch: 1, warmup_start_lr: 0.0}
      regularizer: {name: L2, coeff: 4.0e-05}     # coupled weight decay (not AdamW)
      one_dim_param_no_weight_decay: true         # no decay on norm scales/shifts and biases
      no_weight_decay_name: [bn]                  # … nor on parameters whose name contains these
      clip_norm: 10.0                             # clip gradients to this global norm

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

import functools
from typing import Any, Callable, Dict, List, Optional, Sequence, Union

import paddle

from ..errors import ConfigError, short_repr
from ..registry import Registry

OPTIMIZERS = Registry("optimizer")
LR_SCHEDULES = Registry("LR schedule")

__all__ = ["OPTIMIZERS", "LR_SCHEDULES", "build_lr", "build_optimizer", "no_weight_decay_params"]

LRScheduler = paddle.optimizer.lr.LRScheduler


# --------------------------------------------------------------------------- LR schedules

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
    if isinstance(coeff, bool) or not isinstance(coeff, (int, float)) or coeff < 0:
        raise ConfigError(f"Optimizer.regularizer.coeff: expected a number >= 0, got {short_repr(coeff)}")
    return kinds[name](float(coeff))


def _in_range(where: str, value: float, low: float, high: float, high_open: bool = True,
              low_open: bool = False) -> None:
    """Raise a ConfigError unless ``low <= value < high`` (the brackets as given)."""
    below = value <= low if low_open else value < low
    above = value >= high if high_open else value > high
    if below or above:
        raise ConfigError(f"{where}: expected a value in {'(' if low_open else '['}{low:g}, {high:g}"
                          f"{')' if high_open else ']'}, got {value}")


def _positive(where: str, value: float) -> None:
    if not value > 0:
        raise ConfigError(f"{where}: expected a positive number, got {value}")


# A registered optimizer takes the user's options and returns a maker
# ``make(learning_rate, parameters, weight_decay, grad_clip, apply_decay_param_fun)``.

@OPTIMIZERS.register
def Momentum(momentum: float = 0.9, use_nesterov: bool = False):
    """SGD with (Nesterov) momentum; coupled weight decay from ``regularizer``."""
    _in_range("Optimizer.momentum", momentum, 0, 1)
    return lambda lr, params, wd, clip, _: paddle.optimizer.Momentum(
        lr, momentum, params, use_nesterov=use_nesterov, weight_decay=wd, grad_clip=clip)


@OPTIMIZERS.register
def SGD():
    """Plain SGD; coupled weight decay from ``regularizer``."""
    return lambda lr, params, wd, clip, _: paddle.optimizer.SGD(lr, params, weight_decay=wd, grad_clip=clip)


def _check_adam(beta1: float, beta2: float, epsilon: float) -> None:
    _in_range("Optimizer.beta1", beta1, 0, 1)
    _in_range("Optimizer.beta2", beta2, 0, 1)
    _positive("Optimizer.epsilon", epsilon)


@OPTIMIZERS.register
def Adam(beta1: float = 0.9, beta2: float = 0.999, epsilon: float = 1e-8):
    """Adam with coupled (L2) weight decay from ``regularizer``."""
    _check_adam(beta1, beta2, epsilon)
    return lambda lr, params, wd, clip, _: paddle.optimizer.Adam(lr, beta1, beta2, epsilon, params, weight_decay=wd,
                                                                 grad_clip=clip)


@OPTIMIZERS.register
def AdamW(beta1: float = 0.9, beta2: float = 0.999, epsilon: float = 1e-8, weight_decay: float = 0.01):
    """Adam with decoupled weight decay ``weight_decay`` (Loshchilov & Hutter)."""
    _check_adam(beta1, beta2, epsilon)
    if weight_decay < 0:
        raise ConfigError(f"Optimizer.weight_decay: expected a number >= 0, got {weight_decay}")
    return lambda lr, params, _, clip, decay_fn: paddle.optimizer.AdamW(
        lr, beta1, beta2, epsilon, params, weight_decay=weight_decay, grad_clip=clip,
        apply_decay_param_fun=decay_fn)


@OPTIMIZERS.register
def RMSProp(rho: float = 0.95, epsilon: float = 1e-6, momentum: float = 0.0, centered: bool = False):
    """RMSProp (PaddleClas's defaults); coupled weight decay from ``regularizer``."""
    _in_range("Optimizer.rho", rho, 0, 1, high_open=False, low_open=True)
    _in_range("Optimizer.momentum", momentum, 0, 1)
    _positive("Optimizer.epsilon", epsilon)
    return lambda lr, params, wd, clip, _: paddle.optimizer.RMSProp(
        lr, rho=rho, epsilon=epsilon, momentum=momentum, centered=centered, parameters=params, weight_decay=wd,
        grad_clip=clip)


def _named_parameters(model: Union[paddle.nn.Layer, Sequence[paddle.Tensor]]) -> List[Any]:
    if isinstance(model, paddle.nn.Layer):
        return list(model.named_parameters())
    return [(p.name, p) for p in model]


def no_weight_decay_params(model: Union[paddle.nn.Layer, Sequence[paddle.Tensor]], one_dim: bool = False,
                           names: Union[Sequence[str], str, None] = None) -> List[paddle.Tensor]:
    """The trainable parameters excluded from weight decay.

    ``one_dim``: every parameter with at most one dimension — the scales and shifts of the norm
    layers and all biases. ``names``: parameters whose structured name (``model.named_parameters()``;
    paddle's unique ``param.name`` when a plain list is given) contains one of these strings
    (a space-separated string is split, as PaddleClas's ``no_weight_decay_name``).
    """
    if isinstance(names, str):
        names = names.split()
    names = list(names or [])
    out = []
    for name, p in _named_parameters(model):
        if p.stop_gradient:
            continue
        if (one_dim and len(p.shape) <= 1) or any(n in name for n in names):
            out.append(p)
    return out


def build_optimizer(cfg: Dict[str, Any], epochs: int, step_each_epoch: int,
                    parameters: Union[paddle.nn.Layer, Sequence[paddle.Tensor]]) -> paddle.optimizer.Optimizer:
    """Build ``Optimizer`` (with its LR scheduler, reachable as ``optimizer._learning_rate``).

    ``step_each_epoch`` is the number of optimizer updates per epoch. ``parameters`` is the
    model (needed for ``no_weight_decay_name`` to match structured names) or its parameter list.
    Parameters excluded from weight decay get a zero per-parameter regularizer (coupled decay;
    paddle gives a parameter's own regularizer priority over the optimizer's) or are left out by
    AdamW's ``apply_decay_param_fun``; one parameter list keeps ``clip_norm`` a truly global norm
    (paddle clips each parameter group on its own).
    """
    cfg = dict(cfg)
    name = cfg.pop("name")
    lr = build_lr(cfg.pop("lr"), epochs, step_each_epoch)
    regularizer = cfg.pop("regularizer", None)
    clip_norm = cfg.pop("clip_norm", None)
    one_dim = cfg.pop("one_dim_param_no_weight_decay", False)
    nwd_names = cfg.pop("no_weight_decay_name", None)
    if name == "AdamW" and regularizer:
        raise ConfigError("Optimizer: AdamW decays weights itself (Optimizer.weight_decay); "
                          "remove Optimizer.regularizer")
    if clip_norm is not None and clip_norm <= 0:
        raise ConfigError(f"Optimizer.clip_norm: expected a positive number, got {clip_norm}")
    make = OPTIMIZERS.build(name, cfg, where="Optimizer")
    params = [p for _, p in _named_parameters(parameters)]
    excluded = no_weight_decay_params(parameters, one_dim, nwd_names) if (one_dim or nwd_names) else []
    wd = _regularizer(regularizer)
    decay_fn: Optional[Callable[[str], bool]] = None
    excluded_ids = {id(p) for p in excluded}
    for p in params:  # undo the exclusions of an earlier build on the same model
        if getattr(p, _NO_DECAY_MARK, False) and id(p) not in excluded_ids:
            p.regularizer = None
            setattr(p, _NO_DECAY_MARK, False)
    if excluded:
        if name == "AdamW":
            decay_fn = functools.partial(_decays, frozenset(p.name for p in excluded))
        elif wd is not None:
            for p in excluded:
                p.regularizer = paddle.regularizer.L2Decay(0.0)
                setattr(p, _NO_DECAY_MARK, True)
    clip = paddle.nn.ClipGradByGlobalNorm(float(clip_norm)) if clip_norm is not None else None
    return make(lr, params, wd, clip, decay_fn)


_NO_DECAY_MARK = "_ppnets_no_weight_decay"


def _decays(skip: frozenset, param_name: str) -> bool:
    return param_name not in skip
