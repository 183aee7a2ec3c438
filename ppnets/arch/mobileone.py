"""MobileOne — Vasu et al., "MobileOne: An Improved One millisecond Mobile Backbone", CVPR 2023
(arXiv:2206.04040).

A plain stack of depthwise-separable pairs that is *over-parameterized while training* and a
chain of single convolutions at inference. Each MobileOne block (the 3×3 depthwise half of a pair
and its 1×1 pointwise half alike) trains as the sum of parallel branches, all followed by
BatchNorm: ``k`` identical k×k convolutions (``num_conv_branches``: 4 in S0, 1 in S1–S4), a 1×1
"scale" convolution (in the 3×3 half) and, where the shape allows, a BN-only identity; then
[squeeze-excite] and ReLU. :meth:`MobileOneBlock.reparameterize` folds the branches into one
k×k convolution with a bias (``reparam_conv``), so the deployed network has no branches and no
BatchNorm — the same function, a fraction of the layers.

Widths are ``64, 128, 256, 512`` times each variant's per-stage factor, depths ``2, 8, 10, 1``
pairs; S4 adds squeeze-excite (reduction 16) to the last 5 pairs of stage 3 and the last pair of
stage 4. The head is global average pooling → linear classifier.

Not in PaddleClas: the layout and ``state_dict`` keys are timm's (``byobnet.py``: ``stem``,
``stages.<i>.<j>.conv_kxk.<b>.conv`` / ``.bn``, ``.conv_scale``, ``.identity``, ``.attn.fc1``,
``head.fc``; fused: ``.reparam_conv``), so timm's ``mobileone_s0`` … ``_s4`` weights load through
:mod:`ppnets.arch.timm` with the generic conversion only.
"""
from __future__ import annotations

import math
from typing import Dict, List, Optional, Tuple

import numpy as np
import paddle
import paddle.nn as nn

from ..errors import ConfigError, did_you_mean
from .base import ClassificationModel, FamilyHead
from .blocks import BlockPaths
from .layers import ConvBNLayer, DropPath, SqueezeExcite, make_divisible
from .registry import register_model
from .reparam import fuse_bn, fuse_conv_bn, fused_conv, identity_kernel, pad_kernel

__all__ = ["VARIANTS", "DEPTHS", "MobileOne", "MobileOneBlock", "ClassifierHead"]

#: Pairs (3×3 depthwise block + 1×1 pointwise block) per stage; the first depthwise block of
#: each stage has stride 2.
DEPTHS: Tuple[int, ...] = (2, 8, 10, 1)
#: Stage widths before the variant's factors.
BASE_WIDTHS: Tuple[int, ...] = (64, 128, 256, 512)
#: variant → (width factor per stage, conv branches per block, SE pairs at the end of each stage)
VARIANTS: Dict[str, Tuple[Tuple[float, ...], int, Tuple[int, ...]]] = {
    "s0": ((0.75, 1.0, 1.0, 2.0), 4, (0, 0, 0, 0)),
    "s1": ((1.5, 1.5, 2.0, 2.5), 1, (0, 0, 0, 0)),
    "s2": ((1.5, 2.0, 2.5, 4.0), 1, (0, 0, 0, 0)),
    "s3": ((2.0, 2.5, 3.0, 4.0), 1, (0, 0, 0, 0)),
    "s4": ((3.0, 3.5, 3.5, 4.0), 1, (0, 0, 5, 1)),
}
SE_RATIO = 1 / 16


class MobileOneBlock(nn.Layer):
    """Train time: ``num_conv_branches`` × (k×k conv + BN) + [1×1 conv + BN] + [BN identity], summed,
    → [SE] → ReLU. After :meth:`reparameterize`: one k×k conv with a bias → [SE] → ReLU.

    The 1×1 "scale" branch exists when ``kernel_size > 1``, the identity when the block keeps the
    shape (stride 1, same width). ``groups`` is ``in_channels`` for the depthwise half.
    """

    def __init__(self, in_channels: int, out_channels: int, kernel_size: int = 3, stride: int = 1,
                 groups: int = 1, num_conv_branches: int = 1, se: bool = False, drop_path: float = 0.0) -> None:
        super().__init__()
        self.groups, self.kernel_size, self.stride = groups, kernel_size, stride
        use_identity = in_channels == out_channels and stride == 1
        # attribute order = timm's state_dict order
        self.identity = nn.BatchNorm2D(out_channels) if use_identity else None
        self.conv_kxk = nn.LayerList([ConvBNLayer(in_channels, out_channels, kernel_size, stride, groups=groups)
                                      for _ in range(num_conv_branches)])
        self.conv_scale = (ConvBNLayer(in_channels, out_channels, 1, stride, groups=groups)
                           if kernel_size > 1 else None)
        self.drop_path = DropPath(drop_path) if drop_path > 0 and use_identity else None
        self.attn = (SqueezeExcite(out_channels, make_divisible(out_channels * SE_RATIO, 8, round_limit=0.0),
                                   names=("fc1", "fc2")) if se else None)
        self.act = nn.ReLU()
        self.reparam_conv: Optional[nn.Conv2D] = None

    def forward(self, x: paddle.Tensor) -> paddle.Tensor:
        if self.reparam_conv is not None:
            out = self.reparam_conv(x)
        else:
            out = self.conv_scale(x) if self.conv_scale is not None else None
            for branch in self.conv_kxk:
                out = branch(x) if out is None else out + branch(x)
            if self.drop_path is not None:
                out = self.drop_path(out)
            if self.identity is not None:
                out = out + self.identity(x)
        if self.attn is not None:
            out = self.attn(out)
        return self.act(out)

    def reparameterize(self) -> None:
        """Fold every branch into ``reparam_conv`` (k×k, with bias) and drop the branches."""
        if self.reparam_conv is not None:
            return
        like = self.conv_kxk[0].conv_layer
        weight, bias = 0.0, 0.0
        for branch in self.conv_kxk:
            w, b = fuse_conv_bn(branch.conv_layer, branch.bn_layer)
            weight, bias = weight + w, bias + b
        if self.conv_scale is not None:
            w, b = fuse_conv_bn(self.conv_scale.conv_layer, self.conv_scale.bn_layer)
            weight, bias = weight + pad_kernel(w, self.kernel_size), bias + b
        if self.identity is not None:
            w, b = fuse_bn(identity_kernel(like._out_channels, self.groups, self.kernel_size), self.identity)
            weight, bias = weight + w, bias + b
        self.reparam_conv = fused_conv(like, weight, bias)
        for name in ("identity", "conv_kxk", "conv_scale", "drop_path"):
            if getattr(self, name) is not None:
                delattr(self, name)
            setattr(self, name, None)

    def block_paths(self) -> BlockPaths:
        """The branches summed (the BN identity as a skip path), then [SE] and ReLU; one conv when fused."""
        conv = self.reparam_conv if self.reparam_conv is not None else self.conv_kxk[0].conv_layer
        kind = "dw" if self.groups > 1 and self.groups == conv._in_channels else "pw" if self.kernel_size == 1 else ""
        title = f"MobileOne {kind} {self.kernel_size}×{self.kernel_size}".replace("  ", " ")
        post: List = ([self.attn] if self.attn is not None else []) + [("act", "ReLU")]
        if self.reparam_conv is not None:
            return BlockPaths(f"{title} (fused)", [[self.reparam_conv]], None, post=post)
        branches: List[List] = [[b] for b in self.conv_kxk]
        if self.conv_scale is not None:
            branches.append([self.conv_scale])
        if self.identity is not None:
            branches.append([])
        return BlockPaths(title, branches, "add" if len(branches) > 1 else None, post=post)


class ClassifierHead(FamilyHead):
    """timm's classifier head: global average pool → [dropout] → ``fc`` (key ``head.fc``)."""

    def __init__(self, channels: int, class_num: int, dropout: float = 0.0) -> None:
        super().__init__()
        self.hidden_size = channels
        self.global_pool = nn.AdaptiveAvgPool2D(1)
        self.drop = nn.Dropout(dropout) if dropout > 0 else None
        self.reset_classifier(class_num)

    def reset_classifier(self, class_num: int) -> None:
        self.class_num = class_num
        if not class_num:
            self.fc = nn.Identity()
            return
        self.fc = nn.Linear(self.hidden_size, class_num,
                            weight_attr=nn.initializer.Normal(0.0, 0.01), bias_attr=nn.initializer.Constant(0.0))

    def get_classifier(self) -> nn.Layer:
        return self.fc

    def forward(self, x: paddle.Tensor, pre_logits: bool = False) -> paddle.Tensor:
        x = paddle.flatten(self.global_pool(x), 1)
        if pre_logits or not self.class_num:
            return x
        if self.drop is not None:
            x = self.drop(x)
        return self.fc(x)


def stage_widths(variant: str, width_mult: float = 1.0) -> Tuple[int, List[int]]:
    """(stem width, [stage widths]) of ``variant`` at ``width_mult`` (timm: ``make_divisible(c, 8)``)."""
    factors = VARIANTS[variant][0]
    stem = make_divisible(min(64, BASE_WIDTHS[0] * factors[0]) * width_mult, 8)
    return stem, [make_divisible(c * f * width_mult, 8) for c, f in zip(BASE_WIDTHS, factors)]


class MobileOne(ClassificationModel):
    """MobileOne ``variant`` (``"s0"`` … ``"s4"``, :data:`VARIANTS`).

    Args:
        variant: the width factors, branch count and SE placement.
        class_num: number of classes (0: pooled features out).
        width_mult: extra multiplier of every width (1.0 = the paper's; smaller for tiny datasets).
        depth_mult: multiplier of the pairs per stage, ``ceil(d · depth_mult)`` (1.0 = the paper's). The
            network has no residual paths but the BN identities, and with all 21 pairs it trains slowly
            on a small dataset: the gradient grows ~50× from the head to the stem at initialisation.
        num_conv_branches: override the variant's k×k branch count.
        drop_path_rate: stochastic depth on the conv branches of identity blocks, rising linearly
            from 0 to this rate over the blocks (timm's rule; the paper uses none).
        dropout: dropout before the classifier.

    Sublayers: ``stem`` (a stride-2 3×3 MobileOne block), ``stages.0`` … ``stages.3``
    (``nn.Sequential`` of MobileOne blocks, depthwise and pointwise alternating), ``head``
    (:class:`ClassifierHead`). ``reparameterize()`` fuses every block.
    """

    def __init__(self, variant: str = "s0", class_num: int = 1000, width_mult: float = 1.0, depth_mult: float = 1.0,
                 num_conv_branches: Optional[int] = None, drop_path_rate: float = 0.0, dropout: float = 0.0) -> None:
        super().__init__()
        if variant not in VARIANTS:
            raise ConfigError(f"MobileOne: unknown variant {variant!r}{did_you_mean(str(variant), VARIANTS)}; "
                              f"valid: {', '.join(VARIANTS)}")
        self.variant = variant
        _, branches, se_pairs = VARIANTS[variant]
        branches = branches if num_conv_branches is None else num_conv_branches
        stem_c, widths = stage_widths(variant, width_mult)
        self.stem = MobileOneBlock(3, stem_c, 3, 2)
        self.stem_modules = ("stem",)
        depths = [max(1, math.ceil(d * depth_mult)) for d in DEPTHS]
        rates = np.linspace(0.0, drop_path_rate, 2 * sum(depths)).tolist()
        stages, prev, i = [], stem_c, 0
        for depth, out_c, se in zip(depths, widths, se_pairs):
            blocks = []
            for j in range(depth):
                with_se = j >= depth - se
                stride = 2 if j == 0 else 1
                blocks.append(MobileOneBlock(prev, prev, 3, stride, groups=prev, num_conv_branches=branches,
                                             se=with_se, drop_path=rates[i]))
                blocks.append(MobileOneBlock(prev, out_c, 1, 1, num_conv_branches=branches, se=with_se,
                                             drop_path=rates[i + 1]))
                prev, i = out_c, i + 2
            stages.append(nn.Sequential(*blocks))
        self.stages = nn.Sequential(*stages)
        for s, out_c in enumerate(widths):   # the stem has stride 2, each stage another 2
            self.add_stage(f"stages.{s}", out_c, 2 ** (s + 2))
        self.head = ClassifierHead(prev, class_num, dropout)
        self.init_family_head("head", prev, class_num)


_PAPER = "MobileOne: An Improved One millisecond Mobile Backbone (Vasu et al., arXiv:2206.04040)"
for _variant in VARIANTS:
    register_model(f"MobileOne_{_variant}", MobileOne, family="MobileOne", input_size=224, paper=_PAPER, year=2023,
                   paddleclas=False, timm=(f"mobileone_{_variant}",), from_timm=None, variant=_variant)
