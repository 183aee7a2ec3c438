"""Cost of one convolution: standard vs depthwise-separable (MobileNetV1 §3.1).

For an ``H×W×C_in`` input, ``C_out`` filters of ``k×k``, stride ``s`` and "same" padding
(output ``H' = ceil(H/s)``, ``W' = ceil(W/s)``):

- standard convolution: ``H'·W'·C_in·C_out·k²`` MACs, ``C_in·C_out·k²`` weights;
- depthwise separable (k×k depthwise, then 1×1 pointwise):
  ``H'·W'·C_in·k² + H'·W'·C_in·C_out`` MACs, ``C_in·k² + C_in·C_out`` weights;
- their ratio is ``1/C_out + 1/k²`` (≈ 1/8 … 1/9 for 3×3 kernels).

Biases and batch norms are not counted (they add ``C_out`` parameters per convolution).
"""
from __future__ import annotations

from dataclasses import dataclass

from ..errors import ConfigError

__all__ = ["ConvCost", "conv_cost", "format_conv_cost"]


@dataclass(frozen=True)
class ConvCost:
    """MACs and weights of a standard and a depthwise-separable convolution of the same shape."""

    height: int
    width: int
    in_channels: int
    out_channels: int
    kernel: int
    stride: int
    out_height: int
    out_width: int
    standard_macs: int
    standard_params: int
    depthwise_macs: int
    pointwise_macs: int
    depthwise_params: int
    pointwise_params: int

    @property
    def separable_macs(self) -> int:
        return self.depthwise_macs + self.pointwise_macs

    @property
    def separable_params(self) -> int:
        return self.depthwise_params + self.pointwise_params

    @property
    def ratio(self) -> float:
        """separable / standard MACs (= 1/C_out + 1/k²)."""
        return self.separable_macs / self.standard_macs


def conv_cost(height: int, width: int, in_channels: int, out_channels: int, kernel: int = 3,
              stride: int = 1) -> ConvCost:
    """Standard vs depthwise-separable convolution cost for one input shape.

    >>> c = conv_cost(56, 56, 16, 32, 3)
    >>> c.standard_macs, c.separable_macs
    (14450688, 2057216)
    """
    for name, v in (("height", height), ("width", width), ("in_channels", in_channels),
                    ("out_channels", out_channels), ("kernel", kernel), ("stride", stride)):
        if not isinstance(v, int) or isinstance(v, bool) or v < 1:
            raise ConfigError(f"conv cost: {name} must be a positive integer, got {v!r}")
    oh, ow = -(-height // stride), -(-width // stride)
    k2 = kernel * kernel
    return ConvCost(height, width, in_channels, out_channels, kernel, stride, oh, ow,
                    standard_macs=oh * ow * in_channels * out_channels * k2,
                    standard_params=in_channels * out_channels * k2,
                    depthwise_macs=oh * ow * in_channels * k2,
                    pointwise_macs=oh * ow * in_channels * out_channels,
                    depthwise_params=in_channels * k2,
                    pointwise_params=in_channels * out_channels)


def format_conv_cost(c: ConvCost) -> str:
    """The comparison as printed by ``tools/analyze_model.py --conv-cost``."""
    k, s = c.kernel, c.stride
    shape = (f"{c.height}×{c.width}×{c.in_channels} → {c.out_height}×{c.out_width}×{c.out_channels}, "
             f"{k}×{k} kernel, stride {s}")
    w = len(f"{c.standard_macs:,}")
    lines = [
        f"Convolution cost for {shape} (MACs = multiply-accumulates, FLOPs = 2 × MACs; no bias)",
        f"  standard conv:        {c.standard_macs:>{w},} MACs = {c.out_height}·{c.out_width}·{c.in_channels}·"
        f"{c.out_channels}·{k}·{k};  {c.standard_params:,} weights",
        f"  depthwise-separable:  {c.separable_macs:>{w},} MACs = {c.depthwise_macs:,} depthwise "
        f"({k}·{k}·{c.in_channels}·{c.out_height}·{c.out_width}) + {c.pointwise_macs:,} pointwise "
        f"({c.in_channels}·{c.out_channels}·{c.out_height}·{c.out_width});  "
        f"{c.separable_params:,} weights ({c.depthwise_params:,} + {c.pointwise_params:,})",
        f"  ratio: {c.ratio:.4f} (1/{c.out_channels} + 1/{k * k}) → {1 / c.ratio:.2f}× fewer MACs, "
        f"{c.standard_params / c.separable_params:.2f}× fewer weights",
    ]
    return "\n".join(lines)
