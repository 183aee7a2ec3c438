"""SqueezeNet specifics: fire module, pooling placement/rounding, no BN, PaddleClas dropout semantics."""
from __future__ import annotations

import numpy as np
import paddle
import paddle.nn as nn
import paddle.nn.functional as F
import pytest

import ppnets
from ppnets.analysis import count_params, profile_model
from ppnets.arch.layers import FastConv2D
from ppnets.arch.squeezenet import Fire, MaxPool3x3
from ppnets.errors import ConfigError


def test_fire_module_is_squeeze_then_concatenated_expands():
    paddle.seed(1)
    fire = Fire(8, 3, 5)
    x = paddle.randn([2, 8, 6, 6])
    out = fire(x).numpy()
    assert out.shape == (2, 10, 6, 6) and fire.out_channels == 10

    def conv(layer, t, pad):
        c = layer.conv_layer
        return F.relu(F.conv2d(t, c.weight, c.bias, padding=pad))

    s = conv(fire._conv, x, 0)
    np.testing.assert_allclose(out[:, :5], conv(fire._conv_path1, s, 0).numpy(), rtol=1e-5, atol=1e-5)
    np.testing.assert_allclose(out[:, 5:], conv(fire._conv_path2, s, 1).numpy(), rtol=1e-5, atol=1e-5)


@pytest.mark.parametrize("name", ["SqueezeNet1_0", "SqueezeNet1_1"])
def test_no_batchnorm_and_every_conv_has_bias(name):
    model = ppnets.build_model(name)
    layers = model.sublayers()
    assert not any(isinstance(layer, nn.BatchNorm2D) for layer in layers)
    convs = [layer for layer in layers if isinstance(layer, nn.Conv2D)]
    assert len(convs) == 2 + 3 * 8 and all(c.bias is not None for c in convs)


@pytest.mark.parametrize("name, feat_224, feat_32", [("SqueezeNet1_0", 12, 1), ("SqueezeNet1_1", 13, 1)])
def test_feature_map_sizes(name, feat_224, feat_32):
    # PaddleClas's floor-mode pools: 1.0: 224→109→54→(fires)→26→12; 1.1: 224→112→55→27→13
    model = ppnets.build_model(name, class_num=5)
    model.eval()
    with paddle.no_grad():
        assert model.forward_features(paddle.zeros([1, 3, 224, 224])).shape == [1, 512, feat_224, feat_224]
        assert model.forward_features(paddle.zeros([1, 3, 32, 32])).shape == [1, 512, feat_32, feat_32]


def _squeezenet1_0_figures(pool):
    """(params, MACs) of SqueezeNet 1.0 at 224 px and 1000 classes from the paper's Table 1 layer shapes,
    with ``pool`` giving a 3×3/2 max-pool's output size."""
    h = (224 - 7) // 2 + 1                    # conv1: 7×7/2, 96 channels, no padding
    params, macs = 96 * 3 * 7 * 7 + 96, 96 * 3 * 7 * 7 * h * h
    h = pool(h)
    stages = [[(96, 16, 64), (128, 16, 64), (128, 32, 128)],             # fire2–4, then pool
              [(256, 32, 128), (256, 48, 192), (384, 48, 192), (384, 64, 256)],  # fire5–8, then pool
              [(512, 64, 256)]]                                          # fire9
    for i, stage in enumerate(stages):
        for cin, sq, ex in stage:             # squeeze 1×1, expand 1×1 and expand 3×3, all with bias
            params += cin * sq + sq + sq * ex + ex + sq * ex * 9 + ex
            macs += (cin * sq + sq * ex + sq * ex * 9) * h * h
        if i < 2:
            h = pool(h)
    params += 512 * 1000 + 1000               # conv10: 1×1 → 1000 classes
    macs += 512 * 1000 * h * h
    return params, macs, h


def test_ceil_mode_is_the_caffe_torchvision_layout():
    model = ppnets.build_model("SqueezeNet1_0", ceil_mode=True)
    params, macs, h = _squeezenet1_0_figures(lambda n: -(-(n - 3) // 2) + 1)  # ceil mode: 109 → 54 → 27 → 13
    assert h == 13
    assert count_params(model) == params == 1_248_424  # torchvision's model card: 1,248,424 params
    prof = profile_model(model, 224)
    assert prof.macs == macs
    assert abs(prof.macs - 0.82e9) <= 0.005 * 0.82e9  # torchvision's card: 0.82 GFLOPS (multiply-adds)
    floor = profile_model(ppnets.build_model("SqueezeNet1_0"), 224)  # PaddleClas: 109 → 54 → 26 → 12
    assert floor.macs == _squeezenet1_0_figures(lambda n: (n - 3) // 2 + 1)[1]
    model.eval()
    with paddle.no_grad():
        assert model.forward_features(paddle.zeros([1, 3, 224, 224])).shape[-1] == 13


def test_pool_pads_maps_smaller_than_the_window():
    pool = MaxPool3x3()
    x = paddle.to_tensor(np.arange(2 * 3 * 2 * 2, dtype="float32").reshape(2, 3, 2, 2) - 20.0)
    np.testing.assert_array_equal(pool(x).numpy(), x.numpy().max(axis=(2, 3), keepdims=True))
    y = paddle.randn([1, 2, 7, 6])  # normal sizes: plain floor-mode 3×3/2 max-pool
    np.testing.assert_array_equal(pool(y).numpy(), F.max_pool2d(y, 3, 2).numpy())
    assert MaxPool3x3(ceil_mode=True)(y).shape == [1, 2, 3, 3]


def test_dropout_is_downscale_in_infer_like_paddleclas():
    paddle.seed(3)
    model = ppnets.build_model("SqueezeNet1_1", class_num=4)
    model.eval()
    feats = paddle.rand([2, 512, 3, 3])
    with paddle.no_grad():
        out = model.forward_head(feats).numpy()
        head = model._conv9
        ref = F.relu(head(feats * 0.5)).mean(axis=[2, 3]).numpy()
    np.testing.assert_allclose(out, ref, rtol=1e-5, atol=1e-6)


def test_unknown_version_is_a_config_error():
    with pytest.raises(ConfigError, match="unknown version '1.2'"):
        ppnets.build_model("SqueezeNet1_0", version="1.2")


@pytest.mark.parametrize("name", ["SqueezeNet1_0", "SqueezeNet1_1"])
def test_every_conv_takes_the_fast_path_with_paddleclas_keys(name):
    # the stem and classifier too (FastConv2D is an nn.Conv2D: same parameters and keys)
    model = ppnets.build_model(name)
    assert all(type(c) is FastConv2D for c in model.sublayers() if isinstance(c, nn.Conv2D))
    keys = list(model.state_dict())
    assert keys[:2] == ["_conv.weight", "_conv.bias"] and keys[-2:] == ["_conv9.weight", "_conv9.bias"]
    assert "_conv1._conv._conv.weight" in keys and len(keys) == 2 * (2 + 3 * 8)
