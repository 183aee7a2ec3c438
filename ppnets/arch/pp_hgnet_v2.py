"""PP-HGNetV2 — PaddlePaddle's "High Performance GPU Network" v2 (PaddleClas, 2023; the backbone of
RT-DETR and PP-OCRv4's server models; no paper of its own).

A GPU-friendly network built from *HG blocks*: a chain of ``layer_num`` convolutions whose
input and every output are concatenated (dense aggregation, as in VoVNet's one-shot
aggregation), then squeezed by a 1×1 conv to half the output width and expanded by a second
1×1 conv to it ("aggregation squeeze/excitation"), plus the block input in every block but a
stage's first. The early stages chain full 3×3 convs; the late ones *light* convs (a 1×1
conv without activation, then a 5×5 depthwise conv + ReLU). Stages 2–4 start with a 3×3
stride-2 depthwise conv without activation.

The stem is a 3×3/2 conv, then two parallel paths on its map — a 2×2 max-pool and two 2×2
convs (both stride 1, padded on the bottom/right, Paddle's "SAME") — concatenated, a 3×3/2
conv and a 1×1 conv: stride 4. The head is global pooling → a BN-free 1×1 conv to 2048
channels → ReLU → [LAB] → dropout → classifier.

The small variants (B0–B3) add a *learnable affine block* (LAB, ``use_lab``) after every
activation: ``y = scale · x + bias`` with one scalar pair per layer, trained at 1/100 of the
learning rate (PaddleClas's ``lab_lr``). As in PaddleClas, BatchNorm scales and shifts are not
weight-decayed.

The layout is PaddleClas's (keys ``stem.stem1.conv``, ``stages.N.downsample``,
``stages.N.blocks.M.layers.K.conv1``, ``…aggregation_squeeze_conv``, ``…lab.scale``,
``last_conv``, ``lab``, ``fc``), so its pretrained ``.pdparams`` load unchanged; timm's
``hgnetv2_b0`` … ``b6`` (PaddleClas's weights, ported) convert with :func:`from_timm`.
"""
from __future__ import annotations

import re
from typing import Any, Dict, Tuple

import paddle
import paddle.nn as nn

from ..errors import ConfigError, did_you_mean
from .base import ClassificationModel
from .blocks import BlockPaths
from .layers import ConvBNLayer
from .registry import register_model

__all__ = ["ARCHS", "PPHGNetV2", "LearnableAffineBlock", "ConvBNAct", "LightConvBNAct", "StemBlock",
           "HGV2Block", "HGV2Stage", "from_timm"]

Stage = Tuple[int, int, int, int, bool, bool, int, int]
#: PaddleClas's tables, per variant: stem (mid, out) channels, LAB on/off, then one row per stage:
#: in, mid, out channels, HG blocks, stride-2 depthwise downsample first, light convs, kernel, layers per block.
ARCHS: Dict[str, Tuple[Tuple[int, int], bool, Tuple[Stage, ...]]] = {
    "B0": ((16, 16), True, ((16, 16, 64, 1, False, False, 3, 3), (64, 32, 256, 1, True, False, 3, 3),
                            (256, 64, 512, 2, True, True, 5, 3), (512, 128, 1024, 1, True, True, 5, 3))),
    "B1": ((24, 32), True, ((32, 32, 64, 1, False, False, 3, 3), (64, 48, 256, 1, True, False, 3, 3),
                            (256, 96, 512, 2, True, True, 5, 3), (512, 192, 1024, 1, True, True, 5, 3))),
    "B2": ((24, 32), True, ((32, 32, 96, 1, False, False, 3, 4), (96, 64, 384, 1, True, False, 3, 4),
                            (384, 128, 768, 3, True, True, 5, 4), (768, 256, 1536, 1, True, True, 5, 4))),
    "B3": ((24, 32), True, ((32, 32, 128, 1, False, False, 3, 5), (128, 64, 512, 1, True, False, 3, 5),
                            (512, 128, 1024, 3, True, True, 5, 5), (1024, 256, 2048, 1, True, True, 5, 5))),
    "B4": ((32, 48), False, ((48, 48, 128, 1, False, False, 3, 6), (128, 96, 512, 1, True, False, 3, 6),
                             (512, 192, 1024, 3, True, True, 5, 6), (1024, 384, 2048, 1, True, True, 5, 6))),
    "B5": ((32, 64), False, ((64, 64, 128, 1, False, False, 3, 6), (128, 128, 512, 2, True, False, 3, 6),
                             (512, 256, 1024, 5, True, True, 5, 6), (1024, 512, 2048, 2, True, True, 5, 6))),
    "B6": ((48, 96), False, ((96, 96, 192, 2, False, False, 3, 6), (192, 192, 512, 3, True, False, 3, 6),
                             (512, 384, 1024, 6, True, True, 5, 6), (1024, 768, 2048, 3, True, True, 5, 6))),
}
CLASS_EXPAND = 2048   # the 1×1 conv after pooling
LAB_LR = 0.01         # LAB parameters' learning rate, relative to the schedule's


class LearnableAffineBlock(nn.Layer):
    """``scale · x + bias`` with one learned scalar each (initialised to 1 and 0), whose learning
    rate is ``lr`` times the optimizer's."""

    def __init__(self, lr: float = LAB_LR) -> None:
        super().__init__()
        self.scale = self.create_parameter([1], attr=paddle.ParamAttr(learning_rate=lr),
                                           default_initializer=nn.initializer.Constant(1.0))
        self.bias = self.create_parameter([1], attr=paddle.ParamAttr(learning_rate=lr), is_bias=True,
                                          default_initializer=nn.initializer.Constant(0.0))

    def forward(self, x: paddle.Tensor) -> paddle.Tensor:
        return x * self.scale + self.bias


class ConvBNAct(ConvBNLayer):
    """Conv → BN → [ReLU → [LAB]] (PaddleClas's ``ConvBNAct``): the LAB only follows an activation.
    ``padding="same"``: Paddle's SAME padding (extra bottom/right), used by the stem's 2×2 convs.
    The BatchNorm's scale and shift are not weight-decayed (PaddleClas's ``L2Decay(0.0)``)."""

    def __init__(self, in_channels: int, out_channels: int, kernel_size: int, stride: int = 1, groups: int = 1,
                 use_act: bool = True, use_lab: bool = False, lab_lr: float = LAB_LR, padding: Any = None) -> None:
        super().__init__(in_channels, out_channels, kernel_size, stride, padding=padding, groups=groups,
                         act="relu" if use_act else None)
        for p in (self.bn.weight, self.bn.bias):
            p.regularizer = paddle.regularizer.L2Decay(0.0)
        self.lab = LearnableAffineBlock(lab_lr) if use_act and use_lab else None

    def forward(self, x: paddle.Tensor) -> paddle.Tensor:
        x = super().forward(x)
        return self.lab(x) if self.lab is not None else x


class LightConvBNAct(nn.Layer):
    """1×1 conv + BN (no activation) → k×k depthwise conv + BN + ReLU [+ LAB]."""

    def __init__(self, in_channels: int, out_channels: int, kernel_size: int, use_lab: bool = False,
                 lab_lr: float = LAB_LR) -> None:
        super().__init__()
        self.conv1 = ConvBNAct(in_channels, out_channels, 1, use_act=False, use_lab=use_lab, lab_lr=lab_lr)
        self.conv2 = ConvBNAct(out_channels, out_channels, kernel_size, groups=out_channels, use_lab=use_lab,
                               lab_lr=lab_lr)

    def forward(self, x: paddle.Tensor) -> paddle.Tensor:
        return self.conv2(self.conv1(x))


class StemBlock(nn.Layer):
    """3×3/2 conv → [2×2 max-pool ‖ 2×2 conv → 2×2 conv] concatenated → 3×3/2 conv → 1×1 conv."""

    def __init__(self, in_channels: int, mid_channels: int, out_channels: int, use_lab: bool = False,
                 lab_lr: float = LAB_LR) -> None:
        super().__init__()
        lab = dict(use_lab=use_lab, lab_lr=lab_lr)
        self.stem1 = ConvBNAct(in_channels, mid_channels, 3, 2, **lab)
        self.stem2a = ConvBNAct(mid_channels, mid_channels // 2, 2, padding="same", **lab)
        self.stem2b = ConvBNAct(mid_channels // 2, mid_channels, 2, padding="same", **lab)
        self.stem3 = ConvBNAct(mid_channels * 2, mid_channels, 3, 2, **lab)
        self.stem4 = ConvBNAct(mid_channels, out_channels, 1, **lab)
        # Paddle's SAME max-pool: the bottom/right padding never wins the max
        self.pool = nn.MaxPool2D(2, 1, padding="SAME", ceil_mode=True)

    def forward(self, x: paddle.Tensor) -> paddle.Tensor:
        x = self.stem1(x)
        x = paddle.concat([self.pool(x), self.stem2b(self.stem2a(x))], axis=1)
        return self.stem4(self.stem3(x))


class HGV2Block(nn.Layer):
    """``layer_num`` chained convs (full k×k + ReLU, or light); the input and every output
    concatenated → 1×1 squeeze to ``out/2`` → 1×1 excitation to ``out`` [+ input]."""

    def __init__(self, in_channels: int, mid_channels: int, out_channels: int, kernel_size: int, layer_num: int,
                 identity: bool, light_block: bool, use_lab: bool = False, lab_lr: float = LAB_LR) -> None:
        super().__init__()
        self.identity = identity
        lab = dict(use_lab=use_lab, lab_lr=lab_lr)
        layers = []
        for i in range(layer_num):
            c = in_channels if i == 0 else mid_channels
            layers.append(LightConvBNAct(c, mid_channels, kernel_size, **lab) if light_block
                          else ConvBNAct(c, mid_channels, kernel_size, **lab))
        self.layers = nn.LayerList(layers)
        total = in_channels + layer_num * mid_channels
        self.aggregation_squeeze_conv = ConvBNAct(total, out_channels // 2, 1, **lab)
        self.aggregation_excitation_conv = ConvBNAct(out_channels // 2, out_channels, 1, **lab)

    def forward(self, x: paddle.Tensor) -> paddle.Tensor:
        outs = [x]
        for layer in self.layers:
            outs.append(layer(outs[-1]))
        y = self.aggregation_excitation_conv(self.aggregation_squeeze_conv(paddle.concat(outs, axis=1)))
        return y + x if self.identity else y

    def block_paths(self) -> BlockPaths:
        # drawn as a chain: the concatenation of the input and every layer's output feeds the squeeze conv
        convs = [c for layer in self.layers for c in ([layer.conv1, layer.conv2] if isinstance(layer, LightConvBNAct)
                                                      else [layer])]
        main = convs + [self.aggregation_squeeze_conv, self.aggregation_excitation_conv]
        title = "HG block" + (" (light)" if isinstance(self.layers[0], LightConvBNAct) else "")
        return BlockPaths(title, [[], main], "add") if self.identity else BlockPaths(title, [main])


class HGV2Stage(nn.Layer):
    """[3×3/2 depthwise conv + BN] → ``block_num`` HG blocks (all but the first residual)."""

    def __init__(self, in_channels: int, mid_channels: int, out_channels: int, block_num: int, downsample: bool,
                 light_block: bool, kernel_size: int, layer_num: int, use_lab: bool = False,
                 lab_lr: float = LAB_LR) -> None:
        super().__init__()
        lab = dict(use_lab=use_lab, lab_lr=lab_lr)
        self.downsample = ConvBNAct(in_channels, in_channels, 3, 2, groups=in_channels, use_act=False, **lab) \
            if downsample else None
        self.blocks = nn.Sequential(*[
            HGV2Block(in_channels if i == 0 else out_channels, mid_channels, out_channels, kernel_size, layer_num,
                      i > 0, light_block, **lab) for i in range(block_num)])

    def forward(self, x: paddle.Tensor) -> paddle.Tensor:
        if self.downsample is not None:
            x = self.downsample(x)
        return self.blocks(x)


class PPHGNetV2(ClassificationModel):
    """PP-HGNetV2, variant ``B0`` … ``B6`` (:data:`ARCHS`).

    Args:
        variant: the table row (``"B0"`` … ``"B6"``).
        class_num: number of classes.
        use_lab: learnable affine blocks after every activation (PaddleClas: on for B0–B3).
        use_last_conv: the 1×1 conv (+ ReLU [+ LAB] + dropout) after pooling; False: the classifier
            reads the pooled last-stage features.
        class_expand: width of that conv (2048).
        dropout: dropout after it (PaddleClas's ``dropout_prob``; "downscale_in_infer" mode).
        lab_lr: the LABs' learning-rate factor (PaddleClas: 0.01).

    The four stages are PaddleClas's ``stages.0`` … ``stages.3`` (strides 4, 8, 16, 32);
    ``forward_features`` returns the last one's map.
    """

    def __init__(self, variant: str = "B0", class_num: int = 1000, use_lab: bool = False,
                 use_last_conv: bool = True, class_expand: int = CLASS_EXPAND, dropout: float = 0.0,
                 lab_lr: float = LAB_LR) -> None:
        super().__init__()
        if variant not in ARCHS:
            raise ConfigError(f"PPHGNetV2: unknown variant '{variant}'{did_you_mean(variant, ARCHS)}; "
                              f"valid: {', '.join(ARCHS)}")
        (stem_mid, stem_out), _, stages = ARCHS[variant]
        self.variant, self.use_lab = variant, use_lab
        self.stem = StemBlock(3, stem_mid, stem_out, use_lab, lab_lr)
        self.stem_modules = ("stem",)
        self.stages = nn.LayerList([HGV2Stage(*row, use_lab=use_lab, lab_lr=lab_lr) for row in stages])
        reduction = 4
        for i, (_, _, out, _, downsample, *_rest) in enumerate(stages):
            reduction *= 2 if downsample else 1
            self.add_stage(f"stages.{i}", out, reduction)
        out = stages[-1][2]
        if not use_last_conv:
            self.init_head(out, class_num, classifier="fc")
            return
        self.last_conv = nn.Conv2D(out, class_expand, 1, bias_attr=False)
        self.lab = LearnableAffineBlock(lab_lr) if use_lab else None
        self.init_head(out, class_num, classifier="fc", hidden="last_conv", hidden_size=class_expand,
                       hidden_act="relu", hidden_post="lab" if use_lab else None, dropout=dropout,
                       dropout_mode="downscale_in_infer")


_TIMM_KEYS = ((re.compile(r"\.aggregation\.0\."), ".aggregation_squeeze_conv."),
              (re.compile(r"\.aggregation\.1\."), ".aggregation_excitation_conv."),
              (re.compile(r"^head\.last_conv\.0\."), "last_conv."),
              (re.compile(r"^head\.last_conv\.2\."), "lab."),
              (re.compile(r"^head\.fc\."), "fc."))


def from_timm(state_dict: Dict[str, Any]) -> Dict[str, Any]:
    """timm's ``hgnetv2_*`` keys → PaddleClas's: the aggregation ``Sequential`` to its two named
    convs, the head's ``last_conv`` ``Sequential`` (conv, ReLU, LAB) to ``last_conv`` and ``lab``."""
    out = {}
    for key, value in state_dict.items():
        for pattern, repl in _TIMM_KEYS:
            key = pattern.sub(repl, key)
        out[key] = value
    return out


#: timm's names registered as this exact model (tests/test_timm_reference.py). Every hgnetv2_b* converts
#: (convert_timm_state_dict("PPHGNetV2_B0", sd)), but timm's b0–b3 are not PaddleClas's model: timm
#: zero-pads the stem's max-pool where Paddle's SAME pooling ignores the padding, and after a LAB the
#: pooled map can be negative, so the border differs (tests/test_pp_hgnet_v2.py). b5 and b6 are this
#: model, but on the reference's stand-in weights float32 rounding alone moves their logits by more
#: than the reference test's tolerance (ppnets float32 vs float64: 2.2e-4 / 2.8e-3; timm's float32
#: logits vs ppnets float64: 4.4e-4 / 6.2e-3; tolerance 3.5e-4 / 4.4e-4).
TIMM_EXACT = ("B4",)
_PAPER = "PP-HGNetV2, PaddleClas's High Performance GPU Net v2 (no paper)"
for _variant, (_, _lab, _) in ARCHS.items():
    register_model(f"PPHGNetV2_{_variant}", PPHGNetV2, family="PPHGNetV2", input_size=224,
                   paper=_PAPER, year=2023, paddleclas=True,
                   timm=(f"hgnetv2_{_variant.lower()}",) if _variant in TIMM_EXACT else (), from_timm=from_timm,
                   variant=_variant, use_lab=_lab)
