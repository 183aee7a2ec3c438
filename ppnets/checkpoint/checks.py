"""What a weights or checkpoint file must contain before ppnets uses it.

A file that unpickles safely (:mod:`~ppnets.checkpoint.serialization`) may still hold the wrong
thing: a list instead of a state_dict, a ``.pdstates`` whose epoch is a string, an optimizer
state of another model. Each check raises a one-line :class:`~ppnets.errors.CheckpointError`
naming the file and what was expected, so nothing fails later with a traceback or, worse,
trains on silently.
"""
from __future__ import annotations

import numbers
from typing import Any, Dict, List, Optional, Tuple

import numpy as np
import paddle

from ..errors import CheckpointError, short_repr
from ..utils.logger import get_logger

__all__ = ["check_state_dict", "check_states", "check_optimizer_state", "fit_dtypes"]

#: optimizer-state entries that are not per-parameter accumulators
_NOT_ACCUMULATORS = ("LR_Scheduler", "master_weights")


def _kind(value: Any) -> str:
    return type(value).__name__


def _is_array(value: Any) -> bool:
    return isinstance(value, (np.ndarray, paddle.Tensor))


def check_state_dict(obj: Any, where: str) -> Dict[str, np.ndarray]:
    """``obj`` as ``{str: numpy array}`` of finite numbers; anything else is an error naming ``where``."""
    if not isinstance(obj, dict):
        raise CheckpointError(f"{where} does not hold a state_dict (a mapping of names to arrays), got {_kind(obj)}")
    for key, value in obj.items():
        if not isinstance(key, str) or not _is_array(value):
            raise CheckpointError(f"{where} does not hold a state_dict: entry {short_repr(key)} is a {_kind(value)}, "
                                  "not an array")
        if getattr(value, "dtype", None) == np.dtype(object):
            raise CheckpointError(f"{where}: entry {short_repr(key)} is an array of Python objects, not numbers")
    arrays = {k: np.asarray(v) if isinstance(v, np.ndarray) else np.asarray(v.numpy()) for k, v in obj.items()}
    broken = [k for k, v in arrays.items() if np.issubdtype(v.dtype, np.floating) and not np.isfinite(v).all()]
    if broken:
        raise CheckpointError(f"{where}: {len(broken)} tensor(s) hold NaN or infinite values (e.g. {broken[0]}); "
                              "the weights are from a run that diverged")
    return arrays


def _int(value: Any) -> bool:
    return isinstance(value, numbers.Integral) and not isinstance(value, bool) and value >= 0


def _number(value: Any) -> bool:
    return isinstance(value, numbers.Real) and not isinstance(value, bool)


#: the fields of a .pdstates file ppnets reads: name → (check, what it must be)
_STATE_FIELDS = {
    "epoch": (_int, "a non-negative integer"),
    "global_step": (_int, "a non-negative integer"),
    "best_epoch": (_int, "a non-negative integer"),
    "best_metric": (_number, "a number"),
    "best_ema_metric": (_number, "a number"),
    "ema_updates": (_int, "a non-negative integer"),
    "arch": (lambda v: isinstance(v, str), "a model name"),
    "optimizer": (lambda v: isinstance(v, str), "an optimizer name"),
    "class_num": (_int, "a non-negative integer"),
    "class_names": (lambda v: isinstance(v, (list, tuple)) and all(isinstance(n, str) for n in v),
                    "a list of names"),
    "digests": (lambda v: isinstance(v, dict) and all(isinstance(k, str) and isinstance(d, (str, type(None)))
                                                      for k, d in v.items()), "a mapping of file suffixes to digests"),
    "partial": (lambda v: isinstance(v, dict) and all(_int(v.get(k)) for k in ("epoch", "iters", "seen"))
                and _number(v.get("loss_sum")), "an epoch's progress {epoch, iters, loss_sum, seen}"),
    "scaler": (lambda v: isinstance(v, dict), "a mapping"),
}


def check_states(obj: Any, where: str) -> Dict[str, Any]:
    """``obj`` as a ppnets ``.pdstates`` mapping: an ``epoch`` and well-typed known fields."""
    if not isinstance(obj, dict) or "epoch" not in obj:
        raise CheckpointError(f"{where} is not a ppnets checkpoint states file (expected a mapping with an 'epoch', "
                              f"got {_kind(obj)})")
    for name, (ok, what) in _STATE_FIELDS.items():
        value = obj.get(name)
        if value is not None and not ok(value):
            raise CheckpointError(f"{where}: '{name}' must be {what}, got {short_repr(value)}")
    return obj


def check_optimizer_state(state: Any, model: paddle.nn.Layer, where: str) -> None:
    """``state`` (a portable optimizer state, see ``portable_optimizer_state``) must belong to ``model``:
    every accumulator keyed ``<parameter>@…`` names a parameter of the model and has its shape
    (or one element: the beta-power accumulators of Adam)."""
    if not isinstance(state, dict):
        raise CheckpointError(f"{where} does not hold an optimizer state (a mapping), got {_kind(state)}")
    lr = state.get("LR_Scheduler")
    if lr is not None and not isinstance(lr, dict):
        raise CheckpointError(f"{where}: 'LR_Scheduler' must be a mapping, got {short_repr(lr)}")
    shapes = {name: list(p.shape) for name, p in model.named_parameters()}
    unknown, mismatched = [], []
    for key, value in state.items():
        if key in _NOT_ACCUMULATORS:
            continue
        if not isinstance(key, str) or not _is_array(value):
            raise CheckpointError(f"{where}: entry {short_repr(key)} is a {_kind(value)}, not an array")
        param = key.split("@", 1)[0] if "@" in key else None
        if param not in shapes:
            unknown.append(key)
            continue
        shape = list(value.shape)
        if shape != shapes[param] and int(np.prod(shape)) != 1:
            mismatched.append(f"{key} {shape} vs parameter {shapes[param]}")
    if unknown or mismatched:
        example: Optional[str] = (mismatched or unknown)[0]
        raise CheckpointError(f"{where} is the optimizer state of another model: {len(unknown)} entries for "
                              f"parameters this model does not have, {len(mismatched)} of another shape "
                              f"(e.g. {example})")


def _kind_of(dtype_name: str) -> str:
    """``float``, ``int`` or the name itself (``bool``, ``complex64`` …) of a numpy or Paddle dtype name."""
    if dtype_name in ("float16", "bfloat16", "float32", "float64"):
        return "float"
    if dtype_name.startswith(("int", "uint")):
        return "int"
    return dtype_name


def fit_dtypes(weights: Dict[str, Any], own: Dict[str, paddle.Tensor], where: str) -> Dict[str, Any]:
    """``weights`` (numpy arrays) in the dtypes of the model's tensors ``own`` (its state_dict).

    A float of another precision (float16, bfloat16 — read as float32 — or float64) is converted,
    with one notice per conversion naming ``where``; so is an integer of another width into an
    integer buffer. Anything else — integers into float parameters, floats into integer ones —
    is a CheckpointError naming ``where`` and the entry. Paddle pickles a bfloat16 tensor as its
    uint16 bits: those load into bfloat16 tensors (AMP O2) as they are.
    """
    out: Dict[str, Any] = {}
    done: Dict[Tuple[str, str], List[str]] = {}
    for key, value in weights.items():
        if key not in own:
            out[key] = value
            continue
        want, have = str(own[key].dtype).rsplit(".", 1)[-1], np.asarray(value).dtype.name
        if want == have or (want == "bfloat16" and have == "uint16"):
            out[key] = value
            continue
        if _kind_of(want) != _kind_of(have) or _kind_of(want) not in ("float", "int"):
            hint = " (bfloat16 weights pickled by Paddle are uint16 bits: save them as safetensors, or as float32)" \
                if have == "uint16" else " (a quantized or foreign file?)"
            raise CheckpointError(f"{where}: entry {short_repr(key)} is {have}, but the model's tensor is {want}; "
                                  f"{have} values are not converted to {want}{hint}")
        if want == "bfloat16":
            out[key] = paddle.to_tensor(np.asarray(value, np.float32)).astype("bfloat16")
        else:
            out[key] = np.asarray(value).astype(want)
        done.setdefault((have, want), []).append(key)
    for (have, want), keys in done.items():
        get_logger().info(f"{where}: converted {len(keys)} tensor(s) from {have} to the model's {want} "
                          f"(e.g. {keys[0]})")
    return out
