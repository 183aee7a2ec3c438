"""Colour augmentation: :class:`ColorJitter` (torchvision semantics) on RGB HWC uint8 images."""
from __future__ import annotations

from typing import List, Optional, Tuple, Union

import numpy as np

from ...errors import ConfigError
from . import functional as F
from ..rng import as_generator
from .base import TRANSFORMS, is_number, probability

__all__ = ["ColorJitter"]

Jitter = Union[float, List[float]]

_ADJUST = {"brightness": F.brightness, "contrast": F.contrast, "saturation": F.color, "hue": F.hue}


def _jitter_range(value: Jitter, name: str, center: float, bound: Optional[float]) -> Optional[Tuple[float, float]]:
    """torchvision's convention: a number v means [center − v, center + v] (clipped at 0); a pair is the range."""
    where = f"ColorJitter.{name}"
    if is_number(value):
        if value < 0:
            raise ConfigError(f"{where}: expected a non-negative number, got {value}")
        lo, hi = center - value, center + value
        if center == 1.0:
            lo = max(lo, 0.0)
    else:
        if not (isinstance(value, (list, tuple)) and len(value) == 2 and all(is_number(v) for v in value)
                and value[0] <= value[1]):
            raise ConfigError(f"{where}: expected a number or a [min, max] pair, got {value}")
        lo, hi = float(value[0]), float(value[1])
    if bound is not None and (lo < -bound or hi > bound):
        raise ConfigError(f"{where}: expected values in [-{bound}, {bound}], got [{lo}, {hi}]")
    if center == 1.0 and lo < 0:
        raise ConfigError(f"{where}: factors must be non-negative, got [{lo}, {hi}]")
    return None if lo == hi == center else (lo, hi)


@TRANSFORMS.register
class ColorJitter:
    """Random brightness, contrast, saturation and hue, in random order (torchvision semantics).

    A number ``v`` draws the factor uniformly from ``[max(0, 1 − v), 1 + v]`` (hue: the shift from
    ``[−v, v]`` of a full turn, ``v ≤ 0.5``); a ``[min, max]`` pair gives the range directly.
    Brightness scales the pixels, contrast blends with the mean gray level, saturation with the
    grayscale image, hue rotates the HSV hue. Applied with probability ``prob``; expects an RGB
    HWC uint8 image.
    """

    def __init__(self, brightness: Jitter = 0.0, contrast: Jitter = 0.0, saturation: Jitter = 0.0,
                 hue: Jitter = 0.0, prob: float = 1.0) -> None:
        self.ranges = {
            "brightness": _jitter_range(brightness, "brightness", 1.0, None),
            "contrast": _jitter_range(contrast, "contrast", 1.0, None),
            "saturation": _jitter_range(saturation, "saturation", 1.0, None),
            "hue": _jitter_range(hue, "hue", 0.0, 0.5),
        }
        self.prob = probability(prob, "ColorJitter.prob")

    def get_params(self, rng: Optional[np.random.Generator] = None) -> List[Tuple[str, float]]:
        """The adjustments to apply, in order: ``[(name, factor), …]``."""
        rng = as_generator(rng)
        order = [name for name in self.ranges if self.ranges[name] is not None]
        order = [order[i] for i in rng.permutation(len(order))]
        return [(name, float(rng.uniform(*self.ranges[name]))) for name in order]  # type: ignore[misc]

    @staticmethod
    def apply(img: np.ndarray, params: List[Tuple[str, float]]) -> np.ndarray:
        """Apply the ``(name, factor)`` adjustments of :meth:`get_params` in order."""
        for name, factor in params:
            img = _ADJUST[name](img, factor)
        return img

    def __call__(self, img: np.ndarray, rng: Optional[np.random.Generator] = None) -> np.ndarray:
        F.check_uint8_rgb(img, "ColorJitter")
        rng = as_generator(rng)
        if self.prob < 1.0 and rng.random() >= self.prob:
            return img
        return self.apply(img, self.get_params(rng))
