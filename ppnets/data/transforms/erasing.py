"""Random Erasing (Zhong et al., AAAI 2020), on normalised images in HWC or CHW layout."""
from __future__ import annotations

import math
from typing import List, Optional, Tuple, Union

import numpy as np

from ...errors import ConfigError, DataError, short_repr
from ..rng import as_generator
from .base import TRANSFORMS, is_int, is_number, number

__all__ = ["RandomErasing"]

Box = Tuple[int, int, int, int]


def _layout(img: np.ndarray, layout: str, op: str) -> str:
    """``'hwc'`` or ``'chw'``; ``'auto'`` decides by which axis has 1 or 3 channels (HWC if both)."""
    if img.ndim == 2:
        return "hw"
    if img.ndim != 3:
        raise DataError(f"{op}: expected an image of 2 or 3 dimensions, got shape {tuple(img.shape)}")
    if layout != "auto":
        return layout
    return "chw" if img.shape[0] in (1, 3) and img.shape[2] not in (1, 3) else "hwc"


@TRANSFORMS.register
class RandomErasing:
    """Random Erasing (Zhong et al., AAAI 2020), as in PaddleClas and timm.

    With probability ``prob`` (PaddleClas's ``EPSILON``), a rectangle covering a fraction of the
    image drawn from ``[sl, sh]``, with aspect ratio (height / width) drawn from ``[r1, 1/r1]``
    (log-uniformly if ``use_log_aspect``), is overwritten: ``mode: const`` with ``mean`` (one value
    per channel), ``rand`` with one N(0, 1) value per channel, ``pixel`` with N(0, 1) noise per
    pixel. A rectangle that does not fit is redrawn up to ``attempt`` times.

    Place it after NormalizeImage (the noise modes assume normalised values), before or after
    ToCHWImage: ``layout: auto`` treats an image whose first axis has 1 or 3 entries and whose
    last axis has not as CHW, anything else as HWC; ``hwc`` / ``chw`` force the layout.
    ``sl``, ``sh`` and ``r1`` accept PaddleClas's fraction strings such as ``1.0/3.0``.
    """

    def __init__(self, prob: Optional[float] = None, sl: Union[float, str] = 0.02, sh: Union[float, str] = 0.4,
                 r1: Union[float, str] = 0.3, mean: Optional[List[float]] = None, attempt: int = 100,
                 use_log_aspect: bool = False, mode: str = "const", layout: str = "auto",
                 EPSILON: Union[float, str, None] = None) -> None:
        if prob is not None and EPSILON is not None:
            raise ConfigError("RandomErasing: give 'prob' or its PaddleClas name 'EPSILON', not both")
        self.prob = number(EPSILON, "RandomErasing.EPSILON") if EPSILON is not None else \
            (0.5 if prob is None else number(prob, "RandomErasing.prob"))
        self.sl, self.sh = number(sl, "RandomErasing.sl"), number(sh, "RandomErasing.sh")
        r1 = number(r1, "RandomErasing.r1")
        if not 0.0 <= self.prob <= 1.0:
            raise ConfigError(f"RandomErasing.prob: expected a probability in [0, 1], got {self.prob}")
        if not 0.0 < self.sl <= self.sh <= 1.0:
            raise ConfigError(f"RandomErasing: expected 0 < sl <= sh <= 1, got sl={self.sl}, sh={self.sh}")
        if not 0.0 < r1 <= 1.0:
            raise ConfigError(f"RandomErasing.r1: expected a value in (0, 1], got {r1}")
        if mode not in ("const", "rand", "pixel"):
            raise ConfigError(f"RandomErasing.mode: expected const, rand or pixel, got '{mode}'")
        if layout not in ("auto", "hwc", "chw"):
            raise ConfigError(f"RandomErasing.layout: expected auto, hwc or chw, got '{layout}'")
        if mean is not None and not (isinstance(mean, (list, tuple)) and len(mean) in (1, 3)
                                     and all(is_number(v) for v in mean)):
            raise ConfigError(f"RandomErasing.mean: expected 1 or 3 numbers (one per channel), got {short_repr(mean)}")
        if not (is_int(attempt) and attempt > 0):
            raise ConfigError(f"RandomErasing.attempt: expected a positive integer, got {short_repr(attempt)}")
        self.ratio = (r1, 1.0 / r1)
        self.use_log_aspect = use_log_aspect
        self.mean = [0.0, 0.0, 0.0] if mean is None else [float(v) for v in mean]
        self.attempt = attempt
        self.mode = mode
        self.layout = layout

    def get_params(self, h: int, w: int, rng: Optional[np.random.Generator] = None) -> Optional[Box]:
        """``(top, left, height, width)`` of the region to erase, or None if no draw fitted."""
        rng = as_generator(rng)
        area = h * w
        for _ in range(self.attempt):
            target = rng.uniform(self.sl, self.sh) * area
            if self.use_log_aspect:
                aspect = math.exp(rng.uniform(math.log(self.ratio[0]), math.log(self.ratio[1])))
            else:
                aspect = rng.uniform(*self.ratio)
            eh = int(round(math.sqrt(target * aspect)))
            ew = int(round(math.sqrt(target / aspect)))
            if 0 < eh < h and 0 < ew < w:
                return int(rng.integers(0, h - eh + 1)), int(rng.integers(0, w - ew + 1)), eh, ew
        return None

    def __call__(self, img: np.ndarray, rng: Optional[np.random.Generator] = None) -> np.ndarray:
        layout = _layout(img, self.layout, "RandomErasing")
        rng = as_generator(rng)
        if rng.random() >= self.prob:
            return img
        out = np.array(img, copy=True)
        hwc = out[..., None] if layout == "hw" else (np.moveaxis(out, 0, -1) if layout == "chw" else out)
        h, w, c = hwc.shape
        box = self.get_params(h, w, rng)
        if box is None:
            return img
        top, left, eh, ew = box
        if self.mode == "pixel":
            value = rng.normal(size=(eh, ew, c))
        elif self.mode == "rand":
            value = rng.normal(size=(1, 1, c))
        else:
            if len(self.mean) not in (1, c):
                raise DataError(f"RandomErasing.mean: expected 1 or {c} values (one per channel) for this "
                                f"{c}-channel image, got {self.mean}")
            value = np.asarray(self.mean, np.float64)
        hwc[top:top + eh, left:left + ew] = value.astype(out.dtype) if out.dtype != np.uint8 else \
            np.clip(np.rint(value), 0, 255).astype(np.uint8)
        return out
