"""PP-LCNetV2 — PaddleClas's CPU-oriented successor of PP-LCNet (2022; PaddleClas docs
"PP-LCNetV2", no paper).

A 3×3 stride-2 stem and one depthwise-separable block, then four stages of *RepDepthwise*
blocks (k×k depthwise → ReLU → [SE] → 1×1 pointwise, ReLU after every conv). In the last two
stages the depthwise conv is **re-parameterized**: it trains as parallel depthwise conv + BN
branches of kernels k, k−2, …, 1 (the 1×1 branch only at stride 1), summed, and fuses after
training into one k×k depthwise conv with a bias. Stage 3 splits its pointwise conv in two
(to half the width, then to the full width) and adds SE (ReLU, sigmoid gate); stage 4 adds
the input where the shapes allow. The head is PP-LCNet's: global pooling → 1×1 conv to 1280 →
ReLU → dropout → fc.

The layout is PaddleClas's (``ppcls/arch/backbone/legendary_models/pp_lcnet_v2.py``: keys
``stem.0.conv``, ``stages.2.0.dw_conv_list.0.conv``, ``….se.conv1``, ``….pw_conv_1``,
``last_conv``, ``fc``), so its ``.pdparams`` load unchanged. As there, a re-parameterized block
keeps its fused conv ``dw_conv`` (with bias) in the train-time model too: unused (no gradient)
until :meth:`~ppnets.arch.base.ClassificationModel.reparameterize` writes the fused kernel into
it and removes the branches (PaddleClas's ``re_parameterize``). The dropout is PaddleClas's
``downscale_in_infer`` one. Widths are ``make_divisible(c * scale, 8)``.

timm's ``lcnetv2_*`` is the same network in timm's names; :func:`from_timm` maps them (and
divides timm's classifier weight by ``1 − dropout``: timm's dropout scales in training, this one
at inference, so the logits agree in both modes).
"""
from __future__ import annotations

import re
from typing import Any, Dict, List, Optional, Sequence, Tuple

import numpy as np
import paddle
import paddle.nn as nn

from .base import ClassificationModel
from .blocks import BlockPaths
from .layers import ConvBNLayer, SqueezeExcite, make_act, make_divisible
from .registry import register_model
from .reparam import fuse_conv_bn, mark_inference_only, pad_kernel

__all__ = ["ARCH", "PPLCNetV2", "RepDepthwiseSeparable", "from_timm"]

#: PaddleClas's ``NET_CONFIG``, one row per stage (the stage's first block has stride 2):
#: in: input width before scaling (the stage outputs 2 × in), k: depthwise kernel, split_pw:
#: pointwise conv in two halves, rep: re-parameterized depthwise branches, se, shortcut.
ARCH: Tuple[Tuple[int, int, bool, bool, bool, bool], ...] = (
    # in,  k, split_pw, rep,   se,    shortcut
    (64, 3, False, False, False, False),
    (128, 3, False, False, False, False),
    (256, 5, True, True, True, False),
    (512, 5, False, True, False, True),
)
STEM_CHANNELS = (32, 64)    # the 3×3/2 stem conv, then the stem's depthwise-separable block
CLASS_EXPAND = 1280         # the 1×1 conv after pooling (not scaled)
DROPOUT = 0.2


class RepDepthwiseSeparable(nn.Layer):
    """k×k depthwise (stride ``stride``) → ReLU → [SE] → 1×1 pointwise (or two, ``split_pw``) → ReLU,
    + the input (``shortcut``, where stride is 1 and the widths agree).

    With ``rep`` the depthwise conv is the sum of depthwise conv + BN branches of kernels
    ``k, k−2, …`` (1×1 only at stride 1), ``dw_conv_list``; ``dw_conv`` (a k×k depthwise conv with
    bias) is their fused form, unused until :meth:`reparameterize`. Without ``rep``, ``dw_conv``
    is a plain conv + BN + ReLU.
    """

    def __init__(self, in_channels: int, out_channels: int, stride: int, kernel_size: int = 3,
                 split_pw: bool = False, rep: bool = False, se: bool = False, shortcut: bool = False) -> None:
        super().__init__()
        self.rep, self.kernel_size = rep, kernel_size
        self.shortcut = shortcut and stride == 1 and in_channels == out_channels
        self.fused = False
        if rep:
            self.dw_conv_list = nn.LayerList([
                ConvBNLayer(in_channels, in_channels, k, stride, groups=in_channels)
                for k in range(kernel_size, 0, -2) if k > 1 or stride == 1])
            self.dw_conv = mark_inference_only(nn.Conv2D(in_channels, in_channels, kernel_size, stride,
                                                         padding=(kernel_size - 1) // 2, groups=in_channels))
        else:
            self.dw_conv = ConvBNLayer(in_channels, in_channels, kernel_size, stride, groups=in_channels, act="relu")
        self.act = make_act("relu")
        self.se = SqueezeExcite(in_channels, in_channels // 4, act="relu", gate="sigmoid") if se else None
        if split_pw:
            self.pw_conv_1 = ConvBNLayer(in_channels, out_channels // 2, 1, act="relu")
            self.pw_conv_2 = ConvBNLayer(out_channels // 2, out_channels, 1, act="relu")
            self.pw_convs = ("pw_conv_1", "pw_conv_2")
        else:
            self.pw_conv = ConvBNLayer(in_channels, out_channels, 1, act="relu")
            self.pw_convs = ("pw_conv",)

    @paddle.jit.not_to_static   # no tensor-dependent control flow: to_static runs it as it is (faster export)
    def forward(self, x: paddle.Tensor) -> paddle.Tensor:
        if not self.rep:
            y = self.dw_conv(x)
        elif self.fused:
            y = self.act(self.dw_conv(x))
        else:
            branches = list(self.dw_conv_list)
            y = branches[0](x)
            for branch in branches[1:]:
                y = y + branch(x)
            y = self.act(y)
        if self.se is not None:
            y = self.se(y)
        for name in self.pw_convs:
            y = getattr(self, name)(y)
        return x + y if self.shortcut else y

    def reparameterize(self) -> None:
        """Write the branches' sum (each BN folded in, kernels centred in k×k) into ``dw_conv`` and
        drop the branches (in place; a no-op without ``rep`` or when already fused)."""
        if not self.rep or self.fused:
            return
        weight, bias = 0.0, 0.0
        for branch in self.dw_conv_list:
            w, b = fuse_conv_bn(branch.conv_layer, branch.bn_layer)
            weight, bias = weight + pad_kernel(w, self.kernel_size), bias + b
        self.dw_conv.weight.set_value(np.asarray(weight, np.float32))
        self.dw_conv.bias.set_value(np.asarray(bias, np.float32))
        mark_inference_only(self.dw_conv, False)
        del self.dw_conv_list
        self.fused = True

    def block_paths(self) -> BlockPaths:
        dw = self.dw_conv if not self.rep or self.fused else self.dw_conv_list[0]
        main = [dw] + ([("act", "ReLU")] if self.rep else []) + [self.se] + [getattr(self, n) for n in self.pw_convs]
        main = [m for m in main if m is not None]
        title = "RepDW-separable" if self.rep else "DW-separable"
        return BlockPaths(title, [[], main] if self.shortcut else [main], "add" if self.shortcut else None)


class PPLCNetV2(ClassificationModel):
    """PP-LCNetV2 with width multiplier ``scale`` and ``depths`` blocks per stage.

    Args:
        scale: width multiplier (small 0.75, base 1.0, large 1.25).
        depths: blocks in each of the four stages.
        class_num: number of classes.
        dropout: dropout after the last conv (PaddleClas: 0.2, ``downscale_in_infer``).
        class_expand: width of the 1×1 conv after pooling (1280).
        use_last_conv: False drops that conv (and the dropout); the classifier reads the pooled
            ``stages.3`` features.

    Sublayers are PaddleClas's: ``stem`` (conv + one depthwise-separable block), ``stages.0`` …
    ``stages.3`` (the four stages), ``last_conv``, ``fc``. ``forward_features`` returns the
    ``stages.3`` map (``num_features`` = 1024·scale channels).
    """

    def __init__(self, scale: float = 1.0, depths: Sequence[int] = (2, 2, 6, 2), class_num: int = 1000,
                 dropout: float = DROPOUT, class_expand: int = CLASS_EXPAND, use_last_conv: bool = True) -> None:
        super().__init__()
        if len(depths) != len(ARCH) or any(int(d) < 1 for d in depths):
            raise ValueError(f"PPLCNetV2: depths must be {len(ARCH)} positive block counts, got {list(depths)}")
        self.scale = scale
        stem_c, in_c = (make_divisible(c * scale) for c in STEM_CHANNELS)
        self.stem = nn.Sequential(ConvBNLayer(3, stem_c, 3, 2, act="relu"),
                                  RepDepthwiseSeparable(stem_c, in_c, 1, 3))
        self.stem_modules = ("stem",)
        self.stages = nn.LayerList()
        reduction = 2
        for i, ((c, k, split_pw, rep, se, shortcut), depth) in enumerate(zip(ARCH, depths)):
            out_c = make_divisible(2 * c * scale)
            self.stages.append(nn.Sequential(*[
                RepDepthwiseSeparable(in_c if j == 0 else out_c, out_c, 2 if j == 0 else 1, k, split_pw, rep, se,
                                      shortcut) for j in range(int(depth))]))
            in_c, reduction = out_c, reduction * 2
            self.add_stage(f"stages.{i}", out_c, reduction)
        if use_last_conv:
            self.last_conv = nn.Conv2D(in_c, class_expand, 1, bias_attr=False)
            self.init_head(in_c, class_num, classifier="fc", hidden="last_conv", hidden_size=class_expand,
                           hidden_act="relu", dropout=dropout, dropout_mode="downscale_in_infer")
        else:
            self.init_head(in_c, class_num, classifier="fc")


def from_timm(state_dict: Dict[str, Any], dropout: float = DROPOUT) -> Dict[str, Any]:
    """timm's ``lcnetv2_*`` keys → PaddleClas's (BatchNorm buffers already ``_mean``/``_variance``).

    ``se.fc1/fc2`` → ``se.conv1/conv2``, ``pw_conv.0/1`` → ``pw_conv_1/2``, ``conv_head`` →
    ``last_conv``, ``classifier`` → ``fc`` with the weight divided by ``1 − dropout`` (see the module
    docstring); each re-parameterized block's fused slot ``dw_conv`` (absent from timm's train-time
    files) is added as zeros: it is written when the model is fused.
    """
    out: Dict[str, Any] = {}
    slots: List[Tuple[str, Any]] = []
    for key, value in state_dict.items():
        key = re.sub(r"\.se\.fc([12])\.", r".se.conv\1.", key)
        key = re.sub(r"\.pw_conv\.([01])\.", lambda m: f".pw_conv_{int(m[1]) + 1}.", key)
        if key.startswith("conv_head."):
            key = "last_conv." + key[len("conv_head."):]
        elif key.startswith("classifier."):
            key = "fc." + key[len("classifier."):]
            if key == "fc.weight":
                value = value / (1.0 - dropout)
        m = re.fullmatch(r"(.*)\.dw_conv_list\.0\.conv\.weight", key)
        if m:
            slots.append((m[1], value))
        out[key] = value
    for prefix, first in slots:
        shape = tuple(int(d) for d in np.shape(first))
        out[f"{prefix}.dw_conv.weight"] = np.zeros(shape, np.float32)
        out[f"{prefix}.dw_conv.bias"] = np.zeros(shape[:1], np.float32)
    return out


_PAPER = "PP-LCNetV2, PaddleClas (docs/en/models/PP-LCNetV2_en.md; no paper)"
for _name, _scale, _depths in (("small", 0.75, (2, 2, 4, 2)), ("base", 1.0, (2, 2, 6, 2)),
                               ("large", 1.25, (2, 2, 8, 2))):
    register_model(f"PPLCNetV2_{_name}", PPLCNetV2, family="PPLCNetV2", input_size=224, paper=_PAPER, year=2022,
                   paddleclas=True, timm=(f"lcnetv2_{_name}",), from_timm=from_timm, scale=_scale, depths=_depths)
