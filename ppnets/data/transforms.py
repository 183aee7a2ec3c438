"""Image transform ops, configured in YAML as PaddleClas does::

    transform_ops:
      - DecodeImage: {to_rgb: true, channel_first: false}
      - RandCropImage: {size: 32}
      - RandFlipImage: {flip_code: 1}
      - NormalizeImage: {scale: 1.0/255.0, mean: [0.485, 0.456, 0.406], std: [0.229, 0.224, 0.225], order: ''}
      - ToCHWImage:

Each op is a small class with ``__call__(img) -> img`` registered in :data:`TRANSFORMS`;
adding an op is one class. Images are HWC ``uint8``/``float32`` numpy arrays after
:class:`DecodeImage` (which takes the file's bytes). Random ops draw from Python's and
numpy's global generators, which the dataset seeds per sample (see ``datasets.py``).

Training augmentation, in pipeline order::

    - DecodeImage:
    - RandCropImage: {size: 224, scale: [0.08, 1.0], ratio: [0.75, 1.333]}   # RandomResizedCrop
    - RandFlipImage: {flip_code: 1}
    - AutoAugment: {policy: original}             # or RandAugment: {num_layers: 2, magnitude: 9}
    - ColorJitter: {brightness: 0.4, contrast: 0.4, saturation: 0.4}
    - NormalizeImage: {...}
    - RandomErasing: {prob: 0.25, mode: pixel}    # on the normalised image, HWC or CHW
    - ToCHWImage:

ColorJitter / AutoAugment / RandAugment need the RGB uint8 image (before NormalizeImage).
Batch-level Mixup / CutMix live in :mod:`ppnets.data.batch_ops`.
"""
from __future__ import annotations

import math
import random
from typing import Any, Callable, Dict, List, Optional, Sequence, Tuple, Union

import cv2
import numpy as np

from ..errors import ConfigError, DataError
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


def _is_int(value: Any) -> bool:
    return isinstance(value, (int, np.integer)) and not isinstance(value, bool)


def _size2(size: Union[int, Sequence[int]], where: str) -> Tuple[int, int]:
    """(width, height) from an int or a [w, h] pair (PaddleClas's order); ``where`` names the option."""
    if _is_int(size) and size > 0:
        return int(size), int(size)
    if isinstance(size, (list, tuple)) and len(size) == 2 and all(_is_int(v) and v > 0 for v in size):
        return int(size[0]), int(size[1])
    raise ConfigError(f"{where}: expected a positive integer or a [width, height] pair of positive integers, "
                      f"got {size!r}")


def _range2(value: Sequence[float], where: str) -> Tuple[float, float]:
    """A ``[min, max]`` pair of numbers with ``0 < min <= max``."""
    if isinstance(value, (list, tuple)) and len(value) == 2 \
            and all(isinstance(v, (int, float)) and not isinstance(v, bool) for v in value) \
            and 0 < value[0] <= value[1] and all(math.isfinite(v) for v in value):
        return float(value[0]), float(value[1])
    raise ConfigError(f"{where}: expected two numbers [min, max] with 0 < min <= max, got {value!r}")


def _check_backend(backend: str, op: str) -> None:
    """Accept PaddleClas's ``backend`` option only with its default: every op here is OpenCV."""
    if backend != "cv2":
        raise ConfigError(f"{op}.backend: only 'cv2' is supported, got {backend!r}")


@TRANSFORMS.register
class DecodeImage:
    """Decode encoded image bytes with OpenCV into HWC uint8 (RGB by default).

    Grayscale images become 3-channel, alpha is dropped and 16-bit images are scaled
    to 8 bits, so every decoded image has the same layout. The EXIF orientation of a
    JPEG is applied (as PaddleClas's ``cv2.imdecode(buf, 1)`` does): a phone photo taken
    upright decodes upright. ``to_np`` and ``backend`` exist for PaddleClas configs and
    accept only their defaults (true, cv2).
    """

    def __init__(self, to_rgb: bool = True, channel_first: bool = False, to_np: bool = True,
                 backend: str = "cv2") -> None:
        if not to_np:
            raise ConfigError("DecodeImage.to_np: false (a PIL image) is not supported; remove it or set it to true")
        _check_backend(backend, "DecodeImage")
        self.to_rgb = to_rgb
        self.channel_first = channel_first

    def __call__(self, data: Union[bytes, np.ndarray]) -> np.ndarray:
        if isinstance(data, np.ndarray) and data.ndim >= 2:
            img = data
        else:
            buf = np.frombuffer(data, dtype=np.uint8) if isinstance(data, (bytes, bytearray)) else data
            if buf.size == 0:
                raise DataError("empty file (0 bytes)")
            # ANYCOLOR|ANYDEPTH (not UNCHANGED): keeps gray and 16-bit as stored, drops alpha and,
            # unlike UNCHANGED, applies the EXIF orientation
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
            raise DataError("ResizeImage: give exactly one of 'size' or 'resize_short'")
        _check_backend(backend, "ResizeImage")
        self.size = _size2(size, "ResizeImage.size") if size is not None else None
        if resize_short is not None and not (_is_int(resize_short) and resize_short > 0):
            raise ConfigError(f"ResizeImage.resize_short: expected a positive integer, got {resize_short!r}")
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
        self.size = _size2(size, "CropImage.size")

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
        _check_backend(backend, "RandCropImage")
        self.size = _size2(size, "RandCropImage.size")
        self.scale = _range2(scale, "RandCropImage.scale") if scale is not None else (0.08, 1.0)
        self.ratio = _range2(ratio, "RandCropImage.ratio") if ratio is not None else (3.0 / 4.0, 4.0 / 3.0)
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


# --------------------------------------------------------------------------- colour and policy augmentation
#
# ColorJitter, AutoAugment and RandAugment work on RGB HWC uint8 images (after DecodeImage and
# the crop, before NormalizeImage). The image functions follow the definitions of PIL's ImageOps /
# ImageEnhance that the AutoAugment and RandAugment papers, timm and PaddleClas use, written with
# numpy and OpenCV (ppnets has no PIL dependency); results agree with PIL to within rounding.

def _check_uint8_rgb(img: np.ndarray, op: str) -> None:
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


def _auto_contrast(img: np.ndarray, **_: Any) -> np.ndarray:
    """Stretch each channel to the full [0, 255] range (a constant channel is left alone)."""
    flat = img.reshape(-1, img.shape[2])
    lo, hi = flat.min(0).astype(np.float32), flat.max(0).astype(np.float32)
    flat_range = hi <= lo
    scale = np.where(flat_range, 1.0, 255.0 / np.maximum(hi - lo, 1.0))
    offset = np.where(flat_range, 0.0, -lo * scale)
    return _to_uint8(img * scale + offset)


def _equalize(img: np.ndarray, **_: Any) -> np.ndarray:
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


def _invert(img: np.ndarray, **_: Any) -> np.ndarray:
    return 255 - img


def _posterize(img: np.ndarray, bits: int, **_: Any) -> np.ndarray:
    """Keep the ``bits`` most significant bits of every value (0 bits: black)."""
    if bits >= 8:
        return img
    return img & np.uint8((0xFF << (8 - max(bits, 0))) & 0xFF)


def _solarize(img: np.ndarray, threshold: int, **_: Any) -> np.ndarray:
    """Invert the values at or above ``threshold``."""
    return np.where(img >= threshold, 255 - img, img).astype(np.uint8)


def _solarize_add(img: np.ndarray, add: int, threshold: int = 128, **_: Any) -> np.ndarray:
    """Add ``add`` to the values below ``threshold`` (saturating)."""
    return np.where(img < threshold, np.minimum(img.astype(np.int16) + add, 255), img).astype(np.uint8)


def _color(img: np.ndarray, factor: float, **_: Any) -> np.ndarray:
    """Saturation: blend with the grayscale image (0 = grayscale, 1 = unchanged)."""
    return _blend(np.rint(_luma(img))[..., None], img, factor)


def _contrast(img: np.ndarray, factor: float, **_: Any) -> np.ndarray:
    """Contrast: blend with the mean gray level (0 = flat gray, 1 = unchanged)."""
    return _blend(float(np.floor(_luma(img).mean() + 0.5)), img, factor)


def _brightness(img: np.ndarray, factor: float, **_: Any) -> np.ndarray:
    """Brightness: blend with black (0 = black, 1 = unchanged)."""
    return _blend(0.0, img, factor)


_SMOOTH = np.array([[1, 1, 1], [1, 5, 1], [1, 1, 1]], np.float32) / 13.0


def _sharpness(img: np.ndarray, factor: float, **_: Any) -> np.ndarray:
    """Sharpness: blend with PIL's SMOOTH-filtered image (border pixels stay unfiltered)."""
    smooth = img.astype(np.float32)
    if img.shape[0] > 2 and img.shape[1] > 2:
        smooth[1:-1, 1:-1] = cv2.filter2D(img.astype(np.float32), -1, _SMOOTH)[1:-1, 1:-1]
    return _blend(np.rint(smooth), img, factor)


def _affine(img: np.ndarray, matrix: Sequence[float], fill: Tuple[int, ...], interp: int) -> np.ndarray:
    """PIL's ``Image.transform(AFFINE, matrix)``: output pixel (x, y) samples input (ax+by+c, dx+ey+f)."""
    h, w = img.shape[:2]
    m = np.array(matrix, np.float64).reshape(2, 3)
    m[:, 2] += 0.5 * (m[:, 0] + m[:, 1]) - 0.5  # PIL samples at pixel centres (x + ½, y + ½)
    return cv2.warpAffine(img, m, (w, h), flags=interp | cv2.WARP_INVERSE_MAP,
                          borderMode=cv2.BORDER_CONSTANT, borderValue=tuple(float(v) for v in fill))


def _shear_x(img: np.ndarray, factor: float, fill: Tuple[int, ...], interp: int) -> np.ndarray:
    return _affine(img, (1, factor, 0, 0, 1, 0), fill, interp)


def _shear_y(img: np.ndarray, factor: float, fill: Tuple[int, ...], interp: int) -> np.ndarray:
    return _affine(img, (1, 0, 0, factor, 1, 0), fill, interp)


def _translate_x(img: np.ndarray, pixels: float, fill: Tuple[int, ...], interp: int) -> np.ndarray:
    return _affine(img, (1, 0, pixels, 0, 1, 0), fill, interp)


def _translate_y(img: np.ndarray, pixels: float, fill: Tuple[int, ...], interp: int) -> np.ndarray:
    return _affine(img, (1, 0, 0, 0, 1, pixels), fill, interp)


def _translate_x_rel(img: np.ndarray, pct: float, fill: Tuple[int, ...], interp: int) -> np.ndarray:
    return _translate_x(img, pct * img.shape[1], fill, interp)


def _translate_y_rel(img: np.ndarray, pct: float, fill: Tuple[int, ...], interp: int) -> np.ndarray:
    return _translate_y(img, pct * img.shape[0], fill, interp)


def _rotate(img: np.ndarray, degrees: float, fill: Tuple[int, ...], interp: int) -> np.ndarray:
    """Rotate counter-clockwise about the centre, keeping the size (corners get ``fill``)."""
    h, w = img.shape[:2]
    m = cv2.getRotationMatrix2D(((w - 1) / 2.0, (h - 1) / 2.0), degrees, 1.0)
    return cv2.warpAffine(img, m, (w, h), flags=interp, borderMode=cv2.BORDER_CONSTANT,
                          borderValue=tuple(float(v) for v in fill))


#: magnitudes are on the 0…10 scale of the AutoAugment / RandAugment papers
_MAX_LEVEL = 10.0


def _random_sign(v: float) -> float:
    return -v if random.random() < 0.5 else v


def _enhance_arg(m: float) -> Tuple[float]:
    return (m / _MAX_LEVEL * 1.8 + 0.1,)                               # [0.1, 1.9], 1.0 at m = 5


def _enhance_increasing_arg(m: float) -> Tuple[float]:
    return (max(0.1, 1.0 + _random_sign(m / _MAX_LEVEL * 0.9)),)       # 1 ± 0.9·m/10


#: name → (image function, magnitude → arguments); the ranges are the papers' (and timm's)
_AUGMENT_OPS: Dict[str, Tuple[Callable[..., np.ndarray], Optional[Callable[[float], Tuple[Any, ...]]]]] = {
    "AutoContrast": (_auto_contrast, None),
    "Equalize": (_equalize, None),
    "Invert": (_invert, None),
    "Rotate": (_rotate, lambda m: (_random_sign(m / _MAX_LEVEL * 30.0),)),               # ±30°
    "Posterize": (_posterize, lambda m: (int(m / _MAX_LEVEL * 4),)),                     # keep 0…4 bits
    "PosterizeIncreasing": (_posterize, lambda m: (4 - int(m / _MAX_LEVEL * 4),)),       # keep 4…0 bits
    "PosterizeOriginal": (_posterize, lambda m: (int(m / _MAX_LEVEL * 4) + 4,)),         # keep 4…8 bits
    "Solarize": (_solarize, lambda m: (int(m / _MAX_LEVEL * 256),)),                     # threshold 0…256
    "SolarizeIncreasing": (_solarize, lambda m: (256 - int(m / _MAX_LEVEL * 256),)),
    "SolarizeAdd": (_solarize_add, lambda m: (int(m / _MAX_LEVEL * 110),)),              # add 0…110
    "Color": (_color, _enhance_arg),
    "ColorIncreasing": (_color, _enhance_increasing_arg),
    "Contrast": (_contrast, _enhance_arg),
    "ContrastIncreasing": (_contrast, _enhance_increasing_arg),
    "Brightness": (_brightness, _enhance_arg),
    "BrightnessIncreasing": (_brightness, _enhance_increasing_arg),
    "Sharpness": (_sharpness, _enhance_arg),
    "SharpnessIncreasing": (_sharpness, _enhance_increasing_arg),
    "ShearX": (_shear_x, lambda m: (_random_sign(m / _MAX_LEVEL * 0.3),)),               # ±0.3
    "ShearY": (_shear_y, lambda m: (_random_sign(m / _MAX_LEVEL * 0.3),)),
    "TranslateXRel": (_translate_x_rel, lambda m: (_random_sign(m / _MAX_LEVEL * 0.45),)),  # ±45 % of the size
    "TranslateYRel": (_translate_y_rel, lambda m: (_random_sign(m / _MAX_LEVEL * 0.45),)),
}


class _AugmentOp:
    """One policy entry: apply ``name`` at ``magnitude`` with probability ``prob``."""

    def __init__(self, name: str, prob: float, magnitude: float, fill: Tuple[int, ...], interp: int,
                 magnitude_std: float = 0.0) -> None:
        self.name = name
        self.fn, self.level_fn = _AUGMENT_OPS[name]
        self.prob = prob
        self.magnitude = magnitude
        self.magnitude_std = magnitude_std
        self.fill = fill
        self.interp = interp

    def __call__(self, img: np.ndarray) -> np.ndarray:
        if self.prob < 1.0 and random.random() >= self.prob:
            return img
        m = self.magnitude
        if self.magnitude_std == math.inf:
            m = random.uniform(0.0, m)
        elif self.magnitude_std > 0:
            m = random.gauss(m, self.magnitude_std)
        m = min(max(m, 0.0), _MAX_LEVEL)
        args = self.level_fn(m) if self.level_fn is not None else ()
        return self.fn(img, *args, fill=self.fill, interp=self.interp)

    def __repr__(self) -> str:
        return f"{self.name}(p={self.prob}, m={self.magnitude})"


#: AutoAugment ImageNet policies: 25 sub-policies of two (op, probability, magnitude) entries
_AA_POLICIES: Dict[str, List[List[Tuple[str, float, int]]]] = {
    # the policy found on ImageNet in the AutoAugment paper (Cubuk et al., 2019, Table 9)
    "original": [
        [("PosterizeOriginal", 0.4, 8), ("Rotate", 0.6, 9)], [("Solarize", 0.6, 5), ("AutoContrast", 0.6, 5)],
        [("Equalize", 0.8, 8), ("Equalize", 0.6, 3)], [("PosterizeOriginal", 0.6, 7), ("PosterizeOriginal", 0.6, 6)],
        [("Equalize", 0.4, 7), ("Solarize", 0.2, 4)], [("Equalize", 0.4, 4), ("Rotate", 0.8, 8)],
        [("Solarize", 0.6, 3), ("Equalize", 0.6, 7)], [("PosterizeOriginal", 0.8, 5), ("Equalize", 1.0, 2)],
        [("Rotate", 0.2, 3), ("Solarize", 0.6, 8)], [("Equalize", 0.6, 8), ("PosterizeOriginal", 0.4, 6)],
        [("Rotate", 0.8, 8), ("Color", 0.4, 0)], [("Rotate", 0.4, 9), ("Equalize", 0.6, 2)],
        [("Equalize", 0.0, 7), ("Equalize", 0.8, 8)], [("Invert", 0.6, 4), ("Equalize", 1.0, 8)],
        [("Color", 0.6, 4), ("Contrast", 1.0, 8)], [("Rotate", 0.8, 8), ("Color", 1.0, 2)],
        [("Color", 0.8, 8), ("Solarize", 0.8, 7)], [("Sharpness", 0.4, 7), ("Invert", 0.6, 8)],
        [("ShearX", 0.6, 5), ("Equalize", 1.0, 9)], [("Color", 0.4, 0), ("Equalize", 0.6, 3)],
        [("Equalize", 0.4, 7), ("Solarize", 0.2, 4)], [("Solarize", 0.6, 5), ("AutoContrast", 0.6, 5)],
        [("Invert", 0.6, 4), ("Equalize", 1.0, 8)], [("Color", 0.6, 4), ("Contrast", 1.0, 8)],
        [("Equalize", 0.8, 8), ("Equalize", 0.6, 3)],
    ],
    # the ImageNet policy of the TPU EfficientNet implementation ("v0" in timm)
    "v0": [
        [("Equalize", 0.8, 1), ("ShearY", 0.8, 4)], [("Color", 0.4, 9), ("Equalize", 0.6, 3)],
        [("Color", 0.4, 1), ("Rotate", 0.6, 8)], [("Solarize", 0.8, 3), ("Equalize", 0.4, 7)],
        [("Solarize", 0.4, 2), ("Solarize", 0.6, 2)], [("Color", 0.2, 0), ("Equalize", 0.8, 8)],
        [("Equalize", 0.4, 8), ("SolarizeAdd", 0.8, 3)], [("ShearX", 0.2, 9), ("Rotate", 0.6, 8)],
        [("Color", 0.6, 1), ("Equalize", 1.0, 2)], [("Invert", 0.4, 9), ("Rotate", 0.6, 0)],
        [("Equalize", 1.0, 9), ("ShearY", 0.6, 3)], [("Color", 0.4, 7), ("Equalize", 0.6, 0)],
        [("Posterize", 0.4, 6), ("AutoContrast", 0.4, 7)], [("Solarize", 0.6, 8), ("Color", 0.6, 9)],
        [("Solarize", 0.2, 4), ("Rotate", 0.8, 9)], [("Rotate", 1.0, 7), ("TranslateYRel", 0.8, 9)],
        [("ShearX", 0.0, 0), ("Solarize", 0.8, 4)], [("ShearY", 0.8, 0), ("Color", 0.6, 4)],
        [("Color", 1.0, 0), ("Rotate", 0.6, 2)], [("Equalize", 0.8, 4), ("Equalize", 0.0, 8)],
        [("Equalize", 1.0, 4), ("AutoContrast", 0.6, 2)], [("ShearY", 0.4, 7), ("SolarizeAdd", 0.6, 7)],
        [("Posterize", 0.8, 2), ("Solarize", 0.6, 10)], [("Solarize", 0.6, 8), ("Equalize", 0.6, 1)],
        [("Color", 0.8, 6), ("Rotate", 0.4, 5)],
    ],
}


def _fill3(fill: Optional[List[int]], op: str) -> Tuple[int, int, int]:
    if fill is None:
        return (128, 128, 128)
    if len(fill) == 1:
        fill = list(fill) * 3
    if len(fill) != 3 or not all(0 <= v <= 255 for v in fill):
        raise DataError(f"{op}.fill: expected 3 values in [0, 255] (R, G, B), got {fill}")
    return tuple(int(v) for v in fill)  # type: ignore[return-value]


@TRANSFORMS.register
class AutoAugment:
    """AutoAugment with a learned ImageNet policy (Cubuk et al., "AutoAugment", CVPR 2019).

    Each image gets one of the policy's 25 sub-policies at random; each of its two operations
    is applied with its own probability at its fixed magnitude. ``policy: original`` is the
    paper's ImageNet policy (timm's ``original``, PaddleClas's ``ImageNetPolicy``); ``v0`` is the
    EfficientNet TPU variant. Geometric operations fill uncovered pixels with ``fill`` (RGB).
    Expects an RGB HWC uint8 image.
    """

    def __init__(self, policy: str = "original", fill: Optional[List[int]] = None,
                 interpolation: str = "bilinear") -> None:
        if policy not in _AA_POLICIES:
            raise DataError(f"AutoAugment.policy: unknown policy '{policy}'; valid: {', '.join(_AA_POLICIES)}")
        fill3, interp = _fill3(fill, "AutoAugment"), _interp(interpolation)
        self.policy = [[_AugmentOp(name, p, m, fill3, interp) for name, p, m in sub] for sub in _AA_POLICIES[policy]]

    def __call__(self, img: np.ndarray) -> np.ndarray:
        _check_uint8_rgb(img, "AutoAugment")
        for op in random.choice(self.policy):
            img = op(img)
        return img


_RA_OPS = ("AutoContrast", "Equalize", "Invert", "Rotate", "Posterize", "Solarize", "SolarizeAdd", "Color",
           "Contrast", "Brightness", "Sharpness", "ShearX", "ShearY", "TranslateXRel", "TranslateYRel")
_RA_INCREASING = {"Posterize": "PosterizeIncreasing", "Solarize": "SolarizeIncreasing", "Color": "ColorIncreasing",
                  "Contrast": "ContrastIncreasing", "Brightness": "BrightnessIncreasing",
                  "Sharpness": "SharpnessIncreasing"}


@TRANSFORMS.register
class RandAugment:
    """RandAugment (Cubuk et al., "RandAugment", NeurIPS 2020), timm's formulation.

    ``num_layers`` operations are drawn uniformly (with replacement) from 15 (auto-contrast,
    equalize, invert, rotate, posterize, solarize, solarize-add, colour, contrast, brightness,
    sharpness, shear x/y, translate x/y) and each is applied with probability ``prob`` at
    ``magnitude`` on the 0…10 scale (rotate ±3°·m, shear ±0.03·m, translate ±4.5 %·m of the size …).

    Args:
        num_layers: operations per image (N in the paper).
        magnitude: strength M in [0, 10] shared by all operations.
        prob: probability of applying each drawn operation (timm 0.5; PaddleClas always applies: 1.0).
        magnitude_std: if > 0, each application draws its magnitude from N(M, std) (``.inf``: uniform
            in [0, M]), clipped to [0, 10] — timm's ``mstd``.
        increasing: use the variants whose strength grows with the magnitude for posterize, solarize
            and the colour enhancements (timm's ``inc1``, and what PaddleClas does for the enhancements);
            ``false`` is timm's legacy mapping where e.g. colour is a no-op at M = 5.
        fill: RGB value of pixels uncovered by geometric operations.
    """

    def __init__(self, num_layers: int = 2, magnitude: float = 5, prob: float = 0.5, magnitude_std: float = 0.0,
                 increasing: bool = True, fill: Optional[List[int]] = None, interpolation: str = "bilinear") -> None:
        if num_layers < 0:
            raise DataError(f"RandAugment.num_layers: expected a non-negative integer, got {num_layers}")
        if not 0 <= magnitude <= _MAX_LEVEL:
            raise DataError(f"RandAugment.magnitude: expected a value in [0, 10], got {magnitude}")
        if not 0.0 <= prob <= 1.0:
            raise DataError(f"RandAugment.prob: expected a probability in [0, 1], got {prob}")
        fill3, interp = _fill3(fill, "RandAugment"), _interp(interpolation)
        names = [_RA_INCREASING.get(n, n) if increasing else n for n in _RA_OPS]
        self.num_layers = num_layers
        self.ops = [_AugmentOp(n, prob, magnitude, fill3, interp, magnitude_std) for n in names]

    def __call__(self, img: np.ndarray) -> np.ndarray:
        _check_uint8_rgb(img, "RandAugment")
        for op in random.choices(self.ops, k=self.num_layers):
            img = op(img)
        return img


def _jitter_range(value: Union[float, List[float]], name: str, center: float, bound: Optional[float]) -> \
        Optional[Tuple[float, float]]:
    """torchvision's convention: a number v means [center − v, center + v] (clipped at 0); a pair is the range."""
    if isinstance(value, (int, float)):
        if value < 0:
            raise DataError(f"ColorJitter.{name}: expected a non-negative number, got {value}")
        lo, hi = center - value, center + value
        if center == 1.0:
            lo = max(lo, 0.0)
    else:
        if len(value) != 2 or value[0] > value[1]:
            raise DataError(f"ColorJitter.{name}: expected a number or a [min, max] pair, got {value}")
        lo, hi = float(value[0]), float(value[1])
    if bound is not None and (lo < -bound or hi > bound):
        raise DataError(f"ColorJitter.{name}: expected values in [-{bound}, {bound}], got [{lo}, {hi}]")
    if center == 1.0 and lo < 0:
        raise DataError(f"ColorJitter.{name}: factors must be non-negative, got [{lo}, {hi}]")
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

    def __init__(self, brightness: Union[float, List[float]] = 0.0, contrast: Union[float, List[float]] = 0.0,
                 saturation: Union[float, List[float]] = 0.0, hue: Union[float, List[float]] = 0.0,
                 prob: float = 1.0) -> None:
        self.ranges = {
            "brightness": _jitter_range(brightness, "brightness", 1.0, None),
            "contrast": _jitter_range(contrast, "contrast", 1.0, None),
            "saturation": _jitter_range(saturation, "saturation", 1.0, None),
            "hue": _jitter_range(hue, "hue", 0.0, 0.5),
        }
        self.prob = prob

    def get_params(self) -> List[Tuple[str, float]]:
        """The adjustments to apply, in order: ``[(name, factor), …]``."""
        order = [name for name in self.ranges if self.ranges[name] is not None]
        random.shuffle(order)
        return [(name, random.uniform(*self.ranges[name])) for name in order]  # type: ignore[misc]

    @staticmethod
    def apply(img: np.ndarray, params: List[Tuple[str, float]]) -> np.ndarray:
        for name, factor in params:
            if name == "brightness":
                img = _brightness(img, factor)
            elif name == "contrast":
                img = _contrast(img, factor)
            elif name == "saturation":
                img = _color(img, factor)
            else:
                hsv = cv2.cvtColor(img.astype(np.float32) / 255.0, cv2.COLOR_RGB2HSV)  # H in [0, 360)
                hsv[..., 0] = np.mod(hsv[..., 0] + factor * 360.0, 360.0)
                img = _to_uint8(cv2.cvtColor(hsv, cv2.COLOR_HSV2RGB) * 255.0)
        return img

    def __call__(self, img: np.ndarray) -> np.ndarray:
        _check_uint8_rgb(img, "ColorJitter")
        if self.prob < 1.0 and random.random() >= self.prob:
            return img
        return self.apply(img, self.get_params())


def _number(value: Union[float, str], where: str) -> float:
    """Accept a number or PaddleClas's ``'1.0/255.0'`` fraction string (parsed, never evaluated)."""
    if isinstance(value, (int, float)) and not isinstance(value, bool):
        return float(value)
    parts = str(value).split("/")
    try:
        values = [float(p) for p in parts]
    except ValueError:
        raise DataError(f"{where}: expected a number or 'a/b', got {value!r}") from None
    if len(values) == 1:
        return values[0]
    if len(values) == 2 and values[1] != 0:
        return values[0] / values[1]
    raise DataError(f"{where}: expected a number or 'a/b', got {value!r}")


def _scale_value(scale: Union[float, str]) -> float:
    return _number(scale, "NormalizeImage.scale")


@TRANSFORMS.register
class NormalizeImage:
    """``(img * scale - mean) / std`` per channel, as float32 (``order: 'hwc'`` or ``'chw'``).

    ``order: ''`` is PaddleClas's spelling of ``'hwc'``; ``channel_num`` accepts only 3.
    """

    def __init__(self, scale: Union[float, str, None] = None, mean: Optional[List[float]] = None,
                 std: Optional[List[float]] = None, order: str = "hwc", output_fp16: bool = False,
                 channel_num: int = 3) -> None:
        if order not in ("", "hwc", "chw"):
            raise ConfigError(f"NormalizeImage.order: expected '', 'hwc' or 'chw', got {order!r}")
        if channel_num != 3:
            raise ConfigError(f"NormalizeImage.channel_num: only 3 is supported, got {channel_num!r}")
        self.scale = _scale_value(scale) if scale is not None else 1.0 / 255.0
        mean = mean if mean is not None else [0.485, 0.456, 0.406]
        std = std if std is not None else [0.229, 0.224, 0.225]
        for name, values in (("mean", mean), ("std", std)):
            if len(values) != 3 or (name == "std" and any(v == 0 for v in values)):
                raise ConfigError(f"NormalizeImage.{name}: expected 3 {'non-zero ' if name == 'std' else ''}"
                                  f"numbers (one per channel), got {values!r}")
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
            raise DataError("RandomErasing: give 'prob' or its PaddleClas name 'EPSILON', not both")
        self.prob = _number(EPSILON, "RandomErasing.EPSILON") if EPSILON is not None else \
            (0.5 if prob is None else float(prob))
        self.sl, self.sh = _number(sl, "RandomErasing.sl"), _number(sh, "RandomErasing.sh")
        r1 = _number(r1, "RandomErasing.r1")
        if not 0.0 <= self.prob <= 1.0:
            raise DataError(f"RandomErasing.prob: expected a probability in [0, 1], got {self.prob}")
        if not 0.0 < self.sl <= self.sh <= 1.0:
            raise DataError(f"RandomErasing: expected 0 < sl <= sh <= 1, got sl={self.sl}, sh={self.sh}")
        if not 0.0 < r1 <= 1.0:
            raise DataError(f"RandomErasing.r1: expected a value in (0, 1], got {r1}")
        if mode not in ("const", "rand", "pixel"):
            raise DataError(f"RandomErasing.mode: expected const, rand or pixel, got '{mode}'")
        if layout not in ("auto", "hwc", "chw"):
            raise DataError(f"RandomErasing.layout: expected auto, hwc or chw, got '{layout}'")
        self.ratio = (r1, 1.0 / r1)
        self.use_log_aspect = use_log_aspect
        self.mean = [0.0, 0.0, 0.0] if mean is None else [float(v) for v in mean]
        self.attempt = attempt
        self.mode = mode
        self.layout = layout

    def get_params(self, h: int, w: int) -> Optional[Tuple[int, int, int, int]]:
        """``(top, left, height, width)`` of the region to erase, or None if no draw fitted."""
        area = h * w
        for _ in range(self.attempt):
            target = random.uniform(self.sl, self.sh) * area
            if self.use_log_aspect:
                aspect = math.exp(random.uniform(math.log(self.ratio[0]), math.log(self.ratio[1])))
            else:
                aspect = random.uniform(*self.ratio)
            eh = int(round(math.sqrt(target * aspect)))
            ew = int(round(math.sqrt(target / aspect)))
            if 0 < eh < h and 0 < ew < w:
                return random.randint(0, h - eh), random.randint(0, w - ew), eh, ew
        return None

    def __call__(self, img: np.ndarray) -> np.ndarray:
        layout = _layout(img, self.layout, "RandomErasing")
        if random.random() >= self.prob:
            return img
        out = np.array(img, copy=True)
        hwc = out[..., None] if layout == "hw" else (np.moveaxis(out, 0, -1) if layout == "chw" else out)
        h, w, c = hwc.shape
        box = self.get_params(h, w)
        if box is None:
            return img
        top, left, eh, ew = box
        if self.mode == "pixel":
            value = np.random.normal(size=(eh, ew, c))
        elif self.mode == "rand":
            value = np.random.normal(size=(1, 1, c))
        else:
            if len(self.mean) not in (1, c):
                raise DataError(f"RandomErasing.mean: expected 1 or {c} values (one per channel), got {self.mean}")
            value = np.asarray(self.mean, np.float64)
        hwc[top:top + eh, left:left + ew] = value.astype(out.dtype) if out.dtype != np.uint8 else \
            np.clip(np.rint(value), 0, 255).astype(np.uint8)
        return out


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
