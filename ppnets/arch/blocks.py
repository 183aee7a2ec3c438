"""Blocks shared between families, and :class:`BlockPaths`, how a block tells the analysis tools
what it computes.

:class:`InvertedResidualUnit` is the inverted residual of MobileNetV2, MobileNetV3 (``ResidualUnit``)
and EfficientNet (``MBConvBlock``): [1×1 expand] → k×k depthwise → [squeeze-excite] → 1×1 linear
projection, + identity (through stochastic depth) when the shapes allow. The attribute names of
its four parts, and of the conv/BN inside them, are arguments, so each family keeps PaddleClas's
``state_dict`` keys.

A block class may define ``block_paths(self) -> BlockPaths``: its paths as lists of its own
sublayers (convolutions, :class:`~ppnets.arch.layers.ConvBNLayer`, squeeze-excite, pooling) and
markers (``("shuffle", groups)``, ``("act", "ReLU")``). The analysis tools (summary roll-up,
diagrams) read only that; a block without it is drawn as the chain of its convolutions.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Optional, Sequence, Tuple, Union

import paddle
import paddle.nn as nn

from .layers import LEGACY_NAMES, ConvBNLayer, DropPath

__all__ = ["BlockPaths", "PathItem", "InvertedResidualUnit", "LEGACY_UNIT_NAMES"]

#: one step of a path: a sublayer, or a marker ``("shuffle", groups)`` / ``("act", name)``
PathItem = Union[nn.Layer, Tuple[str, Union[int, str]]]


@dataclass(frozen=True)
class BlockPaths:
    """What a block computes: ``pre`` → parallel ``branches`` merged by ``merge`` → ``post``.

    An empty branch is the identity (a skip path). ``split``: the input channels are split between
    the branches (ShuffleNetV2) instead of fed to each. ``expansion``: hidden / input width of an
    inverted residual. ``title`` names the block in tables and diagrams.
    """

    title: str
    branches: Sequence[Sequence[PathItem]]
    merge: Optional[str] = None          # None | "add" | "concat"
    pre: Sequence[PathItem] = ()
    post: Sequence[PathItem] = ()
    split: bool = False
    expansion: Optional[float] = None


#: MobileNetV2's (PaddleClas) names of the expand / depthwise / SE / projection parts.
LEGACY_UNIT_NAMES: Tuple[str, str, str, str] = ("_expand_conv", "_bottleneck_conv", "_se", "_linear_conv")


class InvertedResidualUnit(nn.Layer):
    """1×1 expand → k×k depthwise → [SE] → 1×1 linear projection, + identity if it fits.

    Args:
        in_channels, out_channels, stride: of the block.
        expansion: hidden width = ``round(in_channels * expansion)`` (or give ``mid_channels``).
        shortcut: add the input; None = when ``stride == 1`` and the widths agree.
        expand: with False (the t = 1 block) there is no expansion conv (hidden width = input width).
        mid_channels: the hidden width, overriding ``expansion``.
        kernel_size: of the depthwise conv.
        act: activation of the expansion and depthwise convs (the projection is linear).
        se: a squeeze-excite layer applied after the depthwise conv, or None.
        drop_path: stochastic-depth rate of the residual branch (only with a shortcut).
        padding: ``"same"`` for TensorFlow SAME padding of strided / even-kernel depthwise convs.
        names: attribute names of the (expand, depthwise, SE, projection) parts.
        conv_names: attribute names of the conv and BN inside each part (:class:`ConvBNLayer`).
        bn_momentum, bn_epsilon: BatchNorm settings.
        title: the block's name in the analysis tools.
    """

    def __init__(self, in_channels: int, out_channels: int, stride: int = 1, expansion: float = 6,
                 shortcut: Optional[bool] = None, expand: bool = True, *, mid_channels: Optional[int] = None,
                 kernel_size: int = 3, act: Optional[str] = "relu6", se: Optional[nn.Layer] = None,
                 drop_path: float = 0.0, padding: Optional[str] = None,
                 names: Sequence[str] = LEGACY_UNIT_NAMES, conv_names: Tuple[str, str] = LEGACY_NAMES,
                 bn_momentum: float = 0.9, bn_epsilon: float = 1e-5, title: str = "Inverted residual") -> None:
        super().__init__()
        mid = mid_channels if mid_channels is not None else int(round(in_channels * expansion))
        if not expand and mid != in_channels:
            raise ValueError(f"InvertedResidualUnit: without expansion the hidden width ({mid}) must equal "
                             f"the input width ({in_channels})")
        self.names = tuple(names)
        self.title = title
        self.expansion = mid / in_channels
        self.has_skip = stride == 1 and in_channels == out_channels if shortcut is None else bool(shortcut)
        conv = dict(names=conv_names, bn_momentum=bn_momentum, bn_epsilon=bn_epsilon)
        e_name, dw_name, se_name, pw_name = self.names
        setattr(self, e_name, ConvBNLayer(in_channels, mid, 1, act=act, **conv) if expand else None)
        # TF 'SAME' equals symmetric padding for odd kernels at stride 1; only strided convs need SamePad2D
        pad = "same" if padding == "same" and (stride > 1 or kernel_size % 2 == 0) else None
        setattr(self, dw_name, ConvBNLayer(mid, mid, kernel_size, stride, padding=pad, groups=mid, act=act, **conv))
        setattr(self, se_name, se)
        setattr(self, pw_name, ConvBNLayer(mid, out_channels, 1, **conv))
        self.drop_path = DropPath(drop_path) if self.has_skip and drop_path > 0 else None

    @property
    def expand_layer(self) -> Optional[ConvBNLayer]:
        return getattr(self, self.names[0])

    @property
    def dw_layer(self) -> ConvBNLayer:
        return getattr(self, self.names[1])

    @property
    def se_layer(self) -> Optional[nn.Layer]:
        return getattr(self, self.names[2])

    @property
    def project_layer(self) -> ConvBNLayer:
        return getattr(self, self.names[3])

    def forward(self, x: paddle.Tensor) -> paddle.Tensor:
        expand, se = self.expand_layer, self.se_layer
        y = expand(x) if expand is not None else x
        y = self.dw_layer(y)
        if se is not None:
            y = se(y)
        y = self.project_layer(y)
        if not self.has_skip:
            return y
        if self.drop_path is not None:
            y = self.drop_path(y)
        return x + y

    def block_paths(self) -> BlockPaths:
        main = [layer for layer in (self.expand_layer, self.dw_layer, self.se_layer, self.project_layer)
                if layer is not None]
        title = self.title.format(e=f"{self.expansion:g}")
        if self.has_skip:
            return BlockPaths(title, [[], main], "add", expansion=self.expansion)
        return BlockPaths(title, [main], expansion=self.expansion)
