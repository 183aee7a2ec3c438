"""FasterNet — Chen et al., "Run, Don't Walk: Chasing Higher FLOPS for Faster Neural Networks",
CVPR 2023 (arXiv:2303.03667).

The *partial convolution* (PConv) applies a 3×3 convolution to only the first ``C / n_div`` channels
(``n_div = 4``: a quarter) and passes the other channels through untouched: 1/16 of a full 3×3 conv's
MACs and a quarter of its memory access, so the network runs at high FLOPS. A
*FasterNet block* is

    PConv 3×3 on C/4 channels → 1×1 conv to 2C + BN + act → 1×1 conv back to C → [drop path] → + input

(the "T-shaped" receptive field of PConv + pointwise convs). The network is a 4×4/4 conv + BN patch
embedding, four stages of FasterNet blocks at widths ``embed_dim · 2^i``, a 2×2/2 conv + BN "patch
merging" between stages, then global pool → 1×1 conv to 1280 (no bias, no BN) + act → linear
classifier. The activation is GELU in T0 and T1, ReLU in the others.

The layout is PaddleClas's (keys ``patch_embed.{proj,norm}``, a flat ``stages`` Sequential alternating
stage and merge: ``stages.{2i}.blocks.J.{mlp.0,mlp.1,mlp.3,spatial_mixing.partial_conv3}``,
``stages.{2i-1}.{reduction,norm}``, ``avgpool_pre_head.1`` (the 1280 conv), ``head``), so PaddleClas's
``.pdparams`` load unchanged; timm's weights convert with :func:`from_timm` (timm keeps each merge in
its stage, ``stages.i.downsample``, and names the head ``conv_head`` / ``classifier``).

As in PaddleClas and timm: stochastic depth grows linearly from 0 to the variant's rate over all
blocks (T0 0, T1 0.02, T2 0.05, S 0.1, M 0.2, L 0.3), convolutions and the classifier start from a
truncated normal (std 0.02), no layer scale. PaddleClas's patch-embedding BN is built with Paddle
``momentum=0.1`` (a PyTorch value ported as is: its running statistics then follow each batch); here
it has Paddle's default 0.9 like every other BN of the model (timm's behaviour).
"""
from __future__ import annotations

import re
from typing import Any, Dict, Sequence, Tuple

import paddle
import paddle.nn as nn

from .base import ClassificationModel
from .blocks import BlockPaths
from .layers import DropPath, make_act
from .registry import register_model

__all__ = ["VARIANTS", "FasterNet", "FasterNetBlock", "PartialConv", "PatchEmbed", "PatchMerging", "from_timm"]

#: variant → (embed width, blocks per stage, stochastic depth rate, activation): PaddleClas's NET_CONFIG
#: and timm's fasternet_* (MLP ratio 2, n_div 4, head 1280 for all).
VARIANTS: Dict[str, Tuple[int, Tuple[int, ...], float, str]] = {
    "T0": (40, (1, 2, 8, 2), 0.0, "gelu"),
    "T1": (64, (1, 2, 8, 2), 0.02, "gelu"),
    "T2": (96, (1, 2, 8, 2), 0.05, "relu"),
    "S": (128, (1, 2, 13, 2), 0.1, "relu"),
    "M": (144, (3, 4, 18, 3), 0.2, "relu"),
    "L": (192, (3, 4, 18, 3), 0.3, "relu"),
}
FEATURE_DIM = 1280


def _conv(in_c: int, out_c: int, k: int, stride: int = 1, padding: int = 0) -> nn.Conv2D:
    """A conv without bias, initialised as PaddleClas's ``cls_init_weights`` does (truncated normal,
    std 0.02) — given as its initializer, so the weights are drawn once."""
    return nn.Conv2D(in_c, out_c, k, stride=stride, padding=padding, bias_attr=False,
                     weight_attr=paddle.ParamAttr(initializer=nn.initializer.TruncatedNormal(std=0.02)))


class PartialConv(nn.Layer):
    """3×3 conv (no bias) on the first ``dim // n_div`` channels; the rest pass through unchanged."""

    def __init__(self, dim: int, n_div: int = 4) -> None:
        super().__init__()
        self.dim_conv3 = dim // n_div
        self.dim_untouched = dim - self.dim_conv3
        self.partial_conv3 = _conv(self.dim_conv3, self.dim_conv3, 3, padding=1)

    def forward(self, x: paddle.Tensor) -> paddle.Tensor:
        x1, x2 = paddle.split(x, [self.dim_conv3, self.dim_untouched], axis=1)
        return paddle.concat([self.partial_conv3(x1), x2], axis=1)


class FasterNetBlock(nn.Layer):
    """PConv → 1×1 conv to ``mlp_ratio``·dim + BN + act → 1×1 conv to dim → [layer scale] →
    [drop path] → + input (PaddleClas's ``MLPBlock``)."""

    def __init__(self, dim: int, n_div: int = 4, mlp_ratio: float = 2.0, drop_path: float = 0.0,
                 layer_scale_init_value: float = 0.0, act: str = "relu") -> None:
        super().__init__()
        hidden = int(dim * mlp_ratio)
        self.mlp = nn.Sequential(_conv(dim, hidden, 1), nn.BatchNorm2D(hidden), make_act(act), _conv(hidden, dim, 1))
        self.spatial_mixing = PartialConv(dim, n_div)
        self.layer_scale = None
        if layer_scale_init_value > 0:
            self.layer_scale = self.create_parameter(
                [dim], default_initializer=nn.initializer.Constant(layer_scale_init_value))
        self.drop_path = DropPath(drop_path) if drop_path > 0 else None
        self.mlp_ratio = mlp_ratio

    def forward(self, x: paddle.Tensor) -> paddle.Tensor:
        y = self.mlp(self.spatial_mixing(x))
        if self.layer_scale is not None:
            y = y * self.layer_scale.reshape([1, -1, 1, 1])
        return x + (self.drop_path(y) if self.drop_path is not None else y)

    def block_paths(self) -> BlockPaths:
        """PConv (one op; the title gives its share of the channels) → the two 1×1 convs with the
        activation between them."""
        conv1, _, act, conv2 = self.mlp
        pconv = self.spatial_mixing
        title = f"FasterNet block (3×3 PConv on {pconv.dim_conv3}/{pconv.dim_conv3 + pconv.dim_untouched})"
        return BlockPaths(title, [[], [pconv, conv1, ("act", type(act).__name__), conv2]], "add",
                          expansion=float(self.mlp_ratio))


class FasterNetStage(nn.Layer):
    """The blocks of one stage (PaddleClas's ``BasicStage``: one ``blocks`` Sequential)."""

    def __init__(self, blocks: Sequence[nn.Layer]) -> None:
        super().__init__()
        self.blocks = nn.Sequential(*blocks)

    def forward(self, x: paddle.Tensor) -> paddle.Tensor:
        return self.blocks(x)


class PatchEmbed(nn.Layer):
    """The stem: k×k/k conv (no bias) + BN."""

    def __init__(self, in_c: int, out_c: int, patch: int = 4) -> None:
        super().__init__()
        self.proj = _conv(in_c, out_c, patch, patch)
        self.norm = nn.BatchNorm2D(out_c)

    def forward(self, x: paddle.Tensor) -> paddle.Tensor:
        return self.norm(self.proj(x))


class PatchMerging(nn.Layer):
    """Downsampling between stages: 2×2/2 conv (no bias) doubling the width + BN."""

    def __init__(self, dim: int, patch: int = 2) -> None:
        super().__init__()
        self.reduction = _conv(dim, 2 * dim, patch, patch)
        self.norm = nn.BatchNorm2D(2 * dim)

    def forward(self, x: paddle.Tensor) -> paddle.Tensor:
        return self.norm(self.reduction(x))

    def block_paths(self) -> BlockPaths:
        return BlockPaths("Patch merging", [[self.reduction]])


class FasterNet(ClassificationModel):
    """FasterNet with stage widths ``embed_dim · 2^i`` and ``depths`` blocks per stage.

    Args:
        embed_dim: width of the patch embedding and the first stage.
        depths: FasterNet blocks per stage.
        act: activation of the blocks and the head ("gelu" or "relu").
        drop_path_rate: stochastic depth of the last block (linear from 0 over all blocks).
        mlp_ratio, n_div: hidden width of the block's 1×1 convs; the PConv covers ``1 / n_div`` of the channels.
        feature_dim: width of the 1×1 conv after the pooling (1280).
        layer_scale_init_value: per-channel scale of the block's branch (0 = none, as every variant).
        class_num: number of classes.
        dropout: dropout before the classifier (0: PaddleClas and timm's models have none).

    Sublayers are PaddleClas's: ``patch_embed`` (stem, stride 4), ``stages`` (Sequential: stage 0,
    merge, stage 1, … — stage i runs ``stages.{2i-1}`` and ``stages.{2i}``), ``avgpool_pre_head``
    (``Sequential(–, 1×1 conv, act)``, applied after the shared global pool; PaddleClas's slot 0 is
    the pool itself) and ``head``. ``forward_features`` returns the last stage's map.
    """

    def __init__(self, embed_dim: int = 96, depths: Sequence[int] = (1, 2, 8, 2), act: str = "relu",
                 drop_path_rate: float = 0.1, mlp_ratio: float = 2.0, n_div: int = 4,
                 feature_dim: int = FEATURE_DIM, layer_scale_init_value: float = 0.0, class_num: int = 1000,
                 dropout: float = 0.0) -> None:
        super().__init__()
        self.patch_embed = PatchEmbed(3, embed_dim, 4)
        self.stem_modules = ("patch_embed",)
        n = sum(depths)
        rates = [drop_path_rate * i / (n - 1) if n > 1 else 0.0 for i in range(n)]
        layers = []
        for i, depth in enumerate(depths):
            dim = embed_dim * 2 ** i
            names = []
            if i > 0:
                names.append(f"stages.{len(layers)}")
                layers.append(PatchMerging(dim // 2))
            names.append(f"stages.{len(layers)}")
            layers.append(FasterNetStage([FasterNetBlock(dim, n_div, mlp_ratio, rates.pop(0), layer_scale_init_value,
                                                         act) for _ in range(depth)]))
            self.add_stage(names, dim, 4 * 2 ** i)
        self.stages = nn.Sequential(*layers)
        # slot 0 stays free so that the conv's key is PaddleClas's avgpool_pre_head.1 (the base class pools)
        self.avgpool_pre_head = nn.Sequential(nn.Identity(), _conv(dim, feature_dim, 1), make_act(act))
        self.init_head(dim, class_num, classifier="head", hidden="avgpool_pre_head", hidden_size=feature_dim,
                       dropout=dropout)
        self._init_classifier()

    def _init_classifier(self) -> None:
        """PaddleClas's ``cls_init_weights`` for the classifier: truncated normal (std 0.02), zero bias."""
        head = self.get_classifier()
        if isinstance(head, nn.Linear):
            nn.initializer.TruncatedNormal(std=0.02)(head.weight)
            nn.initializer.Constant(0.0)(head.bias)


_STAGE = re.compile(r"stages\.(\d+)\.(blocks|downsample)\.(.*)")


def from_timm(state_dict: Dict[str, Any]) -> Dict[str, Any]:
    """timm's FasterNet keys → PaddleClas's: ``stages.i.blocks`` → ``stages.{2i}.blocks``,
    ``stages.i.downsample.X`` → ``stages.{2i-1}.X``, ``conv_head`` → ``avgpool_pre_head.1``,
    ``classifier`` → ``head``."""
    out: Dict[str, Any] = {}
    for key, value in state_dict.items():
        m = _STAGE.fullmatch(key)
        if m:
            i = int(m[1])
            key = f"stages.{2 * i}.blocks.{m[3]}" if m[2] == "blocks" else f"stages.{2 * i - 1}.{m[3]}"
        elif key.startswith("conv_head."):
            key = "avgpool_pre_head.1." + key[len("conv_head."):]
        elif key.startswith("classifier."):
            key = "head." + key[len("classifier."):]
        out[key] = value
    return out


_PAPER = "Run, Don't Walk: Chasing Higher FLOPS for Faster Neural Networks (Chen et al., arXiv:2303.03667)"
for _variant, (_dim, _depths, _dpr, _act) in VARIANTS.items():
    register_model(f"FasterNet_{_variant}", FasterNet, family="FasterNet", input_size=224, paper=_PAPER, year=2023,
                   paddleclas=True, timm=(f"fasternet_{_variant.lower()}",), from_timm=from_timm,
                   embed_dim=_dim, depths=_depths, drop_path_rate=_dpr, act=_act)
