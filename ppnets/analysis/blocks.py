"""What a "block" is in each family, and what it computes, read off the built model.

A *block* is found generically: the innermost composite sublayer that holds a
convolution and is not one of the shared building pieces (:class:`ConvBNLayer`,
:class:`SqueezeExcite`, :class:`DropPath`, ``SamePad2D``) nor a plain container
(``Sequential``/``LayerList``). That yields MobileNetV1's ``DepthwiseSeparable``,
MobileNetV2's ``InvertedResidualUnit``, MobileNetV3's ``ResidualUnit``,
EfficientNet's ``MBConvBlock``, the ShuffleNet units and SqueezeNet's ``Fire``
without a per-model table, and works for a new family as long as it is built from
those pieces.

What a block computes (its paths: residual add, channel split, concatenation,
channel shuffle) is not visible from its sublayers, so each block class has a small
*describer* in :data:`DESCRIBERS` that reads the block's own attributes (``shortcut``,
``has_skip``, ``shuffle_groups``, the convolutions' kernels, strides, groups and
activations). A class without a describer is described as a plain chain of its
convolutions, with a residual add if it has a true ``shortcut``/``has_skip``
attribute. A new family registers its describer with :func:`register_describer`.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Callable, Dict, List, Optional, Sequence, Tuple, Type

import paddle.nn as nn

from ..arch.efficientnet import MBConvBlock
from ..arch.layers import ConvBNLayer, DropPath, SamePad2D, SqueezeExcite
from ..arch.mobilenet_v1 import DepthwiseSeparable
from ..arch.mobilenet_v2 import InvertedResidualUnit
from ..arch.mobilenet_v3 import ResidualUnit
from ..arch.shufflenet_v1 import ShuffleV1Unit
from ..arch.shufflenet_v2 import ShuffleDownUnit, ShuffleUnit
from ..arch.squeezenet import Fire
from .counter import conv_kind

__all__ = ["Op", "BlockInfo", "find_blocks", "describe_block", "register_describer", "DESCRIBERS",
           "act_name"]

#: The shared pieces blocks are made of; a layer of these types is never a block.
COMPONENTS: Tuple[type, ...] = (ConvBNLayer, SqueezeExcite, DropPath, SamePad2D)
CONTAINERS: Tuple[type, ...] = (nn.Sequential, nn.LayerList)

_ACT_NAMES = {"ReLU": "ReLU", "ReLU6": "ReLU6", "Hardswish": "h-swish", "Swish": "swish", "Silu": "SiLU",
              "Sigmoid": "sigmoid", "Hardsigmoid": "h-sigmoid", "HardSigmoidPC": "h-sigmoid",
              "Hardtanh": "clip[0,1]",
              "LeakyReLU": "leaky ReLU"}


def act_name(layer: Optional[nn.Layer]) -> Optional[str]:
    """Display name of an activation layer; None for Identity / no activation."""
    if layer is None or isinstance(layer, nn.Identity):
        return None
    return _ACT_NAMES.get(type(layer).__name__, type(layer).__name__)


@dataclass
class Op:
    """One operation on a block's path (a convolution, SE, pooling, shuffle or identity)."""

    kind: str                      # full | pointwise | depthwise | grouped | se | pool | shuffle | identity
    label: str                     # e.g. "1×1 conv 24→144, ReLU6"
    kernel: int = 0
    stride: int = 1
    in_channels: int = 0
    out_channels: int = 0
    groups: int = 1
    act: Optional[str] = None


@dataclass
class BlockInfo:
    """The structure of one block: ``pre`` ops, then parallel ``branches`` merged by ``merge``.

    ``split`` means the input channels are split between the branches (ShuffleNetV2) rather
    than fed to each. An empty branch is the identity (a skip path). ``post`` lists what
    follows the merge (activation, channel shuffle).
    """

    type: str
    title: str                                  # short name: "MBConv6", "Fire", "Shuffle unit" …
    kernel: Optional[int]                       # the spatial (depthwise) kernel
    stride: int
    expansion: Optional[float]                  # hidden width / input width of inverted residuals
    se: bool
    act: Optional[str]
    in_channels: int
    out_channels: int
    pre: List[Op] = field(default_factory=list)
    branches: List[List[Op]] = field(default_factory=list)
    merge: Optional[str] = None                 # None | "add" | "concat"
    split: bool = False
    post: List[Op] = field(default_factory=list)

    @property
    def residual(self) -> bool:
        return self.merge == "add" and any(not b for b in self.branches)

    def summary(self) -> str:
        """``k3 s2 e6 SE ReLU6``-style one-liner."""
        parts = []
        if self.kernel:
            parts.append(f"k{self.kernel}")
        parts.append(f"s{self.stride}")
        if self.expansion is not None:
            parts.append(f"e{self.expansion:.3g}")
        if self.se:
            parts.append("SE")
        if self.act:
            parts.append(self.act)
        return " ".join(parts)


# --------------------------------------------------------------------------- ops


def _conv_of(layer: nn.Layer) -> nn.Conv2D:
    return layer.conv_layer if isinstance(layer, ConvBNLayer) else layer


def conv_op(layer: nn.Layer, act: Optional[str] = None) -> Op:
    """Describe a :class:`ConvBNLayer` or a bare ``nn.Conv2D`` as an :class:`Op`."""
    conv = _conv_of(layer)
    kh, kw = conv._kernel_size
    s = conv._stride[0] if isinstance(conv._stride, (list, tuple)) else conv._stride
    kind = conv_kind(conv)
    if act is None and isinstance(layer, ConvBNLayer):
        act = act_name(layer.act)
    cin, cout, g = conv._in_channels, conv._out_channels, conv._groups
    k = f"{kh}×{kw}"
    what = {"depthwise": f"{k} dw", "grouped": f"{k} gconv g{g}", "pointwise": f"{k} conv",
            "full": f"{k} conv"}[kind]
    label = f"{what} {cin}→{cout}" if kind != "depthwise" else f"{what} {cin}"
    if s > 1:
        label += f" /{s}"
    if act:
        label += f", {act}"
    return Op(kind, label, kh, int(s), cin, cout, g, act)


def _in_out(layer: nn.Layer) -> Tuple[int, int]:
    """(in, out) features of a 1×1 ``nn.Conv2D`` or an ``nn.Linear`` (weight ``[in, out]``)."""
    if isinstance(layer, nn.Linear):
        return int(layer.weight.shape[0]), int(layer.weight.shape[1])
    return layer._in_channels, layer._out_channels


def se_op(se: SqueezeExcite) -> Op:
    (c_in, c_mid), (_, c_out) = (_in_out(getattr(se, n)) for n in se.names)
    gate = act_name(se.gate) or "linear"
    return Op("se", f"SE {c_in}→{c_mid}→{c_out}, {gate}", 1, 1, c_in, c_out, 1, act_name(se.act))


def _identity() -> List[Op]:
    return []


def _ops(*layers: Optional[nn.Layer]) -> List[Op]:
    out = []
    for layer in layers:
        if layer is None:
            continue
        out.append(se_op(layer) if isinstance(layer, SqueezeExcite) else conv_op(layer))
    return out


def _first_act(ops: Sequence[Op]) -> Optional[str]:
    return next((op.act for op in ops if op.act and op.kind != "se"), None)


def _spatial(ops: Sequence[Op]) -> Optional[Op]:
    """The op with the largest spatial kernel (the depthwise conv of most blocks)."""
    convs = [op for op in ops if op.kind in ("full", "depthwise", "grouped", "pointwise")]
    return max(convs, key=lambda op: (op.kernel, op.kind == "depthwise"), default=None)


def _info(block: nn.Layer, title: str, branches: List[List[Op]], merge: Optional[str], *,
          pre: Sequence[Op] = (), split: bool = False, post: Sequence[Op] = (),
          expansion: Optional[float] = None) -> BlockInfo:
    ops = list(pre) + [op for b in branches for op in b]
    spatial = _spatial(ops)
    convs = [op for op in ops if op.in_channels]
    stride = max([op.stride for op in ops] or [1])
    in_c = convs[0].in_channels if convs else 0
    if split:
        in_c *= 2
    out_c = sum(b[-1].out_channels if b else (in_c // 2 if split else in_c) for b in branches) \
        if merge == "concat" else (convs[-1].out_channels if convs else in_c)
    return BlockInfo(type(block).__name__, title, spatial.kernel if spatial else None, stride, expansion,
                     any(op.kind == "se" for op in ops), _first_act(ops), in_c, out_c,
                     list(pre), branches, merge, split, list(post))


# --------------------------------------------------------------------------- describers


def _describe_dws(b: DepthwiseSeparable) -> BlockInfo:
    return _info(b, "DW-separable", [_ops(b.depthwise_conv, b.pointwise_conv)], None)


def _describe_mnv2(b: InvertedResidualUnit) -> BlockInfo:
    mid = _conv_of(b._bottleneck_conv)._in_channels
    cin = _conv_of(b._expand_conv)._in_channels if b._expand_conv is not None else mid
    return _inverted_info(b, "Inverted residual", b._expand_conv, b._bottleneck_conv, None,
                          b._linear_conv, bool(b.shortcut), mid / cin)


def _describe_mnv3(b: ResidualUnit) -> BlockInfo:
    mid = _conv_of(b.bottleneck_conv)._in_channels
    cin = _conv_of(b.expand_conv)._in_channels if b.expand_conv is not None else mid
    return _inverted_info(b, "Bneck", b.expand_conv, b.bottleneck_conv, b.mid_se,
                          b.linear_conv, bool(b.shortcut), mid / cin)


def _describe_mbconv(b: MBConvBlock) -> BlockInfo:
    mid = _conv_of(b.conv_dw)._in_channels
    cin = _conv_of(b.conv_pw)._in_channels if b.conv_pw is not None else mid
    e = mid / cin
    return _inverted_info(b, f"MBConv{e:g}", b.conv_pw, b.conv_dw, b.se, b.conv_pwl, bool(b.has_skip), e)


def _inverted_info(b: nn.Layer, title: str, expand: Optional[nn.Layer], dw: nn.Layer, se: Optional[nn.Layer],
                   project: nn.Layer, skip: bool, e: float) -> BlockInfo:
    """Inverted residual: [1×1 expand] → k×k depthwise → [SE] → 1×1 linear, + identity when ``skip``."""
    main = _ops(expand, dw, se, project)
    return _info(b, title, [_identity(), main] if skip else [main], "add" if skip else None, expansion=e)


def _describe_shufflev1(b: ShuffleV1Unit) -> BlockInfo:
    main = _ops(b.conv_pw)
    if b.shuffle_groups > 1:
        main.append(Op("shuffle", f"channel shuffle g{b.shuffle_groups}", groups=b.shuffle_groups))
    main += _ops(b.conv_dw, b.conv_linear)
    relu = Op("act", "ReLU", act="ReLU")
    if b.shortcut is None:
        return _info(b, "Shuffle unit", [_identity(), main], "add", post=[relu])
    main.append(relu)
    pool = Op("pool", "3×3 avg pool /2", 3, 2)
    info = _info(b, "Shuffle unit /2", [[pool], main], "concat")
    info.in_channels = main[0].in_channels
    info.out_channels = main[0].in_channels + _conv_of(b.conv_linear)._out_channels
    return info


def _shuffle2() -> Op:
    return Op("shuffle", "channel shuffle g2", groups=2)


def _describe_shufflev2(b: ShuffleUnit) -> BlockInfo:
    return _info(b, "Shuffle unit (split)", [_identity(), _ops(b._conv_pw, b._conv_dw, b._conv_linear)],
                 "concat", split=True, post=[_shuffle2()])


def _describe_shufflev2_down(b: ShuffleDownUnit) -> BlockInfo:
    return _info(b, "Shuffle unit /2", [_ops(b._conv_dw_1, b._conv_linear_1),
                                        _ops(b._conv_pw_2, b._conv_dw_2, b._conv_linear_2)],
                 "concat", post=[_shuffle2()])


def _describe_fire(b: Fire) -> BlockInfo:
    squeeze = _ops(b._conv)
    info = _info(b, "Fire", [_ops(b._conv_path1), _ops(b._conv_path2)], "concat", pre=squeeze)
    info.in_channels = squeeze[0].in_channels
    return info


def _describe_generic(b: nn.Layer) -> BlockInfo:
    parts = [layer for _, layer in b.named_sublayers()
             if isinstance(layer, (ConvBNLayer, SqueezeExcite))
             or (isinstance(layer, nn.Conv2D) and not _inside(layer, b, (ConvBNLayer, SqueezeExcite)))]
    ops = _ops(*parts)
    skip = any(getattr(b, a, None) is True for a in ("shortcut", "has_skip", "use_res_connect"))
    return _info(b, type(b).__name__, [_identity(), ops] if skip else [ops], "add" if skip else None)


def _inside(layer: nn.Layer, root: nn.Layer, types: Tuple[type, ...]) -> bool:
    return any(isinstance(parent, types) and any(sub is layer for sub in parent.sublayers())
               for _, parent in root.named_sublayers())


#: Block class → function returning its :class:`BlockInfo`.
DESCRIBERS: Dict[Type[nn.Layer], Callable[[nn.Layer], BlockInfo]] = {
    DepthwiseSeparable: _describe_dws,
    InvertedResidualUnit: _describe_mnv2,
    ResidualUnit: _describe_mnv3,
    MBConvBlock: _describe_mbconv,
    ShuffleV1Unit: _describe_shufflev1,
    ShuffleUnit: _describe_shufflev2,
    ShuffleDownUnit: _describe_shufflev2_down,
    Fire: _describe_fire,
}


def register_describer(cls: Type[nn.Layer], fn: Callable[[nn.Layer], BlockInfo]) -> None:
    """Teach the analysis tools the paths of a new block class."""
    DESCRIBERS[cls] = fn


def describe_block(block: nn.Layer) -> BlockInfo:
    """The :class:`BlockInfo` of ``block`` (a generic chain description for unknown classes)."""
    for cls in type(block).__mro__:
        if cls in DESCRIBERS:
            return DESCRIBERS[cls](block)
    return _describe_generic(block)


# --------------------------------------------------------------------------- finding blocks


def _has_conv(layer: nn.Layer) -> bool:
    return any(isinstance(sub, nn.Conv2D) for sub in layer.sublayers())


def find_blocks(model: nn.Layer) -> List[Tuple[str, nn.Layer]]:
    """``(name, layer)`` of every block of ``model``, in definition order.

    A block is a composite sublayer that contains a convolution, is neither one of
    :data:`COMPONENTS` nor a container, and contains no other block.
    """
    candidates = [(name, layer) for name, layer in model.named_sublayers()
                  if layer.sublayers() and not isinstance(layer, COMPONENTS + CONTAINERS) and _has_conv(layer)]
    names = [n for n, _ in candidates]
    return [(n, layer) for n, layer in candidates
            if not any(other.startswith(n + ".") for other in names)]
