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
"""
from __future__ import annotations

from typing import Dict, Optional, Sequence, Tuple

import paddle
import paddle.nn as nn

from ..errors import ConfigError, did_you_mean
from .layers import ClassificationModel, ConvBNLayer, SqueezeExcite, make_divisible
from .registry import register_model

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


class ResidualUnit(nn.Layer):
    """1×1 expand → k×k depthwise → [SE] → 1×1 linear projection, + identity if stride 1 and
    ``in == out``. ``expand=False`` omits the expansion conv (requires ``mid == in``).
    ``se_channels`` is the SE bottleneck width; None means PaddleClas's plain ``mid // 4``."""

    def __init__(self, in_channels: int, mid_channels: int, out_channels: int, kernel_size: int,
                 stride: int, use_se: bool, act: str, expand: bool = True,
                 se_gate: str = "hardsigmoid_pc", se_channels: Optional[int] = None) -> None:
        super().__init__()
        self.shortcut = stride == 1 and in_channels == out_channels
        self.expand_conv = ConvBNLayer(in_channels, mid_channels, 1, act=act) if expand else None
        self.bottleneck_conv = ConvBNLayer(mid_channels, mid_channels, kernel_size, stride,
                                           groups=mid_channels, act=act)
        self.mid_se = None
        if use_se:
            # PaddleClas reduces to plain ``mid // 4`` (no rounding): 8 → 2, 88 → 22.
            reduced = mid_channels // 4 if se_channels is None else se_channels
            self.mid_se = SqueezeExcite(mid_channels, reduced, act="relu", gate=se_gate)
        self.linear_conv = ConvBNLayer(mid_channels, out_channels, 1)

    def forward(self, x: paddle.Tensor) -> paddle.Tensor:
        y = self.expand_conv(x) if self.expand_conv is not None else x
        y = self.bottleneck_conv(y)
        if self.mid_se is not None:
            y = self.mid_se(y)
        y = self.linear_conv(y)
        return x + y if self.shortcut else y


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

    ``num_features`` is the width fed to ``fc`` (the last conv's, 1280 or 1024);
    ``forward_features`` returns the ``last_second_conv`` map (960 / 576 channels at 1.0).
    """

    def __init__(self, variant: str = "large", scale: float = 1.0, class_num: int = 1000,
                 dropout: float = 0.2, paper_exact: bool = False) -> None:
        super().__init__()
        if variant not in ARCHS:
            raise ConfigError(f"MobileNetV3: unknown variant '{variant}'{did_you_mean(variant, ARCHS)}; "
                              f"valid: {', '.join(ARCHS)}")
        self.variant, self.scale, self.class_num = variant, scale, class_num
        arch: Sequence[Tuple[int, int, int, bool, str, int]] = ARCHS[variant]
        in_c = make_divisible(STEM_CHANNELS * scale)
        self.conv = ConvBNLayer(3, in_c, 3, 2, act="hardswish")
        blocks = []
        for k, exp, c, se, act, s in arch:
            mid, out = make_divisible(exp * scale), make_divisible(c * scale)
            blocks.append(ResidualUnit(in_c, mid, out, k, s, se, act,
                                       expand=not (paper_exact and mid == in_c),
                                       se_gate="hardsigmoid" if paper_exact else "hardsigmoid_pc",
                                       se_channels=make_divisible(mid / 4) if paper_exact else None))
            in_c = out
        self.blocks = nn.Sequential(*blocks)
        last_second = make_divisible(LAST_SECOND[variant] * scale)
        self.last_second_conv = ConvBNLayer(in_c, last_second, 1, act="hardswish")
        self.num_features = (LAST_CONV_PAPER if paper_exact else LAST_CONV)[variant]
        self.avg_pool = nn.AdaptiveAvgPool2D(1)
        # PaddleClas's last conv has no bias; the paper's (TF slim: BN-free conv2d) has one
        self.last_conv = nn.Conv2D(last_second, self.num_features, 1,
                                   bias_attr=None if paper_exact else False)
        self.hardswish = nn.Hardswish()
        self.dropout = nn.Dropout(dropout, mode="downscale_in_infer") if dropout > 0 else None
        self.fc = nn.Linear(self.num_features, class_num)

    def forward_features(self, x: paddle.Tensor) -> paddle.Tensor:
        return self.last_second_conv(self.blocks(self.conv(x)))

    def forward_head(self, x: paddle.Tensor) -> paddle.Tensor:
        x = self.hardswish(self.last_conv(self.avg_pool(x)))
        if self.dropout is not None:
            x = self.dropout(x)
        return self.fc(paddle.flatten(x, 1))


_PAPER = "Searching for MobileNetV3 (Howard et al., arXiv:1905.02244)"
for _variant in ("small", "large"):
    for _suffix, _scale in (("x0_35", 0.35), ("x0_5", 0.5), ("x0_75", 0.75), ("x1_0", 1.0), ("x1_25", 1.25)):
        register_model(f"MobileNetV3_{_variant}_{_suffix}", MobileNetV3, family="MobileNetV3",
                       input_size=224, paper=_PAPER, year=2019, paddleclas=True,
                       variant=_variant, scale=_scale)
