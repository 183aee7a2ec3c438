"""Convert PaddleClas checkpoints to ppnets's parameter layout, for every registered model.

Most families reproduce PaddleClas's keys natively (``ModelInfo.from_paddleclas`` is
None): their PaddleClas ``.pdparams`` load unchanged and conversion only checks them.
Families with a cleaner layout of their own (EfficientNet) register a key-mapping
function, applied here. Either way the result is checked key by key and shape by
shape against the model, so a wrong file fails with one clear line instead of a
silent partial load.

>>> sd = paddle.load("EfficientNetB0_pretrained.pdparams")      # doctest: +SKIP
>>> model.set_state_dict(convert_paddleclas_state_dict("EfficientNetB0", sd))  # doctest: +SKIP
"""
from __future__ import annotations

from functools import lru_cache
from typing import Any, Dict, List, Mapping, Tuple

import paddle

from ..errors import CheckpointError
from .registry import model_info

__all__ = ["convert_paddleclas_state_dict", "is_paddleclas_layout", "model_layout", "check_layout"]


@lru_cache(maxsize=16)
def _layout(name: str, class_num: int) -> Tuple[Tuple[str, Tuple[int, ...]], ...]:
    with paddle.LazyGuard():  # shapes only: no parameter is initialised
        model = model_info(name).build(class_num=class_num)
    return tuple((k, tuple(int(d) for d in v.shape)) for k, v in model.state_dict().items())


def model_layout(name: str, class_num: int = 1000) -> Dict[str, Tuple[int, ...]]:
    """``{key: shape}`` of the registered model ``name``'s state_dict (built lazily, cheap)."""
    return dict(_layout(name, int(class_num)))


def _shape(value: Any) -> Tuple[int, ...]:
    return tuple(int(d) for d in getattr(value, "shape", ()))


def _few(items: List[str], n: int = 3) -> str:
    more = f" (+{len(items) - n} more)" if len(items) > n else ""
    return ", ".join(items[:n]) + more


def check_layout(name: str, state_dict: Mapping[str, Any], class_num: int = 1000, what: str = "weights") -> None:
    """Raise :class:`CheckpointError` (one line) unless ``state_dict`` has exactly the model's keys and shapes.

    ``what`` names the state_dict in the message.
    """
    want = model_layout(name, class_num)
    missing = [k for k in want if k not in state_dict]
    unexpected = [k for k in state_dict if k not in want]
    bad_shape = [k for k, v in state_dict.items() if k in want and _shape(v) != want[k]]
    mismatched = [f"{k} {list(_shape(state_dict[k]))} vs model {list(want[k])}" for k in bad_shape]
    if not (missing or unexpected or mismatched):
        return
    parts = []
    if missing:
        parts.append(f"{len(missing)} missing key(s): {_few(missing)}")
    if unexpected:
        parts.append(f"{len(unexpected)} unexpected key(s): {_few(unexpected)}")
    if mismatched:
        parts.append(f"{len(mismatched)} shape mismatch(es): {_few(mismatched)}")
    hint = ""
    if bad_shape and all(want[k] and want[k][-1] == class_num for k in bad_shape):
        hint = (f" (a classifier for another class count? the check assumed class_num={class_num}; "
                f"pass the right class_num / --class-num)")
    raise CheckpointError(f"{what} do not fit {name}: {'; '.join(parts)}{hint}")


def convert_paddleclas_state_dict(name: str, state_dict: Mapping[str, Any], class_num: int = 1000,
                                  check: bool = True) -> Dict[str, Any]:
    """Convert a PaddleClas-layout state_dict of model ``name`` to ppnets's keys.

    Applies the model's registered ``from_paddleclas`` function (none: keys unchanged);
    a state_dict already in ppnets's layout is returned as is. With ``check`` the
    result must have exactly the model's keys and shapes (built with ``class_num``
    classes), else :class:`~ppnets.errors.CheckpointError` names the missing,
    unexpected and mismatched keys. Values are passed through untouched.
    """
    info = model_info(name)
    state_dict = dict(state_dict)
    what = "weights"
    if info.from_paddleclas is not None and set(state_dict) != set(model_layout(name, class_num)):
        state_dict = info.from_paddleclas(state_dict)
        what = "weights converted from PaddleClas's layout"
    if check:
        check_layout(name, state_dict, class_num, what)
    return state_dict


def is_paddleclas_layout(name: str, state_dict: Mapping[str, Any]) -> bool:
    """True if ``state_dict``'s keys are PaddleClas's for model ``name`` (shapes not checked).

    For families that reproduce PaddleClas's keys this is the same as having the
    model's keys; for converted families (EfficientNet) a dict already in ppnets's
    layout gives False.
    """
    info = model_info(name)
    want = set(model_layout(name))
    if info.from_paddleclas is None:
        return set(state_dict) == want
    try:
        return set(info.from_paddleclas(dict(state_dict))) == want
    except (CheckpointError, KeyError, ValueError, TypeError):
        return False
