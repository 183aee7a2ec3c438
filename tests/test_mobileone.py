"""MobileOne: the branched blocks, their fusion into one convolution, timm's layout and sizes."""
from __future__ import annotations

import numpy as np
import paddle
import paddle.nn as nn
import pytest

import ppnets
from ppnets.analysis.blocks import describe_block
from ppnets.arch.mobileone import MobileOneBlock
from ppnets.errors import ConfigError

from helpers.models import randomize_bn_statistics



def _blocks(model):
    return [layer for layer in model.sublayers() if isinstance(layer, MobileOneBlock)]


@pytest.fixture(scope="module", params=[("MobileOne_s0", 0.25), ("MobileOne_s4", 0.125)], ids=["s0", "s4"])
def fused_pair(request):
    """A narrow S0 (4 conv branches) and S4 (squeeze-excite), random BN statistics, eval-mode logits
    on a 32-px batch before fusing, then the model fused in place."""
    name, width = request.param
    paddle.seed(0)
    model = ppnets.build_model(name, class_num=5, width_mult=width)
    randomize_bn_statistics(model)
    rng = np.random.default_rng(1)
    fc = model.get_classifier().weight   # timm's init (std 0.01) would leave the logits near 0
    fc.set_value((rng.standard_normal(fc.shape) / np.sqrt(fc.shape[0])).astype("float32"))
    model.eval()
    x = paddle.to_tensor(rng.standard_normal((2, 3, 32, 32)).astype("float32"))
    with paddle.no_grad():
        before = model(x).numpy()
    n_blocks = len(_blocks(model))
    model.reparameterize()
    return name, model, x, before, n_blocks


def test_fused_model_equals_the_branched_one(fused_pair):
    name, model, x, before, _ = fused_pair
    with paddle.no_grad():
        after = model(x).numpy()
    assert np.abs(before).max() > 0.1
    assert np.abs(after - before).max() <= 1e-5 * (1 + np.abs(before).max()), name


def test_fused_blocks_are_one_conv_each(fused_pair):
    name, model, _, _, n_blocks = fused_pair
    blocks = _blocks(model)
    assert len(blocks) == n_blocks == 1 + 2 * 21                  # stem + 21 depthwise/pointwise pairs
    assert not any(isinstance(layer, nn.BatchNorm2D) for layer in model.sublayers())
    se = sum(b.attn is not None for b in blocks)
    assert se == (12 if name.endswith("s4") else 0)               # S4: last 5 pairs of stage 3, last of stage 4
    convs = [layer for layer in model.sublayers() if isinstance(layer, nn.Conv2D)]
    assert len(convs) == n_blocks + 2 * se                        # one per block, plus the SE's two 1×1
    for b in blocks:
        assert b.conv_kxk is None and b.conv_scale is None and b.identity is None
        assert b.reparam_conv.bias is not None and b.reparam_conv._kernel_size == [b.kernel_size] * 2
        assert describe_block(b).branches and len(describe_block(b).branches) == 1
    state = model.state_dict()
    assert "stem.reparam_conv.weight" in state and not any(".conv_kxk." in k or ".identity." in k for k in state)


def test_a_fused_mobileone_refuses_to_train(fused_pair):
    name, model, _, _, _ = fused_pair
    with pytest.raises(ConfigError, match="MobileOne is re-parameterized .* cannot be trained"):
        model.train()


def test_branches_follow_the_block_shape():
    """S0 trains 4 k×k branches, the others 1; the 1×1 scale branch is in 3×3 blocks only, the BN
    identity where the block keeps the shape; a stage opens with a stride-2 depthwise block."""
    with paddle.LazyGuard():
        s0 = ppnets.build_model("MobileOne_s0", width_mult=0.25)
        s1 = ppnets.build_model("MobileOne_s1", width_mult=0.25)
    stage = s0.stages[1]
    dw, pw, dw2 = stage[0], stage[1], stage[2]
    assert [len(b.conv_kxk) for b in (dw, pw)] == [4, 4]
    assert dw.conv_kxk[0].conv_layer._stride == [2, 2] and dw.groups == dw.conv_kxk[0].conv_layer._in_channels
    assert dw.identity is None and dw.conv_scale is not None                      # stride 2
    assert pw.identity is None and pw.conv_scale is None and pw.kernel_size == 1  # 16 → 32 channels
    assert dw2.identity is not None and dw2.conv_scale is not None
    assert len(s1.stages[1][0].conv_kxk) == 1
    # 0.25 × (48, 128, 256, 1024), multiples of 8
    assert [d["num_chs"] for d in s0.feature_info] == [16, 32, 64, 256]
    info = describe_block(dw2)
    assert info.merge == "add" and len(info.branches) == 6 and info.residual   # 4 k×k + scale + identity
    with paddle.LazyGuard():   # the digits config's shallower S0; S4's SE pairs are the last ones that remain
        short = ppnets.build_model("MobileOne_s4", depth_mult=0.25)
    assert [len(stage) for stage in short.stages] == [2, 4, 6, 2]                # pairs ceil((2, 8, 10, 1) / 4)
    assert [b.attn is not None for b in short.stages[2]] == [True] * 6 and short.stages[3][0].attn is not None
    assert short.stages[1][0].attn is None


def test_squeeze_excite_path_trains():
    """S4's squeeze-excite blocks at a small width: every parameter gets a gradient (S4 itself is
    only built and counted in the generic tests)."""
    paddle.seed(0)
    model = ppnets.build_model("MobileOne_s4", class_num=3, width_mult=0.125)
    model.train()
    out = model(paddle.randn([2, 3, 32, 32]))
    out.mean().backward()
    missing = [p.name for p in model.parameters() if not p.stop_gradient and p.grad is None]
    assert out.shape == [2, 3] and not missing
    assert model.stages[2][-1].attn.fc1.weight.grad is not None


def test_unknown_variant_and_the_imagenet_recipe():
    with pytest.raises(ConfigError, match=r"MobileOne: unknown variant 's5'; valid: s0, s1, s2, s3, s4"):
        ppnets.build_model("MobileOne_s0", variant="s5")
    from ppnets.config import load_config
    from helpers.runs import REPO
    import os
    s0, s4 = (load_config(os.path.join(REPO, "configs", "ImageNet", "MobileOne", f"MobileOne_{v}.yaml"))
              for v in ("s0", "s4"))
    opt = s0["Optimizer"]
    assert (s0["Global"]["epochs"], opt["name"], opt["lr"]["learning_rate"], opt["regularizer"]["coeff"],
            s0["EMA"]["decay"], s0["DataLoader"]["Train"]["sampler"]["batch_size"]) == (300, "Momentum", 0.1, 1e-4,
                                                                                          0.9995, 64)
    ops = [next(iter(op)) for op in s4["DataLoader"]["Train"]["dataset"]["transform_ops"]]
    assert "RandAugment" in ops and "RandAugment" not in [next(iter(op)) for op in
                                                           s0["DataLoader"]["Train"]["dataset"]["transform_ops"]]
