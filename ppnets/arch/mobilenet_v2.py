"""MobileNetV2 — Sandler et al., "MobileNetV2: Inverted Residuals and Linear Bottlenecks", CVPR 2018
(arXiv:1801.04381).

Layer names follow PaddleClas (``conv1``, ``conv2._first_block._expand_conv`` …,
``conv9``, ``out``) so its pretrained ``.pdparams`` load unchanged.

timm's ``mobilenetv2_*`` is the paper's reference (TF-slim) network: no expansion conv in the t = 1
block (``paper_exact``) and widths ``make_divisible(c * scale, 8)`` (``channel_divisor=8``; PaddleClas
truncates, ``int(c * scale)``: 12 instead of 16 channels at 0.5). The two agree on every width at 1.0.
``MobileNetV2_timm``, ``_x0_5_timm`` and ``_x0_75_timm`` are that network; :func:`from_timm` maps
timm's weights onto it.
"""
from __future__ import annotations

from typing import Any, Dict, Sequence, Tuple

import paddle
import paddle.nn as nn

from .base import ClassificationModel
from .blocks import LEGACY_UNIT_NAMES, InvertedResidualUnit
from .layers import LEGACY_NAMES, conv_bn_legacy, make_divisible
from .registry import register_model
from .timm_keys import timm_blocks, timm_rename, timm_unit_keys

#: The paper's Table 2: (expansion t, output channels c, repeats n, first stride s).
ARCH: Tuple[Tuple[int, int, int, int], ...] = (
    # t,   c,  n, s
    (1, 16, 1, 1),
    (6, 24, 2, 2),
    (6, 32, 3, 2),
    (6, 64, 4, 2),
    (6, 96, 3, 1),
    (6, 160, 3, 2),
    (6, 320, 1, 1),
)


class InvresiBlocks(nn.Layer):
    """One row of the table, a stage: ``n`` inverted residual units (the shared
    :class:`~ppnets.arch.blocks.InvertedResidualUnit`: ReLU6, no SE), the first with stride ``s``.

    Sublayers are ``_first_block`` and ``{name}_2 … {name}_n`` (PaddleClas's keys).
    """

    def __init__(self, in_channels: int, t: int, c: int, n: int, s: int, name: str,
                 expand: bool = True) -> None:
        super().__init__()
        self._first_block = InvertedResidualUnit(in_channels, c, s, t, shortcut=False, expand=expand)
        self._blocks = []
        for i in range(1, n):
            unit = self.add_sublayer(f"{name}_{i + 1}", InvertedResidualUnit(c, c, 1, t, shortcut=True,
                                                                                expand=expand))
            self._blocks.append(unit)

    def forward(self, x: paddle.Tensor) -> paddle.Tensor:
        x = self._first_block(x)
        for unit in self._blocks:
            x = unit(x)
        return x


class MobileNetV2(ClassificationModel):
    """MobileNetV2 with width multiplier ``scale``.

    Args:
        scale: width multiplier applied to every layer; the last 1×1 conv stays 1280
            wide unless ``scale > 1`` (as in the paper and PaddleClas).
        class_num: number of classes.
        dropout: dropout before the classifier (0 = none, PaddleClas's default).
        paper_exact: drop the 1×1 expansion conv of the t = 1 block, as the paper's
            reference does (PaddleClas keeps it; 3,504,872 vs 3,505,960 params at 1.0).
        arch: the block table, by default :data:`ARCH`.
        channel_divisor: 0 for PaddleClas's widths ``int(c * scale)``; 8 for the reference's (and timm's)
            ``make_divisible(c * scale, 8)``, the last conv then ``max(1280, make_divisible(1280 * scale))``.
    """

    def __init__(self, scale: float = 1.0, class_num: int = 1000, dropout: float = 0.0,
                 paper_exact: bool = False, arch: Sequence[Sequence[int]] = ARCH, channel_divisor: int = 0) -> None:
        super().__init__()
        self.scale = scale

        def width(c: int) -> int:
            return make_divisible(c * scale, channel_divisor) if channel_divisor else int(c * scale)

        in_c = width(32)
        self.conv1 = conv_bn_legacy(3, in_c, 3, stride=2, act="relu6")
        self.stem_modules = ("conv1",)
        reduction = 2
        for i, (t, c, n, s) in enumerate(arch):
            name = f"conv{i + 2}"
            self.add_sublayer(name, InvresiBlocks(in_c, t, width(c), n, s, name,
                                                  expand=not (paper_exact and t == 1)))
            in_c, reduction = width(c), reduction * s
            self.add_stage(name, in_c, reduction)
        if channel_divisor:
            last = max(1280, width(1280))
        else:
            last = int(1280 * scale) if scale > 1.0 else 1280
        head = f"conv{len(arch) + 2}"  # "conv9" in PaddleClas's keys
        self.add_sublayer(head, conv_bn_legacy(in_c, last, 1, act="relu6"))
        self.neck_modules = (head,)
        self.init_head(last, class_num, classifier="out", dropout=dropout)


_TIMM_REST = {"conv_stem.": "conv1._conv.", "bn1.": "conv1._batch_norm.", "conv_head.": "conv9._conv.",
              "bn2.": "conv9._batch_norm.", "classifier.": "out."}


def from_timm(state_dict: Dict[str, Any]) -> Dict[str, Any]:
    """timm's ``mobilenetv2_*`` keys → PaddleClas's: ``conv_stem``/``bn1`` → ``conv1``, timm's stage ``s``
    block ``i`` → ``conv{s+2}._first_block`` (i = 0) or ``conv{s+2}.conv{s+2}_{i+1}``, with each conv and
    BatchNorm as ``_conv`` / ``_batch_norm`` in ``_expand_conv`` / ``_bottleneck_conv`` / ``_linear_conv``
    (the t = 1 block is timm's separable ``conv_dw`` → ``conv_pw``), ``conv_head``/``bn2`` → ``conv9``,
    ``classifier`` → ``out``."""
    blocks, rest = timm_blocks(state_dict)
    out = timm_rename(rest, _TIMM_REST)
    for (s, i), block in blocks:
        prefix = f"conv{s + 2}._first_block." if i == 0 else f"conv{s + 2}.conv{s + 2}_{i + 1}."
        out.update(timm_unit_keys((s, i), block, prefix, LEGACY_UNIT_NAMES, LEGACY_NAMES))
    return out


_PAPER = "MobileNetV2: Inverted Residuals and Linear Bottlenecks (Sandler et al., arXiv:1801.04381)"
for _suffix, _scale in (("_x0_25", 0.25), ("_x0_5", 0.5), ("_x0_75", 0.75), ("", 1.0), ("_x1_5", 1.5),
                        ("_x2_0", 2.0)):
    register_model(f"MobileNetV2{_suffix}", MobileNetV2, family="MobileNetV2", input_size=224,
                   paper=_PAPER, year=2018, scale=_scale)
for _suffix, _scale in (("_x0_5", 0.5), ("_x0_75", 0.75), ("", 1.0)):
    register_model(f"MobileNetV2{_suffix}_timm", MobileNetV2, family="MobileNetV2", input_size=224, paper=_PAPER,
                   year=2018, paddleclas=False, timm=(f"mobilenetv2_{round(_scale * 100):03d}",),
                   from_timm=from_timm, scale=_scale, paper_exact=True, channel_divisor=8)
