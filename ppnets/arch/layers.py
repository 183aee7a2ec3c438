"""Building blocks shared by every model family.

Each family file (``mobilenet_v2.py``, ``efficientnet.py`` …) composes these; none
re-implements them. The attribute names of sublayers are configurable where
PaddleClas's families disagree (``conv``/``bn`` vs ``_conv``/``_batch_norm``), so
that each family's ``state_dict`` matches PaddleClas key for key.
"""
from __future__ import annotations

from typing import Optional, Sequence, Tuple, Union

import paddle
import paddle.nn as nn
import paddle.nn.functional as F

from ..errors import ConfigError, did_you_mean
from . import backend, onednn
from .unfold import depthwise_conv_unfold

__all__ = [
    "ACTIVATIONS", "make_act", "make_divisible", "ConvBNLayer", "LEGACY_NAMES", "conv_bn_legacy",
    "FastConv2D", "DepthwiseConv2D", "depthwise_conv_unfold", "conv2d_class", "use_fast_convs",
    "SqueezeExcite", "DropPath",
    "channel_shuffle",
]


class HardSigmoidPC(nn.Layer):
    """PaddleClas's MobileNetV3 SE gate: ``clip(0.2 x + 0.5, 0, 1)`` (the paper's is ``x / 6 + 0.5``)."""

    def forward(self, x: paddle.Tensor) -> paddle.Tensor:
        return F.hardsigmoid(x, slope=0.2, offset=0.5)


class Clip01(nn.Layer):
    """``clip(x, 0, 1)``, PaddleClas GhostNet's SE gate (``paddle.clip``: ``nn.Hardtanh(0, 1)``
    computes the same, but paddle2onnx 2.1 converts its bounds wrongly)."""

    def forward(self, x: paddle.Tensor) -> paddle.Tensor:
        return paddle.clip(x, 0.0, 1.0)


#: Activation name → layer factory. ``None`` or ``"linear"`` means no activation.
ACTIVATIONS = {
    "relu": nn.ReLU,
    "relu6": nn.ReLU6,
    "hardswish": nn.Hardswish,
    "hardsigmoid": nn.Hardsigmoid,             # x/6 + 0.5 (the paper's h-sigmoid)
    "hardsigmoid_pc": HardSigmoidPC,  # 0.2 x + 0.5 (PaddleClas MobileNetV3 SE)
    "swish": nn.Swish,
    "silu": nn.Silu,
    "sigmoid": nn.Sigmoid,
    "leaky_relu": nn.LeakyReLU,
    "hardclip": Clip01,                                    # clip(x, 0, 1) (PaddleClas GhostNet SE)
    "gelu": nn.GELU,                                       # exact (erf) GELU (MobileNetV4 hybrid_large)
}


def make_act(name: Optional[str]) -> nn.Layer:
    """Return the activation layer called ``name`` (``None``/``"linear"`` → Identity)."""
    if name is None or name == "linear":
        return nn.Identity()
    if name not in ACTIVATIONS:
        raise ConfigError(f"unknown activation '{name}'{did_you_mean(name, ACTIVATIONS)}; "
                          f"valid: {', '.join(sorted(ACTIVATIONS))}")
    return ACTIVATIONS[name]()


def make_divisible(value: float, divisor: int = 8, min_value: Optional[int] = None,
                   round_limit: float = 0.9) -> int:
    """Round ``value`` to the nearest multiple of ``divisor`` without losing more than 10 %.

    This is the rule of the MobileNet/EfficientNet reference code (``_make_divisible``).
    """
    min_value = min_value or divisor
    new_value = max(min_value, int(value + divisor / 2) // divisor * divisor)
    if new_value < round_limit * value:
        new_value += divisor
    return new_value


def _pair(v: Union[int, Sequence[int]]) -> Tuple[int, int]:
    return (v, v) if isinstance(v, int) else (int(v[0]), int(v[1]))


class SamePad2D(nn.Layer):
    """TensorFlow 'SAME' padding: pad so that ``out = ceil(in / stride)``, extra on the bottom/right.

    Needed by weights trained in TensorFlow (EfficientNet): symmetric padding shifts
    every strided convolution by one pixel.
    """

    def __init__(self, kernel_size: Union[int, Sequence[int]], stride: Union[int, Sequence[int]] = 1,
                 dilation: int = 1) -> None:
        super().__init__()
        self.kernel_size, self.stride, self.dilation = _pair(kernel_size), _pair(stride), dilation

    def forward(self, x: paddle.Tensor) -> paddle.Tensor:
        ih, iw = x.shape[-2:]
        pads = []
        for size, k, s in ((iw, self.kernel_size[1], self.stride[1]), (ih, self.kernel_size[0], self.stride[0])):
            out = -(-size // s)
            total = max((out - 1) * s + (k - 1) * self.dilation + 1 - size, 0)
            pads += [total // 2, total - total // 2]
        if not any(pads):
            return x
        return F.pad(x, pads, data_format="NCHW")  # [left, right, top, bottom]


class FastConv2D(nn.Conv2D):
    """``nn.Conv2D`` whose dynamic-mode passes can run on oneDNN (:mod:`ppnets.arch.backend`).

    Parameters, ``state_dict`` and exported programs are those of ``nn.Conv2D``, and so is
    its behaviour outside ``backend.use("onednn")``. Within it, for float32 NCHW input on
    the CPU outside AMP autocast, with symmetric padding and no dilation, the convolution
    and its gradients run on oneDNN's JIT kernels instead of Paddle's dynamic-graph CPU
    kernels (im2col + GEMM per sample and group); results agree within float32 rounding.
    """

    def forward(self, x: paddle.Tensor) -> paddle.Tensor:
        pad = self._pad_pair() if backend.onednn_active() else None
        out = None
        if pad is not None:
            out = onednn.conv2d(x, self.weight, self._stride, pad, self._groups) if self._use_onednn(x) \
                else self._fallback(x, pad)
        if out is None:
            return nn.Conv2D.forward(self, x)
        return out if self.bias is None else out + self.bias.reshape([1, -1, 1, 1])

    def _fallback(self, x: paddle.Tensor, pad: Tuple[int, int]) -> Optional[paddle.Tensor]:
        """Another fast path where oneDNN is not used (None: Paddle's kernel)."""
        return None

    def _use_onednn(self, x: paddle.Tensor) -> bool:
        # (a wrong channel count goes to Paddle's kernel, whose error names the shapes)
        return (paddle.in_dynamic_mode() and x.ndim == 4 and x.place.is_cpu_place()
                and x.shape[1] == self._in_channels
                and x.dtype == paddle.float32 and self.weight.dtype == paddle.float32
                and not paddle.is_autocast_enabled() and min(x.shape) > 0 and onednn.available())

    def _pad_pair(self) -> Optional[Tuple[int, int]]:
        """Symmetric (pad_h, pad_w) when the fast paths apply (NCHW, no dilation), else None."""
        if self._data_format != "NCHW" or list(self._dilation) != [1, 1] or self._padding_mode != "zeros":
            return None
        p = self._padding
        if isinstance(p, int):
            return p, p
        if isinstance(p, (list, tuple)) and len(p) == 2 and all(isinstance(v, int) for v in p):
            return int(p[0]), int(p[1])
        return None


class DepthwiseConv2D(FastConv2D):
    """``nn.Conv2D`` with ``groups == in_channels == out_channels``: the convolution where
    Paddle's CPU kernel is slowest (``N × C`` matrix products of one row each).

    Uses oneDNN's depthwise kernels like :class:`FastConv2D`. Within ``backend.use("onednn")``
    where oneDNN itself does not run (a traced ``to_static`` training program, AMP), outputs
    of at most :attr:`UNFOLD_MAX_PIXELS` pixels (the 8×8 … 1×1 maps at the end of a network
    on a small input) go through :func:`depthwise_conv_unfold`, 1–8× faster than Paddle's
    kernel there. Exported inference programs keep the native op.
    """

    UNFOLD_MAX_PIXELS = 64

    def _fallback(self, x: paddle.Tensor, pad: Tuple[int, int]) -> Optional[paddle.Tensor]:
        # training (dynamic or to_static) and dynamic eval; exported inference programs keep the native op
        if (self._in_channels == self._out_channels == x.shape[1] and (self.training or paddle.in_dynamic_mode())
                and paddle.get_device() == "cpu" and x.shape[2] > 0 and x.shape[3] > 0
                and self._out_pixels(x.shape[2], x.shape[3], pad) <= self.UNFOLD_MAX_PIXELS):
            return depthwise_conv_unfold(x, self.weight, self._stride, pad)
        return None

    def _out_pixels(self, h: int, w: int, pad: Tuple[int, int]) -> int:
        kh, kw = self._kernel_size
        oh = (h + 2 * pad[0] - kh) // self._stride[0] + 1
        ow = (w + 2 * pad[1] - kw) // self._stride[1] + 1
        return oh * ow


def conv2d_class(in_channels: int, out_channels: int, groups: int) -> type:
    """The fast-path class for a convolution of this shape: :class:`DepthwiseConv2D` when it is
    depthwise (``groups == in == out > 1``), else :class:`FastConv2D`."""
    return DepthwiseConv2D if groups == in_channels == out_channels and groups > 1 else FastConv2D


def use_fast_convs(model: nn.Layer) -> int:
    """Put every plain ``nn.Conv2D`` of ``model`` on ppnets's fast CPU path, in place: its class becomes
    :func:`conv2d_class`'s (a subclass with the same parameters, ``state_dict`` and exported op).
    Returns how many were switched. :class:`~ppnets.arch.base.ClassificationModel` calls it on every
    model it finishes, so a family may build its convolutions however it likes."""
    switched = 0
    for layer in model.sublayers(include_self=True):
        if type(layer) is nn.Conv2D:
            layer.__class__ = conv2d_class(layer._in_channels, layer._out_channels, layer._groups)
            switched += 1
    return switched


class ConvBNLayer(nn.Layer):
    """Conv2D → BatchNorm → activation, the unit of every network here.

    Args:
        in_channels, out_channels, kernel_size, stride, groups: as ``nn.Conv2D``.
        padding: explicit padding; default ``(kernel_size - 1) // 2`` ("half"), or
            ``"same"`` for TensorFlow-style asymmetric SAME padding.
        act: activation name (see :data:`ACTIVATIONS`) or None.
        bias: give the convolution a bias (only used without BN, e.g. SqueezeNet).
        norm: add the BatchNorm (``False`` for SqueezeNet's plain convolutions).
        names: attribute names of the conv and BN sublayers, which fix the
            ``state_dict`` keys, e.g. ``("conv", "bn")`` or ``("_conv", "_batch_norm")``.
        bn_momentum, bn_epsilon: BatchNorm hyper-parameters (Paddle convention:
            momentum is the weight of the running average, 0.9 by default).
    """

    def __init__(self, in_channels: int, out_channels: int, kernel_size: Union[int, Sequence[int]] = 1,
                 stride: Union[int, Sequence[int]] = 1, padding: Union[None, int, str] = None,
                 groups: int = 1, act: Optional[str] = None, bias: bool = False, norm: bool = True,
                 names: Tuple[str, str] = ("conv", "bn"), bn_momentum: float = 0.9,
                 bn_epsilon: float = 1e-5) -> None:
        super().__init__()
        k = _pair(kernel_size)
        self.same_pad: Optional[nn.Layer] = None
        if padding == "same":
            self.same_pad = SamePad2D(k, stride)
            padding = 0
        elif padding is None:
            padding = ((k[0] - 1) // 2, (k[1] - 1) // 2)
        self.conv_name, self.bn_name = names
        self.has_norm = norm
        conv_cls = conv2d_class(in_channels, out_channels, groups)
        setattr(self, self.conv_name, conv_cls(in_channels, out_channels, k, stride=stride, padding=padding,
                                               groups=groups, bias_attr=None if bias else False))
        if norm:
            setattr(self, self.bn_name, nn.BatchNorm2D(out_channels, momentum=bn_momentum, epsilon=bn_epsilon))
        self.act = make_act(act)

    @property
    def conv_layer(self) -> nn.Conv2D:
        return getattr(self, self.conv_name)

    @property
    def bn_layer(self) -> Optional[nn.BatchNorm2D]:
        return getattr(self, self.bn_name) if self.has_norm else None

    def forward(self, x: paddle.Tensor) -> paddle.Tensor:
        if self.same_pad is not None:
            x = self.same_pad(x)
        x = self.conv_layer(x)
        if self.has_norm:
            x = self.bn_layer(x)
        return self.act(x)


#: PaddleClas's ConvBNLayer attribute names in its older families (MobileNetV2, ShuffleNetV2,
#: SqueezeNet), i.e. the ``names`` that give their ``state_dict`` keys ``…._conv.weight`` etc.
LEGACY_NAMES: Tuple[str, str] = ("_conv", "_batch_norm")


def conv_bn_legacy(in_c: int, out_c: int, k: int, stride: int = 1, groups: int = 1,
                   act: Optional[str] = None) -> ConvBNLayer:
    """:class:`ConvBNLayer` (half padding, no bias) with :data:`LEGACY_NAMES`."""
    return ConvBNLayer(in_c, out_c, k, stride, groups=groups, act=act, names=LEGACY_NAMES)


class SqueezeExcite(nn.Layer):
    """Squeeze-and-excitation: global pool → 1×1 reduce → act → 1×1 expand → gate → scale.

    Args:
        channels: input (and output) channels.
        reduced_channels: bottleneck width (each family has its own rounding rule).
        act: activation after the reduction ("relu" for MobileNetV3, "swish" for EfficientNet).
        gate: gating activation ("hardsigmoid_pc" for PaddleClas MobileNetV3, "sigmoid" for EfficientNet).
        names: attribute names of the two convolutions.
        linear: reduce and expand with ``nn.Linear`` on the pooled vector instead of 1×1
            convolutions (the same computation; PaddleClas's GhostNet stores them so).
    """

    def __init__(self, channels: int, reduced_channels: int, act: str = "relu",
                 gate: str = "sigmoid", names: Tuple[str, str] = ("conv1", "conv2"), linear: bool = False) -> None:
        super().__init__()
        self.avg_pool = nn.AdaptiveAvgPool2D(1)
        self.names, self.linear = names, linear
        make = nn.Linear if linear else (lambda i, o: nn.Conv2D(i, o, 1))
        setattr(self, names[0], make(channels, reduced_channels))
        setattr(self, names[1], make(reduced_channels, channels))
        self.act = make_act(act)
        self.gate = make_act(gate)

    def forward(self, x: paddle.Tensor) -> paddle.Tensor:
        s = self.avg_pool(x)
        if self.linear:
            s = paddle.flatten(s, 1)
        s = self.act(getattr(self, self.names[0])(s))
        s = self.gate(getattr(self, self.names[1])(s))
        if self.linear:
            s = s.unsqueeze([2, 3])
        return x * s


class DropPath(nn.Layer):
    """Stochastic depth: drop the residual branch of whole samples with probability ``p``.

    Kept samples are scaled by ``1 / (1 - p)`` so the expectation is unchanged
    (EfficientNet's "drop connect"). Identity in eval mode or when ``p == 0``.
    """

    def __init__(self, p: float = 0.0) -> None:
        super().__init__()
        self.p = float(p)

    def forward(self, x: paddle.Tensor) -> paddle.Tensor:
        if not self.training or self.p == 0.0:
            return x
        keep = 1.0 - self.p
        shape = [x.shape[0]] + [1] * (x.ndim - 1)
        mask = paddle.floor(keep + paddle.rand(shape, dtype=x.dtype))
        return x / keep * mask

    def extra_repr(self) -> str:
        return f"p={self.p}"


def channel_shuffle(x: paddle.Tensor, groups: int) -> paddle.Tensor:
    """ShuffleNet's channel shuffle: (N, g·c, H, W) → transpose the (g, c) axes → (N, c·g, H, W)."""
    n, c, h, w = x.shape
    x = paddle.reshape(x, [n, groups, c // groups, h, w])
    x = paddle.transpose(x, [0, 2, 1, 3, 4])
    return paddle.reshape(x, [n, c, h, w])
