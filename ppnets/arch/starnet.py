"""StarNet — Ma et al., "Rewrite the Stars", CVPR 2024 (arXiv:2403.19967).

A deliberately plain network built around the *star operation*: two 1×1 convolutions of the same
map multiplied element-wise, ``ReLU6(f1(x)) * f2(x)``, which maps the features into an implicit
high-dimensional (polynomial) space at the cost of an ordinary 1×1 expansion. A *star block* is

    7×7 depthwise conv + BN → [f1, f2: 1×1 conv to ``mlp_ratio``·C] → ReLU6(f1) · f2
    → g: 1×1 conv + BN back to C → 7×7 depthwise conv → [drop path] → + input

Every convolution has a bias (also those followed by BN). The network is a 3×3/2 conv + BN + ReLU6
stem to 32 channels, four stages, each a 3×3/2 conv + BN (no activation) to ``base_dim · 2^i``
channels followed by star blocks, then BN → global pool → linear classifier. No layer scale, no
squeeze-excite, no attention: the paper's point is what the multiplication alone gives.

The layout is PaddleClas's, which is also timm's (keys ``stem.0.conv``, ``stages.I.0.conv`` (the
downsampler), ``stages.I.J.{dwconv,f1,f2,g,dwconv2}.conv/.bn``, ``norm``, ``head``), so PaddleClas's
``.pdparams`` and timm's weights (after the generic BN-buffer rename and Linear transpose) load
unchanged. timm's smaller untrained variants ``starnet_s050/s100/s150`` are registered too, in the same
layout. As in both, stochastic depth grows linearly from 0 to ``drop_path_rate`` over all blocks;
PaddleClas's ``drop_rate`` is never applied by its StarNet (``dropout`` here adds dropout before the
classifier, as timm's ``drop_rate`` does; default 0).
"""
from __future__ import annotations

from typing import Dict, Optional, Sequence, Tuple

import paddle
import paddle.nn as nn

from .base import ClassificationModel
from .blocks import BlockPaths
from .layers import ConvBNLayer, DropPath
from .registry import register_model

__all__ = ["VARIANTS", "StarNet", "StarBlock"]

#: variant → (base width, blocks per stage, mlp ratio, shipped by PaddleClas). Stage i is
#: ``base · 2^i`` channels wide. S1–S4: PaddleClas's NET_CONFIG (timm's the same); S050/S100/S150:
#: timm's "very small networks" (untrained, not in PaddleClas).
VARIANTS: Dict[str, Tuple[int, Tuple[int, ...], int, bool]] = {
    "S1": (24, (2, 2, 8, 3), 4, True),
    "S2": (32, (1, 2, 6, 2), 4, True),
    "S3": (32, (2, 2, 8, 4), 4, True),
    "S4": (32, (3, 3, 12, 5), 4, True),
    "S050": (16, (1, 1, 3, 1), 3, False),
    "S100": (20, (1, 2, 4, 1), 4, False),
    "S150": (24, (1, 2, 4, 2), 3, False),
}
STEM_CHANNELS = 32


def _conv(in_c: int, out_c: int, k: int, stride: int = 1, groups: int = 1, bn: bool = True,
          act: Optional[str] = None) -> ConvBNLayer:
    """PaddleClas's ``ConvBN``: a conv *with bias* [+ BN] (keys ``conv``, ``bn``), half padding."""
    return ConvBNLayer(in_c, out_c, k, stride, groups=groups, act=act, bias=True, norm=bn)


class StarBlock(nn.Layer):
    """7×7 dw conv + BN → ReLU6(f1(x)) · f2(x) (1×1 convs to ``mlp_ratio``·dim) → g (1×1 + BN) →
    7×7 dw conv → [drop path] → + input."""

    def __init__(self, dim: int, mlp_ratio: int = 4, drop_path: float = 0.0) -> None:
        super().__init__()
        hidden = mlp_ratio * dim
        self.dwconv = _conv(dim, dim, 7, groups=dim)
        self.f1 = _conv(dim, hidden, 1, bn=False)
        self.f2 = _conv(dim, hidden, 1, bn=False)
        self.g = _conv(hidden, dim, 1)
        self.dwconv2 = _conv(dim, dim, 7, groups=dim, bn=False)
        self.act = nn.ReLU6()
        self.drop_path = DropPath(drop_path) if drop_path > 0 else None
        self.mlp_ratio = mlp_ratio

    def forward(self, x: paddle.Tensor) -> paddle.Tensor:
        y = self.dwconv(x)
        y = self.act(self.f1(y)) * self.f2(y)      # the star operation
        y = self.dwconv2(self.g(y))
        return x + (self.drop_path(y) if self.drop_path is not None else y)

    def block_paths(self) -> BlockPaths:
        """The convolutions in order; f1 and f2 both read the dw conv's map and meet in the star product."""
        return BlockPaths("Star block", [[], [self.dwconv, self.f1, self.f2, ("act", "ReLU6(f1) · f2"),
                                              self.g, self.dwconv2]], "add", expansion=float(self.mlp_ratio))


class StarNet(ClassificationModel):
    """StarNet with stage widths ``base_dim · 2^i`` and ``depths`` star blocks per stage.

    Args:
        base_dim: width of the first stage (the stem is always 32 wide).
        depths: star blocks per stage (after each stage's 3×3/2 downsampling conv).
        mlp_ratio: hidden width of the star product, in multiples of the stage width.
        class_num: number of classes.
        dropout: dropout before the classifier (0 in PaddleClas, which has none).
        drop_path_rate: stochastic depth of the last block (linear from 0 over all blocks).

    Sublayers are PaddleClas's: ``stem`` (``Sequential(ConvBN, ReLU6)``), ``stages`` (a LayerList of
    ``Sequential(downsampler, *blocks)``, one per stage, strides 4–32), ``norm`` (BatchNorm on the
    last map: the neck, so ``forward_features`` returns the normalised map), ``head`` (Linear).
    """

    def __init__(self, base_dim: int = 32, depths: Sequence[int] = (3, 3, 12, 5), mlp_ratio: int = 4,
                 class_num: int = 1000, dropout: float = 0.0, drop_path_rate: float = 0.0) -> None:
        super().__init__()
        self.stem = nn.Sequential(_conv(3, STEM_CHANNELS, 3, 2), nn.ReLU6())
        self.stem_modules = ("stem",)
        n = sum(depths)
        # PaddleClas / timm: linspace(0, rate, n) over all blocks
        rates = [drop_path_rate * i / (n - 1) if n > 1 else 0.0 for i in range(n)]
        in_c, reduction, stages = STEM_CHANNELS, 2, []
        for i, depth in enumerate(depths):
            dim = base_dim * 2 ** i
            blocks = [StarBlock(dim, mlp_ratio, rates.pop(0)) for _ in range(depth)]
            stages.append(nn.Sequential(_conv(in_c, dim, 3, 2), *blocks))
            in_c, reduction = dim, reduction * 2
            self.add_stage(f"stages.{i}", dim, reduction)
        self.stages = nn.LayerList(stages)
        self.norm = nn.BatchNorm2D(in_c)
        self.neck_modules = ("norm",)
        self.init_head(in_c, class_num, classifier="head", dropout=dropout)


_PAPER = "Rewrite the Stars (Ma et al., arXiv:2403.19967)"
for _variant, (_base, _depths, _ratio, _in_paddleclas) in VARIANTS.items():
    register_model(f"StarNet_{_variant}", StarNet, family="StarNet", input_size=224, paper=_PAPER, year=2024,
                   paddleclas=_in_paddleclas, timm=(f"starnet_{_variant.lower()}",),
                   base_dim=_base, depths=_depths, mlp_ratio=_ratio)
