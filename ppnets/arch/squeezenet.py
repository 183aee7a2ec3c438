"""SqueezeNet — Iandola et al., "SqueezeNet: AlexNet-level accuracy with 50x fewer parameters and
<0.5MB model size", 2016 (arXiv:1602.07360), versions 1.0 (the paper's) and 1.1 (DeepScale's release:
3×3 stem, earlier pooling, 2.4× less compute).

No batch norm anywhere: every convolution has a bias and a ReLU. Layer names follow PaddleClas
(``_conv`` stem, fire modules ``_conv1`` … ``_conv8`` with ``_conv`` squeeze and ``_conv_path1`` /
``_conv_path2`` expand convs, ``_conv9`` classifier) so its pretrained ``.pdparams`` load unchanged.
"""
from __future__ import annotations

from typing import Dict, Tuple

import paddle
import paddle.nn as nn
import paddle.nn.functional as F

from ..errors import ConfigError, did_you_mean
from .base import ClassificationModel
from .blocks import BlockPaths
from .layers import LEGACY_NAMES, ConvBNLayer, FastConv2D
from .registry import register_model

#: Fire modules fire2 … fire9 (paper Table 1): (squeeze 1×1, expand 1×1 = expand 3×3) channels.
FIRES: Tuple[Tuple[int, int], ...] = ((16, 64), (16, 64), (32, 128), (32, 128),
                                      (48, 192), (48, 192), (64, 256), (64, 256))

#: Per version: stem (channels, kernel, padding; stride 2) and the fire modules (1-based) followed
#: by a 3×3/2 max-pool (there is always one right after the stem).
VERSIONS: Dict[str, Dict[str, Tuple[int, ...]]] = {
    "1.0": {"stem": (96, 7, 0), "pool_after": (3, 7)},
    "1.1": {"stem": (64, 3, 1), "pool_after": (2, 4)},
}

class MaxPool3x3(nn.Layer):
    """3×3 stride-2 max-pool without padding (PaddleClas: floor mode; Caffe/torchvision: ceil mode).

    A map smaller than the 3×3 window (SqueezeNet 1.0 below ~64 px input) is padded with -inf on
    the bottom/right up to the window, so the pool still yields one output instead of an empty map.
    """

    def __init__(self, ceil_mode: bool = False) -> None:
        super().__init__()
        self.ceil_mode = ceil_mode

    def forward(self, x: paddle.Tensor) -> paddle.Tensor:
        h, w = x.shape[-2:]
        if 0 <= h < 3 or 0 <= w < 3:  # (-1 = unknown size when traced with a dynamic shape)
            x = F.pad(x, [0, max(3 - w, 0), 0, max(3 - h, 0)], value=float("-inf"), data_format="NCHW")
        return F.max_pool2d(x, kernel_size=3, stride=2, padding=0, ceil_mode=self.ceil_mode)

    def extra_repr(self) -> str:
        return f"kernel_size=3, stride=2, ceil_mode={self.ceil_mode}"


def _conv_relu(in_c: int, out_c: int, k: int) -> ConvBNLayer:
    return ConvBNLayer(in_c, out_c, k, act="relu", bias=True, norm=False, names=LEGACY_NAMES)


class Fire(nn.Layer):
    """Fire module: 1×1 squeeze (ReLU) → [1×1 expand ‖ 3×3 expand] (ReLU each), concatenated."""

    def __init__(self, in_channels: int, squeeze: int, expand: int) -> None:
        super().__init__()
        self._conv = _conv_relu(in_channels, squeeze, 1)
        self._conv_path1 = _conv_relu(squeeze, expand, 1)
        self._conv_path2 = _conv_relu(squeeze, expand, 3)
        self.out_channels = 2 * expand

    def forward(self, x: paddle.Tensor) -> paddle.Tensor:
        x = self._conv(x)
        return paddle.concat([self._conv_path1(x), self._conv_path2(x)], axis=1)

    def block_paths(self) -> BlockPaths:
        return BlockPaths("Fire", [[self._conv_path1], [self._conv_path2]], "concat", pre=[self._conv])


class SqueezeNet(ClassificationModel):
    """SqueezeNet 1.0 / 1.1.

    Args:
        version: ``"1.0"`` (paper: 7×7/2 stem with 96 channels, pools after fire4 and fire8) or
            ``"1.1"`` (3×3/2 stem with 64 channels, pools after fire3 and fire5).
        class_num: number of classes.
        dropout: dropout before the classifier conv (paper and PaddleClas: 0.5). As in PaddleClas
            it is "downscale in infer": kept units are not rescaled in training, outputs are
            multiplied by ``1 - dropout`` in eval, so PaddleClas weights give the same logits.
        ceil_mode: round max-pool output sizes up, as the original Caffe model (and torchvision)
            do; the default rounds down like PaddleClas. Version 1.0 at 224 px: 777.2M MACs
            (PaddleClas) vs 818.9M with ``ceil_mode=True`` (= Caffe/torchvision). (Caffe's 1.1 stem
            also has no padding, PaddleClas's has 1; this model follows PaddleClas.)
    """

    def __init__(self, version: str = "1.0", class_num: int = 1000, dropout: float = 0.5,
                 ceil_mode: bool = False) -> None:
        super().__init__()
        if version not in VERSIONS:
            raise ConfigError(f"SqueezeNet: unknown version '{version}'{did_you_mean(version, VERSIONS)}; "
                              f"valid: {', '.join(VERSIONS)}")
        self.version = version
        stem_c, k, pad = VERSIONS[version]["stem"]
        pool_after = VERSIONS[version]["pool_after"]
        self._conv = FastConv2D(3, stem_c, k, stride=2, padding=pad)
        self._relu = nn.ReLU()
        self._pool = MaxPool3x3(ceil_mode)
        self.stem_modules = ("_conv", "_relu", "_pool")
        stage, in_c, reduction = [], stem_c, 4
        for i, (squeeze, expand) in enumerate(FIRES, start=1):
            fire = self.add_sublayer(f"_conv{i}", Fire(in_c, squeeze, expand))
            stage.append(f"_conv{i}")
            in_c = fire.out_channels
            if i in pool_after or i == len(FIRES):  # a stage ends at each max-pool, which starts the next
                self.add_stage(stage, in_c, reduction)
                stage, reduction = ["_pool"], reduction * 2
        # the classifier is the 1×1 conv "_conv9" (the paper's conv10) + ReLU, before the global pool
        self.init_head(in_c, class_num, classifier=f"_conv{len(FIRES) + 1}", conv_classifier=True,
                       classifier_act="relu", dropout=dropout, dropout_mode="downscale_in_infer")


_PAPER = ("SqueezeNet: AlexNet-level accuracy with 50x fewer parameters and <0.5MB model size "
          "(Iandola et al., arXiv:1602.07360)")
for _version in VERSIONS:
    register_model(f"SqueezeNet{_version.replace('.', '_')}", SqueezeNet, family="SqueezeNet",
                   input_size=224, paper=_PAPER, year=2016, version=_version)
