"""PP-LCNetV2: the RepDepthwise block and its fusion, PaddleClas's fused slot, stages, timm's key mapping."""
from __future__ import annotations

import re

import numpy as np
import paddle
import pytest

import ppnets
from ppnets.analysis.blocks import describe_block
from ppnets.arch.layers import make_divisible
from ppnets.arch.pp_lcnet_v2 import ARCH, DROPOUT, RepDepthwiseSeparable, from_timm
from ppnets.arch.reparam import inference_only_parameters

from helpers.models import randomize_bn_statistics
from helpers.reference import check_paddleclas_file_loads, manifest


def _slots(name):
    """The fused slots of PaddleClas's manifest: ``dw_conv`` with a bias (a plain conv, next to its branches)."""
    keys = [k for k, _ in manifest(name)]
    return sorted(k for k in keys if re.search(r"\.dw_conv\.(weight|bias)$", k)
                  and k.rsplit(".", 2)[0] + ".dw_conv_list.0.conv.weight" in keys)


def test_fused_equals_unfused_and_the_branches_are_gone():
    paddle.seed(0)
    model = ppnets.build_model("PPLCNetV2_small", class_num=5)
    randomize_bn_statistics(model)
    model.eval()
    x = paddle.randn([2, 3, 64, 64])
    slots = _slots("PPLCNetV2_small")
    assert sorted(inference_only_parameters(model)) == slots and slots
    before_bn = sum(isinstance(m, paddle.nn.BatchNorm2D) for m in model.sublayers())
    branches = sum(len(b.dw_conv_list) for b in model.sublayers() if getattr(b, "rep", False))
    with paddle.no_grad():
        ref = model(x).numpy()
        model.reparameterize()
        out = model(x).numpy()
    assert np.abs(out - ref).max() <= 1e-5 * (1 + np.abs(ref).max())
    keys = model.state_dict()
    assert not any("dw_conv_list" in k for k in keys) and set(slots) <= set(keys)
    assert sum(isinstance(m, paddle.nn.BatchNorm2D) for m in model.sublayers()) == before_bn - branches
    assert inference_only_parameters(model) == []
    with paddle.no_grad():
        assert np.array_equal(model.reparameterize()(x).numpy(), out)   # a second call changes nothing


@pytest.mark.parametrize("stride, kernels", [(1, [5, 3, 1]), (2, [5, 3])])
def test_rep_block_branches_and_shortcut(stride, kernels):
    """Branches k, k-2, …, 1 (no 1×1 at stride 2, as PaddleClas); the slot gets no gradient in training."""
    paddle.seed(1)
    block = RepDepthwiseSeparable(8, 8, stride, 5, rep=True, shortcut=True)
    assert [b.conv_layer._kernel_size[0] for b in block.dw_conv_list] == kernels
    assert block.shortcut == (stride == 1)
    x = paddle.randn([2, 8, 6, 6])
    block.train()
    block(x).mean().backward()
    assert block.dw_conv.weight.grad is None and block.dw_conv.bias.grad is None
    assert all(b.conv_layer.weight.grad is not None for b in block.dw_conv_list)
    info = describe_block(block)
    assert info.residual == (stride == 1) and info.kernel == 5 and info.stride == stride


def test_stages_follow_the_table():
    info = ppnets.model_info("PPLCNetV2_large")
    scale, depths = info.defaults["scale"], info.defaults["depths"]
    with paddle.LazyGuard():
        model = info.build()
    assert [f["module"] for f in model.feature_info] == [f"stages.{i}" for i in range(len(ARCH))]
    assert [f["num_chs"] for f in model.feature_info] == [make_divisible(2 * row[0] * scale) for row in ARCH]
    assert [f["reduction"] for f in model.feature_info] == [4, 8, 16, 32]
    for stage, (_, k, split_pw, rep, se, shortcut), depth in zip(model.stages, ARCH, depths):
        assert len(stage) == depth
        assert [b.shortcut for b in stage] == [shortcut and j > 0 for j in range(depth)]
        assert all(b.rep == rep and (b.se is not None) == se and hasattr(b, "pw_conv_2") == split_pw for b in stage)


def test_from_timm_renames_and_rescales_the_classifier():
    w = np.arange(6, dtype="float32").reshape(3, 2)       # timm's Linear orientation [out, in]
    sd = {"stages.2.0.se.fc1.weight": 1, "stages.2.0.pw_conv.1.bn._mean": 2, "stages.3.1.pw_conv.conv.weight": 3,
          "conv_head.weight": 4, "classifier.weight": w, "classifier.bias": 5,
          "stages.3.1.dw_conv_list.0.conv.weight": np.ones((4, 1, 5, 5), "float32")}
    out = from_timm(sd)
    assert set(out) == {"stages.2.0.se.conv1.weight", "stages.2.0.pw_conv_2.bn._mean", "stages.3.1.pw_conv.conv.weight",
                        "last_conv.weight", "fc.weight", "fc.bias", "stages.3.1.dw_conv_list.0.conv.weight",
                        "stages.3.1.dw_conv.weight", "stages.3.1.dw_conv.bias"}
    # timm scales its dropout in training, PaddleClas's (downscale_in_infer) at inference
    np.testing.assert_allclose(out["fc.weight"], w / (1 - DROPOUT))
    assert out["stages.3.1.dw_conv.weight"].shape == (4, 1, 5, 5) and out["stages.3.1.dw_conv.bias"].shape == (4,)


def test_paddleclas_file_loads_completely(tmp_path):
    check_paddleclas_file_loads("PPLCNetV2_small", str(tmp_path))
