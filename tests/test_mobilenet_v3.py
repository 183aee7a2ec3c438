"""MobileNetV3: the paper-exact option's figures, PaddleClas's SE / gate / dropout conventions, h-swish."""
from __future__ import annotations

import numpy as np
import paddle
import pytest

import ppnets
import ppnets.errors
from ppnets.analysis import profile_model
from ppnets.arch.mobilenet_v3 import ResidualUnit


def test_paper_exact_small_hits_table2_figures():
    # paper Table 4 (small 1.0): 2.5M params, 56M MAdds; torchvision's mobilenet_v3_small (the
    # paper's layout, last conv 1024) has 2,542,856 params at 1000 classes (torchvision model docs)
    model = ppnets.build_model("MobileNetV3_small_x1_0", paper_exact=True)
    prof = profile_model(model, 224)
    assert prof.params == 2_542_856
    assert abs(prof.macs - 56e6) <= 0.02 * 56e6
    keys = dict((k, v.shape) for k, v in model.state_dict().items())
    assert "blocks.0.expand_conv.conv.weight" not in keys and "blocks.1.expand_conv.conv.weight" in keys
    assert keys["last_conv.weight"] == [1024, 576, 1, 1] and keys["fc.weight"] == [1024, 1000]
    assert keys["last_conv.bias"] == [1024] and keys["blocks.0.mid_se.conv1.weight"] == [8, 16, 1, 1]
    # the reference code's SE width make_divisible(mid / 4, 8), not PaddleClas's mid // 4
    assert [b.mid_se.conv1.weight.shape[0] for b in model.blocks if b.mid_se is not None] == \
        [8, 24, 64, 64, 32, 40, 72, 144, 144]


def test_large_paddleclas_layout_matches_table3():
    # paper Table 3 (large 1.0): 5.4M params (5.48M, truncated like small's 2.54M), 219M MAdds
    prof = profile_model(ppnets.build_model("MobileNetV3_large_x1_0"), 224)
    assert 5.4e6 <= prof.params < 5.5e6
    assert abs(prof.macs - 219e6) <= 0.01 * 219e6
    exact = profile_model(ppnets.build_model("MobileNetV3_large_x1_0", paper_exact=True), 224)
    assert exact.params == 5_483_032                                 # torchvision's mobilenet_v3_large
    assert abs(exact.macs - 219e6) <= 0.02 * 219e6


def test_se_reduction_is_plain_quarter_and_shortcuts():
    model = ppnets.build_model("MobileNetV3_small_x0_35")
    # PaddleClas's SE squeezes to mid // 4 with no rounding to 8
    assert [b.mid_se.conv1.weight.shape[0] for b in model.blocks if b.mid_se is not None] == \
        [2, 8, 22, 22, 10, 12, 26, 50, 50]
    large = ppnets.build_model("MobileNetV3_large_x1_0")
    assert [i for i, b in enumerate(large.blocks) if b.has_skip] == [0, 2, 4, 5, 7, 8, 9, 11, 13, 14]


def _np_hswish(x):
    return x * np.clip(x + 3, 0, 6) / 6


@pytest.mark.parametrize("paper_exact,gate", [(False, lambda s: np.clip(0.2 * s + 0.5, 0, 1)),
                                               (True, lambda s: np.clip(s + 3, 0, 6) / 6)])
def test_residual_unit_matches_numpy(paper_exact, gate):
    paddle.seed(3)
    unit = ResidualUnit(8, 8, 8, 3, 1, use_se=True, act="hardswish", expand=not paper_exact,
                        se_gate="hardsigmoid" if paper_exact else "hardsigmoid_pc")
    unit.eval()
    x = (np.random.RandomState(0).randn(2, 8, 5, 5) * 3).astype("float32")
    out = unit(paddle.to_tensor(x)).numpy()

    bn = 1 / np.sqrt(1 + 1e-5)  # fresh BN in eval
    pw = lambda conv, t: np.einsum("oc,nchw->nohw", conv.weight.numpy()[:, :, 0, 0], t)  # noqa: E731
    y = _np_hswish(pw(unit.expand_conv.conv, x) * bn) if not paper_exact else x
    wd = unit.bottleneck_conv.conv.weight.numpy()[:, 0]
    yp = np.pad(y, ((0, 0), (0, 0), (1, 1), (1, 1)))
    dw = np.stack([np.stack([(yp[:, :, i:i + 3, j:j + 3] * wd[None]).sum((2, 3)) for j in range(5)], -1)
                   for i in range(5)], -2)
    y = _np_hswish(dw * bn)
    se = unit.mid_se
    s = y.mean((2, 3))
    s = np.maximum(s @ se.conv1.weight.numpy()[:, :, 0, 0].T + se.conv1.bias.numpy(), 0)
    s = gate(s @ se.conv2.weight.numpy()[:, :, 0, 0].T + se.conv2.bias.numpy())
    y = pw(unit.linear_conv.conv, y * s[:, :, None, None]) * bn
    np.testing.assert_allclose(out, x + y, rtol=1e-4, atol=1e-4)


def test_dropout_is_downscale_in_infer():
    # PaddleClas trains with Dropout(mode="downscale_in_infer"): eval multiplies by 1 - p
    paddle.seed(0)
    a = ppnets.build_model("MobileNetV3_small_x0_35", class_num=5)
    b = ppnets.build_model("MobileNetV3_small_x0_35", class_num=5, dropout=0.0)
    b.set_state_dict(a.state_dict())
    a.eval(), b.eval()
    feats = paddle.randn([2, 200, 2, 2])
    bias = a.fc.bias.numpy()
    with paddle.no_grad():
        np.testing.assert_allclose(a.forward_head(feats).numpy() - bias,
                                   0.8 * (b.forward_head(feats).numpy() - bias), rtol=1e-4, atol=1e-5)


@pytest.mark.parametrize("hw", [(32, 32), (40, 72)])
def test_small_and_rectangular_inputs(hw):
    model = ppnets.build_model("MobileNetV3_large_x0_35", class_num=3)
    model.eval()
    with paddle.no_grad():
        feats = model.forward_features(paddle.zeros([1, 3, *hw]))
        out = model.forward_head(feats)
    assert feats.shape == [1, 336, -(-hw[0] // 32), -(-hw[1] // 32)]
    assert out.shape == [1, 3] and model.num_features == 336 and model.head_hidden_size == 1280


def test_unknown_variant():
    with pytest.raises(ppnets.errors.ConfigError, match=r"unknown variant 'smal'.*did you mean 'small'"):
        ppnets.build_model("MobileNetV3_small_x1_0", variant="smal")
