"""ShuffleNetV1 — Zhang et al., "ShuffleNet: An Extremely Efficient Convolutional Neural Network for
Mobile Devices", CVPR 2018 (arXiv:1707.01083). Not in PaddleClas; layer names are ppnets's own.

Unit (paper Fig. 2b/c): 1×1 group conv (BN, ReLU) → channel shuffle → 3×3 depthwise conv (BN, stride
1 or 2) → 1×1 group conv (BN); stride 1: ``relu(x + branch)``; stride 2: ``concat(avgpool3x3/2(x),
relu(branch))``. The bottleneck is 1/4 of the unit's output width; the first 1×1 conv of stage 2 is
not grouped (its input, the 24-channel stem, is too narrow).

Width multiplier ``s`` (the paper's "ShuffleNet s×"), following megvii's official
ShuffleNet-Series code, whose g=3 / g=8 tables at 0.5/1.0/1.5/2.0 this reproduces exactly:

- stage channels = Table 1's 1.0× channels × s, rounded to a multiple of 4·g (:func:`make_divisible`)
  so that the bottleneck (out/4) splits into g groups (megvii's values are all such multiples);
- stem channels = :data:`STEM` [s] (megvii: 12 / 24 / 24 / 48 at 0.5 / 1.0 / 1.5 / 2.0, i.e. not
  scaled at 1.5; 6 at 0.25 by the same rule, 24·2^⌊log2 s⌋), rounded up to a multiple of g
  (megvii's 0.5× g=8 stem is 16) so the first unit's concatenated output splits into g groups.

Differences from megvii's code, none affecting sizes beyond 1000 parameters: the shuffle sits after
the first 1×1 conv as in the paper (megvii shuffles after the depthwise conv, with the channel
axes transposed the other way), and the classifier has a bias.
"""
from __future__ import annotations

from typing import Dict, Tuple

import paddle
import paddle.nn as nn
import paddle.nn.functional as F

from ..errors import ConfigError
from .base import ClassificationModel
from .blocks import BlockPaths
from .layers import ConvBNLayer, channel_shuffle, make_divisible
from .registry import register_model

#: Paper Table 1: output channels of stages 2, 3, 4 at 1.0× for each number of groups g.
STAGE_CHANNELS: Dict[int, Tuple[int, int, int]] = {
    1: (144, 288, 576),
    2: (200, 400, 800),
    3: (240, 480, 960),
    4: (272, 544, 1088),
    8: (384, 768, 1536),
}
#: Width multiplier → stem (first 3×3/2 conv) channels before rounding to a multiple of g.
STEM: Dict[float, int] = {0.25: 6, 0.5: 12, 1.0: 24, 1.5: 24, 2.0: 48}
#: Units per stage (stages 2, 3, 4); the first unit of each has stride 2.
STAGE_REPEATS: Tuple[int, ...] = (4, 8, 4)


class ShuffleV1Unit(nn.Layer):
    """One ShuffleNet unit (see the module docstring).

    Args:
        in_channels, out_channels: unit input/output widths (with stride 2 the branch produces
            ``out_channels - in_channels`` channels, the pooled input fills the rest).
        stride: 1 (residual add) or 2 (concatenate with the 3×3 average-pooled input).
        groups: groups of the 1×1 convolutions.
        group_first: group the first 1×1 conv (False for the first unit of stage 2).
    """

    def __init__(self, in_channels: int, out_channels: int, stride: int, groups: int,
                 group_first: bool = True) -> None:
        super().__init__()
        if stride not in (1, 2):
            raise ConfigError(f"ShuffleV1Unit: stride must be 1 or 2, got {stride}")
        mid = out_channels // 4
        branch_out = out_channels - in_channels if stride == 2 else out_channels
        g1 = groups if group_first else 1
        self.stride = stride
        self.shuffle_groups = g1  # shuffling after an ungrouped conv would mix nothing
        self.conv_pw = ConvBNLayer(in_channels, mid, 1, groups=g1, act="relu")
        self.conv_dw = ConvBNLayer(mid, mid, 3, stride, groups=mid)
        self.conv_linear = ConvBNLayer(mid, branch_out, 1, groups=groups)
        self.shortcut = nn.AvgPool2D(3, 2, padding=1, exclusive=False) if stride == 2 else None

    def forward(self, x: paddle.Tensor) -> paddle.Tensor:
        y = self.conv_pw(x)
        if self.shuffle_groups > 1:
            y = channel_shuffle(y, self.shuffle_groups)
        y = self.conv_linear(self.conv_dw(y))
        if self.shortcut is None:
            return F.relu(x + y)
        return paddle.concat([self.shortcut(x), F.relu(y)], axis=1)

    def block_paths(self) -> BlockPaths:
        main = [self.conv_pw] + ([("shuffle", self.shuffle_groups)] if self.shuffle_groups > 1 else [])
        main += [self.conv_dw, self.conv_linear]
        if self.shortcut is None:
            return BlockPaths("Shuffle unit", [[], main], "add", post=[("act", "ReLU")])
        return BlockPaths("Shuffle unit /2", [[self.shortcut], main + [("act", "ReLU")]], "concat")


def shufflenet_v1_channels(groups: int, scale: float) -> Tuple[int, Tuple[int, int, int]]:
    """(stem, (stage2, stage3, stage4)) output channels for ``groups`` at width ``scale``."""
    if groups not in STAGE_CHANNELS:
        raise ConfigError(f"ShuffleNetV1: unsupported groups {groups}; valid: "
                          f"{', '.join(map(str, STAGE_CHANNELS))}")
    if scale not in STEM:
        raise ConfigError(f"ShuffleNetV1: unsupported scale {scale}; valid: {', '.join(map(str, STEM))}")
    stages = tuple(make_divisible(c * scale, 4 * groups) for c in STAGE_CHANNELS[groups])
    return make_divisible(STEM[scale], groups), stages  # type: ignore[return-value]


class ShuffleNetV1(ClassificationModel):
    """ShuffleNetV1 with ``groups`` groups at width ``scale``.

    Args:
        groups: groups of the 1×1 convolutions, one of 1, 2, 3, 4, 8 (paper Table 1).
        scale: width multiplier, one of 0.25, 0.5, 1.0, 1.5, 2.0.
        class_num: number of classes.
        dropout: dropout before the classifier (0 = none, as in the paper).
    """

    def __init__(self, groups: int = 3, scale: float = 1.0, class_num: int = 1000,
                 dropout: float = 0.0) -> None:
        super().__init__()
        stem_c, stage_c = shufflenet_v1_channels(groups, scale)
        self.groups, self.scale = groups, scale
        self.conv1 = ConvBNLayer(3, stem_c, 3, stride=2, act="relu")
        self.max_pool = nn.MaxPool2D(3, 2, padding=1)
        self.stem_modules = ("conv1", "max_pool")
        self.stages = []
        in_c, reduction = stem_c, 4
        for s, (out_c, repeats) in enumerate(zip(stage_c, STAGE_REPEATS)):
            units = []
            for i in range(repeats):
                units.append(ShuffleV1Unit(in_c, out_c, 2 if i == 0 else 1, groups,
                                           group_first=not (s == 0 and i == 0)))
                in_c = out_c
            self.stages.append(self.add_sublayer(f"stage{s + 2}", nn.Sequential(*units)))
            reduction *= 2
            self.add_stage(f"stage{s + 2}", out_c, reduction)
        self.init_head(in_c, class_num, classifier="fc", dropout=dropout)


_PAPER = ("ShuffleNet: An Extremely Efficient Convolutional Neural Network for Mobile Devices "
          "(Zhang et al., arXiv:1707.01083)")
for _g in STAGE_CHANNELS:
    for _scale in STEM:
        register_model(f"ShuffleNetV1_g{_g}_x{str(_scale).replace('.', '_')}", ShuffleNetV1,
                       family="ShuffleNetV1", input_size=224, paper=_PAPER, year=2017, paddleclas=False,
                       groups=_g, scale=_scale)
