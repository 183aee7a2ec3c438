"""ShuffleNet V1/V2 specifics: channel shuffle, unit wiring, V1 sizes vs the paper and megvii's models."""
from __future__ import annotations

import numpy as np
import paddle
import paddle.nn as nn
import pytest

import ppnets
from ppnets.analysis import count_params, profile_model
from ppnets.arch.profile import conv_kind
from ppnets.arch.layers import channel_shuffle
from ppnets.arch.shufflenet_v1 import STAGE_CHANNELS, STEM, ShuffleV1Unit, shufflenet_v1_channels
from ppnets.arch.shufflenet_v2 import ShuffleUnit
from ppnets.errors import ConfigError

M = 1_000_000

# tests/reference/model_sizes.md, "Not in PaddleClas: ShuffleNetV1" (224 px; None = not published).
# (width, groups, params, MACs low, MACs high, source)
V1_REFERENCE = [
    (1.0, 1, None, 143 * M, 143 * M, "paper Table 2"),
    (1.0, 2, None, 140 * M, 140 * M, "paper Table 2"),
    (1.0, 3, 1.9 * M, 137 * M, 138 * M, "paper Table 2 / megvii README"),
    (1.0, 4, None, 133 * M, 133 * M, "paper Table 2"),
    (1.0, 8, 2.4 * M, 137 * M, 138 * M, "paper Table 2 / megvii README"),
    (0.5, 3, 0.7 * M, 38 * M, 38 * M, "megvii README"),
    (1.5, 3, 3.4 * M, 292 * M, 292 * M, "megvii README"),
    (2.0, 3, 5.4 * M, 524 * M, 524 * M, "megvii README"),
    (0.5, 8, 1.0 * M, 40 * M, 40 * M, "megvii README"),
    (1.5, 8, 4.3 * M, 290 * M, 290 * M, "megvii README"),
    (2.0, 8, 6.5 * M, 522 * M, 522 * M, "megvii README"),
]


def _v1_name(groups: int, scale: float) -> str:
    return f"ShuffleNetV1_g{groups}_x{str(scale).replace('.', '_')}"


def _shuffle_reference(x: np.ndarray, groups: int) -> np.ndarray:
    """Output channel j = input channel (j mod g)·(C/g) + j div g: each output group of g consecutive
    channels takes one channel from every input group, in order."""
    c = x.shape[1]
    per = c // groups
    src = [(j % groups) * per + j // groups for j in range(c)]
    return x[:, src]


@pytest.mark.parametrize("c, groups", [(6, 2), (6, 3), (12, 4), (24, 8), (5, 1)])
def test_channel_shuffle_matches_numpy_reference(c, groups):
    x = np.random.RandomState(c + groups).randn(2, c, 3, 4).astype("float32")
    out = channel_shuffle(paddle.to_tensor(x), groups).numpy()
    np.testing.assert_array_equal(out, _shuffle_reference(x, groups))


def test_channel_shuffle_example_by_hand():
    x = paddle.arange(6, dtype="float32").reshape([1, 6, 1, 1])
    assert channel_shuffle(x, 3).flatten().tolist() == [0, 2, 4, 1, 3, 5]
    assert channel_shuffle(x, 2).flatten().tolist() == [0, 3, 1, 4, 2, 5]


# --------------------------------------------------------------------------- ShuffleNetV1

@pytest.mark.parametrize("scale, groups, params, macs_lo, macs_hi, source", V1_REFERENCE)
def test_v1_sizes_match_paper_and_megvii(scale, groups, params, macs_lo, macs_hi, source):
    model = ppnets.build_model(_v1_name(groups, scale))
    prof = profile_model(model, 224)
    assert macs_lo * 0.95 <= prof.macs <= macs_hi * 1.05, (source, prof.macs)
    if params is not None:
        assert abs(count_params(model) - params) <= 0.05 * params, (source, count_params(model))


def test_v1_channels_follow_paper_table1_and_megvii():
    for g, stages in STAGE_CHANNELS.items():
        assert shufflenet_v1_channels(g, 1.0) == (24, stages)
    # megvii-model/ShuffleNet-Series ShuffleNetV1/network.py: [stem, stage2, stage3, stage4]
    megvii = {(3, 0.5): (12, 120, 240, 480), (3, 1.5): (24, 360, 720, 1440), (3, 2.0): (48, 480, 960, 1920),
              (8, 0.5): (16, 192, 384, 768), (8, 1.5): (24, 576, 1152, 2304), (8, 2.0): (48, 768, 1536, 3072)}
    for (g, s), (stem, *stages) in megvii.items():
        assert shufflenet_v1_channels(g, s) == (stem, tuple(stages))


@pytest.mark.parametrize("groups", sorted(STAGE_CHANNELS))
@pytest.mark.parametrize("scale", sorted(STEM))
def test_v1_every_width_splits_into_groups(groups, scale):
    stem, stages = shufflenet_v1_channels(groups, scale)
    prev = stem
    for c in stages:
        assert c % (4 * groups) == 0 and (c - prev) % groups == 0 and c > prev
        prev = c
    assert stem % groups == 0


def test_v1_g1_has_no_grouped_convs():
    model = ppnets.build_model("ShuffleNetV1_g1_x1_0")
    kinds = {conv_kind(layer) for layer in model.sublayers() if isinstance(layer, nn.Conv2D)}
    assert kinds == {"full", "pointwise", "depthwise"}


def test_v1_group_layout_first_pointwise_of_stage2_is_dense():
    model = ppnets.build_model("ShuffleNetV1_g3_x0_5")
    units = [u for stage in model.stages for u in stage]
    assert len(units) == 16
    assert units[0].conv_pw.conv_layer._groups == 1 and units[0].shuffle_groups == 1
    assert all(u.conv_pw.conv_layer._groups == 3 and u.shuffle_groups == 3 for u in units[1:])
    assert all(u.conv_linear.conv_layer._groups == 3 for u in units)
    assert [u.stride for u in units] == [2, 1, 1, 1, 2] + [1] * 7 + [2, 1, 1, 1]


def _silence_branch(unit: ShuffleV1Unit) -> None:
    bn = unit.conv_linear.bn_layer
    bn.weight.set_value(paddle.zeros_like(bn.weight))
    bn.bias.set_value(paddle.zeros_like(bn.bias))


def test_v1_units_residual_and_pooled_concat():
    paddle.seed(0)
    x = paddle.rand([2, 24, 8, 8])  # non-negative like a post-ReLU input
    unit = ShuffleV1Unit(24, 24, 1, groups=3)
    unit.eval()
    _silence_branch(unit)
    np.testing.assert_allclose(unit(x).numpy(), x.numpy(), rtol=1e-6)  # relu(x + 0)

    down = ShuffleV1Unit(24, 60, 2, groups=3)
    down.eval()
    out = down(x)
    assert out.shape == [2, 60, 4, 4]
    # first 24 channels: 3×3/2 average pool (padding counted, as in megvii's torch model)
    xp = np.pad(x.numpy(), ((0, 0), (0, 0), (1, 1), (1, 1)))
    pooled = np.stack([[xp[:, :, 2 * i:2 * i + 3, 2 * j:2 * j + 3].mean(axis=(2, 3)) for j in range(4)]
                       for i in range(4)], axis=-1).transpose(1, 2, 3, 0)
    np.testing.assert_allclose(out.numpy()[:, :24], pooled, rtol=1e-5, atol=1e-6)
    assert (out.numpy()[:, 24:] >= 0).all()


@pytest.mark.parametrize("kwargs, match", [({"groups": 5}, "unsupported groups 5"),
                                           ({"scale": 0.75}, "unsupported scale 0.75")])
def test_v1_bad_options_are_config_errors(kwargs, match):
    with pytest.raises(ConfigError, match=match):
        ppnets.build_model("ShuffleNetV1_g3_x1_0", **kwargs)


# --------------------------------------------------------------------------- ShuffleNetV2

def test_v2_unit_keeps_first_half_at_even_channels():
    paddle.seed(0)
    unit = ShuffleUnit(8)
    unit.eval()
    x = paddle.randn([1, 8, 5, 5])
    out = unit(x).numpy()
    # concat([x1, branch(x2)]) shuffled with 2 groups: x1 lands on the even output channels
    np.testing.assert_array_equal(out[:, 0::2], x.numpy()[:, :4])
    assert (out[:, 1::2] >= 0).all()  # the branch ends with a ReLU


def test_v2_swish_variant_is_x1_0_with_swish():
    swish = ppnets.build_model("ShuffleNetV2_swish")
    relu = ppnets.build_model("ShuffleNetV2_x1_0")
    acts = lambda m, t: sum(isinstance(layer, t) for layer in m.sublayers())  # noqa: E731
    assert acts(swish, nn.Swish) == acts(relu, nn.ReLU) > 0 and acts(swish, nn.ReLU) == 0
    assert count_params(swish) == count_params(relu)


# paper Table 5 (MFLOPs = MACs, params): the PaddleClas layout matches within rounding
@pytest.mark.parametrize("name, params, macs", [("ShuffleNetV2_x0_5", 1.4 * M, 41 * M),
                                                ("ShuffleNetV2_x1_0", 2.3 * M, 146 * M)])
def test_v2_close_to_paper_table5(name, params, macs):
    model = ppnets.build_model(name)
    assert abs(count_params(model) - params) <= 0.05 * params
    assert abs(profile_model(model, 224).macs - macs) <= 0.02 * macs


def test_v2_unknown_scale_is_a_config_error():
    with pytest.raises(ConfigError, match="unsupported scale 0.75"):
        ppnets.build_model("ShuffleNetV2_x1_0", scale=0.75)
