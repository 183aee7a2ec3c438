"""What a "block" is in each model, and what it computes, read off the built model.

The blocks of a ppnets model are found in its stages (``model.feature_info``): a stage
module that defines ``block_paths()`` is a block; a container (``Sequential``, or a layer
holding blocks, like MobileNetV2's ``InvresiBlocks``) is searched for blocks; any other
stage member with a convolution is a block too, drawn as the chain of its convolutions
(with a residual add if it has a true ``shortcut``/``has_skip`` attribute).

What a block computes (residual add, channel split, concatenation, channel shuffle) is
what its ``block_paths()`` returns (:class:`ppnets.arch.blocks.BlockPaths`: lists of its own
sublayers and markers); this module only turns those into :class:`Op` / :class:`BlockInfo`.
It imports no family's block class.

For any other ``nn.Layer`` (no ``feature_info``) a block is the innermost composite
sublayer that holds a convolution and is not one of the shared pieces (:class:`ConvBNLayer`,
:class:`SqueezeExcite`, :class:`DropPath`, ``SamePad2D``) nor a plain container.
"""
from __future__ import annotations

import re

from dataclasses import dataclass, field
from typing import Any, List, Optional, Sequence, Tuple

import paddle.nn as nn

from ..arch.blocks import BlockPaths
from ..arch.interface import stages_of
from ..arch.layers import ConvBNLayer, DropPath, SamePad2D, SqueezeExcite
from ..arch.profile import conv_kind

__all__ = ["Op", "BlockInfo", "find_blocks", "describe_block", "act_name", "conv_op", "pool_label"]

#: The shared pieces blocks are made of; a layer of these types is never a block.
COMPONENTS: Tuple[type, ...] = (ConvBNLayer, SqueezeExcite, DropPath, SamePad2D)
CONTAINERS: Tuple[type, ...] = (nn.Sequential, nn.LayerList)

_ACT_NAMES = {"ReLU": "ReLU", "ReLU6": "ReLU6", "Hardswish": "h-swish", "Swish": "swish", "Silu": "SiLU",
              "Sigmoid": "sigmoid", "Hardsigmoid": "h-sigmoid", "HardSigmoidPC": "h-sigmoid",
              "Clip01": "clip[0,1]", "GELU": "GELU",
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


def pool_label(layer: nn.Layer) -> str:
    """``3×3 max pool /2``, ``global avg pool`` … for a pooling layer."""
    name = type(layer).__name__
    if isinstance(layer, (nn.AdaptiveAvgPool2D, nn.AdaptiveMaxPool2D)):
        return f"global {'avg' if 'Avg' in name else 'max'} pool"
    extra = layer.extra_repr() if hasattr(layer, "extra_repr") else ""
    k = getattr(layer, "ksize", None)
    s = getattr(layer, "stride", None)
    if k is None:  # a custom pooling layer: read "kernel_size=3, stride=2" from its repr
        mk, ms = re.search(r"kernel_size=(\d+)", extra), re.search(r"stride=(\d+)", extra)
        k, s = (int(mk.group(1)) if mk else None), (int(ms.group(1)) if ms else s)
    if isinstance(k, int):
        kind = "max" if "Max" in name else "avg"
        return f"{k}×{k} {kind} pool" + (f" /{s}" if isinstance(s, int) and s > 1 else "")
    return f"{name} ({extra})" if extra else name


def path_op(item: Any) -> Op:
    """One step of a :class:`~ppnets.arch.blocks.BlockPaths` path as an :class:`Op`."""
    if isinstance(item, tuple):
        kind, arg = item
        if kind == "shuffle":
            return Op("shuffle", f"channel shuffle g{arg}", groups=int(arg))
        if kind == "act":
            return Op("act", str(arg), act=str(arg))
        raise ValueError(f"unknown path marker {item!r}")
    if isinstance(item, SqueezeExcite):
        return se_op(item)
    if isinstance(item, (ConvBNLayer, nn.Conv2D)):
        return conv_op(item)
    if "Pool" in type(item).__name__:
        k, s = getattr(item, "ksize", 0), getattr(item, "stride", 1)
        return Op("pool", pool_label(item), k if isinstance(k, int) else 0, s if isinstance(s, int) else 1)
    return Op("other", type(item).__name__)


def _ops(*layers: Optional[nn.Layer]) -> List[Op]:
    return [path_op(layer) for layer in layers if layer is not None]


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
    in_c = convs[0].in_channels * (2 if split else 1) if convs else 0

    def width(branch: Sequence[Op]) -> int:  # a branch without channel-changing ops passes its input on
        return next((op.out_channels for op in reversed(branch) if op.out_channels), in_c // 2 if split else in_c)
    out_c = sum(width(b) for b in branches) if merge == "concat" else (convs[-1].out_channels if convs else in_c)
    return BlockInfo(type(block).__name__, title, spatial.kernel if spatial else None, stride, expansion,
                     any(op.kind == "se" for op in ops), _first_act(ops), in_c, out_c,
                     list(pre), branches, merge, split, list(post))


def _describe_paths(b: nn.Layer, paths: BlockPaths) -> BlockInfo:
    return _info(b, paths.title, [[path_op(i) for i in branch] for branch in paths.branches], paths.merge,
                 pre=[path_op(i) for i in paths.pre], split=paths.split, post=[path_op(i) for i in paths.post],
                 expansion=paths.expansion)


def _describe_generic(b: nn.Layer) -> BlockInfo:
    parts = [layer for _, layer in b.named_sublayers()
             if isinstance(layer, (ConvBNLayer, SqueezeExcite))
             or (isinstance(layer, nn.Conv2D) and not _inside(layer, b, (ConvBNLayer, SqueezeExcite)))]
    ops = _ops(*parts)
    skip = any(getattr(b, a, None) is True for a in ("shortcut", "has_skip", "use_res_connect"))
    return _info(b, type(b).__name__, [[], ops] if skip else [ops], "add" if skip else None)


def _inside(layer: nn.Layer, root: nn.Layer, types: Tuple[type, ...]) -> bool:
    return any(isinstance(parent, types) and any(sub is layer for sub in parent.sublayers())
               for _, parent in root.named_sublayers())


def describe_block(block: nn.Layer) -> BlockInfo:
    """The :class:`BlockInfo` of ``block``: its ``block_paths()``, else a generic chain description."""
    paths = getattr(block, "block_paths", None)
    return _describe_paths(block, paths()) if callable(paths) else _describe_generic(block)


# --------------------------------------------------------------------------- finding blocks


def _has_conv(layer: nn.Layer) -> bool:
    return any(isinstance(sub, nn.Conv2D) for sub in layer.sublayers())


def _is_block(layer: nn.Layer) -> bool:
    return callable(getattr(layer, "block_paths", None))


def _holds_blocks(layer: nn.Layer) -> bool:
    return isinstance(layer, CONTAINERS) or any(_is_block(sub) for sub in layer.sublayers())


def _blocks_in(name: str, layer: nn.Layer) -> List[Tuple[str, nn.Layer]]:
    """The blocks of one stage member (see the module docstring)."""
    if _is_block(layer):
        return [(name, layer)]
    if _holds_blocks(layer):
        return [b for child_name, child in layer.named_children() for b in _blocks_in(f"{name}.{child_name}", child)]
    if layer.sublayers() and not isinstance(layer, COMPONENTS) and _has_conv(layer):
        return [(name, layer)]
    return []


def find_blocks(model: nn.Layer) -> List[Tuple[str, nn.Layer]]:
    """``(name, layer)`` of every block of ``model``, in execution order.

    For a ppnets model, the blocks inside its stages (``feature_info``); for any other layer, every
    composite sublayer that contains a convolution, is neither one of :data:`COMPONENTS` nor a
    container, and contains no other such layer.
    """
    info = stages_of(model)
    if info:
        subs = dict(model.named_sublayers())
        found = [b for stage in info for name in stage["modules"] for b in _blocks_in(name, subs[name])]
        return list(dict((n, (n, layer)) for n, layer in found).values())
    candidates = [(name, layer) for name, layer in model.named_sublayers()
                  if layer.sublayers() and not isinstance(layer, COMPONENTS + CONTAINERS) and _has_conv(layer)]
    names = [n for n, _ in candidates]
    return [(n, layer) for n, layer in candidates
            if not any(other.startswith(n + ".") for other in names)]
