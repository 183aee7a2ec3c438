"""Shared layers: the fast depthwise convolution equals Paddle's, forward and backward."""
from __future__ import annotations

import contextlib

import numpy as np
import paddle
import paddle.nn.functional as F
import pytest

from ppnets.arch import onednn
from ppnets.arch.layers import ConvBNLayer, DepthwiseConv2D, FastConv2D, make_divisible, native_convolutions


@pytest.mark.parametrize("shape, k, stride, pad", [
    ((4, 8, 1, 1), 3, 1, 1), ((4, 8, 2, 2), 3, 2, 1), ((3, 6, 4, 4), 3, 1, 1), ((3, 6, 5, 7), 5, 2, 2),
    ((2, 4, 8, 8), 3, 2, 1), ((2, 4, 3, 3), 3, 1, 0),
])
def test_unfold_depthwise_equals_native_forward_and_backward(shape, k, stride, pad, monkeypatch):
    monkeypatch.setattr(FastConv2D, "ONEDNN", False)  # the unfold path is the fallback without oneDNN
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
    monkeypatch.setattr(FastConv2D, "ONEDNN", False)
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


# ----------------------------------------------------------------------------- oneDNN convolutions

needs_onednn = pytest.mark.skipif(not onednn.available(), reason=str(onednn.unavailable_reason()))


def _fwd_bwd(layer, x, grad_out, native):
    x = x.detach()
    x.stop_gradient = False
    layer.clear_gradients()
    if native:
        with native_convolutions():
            y = layer(x)
    else:
        y = layer(x)
    (y * grad_out).sum().backward()
    return [y.numpy(), x.grad.numpy()] + [p.grad.numpy() for p in layer.parameters()]


@needs_onednn
@pytest.mark.parametrize("cin, cout, k, stride, pad, groups, hw, bias", [
    (8, 8, 3, 1, 1, 8, (9, 9), False),      # depthwise (blocked jit_dw kernels)
    (8, 8, 3, 2, 1, 8, (10, 7), False),     # depthwise, stride 2, odd sizes
    (12, 12, 5, 2, 2, 12, (11, 11), False), # channels not a multiple of the 8-lane block
    (16, 16, 3, 1, 1, 16, (1, 1), False),   # 1×1 map: only the centre tap
    (12, 12, 7, 2, 3, 12, (8, 8), True),    # depthwise with bias
    (6, 5, 1, 1, 0, 1, (7, 7), False),      # pointwise
    (3, 8, 3, 2, 1, 1, (17, 17), False),    # stem
    (4, 6, 3, 1, 1, 2, (5, 6), True),       # grouped, bias
    (6, 6, 3, 1, 0, 6, (3, 3), False),      # no padding
])
def test_onednn_conv_equals_native_forward_and_backward(cin, cout, k, stride, pad, groups, hw, bias):
    paddle.seed(3)
    cls = DepthwiseConv2D if groups == cin == cout else FastConv2D
    layer = cls(cin, cout, k, stride=stride, padding=pad, groups=groups, bias_attr=None if bias else False)
    x = paddle.randn([3, cin, *hw])
    grad_out = paddle.randn(layer(x).shape)
    fast = _fwd_bwd(layer, x, grad_out, native=False)
    ref = _fwd_bwd(layer, x, grad_out, native=True)
    names = ["output", "input grad", "weight grad", "bias grad"]
    for name, a, b in zip(names, fast, ref):
        scale = max(np.abs(b).max(), 1.0)
        np.testing.assert_allclose(a, b, rtol=1e-5, atol=1e-5 * scale, err_msg=name)


@needs_onednn
def test_onednn_path_is_used_in_dynamic_mode_only(monkeypatch):
    calls = []
    real = onednn.conv2d
    monkeypatch.setattr(onednn, "conv2d", lambda *a: calls.append(tuple(a[0].shape)) or real(*a))
    conv = DepthwiseConv2D(4, 4, 3, padding=1, groups=4)
    conv(paddle.randn([2, 4, 16, 16]))
    with native_convolutions():
        conv(paddle.randn([2, 4, 16, 16]))
    assert calls == [(2, 4, 16, 16)]
    assert FastConv2D.ONEDNN and DepthwiseConv2D.UNFOLD_MAX_PIXELS == 64  # restored
    conv.eval()
    static = paddle.jit.to_static(conv, input_spec=[paddle.static.InputSpec([None, 4, 8, 8], "float32")],
                                  full_graph=True)
    x = paddle.randn([2, 4, 8, 8])
    np.testing.assert_allclose(static(x).numpy(), F.conv2d(x, conv.weight, padding=1, groups=4).numpy(),
                               rtol=1e-5, atol=1e-6)
    assert calls == [(2, 4, 16, 16)]  # the traced program uses Paddle's conv2d


@needs_onednn
def test_onednn_skips_gradients_nobody_needs():
    conv = FastConv2D(3, 4, 3, padding=1, bias_attr=False)
    x = paddle.randn([2, 3, 6, 6])              # stop_gradient=True, like an input image
    conv(x).sum().backward()
    assert x.grad is None and conv.weight.grad is not None
    conv.weight.stop_gradient = True            # a frozen layer
    x.stop_gradient = False
    conv(x).sum().backward()
    ref = F.conv2d(paddle.ones([1, 4, 6, 6]), conv.weight.transpose([1, 0, 2, 3]).flip([2, 3]), padding=1)
    np.testing.assert_allclose(x.grad.numpy(), np.broadcast_to(ref.numpy(), x.shape), rtol=1e-5, atol=1e-5)


@needs_onednn
def test_training_step_of_a_model_matches_native_convolutions():
    from ppnets.arch import build_model
    paddle.seed(0)
    model = build_model("MobileNetV2_x0_25", class_num=4)
    # 64 px, batch 8: the last maps are 2×2, so BatchNorm's statistics over 32 values do not
    # amplify float32 rounding the way they do over a 1×1 map and 4 samples
    x, labels = paddle.randn([8, 3, 64, 64]), paddle.to_tensor([[0], [1], [2], [3]] * 2)
    grads = []
    for native in (False, True):
        model.clear_gradients()
        ctx = native_convolutions() if native else contextlib.nullcontext()
        with ctx:
            loss = F.cross_entropy(model(x), labels)
        loss.backward()
        grads.append((float(loss), [p.grad.numpy() for p in model.parameters() if not p.stop_gradient]))
    assert grads[0][0] == pytest.approx(grads[1][0], rel=2e-5)
    # tolerance relative to each gradient's largest entry, after ~50 layers of float32 rounding
    # (the biases of BNs feeding another conv + BN have a true gradient of 0: theirs are noise
    # of ~1e-7 on both paths, hence the floor)
    for a, b in zip(grads[0][1], grads[1][1]):
        np.testing.assert_allclose(a, b, rtol=0, atol=1e-4 * max(np.abs(b).max(), 0.1))


def test_conv_bn_layer_uses_fast_conv_for_regular_convolutions():
    layer = ConvBNLayer(8, 16, 1)
    assert type(layer.conv) is FastConv2D
    assert list(layer.state_dict()) == ["conv.weight", "bn.weight", "bn.bias", "bn._mean", "bn._variance"]


@needs_onednn
def test_wrong_input_channels_raise_paddles_shape_error():
    # a 5-channel input to a 3-channel conv must not reach oneDNN (its error is an opaque status code)
    conv = FastConv2D(3, 8, 3)
    with pytest.raises(ValueError) as err:
        conv(paddle.randn([1, 5, 8, 8]))
    message = str(err.value)
    assert "oneDNN" not in message and "status" not in message
    assert "channels" in message and "[1, 5, 8, 8]" in message
    # nor the unfold path of a depthwise conv on a small map (its error is a reshape's)
    with pytest.raises(ValueError, match="input's channels is 5"):
        DepthwiseConv2D(4, 4, 3, padding=1, groups=4)(paddle.randn([1, 5, 4, 4]))


def test_legacy_conv_bn_names():
    from ppnets.arch.layers import LEGACY_NAMES, conv_bn_legacy
    layer = conv_bn_legacy(4, 8, 3, stride=2, act="relu")
    assert LEGACY_NAMES == ("_conv", "_batch_norm")
    assert list(layer.state_dict()) == ["_conv.weight", "_batch_norm.weight", "_batch_norm.bias",
                                        "_batch_norm._mean", "_batch_norm._variance"]
    assert layer.conv_layer._stride == [2, 2] and layer.conv_layer.bias is None
