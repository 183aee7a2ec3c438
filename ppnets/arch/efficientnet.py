"""EfficientNet B0–B7 — Tan & Le, "EfficientNet: Rethinking Model Scaling for Convolutional Neural
Networks", ICML 2019 (arXiv:1905.11946).

B0 is the table :data:`ARCH` (the paper's Table 1); B1–B7 scale its width, depth and
input resolution by :data:`SCALING` (compound scaling), with channel and repeat
counts rounded by :func:`round_filters` / :func:`round_repeats` exactly as the
paper's TensorFlow reference does.

Layer layout (timm-style, *not* PaddleClas's)::

    conv_stem.{conv,bn}                       3×3/2 conv, BN, swish
    blocks.<stage>.<i>.conv_pw.{conv,bn}      1×1 expansion (absent when expand ratio is 1)
    blocks.<stage>.<i>.conv_dw.{conv,bn}      k×k depthwise
    blocks.<stage>.<i>.se.conv_{reduce,expand}
    blocks.<stage>.<i>.conv_pwl.{conv,bn}     1×1 linear projection
    conv_head.{conv,bn}                       1×1 conv to 1280·width, swish
    classifier                                dropout → FC

PaddleClas's checkpoints (keys like ``_ef._blocks.0.._dcn._conv._conv._conv.weight``
and ``_ef.block.2.._ecn…``) load after :func:`from_paddleclas`, which every variant
registers as its ``from_paddleclas`` converter (``tools/convert_weights.py`` uses it).

Padding: PaddleClas's weights were converted from the TensorFlow ones, which were
trained with TF 'SAME' padding (``out = ceil(in / stride)``, the odd pixel of padding
at the bottom/right). Symmetric padding shifts every stride-2 convolution by one
pixel and degrades those weights, so ``padding="same"`` is the default here.
PaddleClas hard-codes the padding for each variant's native resolution; here it is
computed per input (:class:`~ppnets.arch.layers.SamePad2D`), which gives PaddleClas's
output at the native resolution and TensorFlow's at every resolution.
``padding="half"`` selects symmetric ``(k - 1) // 2`` padding (PyTorch-style
EfficientNets trained from scratch).
"""
from __future__ import annotations

import math
import re
from functools import partial
from typing import Any, Dict, List, Optional, Sequence, Tuple

import paddle.nn as nn

from ..errors import CheckpointError, ConfigError
from .base import ClassificationModel
from .blocks import InvertedResidualUnit
from .layers import ConvBNLayer, SqueezeExcite, make_divisible
from .registry import register_model
from .timm_keys import timm_blocks, timm_rename, timm_unit_keys

__all__ = ["ARCH", "SCALING", "EfficientNet", "MBConvBlock", "round_filters", "round_repeats",
           "from_paddleclas", "from_timm"]

#: EfficientNet-B0 (paper Table 1): one row per stage, after the 3×3/2 stem of 32 channels.
#: (expand ratio e, kernel k, first stride s, input channels, output channels, repeats n, SE ratio).
ARCH: Tuple[Tuple[int, int, int, int, int, int, float], ...] = (
    # e, k, s, in,  out, n, se
    (1, 3, 1, 32, 16, 1, 0.25),
    (6, 3, 2, 16, 24, 2, 0.25),
    (6, 5, 2, 24, 40, 2, 0.25),
    (6, 3, 2, 40, 80, 3, 0.25),
    (6, 5, 1, 80, 112, 3, 0.25),
    (6, 5, 2, 112, 192, 4, 0.25),
    (6, 3, 1, 192, 320, 1, 0.25),
)
STEM_CHANNELS = 32
HEAD_CHANNELS = 1280

#: Compound scaling of the reference code: name → (width, depth, resolution, dropout).
SCALING: Dict[str, Tuple[float, float, int, float]] = {
    "EfficientNetB0": (1.0, 1.0, 224, 0.2),
    "EfficientNetB1": (1.0, 1.1, 240, 0.2),
    "EfficientNetB2": (1.1, 1.2, 260, 0.3),
    "EfficientNetB3": (1.2, 1.4, 300, 0.3),
    "EfficientNetB4": (1.4, 1.8, 380, 0.4),
    "EfficientNetB5": (1.6, 2.2, 456, 0.4),
    "EfficientNetB6": (1.8, 2.6, 528, 0.5),
    "EfficientNetB7": (2.0, 3.1, 600, 0.5),
}

#: BatchNorm as the TF reference and PaddleClas (Paddle's momentum = TF's decay).
BN_MOMENTUM = 0.99
BN_EPSILON = 1e-3


def round_filters(filters: int, width_mult: float, divisor: int = 8, min_depth: Optional[int] = None) -> int:
    """Channels after width scaling: nearest multiple of ``divisor``, never more than 10 % below.

    The reference's ``round_filters`` (depth_divisor 8, min_depth None → divisor);
    a falsy ``width_mult`` leaves ``filters`` unchanged.
    """
    if not width_mult:
        return filters
    return make_divisible(filters * width_mult, divisor, min_depth)


def round_repeats(repeats: int, depth_mult: float) -> int:
    """Blocks in a stage after depth scaling: ``ceil(depth_mult * repeats)`` (the reference's rule)."""
    if not depth_mult:
        return repeats
    return int(math.ceil(depth_mult * repeats))


def stage_depths(depth_mult: float, arch: Sequence[Sequence[Any]] = ARCH) -> List[int]:
    """Number of blocks in each stage of the scaled network."""
    return [round_repeats(row[5], depth_mult) for row in arch]


class MBConvBlock(InvertedResidualUnit):
    """Mobile inverted bottleneck with squeeze-and-excitation (MnasNet/EfficientNet), the shared
    :class:`~ppnets.arch.blocks.InvertedResidualUnit` with timm's names.

    1×1 expand ``conv_pw`` (swish) → k×k depthwise ``conv_dw`` (swish) → ``se`` → 1×1 linear
    ``conv_pwl``, plus the input when stride is 1 and the widths agree; the residual branch then
    goes through stochastic depth (:class:`DropPath`, the reference's "drop connect").

    Args:
        in_channels, out_channels, kernel_size, stride: of the block.
        expand_ratio: width of the hidden layer relative to ``in_channels``.
        se_ratio: SE bottleneck relative to the *block input* channels (reference rule:
            ``max(1, int(in_channels * se_ratio))``); 0/None = no SE.
        drop_path: drop-connect probability (only used when there is a shortcut).
        padding: "same" (TensorFlow) or "half" (symmetric).
        bn_momentum, bn_epsilon: BatchNorm settings.
    """

    def __init__(self, in_channels: int, out_channels: int, kernel_size: int, stride: int,
                 expand_ratio: int, se_ratio: Optional[float] = 0.25, drop_path: float = 0.0,
                 padding: str = "same", bn_momentum: float = BN_MOMENTUM, bn_epsilon: float = BN_EPSILON) -> None:
        mid = in_channels * expand_ratio
        se = (SqueezeExcite(mid, max(1, int(in_channels * se_ratio)), act="swish", gate="sigmoid",
                            names=("conv_reduce", "conv_expand")) if se_ratio else None)
        super().__init__(in_channels, out_channels, stride, expand=expand_ratio != 1, mid_channels=mid,
                         kernel_size=kernel_size, act="swish", se=se, drop_path=drop_path, padding=padding,
                         names=("conv_pw", "conv_dw", "se", "conv_pwl"), conv_names=("conv", "bn"),
                         bn_momentum=bn_momentum, bn_epsilon=bn_epsilon, title="MBConv{e}")


class EfficientNet(ClassificationModel):
    """EfficientNet with compound scaling coefficients ``width_mult`` / ``depth_mult``.

    Args:
        width_mult: channel multiplier (rounded by :func:`round_filters`).
        depth_mult: depth multiplier (stage repeats rounded up by :func:`round_repeats`).
        dropout: dropout before the classifier (0.2 for B0 … 0.5 for B7).
        drop_connect_rate: stochastic-depth rate of the last block; block ``i`` of ``N``
            uses ``drop_connect_rate * i / N`` (the reference's linear rule).
        class_num: number of classes.
        padding: ``"same"`` (TensorFlow SAME, default: what PaddleClas/TF weights need) or
            ``"half"`` (symmetric).
        bn_momentum, bn_epsilon: BatchNorm settings (TF reference: 0.99 / 1e-3).
        arch: the B0 block table, by default :data:`ARCH`.
    """

    def __init__(self, width_mult: float = 1.0, depth_mult: float = 1.0, dropout: float = 0.2,
                 drop_connect_rate: float = 0.2, class_num: int = 1000, padding: str = "same",
                 bn_momentum: float = BN_MOMENTUM, bn_epsilon: float = BN_EPSILON,
                 arch: Sequence[Sequence[Any]] = ARCH) -> None:
        super().__init__()
        if padding not in ("same", "half"):
            raise ConfigError(f"EfficientNet: padding must be 'same' or 'half', got {padding!r}")
        self.width_mult, self.depth_mult = width_mult, depth_mult
        bn = dict(bn_momentum=bn_momentum, bn_epsilon=bn_epsilon)
        stem = round_filters(STEM_CHANNELS, width_mult)
        self.conv_stem = ConvBNLayer(3, stem, 3, 2, padding="same" if padding == "same" else None,
                                     act="swish", **bn)
        self.stem_modules = ("conv_stem",)
        depths = stage_depths(depth_mult, arch)
        total, idx, reduction = sum(depths), 0, 2
        stages = []
        for (e, k, s, c_in, c_out, _, se), n in zip(arch, depths):
            c_in, c_out = round_filters(c_in, width_mult), round_filters(c_out, width_mult)
            blocks = []
            for i in range(n):
                blocks.append(MBConvBlock(c_in if i == 0 else c_out, c_out, k, s if i == 0 else 1, e, se,
                                          drop_path=drop_connect_rate * idx / total, padding=padding, **bn))
                idx += 1
            stages.append(nn.Sequential(*blocks))
            reduction *= s
            self.add_stage(f"blocks.{len(stages) - 1}", c_out, reduction)
            last = c_out
        self.blocks = nn.Sequential(*stages)
        head = round_filters(HEAD_CHANNELS, width_mult)
        self.conv_head = ConvBNLayer(last, head, 1, act="swish", **bn)
        self.neck_modules = ("conv_head",)
        self.init_head(head, class_num, classifier="classifier", dropout=dropout)


# --------------------------------------------------------------------------- PaddleClas weights

_PC_BLOCK = re.compile(r"^_ef\.(?:_blocks|block)\.(\d+)\.\.(_ecn|_dcn|_se|_pcn)\.(.+)$")
_PC_CONV_BN = re.compile(r"^_conv\.(?:_conv\._conv\.(weight)|_bn\.(weight|bias|_mean|_variance))$")
_PC_SE = re.compile(r"^_conv([12])\._conv\.(weight|bias)$")
_PC_BRANCH = {"_ecn": "conv_pw", "_dcn": "conv_dw", "_pcn": "conv_pwl"}


def _conv_bn_key(rest: str) -> Optional[str]:
    """PaddleClas ConvBNLayer suffix (``_conv._conv._conv.weight``, ``_conv._bn._mean``) → ours."""
    m = _PC_CONV_BN.match(rest)
    if not m:
        return None
    return f"conv.{m.group(1)}" if m.group(1) else f"bn.{m.group(2)}"


def _map_key(key: str, where: List[Tuple[int, int]]) -> Optional[str]:
    if key.startswith("_ef._conv_stem."):
        sub = _conv_bn_key(key[len("_ef._conv_stem."):])
        return f"conv_stem.{sub}" if sub else None
    m = _PC_BLOCK.match(key)
    if m:
        idx, branch, rest = int(m.group(1)), m.group(2), m.group(3)
        if idx >= len(where):
            return None
        stage, i = where[idx]
        if branch == "_se":
            se = _PC_SE.match(rest)
            sub = f"se.conv_{'reduce' if se.group(1) == '1' else 'expand'}.{se.group(2)}" if se else None
        else:
            sub = _conv_bn_key(rest)
            sub = f"{_PC_BRANCH[branch]}.{sub}" if sub else None
        return f"blocks.{stage}.{i}.{sub}" if sub else None
    if key.startswith("_conv."):
        sub = _conv_bn_key(key)
        return f"conv_head.{sub}" if sub else None
    if key in ("_fc.weight", "_fc.bias"):
        return "classifier." + key.split(".")[1]
    return None


def from_paddleclas(state_dict: Dict[str, Any], depth_mult: float = 1.0,
                    arch: Sequence[Sequence[Any]] = ARCH) -> Dict[str, Any]:
    """Rename a PaddleClas EfficientNet state_dict to this module's keys (values untouched).

    Blocks are mapped by their global index in PaddleClas's key (``_blocks.N..`` or
    ``block.N..``) onto ``blocks.<stage>.<i>`` using the stage depths of ``depth_mult``,
    so the result does not depend on the dict's order. Raises
    :class:`~ppnets.errors.CheckpointError` naming the keys it does not recognise.
    """
    where = [(s, i) for s, n in enumerate(stage_depths(depth_mult, arch)) for i in range(n)]
    out: Dict[str, Any] = {}
    unknown: List[str] = []
    for key, value in state_dict.items():
        new = _map_key(key, where)
        if new is None:
            unknown.append(key)
        elif new in out:
            raise CheckpointError(f"PaddleClas EfficientNet weights: two keys map to '{new}' (second: '{key}')")
        else:
            out[new] = value
    if unknown:
        more = f" (+{len(unknown) - 3} more)" if len(unknown) > 3 else ""
        raise CheckpointError(f"not a PaddleClas EfficientNet (depth {depth_mult}) state_dict: "
                              f"{len(unknown)} unrecognised key(s): {', '.join(unknown[:3])}{more}")
    return out


# --------------------------------------------------------------------------- timm's weights

_TIMM_REST = {"conv_stem.": "conv_stem.conv.", "bn1.": "conv_stem.bn.", "conv_head.": "conv_head.conv.",
              "bn2.": "conv_head.bn."}
_MBCONV_NAMES = ("conv_pw", "conv_dw", "se", "conv_pwl")


def from_timm(state_dict: Dict[str, Any]) -> Dict[str, Any]:
    """timm's ``tf_efficientnet_b*`` keys → this module's: the same ``blocks.<stage>.<i>`` tree, with
    each conv and its BatchNorm in one :class:`ConvBNLayer` (timm: ``conv_dw`` + ``bn2`` →
    ``conv_dw.conv`` + ``conv_dw.bn``; in the first, separable block ``conv_pw`` is the projection).

    timm's ``tf_`` ports are this model exactly: TF SAME padding, BN epsilon 1e-3, SE width a quarter of
    the block input (timm rounds, the reference truncates: equal, the widths are multiples of 8) with swish
    and a sigmoid gate, bias-free convs, the same width and depth rounding. (timm's ``efficientnet_b*``,
    trained in PyTorch, is not: symmetric padding and BN epsilon 1e-5.)
    """
    blocks, rest = timm_blocks(state_dict)
    out = timm_rename(rest, _TIMM_REST)
    for (s, i), block in blocks:
        out.update(timm_unit_keys((s, i), block, f"blocks.{s}.{i}.", _MBCONV_NAMES))
    return out


_PAPER = "EfficientNet: Rethinking Model Scaling for Convolutional Neural Networks (Tan & Le, arXiv:1905.11946)"
for _name, (_w, _d, _res, _p) in SCALING.items():
    register_model(_name, EfficientNet, family="EfficientNet", input_size=_res, paper=_PAPER, year=2019,
                   paddleclas=True, from_paddleclas=partial(from_paddleclas, depth_mult=_d),
                   timm=(f"tf_efficientnet_b{_name[-1]}",), from_timm=from_timm,
                   width_mult=_w, depth_mult=_d, dropout=_p)
