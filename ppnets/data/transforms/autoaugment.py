"""AutoAugment and RandAugment: learned and random policies of image operations.

Both work on RGB HWC uint8 images (after DecodeImage and the crop, before NormalizeImage) and
draw every choice (sub-policy, operations, application, magnitude noise, sign) from the sample's
generator. The image functions are in :mod:`.functional`.
"""
from __future__ import annotations

import math
from typing import Any, Callable, Dict, List, Optional, Tuple

import numpy as np

from ...errors import ConfigError, short_repr
from . import functional as F
from ..rng import as_generator
from .base import TRANSFORMS, interp_flag, is_int, is_number, probability

__all__ = ["AutoAugment", "RandAugment", "TimmAutoAugment", "AUGMENT_OPS", "AA_POLICIES", "MAX_LEVEL"]

#: magnitudes are on the 0…10 scale of the AutoAugment / RandAugment papers
MAX_LEVEL = 10.0

Level = Callable[[float, np.random.Generator], Tuple[Any, ...]]


def _signed(v: float, rng: np.random.Generator) -> float:
    return -v if rng.random() < 0.5 else v


def _enhance_arg(m: float, rng: np.random.Generator) -> Tuple[float]:
    return (m / MAX_LEVEL * 1.8 + 0.1,)                                # [0.1, 1.9], 1.0 at m = 5


def _enhance_increasing_arg(m: float, rng: np.random.Generator) -> Tuple[float]:
    return (max(0.1, 1.0 + _signed(m / MAX_LEVEL * 0.9, rng)),)        # 1 ± 0.9·m/10


def _signed_level(scale: float) -> Level:
    """Magnitude → ``±scale·m/10`` (random sign)."""
    return lambda m, rng: (_signed(m / MAX_LEVEL * scale, rng),)


#: name → (image function, (magnitude, rng) → arguments); the ranges are the papers' (and timm's)
AUGMENT_OPS: Dict[str, Tuple[Callable[..., np.ndarray], Optional[Level]]] = {
    "AutoContrast": (F.auto_contrast, None),
    "Equalize": (F.equalize, None),
    "Invert": (F.invert, None),
    "Rotate": (F.rotate, _signed_level(30.0)),                                          # ±30°
    "Posterize": (F.posterize, lambda m, rng: (int(m / MAX_LEVEL * 4),)),               # keep 0…4 bits
    "PosterizeIncreasing": (F.posterize, lambda m, rng: (4 - int(m / MAX_LEVEL * 4),)),  # keep 4…0 bits
    "PosterizeOriginal": (F.posterize, lambda m, rng: (int(m / MAX_LEVEL * 4) + 4,)),   # keep 4…8 bits
    "Solarize": (F.solarize, lambda m, rng: (int(m / MAX_LEVEL * 256),)),               # threshold 0…256
    "SolarizeIncreasing": (F.solarize, lambda m, rng: (256 - int(m / MAX_LEVEL * 256),)),
    "SolarizeAdd": (F.solarize_add, lambda m, rng: (int(m / MAX_LEVEL * 110),)),        # add 0…110
    "Color": (F.color, _enhance_arg),
    "ColorIncreasing": (F.color, _enhance_increasing_arg),
    "Contrast": (F.contrast, _enhance_arg),
    "ContrastIncreasing": (F.contrast, _enhance_increasing_arg),
    "Brightness": (F.brightness, _enhance_arg),
    "BrightnessIncreasing": (F.brightness, _enhance_increasing_arg),
    "Sharpness": (F.sharpness, _enhance_arg),
    "SharpnessIncreasing": (F.sharpness, _enhance_increasing_arg),
    "ShearX": (F.shear_x, _signed_level(0.3)),                                          # ±0.3
    "ShearY": (F.shear_y, _signed_level(0.3)),
    "TranslateXRel": (F.translate_x_rel, _signed_level(0.45)),                          # ±45 % of the size
    "TranslateYRel": (F.translate_y_rel, _signed_level(0.45)),
}


class AugmentOp:
    """One policy entry: apply ``name`` at ``magnitude`` with probability ``prob``."""

    def __init__(self, name: str, prob: float, magnitude: float, fill: Tuple[int, ...], interp: int,
                 magnitude_std: float = 0.0) -> None:
        self.name = name
        self.fn, self.level_fn = AUGMENT_OPS[name]
        self.prob = prob
        self.magnitude = magnitude
        self.magnitude_std = magnitude_std
        self.fill = fill
        self.interp = interp

    def __call__(self, img: np.ndarray, rng: np.random.Generator) -> np.ndarray:
        if self.prob < 1.0 and rng.random() >= self.prob:
            return img
        m = self.magnitude
        if self.magnitude_std == math.inf:
            m = rng.uniform(0.0, m)
        elif self.magnitude_std > 0:
            m = rng.normal(m, self.magnitude_std)
        m = min(max(float(m), 0.0), MAX_LEVEL)
        args = self.level_fn(m, rng) if self.level_fn is not None else ()
        return self.fn(img, *args, fill=self.fill, interp=self.interp)

    def __repr__(self) -> str:
        return f"{self.name}(p={self.prob}, m={self.magnitude})"


#: AutoAugment ImageNet policies: 25 sub-policies of two (op, probability, magnitude) entries
AA_POLICIES: Dict[str, List[List[Tuple[str, float, int]]]] = {
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
    if isinstance(fill, (list, tuple)) and len(fill) == 1:
        fill = list(fill) * 3
    if not (isinstance(fill, (list, tuple)) and len(fill) == 3 and all(is_number(v) and 0 <= v <= 255 for v in fill)):
        raise ConfigError(f"{op}.fill: expected 3 values in [0, 255] (R, G, B), got {fill}")
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
        if policy not in AA_POLICIES:
            raise ConfigError(f"AutoAugment.policy: unknown policy '{policy}'; valid: {', '.join(AA_POLICIES)}")
        fill3, interp = _fill3(fill, "AutoAugment"), interp_flag(interpolation, "AutoAugment.interpolation")
        self.policy = [[AugmentOp(name, p, m, fill3, interp) for name, p, m in sub] for sub in AA_POLICIES[policy]]

    def __call__(self, img: np.ndarray, rng: Optional[np.random.Generator] = None) -> np.ndarray:
        F.check_uint8_rgb(img, "AutoAugment")
        rng = as_generator(rng)
        for op in self.policy[int(rng.integers(len(self.policy)))]:
            img = op(img, rng)
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
        if not (is_int(num_layers) and num_layers >= 0):
            raise ConfigError(f"RandAugment.num_layers: expected a non-negative integer, got {short_repr(num_layers)}")
        if not (is_number(magnitude) and 0 <= magnitude <= MAX_LEVEL):
            raise ConfigError(f"RandAugment.magnitude: expected a value in [0, 10], got {short_repr(magnitude)}")
        prob = probability(prob, "RandAugment.prob")
        if not (isinstance(magnitude_std, (int, float)) and magnitude_std >= 0):
            raise ConfigError(f"RandAugment.magnitude_std: expected a non-negative number (or .inf), "
                              f"got {short_repr(magnitude_std)}")
        fill3, interp = _fill3(fill, "RandAugment"), interp_flag(interpolation, "RandAugment.interpolation")
        names = [_RA_INCREASING.get(n, n) if increasing else n for n in _RA_OPS]
        self.num_layers = num_layers
        self.ops = [AugmentOp(n, prob, magnitude, fill3, interp, magnitude_std) for n in names]

    def __call__(self, img: np.ndarray, rng: Optional[np.random.Generator] = None) -> np.ndarray:
        F.check_uint8_rgb(img, "RandAugment")
        rng = as_generator(rng)
        for i in rng.integers(0, len(self.ops), size=self.num_layers):
            img = self.ops[int(i)](img, rng)
        return img


def _timm_sections(config_str: str) -> Tuple[str, Dict[str, str]]:
    head, *rest = config_str.split("-")
    options: Dict[str, str] = {}
    for section in rest:
        key = next((k for k in ("mstd", "inc", "m", "n", "p", "w") if section.startswith(k)), None)
        if key is None or not section[len(key):]:
            raise ConfigError(f"TimmAutoAugment.config_str: cannot read the section {short_repr(section)} of {short_repr(config_str)}; "
                              "expected e.g. 'rand-m9-n2-mstd0.5-inc1'")
        options[key] = section[len(key):]
    return head, options


@TRANSFORMS.register
class TimmAutoAugment:
    """timm's augmentation spelled as a string (PaddleClas's ``TimmAutoAugment``).

    ``config_str`` is ``rand-m{M}[-n{N}][-mstd{S}][-inc{0|1}][-p{P}]`` → :class:`RandAugment` with
    that magnitude, layers (default 2), magnitude noise, increasing ops and probability (default
    0.5), or ``original`` / ``v0`` (optionally ``-mstd…``) → :class:`AutoAugment` with that policy.
    Uncovered pixels are filled with ``mean`` × 255, as timm does; ``img_size`` is accepted for
    PaddleClas's signature (translations are relative to the image here).
    """

    def __init__(self, config_str: str = "rand-m9-mstd0.5-inc1", interpolation: str = "bicubic",
                 img_size: Any = 224, mean: Optional[List[float]] = None) -> None:
        if not isinstance(config_str, str) or not config_str:
            raise ConfigError(f"TimmAutoAugment.config_str: expected a string such as 'rand-m9-mstd0.5-inc1', "
                              f"got {short_repr(config_str)}")
        if interpolation == "random":  # timm draws bilinear or bicubic per image; ppnets keeps one
            interpolation = "bicubic"
        mean = [0.485, 0.456, 0.406] if mean is None else mean
        if not (isinstance(mean, (list, tuple)) and len(mean) == 3 and all(is_number(v) for v in mean)):
            raise ConfigError(f"TimmAutoAugment.mean: expected 3 numbers, got {short_repr(mean)}")
        fill = [min(255, round(255 * float(v))) for v in mean]
        head, opts = _timm_sections(config_str)
        try:
            if head == "rand":
                if "m" not in opts:
                    raise ConfigError(f"TimmAutoAugment.config_str: {short_repr(config_str)} needs a magnitude, e.g. 'rand-m9'")
                self.inner: Any = RandAugment(
                    num_layers=int(opts.get("n", 2)), magnitude=float(opts["m"]), prob=float(opts.get("p", 0.5)),
                    magnitude_std=float(opts.get("mstd", 0.0)), increasing=opts.get("inc", "0") == "1",
                    fill=fill, interpolation=interpolation)
            elif head in AA_POLICIES:
                self.inner = AutoAugment(policy=head, fill=fill, interpolation=interpolation)
            else:
                raise ConfigError(f"TimmAutoAugment.config_str: {short_repr(config_str)} is not supported; use 'rand-…' "
                                  f"(RandAugment) or one of the AutoAugment policies {', '.join(AA_POLICIES)}")
        except ValueError:
            raise ConfigError(f"TimmAutoAugment.config_str: cannot read the numbers of {short_repr(config_str)}") from None

    def __call__(self, img: np.ndarray, rng: Optional[np.random.Generator] = None) -> np.ndarray:
        return self.inner(img, rng)
