"""Shared layers: the fast convolutions equal Paddle's, forward and backward, and run only
where the conv backend says so."""
from __future__ import annotations

import numpy as np
import paddle
import paddle.nn.functional as F
import pytest

from ppnets.arch import backend, onednn
from ppnets.arch.layers import ConvBNLayer, DepthwiseConv2D, FastConv2D, depthwise_conv_unfold, make_divisible


@pytest.mark.parametrize("shape, k, stride, pad", [
    ((4, 8, 1, 1), 3, 1, 1), ((4, 8, 2, 2), 3, 2, 1), ((3, 6, 4, 4), 3, 1, 1), ((3, 6, 5, 7), 5, 2, 2),
    ((2, 4, 8, 8), 3, 2, 1), ((2, 4, 3, 3), 3, 1, 0),
])
def test_unfold_depthwise_equals_native_forward_and_backward(shape, k, stride, pad):
    paddle.seed(0)
    c = shape[1]
    weight = paddle.randn([c, 1, k, k])
    x = paddle.randn(shape)
    results = []
    for conv in (lambda a, w: depthwise_conv_unfold(a, w, (stride, stride), (pad, pad)),
                 lambda a, w: F.conv2d(a, w, stride=stride, padding=pad, groups=c)):
        a, w = x.detach(), weight.detach()
        a.stop_gradient = w.stop_gradient = False
        y = conv(a, w)
        (y * paddle.cos(paddle.arange(y.size, dtype="float32").reshape(y.shape))).sum().backward()
        results.append((y.numpy(), a.grad.numpy(), w.grad.numpy()))
    for fast_v, native_v in zip(*results):
        np.testing.assert_allclose(fast_v, native_v, rtol=1e-5, atol=1e-5)


def test_unfold_path_is_traced_into_training_programs_on_small_maps_only(monkeypatch):
    calls = []
    import ppnets.arch.layers as layers
    real = layers.depthwise_conv_unfold
    monkeypatch.setattr(layers, "depthwise_conv_unfold", lambda *a: calls.append(tuple(a[0].shape)) or real(*a))
    for hw in (8, 16):  # 64 output pixels: unfold; 256: Paddle's kernel
        conv = DepthwiseConv2D(4, 4, 3, padding=1, groups=4)
        static = paddle.jit.to_static(conv, input_spec=[paddle.static.InputSpec([2, 4, hw, hw], "float32")],
                                      full_graph=True)
        with backend.use("onednn"):
            static(paddle.randn([2, 4, hw, hw])).sum().backward()
    assert calls == [(2, 4, 8, 8)]
    calls.clear()
    conv = DepthwiseConv2D(4, 4, 3, padding=1, groups=4)
    static = paddle.jit.to_static(conv, input_spec=[paddle.static.InputSpec([2, 4, 8, 8], "float32")],
                                  full_graph=True)
    static(paddle.randn([2, 4, 8, 8]))  # outside the onednn backend: plain conv2d
    assert calls == []


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
    with backend.use("paddle" if native else "onednn"):
        y = layer(x)
    (y * grad_out).sum().backward()
    return [y.numpy(), x.grad.numpy()] + [p.grad.numpy() for p in layer.parameters()]


@needs_onednn
@pytest.mark.parametrize("cin, cout, k, stride, pad, groups, hw, bias", [
    (8, 8, 3, 1, 1, 8, (9, 9), False),      # depthwise (blocked jit_dw kernels)
    (8, 8, 3, 2, 1, 8, (10, 7), False),     # depthwise, stride 2, odd sizes
    (12, 12, 5, 2, 2, 12, (11, 11), False), # channels not a multiple of the 8-lane block
    (16, 16, 3, 1, 1, 16, (1, 1), False),   # 1×1 map: only the centre tap
    (24, 24, 3, 1, 1, 24, (2, 2), False),   # 2×2 map (the weight gradient by unfold)
    (24, 24, 3, 2, 1, 24, (2, 2), False),   # 2×2 → 1×1, stride 2
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
def test_depthwise_weight_gradient_avoids_onednns_gemm_fallback_on_maps_smaller_than_the_kernel():
    from ppnets.arch.onednn import conv, runtime
    rt = runtime.get()
    plans = {hw: conv._plan(rt, ((4, 32, hw, hw), (32, 1, 3, 3), (1, 1), (1, 1), 32, True)) for hw in (1, 2, 9)}
    names = {hw: rt.impl_name(plan._pds[2]) for hw, plan in plans.items()}  # backward-weights
    assert names[9].startswith("jit_dw") and not plans[9].dw_unfold  # (and 9×9 is not smaller than the kernel)
    for hw in (1, 2):
        assert plans[hw].dw_unfold == ("gemm" in names[hw])
    x, dy = paddle.randn([4, 32, 2, 2]), paddle.randn([4, 32, 2, 2])
    xp = np.pad(x.numpy(), ((0, 0), (0, 0), (1, 1), (1, 1)))
    expected = np.stack([[(xp[:, :, i:i + 2, j:j + 2] * dy.numpy()).sum((0, 2, 3)) for j in range(3)]
                         for i in range(3)], -1).transpose(1, 2, 0)[:, None]
    np.testing.assert_allclose(conv.depthwise_weight_grad(x, dy, (3, 3), (1, 1), (1, 1)).numpy(), expected,
                               rtol=1e-5, atol=1e-5)


@needs_onednn
def test_onednn_path_is_used_in_dynamic_mode_within_the_onednn_backend_only(monkeypatch):
    calls = []
    real = onednn.conv2d
    monkeypatch.setattr(onednn, "conv2d", lambda *a: calls.append(tuple(a[0].shape)) or real(*a))
    conv = DepthwiseConv2D(4, 4, 3, padding=1, groups=4)
    conv(paddle.randn([2, 4, 16, 16]))                 # a model on its own: plain nn.Conv2D
    with backend.use("onednn"):
        conv(paddle.randn([2, 4, 12, 12]))
        with backend.use("paddle"):
            conv(paddle.randn([2, 4, 16, 16]))
        conv(paddle.randn([2, 4, 10, 10]))             # the outer backend again
    assert backend.active() == "paddle"
    assert calls == [(2, 4, 12, 12), (2, 4, 10, 10)]
    conv.eval()
    static = paddle.jit.to_static(conv, input_spec=[paddle.static.InputSpec([None, 4, 8, 8], "float32")],
                                  full_graph=True)
    x = paddle.randn([2, 4, 8, 8])
    with backend.use("onednn"):
        out = static(x).numpy()
    np.testing.assert_allclose(out, F.conv2d(x, conv.weight, padding=1, groups=4).numpy(), rtol=1e-5, atol=1e-6)
    assert len(calls) == 2  # the traced program uses Paddle's conv2d


@needs_onednn
def test_backend_is_per_thread():
    import threading
    conv = FastConv2D(3, 4, 3, padding=1)
    seen = {}
    inside, release = threading.Event(), threading.Event()

    def other():
        with backend.use("paddle"):
            inside.set()
            release.wait(10)
            seen["other"] = backend.active()

    t = threading.Thread(target=other)
    with backend.use("onednn"):
        t.start()
        inside.wait(10)
        seen["main"] = backend.active()   # the other thread's switch does not reach this one
        conv(paddle.randn([1, 3, 5, 5]))
        release.set()
        t.join()
    assert seen == {"main": "onednn", "other": "paddle"}
    with pytest.raises(ValueError, match="'onednn' or 'paddle'"):
        with backend.use("auto"):
            pass


@needs_onednn
def test_onednn_skips_gradients_nobody_needs():
    conv = FastConv2D(3, 4, 3, padding=1, bias_attr=False)
    x = paddle.randn([2, 3, 6, 6])              # stop_gradient=True, like an input image
    with backend.use("onednn"):
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
        with backend.use("paddle" if native else "onednn"):
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
    with backend.use("onednn"), pytest.raises(ValueError) as err:
        conv(paddle.randn([1, 5, 8, 8]))
    message = str(err.value)
    assert "oneDNN" not in message and "status" not in message
    assert "channels" in message and "[1, 5, 8, 8]" in message
    # nor the unfold path of a depthwise conv on a small map (its error is a reshape's)
    with backend.use("onednn"), pytest.raises(ValueError, match="input's channels is 5"):
        DepthwiseConv2D(4, 4, 3, padding=1, groups=4)(paddle.randn([1, 5, 4, 4]))


def test_legacy_conv_bn_names():
    from ppnets.arch.layers import LEGACY_NAMES, conv_bn_legacy
    layer = conv_bn_legacy(4, 8, 3, stride=2, act="relu")
    assert LEGACY_NAMES == ("_conv", "_batch_norm")
    assert list(layer.state_dict()) == ["_conv.weight", "_batch_norm.weight", "_batch_norm.bias",
                                        "_batch_norm._mean", "_batch_norm._variance"]
    assert layer.conv_layer._stride == [2, 2] and layer.conv_layer.bias is None
