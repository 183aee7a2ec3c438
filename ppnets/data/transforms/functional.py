"""Image functions of the colour and policy augmentations, on RGB HWC uint8 images.

They follow the definitions of PIL's ImageOps / ImageEnhance that the AutoAugment and
RandAugment papers, timm and PaddleClas use, written with numpy and OpenCV (ppnets has no PIL
dependency); results agree with PIL to within rounding. None of them is random: the ops that
call them draw their parameters from the sample's generator.
"""
from __future__ import annotations

from typing import Any, Sequence, Tuple, Union

import cv2
import numpy as np

from ...errors import DataError

__all__ = ["check_uint8_rgb", "auto_contrast", "equalize", "invert", "posterize", "solarize", "solarize_add",
           "color", "contrast", "brightness", "sharpness", "hue", "shear_x", "shear_y", "translate_x",
           "translate_y", "translate_x_rel", "translate_y_rel", "rotate"]

Fill = Tuple[int, ...]


def check_uint8_rgb(img: np.ndarray, op: str) -> None:
    """Raise a DataError unless ``img`` is an RGB HWC uint8 image."""
    if not isinstance(img, np.ndarray) or img.dtype != np.uint8 or img.ndim != 3 or img.shape[2] != 3:
        got = f"{img.dtype} array of shape {tuple(img.shape)}" if isinstance(img, np.ndarray) else type(img).__name__
        raise DataError(f"{op}: expected an RGB HWC uint8 image (place it after DecodeImage and before "
                        f"NormalizeImage/ToCHWImage), got {got}")


def _to_uint8(x: np.ndarray) -> np.ndarray:
    return np.clip(np.rint(x), 0, 255).astype(np.uint8)


def _luma(img: np.ndarray) -> np.ndarray:
    """ITU-R 601-2 luma (PIL's ``convert('L')``) as float32 (H, W)."""
    f = img.astype(np.float32)
    return f[..., 0] * 0.299 + f[..., 1] * 0.587 + f[..., 2] * 0.114


def _blend(degenerate: Union[np.ndarray, float], img: np.ndarray, factor: float) -> np.ndarray:
    """PIL ImageEnhance: ``degenerate + factor · (img − degenerate)``; factor 1 is the identity."""
    return _to_uint8(degenerate + factor * (img.astype(np.float32) - degenerate))


def auto_contrast(img: np.ndarray, **_: Any) -> np.ndarray:
    """Stretch each channel to the full [0, 255] range (a constant channel is left alone)."""
    flat = img.reshape(-1, img.shape[2])
    lo, hi = flat.min(0).astype(np.float32), flat.max(0).astype(np.float32)
    flat_range = hi <= lo
    scale = np.where(flat_range, 1.0, 255.0 / np.maximum(hi - lo, 1.0))
    offset = np.where(flat_range, 0.0, -lo * scale)
    return _to_uint8(img * scale + offset)


def equalize(img: np.ndarray, **_: Any) -> np.ndarray:
    """Per-channel histogram equalisation with PIL's lookup table."""
    out = np.empty_like(img)
    for c in range(img.shape[2]):
        ch = img[..., c]
        hist = np.bincount(ch.ravel(), minlength=256)
        used = hist[hist > 0]
        step = (int(used.sum()) - int(used[-1])) // 255
        if step == 0:
            out[..., c] = ch
            continue
        lut = (np.concatenate(([0], np.cumsum(hist)[:-1])) + step // 2) // step
        out[..., c] = np.clip(lut, 0, 255).astype(np.uint8)[ch]
    return out


def invert(img: np.ndarray, **_: Any) -> np.ndarray:
    return 255 - img


def posterize(img: np.ndarray, bits: int, **_: Any) -> np.ndarray:
    """Keep the ``bits`` most significant bits of every value (0 bits: black)."""
    if bits >= 8:
        return img
    return img & np.uint8((0xFF << (8 - max(bits, 0))) & 0xFF)


def solarize(img: np.ndarray, threshold: int, **_: Any) -> np.ndarray:
    """Invert the values at or above ``threshold``."""
    return np.where(img >= threshold, 255 - img, img).astype(np.uint8)


def solarize_add(img: np.ndarray, add: int, threshold: int = 128, **_: Any) -> np.ndarray:
    """Add ``add`` to the values below ``threshold`` (saturating)."""
    return np.where(img < threshold, np.minimum(img.astype(np.int16) + add, 255), img).astype(np.uint8)


def color(img: np.ndarray, factor: float, **_: Any) -> np.ndarray:
    """Saturation: blend with the grayscale image (0 = grayscale, 1 = unchanged)."""
    return _blend(np.rint(_luma(img))[..., None], img, factor)


def contrast(img: np.ndarray, factor: float, **_: Any) -> np.ndarray:
    """Contrast: blend with the mean gray level (0 = flat gray, 1 = unchanged)."""
    return _blend(float(np.floor(_luma(img).mean() + 0.5)), img, factor)


def brightness(img: np.ndarray, factor: float, **_: Any) -> np.ndarray:
    """Brightness: blend with black (0 = black, 1 = unchanged)."""
    return _blend(0.0, img, factor)


_SMOOTH = np.array([[1, 1, 1], [1, 5, 1], [1, 1, 1]], np.float32) / 13.0


def sharpness(img: np.ndarray, factor: float, **_: Any) -> np.ndarray:
    """Sharpness: blend with PIL's SMOOTH-filtered image (border pixels stay unfiltered)."""
    smooth = img.astype(np.float32)
    if img.shape[0] > 2 and img.shape[1] > 2:
        smooth[1:-1, 1:-1] = cv2.filter2D(img.astype(np.float32), -1, _SMOOTH)[1:-1, 1:-1]
    return _blend(np.rint(smooth), img, factor)


def hue(img: np.ndarray, shift: float) -> np.ndarray:
    """Rotate the HSV hue by ``shift`` of a full turn."""
    hsv = cv2.cvtColor(img.astype(np.float32) / 255.0, cv2.COLOR_RGB2HSV)  # H in [0, 360)
    hsv[..., 0] = np.mod(hsv[..., 0] + shift * 360.0, 360.0)
    return _to_uint8(cv2.cvtColor(hsv, cv2.COLOR_HSV2RGB) * 255.0)


def _affine(img: np.ndarray, matrix: Sequence[float], fill: Fill, interp: int) -> np.ndarray:
    """PIL's ``Image.transform(AFFINE, matrix)``: output pixel (x, y) samples input (ax+by+c, dx+ey+f)."""
    h, w = img.shape[:2]
    m = np.array(matrix, np.float64).reshape(2, 3)
    m[:, 2] += 0.5 * (m[:, 0] + m[:, 1]) - 0.5  # PIL samples at pixel centres (x + ½, y + ½)
    return cv2.warpAffine(img, m, (w, h), flags=interp | cv2.WARP_INVERSE_MAP,
                          borderMode=cv2.BORDER_CONSTANT, borderValue=tuple(float(v) for v in fill))


def shear_x(img: np.ndarray, factor: float, fill: Fill, interp: int) -> np.ndarray:
    return _affine(img, (1, factor, 0, 0, 1, 0), fill, interp)


def shear_y(img: np.ndarray, factor: float, fill: Fill, interp: int) -> np.ndarray:
    return _affine(img, (1, 0, 0, factor, 1, 0), fill, interp)


def translate_x(img: np.ndarray, pixels: float, fill: Fill, interp: int) -> np.ndarray:
    return _affine(img, (1, 0, pixels, 0, 1, 0), fill, interp)


def translate_y(img: np.ndarray, pixels: float, fill: Fill, interp: int) -> np.ndarray:
    return _affine(img, (1, 0, 0, 0, 1, pixels), fill, interp)


def translate_x_rel(img: np.ndarray, pct: float, fill: Fill, interp: int) -> np.ndarray:
    return translate_x(img, pct * img.shape[1], fill, interp)


def translate_y_rel(img: np.ndarray, pct: float, fill: Fill, interp: int) -> np.ndarray:
    return translate_y(img, pct * img.shape[0], fill, interp)


def rotate(img: np.ndarray, degrees: float, fill: Fill, interp: int) -> np.ndarray:
    """Rotate counter-clockwise about the centre, keeping the size (corners get ``fill``)."""
    h, w = img.shape[:2]
    m = cv2.getRotationMatrix2D(((w - 1) / 2.0, (h - 1) / 2.0), degrees, 1.0)
    return cv2.warpAffine(img, m, (w, h), flags=interp, borderMode=cv2.BORDER_CONSTANT,
                          borderValue=tuple(float(v) for v in fill))
