"""GhostNetV3: fusion of the re-parameterized Ghost modules and depthwise convs, the DFC attention gate,
stages, and timm's key layout (the logits against timm's: tests/test_timm_reference.py)."""
from __future__ import annotations

import os

import numpy as np
import paddle
import paddle.nn.functional as F
import pytest

import ppnets
from ppnets.arch.ghostnet_v3 import ARCH, ATTN_FROM, STAGES, GhostModuleV3

from helpers.models import randomize_bn_statistics
from helpers.reference import TIMM


def _convs(model):
    return sum(isinstance(m, paddle.nn.Conv2D) for m in model.sublayers())


def test_fused_equals_unfused_and_the_branches_are_gone():
    paddle.seed(0)
    model = ppnets.build_model("GhostNetV3_x0_5", class_num=5)
    randomize_bn_statistics(model, gamma=(0.2, 0.5))   # (smaller scales: up to 5 branches are summed, 16 blocks deep)
    model.eval()
    x = paddle.randn([2, 3, 64, 64])
    convs = _convs(model)
    with paddle.no_grad():
        ref = model(x).numpy()
        model.reparameterize()
        out = model(x).numpy()
    assert 1 < np.abs(ref).max() < 1e3 and np.abs(out - ref).max() <= 1e-5 * (1 + np.abs(ref).max())
    # each Ghost module: 3 + 3 + 1 branch convs → 2; each stride-2 depthwise: 3 + 1 → 1
    strided = sum(row[4] == 2 for row in ARCH)
    assert convs - _convs(model) == 2 * len(ARCH) * (7 - 2) + strided * (4 - 1)
    keys = list(model.state_dict())
    assert not any("_rpr_" in k for k in keys)
    # the fused layers carry timm's deploy-form names
    assert {"blocks.1.0.ghost1.primary_conv.0.bias", "blocks.1.0.ghost1.cheap_operation.0.weight",
            "blocks.1.0.conv_dw.weight", "blocks.1.0.conv_dw.bias"} <= set(keys)
    with paddle.no_grad():
        assert np.array_equal(model.reparameterize()(x).numpy(), out)   # a second call changes nothing


def test_keys_and_stages_are_timms():
    with paddle.LazyGuard():
        model = ppnets.build_model("GhostNetV3_x1_3")
    with open(os.path.join(TIMM, "ghostnetv3_130.keys.txt")) as f:
        timm = [line.split(" ", 1)[0] for line in f if line.strip()]
    renamed = [k.replace("running_mean", "_mean").replace("running_var", "_variance") for k in timm]
    assert list(model.state_dict()) == renamed
    # a stage per resolution: it starts at a stride-2 container (timm's blocks.<i>)
    firsts = np.cumsum((0,) + STAGES[:-1])
    starts = [i for i, row in enumerate(firsts) if i == 0 or ARCH[row][4] == 2]
    assert [f["modules"][0] for f in model.feature_info] == [f"blocks.{i}" for i in starts]
    assert [f["reduction"] for f in model.feature_info] == [2, 4, 8, 16, 32]
    gated = [i for i, b in enumerate(b for s in model.blocks[:len(STAGES)] for b in s) if b.ghost1.short_conv is not None]
    assert gated == list(range(ATTN_FROM, len(ARCH)))


@pytest.mark.parametrize("size, kernel", [((1, 1), (1, 1)), ((1, 4), (1, 2)), ((5, 7), (2, 2)), ((6, 6), (2, 2))])
def test_attention_gate_pools_2x2_where_the_map_allows(size, kernel):
    """timm's 2×2/2 pooling before the DFC branch; a side of 1 (a 32-px input's last stage) is not pooled."""
    paddle.seed(2)
    module = GhostModuleV3(6, 8, attention=True)
    randomize_bn_statistics(module)
    module.eval()
    x = paddle.randn([1, 6, *size])
    with paddle.no_grad():
        out = module(x)
        branch = module.short_conv
        module.short_conv = None                      # the same module without its gate
        plain = module(x)
        gate = F.sigmoid(branch(F.avg_pool2d(x, kernel, kernel)))
    expected = plain * F.interpolate(gate, size=list(size), mode="nearest")
    np.testing.assert_allclose(out.numpy(), expected.numpy(), rtol=1e-6, atol=1e-6)
