"""MobileNetV4: Mobile MQA against a NumPy multi-query attention, the UIB variants, layer scale,
stochastic depth, PaddleClas's stages, odd map sizes and a PaddleClas-layout file."""
from __future__ import annotations

import numpy as np
import paddle
import pytest

import ppnets
from ppnets.arch.mobilenet_v4 import ARCHS, MobileAttention, UniversalInvertedResidual
from ppnets.arch.timm import convert_timm_state_dict, timm_to_ppnets_name
from ppnets.errors import CheckpointError, ConfigError

from helpers.reference import check_paddleclas_file_loads, timm_manifest

#: PaddleClas's MODEL_STAGES_PATTERN (the last entry of each, the 1×1 conv to 960, is ppnets's neck)
PADDLECLAS_STAGES = {
    "conv_small": [1, 3, 9, 15, 16], "conv_medium": [0, 2, 10, 21, 22], "conv_large": [0, 2, 13, 26, 27],
    "hybrid_medium": [0, 2, 14, 30, 31], "hybrid_large": [0, 2, 17, 35, 36],
}


def _softmax(a):
    e = np.exp(a - a.max(axis=-1, keepdims=True))
    return e / e.sum(axis=-1, keepdims=True)


def _conv1x1(w, x):  # w [out, in, 1, 1], x [in, H, W]
    return np.einsum("oi,ihw->ohw", w[:, :, 0, 0], x)


@pytest.mark.parametrize("kv_stride, attn_scale", [(1, "query_dim"), (2, "query_dim"), (2, "kv_dim")])
def test_mobile_mqa_is_multi_query_attention(kv_stride, attn_scale):
    """Every query head attends to the one shared key/value head, logits scaled by query_dim ** -0.5
    (PaddleClas's) or kv_dim ** -0.5 (timm's)."""
    paddle.seed(0)
    heads, kv, c = 2, 4, 6
    block = MobileAttention(c, c, 3, heads, heads * kv, kv, kv_stride, layer_scale=0.5, attn_scale=attn_scale)
    scale = (heads * kv if attn_scale == "query_dim" else kv) ** -0.5
    block.eval()
    x = np.random.default_rng(0).standard_normal((2, c, 6, 6)).astype("float32")
    with paddle.no_grad():
        y = block.norm(paddle.to_tensor(x))
        k_in = block.key_down_proj(y) if kv_stride > 1 else y
        v_in = block.value_down_proj(y) if kv_stride > 1 else y
        got = block(paddle.to_tensor(x)).numpy()
    y, k_in, v_in = y.numpy(), k_in.numpy(), v_in.numpy()
    assert k_in.shape[-1] == 6 // kv_stride
    expected = np.empty_like(x)
    for b in range(2):
        q = _conv1x1(block.query_proj.weight.numpy(), y[b]).reshape(heads, kv, -1)      # [h, d, HW]
        k = _conv1x1(block.key_proj.weight.numpy(), k_in[b]).reshape(kv, -1)            # [d, L]
        v = _conv1x1(block.value_proj.weight.numpy(), v_in[b]).reshape(kv, -1)
        out = np.stack([_softmax(q[h].T @ k * scale) @ v.T for h in range(heads)])  # [h, HW, d]
        attn = out.transpose(0, 2, 1).reshape(heads * kv, 6, 6)
        proj = _conv1x1(block.proj.weight.numpy(), attn)
        expected[b] = x[b] + proj * block.layer_scale.gamma.numpy()[:, None, None]
    np.testing.assert_allclose(got, expected, rtol=1e-4, atol=1e-5)


def test_mqa_rejects_a_query_width_that_is_not_heads_times_kv():
    with pytest.raises(ConfigError, match="query_dim 12 must be heads × kv_dim = 8"):
        MobileAttention(8, 8, 3, 2, 12, 4, 1)
    with pytest.raises(ConfigError, match="attn_scale 'head' is not one of query_dim, kv_dim"):
        MobileAttention(8, 8, 3, 2, 8, 4, 1, attn_scale="head")


def test_timm_hybrids_differ_from_paddleclas_only_in_the_attention_scale():
    """timm's hybrid weights go to the *_timm model (same keys, kv_dim ** -0.5), never onto PaddleClas's."""
    assert timm_to_ppnets_name("mobilenetv4_hybrid_medium.ix_e550_r256_in1k") == "MobileNetV4_hybrid_medium_timm"
    assert timm_to_ppnets_name("mobilenetv4_conv_small") == "MobileNetV4_conv_small"
    with paddle.LazyGuard():
        paddleclas, timm = (ppnets.build_model(f"MobileNetV4_hybrid_medium{s}") for s in ("", "_timm"))
    assert [(k, v.shape) for k, v in paddleclas.state_dict().items()] == \
        [(k, v.shape) for k, v in timm.state_dict().items()]
    scales = [(a.scale, b.scale) for a, b in zip(paddleclas.sublayers(), timm.sublayers())
              if isinstance(a, MobileAttention)]
    assert len(scales) == 8 and set(scales) == {(256 ** -0.5, 64 ** -0.5)}
    timm_file = {k: np.zeros(shape, "float32") for k, shape in timm_manifest("mobilenetv4_hybrid_medium")}
    with pytest.raises(CheckpointError, match="timm weights converted to ppnets's layout do not fit "
                                              "MobileNetV4_hybrid_medium: .* missing key"):
        convert_timm_state_dict("MobileNetV4_hybrid_medium", timm_file)


@pytest.mark.parametrize("k0, k1, title, n_dw", [(3, 5, "UIB ExtraDW", 2), (0, 3, "UIB IB", 1),
                                                 (3, 0, "UIB ConvNext-like", 1), (0, 0, "UIB FFN", 0)])
def test_universal_inverted_bottleneck_instances(k0, k1, title, n_dw):
    paddle.seed(0)
    block = UniversalInvertedResidual(8, 16, 8, k0, k1, 1, "relu")
    paths = block.block_paths()
    assert paths.title == title and paths.merge == "add" and paths.branches[0] == []
    assert (block.dw_start is not None, block.dw_mid is not None) == (bool(k0), bool(k1))
    assert sum(1 for m in paths.branches[1] if m.conv_layer._groups > 1) == n_dw
    x = paddle.randn([1, 8, 5, 5])
    block.eval()
    with paddle.no_grad():
        y = block.dw_start(x) if k0 else x
        y = block.pw_exp(y)
        y = block.dw_mid(y) if k1 else y
        np.testing.assert_allclose(block(x).numpy(), (x + block.pw_proj(y)).numpy(), rtol=1e-6, atol=1e-6)


def test_layer_scale_only_in_the_hybrids_and_stochastic_depth_is_linear():
    conv = ppnets.build_model("MobileNetV4_conv_small")
    assert not any("layer_scale" in k for k in conv.state_dict())
    hybrid = ppnets.build_model("MobileNetV4_hybrid_medium")
    gammas = [v.numpy() for k, v in hybrid.state_dict().items() if k.endswith("layer_scale.gamma")]
    assert len(gammas) == 30 and all(np.allclose(g, 1e-5) for g in gammas)   # every uir/mqa block
    model = ppnets.build_model("MobileNetV4_conv_medium", drop_path_rate=0.2)
    n = len(model.blocks)
    rates = {i: b.drop_path.p for i, b in enumerate(model.blocks) if getattr(b, "drop_path", None) is not None}
    assert rates and all(r == pytest.approx(0.2 * i / n) for i, r in rates.items())
    assert all(model.blocks[i].shortcut for i in rates)                  # only on residual branches


@pytest.mark.parametrize("variant", list(ARCHS))
def test_stages_are_paddleclas_stage_patterns(variant):
    model = ppnets.build_model(f"MobileNetV4_{variant}")
    *stages, neck = PADDLECLAS_STAGES[variant]
    assert [f["module"] for f in model.feature_info] == [f"blocks.{i}" for i in stages]
    assert model.neck_modules == (f"blocks.{neck}",) and model.num_features == 960
    assert [f["reduction"] for f in model.feature_info] == [4, 8, 16, 32]
    assert model.head_hidden_size == 1280 and model.get_classifier().weight.shape == [1280, 1000]


def test_hybrid_large_uses_gelu_and_the_others_relu():
    gelu = ppnets.build_model("MobileNetV4_hybrid_large")
    assert type(gelu.conv_stem.act).__name__ == "GELU" and type(gelu.blocks[1].pw_exp.act).__name__ == "GELU"
    relu = ppnets.build_model("MobileNetV4_hybrid_medium")
    assert type(relu.conv_stem.act).__name__ == "ReLU"


def test_attention_on_maps_not_divisible_by_the_kv_stride():
    """56 px: the stride-8 stage is 7×7 and its keys/values 4×4 (PaddleClas's reshape needs even maps)."""
    paddle.seed(0)
    model = ppnets.build_model("MobileNetV4_hybrid_medium", class_num=3)
    model.eval()
    with paddle.no_grad():
        maps = model.forward_intermediates(paddle.randn([1, 3, 56, 56]))
    assert [m.shape[-1] for m in maps] == [14, 7, 4, 2]


def test_unknown_variant_is_named():
    with pytest.raises(ConfigError, match=r"unknown variant 'conv_tiny'.*valid: conv_small"):
        ppnets.arch.mobilenet_v4.MobileNetV4(variant="conv_tiny")


@pytest.mark.parametrize("name", ["MobileNetV4_conv_small", "MobileNetV4_hybrid_medium"])
def test_paddleclas_file_loads_completely(name, tmp_path):
    check_paddleclas_file_loads(name, str(tmp_path))
