"""The transform registry, :class:`Compose`, :func:`build_transforms` and the option parsers shared by the ops.

An op is a class registered in :data:`TRANSFORMS` whose constructor takes the YAML options and
whose ``__call__(img, rng=None)`` returns the transformed image. ``rng`` is the
:class:`numpy.random.Generator` of the sample (see :mod:`ppnets.data.rng`); ops without
randomness ignore it, random ops draw only from it (``None``: fresh entropy). A bad option is
a :class:`~ppnets.errors.ConfigError` raised by the constructor; an image that cannot be
decoded or transformed is a :class:`~ppnets.errors.DataError` raised by the call.
"""
from __future__ import annotations

import math
from typing import Any, Callable, Dict, List, Optional, Sequence, Tuple, Union

import cv2
import numpy as np

from ...errors import ConfigError, short_repr
from ...registry import Registry

__all__ = ["TRANSFORMS", "Compose", "build_transforms", "output_layout", "ensure_chw", "check_model_input"]

TRANSFORMS = Registry("transform op")

Op = Callable[..., Any]

INTERPOLATIONS = {
    "nearest": cv2.INTER_NEAREST, "bilinear": cv2.INTER_LINEAR, "bicubic": cv2.INTER_CUBIC,
    "area": cv2.INTER_AREA, "lanczos": cv2.INTER_LANCZOS4,
}


def interp_flag(name: Optional[str], where: str) -> int:
    """The OpenCV flag of an ``interpolation`` option (None: bilinear)."""
    if name is None:
        return cv2.INTER_LINEAR
    if name not in INTERPOLATIONS:
        raise ConfigError(f"{where}: unknown interpolation {short_repr(name)}; valid: {', '.join(INTERPOLATIONS)}")
    return INTERPOLATIONS[name]


def is_int(value: Any) -> bool:
    """A true integer (``bool`` is not one)."""
    return isinstance(value, (int, np.integer)) and not isinstance(value, bool)


def is_number(value: Any) -> bool:
    """A finite int or float (``bool`` is not one)."""
    return isinstance(value, (int, float, np.integer, np.floating)) and not isinstance(value, bool) \
        and math.isfinite(value)


def size2(size: Union[int, Sequence[int]], where: str) -> Tuple[int, int]:
    """(width, height) from an int or a [w, h] pair (PaddleClas's order), each at most
    :data:`~.limits.MAX_SIDE` and together at most the decoding limit :data:`~.limits.DEFAULT_MAX_PIXELS`;
    ``where`` names the option."""
    from .limits import DEFAULT_MAX_PIXELS, MAX_SIDE
    if is_int(size) and size > 0:
        pair = (int(size), int(size))
    elif isinstance(size, (list, tuple)) and len(size) == 2 and all(is_int(v) and v > 0 for v in size):
        pair = (int(size[0]), int(size[1]))
    else:
        raise ConfigError(f"{where}: expected a positive integer or a [width, height] pair of positive integers, "
                          f"got {short_repr(size)}")
    if max(pair) > MAX_SIDE:
        raise ConfigError(f"{where}: expected at most {MAX_SIDE} px per side, got {short_repr(size)}")
    if pair[0] * pair[1] > DEFAULT_MAX_PIXELS:
        raise ConfigError(f"{where}: {pair[0]}x{pair[1]} is {pair[0] * pair[1]:,} pixels, more than the "
                          f"{DEFAULT_MAX_PIXELS:,} an image may have (the decoding limit, DecodeImage.max_pixels)")
    return pair


def range2(value: Sequence[float], where: str) -> Tuple[float, float]:
    """A ``[min, max]`` pair of numbers with ``0 < min <= max``."""
    if isinstance(value, (list, tuple)) and len(value) == 2 and all(is_number(v) for v in value) \
            and 0 < value[0] <= value[1]:
        return float(value[0]), float(value[1])
    raise ConfigError(f"{where}: expected two numbers [min, max] with 0 < min <= max, got {short_repr(value)}")


def number(value: Union[float, str], where: str) -> float:
    """Accept a number or PaddleClas's ``'1.0/255.0'`` fraction string (parsed, never evaluated)."""
    if isinstance(value, (int, float)) and not isinstance(value, bool):
        return float(value)
    parts = str(value).split("/")
    try:
        values = [float(p) for p in parts]
    except ValueError:
        raise ConfigError(f"{where}: expected a number or 'a/b', got {short_repr(value)}") from None
    if len(values) == 1:
        return values[0]
    if len(values) == 2 and values[1] != 0:
        return values[0] / values[1]
    raise ConfigError(f"{where}: expected a number or 'a/b', got {short_repr(value)}")


def probability(value: Any, where: str) -> float:
    """A number in [0, 1]."""
    if not (is_number(value) and 0.0 <= value <= 1.0):
        raise ConfigError(f"{where}: expected a probability in [0, 1], got {short_repr(value)}")
    return float(value)


def check_backend(backend: str, op: str) -> None:
    """Accept PaddleClas's ``backend`` option only with its default: every op here is OpenCV."""
    if backend != "cv2":
        raise ConfigError(f"{op}.backend: only 'cv2' is supported, got {short_repr(backend)}")


class Compose:
    """Apply a list of ops in order, handing each the sample's generator ``rng``.

    ``where`` names the list in the config (for errors about what the ops produce).
    """

    def __init__(self, ops: Sequence[Op], where: str = "transform_ops") -> None:
        self.ops = list(ops)
        self.where = where

    def __call__(self, data: Any, rng: Optional[np.random.Generator] = None) -> Any:
        for op in self.ops:
            data = op(data, rng)
        return data


def build_transforms(op_list: Optional[List[Dict[str, Any]]], where: str = "transform_ops") -> Compose:
    """Build a :class:`Compose` from a YAML list like ``[{DecodeImage: {to_rgb: true}}, {ToCHWImage: null}]``."""
    ops = []
    for i, item in enumerate(op_list or []):
        if not isinstance(item, dict) or len(item) != 1:
            raise ConfigError(f"{where}.{i}: expected one {{OpName: {{options}}}} mapping, got {short_repr(item)}")
        (name, kwargs), = item.items()
        ops.append(TRANSFORMS.build(name, kwargs or {}, where=f"{where}.{i}"))
    return Compose(ops, where)


# --------------------------------------------------------------------------- image layout
#
# Models take NCHW batches. PaddleClas's datasets transpose the image to CHW themselves, so its
# transform lists end without ToCHWImage, while its inference lists end with it. ppnets applies one
# rule everywhere (datasets, inference, export): a list whose result is HWC gets a ToCHWImage.

def output_layout(op_list: Optional[List[Dict[str, Any]]], where: str = "transform_ops") -> Optional[str]:
    """The layout the ops turn a file into: ``'hwc'``, ``'chw'``, or None when they do not decode it.

    A list that contradicts itself is a ConfigError: ToCHWImage on an image that is already CHW
    (``DecodeImage.channel_first: true``), or a NormalizeImage ``order`` other than the layout there.
    """
    layout = None  # before DecodeImage: the file's bytes
    for i, item in enumerate(op_list or []):
        if not isinstance(item, dict) or len(item) != 1:
            continue  # build_transforms reports it
        (name, opts), = item.items()
        opts = opts if isinstance(opts, dict) else {}
        if name == "DecodeImage":
            layout = "chw" if opts.get("channel_first") else "hwc"
        elif name == "ToCHWImage":
            if layout == "chw":
                raise ConfigError(f"{where}.{i}.ToCHWImage: the image is already CHW here (DecodeImage.channel_first: "
                                  "true); remove one of the two")
            layout = "chw"
        elif name == "NormalizeImage" and layout is not None:
            order = opts.get("order", "hwc")
            if ("chw" if order == "chw" else "hwc") != layout:
                raise ConfigError(f"{where}.{i}.NormalizeImage.order: {short_repr(order)}, but the image is {layout.upper()} "
                                  f"here; set order: {layout}")
    return layout


def ensure_chw(op_list: Optional[List[Dict[str, Any]]], where: str = "transform_ops") -> List[Dict[str, Any]]:
    """``op_list``, with ``ToCHWImage`` appended if its result would be HWC (PaddleClas's dataset rule)."""
    ops = list(op_list or [])
    return ops + [{"ToCHWImage": None}] if output_layout(ops, where) == "hwc" else ops


def check_model_input(shape: Sequence[int], where: str, channels: int = 3) -> None:
    """Raise a one-line ConfigError unless ``shape`` is an NCHW batch with ``channels`` channels.

    ``where`` names the transform list that made the batch.
    """
    shape = tuple(int(v) for v in shape)
    if len(shape) == 4 and shape[1] == channels:
        return
    hint = "end the list with ToCHWImage" if len(shape) == 4 and shape[-1] == channels else \
        f"the ops must give {channels}×H×W images (DecodeImage first, ToCHWImage last)"
    raise ConfigError(f"{where}: the model takes NCHW batches with {channels} channels, but these ops give a batch "
                      f"of shape {list(shape)}; {hint}")
