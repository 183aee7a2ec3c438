"""PP-LCNet — Cui et al., "PP-LCNet: A Lightweight CPU Convolutional Neural Network", 2021
(arXiv:2109.15099).

PaddleClas's network designed for Intel CPUs with MKLDNN: a 3×3 stride-2 stem and 13
depthwise-separable blocks (k×k depthwise → BN → h-swish, 1×1 pointwise → BN → h-swish)
in five stages, 5×5 kernels and squeeze-excite only near the end (the paper's finding
that SE and large kernels pay off only in the late, low-resolution layers), then global
pooling and a BN-free 1×1 "last conv" to 1280 channels with h-swish and dropout *after*
the pooling (a wide head at almost no latency cost), and the linear classifier.

The layout is PaddleClas's (keys ``conv1``, ``blocks2.0.dw_conv``, ``blocks6.0.se.conv1``,
``last_conv``, ``fc``), so its pretrained ``.pdparams`` load unchanged. Widths are
``make_divisible(c * scale, 8)``; the last conv stays 1280 wide at every scale.

timm's ``lcnet_*`` is the same network but for the head: its last conv has a bias, and its
dropout is the usual inverted one (PaddleClas's "downscale_in_infer" dropout scales the features
by ``1 - p`` at inference, which its weights expect). ``PPLCNet_x*_timm`` (``head_bias=True``,
``dropout_mode="upscale_in_train"``) is timm's; :func:`from_timm` maps its keys.
"""
from __future__ import annotations

from typing import Any, Dict, Tuple

import paddle
import paddle.nn as nn

from .base import ClassificationModel
from .blocks import BlockPaths
from .layers import ConvBNLayer, SqueezeExcite, make_divisible
from .registry import register_model
from .timm_keys import rename_key, timm_blocks

__all__ = ["ARCH", "PPLCNet", "LCNetBlock"]

#: Paper Table 1 (PaddleClas's ``NET_CONFIG``), one depthwise-separable block per row, grouped
#: in the stages ``blocks2`` … ``blocks6`` after the 16-channel 3×3/2 stem. k: depthwise kernel,
#: in/out: channels before scaling, s: depthwise stride, se: squeeze-excite after the depthwise conv.
ARCH: Dict[str, Tuple[Tuple[int, int, int, int, bool], ...]] = {
    #           k,  in,  out, s,  se
    "blocks2": ((3, 16, 32, 1, False),),
    "blocks3": ((3, 32, 64, 2, False),
                (3, 64, 64, 1, False)),
    "blocks4": ((3, 64, 128, 2, False),
                (3, 128, 128, 1, False)),
    "blocks5": ((3, 128, 256, 2, False),
                (5, 256, 256, 1, False),
                (5, 256, 256, 1, False),
                (5, 256, 256, 1, False),
                (5, 256, 256, 1, False),
                (5, 256, 256, 1, False)),
    "blocks6": ((5, 256, 512, 2, True),
                (5, 512, 512, 1, True)),
}
STEM_CHANNELS = 16
CLASS_EXPAND = 1280   # the 1×1 conv after pooling (not scaled)


class LCNetBlock(nn.Layer):
    """k×k depthwise (stride ``stride``) → BN → act → [SE] → 1×1 pointwise → BN → act.

    The SE module is PaddleClas's: plain ``channels // 4`` bottleneck, ReLU, and the
    h-sigmoid gate ``clip(x / 6 + 0.5, 0, 1)``.
    """

    def __init__(self, in_channels: int, out_channels: int, kernel_size: int, stride: int,
                 use_se: bool, act: str = "hardswish") -> None:
        super().__init__()
        self.dw_conv = ConvBNLayer(in_channels, in_channels, kernel_size, stride, groups=in_channels, act=act)
        self.se = SqueezeExcite(in_channels, in_channels // 4, act="relu", gate="hardsigmoid") if use_se else None
        self.pw_conv = ConvBNLayer(in_channels, out_channels, 1, act=act)

    def forward(self, x: paddle.Tensor) -> paddle.Tensor:
        x = self.dw_conv(x)
        if self.se is not None:
            x = self.se(x)
        return self.pw_conv(x)

    def block_paths(self) -> BlockPaths:
        return BlockPaths("DW-separable", [[m for m in (self.dw_conv, self.se, self.pw_conv) if m is not None]])


class PPLCNet(ClassificationModel):
    """PP-LCNet with width multiplier ``scale``.

    Args:
        scale: width multiplier (0.25 … 2.5 in PaddleClas's zoo).
        class_num: number of classes.
        dropout: dropout after the last conv (PaddleClas: 0.2, "downscale_in_infer" mode,
            i.e. activations are multiplied by ``1 - p`` at inference, as its weights expect).
        class_expand: width of the 1×1 conv after pooling (1280).
        use_last_conv: False drops that conv (and the dropout): the classifier then reads the
            pooled ``blocks6`` features directly (PaddleClas's option for its PULC models).
        act: activation of every conv (PaddleClas: "hardswish").
        head_bias: give the last conv a bias (timm's ``lcnet_*``; PaddleClas's has none).
        dropout_mode: ``nn.Dropout``'s mode of that dropout ("downscale_in_infer": PaddleClas's;
            "upscale_in_train": timm's, the identity at inference).

    The stages are PaddleClas's ``blocks2`` … ``blocks6``; ``forward_features`` returns the
    ``blocks6`` map (``num_features`` = 512·scale channels); the head is pool → [last conv →
    act] → dropout → fc, ``head_hidden_size`` wide.
    """

    def __init__(self, scale: float = 1.0, class_num: int = 1000, dropout: float = 0.2,
                 class_expand: int = CLASS_EXPAND, use_last_conv: bool = True, act: str = "hardswish",
                 head_bias: bool = False, dropout_mode: str = "downscale_in_infer") -> None:
        super().__init__()
        self.scale = scale
        in_c = make_divisible(STEM_CHANNELS * scale)
        self.conv1 = ConvBNLayer(3, in_c, 3, 2, act=act)
        self.stem_modules = ("conv1",)
        reduction = 2
        for stage, rows in ARCH.items():
            blocks = []
            for k, _, out, s, se in rows:
                out = make_divisible(out * scale)
                blocks.append(LCNetBlock(in_c, out, k, s, se, act))
                in_c, reduction = out, reduction * s
            setattr(self, stage, nn.Sequential(*blocks))
            self.add_stage(stage, in_c, reduction)
        if use_last_conv:
            self.last_conv = nn.Conv2D(in_c, class_expand, 1, bias_attr=None if head_bias else False)
            self.init_head(in_c, class_num, classifier="fc", hidden="last_conv", hidden_size=class_expand,
                           hidden_act=act, dropout=dropout, dropout_mode=dropout_mode)
        else:
            self.init_head(in_c, class_num, classifier="fc")


# ---------------------------------------------------------------------------- timm's weights
# timm's LCNet (mobilenetv3.py, ``_gen_lcnet``) holds the 13 blocks in six stages ``blocks.0`` …
# ``blocks.5`` where PaddleClas has five: its stages 3 (2 blocks) and 4 (4 blocks) are ``blocks5``.
_TIMM_STAGES = (("blocks2", 0), ("blocks3", 0), ("blocks4", 0), ("blocks5", 0), ("blocks5", 2), ("blocks6", 0))
_TIMM_OUTER = (("conv_stem.weight", "conv1.conv.weight"), ("bn1.", "conv1.bn."), ("conv_head.", "last_conv."),
               ("classifier.", "fc."))
_TIMM_INNER = (("conv_dw.weight", "dw_conv.conv.weight"), ("bn1.", "dw_conv.bn."),
               ("conv_pw.weight", "pw_conv.conv.weight"), ("bn2.", "pw_conv.bn."),
               ("se.conv_reduce.", "se.conv1."), ("se.conv_expand.", "se.conv2."))


def from_timm(state_dict: Dict[str, Any]) -> Dict[str, Any]:
    """timm's ``lcnet_*`` keys → PaddleClas's (``blocks.<stage>.<i>.conv_dw`` → ``blocks<n>.<j>.dw_conv.conv``
    …, ``conv_head`` → ``last_conv``, ``classifier`` → ``fc``), for the ``PPLCNet_x*_timm`` models."""
    blocks, rest = timm_blocks(state_dict)
    out = {rename_key(key, _TIMM_OUTER): value for key, value in rest.items()}
    for (s, i), keys in blocks:
        stage, first = _TIMM_STAGES[s]
        out.update((f"{stage}.{first + i}.{rename_key(part, _TIMM_INNER)}", value) for part, value in keys.items())
    return out


_PAPER = "PP-LCNet: A Lightweight CPU Convolutional Neural Network (Cui et al., arXiv:2109.15099)"
for _scale in (0.25, 0.35, 0.5, 0.75, 1.0, 1.5, 2.0, 2.5):
    register_model(f"PPLCNet_x{str(_scale).replace('.', '_')}", PPLCNet, family="PPLCNet", input_size=224,
                   paper=_PAPER, year=2021, paddleclas=True, scale=_scale)
# timm's lcnet_035 … lcnet_150 (timm ships weights for 050, 075 and 100)
for _scale in (0.35, 0.5, 0.75, 1.0, 1.5):
    register_model(f"PPLCNet_x{str(_scale).replace('.', '_')}_timm", PPLCNet, family="PPLCNet", input_size=224,
                   paper=_PAPER, year=2021, paddleclas=False, scale=_scale, head_bias=True,
                   dropout_mode="upscale_in_train", timm=(f"lcnet_{round(_scale * 100):03d}",), from_timm=from_timm)
