"""PP-LCNet: the block table, PaddleClas's SE gate and head, stages, and a PaddleClas-layout file."""
from __future__ import annotations

import numpy as np
import paddle
import pytest

import ppnets
from ppnets.arch.convert import check_layout
from ppnets.arch.pp_lcnet import ARCH, LCNetBlock
from ppnets.arch.timm import convert_timm_state_dict
from ppnets.errors import CheckpointError

from helpers.reference import check_paddleclas_file_loads, timm_manifest


def test_se_and_5x5_kernels_only_late():
    model = ppnets.build_model("PPLCNet_x1_0")
    blocks = [(stage, b) for stage in ARCH for b in getattr(model, stage)]
    assert len(blocks) == 13
    assert [f"{s}.{i}" for i, (s, b) in enumerate(blocks) if b.se is not None] == ["blocks6.11", "blocks6.12"]
    assert [b.dw_conv.conv_layer._kernel_size[0] for _, b in blocks] == [3] * 6 + [5] * 7
    # PaddleClas's SE bottleneck: plain channels // 4 of the depthwise output (512 at x1.0)
    assert model.blocks6[1].se.conv1.weight.shape == [128, 512, 1, 1]


def test_se_gate_is_x_over_6_plus_half():
    """LCNet's SE gate is Paddle's hardsigmoid clip(x / 6 + 0.5), not MobileNetV3's clip(0.2 x + 0.5)."""
    paddle.seed(1)
    block = LCNetBlock(8, 8, 3, 1, use_se=True)
    block.eval()
    x = (np.random.default_rng(0).standard_normal((2, 8, 4, 4)) * 4).astype("float32")
    w1, b1 = block.se.conv1.weight.numpy()[:, :, 0, 0], block.se.conv1.bias.numpy()
    w2, b2 = block.se.conv2.weight.numpy()[:, :, 0, 0], block.se.conv2.bias.numpy()
    s = np.maximum(x.mean(axis=(2, 3)) @ w1.T + b1, 0) @ w2.T + b2
    expected = x * np.clip(s / 6 + 0.5, 0, 1)[:, :, None, None]
    got = block.se(paddle.to_tensor(x)).numpy()
    np.testing.assert_allclose(got, expected, rtol=1e-5, atol=1e-5)


def test_head_dropout_scales_at_inference():
    """Dropout after the last conv is "downscale_in_infer": eval multiplies by 1 - p (PaddleClas's weights expect it)."""
    paddle.seed(0)
    model = ppnets.build_model("PPLCNet_x0_25", class_num=5)
    model.eval()
    feats = paddle.randn([2, model.num_features, 2, 2])
    pooled = feats.mean(axis=[2, 3], keepdim=True)
    hidden = paddle.nn.functional.hardswish(model.last_conv(pooled)).flatten(1) * (1 - 0.2)
    with paddle.no_grad():
        np.testing.assert_allclose(model.forward_head(feats).numpy(), model.fc(hidden).numpy(), rtol=1e-5, atol=1e-6)


def test_timm_variant_has_a_head_bias_and_an_identity_dropout_at_inference():
    """timm's lcnet: PaddleClas's keys plus ``last_conv.bias``, and no 1 - p scaling in eval mode; its
    weights (converted) do not fit PaddleClas's model."""
    paddle.seed(0)
    paddleclas, model = (ppnets.build_model(n, class_num=5) for n in ("PPLCNet_x0_35", "PPLCNet_x0_35_timm"))
    mine, theirs = dict(_layout(model)), dict(_layout(paddleclas))
    assert {k: v for k, v in mine.items() if k not in theirs} == {"last_conv.bias": [1280]} and set(theirs) < set(mine)
    model.eval()
    feats = paddle.randn([2, model.num_features, 2, 2])
    pooled = feats.mean(axis=[2, 3], keepdim=True)
    with paddle.no_grad():
        hidden = paddle.nn.functional.hardswish(model.last_conv(pooled)).flatten(1)
        np.testing.assert_allclose(model.forward_head(feats).numpy(), model.fc(hidden).numpy(), rtol=1e-5, atol=1e-6)
    timm_file = {k: np.zeros(shape, "float32") for k, shape in timm_manifest("lcnet_035")}
    converted = convert_timm_state_dict("lcnet_035", timm_file)
    with pytest.raises(CheckpointError, match=r"do not fit PPLCNet_x0_35: 1 unexpected key\(s\): last_conv.bias$"):
        check_layout("PPLCNet_x0_35", converted)


def _layout(model):
    return [(k, list(v.shape)) for k, v in model.state_dict().items()]


def test_without_last_conv_the_classifier_reads_the_pooled_stage():
    model = ppnets.build_model("PPLCNet_x0_5", class_num=3, use_last_conv=False)
    keys = model.state_dict()
    assert not any(k.startswith("last_conv") for k in keys) and keys["fc.weight"].shape == [256, 3]
    assert model(paddle.randn([1, 3, 32, 32])).shape == [1, 3]


@pytest.mark.parametrize("scale, widths", [(1.0, [32, 64, 128, 256, 512]), (0.25, [8, 16, 32, 64, 128]),
                                           (0.35, [16, 24, 48, 88, 176])])
def test_stages_are_paddleclas_stages_patterns(scale, widths):
    model = ppnets.build_model(f"PPLCNet_x{str(scale).replace('.', '_')}")
    assert [f["module"] for f in model.feature_info] == ["blocks2", "blocks3", "blocks4", "blocks5", "blocks6"]
    assert [f["num_chs"] for f in model.feature_info] == widths and model.num_features == widths[-1]
    assert [f["reduction"] for f in model.feature_info] == [2, 4, 8, 16, 32]
    x = model.conv1(paddle.randn([1, 3, 64, 64]))
    for f in model.feature_info:
        x = getattr(model, f["module"])(x)
        assert x.shape == [1, f["num_chs"], 64 // f["reduction"], 64 // f["reduction"]]


def test_paddleclas_file_loads_completely(tmp_path):
    check_paddleclas_file_loads("PPLCNet_x0_25", str(tmp_path))
