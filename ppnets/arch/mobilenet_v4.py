"""MobileNetV4 — Qin et al., "MobileNetV4: Universal Models for the Mobile Ecosystem", ECCV 2024
(arXiv:2404.10518).

Four block types, one table per variant (:data:`ARCHS`, the paper's Tables 10–14 as
PaddleClas ships them):

* ``cn``  — a plain k×k conv + BN + act (``ConvBNLayer``);
* ``er``  — *Fused IB* / edge residual: k×k full conv expand (act) → 1×1 linear projection;
* ``uir`` — *Universal Inverted Bottleneck*: [k₀×k₀ depthwise] → 1×1 expand (act) →
  [k₁×k₁ depthwise (act), the stride] → 1×1 linear projection. With both depthwise convs it
  is the "ExtraDW" block, with only k₁ the MobileNetV2 inverted bottleneck, with only k₀
  the ConvNeXt-like block, with neither an FFN;
* ``mqa`` — *Mobile MQA*: multi-query attention (one shared key/value head) whose keys and
  values may come from a map downsampled by a stride-``kv_stride`` depthwise conv.

Residual blocks add their input where stride is 1 and the widths agree, after an optional
per-channel layer scale (the hybrid models: ``layer_scale_init_value=1e-5``) and stochastic
depth (``drop_path_rate * i / n`` for block ``i`` of ``n``). The head is global pooling →
1×1 conv 960→1280 + BN + act → classifier.

The layout is PaddleClas's (keys ``conv_stem``, ``blocks.N.{conv,bn}`` / ``.conv_exp`` /
``.dw_start`` / ``.pw_exp`` / ``.dw_mid`` / ``.pw_proj`` / ``.query_proj`` … /
``.layer_scale.gamma``, ``conv_head``, ``classifier``), so its pretrained ``.pdparams`` load
unchanged. As in PaddleClas: activations are ReLU (GELU in hybrid_large); the attention
logits are scaled by ``query_dim ** -0.5`` (not the per-head width); its ``drop_rate`` is never
applied (``dropout`` here, default 0, adds dropout before the classifier as timm does); and
stochastic depth acts on residual branches only (PaddleClas's also drops the output of the
plain ``cn`` convs).

timm's weights (``mobilenetv4_*``, :func:`from_timm`) load into the conv models unchanged; timm's
hybrids scale the attention logits by the per-head width ``kv_dim ** -0.5``, so they load into
``MobileNetV4_hybrid_{medium,large}_timm`` (``attn_scale="kv_dim"``, otherwise the same model).
"""
from __future__ import annotations

from typing import Any, Dict, List, Optional, Tuple

import paddle
import paddle.nn as nn
import paddle.nn.functional as F

from ..errors import ConfigError, did_you_mean
from .base import ClassificationModel
from .blocks import BlockPaths
from .layers import ConvBNLayer, DropPath, FastConv2D, make_divisible
from .registry import register_model
from .timm_keys import rename_key, timm_blocks

__all__ = ["ARCHS", "MobileNetV4", "EdgeResidual", "UniversalInvertedResidual", "MobileAttention"]

# Block rows, by type (channels before ``make_divisible``; s = stride of the block):
#   ("cn",  out, k, s)                        conv + BN + act
#   ("er",  out, mid, k, s)                   edge residual, k×k expand to mid
#   ("uir", out, mid, k0, k1, s)              k0 / k1: start / middle depthwise kernel, 0 = none
#   ("mqa", out, kv_dim, k, heads, kv_stride, s)
Row = Tuple
#: One tuple of stages per variant, each stage a tuple of block rows. Every stage starts with
#: its stride-2 block; the last row, the 1×1 conv to 960 channels, is the neck.
ARCHS: Dict[str, Tuple[Tuple[Row, ...], ...]] = {
    "conv_small": (
        (("cn", 32, 3, 2), ("cn", 32, 1, 1)),
        (("cn", 96, 3, 2), ("cn", 64, 1, 1)),
        (("uir", 96, 192, 5, 5, 2), ("uir", 96, 192, 0, 3, 1), ("uir", 96, 192, 0, 3, 1),
         ("uir", 96, 192, 0, 3, 1), ("uir", 96, 192, 0, 3, 1), ("uir", 96, 384, 3, 0, 1)),
        (("uir", 128, 576, 3, 3, 2), ("uir", 128, 512, 5, 5, 1), ("uir", 128, 512, 0, 5, 1),
         ("uir", 128, 384, 0, 5, 1), ("uir", 128, 512, 0, 3, 1), ("uir", 128, 512, 0, 3, 1)),
        (("cn", 960, 1, 1),),
    ),
    "conv_medium": (
        (("er", 48, 128, 3, 2),),
        (("uir", 80, 192, 3, 5, 2), ("uir", 80, 160, 3, 3, 1)),
        (("uir", 160, 480, 3, 5, 2), ("uir", 160, 640, 3, 3, 1), ("uir", 160, 640, 3, 3, 1),
         ("uir", 160, 640, 3, 5, 1), ("uir", 160, 640, 3, 3, 1), ("uir", 160, 640, 3, 0, 1),
         ("uir", 160, 320, 0, 0, 1), ("uir", 160, 640, 3, 0, 1)),
        (("uir", 256, 960, 5, 5, 2), ("uir", 256, 1024, 5, 5, 1), ("uir", 256, 1024, 3, 5, 1),
         ("uir", 256, 1024, 3, 5, 1), ("uir", 256, 1024, 0, 0, 1), ("uir", 256, 1024, 3, 0, 1),
         ("uir", 256, 512, 3, 5, 1), ("uir", 256, 1024, 5, 5, 1), ("uir", 256, 1024, 0, 0, 1),
         ("uir", 256, 1024, 0, 0, 1), ("uir", 256, 512, 5, 0, 1)),
        (("cn", 960, 1, 1),),
    ),
    "conv_large": (
        (("er", 48, 96, 3, 2),),
        (("uir", 96, 192, 3, 5, 2), ("uir", 96, 384, 3, 3, 1)),
        (("uir", 192, 384, 3, 5, 2), ("uir", 192, 768, 3, 3, 1), ("uir", 192, 768, 3, 3, 1),
         ("uir", 192, 768, 3, 3, 1), ("uir", 192, 768, 3, 5, 1), ("uir", 192, 768, 5, 3, 1),
         ("uir", 192, 768, 5, 3, 1), ("uir", 192, 768, 5, 3, 1), ("uir", 192, 768, 5, 3, 1),
         ("uir", 192, 768, 5, 3, 1), ("uir", 192, 768, 3, 0, 1)),
        (("uir", 512, 768, 5, 5, 2), ("uir", 512, 2048, 5, 5, 1), ("uir", 512, 2048, 5, 5, 1),
         ("uir", 512, 2048, 5, 5, 1), ("uir", 512, 2048, 5, 0, 1), ("uir", 512, 2048, 5, 3, 1),
         ("uir", 512, 2048, 5, 0, 1), ("uir", 512, 2048, 5, 0, 1), ("uir", 512, 2048, 5, 3, 1),
         ("uir", 512, 2048, 5, 5, 1), ("uir", 512, 2048, 5, 0, 1), ("uir", 512, 2048, 5, 0, 1),
         ("uir", 512, 2048, 5, 0, 1)),
        (("cn", 960, 1, 1),),
    ),
    "hybrid_medium": (
        (("er", 48, 128, 3, 2),),
        (("uir", 80, 192, 3, 5, 2), ("uir", 80, 160, 3, 3, 1)),
        (("uir", 160, 480, 3, 5, 2), ("uir", 160, 320, 0, 0, 1), ("uir", 160, 640, 3, 3, 1),
         ("uir", 160, 640, 3, 5, 1), ("mqa", 160, 64, 3, 4, 2, 1), ("uir", 160, 640, 3, 3, 1),
         ("mqa", 160, 64, 3, 4, 2, 1), ("uir", 160, 640, 3, 0, 1), ("mqa", 160, 64, 3, 4, 2, 1),
         ("uir", 160, 640, 3, 3, 1), ("mqa", 160, 64, 3, 4, 2, 1), ("uir", 160, 640, 3, 0, 1)),
        (("uir", 256, 960, 5, 5, 2), ("uir", 256, 1024, 5, 5, 1), ("uir", 256, 1024, 3, 5, 1),
         ("uir", 256, 1024, 3, 5, 1), ("uir", 256, 512, 0, 0, 1), ("uir", 256, 512, 3, 5, 1),
         ("uir", 256, 512, 0, 0, 1), ("uir", 256, 1024, 0, 0, 1), ("mqa", 256, 64, 3, 4, 1, 1),
         ("uir", 256, 1024, 3, 0, 1), ("mqa", 256, 64, 3, 4, 1, 1), ("uir", 256, 1024, 5, 5, 1),
         ("mqa", 256, 64, 3, 4, 1, 1), ("uir", 256, 1024, 5, 0, 1), ("mqa", 256, 64, 3, 4, 1, 1),
         ("uir", 256, 1024, 5, 0, 1)),
        (("cn", 960, 1, 1),),
    ),
    "hybrid_large": (
        (("er", 48, 96, 3, 2),),
        (("uir", 96, 192, 3, 5, 2), ("uir", 96, 384, 3, 3, 1)),
        (("uir", 192, 384, 3, 5, 2), ("uir", 192, 768, 3, 3, 1), ("uir", 192, 768, 3, 3, 1),
         ("uir", 192, 768, 3, 3, 1), ("uir", 192, 768, 3, 5, 1), ("uir", 192, 768, 5, 3, 1),
         ("uir", 192, 768, 5, 3, 1), ("mqa", 192, 48, 3, 8, 2, 1), ("uir", 192, 768, 5, 3, 1),
         ("mqa", 192, 48, 3, 8, 2, 1), ("uir", 192, 768, 5, 3, 1), ("mqa", 192, 48, 3, 8, 2, 1),
         ("uir", 192, 768, 5, 3, 1), ("mqa", 192, 48, 3, 8, 2, 1), ("uir", 192, 768, 3, 0, 1)),
        (("uir", 512, 768, 5, 5, 2), ("uir", 512, 2048, 5, 5, 1), ("uir", 512, 2048, 5, 5, 1),
         ("uir", 512, 2048, 5, 5, 1), ("uir", 512, 2048, 5, 0, 1), ("uir", 512, 2048, 5, 3, 1),
         ("uir", 512, 2048, 5, 0, 1), ("uir", 512, 2048, 5, 0, 1), ("uir", 512, 2048, 5, 3, 1),
         ("uir", 512, 2048, 5, 5, 1), ("mqa", 512, 64, 3, 8, 1, 1), ("uir", 512, 2048, 5, 0, 1),
         ("mqa", 512, 64, 3, 8, 1, 1), ("uir", 512, 2048, 5, 0, 1), ("mqa", 512, 64, 3, 8, 1, 1),
         ("uir", 512, 2048, 5, 0, 1), ("mqa", 512, 64, 3, 8, 1, 1), ("uir", 512, 2048, 5, 0, 1)),
        (("cn", 960, 1, 1),),
    ),
}
#: Per variant: stem width (3×3/2 conv), activation, layer-scale init (0 = none), native input size.
VARIANTS: Dict[str, Tuple[int, str, float, int]] = {
    "conv_small": (32, "relu", 0.0, 224),
    "conv_medium": (32, "relu", 0.0, 256),
    "conv_large": (24, "relu", 0.0, 384),
    "hybrid_medium": (32, "relu", 1e-5, 224),
    "hybrid_large": (24, "gelu", 1e-5, 384),
}
HEAD_CHANNELS = 1280
#: attention logit scale ``d ** -0.5`` by: the full query width (PaddleClas) or the per-head key width (timm)
ATTN_SCALES = ("query_dim", "kv_dim")


class LayerScale2D(nn.Layer):
    """Multiply each channel by a learned ``gamma`` (initialised to ``init_value``)."""

    def __init__(self, channels: int, init_value: float) -> None:
        super().__init__()
        self.gamma = self.create_parameter([channels], default_initializer=nn.initializer.Constant(init_value))

    def forward(self, x: paddle.Tensor) -> paddle.Tensor:
        return x * self.gamma.reshape([1, -1, 1, 1])


class _Residual(nn.Layer):
    """The shared tail of the residual blocks: [layer scale] → [drop path] → + input."""

    def _init_residual(self, in_c: int, out_c: int, stride: int, drop_path: float,
                       layer_scale: float = 0.0) -> None:
        self.shortcut = stride == 1 and in_c == out_c
        self.layer_scale = LayerScale2D(out_c, layer_scale) if layer_scale > 0 else None
        self.drop_path = DropPath(drop_path) if self.shortcut and drop_path > 0 else None

    def _paths(self, title: str, main: List[nn.Layer], expansion: Optional[float] = None) -> BlockPaths:
        main = [m for m in main if m is not None]
        if self.shortcut:
            return BlockPaths(title, [[], main], "add", expansion=expansion)
        return BlockPaths(title, [main], expansion=expansion)

    def _residual(self, x: paddle.Tensor, y: paddle.Tensor) -> paddle.Tensor:
        if self.layer_scale is not None:
            y = self.layer_scale(y)
        if not self.shortcut:
            return y
        return x + (self.drop_path(y) if self.drop_path is not None else y)


class EdgeResidual(_Residual):
    """Fused inverted bottleneck: k×k conv to ``mid`` (stride, act) → 1×1 linear projection."""

    def __init__(self, in_c: int, mid_c: int, out_c: int, kernel_size: int, stride: int, act: str,
                 drop_path: float = 0.0) -> None:
        super().__init__()
        self.conv_exp = ConvBNLayer(in_c, mid_c, kernel_size, stride, act=act)
        self.conv_pwl = ConvBNLayer(mid_c, out_c, 1)
        self._init_residual(in_c, out_c, stride, drop_path)

    def forward(self, x: paddle.Tensor) -> paddle.Tensor:
        return self._residual(x, self.conv_pwl(self.conv_exp(x)))

    def block_paths(self) -> BlockPaths:
        conv = self.conv_exp.conv_layer
        return self._paths("Fused IB", [self.conv_exp, self.conv_pwl], conv._out_channels / conv._in_channels)


class UniversalInvertedResidual(_Residual):
    """[k0×k0 depthwise] → 1×1 expand (act) → [k1×k1 depthwise, stride (act)] → 1×1 linear projection.

    ``start_kernel`` / ``mid_kernel`` 0 leaves that depthwise conv out.
    """

    def __init__(self, in_c: int, mid_c: int, out_c: int, start_kernel: int, mid_kernel: int, stride: int,
                 act: str, drop_path: float = 0.0, layer_scale: float = 0.0) -> None:
        super().__init__()
        self.dw_start = ConvBNLayer(in_c, in_c, start_kernel, groups=in_c) if start_kernel else None
        self.pw_exp = ConvBNLayer(in_c, mid_c, 1, act=act)
        self.dw_mid = ConvBNLayer(mid_c, mid_c, mid_kernel, stride, groups=mid_c, act=act) if mid_kernel else None
        self.pw_proj = ConvBNLayer(mid_c, out_c, 1)
        self._init_residual(in_c, out_c, stride, drop_path, layer_scale)

    def forward(self, x: paddle.Tensor) -> paddle.Tensor:
        y = self.dw_start(x) if self.dw_start is not None else x
        y = self.pw_exp(y)
        if self.dw_mid is not None:
            y = self.dw_mid(y)
        return self._residual(x, self.pw_proj(y))

    def block_paths(self) -> BlockPaths:
        """Titled by the paper's names of the four UIB instances."""
        title = {(True, True): "ExtraDW", (False, True): "IB", (True, False): "ConvNext-like",
                 (False, False): "FFN"}[(self.dw_start is not None, self.dw_mid is not None)]
        conv = self.pw_exp.conv_layer
        return self._paths(f"UIB {title}", [self.dw_start, self.pw_exp, self.dw_mid, self.pw_proj],
                           conv._out_channels / conv._in_channels)


class MobileAttention(_Residual):
    """Mobile MQA: BN → ``heads`` query heads (1×1 conv) attending to one shared key and value
    head (1×1 convs, after a stride-``kv_stride`` k×k depthwise conv + BN when ``kv_stride > 1``)
    → 1×1 output projection → [layer scale] → + input."""

    def __init__(self, in_c: int, out_c: int, kernel_size: int, heads: int, query_dim: int, kv_dim: int,
                 kv_stride: int, stride: int = 1, drop_path: float = 0.0, layer_scale: float = 0.0,
                 attn_scale: str = "query_dim") -> None:
        super().__init__()
        if query_dim != heads * kv_dim:
            raise ConfigError(f"MobileAttention: query_dim {query_dim} must be heads × kv_dim = {heads * kv_dim}")
        if attn_scale not in ATTN_SCALES:
            raise ConfigError(f"MobileAttention: attn_scale '{attn_scale}' is not one of {', '.join(ATTN_SCALES)}")
        self.heads, self.kv_dim, self.query_dim = heads, kv_dim, query_dim
        # PaddleClas scales the logits by the full query width, timm by the per-head key width
        self.scale = (query_dim if attn_scale == "query_dim" else kv_dim) ** -0.5
        self.norm = nn.BatchNorm2D(in_c)
        self.query_proj = FastConv2D(in_c, query_dim, 1, bias_attr=False)
        self.key_down_proj = self.value_down_proj = None
        if kv_stride > 1:
            self.key_down_proj = ConvBNLayer(in_c, in_c, kernel_size, kv_stride, groups=in_c)
            self.value_down_proj = ConvBNLayer(in_c, in_c, kernel_size, kv_stride, groups=in_c)
        self.key_proj = FastConv2D(in_c, kv_dim, 1, bias_attr=False)
        self.value_proj = FastConv2D(in_c, kv_dim, 1, bias_attr=False)
        self.proj = FastConv2D(query_dim, out_c, 1, bias_attr=False)
        self._init_residual(in_c, out_c, stride, drop_path, layer_scale)

    def forward(self, x: paddle.Tensor) -> paddle.Tensor:
        y = self.norm(x)
        h, w = y.shape[2:]
        q = self.query_proj(y).reshape([0, self.heads, self.kv_dim, h * w]).transpose([0, 1, 3, 2])
        k_in = self.key_down_proj(y) if self.key_down_proj is not None else y
        v_in = self.value_down_proj(y) if self.value_down_proj is not None else y
        k = self.key_proj(k_in).flatten(2).unsqueeze(1)                       # [B, 1, kv, L]
        v = self.value_proj(v_in).flatten(2).unsqueeze(1).transpose([0, 1, 3, 2])  # [B, 1, L, kv]
        attn = F.softmax(paddle.matmul(q * self.scale, k), axis=-1)          # [B, heads, HW, L]
        out = paddle.matmul(attn, v).transpose([0, 1, 3, 2]).reshape([0, self.query_dim, h, w])
        return self._residual(x, self.proj(out))

    def block_paths(self) -> BlockPaths:
        """The projections in order; the attention itself (softmax(q kᵀ) v) is named in the title."""
        down = f", kv /{self.key_down_proj.conv_layer._stride[0]}" if self.key_down_proj is not None else ""
        return self._paths(f"Mobile MQA {self.heads} heads{down}",
                           [self.query_proj, self.key_down_proj, self.key_proj, self.value_down_proj,
                            self.value_proj, self.proj])


class MobileNetV4(ClassificationModel):
    """MobileNetV4 ``variant`` (a key of :data:`ARCHS`).

    Args:
        variant: conv_small, conv_medium, conv_large, hybrid_medium or hybrid_large.
        scale: width multiplier (``make_divisible(c * scale, 8)``; the zoo's models are 1.0).
        class_num: number of classes.
        dropout: dropout before the classifier (0: PaddleClas applies none).
        drop_path_rate: stochastic depth of the last block (block ``i`` of ``n``: ``rate * i / n``).
        layer_scale_init_value: initial layer scale of the uir/mqa blocks (None: the variant's,
            1e-5 for the hybrids, 0 = no layer scale for the conv models).
        act: activation (None: the variant's, ReLU or GELU).
        attn_scale: the Mobile MQA logit scale ``d ** -0.5``: ``"query_dim"`` (PaddleClas's, the
            full query width ``heads × kv_dim``) or ``"kv_dim"`` (timm's, the per-head key width;
            the ``*_timm`` hybrids, which load timm's weights).

    The stages are those of :data:`ARCHS` (PaddleClas's ``MODEL_STAGES_PATTERN``), the last row,
    the 1×1 conv to 960 channels, is the neck: ``forward_features`` returns its map
    (``num_features`` = 960); the head is pool → ``conv_head`` (1280, BN, act) → [dropout] →
    ``classifier``.
    """

    def __init__(self, variant: str = "conv_small", scale: float = 1.0, class_num: int = 1000,
                 dropout: float = 0.0, drop_path_rate: float = 0.0,
                 layer_scale_init_value: Optional[float] = None, act: Optional[str] = None,
                 attn_scale: str = "query_dim") -> None:
        super().__init__()
        if variant not in ARCHS:
            raise ConfigError(f"MobileNetV4: unknown variant '{variant}'{did_you_mean(variant, ARCHS)}; "
                              f"valid: {', '.join(ARCHS)}")
        stem, default_act, default_ls, _ = VARIANTS[variant]
        act = act or default_act
        ls = default_ls if layer_scale_init_value is None else layer_scale_init_value
        self.variant, self.scale = variant, scale
        in_c = make_divisible(stem * scale)
        self.conv_stem = ConvBNLayer(3, in_c, 3, 2, act=act)
        self.stem_modules = ("conv_stem",)
        n = sum(len(stage) for stage in ARCHS[variant])
        blocks: List[nn.Layer] = []
        reduction = 2
        stages = ARCHS[variant]
        for i, stage in enumerate(stages):
            names = []
            for row in stage:
                block, in_c = self._block(row, in_c, act, drop_path_rate * len(blocks) / n, ls, scale,
                                          attn_scale)
                names.append(f"blocks.{len(blocks)}")
                blocks.append(block)
                reduction *= row[-1]
            if i < len(stages) - 1:
                self.add_stage(names, in_c, reduction)
        self.blocks = nn.Sequential(*blocks)
        self.neck_modules = tuple(names)     # the last row, the 1×1 conv to 960 channels
        self.conv_head = ConvBNLayer(in_c, HEAD_CHANNELS, 1, act=act)
        self.init_head(in_c, class_num, classifier="classifier", hidden="conv_head", hidden_size=HEAD_CHANNELS,
                       dropout=dropout)

    @staticmethod
    def _block(row: Row, in_c: int, act: str, drop_path: float, ls: float, scale: float,
               attn_scale: str) -> Tuple[nn.Layer, int]:
        kind, out, *args = row
        out = make_divisible(out * scale)
        if kind == "cn":
            k, s = args
            return ConvBNLayer(in_c, out, k, s, act=act), out
        if kind == "er":
            mid, k, s = args
            return EdgeResidual(in_c, make_divisible(mid * scale), out, k, s, act, drop_path), out
        if kind == "uir":
            mid, k0, k1, s = args
            return UniversalInvertedResidual(in_c, make_divisible(mid * scale), out, k0, k1, s, act,
                                             drop_path, ls), out
        dim, k, heads, kv_stride, s = args
        return MobileAttention(in_c, out, k, heads, make_divisible(heads * dim * scale),
                               make_divisible(dim * scale), kv_stride, s, drop_path, ls, attn_scale), out


# ---------------------------------------------------------------------------- timm's weights
# timm's MobileNetV4 (mobilenetv3.py, _efficientnet_blocks.py) nests its blocks per stage
# (``blocks.<stage>.<i>``) where PaddleClas numbers them through (``blocks.<n>``), and names the
# parts of an edge residual and of an attention block differently; the tensors are the same.
_TIMM_OUTER = (("conv_stem.weight", "conv_stem.conv.weight"), ("bn1.", "conv_stem.bn."),
               ("conv_head.weight", "conv_head.conv.weight"), ("norm_head.", "conv_head.bn."))
_TIMM_EDGE = (("conv_exp.weight", "conv_exp.conv.weight"), ("bn1.", "conv_exp.bn."),
              ("conv_pwl.weight", "conv_pwl.conv.weight"), ("bn2.", "conv_pwl.bn."))
_TIMM_INNER = (("bn1.", "bn."),                                        # cn: conv, bn1
               ("attn.query.proj.", "query_proj."), ("attn.output.proj.", "proj."),
               ("attn.key.down_conv.", "key_down_proj.conv."), ("attn.key.norm.", "key_down_proj.bn."),
               ("attn.key.proj.", "key_proj."),
               ("attn.value.down_conv.", "value_down_proj.conv."), ("attn.value.norm.", "value_down_proj.bn."),
               ("attn.value.proj.", "value_proj."))


def from_timm(state_dict: Dict[str, Any]) -> Dict[str, Any]:
    """timm's MobileNetV4 keys → PaddleClas's: ``blocks.<stage>.<i>`` numbered through, edge
    residual ``conv_exp``/``bn1``/``conv_pwl``/``bn2`` → ``conv_exp``/``conv_pwl`` ConvBN pairs, the
    attention's ``attn.{query,key,value,output}`` → ``query_proj``, ``key_down_proj`` … ``proj``."""
    blocks, rest = timm_blocks(state_dict)
    out = {rename_key(key, _TIMM_OUTER): value for key, value in rest.items()}
    for n, (_, keys) in enumerate(blocks):
        table = _TIMM_EDGE if "conv_exp.weight" in keys else _TIMM_INNER
        out.update((f"blocks.{n}.{rename_key(part, table)}", value) for part, value in keys.items())
    return out


_PAPER = "MobileNetV4: Universal Models for the Mobile Ecosystem (Qin et al., arXiv:2404.10518)"
for _variant, (_, _, _, _size) in VARIANTS.items():
    # the conv models are timm's exactly; the hybrids differ in the attention scale only, so timm's
    # hybrid weights must not convert onto PaddleClas's (no from_timm there: the keys do not fit)
    _hybrid = _variant.startswith("hybrid")
    register_model(f"MobileNetV4_{_variant}", MobileNetV4, family="MobileNetV4", input_size=_size,
                   paper=_PAPER, year=2024, paddleclas=True, variant=_variant,
                   timm=() if _hybrid else (f"mobilenetv4_{_variant}",), from_timm=None if _hybrid else from_timm)
    if _hybrid:
        register_model(f"MobileNetV4_{_variant}_timm", MobileNetV4, family="MobileNetV4", input_size=_size,
                       paper=_PAPER, year=2024, paddleclas=False, variant=_variant, attn_scale="kv_dim",
                       timm=(f"mobilenetv4_{_variant}",), from_timm=from_timm)
