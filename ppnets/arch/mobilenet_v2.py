"""MobileNetV2 — Sandler et al., "MobileNetV2: Inverted Residuals and Linear Bottlenecks", CVPR 2018
(arXiv:1801.04381).

Layer names follow PaddleClas (``conv1``, ``conv2._first_block._expand_conv`` …,
``conv9``, ``out``) so its pretrained ``.pdparams`` load unchanged.
"""
from __future__ import annotations

from typing import Sequence, Tuple

import paddle
import paddle.nn as nn

from .layers import ClassificationModel, conv_bn_legacy
from .registry import register_model

#: The paper's Table 2: (expansion t, output channels c, repeats n, first stride s).
ARCH: Tuple[Tuple[int, int, int, int], ...] = (
    # t,   c,  n, s
    (1, 16, 1, 1),
    (6, 24, 2, 2),
    (6, 32, 3, 2),
    (6, 64, 4, 2),
    (6, 96, 3, 1),
    (6, 160, 3, 2),
    (6, 320, 1, 1),
)

class InvertedResidualUnit(nn.Layer):
    """1×1 expand (ReLU6) → 3×3 depthwise (ReLU6) → 1×1 linear projection, + identity if it fits.

    With ``expand=False`` (the paper's t = 1 block) there is no expansion convolution.
    """

    def __init__(self, in_channels: int, out_channels: int, stride: int, expansion: int,
                 shortcut: bool, expand: bool = True) -> None:
        super().__init__()
        mid = int(round(in_channels * expansion))
        self.shortcut = shortcut
        self._expand_conv = conv_bn_legacy(in_channels, mid, 1, act="relu6") if expand else None
        self._bottleneck_conv = conv_bn_legacy(mid, mid, 3, stride, groups=mid, act="relu6")
        self._linear_conv = conv_bn_legacy(mid, out_channels, 1)

    def forward(self, x: paddle.Tensor) -> paddle.Tensor:
        y = self._expand_conv(x) if self._expand_conv is not None else x
        y = self._linear_conv(self._bottleneck_conv(y))
        return x + y if self.shortcut else y


class InvresiBlocks(nn.Layer):
    """One row of the table: ``n`` inverted residual units, the first with stride ``s``.

    Sublayers are ``_first_block`` and ``{name}_2 … {name}_n`` (PaddleClas's keys).
    """

    def __init__(self, in_channels: int, t: int, c: int, n: int, s: int, name: str,
                 expand: bool = True) -> None:
        super().__init__()
        self._first_block = InvertedResidualUnit(in_channels, c, s, t, shortcut=False, expand=expand)
        self._blocks = []
        for i in range(1, n):
            unit = self.add_sublayer(f"{name}_{i + 1}", InvertedResidualUnit(c, c, 1, t, shortcut=True,
                                                                                expand=expand))
            self._blocks.append(unit)

    def forward(self, x: paddle.Tensor) -> paddle.Tensor:
        x = self._first_block(x)
        for unit in self._blocks:
            x = unit(x)
        return x


class MobileNetV2(ClassificationModel):
    """MobileNetV2 with width multiplier ``scale``.

    Args:
        scale: width multiplier applied to every layer; the last 1×1 conv stays 1280
            wide unless ``scale > 1`` (as in the paper and PaddleClas).
        class_num: number of classes.
        dropout: dropout before the classifier (0 = none, PaddleClas's default).
        paper_exact: drop the 1×1 expansion conv of the t = 1 block, as the paper's
            reference does (PaddleClas keeps it; 3,504,872 vs 3,505,960 params at 1.0).
        arch: the block table, by default :data:`ARCH`.
    """

    def __init__(self, scale: float = 1.0, class_num: int = 1000, dropout: float = 0.0,
                 paper_exact: bool = False, arch: Sequence[Sequence[int]] = ARCH) -> None:
        super().__init__()
        self.scale = scale
        self.class_num = class_num
        in_c = int(32 * scale)
        self.conv1 = conv_bn_legacy(3, in_c, 3, stride=2, act="relu6")
        self.stages = []
        for i, (t, c, n, s) in enumerate(arch):
            name = f"conv{i + 2}"
            stage = self.add_sublayer(name, InvresiBlocks(in_c, t, int(c * scale), n, s, name,
                                                          expand=not (paper_exact and t == 1)))
            self.stages.append(stage)
            in_c = int(c * scale)
        self.num_features = int(1280 * scale) if scale > 1.0 else 1280
        self._head_name = f"conv{len(arch) + 2}"  # "conv9" in PaddleClas's keys
        self.add_sublayer(self._head_name, conv_bn_legacy(in_c, self.num_features, 1, act="relu6"))
        self.pool2d_avg = nn.AdaptiveAvgPool2D(1)
        self.dropout = nn.Dropout(dropout) if dropout > 0 else None
        self.out = nn.Linear(self.num_features, class_num)

    def forward_features(self, x: paddle.Tensor) -> paddle.Tensor:
        x = self.conv1(x)
        for stage in self.stages:
            x = stage(x)
        return getattr(self, self._head_name)(x)

    def forward_head(self, x: paddle.Tensor) -> paddle.Tensor:
        x = paddle.flatten(self.pool2d_avg(x), 1)
        if self.dropout is not None:
            x = self.dropout(x)
        return self.out(x)


_PAPER = "MobileNetV2: Inverted Residuals and Linear Bottlenecks (Sandler et al., arXiv:1801.04381)"
for _suffix, _scale in (("_x0_25", 0.25), ("_x0_5", 0.5), ("_x0_75", 0.75), ("", 1.0), ("_x1_5", 1.5),
                        ("_x2_0", 2.0)):
    register_model(f"MobileNetV2{_suffix}", MobileNetV2, family="MobileNetV2", input_size=224,
                   paper=_PAPER, year=2018, scale=_scale)
