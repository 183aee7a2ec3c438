"""ShuffleNetV2 — Ma et al., "ShuffleNet V2: Practical Guidelines for Efficient CNN Architecture
Design", ECCV 2018 (arXiv:1807.11164).

Layer names follow PaddleClas (``_conv1``, units ``2_1`` … ``4_4`` with ``_conv_dw_1`` /
``_conv_linear_1`` / ``_conv_pw_2`` … in the downsampling units and ``_conv_pw`` / ``_conv_dw`` /
``_conv_linear`` in the others, ``_last_conv``, ``_fc``) so its pretrained ``.pdparams`` load unchanged.
"""
from __future__ import annotations

from typing import Dict, Optional, Sequence, Tuple

import paddle
import paddle.nn as nn

from ..errors import ConfigError
from .base import ClassificationModel
from .blocks import BlockPaths
from .layers import channel_shuffle, conv_bn_legacy
from .registry import register_model

#: Output channels per width (paper Table 5; 0.25 and 0.33 are PaddleClas's):
#: (stem conv1, stage2, stage3, stage4, last 1×1 conv5).
WIDTHS: Dict[float, Tuple[int, int, int, int, int]] = {
    0.25: (24, 24, 48, 96, 512),
    0.33: (24, 32, 64, 128, 512),
    0.5: (24, 48, 96, 192, 1024),
    1.0: (24, 116, 232, 464, 1024),
    1.5: (24, 176, 352, 704, 1024),
    2.0: (24, 244, 488, 976, 2048),
}
#: Units per stage (stages 2, 3, 4); the first unit of each halves the resolution.
STAGE_REPEATS: Tuple[int, ...] = (4, 8, 4)

class ShuffleUnit(nn.Layer):
    """Basic unit (paper Fig. 3c): split channels in half, the second half goes through
    1×1 (act) → 3×3 depthwise → 1×1 (act), concatenate with the first half, shuffle 2 groups."""

    def __init__(self, channels: int, act: str = "relu") -> None:
        super().__init__()
        c = channels // 2
        self._conv_pw = conv_bn_legacy(c, c, 1, act=act)
        self._conv_dw = conv_bn_legacy(c, c, 3, groups=c)
        self._conv_linear = conv_bn_legacy(c, c, 1, act=act)

    def forward(self, x: paddle.Tensor) -> paddle.Tensor:
        x1, x2 = paddle.split(x, 2, axis=1)
        x2 = self._conv_linear(self._conv_dw(self._conv_pw(x2)))
        return channel_shuffle(paddle.concat([x1, x2], axis=1), 2)

    def block_paths(self) -> BlockPaths:
        return BlockPaths("Shuffle unit (split)", [[], [self._conv_pw, self._conv_dw, self._conv_linear]], "concat",
                          split=True, post=[("shuffle", 2)])


class ShuffleDownUnit(nn.Layer):
    """Spatial down-sampling unit (paper Fig. 3d): no split; branch 1 is 3×3 depthwise /2 → 1×1 (act),
    branch 2 is 1×1 (act) → 3×3 depthwise /2 → 1×1 (act); concatenate, shuffle 2 groups."""

    def __init__(self, in_channels: int, out_channels: int, stride: int = 2, act: str = "relu") -> None:
        super().__init__()
        c = out_channels // 2
        self._conv_dw_1 = conv_bn_legacy(in_channels, in_channels, 3, stride, groups=in_channels)
        self._conv_linear_1 = conv_bn_legacy(in_channels, c, 1, act=act)
        self._conv_pw_2 = conv_bn_legacy(in_channels, c, 1, act=act)
        self._conv_dw_2 = conv_bn_legacy(c, c, 3, stride, groups=c)
        self._conv_linear_2 = conv_bn_legacy(c, c, 1, act=act)

    def forward(self, x: paddle.Tensor) -> paddle.Tensor:
        x1 = self._conv_linear_1(self._conv_dw_1(x))
        x2 = self._conv_linear_2(self._conv_dw_2(self._conv_pw_2(x)))
        return channel_shuffle(paddle.concat([x1, x2], axis=1), 2)

    def block_paths(self) -> BlockPaths:
        return BlockPaths("Shuffle unit /2", [[self._conv_dw_1, self._conv_linear_1],
                                              [self._conv_pw_2, self._conv_dw_2, self._conv_linear_2]],
                          "concat", post=[("shuffle", 2)])


class ShuffleNetV2(ClassificationModel):
    """ShuffleNetV2 at width ``scale``.

    Args:
        scale: a key of :data:`WIDTHS` (0.25, 0.33, 0.5, 1.0, 1.5, 2.0).
        class_num: number of classes.
        act: activation of every non-linear layer ("relu"; PaddleClas's ShuffleNetV2_swish uses "swish").
        dropout: dropout before the classifier (0 = none, as in the paper and PaddleClas).
        widths: override the channel tuple (stem, stage2, stage3, stage4, last conv).
    """

    def __init__(self, scale: float = 1.0, class_num: int = 1000, act: str = "relu", dropout: float = 0.0,
                 widths: Optional[Sequence[int]] = None) -> None:
        super().__init__()
        if widths is None:
            if scale not in WIDTHS:
                raise ConfigError(f"ShuffleNetV2: unsupported scale {scale}; valid: "
                                  f"{', '.join(str(s) for s in WIDTHS)} (or pass widths=)")
            widths = WIDTHS[scale]
        stem_c, *stage_c, last_c = widths
        self.scale = scale
        self._conv1 = conv_bn_legacy(3, stem_c, 3, stride=2, act=act)
        self._max_pool = nn.MaxPool2D(kernel_size=3, stride=2, padding=1)
        self.stem_modules = ("_conv1", "_max_pool")
        in_c, reduction = stem_c, 4
        for stage, (out_c, repeats) in enumerate(zip(stage_c, STAGE_REPEATS), start=2):
            names = []
            for i in range(repeats):
                unit = ShuffleDownUnit(in_c, out_c, 2, act) if i == 0 else ShuffleUnit(out_c, act)
                names.append(f"{stage}_{i + 1}")
                self.add_sublayer(names[-1], unit)
                in_c = out_c
            reduction *= 2
            self.add_stage(names, out_c, reduction)
        self._last_conv = conv_bn_legacy(in_c, last_c, 1, act=act)
        self.neck_modules = ("_last_conv",)
        self.init_head(last_c, class_num, classifier="_fc", dropout=dropout)


_PAPER = "ShuffleNet V2: Practical Guidelines for Efficient CNN Architecture Design (Ma et al., arXiv:1807.11164)"
for _scale in WIDTHS:
    register_model(f"ShuffleNetV2_x{str(_scale).replace('.', '_')}", ShuffleNetV2, family="ShuffleNetV2",
                   input_size=224, paper=_PAPER, year=2018, scale=_scale)
register_model("ShuffleNetV2_swish", ShuffleNetV2, family="ShuffleNetV2", input_size=224, paper=_PAPER,
               year=2018, scale=1.0, act="swish")
