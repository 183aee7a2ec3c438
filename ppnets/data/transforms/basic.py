"""Basic ops: decode, resize, crops, flip, normalise and the HWC → CHW transpose.

Images are HWC ``uint8``/``float32`` numpy arrays after :class:`DecodeImage` (which takes the
file's bytes). :class:`RandCropImage` and :class:`RandFlipImage` draw from the sample's generator.
"""
from __future__ import annotations

import math
from typing import List, Optional, Tuple, Union

import cv2
import numpy as np

from ...errors import ConfigError, DataError, short_repr
from ..rng import as_generator
from .base import TRANSFORMS, check_backend, interp_flag, is_int, number, range2, size2
from .limits import DEFAULT_MAX_PIXELS, MAX_SIDE, image_pixels, native_stderr_silenced

__all__ = ["DecodeImage", "ResizeImage", "CropImage", "RandCropImage", "RandFlipImage", "NormalizeImage",
           "ToCHWImage"]

Rng = Optional[np.random.Generator]


@TRANSFORMS.register
class DecodeImage:
    """Decode encoded image bytes with OpenCV into HWC uint8 (RGB by default).

    Grayscale images become 3-channel, alpha is dropped and 16-bit images are scaled
    to 8 bits, so every decoded image has the same layout. The EXIF orientation of a
    JPEG is applied (as PaddleClas's ``cv2.imdecode(buf, 1)`` does): a phone photo taken
    upright decodes upright. ``to_np`` and ``backend`` exist for PaddleClas configs and
    accept only their defaults (true, cv2).

    An image of more than ``max_pixels`` pixels (default 100 million) is refused from its
    header, before anything is decoded: a decompression bomb is a one-line error in bounded
    memory. The decoders' own messages (libpng, OpenCV) are kept off stderr.
    """

    def __init__(self, to_rgb: bool = True, channel_first: bool = False, to_np: bool = True,
                 backend: str = "cv2", max_pixels: int = DEFAULT_MAX_PIXELS) -> None:
        if not to_np:
            raise ConfigError("DecodeImage.to_np: false (a PIL image) is not supported; remove it or set it to true")
        check_backend(backend, "DecodeImage")
        if not (is_int(max_pixels) and max_pixels > 0):
            raise ConfigError(f"DecodeImage.max_pixels: expected a positive integer, got {short_repr(max_pixels)}")
        self.to_rgb = to_rgb
        self.channel_first = channel_first
        self.max_pixels = int(max_pixels)

    def __call__(self, data: Union[bytes, np.ndarray], rng: Rng = None) -> np.ndarray:
        if isinstance(data, np.ndarray) and data.ndim >= 2:
            img = data
        else:
            buf = np.frombuffer(data, dtype=np.uint8) if isinstance(data, (bytes, bytearray)) else data
            if buf.size == 0:
                raise DataError("empty file (0 bytes)")
            size = image_pixels(buf.tobytes() if not isinstance(data, (bytes, bytearray)) else data)
            if size is not None and size[0] > self.max_pixels:
                raise DataError(f"{size[1]} ({size[0] / 1e6:.1f} megapixels) is larger than "
                                f"DecodeImage.max_pixels={self.max_pixels:,} (a decompression bomb? raise "
                                "max_pixels if the image is genuine)")
            # ANYCOLOR|ANYDEPTH (not UNCHANGED): keeps gray and 16-bit as stored, drops alpha and,
            # unlike UNCHANGED, applies the EXIF orientation
            with native_stderr_silenced():
                img = cv2.imdecode(buf, cv2.IMREAD_ANYCOLOR | cv2.IMREAD_ANYDEPTH)
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
            raise ConfigError("ResizeImage: give exactly one of 'size' or 'resize_short'")
        check_backend(backend, "ResizeImage")
        self.size = size2(size, "ResizeImage.size") if size is not None else None
        if resize_short is not None and not (is_int(resize_short) and resize_short > 0):
            raise ConfigError(f"ResizeImage.resize_short: expected a positive integer, got {short_repr(resize_short)}")
        if resize_short is not None and resize_short > MAX_SIDE:
            raise ConfigError(f"ResizeImage.resize_short: expected at most {MAX_SIDE} px, got {resize_short}")
        self.resize_short = resize_short
        self.interp = interp_flag(interpolation, "ResizeImage.interpolation")

    def __call__(self, img: np.ndarray, rng: Rng = None) -> np.ndarray:
        h, w = img.shape[:2]
        if self.size is not None:
            tw, th = self.size
        else:
            scale = self.resize_short / min(h, w)
            tw, th = int(round(w * scale)), int(round(h * scale))
            if max(tw, th) > MAX_SIDE:  # a very elongated image
                raise DataError(f"ResizeImage: resizing a {w}x{h} image to short side {self.resize_short} gives "
                                f"{tw}x{th}, more than {MAX_SIDE} px per side")
            if tw * th > DEFAULT_MAX_PIXELS:  # bounded as decoding is: the result is an image too
                raise DataError(f"ResizeImage: resizing a {w}x{h} image to short side {self.resize_short} gives "
                                f"{tw}x{th}, more than {DEFAULT_MAX_PIXELS:,} pixels (the decoding limit)")
        if (tw, th) == (w, h):
            return img
        return cv2.resize(img, (tw, th), interpolation=self.interp)


@TRANSFORMS.register
class CropImage:
    """Center crop to ``size`` (int or [w, h])."""

    def __init__(self, size: Union[int, List[int]]) -> None:
        self.size = size2(size, "CropImage.size")

    def __call__(self, img: np.ndarray, rng: Rng = None) -> np.ndarray:
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
        check_backend(backend, "RandCropImage")
        self.size = size2(size, "RandCropImage.size")
        self.scale = range2(scale, "RandCropImage.scale") if scale is not None else (0.08, 1.0)
        self.ratio = range2(ratio, "RandCropImage.ratio") if ratio is not None else (3.0 / 4.0, 4.0 / 3.0)
        self.interp = interp_flag(interpolation, "RandCropImage.interpolation")

    def get_params(self, h: int, w: int, rng: Rng = None) -> Tuple[int, int, int, int]:
        """(top, left, height, width) of the crop."""
        rng = as_generator(rng)
        area = h * w
        log_ratio = (math.log(self.ratio[0]), math.log(self.ratio[1]))
        for _ in range(10):
            target = area * rng.uniform(*self.scale)
            aspect = math.exp(rng.uniform(*log_ratio))
            cw = int(round(math.sqrt(target * aspect)))
            ch = int(round(math.sqrt(target / aspect)))
            if 0 < cw <= w and 0 < ch <= h:
                return int(rng.integers(0, h - ch + 1)), int(rng.integers(0, w - cw + 1)), ch, cw
        in_ratio = w / h
        if in_ratio < min(self.ratio):
            cw, ch = w, int(round(w / min(self.ratio)))
        elif in_ratio > max(self.ratio):
            ch, cw = h, int(round(h * max(self.ratio)))
        else:
            cw, ch = w, h
        return (h - ch) // 2, (w - cw) // 2, ch, cw

    def __call__(self, img: np.ndarray, rng: Rng = None) -> np.ndarray:
        top, left, ch, cw = self.get_params(*img.shape[:2], rng)
        crop = img[top:top + ch, left:left + cw]
        return cv2.resize(crop, self.size, interpolation=self.interp)


@TRANSFORMS.register
class RandFlipImage:
    """Flip with probability ``prob``: ``flip_code`` 1 horizontal, 0 vertical, -1 both (cv2.flip)."""

    def __init__(self, flip_code: int = 1, prob: float = 0.5) -> None:
        if flip_code not in (-1, 0, 1) or isinstance(flip_code, bool):
            raise ConfigError(f"RandFlipImage.flip_code: expected -1, 0 or 1, got {short_repr(flip_code)}")
        self.flip_code = flip_code
        self.prob = prob

    def __call__(self, img: np.ndarray, rng: Rng = None) -> np.ndarray:
        if as_generator(rng).random() < self.prob:
            return cv2.flip(img, self.flip_code)
        return img


@TRANSFORMS.register
class NormalizeImage:
    """``(img * scale - mean) / std`` per channel, as float32 (``order: 'hwc'`` or ``'chw'``).

    ``order: ''`` is PaddleClas's spelling of ``'hwc'``; ``channel_num`` accepts only 3.
    """

    def __init__(self, scale: Union[float, str, None] = None, mean: Optional[List[float]] = None,
                 std: Optional[List[float]] = None, order: str = "hwc", output_fp16: bool = False,
                 channel_num: int = 3) -> None:
        if order not in ("", "hwc", "chw"):
            raise ConfigError(f"NormalizeImage.order: expected '', 'hwc' or 'chw', got {short_repr(order)}")
        if channel_num != 3:
            raise ConfigError(f"NormalizeImage.channel_num: only 3 is supported, got {short_repr(channel_num)}")
        self.scale = number(scale, "NormalizeImage.scale") if scale is not None else 1.0 / 255.0
        mean = mean if mean is not None else [0.485, 0.456, 0.406]
        std = std if std is not None else [0.229, 0.224, 0.225]
        for name, values in (("mean", mean), ("std", std)):
            if len(values) != 3 or (name == "std" and any(v == 0 for v in values)):
                raise ConfigError(f"NormalizeImage.{name}: expected 3 {'non-zero ' if name == 'std' else ''}"
                                  f"numbers (one per channel), got {short_repr(values)}")
        shape = (3, 1, 1) if order == "chw" else (1, 1, 3)
        self.mean = np.array(mean, dtype=np.float32).reshape(shape)
        self.std = np.array(std, dtype=np.float32).reshape(shape)
        self.order = order
        self.dtype = np.float16 if output_fp16 else np.float32

    def __call__(self, img: np.ndarray, rng: Rng = None) -> np.ndarray:
        with np.errstate(over="ignore", invalid="ignore"):  # an overflow shows as a NaN loss, named there
            out = (img.astype(np.float32) * self.scale - self.mean) / self.std
        return out.astype(self.dtype)


@TRANSFORMS.register
class ToCHWImage:
    """HWC → CHW."""

    def __call__(self, img: np.ndarray, rng: Rng = None) -> np.ndarray:
        return np.ascontiguousarray(img.transpose((2, 0, 1)))
