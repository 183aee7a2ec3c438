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

LR schedules: :mod:`ppnets.optimizer.lr`.
"""
from __future__ import annotations

import functools
from typing import Any, Callable, Dict, List, Optional, Sequence, Union

import paddle

from ..errors import ConfigError, short_repr
from ..registry import Registry
from .lr import LR_SCHEDULES, build_lr

OPTIMIZERS = Registry("optimizer")

__all__ = ["OPTIMIZERS", "LR_SCHEDULES", "build_lr", "build_optimizer", "no_weight_decay_params"]



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
