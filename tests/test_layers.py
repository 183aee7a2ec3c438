"""Shared layers: the fast depthwise convolution equals Paddle's, forward and backward."""
from __future__ import annotations

import numpy as np
import paddle
import paddle.nn.functional as F
import pytest

from ppnets.arch.layers import ConvBNLayer, DepthwiseConv2D, make_divisible


@pytest.mark.parametrize("shape, k, stride, pad", [
    ((4, 8, 1, 1), 3, 1, 1), ((4, 8, 2, 2), 3, 2, 1), ((3, 6, 4, 4), 3, 1, 1), ((3, 6, 5, 7), 5, 2, 2),
    ((2, 4, 8, 8), 3, 2, 1), ((2, 4, 3, 3), 3, 1, 0),
])
def test_unfold_depthwise_equals_native_forward_and_backward(shape, k, stride, pad):
    paddle.seed(0)
    c = shape[1]
    fast = DepthwiseConv2D(c, c, k, stride=stride, padding=pad, groups=c)
    x = paddle.randn(shape)
    x.stop_gradient = False
    grad_out = None
    results = []
    for use_unfold in (True, False):
        fast.UNFOLD_MAX_PIXELS = 10 ** 6 if use_unfold else -1
        x.clear_gradient()
        fast.weight.clear_gradient()
        y = fast(x)
        if grad_out is None:
            grad_out = paddle.randn(y.shape)
        (y * grad_out).sum().backward()
        results.append((y.numpy(), x.grad.numpy(), fast.weight.grad.numpy()))
    ref = F.conv2d(x.detach(), fast.weight.detach(), stride=stride, padding=pad, groups=c).numpy()
    np.testing.assert_allclose(results[1][0], ref, atol=1e-6)
    for fast_v, native_v in zip(*results):
        np.testing.assert_allclose(fast_v, native_v, rtol=1e-5, atol=1e-5)


def test_unfold_path_is_taken_only_on_small_maps(monkeypatch):
    calls = []
    import ppnets.arch.layers as layers
    real = layers.depthwise_conv_unfold
    monkeypatch.setattr(layers, "depthwise_conv_unfold", lambda *a: calls.append(a[0].shape) or real(*a))
    conv = DepthwiseConv2D(4, 4, 3, padding=1, groups=4)
    conv(paddle.randn([1, 4, 8, 8]))        # 64 output pixels: unfold
    conv(paddle.randn([1, 4, 16, 16]))      # 256: native
    assert calls == [[1, 4, 8, 8]]


def test_conv_bn_layer_uses_depthwise_class_and_keeps_keys():
    layer = ConvBNLayer(8, 8, 3, groups=8, names=("_conv", "_batch_norm"))
    assert isinstance(layer._conv, DepthwiseConv2D)
    assert list(layer.state_dict()) == ["_conv.weight", "_batch_norm.weight", "_batch_norm.bias",
                                        "_batch_norm._mean", "_batch_norm._variance"]
    assert not isinstance(ConvBNLayer(8, 16, 1).conv, DepthwiseConv2D)


@pytest.mark.parametrize("value, expected", [(32 * 0.35, 16), (16 * 0.5, 8), (24 * 1.25, 32), (3, 8), (90, 88)])
def test_make_divisible(value, expected):
    assert make_divisible(value) == expected
