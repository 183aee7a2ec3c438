"""EfficientNet specifics: compound-scaling rounding, SE width, stochastic depth, TF 'SAME'
padding, BatchNorm settings and the PaddleClas key conversion."""
from __future__ import annotations

import re

import numpy as np
import paddle
import paddle.nn.functional as F
import pytest

import ppnets
from ppnets.arch.efficientnet import (ARCH, SCALING, EfficientNet, MBConvBlock, from_paddleclas, round_filters,
                                      round_repeats, stage_depths)
from ppnets.arch.layers import ConvBNLayer, DropPath, SamePad2D
from ppnets.errors import CheckpointError, ConfigError

from helpers.reference import manifest


# ----------------------------------------------------------------------------- compound scaling

@pytest.mark.parametrize("filters, width, expected", [
    (32, 1.0, 32), (1280, 1.0, 1280),
    (32, 1.1, 32),     # 35.2 → 32 (within 10 %)
    (40, 1.1, 48),     # 44.0 → 48 (44 + 4 = 48)
    (112, 1.1, 120),   # 123.2 → 120
    (192, 1.1, 208),   # 211.2 → 208
    (320, 1.1, 352), (1280, 1.1, 1408),
    (24, 1.4, 32),     # 33.6 → 32
    (32, 1.4, 48),     # 44.8 → 48
    (112, 1.6, 176),   # 179.2 → 176
    (32, 1.8, 56),     # 57.6 → 56
    (24, 1.8, 40),     # 43.2 → 40
    (1280, 2.0, 2560),
    (18, 1.1, 24),     # 19.8 → 16 would lose > 10 % → 24
    (3, 1.0, 8),       # min_depth None → the divisor
    (32, 0.0, 32),     # no multiplier: unchanged
])
def test_round_filters(filters, width, expected):
    assert round_filters(filters, width) == expected


@pytest.mark.parametrize("depth, expected", [
    (1.0, [1, 2, 2, 3, 3, 4, 1]),
    (1.1, [2, 3, 3, 4, 4, 5, 2]),
    (1.2, [2, 3, 3, 4, 4, 5, 2]),
    (1.4, [2, 3, 3, 5, 5, 6, 2]),    # 1.4 * 3 = 4.2 → 5
    (1.8, [2, 4, 4, 6, 6, 8, 2]),
    (3.1, [4, 7, 7, 10, 10, 13, 4]),
])
def test_round_repeats(depth, expected):
    assert [round_repeats(row[5], depth) for row in ARCH] == expected == stage_depths(depth)


def test_scaling_table_is_the_papers():
    assert [v[:2] for v in SCALING.values()] == [(1.0, 1.0), (1.0, 1.1), (1.1, 1.2), (1.2, 1.4), (1.4, 1.8),
                                                 (1.6, 2.2), (1.8, 2.6), (2.0, 3.1)]
    assert [ppnets.model_info(f"EfficientNetB{i}").input_size for i in range(8)] == \
        [224, 240, 260, 300, 380, 456, 528, 600]
    assert [ppnets.model_info(f"EfficientNetB{i}").defaults["dropout"] for i in range(8)] == \
        [0.2, 0.2, 0.3, 0.3, 0.4, 0.4, 0.5, 0.5]


def test_scaled_model_structure_b2():
    model = ppnets.build_model("EfficientNetB2")
    assert [len(stage) for stage in model.blocks] == [2, 3, 3, 4, 4, 5, 2]
    assert model.conv_stem.conv_layer.weight.shape == [32, 3, 3, 3]
    assert model.num_features == 1408 and model.classifier.weight.shape == [1408, 1000]
    assert model.blocks[6][1].conv_pwl.conv_layer.weight.shape == [352, 2112, 1, 1]


# ----------------------------------------------------------------------------- blocks

def test_se_width_follows_block_input_channels():
    model = ppnets.build_model("EfficientNetB0")
    # block 1.0: 16 → 96 hidden; SE reduces to int(16 * 0.25) = 4, not 96 * 0.25
    assert model.blocks[1][0].se.conv_reduce.weight.shape == [4, 96, 1, 1]
    assert model.blocks[1][1].se.conv_reduce.weight.shape == [6, 144, 1, 1]   # input 24
    assert model.blocks[0][0].conv_pw is None                                   # expand ratio 1


def test_bn_settings_are_tf_reference():
    model = ppnets.build_model("EfficientNetB0")
    bns = [layer for layer in model.sublayers() if isinstance(layer, paddle.nn.BatchNorm2D)]
    assert bns and all(bn._momentum == 0.99 and bn._epsilon == 1e-3 for bn in bns)


def test_drop_connect_rate_grows_linearly_over_blocks():
    model = EfficientNet(drop_connect_rate=0.2)
    blocks = [b for stage in model.blocks for b in stage]
    assert len(blocks) == 16
    for idx, block in enumerate(blocks):
        if block.has_skip:
            assert block.drop_path.p == pytest.approx(0.2 * idx / 16)
        else:
            assert block.drop_path is None
    assert blocks[14].drop_path.p == pytest.approx(0.175)
    assert all(b.drop_path is None for b in EfficientNet(drop_connect_rate=0.0).sublayers()
               if isinstance(b, MBConvBlock))


def test_droppath_identity_in_eval_and_drops_whole_samples_in_train():
    paddle.seed(1)
    x = paddle.rand([256, 3, 4, 4]) + 0.5
    layer = DropPath(0.25)
    layer.eval()
    np.testing.assert_array_equal(layer(x).numpy(), x.numpy())
    layer.train()
    ratio = (layer(x) / x).numpy().reshape(256, -1)
    kept = ratio[:, 0] > 0
    np.testing.assert_allclose(ratio[kept], 1 / 0.75, rtol=1e-5)    # kept samples scaled by 1/(1-p)
    np.testing.assert_array_equal(ratio[~kept], 0.0)                 # dropped samples entirely zero
    assert 0.15 < 1 - kept.mean() < 0.35
    no_drop = DropPath(0.0)
    no_drop.train()
    np.testing.assert_array_equal(no_drop(x).numpy(), x.numpy())


def test_mbconv_drop_path_drops_only_the_residual_branch():
    paddle.seed(2)
    block = MBConvBlock(8, 8, 3, 1, 6, 0.25, drop_path=0.5)
    block.eval()
    x = paddle.randn([64, 8, 5, 5])
    branch = (block(x) - x).numpy()
    block.drop_path.train()
    delta = (block(x) - x).numpy().reshape(64, -1)
    dropped = np.abs(delta).max(axis=1) == 0
    assert 0 < dropped.sum() < 64
    np.testing.assert_allclose(delta[~dropped], branch.reshape(64, -1)[~dropped] / 0.5, rtol=1e-4, atol=1e-5)


# ----------------------------------------------------------------------------- SAME padding

@pytest.mark.parametrize("size", [7, 8, 9, 32, 33, 224, 225])
@pytest.mark.parametrize("k, s", [(3, 1), (3, 2), (5, 2), (5, 1)])
def test_same_pad_output_is_ceil_in_over_stride(size, k, s):
    conv = ConvBNLayer(1, 1, k, s, padding="same", norm=False)
    out = conv(paddle.zeros([1, 1, size, size + 1]))
    assert out.shape == [1, 1, -(-size // s), -(-(size + 1) // s)]


def test_same_pad_puts_the_extra_pixel_bottom_right():
    # 8 px, k5, s2: out 4, total pad (4-1)*2 + 5 - 8 = 3 → 1 before, 2 after
    padded = SamePad2D(5, 2)(paddle.ones([1, 1, 8, 8])).numpy()[0, 0]
    assert padded.shape == (11, 11)
    assert padded[0].sum() == 0 and padded[9:].sum() == 0 and padded[1:9, 1:9].min() == 1
    assert padded[:, 0].sum() == 0 and padded[:, 9:].sum() == 0


def test_same_pad_conv_hand_checked():
    # 4x4 input 0..15, 3x3 all-ones kernel, stride 2 → TF SAME pads 0 top/left, 1 bottom/right:
    # windows rows/cols {0,1,2} and {2,3,pad}
    conv = ConvBNLayer(1, 1, 3, 2, padding="same", norm=False)
    conv.conv_layer.weight.set_value(paddle.ones([1, 1, 3, 3]))
    x = paddle.arange(16, dtype="float32").reshape([1, 1, 4, 4])
    np.testing.assert_array_equal(conv(x).numpy()[0, 0], [[45, 39], [66, 50]])
    half = ConvBNLayer(1, 1, 3, 2, norm=False)     # symmetric padding: different windows
    half.conv_layer.weight.set_value(paddle.ones([1, 1, 3, 3]))
    assert half(x).numpy()[0, 0, 0, 0] == 10


@pytest.mark.parametrize("size", [5, 6, 7, 8])
def test_same_pad_matches_paddles_own_SAME(size):
    paddle.seed(size)
    x = paddle.randn([1, 2, size, size])
    conv = ConvBNLayer(2, 3, 5, 2, padding="same", norm=False)
    ref = F.conv2d(x, conv.conv_layer.weight, stride=2, padding="SAME")
    np.testing.assert_allclose(conv(x).numpy(), ref.numpy(), rtol=1e-5, atol=1e-5)


def _paddleclas_padded_conv(x, w, stride: int, size: int):
    """PaddleClas's EfficientNet padding, fixed for a known input ``size``: TF's total padding
    ``max(k - (s if size % s == 0 else size % s), 0)``; an odd total is realised as symmetric
    padding of ``total // 2 + s`` followed by cropping the first output row and column."""
    k = w.shape[-1]
    total = max(k - (stride if size % stride == 0 else size % stride), 0)
    if total % 2 == 0:
        return F.conv2d(x, w, stride=stride, padding=total // 2)
    return F.conv2d(x, w, stride=stride, padding=total // 2 + stride)[:, :, 1:, 1:]


@pytest.mark.parametrize("size, k", [(224, 3), (112, 3), (56, 5), (28, 3), (14, 5),   # B0's strided convs
                                     (260, 3), (65, 5), (33, 3), (17, 5)])            # B2's
def test_same_pad_reproduces_paddleclas_at_native_resolution(size, k):
    paddle.seed(k)
    x = paddle.randn([1, 2, size, size])
    conv = ConvBNLayer(2, 2, k, 2, padding="same", norm=False)
    ref = _paddleclas_padded_conv(x, conv.conv_layer.weight, 2, size)
    np.testing.assert_allclose(conv(x).numpy(), ref.numpy(), rtol=1e-5, atol=1e-5)


def test_padding_option():
    same, half = EfficientNet(), EfficientNet(padding="half")
    assert isinstance(same.conv_stem.same_pad, SamePad2D) and same.blocks[1][0].conv_dw.same_pad is not None
    assert half.conv_stem.same_pad is None and half.blocks[1][0].conv_dw.same_pad is None
    assert same.blocks[1][1].conv_dw.same_pad is None   # stride 1: SAME == symmetric, no pad layer
    half.set_state_dict(same.state_dict())
    same.eval(), half.eval()
    x = paddle.randn([1, 3, 32, 32])
    assert same.forward_features(x).shape == half.forward_features(x).shape == [1, 1280, 1, 1]
    with paddle.no_grad():
        a, b = same.conv_stem(x).numpy(), half.conv_stem(x).numpy()
    assert a.shape == b.shape == (1, 32, 16, 16) and not np.allclose(a, b, rtol=1e-3, atol=0)
    with pytest.raises(ConfigError, match="padding"):
        EfficientNet(padding="valid")


# ----------------------------------------------------------------------------- PaddleClas conversion

def _paddleclas_random(name: str, seed: int) -> dict:
    rng = np.random.default_rng(seed)
    out = {}
    for key, shape in manifest(name):
        v = rng.standard_normal(shape).astype("float32") * 0.1
        if key.endswith("_variance"):
            v = np.abs(v) + 0.5
        out[key] = v
    return out


def _pc_block(sd: dict, idx: int, suffix: str):
    hits = [k for k in sd if re.fullmatch(rf"_ef\.(_blocks|block)\.{idx}\.\.{re.escape(suffix)}", k)]
    assert len(hits) == 1, (idx, suffix, hits)
    return sd[hits[0]]


def _set_directly(model: EfficientNet, sd: dict) -> None:
    """Assign PaddleClas tensors attribute by attribute (independent of from_paddleclas's key strings)."""
    def conv_bn(layer, prefix_get):
        layer.conv_layer.weight.set_value(prefix_get("_conv._conv._conv.weight"))
        bn = layer.bn_layer
        for ours, theirs in (("weight", "weight"), ("bias", "bias"), ("_mean", "_mean"), ("_variance", "_variance")):
            getattr(bn, ours).set_value(prefix_get(f"_conv._bn.{theirs}"))

    conv_bn(model.conv_stem, lambda s: sd[f"_ef._conv_stem.{s}"])
    idx = 0
    for stage in model.blocks:
        for block in stage:
            get = (lambda branch: (lambda s, i=idx, b=branch: _pc_block(sd, i, f"{b}.{s}")))
            if block.conv_pw is not None:
                conv_bn(block.conv_pw, get("_ecn"))
            conv_bn(block.conv_dw, get("_dcn"))
            conv_bn(block.conv_pwl, get("_pcn"))
            for ours, theirs in (("conv_reduce", "_conv1"), ("conv_expand", "_conv2")):
                getattr(block.se, ours).weight.set_value(_pc_block(sd, idx, f"_se.{theirs}._conv.weight"))
                getattr(block.se, ours).bias.set_value(_pc_block(sd, idx, f"_se.{theirs}._conv.bias"))
            idx += 1
    conv_bn(model.conv_head, lambda s: sd[s])
    model.classifier.weight.set_value(sd["_fc.weight"])
    model.classifier.bias.set_value(sd["_fc.bias"])


def test_paddleclas_conversion_round_trip_b0():
    sd = _paddleclas_random("EfficientNetB0", 0)
    converted = from_paddleclas(sd)
    paddle.seed(0)
    loaded, direct, fresh = (ppnets.build_model("EfficientNetB0") for _ in range(3))
    missing, unexpected = loaded.set_state_dict(converted)
    assert not missing and not unexpected
    _set_directly(direct, sd)
    x = paddle.randn([2, 3, 32, 32])
    outs = []
    for m in (loaded, direct, fresh):
        m.eval()
        with paddle.no_grad():
            outs.append(m(x).numpy())
    np.testing.assert_array_equal(outs[0], outs[1])
    assert not np.allclose(outs[0], outs[2])               # the loaded values matter
    other = ppnets.build_model("EfficientNetB0")
    other.set_state_dict(from_paddleclas(_paddleclas_random("EfficientNetB0", 1)))
    other.eval()
    assert not np.allclose(other(x).numpy(), outs[0])


def test_conversion_maps_by_structure_not_order():
    ref = manifest("EfficientNetB1")
    fake = {k: np.zeros(shape, dtype="float32") for k, shape in ref}
    shuffled = dict(reversed(list(fake.items())))
    a, b = from_paddleclas(fake, depth_mult=1.1), from_paddleclas(shuffled, depth_mult=1.1)
    assert {k: v.shape for k, v in a.items()} == {k: v.shape for k, v in b.items()}
    assert a["blocks.1.0.conv_pw.conv.weight"] is fake["_ef._blocks.2.._ecn._conv._conv._conv.weight"]
    assert b["blocks.1.0.conv_pw.conv.weight"] is fake["_ef._blocks.2.._ecn._conv._conv._conv.weight"]
    assert a["blocks.0.1.se.conv_expand.bias"] is fake["_ef.block.1.._se._conv2._conv.bias"]


def test_conversion_rejects_foreign_keys():
    fake = {k: np.zeros(shape, dtype="float32") for k, shape in manifest("EfficientNetB0")}
    with pytest.raises(CheckpointError, match=r"unrecognised key.*_ef\.block\.16\.\."):
        from_paddleclas({**fake, "_ef.block.16.._dcn._conv._bn.weight": np.zeros(3)})   # B0 has 16 blocks
    with pytest.raises(CheckpointError, match="conv_stem.conv.weight"):
        from_paddleclas(from_paddleclas(fake))        # already converted
