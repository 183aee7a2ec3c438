"""MobileNetV1 — Howard et al., "MobileNets: Efficient Convolutional Neural Networks for Mobile
Vision Applications", 2017 (arXiv:1704.04861).

A 3×3 stem followed by 13 depthwise-separable blocks (3×3 depthwise conv → BN → ReLU,
1×1 pointwise conv → BN → ReLU), global average pooling and one linear classifier.
The width multiplier α is ``scale``; the paper's resolution multiplier ρ is simply the
input size (every layer is convolutional up to the global pooling), e.g. 160 px is
ρ = 160/224 and costs ρ² of the convolution MACs.

Layer names follow PaddleClas (``conv``, ``blocks.N.depthwise_conv``,
``blocks.N.pointwise_conv``, ``fc``) so its pretrained ``.pdparams`` load unchanged.

PaddleClas's activation is ReLU; timm's ``mobilenetv1_100`` (and the TF-slim reference) use ReLU6,
otherwise the same network: ``MobileNetV1_timm`` is ``act="relu6"``, and :func:`from_timm` maps
timm's weights onto it.
"""
from __future__ import annotations

from typing import Any, Dict, Sequence, Tuple

import paddle
import paddle.nn as nn

from .base import ClassificationModel
from .blocks import BlockPaths
from .layers import ConvBNLayer
from .registry import register_model
from .timm_keys import timm_blocks, timm_rename, timm_unit_keys

#: The stem, paper Table 1: (kernel, output channels, stride) of a full 3×3 convolution.
STEM: Tuple[int, int, int] = (3, 32, 2)

#: The paper's Table 1, one depthwise-separable block per row: the depthwise conv's
#: (kernel, stride) and the pointwise conv's output channels. The last block has
#: stride 1 (Table 1 prints "s2" at 7×7 → 7×7, a known typo; 569M MACs need stride 1).
ARCH: Tuple[Tuple[int, int, int], ...] = (
    # k,    c, s
    (3, 64, 1),
    (3, 128, 2),
    (3, 128, 1),
    (3, 256, 2),
    (3, 256, 1),
    (3, 512, 2),
    (3, 512, 1),
    (3, 512, 1),
    (3, 512, 1),
    (3, 512, 1),
    (3, 512, 1),
    (3, 1024, 2),
    (3, 1024, 1),
)


class DepthwiseSeparable(nn.Layer):
    """k×k depthwise conv (stride ``stride``) → BN → ``act``, then 1×1 pointwise conv → BN → ``act``."""

    def __init__(self, in_channels: int, out_channels: int, kernel_size: int = 3, stride: int = 1,
                 act: str = "relu") -> None:
        super().__init__()
        self.depthwise_conv = ConvBNLayer(in_channels, in_channels, kernel_size, stride,
                                          groups=in_channels, act=act)
        self.pointwise_conv = ConvBNLayer(in_channels, out_channels, 1, act=act)

    def forward(self, x: paddle.Tensor) -> paddle.Tensor:
        return self.pointwise_conv(self.depthwise_conv(x))

    def block_paths(self) -> BlockPaths:
        return BlockPaths("DW-separable", [[self.depthwise_conv, self.pointwise_conv]])


class MobileNetV1(ClassificationModel):
    """MobileNetV1 with width multiplier ``scale`` (the paper's α).

    Args:
        scale: width multiplier; every layer's width is ``int(c * scale)`` (PaddleClas's rounding).
        class_num: number of classes.
        arch: the block table, by default :data:`ARCH` (rows of kernel, channels, stride).
        stem: the stem convolution (kernel, channels, stride), by default :data:`STEM`.
        act: the activation after every BN: ``"relu"`` (PaddleClas) or ``"relu6"`` (TF-slim, timm).
    """

    def __init__(self, scale: float = 1.0, class_num: int = 1000,
                 arch: Sequence[Sequence[int]] = ARCH, stem: Sequence[int] = STEM, act: str = "relu") -> None:
        super().__init__()
        self.scale = scale
        k, c, s = stem
        in_c = int(c * scale)
        self.conv = ConvBNLayer(3, in_c, k, s, act=act)
        blocks, widths = [], []
        for k, c, s in arch:
            blocks.append(DepthwiseSeparable(in_c, int(c * scale), k, s, act))
            in_c = int(c * scale)
            widths.append(in_c)
        self.blocks = nn.Sequential(*blocks)
        self.stem_modules = ("conv",)
        self.add_stages_by_stride([f"blocks.{i}" for i in range(len(arch))], [row[2] for row in arch], widths,
                                  reduction=stem[2])
        self.init_head(in_c, class_num, classifier="fc")


_TIMM_REST = {"conv_stem.": "conv.conv.", "bn1.": "conv.bn.", "classifier.": "fc."}


def from_timm(state_dict: Dict[str, Any]) -> Dict[str, Any]:
    """timm's ``mobilenetv1_*`` keys → PaddleClas's: ``conv_stem``/``bn1`` → ``conv``; timm's five stages
    of separable blocks (``blocks.<stage>.<i>.conv_dw``, ``bn1``, ``conv_pw``, ``bn2``) → the flat
    ``blocks.<n>.depthwise_conv`` / ``pointwise_conv``; ``classifier`` → ``fc``."""
    blocks, rest = timm_blocks(state_dict)
    out = timm_rename(rest, _TIMM_REST)
    for n, (where, block) in enumerate(blocks):
        out.update(timm_unit_keys(where, block, f"blocks.{n}.", (None, "depthwise_conv", None, "pointwise_conv")))
    return out


_PAPER = ("MobileNets: Efficient Convolutional Neural Networks for Mobile Vision Applications "
          "(Howard et al., arXiv:1704.04861)")
for _suffix, _scale in (("_x0_25", 0.25), ("_x0_5", 0.5), ("_x0_75", 0.75), ("", 1.0)):
    register_model(f"MobileNetV1{_suffix}", MobileNetV1, family="MobileNetV1", input_size=224,
                   paper=_PAPER, year=2017, paddleclas=True, scale=_scale)
register_model("MobileNetV1_timm", MobileNetV1, family="MobileNetV1", input_size=224, paper=_PAPER, year=2017,
               paddleclas=False, timm=("mobilenetv1_100",), from_timm=from_timm, scale=1.0, act="relu6")
