"""MobileNetV1: the paper's cost figures (Tables 2, 6, 7), the resolution multiplier, the block's maths."""
from __future__ import annotations

import numpy as np
import paddle
import pytest

import ppnets
from ppnets.analysis import count_params, profile_model
from ppnets.arch.mobilenet_v1 import DepthwiseSeparable


@pytest.fixture(scope="module")
def mobilenet():
    return ppnets.build_model("MobileNetV1")


def test_paper_figures_at_224(mobilenet):
    prof = profile_model(mobilenet, 224)
    assert round(prof.params / 1e6, 1) == 4.2                 # Table 8: 4.2M
    assert abs(prof.macs - 569e6) <= 0.005 * 569e6            # Table 8: 569M mult-adds


@pytest.mark.parametrize("name,params_m,macs_m", [
    ("MobileNetV1_x0_75", 2.6, 325), ("MobileNetV1_x0_5", 1.3, 149), ("MobileNetV1_x0_25", 0.5, 41)])
def test_width_multiplier_table6(name, params_m, macs_m):
    prof = profile_model(ppnets.build_model(name), 224)
    assert round(prof.params / 1e6, 1) == params_m
    assert abs(prof.macs / 1e6 - macs_m) <= 0.01 * macs_m


@pytest.mark.parametrize("size,macs_m", [(192, 418), (160, 290), (128, 186)])
def test_resolution_multiplier_table7(mobilenet, size, macs_m):
    # the resolution multiplier is the input size; parameters do not change
    prof = profile_model(mobilenet, size)
    assert prof.params == count_params(mobilenet)
    assert abs(prof.macs / 1e6 - macs_m) <= 0.01 * macs_m


def test_conv_macs_scale_quadratically_with_input_size(mobilenet):
    big, small = profile_model(mobilenet, 224).macs_by_kind(), profile_model(mobilenet, 160).macs_by_kind()
    conv = lambda d: sum(v for k, v in d.items() if k != "fc")  # noqa: E731
    assert conv(small) / conv(big) == pytest.approx((160 / 224) ** 2, rel=1e-3)
    assert small["fc"] == big["fc"] == 1024 * 1000             # the classifier does not depend on size


def test_cost_breakdown_table2(mobilenet):
    # Table 2: 1x1 conv 94.86 % of mult-adds / 74.59 % of params, depthwise 3.06 % / 1.06 %,
    # FC 0.18 % / 24.33 %. (Its 1.19 % for the 3x3 stem is inconsistent: the four rows sum to 99.3 %.)
    macs, params = {}, {}
    for layer in profile_model(mobilenet, 224).layers:
        if layer.kind in ("full", "pointwise", "depthwise", "grouped", "fc"):
            macs[layer.kind] = macs.get(layer.kind, 0) + layer.macs
            params[layer.kind] = params.get(layer.kind, 0) + layer.params
    pct = lambda d, k: 100 * d[k] / sum(d.values())  # noqa: E731
    assert pct(macs, "pointwise") == pytest.approx(94.86, abs=0.05)
    assert pct(macs, "depthwise") == pytest.approx(3.06, abs=0.05)
    assert pct(macs, "fc") == pytest.approx(0.18, abs=0.05)
    assert pct(params, "pointwise") == pytest.approx(74.59, abs=0.05)
    assert pct(params, "depthwise") == pytest.approx(1.06, abs=0.05)
    assert pct(params, "fc") == pytest.approx(24.33, abs=0.05)


def test_depthwise_separable_cost_equation5():
    # 56x56x16 -> 32 channels, 3x3: dw 3*3*16*56*56 + pw 16*32*56*56 = 2,057,216 MACs,
    # i.e. 1/N + 1/k^2 of the standard conv's 14,450,688 (paper eq. 5)
    block = DepthwiseSeparable(16, 32, 3, 1)
    macs = profile_model(block, 56, in_chans=16).macs
    assert macs == 2_057_216
    assert macs / 14_450_688 == pytest.approx(1 / 32 + 1 / 9)


def test_depthwise_separable_matches_numpy():
    paddle.seed(1)
    block = DepthwiseSeparable(3, 5, 3, stride=2)
    block.eval()
    x = np.random.RandomState(0).randn(2, 3, 7, 7).astype("float32")
    out = block(paddle.to_tensor(x)).numpy()

    bn_scale = 1 / np.sqrt(1 + 1e-5)  # fresh BN in eval: mean 0, variance 1, gamma 1, beta 0
    wd = block.depthwise_conv.conv.weight.numpy()[:, 0]            # (3, 3, 3)
    wp = block.pointwise_conv.conv.weight.numpy()[:, :, 0, 0]      # (5, 3)
    xp = np.pad(x, ((0, 0), (0, 0), (1, 1), (1, 1)))
    dw = np.zeros((2, 3, 4, 4), "float32")
    for i in range(4):
        for j in range(4):
            patch = xp[:, :, 2 * i:2 * i + 3, 2 * j:2 * j + 3]      # (2, 3, 3, 3)
            dw[:, :, i, j] = (patch * wd[None]).sum(axis=(2, 3))
    dw = np.maximum(dw * bn_scale, 0)
    ref = np.maximum(np.einsum("oc,nchw->nohw", wp, dw) * bn_scale, 0)
    np.testing.assert_allclose(out, ref, rtol=1e-4, atol=1e-5)


@pytest.mark.parametrize("size,spatial", [(32, 1), (64, 2), (224, 7)])
def test_feature_map_is_input_over_32(size, spatial):
    model = ppnets.build_model("MobileNetV1_x0_25", class_num=4)
    model.eval()
    with paddle.no_grad():
        feats = model.forward_features(paddle.zeros([1, 3, size, size]))
    assert feats.shape == [1, 256, spatial, spatial]
    assert model.num_features == 256
