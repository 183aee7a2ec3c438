"""GhostNet — Han et al., "GhostNet: More Features from Cheap Operations", CVPR 2020
(arXiv:1911.11907).

The *Ghost module* replaces a 1×1 convolution to ``c`` channels by a 1×1 convolution to
``ceil(c / 2)`` "intrinsic" channels plus a cheap 3×3 depthwise convolution of those,
concatenated: half the pointwise MACs for the same width. A *Ghost bottleneck* is
Ghost module (ReLU) → [k×k depthwise /2] → [SE] → Ghost module (linear), added to the
input, or to a depthwise + 1×1 projection of it where the shape changes. The network is
MobileNetV3-large's table with Ghost bottlenecks, ReLU everywhere and a 1280-wide
BN + ReLU 1×1 conv after the global pooling.

The layout is PaddleClas's (keys ``conv1._conv``, ``_ghostbottleneck_N.ghost_module_1.primary_conv``,
``….se_block.squeeze`` (linear layers), ``conv_last``, ``fc_0``, ``fc_1``), so its pretrained
``.pdparams`` load unchanged. Widths are ``make_divisible(c * scale, 4)``.

timm's ``ghostnet_*`` differs in three details: its SE bottleneck is ``make_divisible(hidden / 4, 4)``
wide (PaddleClas: ``hidden // 4``, e.g. 20 vs 18 channels), its gate is the h-sigmoid
``clip(x / 6 + 0.5, 0, 1)`` (PaddleClas: ``clip(x, 0, 1)``), and its 1280-wide conv after the
pooling has a bias and no BN. ``GhostNet_x*_timm`` (``se_divisor=4, se_gate="hardsigmoid",
head_norm=False``) is timm's; :func:`from_timm` maps its keys.
"""
from __future__ import annotations

import math
from typing import Any, Dict, Optional, Tuple

import paddle
import paddle.nn as nn

from .base import ClassificationModel
from .blocks import BlockPaths
from .layers import LEGACY_NAMES, ConvBNLayer, SqueezeExcite, conv_bn_legacy, make_divisible
from .registry import register_model
from .timm_keys import rename_key, timm_blocks

__all__ = ["ARCH", "GhostNet", "GhostModule", "GhostBottleneck"]

#: Paper Table 1, one Ghost bottleneck per row, after the 16-channel 3×3/2 stem.
#: k: depthwise kernel (of the stride-2 and shortcut convs), exp: hidden width, c: output
#: channels, se: squeeze-excite, s: stride. A stage ends before each stride-2 row.
ARCH: Tuple[Tuple[int, int, int, bool, int], ...] = (
    # k, exp,   c,    se, s
    (3, 16, 16, False, 1),
    (3, 48, 24, False, 2),
    (3, 72, 24, False, 1),
    (5, 72, 40, True, 2),
    (5, 120, 40, True, 1),
    (3, 240, 80, False, 2),
    (3, 200, 80, False, 1),
    (3, 184, 80, False, 1),
    (3, 184, 80, False, 1),
    (3, 480, 112, True, 1),
    (3, 672, 112, True, 1),
    (5, 672, 160, True, 2),
    (5, 960, 160, False, 1),
    (5, 960, 160, True, 1),
    (5, 960, 160, False, 1),
    (5, 960, 160, True, 1),
)
STEM_CHANNELS = 16
LAST_CHANNELS = 960      # the 1×1 conv after the blocks (scaled)
HEAD_CHANNELS = 1280     # the 1×1 conv + BN after pooling (not scaled)
DIVISOR = 4


class GhostModule(nn.Layer):
    """1×1 conv to ``ceil(out / 2)`` channels → BN [→ ReLU], then a 3×3 depthwise conv of those
    (the "ghost" features) → BN [→ ReLU]; output: both concatenated (``out`` channels)."""

    def __init__(self, in_channels: int, out_channels: int, relu: bool = True, dw_size: int = 3) -> None:
        super().__init__()
        init_c = int(math.ceil(out_channels / 2))
        act = "relu" if relu else None
        self.primary_conv = conv_bn_legacy(in_channels, init_c, 1, act=act)
        self.cheap_operation = conv_bn_legacy(init_c, init_c, dw_size, groups=init_c, act=act)

    def forward(self, x: paddle.Tensor) -> paddle.Tensor:
        x = self.primary_conv(x)
        return paddle.concat([x, self.cheap_operation(x)], axis=1)


class GhostBottleneck(nn.Layer):
    """Ghost module (ReLU) → [k×k depthwise /2, BN] → [SE] → Ghost module (linear), plus the input
    (stride 1, same width) or a k×k depthwise (stride ``stride``) + 1×1 projection of it.

    The SE is PaddleClas's: linear layers, ``hidden // 4`` bottleneck, ReLU, ``clip(x, 0, 1)`` gate;
    ``se_divisor`` rounds the bottleneck to ``make_divisible(hidden / 4, se_divisor)`` instead and
    ``se_gate`` names another gate (timm's: 4 and "hardsigmoid").
    """

    def __init__(self, in_channels: int, hidden: int, out_channels: int, kernel_size: int, stride: int,
                 use_se: bool, se_divisor: Optional[int] = None, se_gate: str = "hardclip") -> None:
        super().__init__()
        self.shortcut = stride == 1 and in_channels == out_channels
        self.ghost_module_1 = GhostModule(in_channels, hidden, relu=True)
        self.depthwise_conv = (conv_bn_legacy(hidden, hidden, kernel_size, stride, groups=hidden)
                               if stride == 2 else None)
        squeeze = hidden // 4 if se_divisor is None else make_divisible(hidden / 4, se_divisor)
        self.se_block = (SqueezeExcite(hidden, squeeze, act="relu", gate=se_gate,
                                       names=("squeeze", "excitation"), linear=True) if use_se else None)
        self.ghost_module_2 = GhostModule(hidden, out_channels, relu=False)
        if not self.shortcut:
            self.shortcut_depthwise = conv_bn_legacy(in_channels, in_channels, kernel_size, stride,
                                                     groups=in_channels)
            self.shortcut_conv = conv_bn_legacy(in_channels, out_channels, 1)

    def forward(self, x: paddle.Tensor) -> paddle.Tensor:
        y = self.ghost_module_1(x)
        if self.depthwise_conv is not None:
            y = self.depthwise_conv(y)
        if self.se_block is not None:
            y = self.se_block(y)
        y = self.ghost_module_2(y)
        return y + (x if self.shortcut else self.shortcut_conv(self.shortcut_depthwise(x)))

    def block_paths(self) -> BlockPaths:
        """The convolutions in order (each Ghost module's output is its two convs' maps concatenated)."""
        g1, g2 = self.ghost_module_1, self.ghost_module_2
        main = [m for m in (g1.primary_conv, g1.cheap_operation, self.depthwise_conv, self.se_block,
                            g2.primary_conv, g2.cheap_operation) if m is not None]
        side = [] if self.shortcut else [self.shortcut_depthwise, self.shortcut_conv]
        return BlockPaths("Ghost bottleneck", [main, side], "add")


class GhostNet(ClassificationModel):
    """GhostNet with width multiplier ``scale``.

    Args:
        scale: width multiplier; widths become ``make_divisible(c * scale, 4)`` except the
            1280-wide conv after pooling.
        class_num: number of classes.
        dropout: dropout before the classifier (PaddleClas: 0.2, inverted dropout).
        se_divisor, se_gate: the SE bottleneck's rounding and gate (see :class:`GhostBottleneck`;
            None and "hardclip": PaddleClas's, 4 and "hardsigmoid": timm's).
        head_norm: the 1×1 conv after pooling has a BN (PaddleClas's); False: a bias instead (timm's).

    Sublayers are PaddleClas's: ``conv1``, ``_ghostbottleneck_0`` … ``_15`` (top level, no
    container; the stages group them by resolution), ``conv_last`` (the neck), ``fc_0`` (1×1
    conv + BN + ReLU on the pooled features), ``fc_1``. ``forward_features`` returns the
    ``conv_last`` map (``num_features`` = 960·scale channels).
    """

    def __init__(self, scale: float = 1.0, class_num: int = 1000, dropout: float = 0.2,
                 se_divisor: Optional[int] = None, se_gate: str = "hardclip", head_norm: bool = True) -> None:
        super().__init__()
        self.scale = scale
        in_c = make_divisible(STEM_CHANNELS * scale, DIVISOR)
        self.conv1 = conv_bn_legacy(3, in_c, 3, 2, act="relu")
        self.stem_modules = ("conv1",)
        names, widths = [], []
        for i, (k, exp, c, se, s) in enumerate(ARCH):
            out_c = make_divisible(c * scale, DIVISOR)
            names.append(f"_ghostbottleneck_{i}")
            self.add_sublayer(names[-1], GhostBottleneck(in_c, make_divisible(exp * scale, DIVISOR), out_c, k, s, se,
                                                         se_divisor, se_gate))
            in_c = out_c
            widths.append(out_c)
        self.add_stages_by_stride(names, [row[4] for row in ARCH], widths, reduction=2)
        last = make_divisible(LAST_CHANNELS * scale, DIVISOR)
        self.conv_last = conv_bn_legacy(in_c, last, 1, act="relu")
        self.neck_modules = ("conv_last",)
        self.fc_0 = ConvBNLayer(last, HEAD_CHANNELS, 1, act="relu", bias=not head_norm, norm=head_norm,
                                names=LEGACY_NAMES)
        self.init_head(last, class_num, classifier="fc_1", hidden="fc_0", hidden_size=HEAD_CHANNELS,
                       dropout=dropout)


# ---------------------------------------------------------------------------- timm's weights
# timm's GhostNet (ghostnet.py) nests the 16 bottlenecks in nine stages ``blocks.0`` … ``blocks.8``
# and the last 1×1 conv in ``blocks.9``; its parts are Sequentials (``.0`` conv, ``.1`` BN …).
_TIMM_OUTER = (("conv_stem.weight", "conv1._conv.weight"), ("bn1.", "conv1._batch_norm."),
               ("conv_head.", "fc_0._conv."), ("classifier.", "fc_1."))
_TIMM_LAST = (("conv.", "conv_last._conv."), ("bn1.", "conv_last._batch_norm."))
_TIMM_INNER = tuple((f"ghost{g}.{part}.{i}.", f"ghost_module_{g}.{part}.{name}.")
                    for g in (1, 2) for part in ("primary_conv", "cheap_operation")
                    for i, name in ((0, "_conv"), (1, "_batch_norm"))) + (
    ("conv_dw.", "depthwise_conv._conv."), ("bn_dw.", "depthwise_conv._batch_norm."),
    ("se.conv_reduce.", "se_block.squeeze."), ("se.conv_expand.", "se_block.excitation."),
    ("shortcut.0.", "shortcut_depthwise._conv."), ("shortcut.1.", "shortcut_depthwise._batch_norm."),
    ("shortcut.2.", "shortcut_conv._conv."), ("shortcut.3.", "shortcut_conv._batch_norm."))


def from_timm(state_dict: Dict[str, Any]) -> Dict[str, Any]:
    """timm's ``ghostnet_*`` keys → PaddleClas's (``blocks.<stage>.<i>`` → ``_ghostbottleneck_<n>``,
    ``blocks.9.0`` → ``conv_last``, ``conv_head`` → ``fc_0``, ``classifier`` → ``fc_1``), the SE's
    1×1 convs as Linear weights ``[out, in]``; for the ``GhostNet_x*_timm`` models."""
    blocks, rest = timm_blocks(state_dict)
    ghost = [where for where, keys in blocks if any(k.startswith("ghost1.") for k in keys)]
    index = {block: n for n, block in enumerate(ghost)}
    out = {rename_key(key, _TIMM_OUTER): value for key, value in rest.items()}
    for block, keys in blocks:
        for part, value in keys.items():
            if block not in index:          # blocks.9.0: the last 1×1 conv
                out[rename_key(part, _TIMM_LAST)] = value
                continue
            if part.startswith("se.") and part.endswith(".weight"):
                value = value.reshape(list(value.shape[:2]))       # 1×1 conv [out, in, 1, 1] → Linear [out, in]
            out[f"_ghostbottleneck_{index[block]}.{rename_key(part, _TIMM_INNER)}"] = value
    return out


_PAPER = "GhostNet: More Features from Cheap Operations (Han et al., arXiv:1911.11907)"
for _scale in (0.5, 1.0, 1.3):
    register_model(f"GhostNet_x{str(_scale).replace('.', '_')}", GhostNet, family="GhostNet", input_size=224,
                   paper=_PAPER, year=2020, paddleclas=True, scale=_scale)
    register_model(f"GhostNet_x{str(_scale).replace('.', '_')}_timm", GhostNet, family="GhostNet", input_size=224,
                   paper=_PAPER, year=2020, paddleclas=False, scale=_scale, se_divisor=4, se_gate="hardsigmoid",
                   head_norm=False, timm=(f"ghostnet_{round(_scale * 100):03d}",), from_timm=from_timm)
