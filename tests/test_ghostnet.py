"""GhostNet: the Ghost module, shortcuts, PaddleClas's linear SE with a clip gate, stages, head, PaddleClas file."""
from __future__ import annotations

import numpy as np
import paddle
import pytest

import ppnets
from ppnets.arch.ghostnet import ARCH, GhostBottleneck, GhostModule

from helpers.reference import check_paddleclas_file_loads


def test_ghost_module_concatenates_primary_and_cheap_features():
    paddle.seed(0)
    m = GhostModule(6, 10, relu=False)
    m.eval()
    x = paddle.randn([2, 6, 5, 5])
    with paddle.no_grad():
        out, primary = m(x), m.primary_conv(x)
        cheap = m.cheap_operation(primary)
    assert out.shape == [2, 10, 5, 5] and primary.shape[1] == 5
    np.testing.assert_array_equal(out.numpy(), np.concatenate([primary.numpy(), cheap.numpy()], axis=1))
    assert m.cheap_operation.conv_layer._groups == 5       # depthwise over the intrinsic features


def test_shortcuts_project_where_the_shape_changes():
    model = ppnets.build_model("GhostNet_x1_0")
    blocks = [getattr(model, f"_ghostbottleneck_{i}") for i in range(len(ARCH))]
    assert len(blocks) == len(ARCH) == 16
    projected = [i for i, b in enumerate(blocks) if not b.shortcut]
    assert projected == [1, 3, 5, 9, 11]                   # stride 2 or a new width
    assert all(hasattr(blocks[i], "shortcut_conv") == (i in projected) for i in range(16))
    assert [i for i, b in enumerate(blocks) if b.depthwise_conv is not None] == [1, 3, 5, 11]
    assert [i for i, b in enumerate(blocks) if b.se_block is not None] == [3, 4, 9, 10, 11, 13, 15]


def test_bottleneck_adds_the_projected_input():
    paddle.seed(2)
    b = GhostBottleneck(8, 16, 12, 3, 2, use_se=False)
    b.eval()
    x = paddle.randn([1, 8, 6, 6])
    with paddle.no_grad():
        main = b.ghost_module_2(b.depthwise_conv(b.ghost_module_1(x)))
        side = b.shortcut_conv(b.shortcut_depthwise(x))
        np.testing.assert_allclose(b(x).numpy(), (main + side).numpy(), rtol=1e-6, atol=1e-6)
    assert main.shape == [1, 12, 3, 3]


def test_se_is_linear_with_a_clip_gate():
    """PaddleClas's GhostNet SE: linear layers on the pooled vector, ReLU, gate clip(x, 0, 1)."""
    paddle.seed(1)
    se = GhostBottleneck(8, 16, 8, 3, 1, use_se=True).se_block
    assert se.squeeze.weight.shape == [16, 4] and se.excitation.weight.shape == [4, 16]
    x = (np.random.default_rng(0).standard_normal((2, 16, 3, 3)) * 3).astype("float32")
    s = np.maximum(x.mean(axis=(2, 3)) @ se.squeeze.weight.numpy() + se.squeeze.bias.numpy(), 0)
    s = s @ se.excitation.weight.numpy() + se.excitation.bias.numpy()
    assert (s < 0).any() and (s > 1).any()                  # both ends of the clip are exercised
    expected = x * np.clip(s, 0, 1)[:, :, None, None]
    np.testing.assert_allclose(se(paddle.to_tensor(x)).numpy(), expected, rtol=1e-5, atol=1e-5)


def test_timm_variant_se_is_rounded_to_4_with_a_hard_sigmoid_gate():
    """timm's GhostNet SE: bottleneck make_divisible(hidden / 4, 4) (72 → 20; PaddleClas: 18), gate
    clip(x / 6 + 0.5, 0, 1)."""
    paddle.seed(1)
    assert GhostBottleneck(24, 72, 40, 5, 2, use_se=True).se_block.squeeze.weight.shape == [72, 18]
    se = GhostBottleneck(24, 72, 40, 5, 2, use_se=True, se_divisor=4, se_gate="hardsigmoid").se_block
    assert se.squeeze.weight.shape == [72, 20] and se.excitation.weight.shape == [20, 72]
    x = (np.random.default_rng(0).standard_normal((2, 72, 3, 3)) * 3).astype("float32")
    s = np.maximum(x.mean(axis=(2, 3)) @ se.squeeze.weight.numpy() + se.squeeze.bias.numpy(), 0)
    s = s @ se.excitation.weight.numpy() + se.excitation.bias.numpy()
    expected = x * np.clip(s / 6 + 0.5, 0, 1)[:, :, None, None]
    np.testing.assert_allclose(se(paddle.to_tensor(x)).numpy(), expected, rtol=1e-5, atol=1e-5)


def test_timm_variant_head_conv_has_a_bias_and_no_bn():
    paddle.seed(0)
    model = ppnets.build_model("GhostNet_x0_5_timm", class_num=4)
    assert model.fc_0.bn_layer is None and model.fc_0.conv_layer.bias.shape == [1280]
    assert [k for k in model.state_dict() if k.startswith("fc_0.")] == ["fc_0._conv.weight", "fc_0._conv.bias"]
    model.eval()
    feats = paddle.randn([2, model.num_features, 2, 2])
    with paddle.no_grad():
        hidden = paddle.nn.functional.relu(model.fc_0.conv_layer(feats.mean(axis=[2, 3], keepdim=True))).flatten(1)
        np.testing.assert_allclose(model.forward_head(feats).numpy(), model.fc_1(hidden).numpy(), rtol=1e-5,
                                   atol=1e-6)


@pytest.mark.parametrize("name, widths, last", [("GhostNet_x1_0", [16, 24, 40, 112, 160], 960),
                                                ("GhostNet_x0_5", [8, 12, 20, 56, 80], 480)])
def test_stages(name, widths, last):
    model = ppnets.build_model(name)
    assert [f["module"] for f in model.feature_info] == [
        "_ghostbottleneck_0", "_ghostbottleneck_2", "_ghostbottleneck_4", "_ghostbottleneck_10",
        "_ghostbottleneck_15"]
    assert [len(f["modules"]) for f in model.feature_info] == [1, 2, 2, 6, 5]   # a stage starts at a stride 2
    assert [f["num_chs"] for f in model.feature_info] == widths and model.num_features == last
    assert model.neck_modules == ("conv_last",)
    assert [f["reduction"] for f in model.feature_info] == [2, 4, 8, 16, 32]
    maps = {}
    hooks = [getattr(model, f["module"]).register_forward_post_hook(
        lambda layer, inp, out, key=f["module"]: maps.__setitem__(key, out.shape)) for f in model.feature_info]
    model.eval()
    with paddle.no_grad():
        feats = model.forward_features(paddle.randn([1, 3, 64, 64]))
    for h in hooks:
        h.remove()
    assert [maps[f["module"]] for f in model.feature_info] == \
        [[1, f["num_chs"], 64 // f["reduction"], 64 // f["reduction"]] for f in model.feature_info]
    assert feats.shape == [1, last, 2, 2]


def test_head_is_conv_bn_relu_then_inverted_dropout():
    paddle.seed(0)
    model = ppnets.build_model("GhostNet_x0_5", class_num=4)
    model.eval()
    feats = paddle.randn([2, model.num_features, 2, 2])
    with paddle.no_grad():
        hidden = model.fc_0(feats.mean(axis=[2, 3], keepdim=True)).flatten(1)
        np.testing.assert_allclose(model.forward_head(feats).numpy(), model.fc_1(hidden).numpy(), rtol=1e-5,
                                   atol=1e-6)   # eval-mode dropout is the identity
    assert model.fc_0.bn_layer is not None and model.head_hidden_size == 1280


def test_paddleclas_file_loads_completely(tmp_path):
    check_paddleclas_file_loads("GhostNet_x0_5", str(tmp_path))
