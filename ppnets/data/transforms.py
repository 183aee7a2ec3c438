"""Image transform ops, configured in YAML as PaddleClas does::

    transform_ops:
      - DecodeImage: {to_rgb: true, channel_first: false}
      - RandCropImage: {size: 32}
      - RandFlipImage: {flip_code: 1}
      - NormalizeImage: {scale: 1.0/255.0, mean: [0.485, 0.456, 0.406], std: [0.229, 0.224, 0.225], order: ''}
      - ToCHWImage:

Each op is a small class with ``__call__(img) -> img`` registered in :data:`TRANSFORMS`;
adding an op is one class. Images are HWC ``uint8``/``float32`` numpy arrays after
:class:`DecodeImage` (which takes the file's bytes). Random ops draw from numpy's
global generator, which the data loader seeds per worker.
"""
from __future__ import annotations

import math
import random
from typing import Any, Callable, Dict, List, Optional, Sequence, Tuple, Union

import cv2
import numpy as np

from ..errors import DataError
from ..registry import Registry

TRANSFORMS = Registry("transform op")

_INTERP = {
    "nearest": cv2.INTER_NEAREST, "bilinear": cv2.INTER_LINEAR, "bicubic": cv2.INTER_CUBIC,
    "area": cv2.INTER_AREA, "lanczos": cv2.INTER_LANCZOS4,
}


def _interp(name: Optional[str]) -> int:
    if name is None:
        return cv2.INTER_LINEAR
    if name not in _INTERP:
        raise DataError(f"unknown interpolation '{name}'; valid: {', '.join(_INTERP)}")
    return _INTERP[name]


def _size2(size: Union[int, Sequence[int]]) -> Tuple[int, int]:
    """(width, height) from an int or a [w, h] pair (PaddleClas's order)."""
    if isinstance(size, int):
        return size, size
    return int(size[0]), int(size[1])


@TRANSFORMS.register
class DecodeImage:
    """Decode encoded image bytes with OpenCV into HWC uint8 (RGB by default).

    Grayscale images become 3-channel, alpha is dropped and 16-bit images are scaled
    to 8 bits, so every decoded image has the same layout.
    """

    def __init__(self, to_rgb: bool = True, channel_first: bool = False, to_np: bool = True,
                 backend: str = "cv2") -> None:
        self.to_rgb = to_rgb
        self.channel_first = channel_first

    def __call__(self, data: Union[bytes, np.ndarray]) -> np.ndarray:
        if isinstance(data, np.ndarray) and data.ndim >= 2:
            img = data
        else:
            buf = np.frombuffer(data, dtype=np.uint8) if isinstance(data, (bytes, bytearray)) else data
            if buf.size == 0:
                raise DataError("empty file (0 bytes)")
            img = cv2.imdecode(buf, cv2.IMREAD_UNCHANGED)
            if img is None:
                raise DataError("not a decodable image (corrupt, truncated or not an image)")
        if img.dtype == np.uint16:
            img = (img >> 8).astype(np.uint8)
        elif img.dtype != np.uint8:
            img = np.clip(img, 0, 255).astype(np.uint8)
        if img.ndim == 2:
            img = cv2.cvtColor(img, cv2.COLOR_GRAY2BGR)
        elif img.shape[2] == 4:
            img = cv2.cvtColor(img, cv2.COLOR_BGRA2BGR)
        elif img.shape[2] == 1:
            img = cv2.cvtColor(img, cv2.COLOR_GRAY2BGR)
        if self.to_rgb:
            img = img[:, :, ::-1]
        if self.channel_first:
            img = img.transpose((2, 0, 1))
        return np.ascontiguousarray(img)


@TRANSFORMS.register
class ResizeImage:
    """Resize to ``size`` (int or [w, h]) or so that the short side is ``resize_short``."""

    def __init__(self, size: Union[int, List[int], None] = None, resize_short: Optional[int] = None,
                 interpolation: Optional[str] = None, backend: str = "cv2") -> None:
        if (size is None) == (resize_short is None):
            raise DataError("ResizeImage: give exactly one of 'size' or 'resize_short'")
        self.size = _size2(size) if size is not None else None
        self.resize_short = resize_short
        self.interp = _interp(interpolation)

    def __call__(self, img: np.ndarray) -> np.ndarray:
        h, w = img.shape[:2]
        if self.size is not None:
            tw, th = self.size
        else:
            scale = self.resize_short / min(h, w)
            tw, th = int(round(w * scale)), int(round(h * scale))
        if (tw, th) == (w, h):
            return img
        return cv2.resize(img, (tw, th), interpolation=self.interp)


@TRANSFORMS.register
class CropImage:
    """Center crop to ``size`` (int or [w, h])."""

    def __init__(self, size: Union[int, List[int]]) -> None:
        self.size = _size2(size)

    def __call__(self, img: np.ndarray) -> np.ndarray:
        w, h = self.size
        ih, iw = img.shape[:2]
        if iw < w or ih < h:
            raise DataError(f"CropImage: image {iw}x{ih} is smaller than the crop {w}x{h}; "
                            "resize it first (ResizeImage)")
        x0, y0 = (iw - w) // 2, (ih - h) // 2
        return img[y0:y0 + h, x0:x0 + w]


@TRANSFORMS.register
class RandCropImage:
    """Random-resized crop (Inception / torchvision ``RandomResizedCrop`` semantics).

    A region covering ``scale`` of the area with aspect ratio in ``ratio`` (log-uniform)
    is cropped and resized to ``size``; after 10 failed draws it falls back to a
    center crop of the closest valid aspect ratio.
    """

    def __init__(self, size: Union[int, List[int]], scale: Optional[List[float]] = None,
                 ratio: Optional[List[float]] = None, interpolation: Optional[str] = None,
                 backend: str = "cv2") -> None:
        self.size = _size2(size)
        self.scale = tuple(scale) if scale is not None else (0.08, 1.0)
        self.ratio = tuple(ratio) if ratio is not None else (3.0 / 4.0, 4.0 / 3.0)
        self.interp = _interp(interpolation)

    def get_params(self, h: int, w: int) -> Tuple[int, int, int, int]:
        """(top, left, height, width) of the crop."""
        area = h * w
        log_ratio = (math.log(self.ratio[0]), math.log(self.ratio[1]))
        for _ in range(10):
            target = area * random.uniform(*self.scale)
            aspect = math.exp(random.uniform(*log_ratio))
            cw = int(round(math.sqrt(target * aspect)))
            ch = int(round(math.sqrt(target / aspect)))
            if 0 < cw <= w and 0 < ch <= h:
                return random.randint(0, h - ch), random.randint(0, w - cw), ch, cw
        in_ratio = w / h
        if in_ratio < min(self.ratio):
            cw, ch = w, int(round(w / min(self.ratio)))
        elif in_ratio > max(self.ratio):
            ch, cw = h, int(round(h * max(self.ratio)))
        else:
            cw, ch = w, h
        return (h - ch) // 2, (w - cw) // 2, ch, cw

    def __call__(self, img: np.ndarray) -> np.ndarray:
        top, left, ch, cw = self.get_params(*img.shape[:2])
        crop = img[top:top + ch, left:left + cw]
        return cv2.resize(crop, self.size, interpolation=self.interp)


@TRANSFORMS.register
class RandFlipImage:
    """Flip with probability ``prob``: ``flip_code`` 1 horizontal, 0 vertical, -1 both (cv2.flip)."""

    def __init__(self, flip_code: int = 1, prob: float = 0.5) -> None:
        if flip_code not in (-1, 0, 1):
            raise DataError(f"RandFlipImage.flip_code: expected -1, 0 or 1, got {flip_code}")
        self.flip_code = flip_code
        self.prob = prob

    def __call__(self, img: np.ndarray) -> np.ndarray:
        if random.random() < self.prob:
            return cv2.flip(img, self.flip_code)
        return img


def _scale_value(scale: Union[float, str]) -> float:
    """Accept a number or PaddleClas's ``1.0/255.0`` string (parsed, never evaluated)."""
    if isinstance(scale, (int, float)):
        return float(scale)
    parts = str(scale).split("/")
    try:
        values = [float(p) for p in parts]
    except ValueError:
        raise DataError(f"NormalizeImage.scale: expected a number or 'a/b', got {scale!r}") from None
    if len(values) == 1:
        return values[0]
    if len(values) == 2 and values[1] != 0:
        return values[0] / values[1]
    raise DataError(f"NormalizeImage.scale: expected a number or 'a/b', got {scale!r}")


@TRANSFORMS.register
class NormalizeImage:
    """``(img * scale - mean) / std`` per channel, as float32 (``order: 'hwc'`` or ``'chw'``)."""

    def __init__(self, scale: Union[float, str, None] = None, mean: Optional[List[float]] = None,
                 std: Optional[List[float]] = None, order: str = "hwc", output_fp16: bool = False,
                 channel_num: int = 3) -> None:
        self.scale = _scale_value(scale) if scale is not None else 1.0 / 255.0
        mean = mean if mean is not None else [0.485, 0.456, 0.406]
        std = std if std is not None else [0.229, 0.224, 0.225]
        shape = (3, 1, 1) if order == "chw" else (1, 1, 3)
        self.mean = np.array(mean, dtype=np.float32).reshape(shape)
        self.std = np.array(std, dtype=np.float32).reshape(shape)
        self.order = order
        self.dtype = np.float16 if output_fp16 else np.float32

    def __call__(self, img: np.ndarray) -> np.ndarray:
        out = (img.astype(np.float32) * self.scale - self.mean) / self.std
        return out.astype(self.dtype)


@TRANSFORMS.register
class ToCHWImage:
    """HWC → CHW."""

    def __call__(self, img: np.ndarray) -> np.ndarray:
        return np.ascontiguousarray(img.transpose((2, 0, 1)))


class Compose:
    """Apply a list of ops in order."""

    def __init__(self, ops: Sequence[Callable[[Any], Any]]) -> None:
        self.ops = list(ops)

    def __call__(self, data: Any) -> Any:
        for op in self.ops:
            data = op(data)
        return data


def build_transforms(op_list: Optional[List[Dict[str, Any]]], where: str = "transform_ops") -> Compose:
    """Build a :class:`Compose` from a YAML list like ``[{DecodeImage: {to_rgb: true}}, {ToCHWImage: null}]``."""
    ops = []
    for i, item in enumerate(op_list or []):
        (name, kwargs), = item.items()
        ops.append(TRANSFORMS.build(name, kwargs or {}, where=f"{where}.{i}"))
    return Compose(ops)
