"""RepViT — Wang et al., "RepViT: Revisiting Mobile CNN From ViT Perspective", CVPR 2024
(arXiv:2307.09283).

MobileNetV3's inverted residual rebuilt with the macro design of efficient ViTs: each block
separates a *token mixer* — a 3×3 depthwise RepVGG unit (3×3 dw conv-BN + 1×1 dw conv + identity,
summed, then BN) with squeeze-excite on every other block — from a *channel mixer*, a residual
1×1 → GELU → 1×1 FFN (expansion 2). The stem is two stride-2 3×3 conv-BN (GELU between);
each later stage opens with a separate downsampling unit (a RepViT block, a stride-2 depthwise
conv, a 1×1 conv to the new width and a residual FFN). The head is global average pooling →
BatchNorm → Linear, with a twin *distillation* head (DeiT-style: trained against a teacher's
labels in the paper) whose logits are averaged with the first's.

:meth:`reparameterize` (timm's ``fuse``) folds every conv-BN into one convolution, each RepVGG
token mixer into a single 3×3 depthwise convolution, and both BN → Linear heads into one Linear.

Not in PaddleClas: the layout and ``state_dict`` keys are timm's (``repvit.py``: ``stem.conv1.c``,
``stages.<i>.downsample.pre_block``, ``stages.<i>.blocks.<j>.token_mixer.conv.c`` / ``.conv1`` /
``.bn``, ``.se.fc1``, ``.channel_mixer.conv1.c``, ``head.head.bn`` / ``head.head.l``,
``head.head_dist``), so timm's ``repvit_m0_9`` … ``repvit_m2_3`` weights load through
:mod:`ppnets.arch.timm` with the generic conversion only.
"""
from __future__ import annotations

from typing import Dict, Optional, Tuple

import numpy as np
import paddle
import paddle.nn as nn

from ..errors import ConfigError, did_you_mean
from .base import ClassificationModel, FamilyHead
from .blocks import BlockPaths
from .layers import ConvBNLayer, SqueezeExcite, make_divisible
from .registry import register_model
from .reparam import fuse_bn, fuse_conv_bn, fused_conv, identity_kernel, pad_kernel

__all__ = ["ARCHS", "RepViT", "RepViTBlock", "RepViTDownsample", "RepVggDw", "RepViTHead"]

#: variant → (width of each stage, blocks per stage after its downsampling unit). The stem
#: reaches the first width at stride 4; every later stage halves the resolution.
ARCHS: Dict[str, Tuple[Tuple[int, ...], Tuple[int, ...]]] = {
    "m0_9": ((48, 96, 192, 384), (2, 2, 14, 2)),
    "m1_0": ((56, 112, 224, 448), (2, 2, 14, 2)),
    "m1_1": ((64, 128, 256, 512), (2, 2, 12, 2)),
    "m1_5": ((64, 128, 256, 512), (4, 4, 24, 4)),
    "m2_3": ((80, 160, 320, 640), (6, 6, 34, 2)),
}
MLP_RATIO = 2
SE_RATIO = 0.25


def _f64(t: paddle.Tensor) -> np.ndarray:
    return t.numpy().astype(np.float64)


class ConvNorm(ConvBNLayer):
    """Conv (no bias, half padding) → BN, keys ``c`` / ``bn``; ``fuse()`` returns one conv with a bias."""

    def __init__(self, in_channels: int, out_channels: int, kernel_size: int = 1, stride: int = 1,
                 groups: int = 1, bn_weight_init: float = 1.0) -> None:
        super().__init__(in_channels, out_channels, kernel_size, stride, groups=groups, names=("c", "bn"))
        if bn_weight_init != 1.0:   # a BN whose scale starts elsewhere (same key; works under LazyGuard)
            self.bn = nn.BatchNorm2D(out_channels, weight_attr=nn.initializer.Constant(bn_weight_init))

    def fuse(self) -> nn.Conv2D:
        return fused_conv(self.c, *fuse_conv_bn(self.c, self.bn))


class RepVggDw(nn.Layer):
    """``BN(dw k×k conv-BN(x) + dw 1×1 conv(x) + x)``; ``fuse()`` returns one k×k depthwise conv."""

    def __init__(self, channels: int, kernel_size: int = 3) -> None:
        super().__init__()
        self.channels, self.kernel_size = channels, kernel_size
        self.conv = ConvNorm(channels, channels, kernel_size, groups=channels)
        self.conv1 = nn.Conv2D(channels, channels, 1, groups=channels)
        self.bn = nn.BatchNorm2D(channels)

    def forward(self, x: paddle.Tensor) -> paddle.Tensor:
        return self.bn(self.conv(x) + self.conv1(x) + x)

    def fuse(self) -> nn.Conv2D:
        w, b = fuse_conv_bn(self.conv.c, self.conv.bn)
        w = w + pad_kernel(self.conv1.weight, self.kernel_size) + identity_kernel(self.channels, self.channels,
                                                                                  self.kernel_size)
        return fused_conv(self.conv.c, *fuse_bn(w, self.bn, b + _f64(self.conv1.bias)))


class RepViTMlp(nn.Layer):
    """1×1 conv-BN → GELU → 1×1 conv-BN (its BN scale starts at 0: the residual starts as identity)."""

    def __init__(self, channels: int, hidden: int) -> None:
        super().__init__()
        self.conv1 = ConvNorm(channels, hidden)
        self.act = nn.GELU()
        self.conv2 = ConvNorm(hidden, channels, bn_weight_init=0.0)

    def forward(self, x: paddle.Tensor) -> paddle.Tensor:
        return self.conv2(self.act(self.conv1(x)))

    def path(self) -> list:
        return [self.conv1, ("act", "GELU"), self.conv2]


def _token_mixer_op(mixer: nn.Layer) -> nn.Layer:
    """The token mixer's 3×3 depthwise conv for the analysis tools (the whole mixer once fused)."""
    return mixer if isinstance(mixer, nn.Conv2D) else mixer.conv


def _conv(layer: nn.Layer) -> nn.Conv2D:
    """The convolution of a :class:`ConvNorm`, or the fused one that replaced it."""
    return layer if isinstance(layer, nn.Conv2D) else layer.c


class RepViTBlock(nn.Layer):
    """Token mixer (RepVGG 3×3 depthwise) → [SE] → channel mixer (1×1 FFN), the FFN residual."""

    def __init__(self, channels: int, mlp_ratio: int, kernel_size: int, use_se: bool) -> None:
        super().__init__()
        self.token_mixer = RepVggDw(channels, kernel_size)
        self.se = (SqueezeExcite(channels, make_divisible(channels * SE_RATIO, 8, round_limit=0.0),
                                 names=("fc1", "fc2")) if use_se else None)
        self.channel_mixer = RepViTMlp(channels, channels * mlp_ratio)

    def forward(self, x: paddle.Tensor) -> paddle.Tensor:
        x = self.token_mixer(x)
        if self.se is not None:
            x = self.se(x)
        return x + self.channel_mixer(x)

    def block_paths(self) -> BlockPaths:
        pre = [_token_mixer_op(self.token_mixer)] + ([self.se] if self.se is not None else [])
        conv = _conv(self.channel_mixer.conv1)
        return BlockPaths("RepViT block", [[], self.channel_mixer.path()], "add", pre=pre,
                          expansion=conv._out_channels / conv._in_channels)


class RepViTDownsample(nn.Layer):
    """A RepViT block (no SE) → 3×3 depthwise stride 2 → 1×1 conv to the new width → residual FFN."""

    def __init__(self, in_channels: int, out_channels: int, mlp_ratio: int, kernel_size: int) -> None:
        super().__init__()
        self.pre_block = RepViTBlock(in_channels, mlp_ratio, kernel_size, use_se=False)
        self.spatial_downsample = ConvNorm(in_channels, in_channels, kernel_size, 2, groups=in_channels)
        self.channel_downsample = ConvNorm(in_channels, out_channels, 1)
        self.ffn = RepViTMlp(out_channels, out_channels * mlp_ratio)

    def forward(self, x: paddle.Tensor) -> paddle.Tensor:
        x = self.channel_downsample(self.spatial_downsample(self.pre_block(x)))
        return x + self.ffn(x)

    def block_paths(self) -> BlockPaths:
        """The pre-block's mixers (its FFN residual is not drawn), the downsampling, then the FFN residual."""
        pre = [_token_mixer_op(self.pre_block.token_mixer)] + self.pre_block.channel_mixer.path()
        pre += [self.spatial_downsample, self.channel_downsample]
        return BlockPaths("RepViT downsample", [[], self.ffn.path()], "add", pre=pre)


class RepViTStage(nn.Layer):
    """[downsampling unit] → RepViT blocks, squeeze-excite on the 1st, 3rd, 5th … block."""

    def __init__(self, in_channels: int, out_channels: int, depth: int, mlp_ratio: int, kernel_size: int,
                 downsample: bool) -> None:
        super().__init__()
        self.downsample = (RepViTDownsample(in_channels, out_channels, mlp_ratio, kernel_size)
                           if downsample else None)
        self.blocks = nn.Sequential(*[RepViTBlock(out_channels, mlp_ratio, kernel_size, use_se=j % 2 == 0)
                                      for j in range(depth)])

    def forward(self, x: paddle.Tensor) -> paddle.Tensor:
        if self.downsample is not None:
            x = self.downsample(x)
        return self.blocks(x)


class RepViTStem(nn.Layer):
    """3×3 conv-BN stride 2 (half width) → GELU → 3×3 conv-BN stride 2."""

    def __init__(self, out_channels: int) -> None:
        super().__init__()
        self.conv1 = ConvNorm(3, out_channels // 2, 3, 2)
        self.act1 = nn.GELU()
        self.conv2 = ConvNorm(out_channels // 2, out_channels, 3, 2)

    def forward(self, x: paddle.Tensor) -> paddle.Tensor:
        return self.conv2(self.act1(self.conv1(x)))


class NormLinear(nn.Layer):
    """BatchNorm1D → Linear (keys ``bn`` / ``l``)."""

    def __init__(self, in_features: int, out_features: int) -> None:
        super().__init__()
        self.bn = nn.BatchNorm1D(in_features)
        self.l = nn.Linear(in_features, out_features, weight_attr=nn.initializer.TruncatedNormal(0.0, 0.02),
                           bias_attr=nn.initializer.Constant(0.0))

    def forward(self, x: paddle.Tensor) -> paddle.Tensor:
        return self.l(self.bn(x))

    def fused_weights(self) -> Tuple[np.ndarray, np.ndarray]:
        """``(W [out, in], b)`` of the one Linear equal to BN → Linear (float64)."""
        scale, shift = fuse_bn(np.ones((self.l.weight.shape[0], 1)), self.bn)   # BN as x·scale + shift
        w = _f64(self.l.weight).T                                               # timm's [out, in]
        return w * scale.reshape(1, -1), w @ shift + _f64(self.l.bias)


class RepViTHead(FamilyHead):
    """Global average pool → [dropout] → (``head`` + ``head_dist``) / 2, each BN → Linear; without
    ``distillation`` only ``head``. :meth:`reparameterize` folds both into one Linear (``head``)."""

    def __init__(self, channels: int, class_num: int, distillation: bool = True, dropout: float = 0.0) -> None:
        super().__init__()
        self.hidden_size, self.distillation = channels, distillation
        self.head_drop = nn.Dropout(dropout) if dropout > 0 else None
        self.reset_classifier(class_num)

    def reset_classifier(self, class_num: int) -> None:
        self.class_num, self.fused = class_num, False
        self.head = NormLinear(self.hidden_size, class_num) if class_num else nn.Identity()
        self.head_dist = (NormLinear(self.hidden_size, class_num) if class_num else nn.Identity()) \
            if self.distillation else None

    def get_classifier(self) -> nn.Layer:
        return self.head

    def forward(self, x: paddle.Tensor, pre_logits: bool = False) -> paddle.Tensor:
        x = x.mean(axis=[2, 3])
        if pre_logits or not self.class_num:
            return x
        if self.head_drop is not None:
            x = self.head_drop(x)
        if self.head_dist is None:
            return self.head(x)
        return (self.head(x) + self.head_dist(x)) / 2

    def reparameterize(self) -> None:
        if self.fused or not self.class_num:
            return
        w, b = self.head.fused_weights()
        if self.head_dist is not None:
            w2, b2 = self.head_dist.fused_weights()
            w, b = (w + w2) / 2, (b + b2) / 2
            delattr(self, "head_dist")
            self.head_dist = None
        linear = nn.Linear(self.hidden_size, self.class_num)
        linear.weight.set_value(w.T.astype("float32"))
        linear.bias.set_value(b.astype("float32"))
        self.head, self.fused = linear, True


class RepViT(ClassificationModel):
    """RepViT ``variant`` (:data:`ARCHS`: ``"m0_9"`` … ``"m2_3"``).

    Args:
        variant: stage widths and depths.
        class_num: number of classes (0: pooled features out).
        distillation: build the twin ``head_dist`` (timm's default; its logits are averaged with
            ``head``'s). Without it the head is one BN → Linear.
        width_mult: multiplier of every width (``make_divisible(c · m, 8)``; 1.0 = the paper's).
        dropout: dropout before the classifier(s).

    Sublayers: ``stem``, ``stages.0`` … ``stages.3`` (each ``downsample`` — none in stage 0 — and
    ``blocks``), ``head`` (:class:`RepViTHead`).
    """

    def __init__(self, variant: str = "m0_9", class_num: int = 1000, distillation: bool = True,
                 width_mult: float = 1.0, dropout: float = 0.0, kernel_size: int = 3) -> None:
        super().__init__()
        if variant not in ARCHS:
            raise ConfigError(f"RepViT: unknown variant {variant!r}{did_you_mean(str(variant), ARCHS)}; "
                              f"valid: {', '.join(ARCHS)}")
        self.variant = variant
        dims, depths = ARCHS[variant]
        dims = [make_divisible(d * width_mult, 8) if width_mult != 1.0 else d for d in dims]
        self.stem = RepViTStem(dims[0])
        self.stem_modules = ("stem",)
        stages, prev = [], dims[0]
        for i, (dim, depth) in enumerate(zip(dims, depths)):
            stages.append(RepViTStage(prev, dim, depth, MLP_RATIO, kernel_size, downsample=i > 0))
            prev = dim
        self.stages = nn.Sequential(*stages)
        for i, dim in enumerate(dims):   # the stem has stride 4, each later stage another 2
            self.add_stage(f"stages.{i}", dim, 4 * 2 ** i)
        self.head = RepViTHead(prev, class_num, distillation, dropout)
        self.init_family_head("head", prev, class_num)


_PAPER = "RepViT: Revisiting Mobile CNN From ViT Perspective (Wang et al., arXiv:2307.09283)"
for _variant in ARCHS:
    register_model(f"RepViT_{_variant}", RepViT, family="RepViT", input_size=224, paper=_PAPER, year=2024,
                   paddleclas=False, timm=(f"repvit_{_variant}",), from_timm=None, variant=_variant)
