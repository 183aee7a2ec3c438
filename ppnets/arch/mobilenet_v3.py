"""MobileNetV3 — Howard et al., "Searching for MobileNetV3", ICCV 2019 (arXiv:1905.02244).

Inverted residual blocks (1×1 expand → k×k depthwise → optional squeeze-excite → 1×1
linear projection, + identity when shape allows) with ReLU or h-swish, a 1×1 conv to
``last_second`` channels, global pooling, then a BN-free 1×1 "last conv" with h-swish,
dropout and the linear classifier.

By default the layout is PaddleClas's (keys ``conv``, ``blocks.N.expand_conv``,
``blocks.N.mid_se.conv1`` …, ``last_second_conv``, ``last_conv``, ``fc``) so its
pretrained ``.pdparams`` load unchanged. PaddleClas differs from the paper in five
places, which ``paper_exact=True`` undoes:

* the first block always has a 1×1 expansion conv, even where exp == input width
  (the paper's reference implementation has none there);
* the small model's last conv is 1280 wide instead of the paper's 1024 (Table 2);
* the SE gate is ``clip(0.2 x + 0.5, 0, 1)`` instead of the paper's
  h-sigmoid ``relu6(x + 3) / 6``;
* the SE bottleneck is plain ``mid // 4`` instead of the reference code's
  ``make_divisible(mid / 4, 8)`` (16 → 4 instead of 8, 240 → 60 instead of 64);
* the last conv has no bias (the reference code's BN-free conv has one).

With ``paper_exact=True`` the 1.0 models have exactly torchvision's parameter counts
(small 2,542,856, large 5,483,032 at 1000 classes) and 56.5M / 216.6M MACs at 224 px
(paper: 56M / 219M).

timm's ``mobilenetv3_{large,small}_100`` is the paper's model with ordinary dropout
(``MobileNetV3_*_x1_0_timm``: ``paper_exact=True, dropout_mode="upscale_in_train"``); its
``tf_mobilenetv3_*_100`` ports of the TF weights add TF SAME padding and BN epsilon 1e-3
(``MobileNetV3_*_x1_0_tf``). :func:`from_timm` maps timm's weights onto them.
"""
from __future__ import annotations

from typing import Any, Dict, Optional, Sequence, Tuple

import paddle.nn as nn

from ..errors import ConfigError, did_you_mean
from .base import ClassificationModel
from .blocks import InvertedResidualUnit
from .layers import ConvBNLayer, SqueezeExcite, make_divisible
from .registry import register_model
from .timm_keys import timm_blocks, timm_rename, timm_unit_keys

_R, _H = "relu", "hardswish"

#: Paper Tables 1 and 2, one block per row; widths are scaled then ``make_divisible(·, 8)``.
#: k: depthwise kernel, exp: expansion width, c: output channels, se: squeeze-excite,
#: act: nonlinearity, s: depthwise stride.
ARCHS: Dict[str, Tuple[Tuple[int, int, int, bool, str, int], ...]] = {
    "large": (
        # k, exp,   c,   se,   act, s
        (3, 16, 16, False, _R, 1),
        (3, 64, 24, False, _R, 2),
        (3, 72, 24, False, _R, 1),
        (5, 72, 40, True, _R, 2),
        (5, 120, 40, True, _R, 1),
        (5, 120, 40, True, _R, 1),
        (3, 240, 80, False, _H, 2),
        (3, 200, 80, False, _H, 1),
        (3, 184, 80, False, _H, 1),
        (3, 184, 80, False, _H, 1),
        (3, 480, 112, True, _H, 1),
        (3, 672, 112, True, _H, 1),
        (5, 672, 160, True, _H, 2),
        (5, 960, 160, True, _H, 1),
        (5, 960, 160, True, _H, 1),
    ),
    "small": (
        (3, 16, 16, True, _R, 2),
        (3, 72, 24, False, _R, 2),
        (3, 88, 24, False, _R, 1),
        (5, 96, 40, True, _H, 2),
        (5, 240, 40, True, _H, 1),
        (5, 240, 40, True, _H, 1),
        (5, 120, 48, True, _H, 1),
        (5, 144, 48, True, _H, 1),
        (5, 288, 96, True, _H, 2),
        (5, 576, 96, True, _H, 1),
        (5, 576, 96, True, _H, 1),
    ),
}
STEM_CHANNELS = 16                                  # 3×3 stride-2 h-swish stem
LAST_SECOND = {"large": 960, "small": 576}          # 1×1 conv before pooling (scaled)
LAST_CONV = {"large": 1280, "small": 1280}          # 1×1 conv after pooling (not scaled), PaddleClas
LAST_CONV_PAPER = {"large": 1280, "small": 1024}    # the paper's Tables 1 and 2


class ResidualUnit(InvertedResidualUnit):
    """MobileNetV3's "bneck", the shared :class:`~ppnets.arch.blocks.InvertedResidualUnit` with its
    PaddleClas names: 1×1 ``expand_conv`` → k×k ``bottleneck_conv`` → [``mid_se``] → 1×1 ``linear_conv``,
    + identity if stride 1 and ``in == out``. ``expand=False`` omits the expansion conv (requires
    ``mid == in``). ``se_channels`` is the SE bottleneck width; None means PaddleClas's plain ``mid // 4``.
    ``padding`` and ``bn_epsilon`` as :class:`~ppnets.arch.blocks.InvertedResidualUnit` (``"same"`` and 1e-3
    for TF weights)."""

    def __init__(self, in_channels: int, mid_channels: int, out_channels: int, kernel_size: int,
                 stride: int, use_se: bool, act: str, expand: bool = True,
                 se_gate: str = "hardsigmoid_pc", se_channels: Optional[int] = None,
                 padding: Optional[str] = None, bn_epsilon: float = 1e-5) -> None:
        # PaddleClas reduces to plain ``mid // 4`` (no rounding): 8 → 2, 88 → 22.
        reduced = mid_channels // 4 if se_channels is None else se_channels
        se = SqueezeExcite(mid_channels, reduced, act="relu", gate=se_gate) if use_se else None
        super().__init__(in_channels, out_channels, stride, expand=expand, mid_channels=mid_channels,
                         kernel_size=kernel_size, act=act, se=se, padding=padding, bn_epsilon=bn_epsilon,
                         conv_names=("conv", "bn"), title="Bneck",
                         names=("expand_conv", "bottleneck_conv", "mid_se", "linear_conv"))


class MobileNetV3(ClassificationModel):
    """MobileNetV3-Large or -Small with width multiplier ``scale``.

    Args:
        variant: ``"large"`` or ``"small"`` (paper Table 1 / Table 2).
        scale: width multiplier; widths become ``make_divisible(c * scale, 8)``, except the
            last conv, which stays 1280 (1024 for the paper's small model).
        class_num: number of classes.
        dropout: dropout before the classifier (PaddleClas: 0.2, "downscale_in_infer" mode,
            i.e. activations are multiplied by ``1 - p`` at inference, as its weights expect).
        paper_exact: the paper's model instead of PaddleClas's: no expansion conv where
            exp == input width (first block), 1024-wide last conv for small, h-sigmoid
            ``relu6(x + 3) / 6`` SE gate, SE width ``make_divisible(mid / 4, 8)``, a bias in
            the last conv. Its state_dict no longer matches PaddleClas.
        dropout_mode: ``"downscale_in_infer"`` (PaddleClas's weights expect it) or ``"upscale_in_train"``
            (ordinary dropout, identity at inference: timm's weights).
        padding: None (symmetric) or ``"same"`` (TF SAME for the stem and the strided depthwise convs:
            weights trained in TensorFlow, timm's ``tf_`` ports).
        bn_epsilon: BatchNorm epsilon (1e-3 for TF weights).

    ``num_features`` is the width of the ``last_second_conv`` map ``forward_features`` returns
    (960 / 576 channels at 1.0); ``head_hidden_size`` the width of the last conv after the
    pooling, which ``fc`` reads (1280, or 1024 for the paper's small model).
    """

    def __init__(self, variant: str = "large", scale: float = 1.0, class_num: int = 1000,
                 dropout: float = 0.2, paper_exact: bool = False, dropout_mode: str = "downscale_in_infer",
                 padding: Optional[str] = None, bn_epsilon: float = 1e-5) -> None:
        super().__init__()
        if variant not in ARCHS:
            raise ConfigError(f"MobileNetV3: unknown variant '{variant}'{did_you_mean(variant, ARCHS)}; "
                              f"valid: {', '.join(ARCHS)}")
        self.variant, self.scale = variant, scale
        arch: Sequence[Tuple[int, int, int, bool, str, int]] = ARCHS[variant]
        in_c = make_divisible(STEM_CHANNELS * scale)
        if padding not in (None, "same"):
            raise ConfigError(f"MobileNetV3: padding must be None or 'same', got {padding!r}")
        self.conv = ConvBNLayer(3, in_c, 3, 2, padding=padding, act="hardswish", bn_epsilon=bn_epsilon)
        blocks, widths = [], []
        for k, exp, c, se, act, s in arch:
            mid, out = make_divisible(exp * scale), make_divisible(c * scale)
            blocks.append(ResidualUnit(in_c, mid, out, k, s, se, act,
                                       expand=not (paper_exact and mid == in_c),
                                       se_gate="hardsigmoid" if paper_exact else "hardsigmoid_pc",
                                       se_channels=make_divisible(mid / 4) if paper_exact else None,
                                       padding=padding, bn_epsilon=bn_epsilon))
            in_c = out
            widths.append(out)
        self.blocks = nn.Sequential(*blocks)
        self.stem_modules = ("conv",)
        self.add_stages_by_stride([f"blocks.{i}" for i in range(len(arch))], [row[5] for row in arch], widths,
                                  reduction=2)
        last_second = make_divisible(LAST_SECOND[variant] * scale)
        self.last_second_conv = ConvBNLayer(in_c, last_second, 1, act="hardswish", bn_epsilon=bn_epsilon)
        self.neck_modules = ("last_second_conv",)
        hidden = (LAST_CONV_PAPER if paper_exact else LAST_CONV)[variant]
        # PaddleClas's last conv has no bias; the paper's (TF slim: BN-free conv2d) has one
        self.last_conv = nn.Conv2D(last_second, hidden, 1, bias_attr=None if paper_exact else False)
        self.init_head(last_second, class_num, classifier="fc", hidden="last_conv", hidden_size=hidden,
                       hidden_act="hardswish", dropout=dropout, dropout_mode=dropout_mode)


_TIMM_REST = {"conv_stem.": "conv.conv.", "bn1.": "conv.bn.", "conv_head.": "last_conv.", "classifier.": "fc."}
_BNECK_NAMES = ("expand_conv", "bottleneck_conv", "mid_se", "linear_conv")


def from_timm(state_dict: Dict[str, Any]) -> Dict[str, Any]:
    """timm's ``mobilenetv3_*`` / ``tf_mobilenetv3_*`` keys → PaddleClas's: ``conv_stem``/``bn1`` → ``conv``;
    timm's stages of blocks → the flat ``blocks.<n>`` (``conv_pw``/``bn1`` → ``expand_conv``,
    ``conv_dw``/``bn2`` → ``bottleneck_conv``, ``se.conv_reduce``/``conv_expand`` → ``mid_se.conv1``/``conv2``,
    ``conv_pwl``/``bn3`` → ``linear_conv``; the first, separable block has no expansion); the last
    stage's 1×1 ``conv``/``bn1`` → ``last_second_conv``; ``conv_head`` → ``last_conv``; ``classifier``
    → ``fc``."""
    blocks, rest = timm_blocks(state_dict)
    out = timm_rename(rest, _TIMM_REST)
    n = 0
    for where, block in blocks:
        if "conv.weight" in block:  # timm's ConvBnAct, the 1×1 conv before the pooling
            out.update(timm_rename(block, {"conv.": "last_second_conv.conv.", "bn1.": "last_second_conv.bn."}))
            continue
        out.update(timm_unit_keys(where, block, f"blocks.{n}.", _BNECK_NAMES, se_names=("conv1", "conv2")))
        n += 1
    return out


_PAPER = "Searching for MobileNetV3 (Howard et al., arXiv:1905.02244)"
for _variant in ("small", "large"):
    for _suffix, _scale in (("x0_35", 0.35), ("x0_5", 0.5), ("x0_75", 0.75), ("x1_0", 1.0), ("x1_25", 1.25)):
        register_model(f"MobileNetV3_{_variant}_{_suffix}", MobileNetV3, family="MobileNetV3",
                       input_size=224, paper=_PAPER, year=2019, paddleclas=True,
                       variant=_variant, scale=_scale)
_TIMM = dict(paper_exact=True, dropout_mode="upscale_in_train")
for _variant in ("small", "large"):
    for _suffix, _tf in (("timm", {}), ("tf", dict(padding="same", bn_epsilon=1e-3))):
        register_model(f"MobileNetV3_{_variant}_x1_0_{_suffix}", MobileNetV3, family="MobileNetV3", input_size=224,
                       paper=_PAPER, year=2019, paddleclas=False,
                       timm=(f"{'tf_' if _tf else ''}mobilenetv3_{_variant}_100",), from_timm=from_timm,
                       variant=_variant, scale=1.0, **_TIMM, **_tf)
