"""timm's weights in ppnets's models: the key and layout conversion, for every family both have.

A timm ``state_dict`` (from ``model.safetensors`` of timm's hub, or any file in timm's layout)
differs from a Paddle one in two ways common to every family, handled here once:

- BatchNorm buffers are ``running_mean`` / ``running_var`` (Paddle: ``_mean`` / ``_variance``),
  and ``num_batches_tracked`` has no Paddle counterpart;
- a Linear weight is ``[out, in]`` (Paddle: ``[in, out]``).

and, for families whose ppnets layout is PaddleClas's, in the key names: each family registers a
``from_timm`` mapping with its models (:func:`~ppnets.arch.registry.register_model`), written in
timm's orientation (it renames and reshapes, e.g. a 1×1 conv to a Linear as ``[out, in]``).
Families that are not in PaddleClas keep timm's key names, so they need no mapping at all.

The result is checked key by key and shape by shape against the model: a file that does not fit
fails with one line, never a partial load.

>>> sd = convert_timm_state_dict("MobileNetV2_x0_5", timm_sd)      # doctest: +SKIP
>>> model.set_state_dict(sd)                                       # doctest: +SKIP
"""
from __future__ import annotations

from functools import lru_cache
from typing import Any, Dict, FrozenSet, Mapping, Optional

import numpy as np
import paddle
import paddle.nn as nn

from ..errors import ConfigError, did_you_mean
from .convert import check_layout, model_layout
from .registry import TIMM_NAMES, model_info

__all__ = ["timm_to_ppnets_name", "convert_timm_state_dict", "is_timm_layout", "timm_names"]

_BN_BUFFERS = {"running_mean": "_mean", "running_var": "_variance"}


def timm_names() -> Dict[str, str]:
    """timm model name → ppnets model name, for every timm model whose weights convert exactly."""
    return dict(sorted(TIMM_NAMES.items()))


def timm_to_ppnets_name(timm_name: str) -> str:
    """The ppnets model that timm's ``timm_name`` (``mobilenetv3_large_100``, or a hub id's model part
    ``mobilenetv3_large_100.ra_in1k``) converts to; ConfigError naming the closest known ones."""
    base = timm_name.split(".", 1)[0]
    if base not in TIMM_NAMES:
        raise ConfigError(f"timm model '{base}' has no ppnets equivalent{did_you_mean(base, TIMM_NAMES)} "
                          f"(see docs/pretrained.md for the timm models ppnets converts)")
    return TIMM_NAMES[base]


def is_timm_layout(state_dict: Mapping[str, Any]) -> bool:
    """True if ``state_dict`` is in PyTorch's layout (BatchNorm ``running_mean``/``running_var`` or
    ``num_batches_tracked`` buffers) — timm's files are; Paddle's never are."""
    return any(k.endswith((".running_mean", ".running_var", ".num_batches_tracked")) for k in state_dict)


@lru_cache(maxsize=32)
def _linear_weights(name: str) -> FrozenSet[str]:
    """Keys of the model's Linear weights (to be transposed), from a lazily built model."""
    with paddle.LazyGuard():
        model = model_info(name).build(class_num=1000)
    return frozenset(f"{n}.weight" for n, layer in model.named_sublayers() if isinstance(layer, nn.Linear))


def _rename_buffers(state_dict: Mapping[str, Any]) -> Dict[str, Any]:
    out: Dict[str, Any] = {}
    for key, value in state_dict.items():
        head, _, leaf = key.rpartition(".")
        if leaf == "num_batches_tracked":
            continue
        if leaf in _BN_BUFFERS:
            key = f"{head}.{_BN_BUFFERS[leaf]}" if head else _BN_BUFFERS[leaf]
        out[key] = value
    return out


def _transpose(value: Any) -> Any:
    if isinstance(value, paddle.Tensor):
        return value.transpose([1, 0])
    return np.ascontiguousarray(np.asarray(value).T)


def convert_timm_state_dict(name: str, state_dict: Mapping[str, Any], class_num: Optional[int] = None,
                            check: bool = True) -> Dict[str, Any]:
    """Convert timm's ``state_dict`` of ppnets model ``name`` (or of timm's model mapped to it) to
    ppnets's keys and layouts: buffers renamed, the family's key mapping, Linear weights transposed.

    ``class_num``: the classifier's class count (default: read from the file, else 1000), used by the
    layout check; with ``check`` the result must fit the model exactly, else a one-line
    :class:`~ppnets.errors.CheckpointError` names the missing, unexpected and mismatched keys.
    """
    if name in TIMM_NAMES:
        name = TIMM_NAMES[name]
    info = model_info(name)
    sd = _rename_buffers(state_dict)
    if info.from_timm is not None:
        sd = info.from_timm(sd)
    linear = _linear_weights(name)
    for key in linear & set(sd):
        if np.ndim(sd[key]) == 2:
            sd[key] = _transpose(sd[key])
    if check:
        if class_num is None:
            class_num = _class_num(name, sd)
        check_layout(name, sd, class_num, "timm weights converted to ppnets's layout")
    return sd


def _class_num(name: str, state_dict: Mapping[str, Any]) -> int:
    """The class count of the (Linear) classifier in ``state_dict`` (converted keys), else 1000."""
    want = model_layout(name, 1000)
    for key, shape in want.items():
        if key in state_dict and shape and shape[-1] == 1000 and key.endswith("weight"):
            got = tuple(int(d) for d in np.shape(state_dict[key]))
            if len(got) == len(shape) and got[:-1] == shape[:-1]:
                return int(got[-1])
    return 1000
