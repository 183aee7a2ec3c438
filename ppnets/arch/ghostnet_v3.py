"""GhostNetV3 — Liu et al., "GhostNetV3: Exploring the Training Strategies for Compact Models",
2024 (arXiv:2404.11202).

GhostNet's network (:data:`ppnets.arch.ghostnet.ARCH`, MobileNetV3-large's table of Ghost
bottlenecks) trained in a **re-parameterized** form, which fuses back to GhostNet's own layers:

* each *Ghost module* (1×1 conv to half the width, then a cheap 3×3 depthwise conv of that half,
  both concatenated) trains its 1×1 conv as three parallel 1×1 conv + BN branches, and its
  depthwise conv as three 3×3 depthwise conv + BN branches plus a 1×1 depthwise conv + BN and a
  BN-only identity; each group sums into one conv (with bias) when fused;
* the stride-2 depthwise conv of a bottleneck trains as three k×k depthwise conv + BN branches
  plus a 1×1 stride-2 one, fused the same way;
* from the third bottleneck on, the first Ghost module is gated by GhostNetV2's cheap attention
  ("DFC"): 2×2 average pooling → 1×1 conv → BN → 1×5 and 5×1 depthwise convs, each + BN → sigmoid,
  upsampled (nearest) to the module's map and multiplied in. It is not re-parameterized.

The SE gate is the hard sigmoid (``relu6(x + 3) / 6``, bottleneck ``make_divisible(c / 4, 4)``),
the head global pooling → 1×1 conv (with bias) to 1280 → ReLU → dropout → classifier.

Not in PaddleClas: the layout is timm's ``ghostnetv3_*`` (``timm/models/ghostnet.py``; keys
``conv_stem``, ``blocks.<stage>.<i>.ghost1.primary_rpr_conv.0.conv``, ``….cheap_rpr_skip``,
``….dw_rpr_conv``, ``….se.conv_reduce``, ``….shortcut.0``, ``blocks.9.0.conv``, ``conv_head``,
``classifier``), so timm's weights load with the generic conversion only. Fused, the layers are
timm's deploy form too (``ghost1.primary_conv.0``, ``ghost1.cheap_operation.0``, ``conv_dw``).
Widths are ``make_divisible(c * scale, 4)``, except the 1280-wide head conv.
"""
from __future__ import annotations

import math
from typing import List, Optional, Sequence

import paddle
import paddle.nn as nn
import paddle.nn.functional as F

from .base import ClassificationModel
from .blocks import BlockPaths
from .ghostnet import ARCH, DIVISOR, HEAD_CHANNELS, STEM_CHANNELS
from .layers import ConvBNLayer, SqueezeExcite, make_act, make_divisible
from .registry import register_model
from .reparam import fuse_bn, fuse_conv_bn, fused_conv, identity_kernel, pad_kernel

__all__ = ["STAGES", "GhostNetV3", "GhostModuleV3", "GhostBottleneckV3"]

#: timm's grouping of GhostNet's 16 bottlenecks (:data:`ppnets.arch.ghostnet.ARCH`) into the
#: containers ``blocks.0`` … ``blocks.8`` (it fixes the keys); a new stage starts at each stride-2 row.
STAGES = (1, 1, 1, 1, 1, 1, 5, 1, 4)
NUM_BRANCHES = 3    # parallel conv + BN branches of every re-parameterized conv
ATTN_FROM = 2       # bottlenecks from this index on gate their first Ghost module (DFC attention)
DROPOUT = 0.2
_NAMES = ("conv", "bn1")  # timm's ConvBnAct sublayer names
# The blocks' forward has no tensor-dependent control flow, so paddle.jit.to_static runs it as it is
# (``paddle.jit.not_to_static``) instead of rewriting the source of each of its ~80 sublayers one
# instance at a time: exporting the train-time model then takes seconds instead of minutes.


def _branch(in_c: int, out_c: int, k: int, stride: int = 1, groups: int = 1) -> ConvBNLayer:
    return ConvBNLayer(in_c, out_c, k, stride, groups=groups, names=_NAMES)


def _fuse_branches(branches, k: int):
    """Sum of conv + BN branches as one k×k ``(weight, bias)`` (smaller kernels centred)."""
    weight, bias = 0.0, 0.0
    for b in branches:
        w, c = fuse_conv_bn(b.conv_layer, b.bn_layer)
        weight, bias = weight + pad_kernel(w, k), bias + c
    return weight, bias


def _nearest(x: paddle.Tensor, size: Sequence[int]) -> paddle.Tensor:
    """Nearest-neighbour resize of an NCHW map to ``size`` (PyTorch's ``nearest``: output row ``i`` reads
    input row ``floor(i · in / out)``), as index gathers: paddle.inference's oneDNN executor cannot run
    Paddle's interpolation op (Paddle 3.3: "ConvertPirAttribute2RuntimeAttribute not support")."""
    for axis, out in zip((2, 3), size):
        n = x.shape[axis]
        if n != out:
            rows = paddle.to_tensor([i * n // out for i in range(out)], dtype="int64")
            x = paddle.index_select(x, rows, axis=axis)
    return x


class GhostModuleV3(nn.Layer):
    """The re-parameterized Ghost module: ``out`` channels, half from the (branched) 1×1 conv and
    half from the (branched) cheap 3×3 depthwise conv of those, each followed by ``act``;
    ``attention``: gated by the DFC attention of the module's input."""

    def __init__(self, in_channels: int, out_channels: int, act: Optional[str] = "relu",
                 attention: bool = False) -> None:
        super().__init__()
        self.out_channels = out_channels
        init_c = int(math.ceil(out_channels / 2))
        self.primary_rpr_conv = nn.LayerList([_branch(in_channels, init_c, 1) for _ in range(NUM_BRANCHES)])
        self.primary_activation = make_act(act)
        self.cheap_rpr_skip = nn.BatchNorm2D(init_c)
        self.cheap_rpr_conv = nn.LayerList([_branch(init_c, init_c, 3, groups=init_c) for _ in range(NUM_BRANCHES)])
        self.cheap_rpr_scale = _branch(init_c, init_c, 1, groups=init_c)
        self.cheap_activation = make_act(act)
        self.short_conv = nn.Sequential(
            nn.Conv2D(in_channels, out_channels, 1, bias_attr=False), nn.BatchNorm2D(out_channels),
            nn.Conv2D(out_channels, out_channels, (1, 5), padding=(0, 2), groups=out_channels, bias_attr=False),
            nn.BatchNorm2D(out_channels),
            nn.Conv2D(out_channels, out_channels, (5, 1), padding=(2, 0), groups=out_channels, bias_attr=False),
            nn.BatchNorm2D(out_channels)) if attention else None
        self.primary_conv: Optional[nn.Layer] = None     # the fused forms
        self.cheap_operation: Optional[nn.Layer] = None

    @paddle.jit.not_to_static   # (see the note at the top)
    def forward(self, x: paddle.Tensor) -> paddle.Tensor:
        if self.primary_conv is not None:
            x1 = self.primary_conv(x)
            x2 = self.cheap_operation(x1)
        else:
            branches = list(self.primary_rpr_conv)
            x1 = branches[0](x)
            for b in branches[1:]:
                x1 = x1 + b(x)
            x1 = self.primary_activation(x1)
            x2 = self.cheap_rpr_scale(x1) + self.cheap_rpr_skip(x1)
            for b in self.cheap_rpr_conv:
                x2 = x2 + b(x1)
            x2 = self.cheap_activation(x2)
        out = paddle.concat([x1, x2], axis=1)
        if self.short_conv is None:
            return out
        if out.shape[1] != self.out_channels:
            out = out[:, :self.out_channels]
        # timm's 2×2/2 pooling; along a side of 1 (a 32-px input's last stage), where it would leave
        # nothing, that side is not pooled
        kh, kw = (1 if x.shape[2] == 1 else 2), (1 if x.shape[3] == 1 else 2)
        gate = F.sigmoid(self.short_conv(F.avg_pool2d(x, [kh, kw], [kh, kw])))
        return out * _nearest(gate, out.shape[2:])

    def reparameterize(self) -> None:
        """Fuse each branch group into one conv with bias (timm's ``primary_conv`` / ``cheap_operation``)."""
        if self.primary_conv is not None:
            return
        like = self.primary_rpr_conv[0].conv_layer
        self.primary_conv = nn.Sequential(fused_conv(like, *_fuse_branches(self.primary_rpr_conv, 1)),
                                          self.primary_activation)
        c = self.cheap_rpr_skip.weight.shape[0]
        w, b = _fuse_branches(list(self.cheap_rpr_conv) + [self.cheap_rpr_scale], 3)
        wi, bi = fuse_bn(identity_kernel(c, c, 3), self.cheap_rpr_skip)
        self.cheap_operation = nn.Sequential(fused_conv(self.cheap_rpr_conv[0].conv_layer, w + wi, b + bi),
                                             self.cheap_activation)
        for name in ("primary_rpr_conv", "cheap_rpr_skip", "cheap_rpr_conv", "cheap_rpr_scale",
                     "primary_activation", "cheap_activation"):
            delattr(self, name)

    def path(self) -> List[nn.Layer]:
        """Its two convolutions (the fused ones, or the first branch of each group) for the analysis."""
        if self.primary_conv is not None:
            return [self.primary_conv[0], self.cheap_operation[0]]
        return [self.primary_rpr_conv[0].conv_layer, self.cheap_rpr_conv[0].conv_layer]


class GhostBottleneckV3(nn.Layer):
    """Ghost module (ReLU) → [k×k depthwise /2, re-parameterized] → [SE] → Ghost module (linear),
    plus the input (stride 1, same width) or a k×k depthwise (stride ``stride``) + BN → 1×1 conv + BN
    of it (``shortcut.0`` … ``.3``)."""

    def __init__(self, in_channels: int, hidden: int, out_channels: int, kernel_size: int, stride: int,
                 use_se: bool, attention: bool) -> None:
        super().__init__()
        self.stride, self.kernel_size = stride, kernel_size
        self.ghost1 = GhostModuleV3(in_channels, hidden, "relu", attention)
        if stride > 1:
            self.dw_rpr_conv = nn.LayerList([_branch(hidden, hidden, kernel_size, stride, groups=hidden)
                                             for _ in range(NUM_BRANCHES)])
            self.dw_rpr_scale = _branch(hidden, hidden, 1, stride, groups=hidden)
        self.conv_dw: Optional[nn.Layer] = None          # the fused form
        self.se = (SqueezeExcite(hidden, make_divisible(hidden * 0.25, DIVISOR), act="relu", gate="hardsigmoid",
                                 names=("conv_reduce", "conv_expand")) if use_se else None)
        self.ghost2 = GhostModuleV3(hidden, out_channels, None)
        self.has_skip = stride == 1 and in_channels == out_channels
        self.shortcut = None if self.has_skip else nn.Sequential(
            nn.Conv2D(in_channels, in_channels, kernel_size, stride, padding=(kernel_size - 1) // 2,
                      groups=in_channels, bias_attr=False),
            nn.BatchNorm2D(in_channels), nn.Conv2D(in_channels, out_channels, 1, bias_attr=False),
            nn.BatchNorm2D(out_channels))

    @paddle.jit.not_to_static   # (see the note at the top)
    def forward(self, x: paddle.Tensor) -> paddle.Tensor:
        y = self.ghost1(x)
        if self.conv_dw is not None:
            y = self.conv_dw(y)
        elif self.stride > 1:
            z = self.dw_rpr_scale(y)
            for b in self.dw_rpr_conv:
                z = z + b(y)
            y = z
        if self.se is not None:
            y = self.se(y)
        y = self.ghost2(y)
        return y + (x if self.has_skip else self.shortcut(x))

    def reparameterize(self) -> None:
        """Fuse the depthwise branches into one k×k depthwise conv with bias (timm's ``conv_dw``);
        the Ghost modules fuse themselves."""
        if self.stride == 1 or self.conv_dw is not None:
            return
        w, b = _fuse_branches(list(self.dw_rpr_conv) + [self.dw_rpr_scale], self.kernel_size)
        self.conv_dw = fused_conv(self.dw_rpr_conv[0].conv_layer, w, b)
        del self.dw_rpr_conv, self.dw_rpr_scale

    def block_paths(self) -> BlockPaths:
        """The convolutions in order (each Ghost module's output is its two convs' maps concatenated;
        a re-parameterized group is drawn as its fused conv)."""
        dw = self.conv_dw if self.conv_dw is not None else (
            self.dw_rpr_conv[0].conv_layer if self.stride > 1 else None)
        main = [m for m in self.ghost1.path() + [("act", "ReLU"), dw, self.se] + self.ghost2.path() if m is not None]
        side = [] if self.has_skip else [self.shortcut[0], self.shortcut[2]]
        return BlockPaths("Ghost bottleneck V3", [main, side], "add")


class GhostNetV3(ClassificationModel):
    """GhostNetV3 with width multiplier ``scale``.

    Args:
        scale: width multiplier; widths become ``make_divisible(c * scale, 4)`` except the
            1280-wide conv after pooling.
        class_num: number of classes.
        dropout: dropout before the classifier (timm: 0.2, inverted dropout).

    Sublayers are timm's: ``conv_stem``, ``bn1``, ``act1`` (the stem), ``blocks.0`` … ``blocks.8``
    (bottleneck containers, grouped into stages by resolution), ``blocks.9`` (1×1 conv + BN + ReLU
    to 960·scale channels, the neck), ``conv_head`` (1×1 conv with bias after pooling, ReLU) and
    ``classifier``.
    """

    def __init__(self, scale: float = 1.0, class_num: int = 1000, dropout: float = DROPOUT) -> None:
        super().__init__()
        self.scale = scale
        in_c = make_divisible(STEM_CHANNELS * scale, DIVISOR)
        self.conv_stem = nn.Conv2D(3, in_c, 3, 2, padding=1, bias_attr=False)
        self.bn1 = nn.BatchNorm2D(in_c)
        self.act1 = nn.ReLU()
        self.stem_modules = ("conv_stem", "bn1", "act1")
        groups, names, strides, widths, row = [], [], [], [], 0
        for i, n in enumerate(STAGES):
            blocks = []
            for k, exp, c, se, s in ARCH[row:row + n]:
                out_c = make_divisible(c * scale, DIVISOR)
                blocks.append(GhostBottleneckV3(in_c, make_divisible(exp * scale, DIVISOR), out_c, k, s, se,
                                                attention=row >= ATTN_FROM))
                in_c, row = out_c, row + 1
            groups.append(nn.Sequential(*blocks))
            names.append(f"blocks.{i}")
            strides.append(ARCH[row - n][4])
            widths.append(in_c)
        last = make_divisible(ARCH[-1][1] * scale, DIVISOR)
        groups.append(nn.Sequential(ConvBNLayer(in_c, last, 1, act="relu", names=_NAMES)))
        self.blocks = nn.Sequential(*groups)
        self.add_stages_by_stride(names, strides, widths, reduction=2)
        self.neck_modules = (f"blocks.{len(STAGES)}",)
        self.conv_head = nn.Conv2D(last, HEAD_CHANNELS, 1)
        self.init_head(last, class_num, classifier="classifier", hidden="conv_head", hidden_size=HEAD_CHANNELS,
                       hidden_act="relu", dropout=dropout)


_PAPER = "GhostNetV3: Exploring the Training Strategies for Compact Models (Liu et al., arXiv:2404.11202)"
for _scale, _timm in ((0.5, "ghostnetv3_050"), (1.0, "ghostnetv3_100"), (1.3, "ghostnetv3_130"),
                      (1.6, "ghostnetv3_160")):
    register_model(f"GhostNetV3_x{str(_scale).replace('.', '_')}", GhostNetV3, family="GhostNetV3", input_size=224,
                   paper=_PAPER, year=2024, paddleclas=False, timm=(_timm,), from_timm=None, scale=_scale)
