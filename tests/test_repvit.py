"""RepViT: the distillation head, fusion (conv-BN, RepVGG token mixer, BN → Linear heads), timm's layout."""
from __future__ import annotations

import numpy as np
import paddle
import paddle.nn as nn
import pytest

import ppnets
from ppnets.analysis.blocks import describe_block
from ppnets.arch.layers import DepthwiseConv2D
from ppnets.arch.repvit import ARCHS, RepVggDw, RepViTBlock, RepViTDownsample, RepViTHead
from ppnets.errors import ConfigError

from helpers.models import randomize_bn_statistics



def _small(class_num=5, **kw):
    """A half-width RepViT-M0.9 in eval mode with random BN affine parameters and statistics. Those of
    the BatchNorm2D layers are calibrated on a batch: with arbitrary ones the 19 residual blocks blow
    the activations up until float32 rounding alone moves the logits by 1e-3 of their size."""
    paddle.seed(0)
    model = ppnets.build_model("RepViT_m0_9", class_num=class_num, width_mult=0.5, **kw)
    randomize_bn_statistics(model)   # BatchNorm2D and the heads' BatchNorm1D
    norms = [layer for layer in model.sublayers() if isinstance(layer, nn.BatchNorm2D)]
    for layer in norms:
        layer._momentum = 0.0          # the running statistics become the calibration batch's
    model.train()
    with paddle.no_grad():
        model(paddle.to_tensor(np.random.default_rng(4).standard_normal((8, 3, 32, 32)).astype("float32")))
    for layer in norms:
        layer._momentum = 0.9
    model.eval()
    return model


def _x(size=32):
    return paddle.to_tensor(np.random.default_rng(3).standard_normal((2, 3, size, size)).astype("float32"))


def test_eval_output_is_the_average_of_both_heads():
    paddle.seed(0)
    model = ppnets.build_model("RepViT_m0_9", class_num=5, width_mult=0.25)
    randomize_bn_statistics(model)
    model.eval()
    head = model.head
    with paddle.no_grad():
        feats = model.forward_features(_x())
        pooled = model.forward_head(feats, pre_logits=True)
        out = model.forward_head(feats).numpy()
        a, b = head.head(pooled).numpy(), head.head_dist(pooled).numpy()
    np.testing.assert_allclose(pooled.numpy(), feats.numpy().mean(axis=(2, 3)), rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(out, (a + b) / 2, rtol=1e-6, atol=1e-6)
    assert np.abs(a - b).max() > 0.1                               # two different heads, really averaged
    # each head is BN → Linear: by hand
    bn, lin = head.head_dist.bn, head.head_dist.l
    norm = (pooled.numpy() - bn._mean.numpy()) / np.sqrt(bn._variance.numpy() + bn._epsilon) * bn.weight.numpy() \
        + bn.bias.numpy()
    np.testing.assert_allclose(b, norm @ lin.weight.numpy() + lin.bias.numpy(), rtol=1e-4, atol=1e-5)


def test_head_interface_and_the_plain_head():
    model = ppnets.build_model("RepViT_m0_9", class_num=5, width_mult=0.25)
    model.eval()
    assert model.get_classifier() is model.head.head and model.head_hidden_size == model.num_features == 96
    model.reset_classifier(3)
    head = model.head
    assert head.head.l.weight.shape == head.head_dist.l.weight.shape == [96, 3] and model(_x()).shape == [2, 3]
    plain = ppnets.build_model("RepViT_m0_9", class_num=4, distillation=False, width_mult=0.25)
    assert plain.head.head_dist is None and not any("head_dist" in k for k in plain.state_dict())
    plain.eval()
    with paddle.no_grad():
        feats = plain.forward_features(_x())
        np.testing.assert_array_equal(plain.forward_head(feats).numpy(),
                                      plain.head.head(plain.forward_head(feats, pre_logits=True)).numpy())
    with paddle.LazyGuard():
        features = ppnets.build_model("RepViT_m0_9", class_num=0, width_mult=0.25)
    assert not any(k.startswith("head.") for k in features.state_dict())   # (its forward: test_model_interface)


@pytest.fixture(scope="module")
def fused():
    """A half-width RepViT-M0.9 with random BN statistics: its eval logits, then fused in place."""
    model = _small()
    with paddle.no_grad():
        before = model(_x()).numpy()
    model.reparameterize()
    return model, before


def test_fused_model_equals_the_unfused_one(fused):
    """Within 1e-4 of the logits' size: through 19 residual blocks on random weights, float32 rounding
    alone moves them by 1.5e-5 of it (this model's float32 and float64 logits); a wrong fusion moves
    them by far more. The units are checked to 1e-5 below."""
    model, before = fused
    with paddle.no_grad():
        after = model(_x()).numpy()
    assert np.abs(before).max() > 1.0
    assert np.abs(after - before).max() <= 1e-4 * (1 + np.abs(before).max())


@pytest.mark.parametrize("unit", ["block_se", "downsample", "head"])
def test_each_unit_fuses_exactly(unit):
    """A RepViT block (RepVGG token mixer + SE + FFN), a downsampling unit, the two BN → Linear heads."""
    paddle.seed(1)
    layer = {"block_se": lambda: RepViTBlock(16, 2, 3, use_se=True),
             "downsample": lambda: RepViTDownsample(16, 24, 2, 3),
             "head": lambda: RepViTHead(16, 7)}[unit]()
    randomize_bn_statistics(layer)
    layer = nn.Sequential(layer)     # fusing visits the children of what it is given
    layer.eval()
    x = paddle.to_tensor(np.random.default_rng(5).standard_normal((2, 16, 8, 8)).astype("float32"))
    with paddle.no_grad():
        before = layer(x).numpy()
        ppnets.reparameterize(layer)
        after = layer(x).numpy()
    assert not any(isinstance(m, (nn.BatchNorm1D, nn.BatchNorm2D)) for m in layer.sublayers())
    assert np.abs(after - before).max() <= 1e-5 * (1 + np.abs(before).max())


def test_fused_blocks_have_one_token_mixer_conv_and_no_batchnorm(fused):
    model, _ = fused
    assert not any(isinstance(layer, (nn.BatchNorm2D, nn.BatchNorm1D)) for layer in model.sublayers())
    blocks = [layer for layer in model.sublayers() if isinstance(layer, RepViTBlock)]
    assert len(blocks) == sum(sum(ARCHS["m0_9"][1]) for _ in [0]) + 3      # + the 3 downsamplings' pre-blocks
    for b in blocks:
        mixer = b.token_mixer
        assert isinstance(mixer, DepthwiseConv2D) and mixer._kernel_size == [3, 3] and mixer.bias is not None
        assert all(isinstance(m, nn.Conv2D) and m.bias is not None
                   for m in (b.channel_mixer.conv1, b.channel_mixer.conv2))
    assert not any(isinstance(layer, RepVggDw) for layer in model.sublayers())
    # the two BN → Linear heads are one Linear
    assert isinstance(model.head.head, nn.Linear) and model.head.head_dist is None
    assert [k for k in model.state_dict() if k.startswith("head.")] == ["head.head.weight", "head.head.bias"]
    info = describe_block(blocks[-1])
    assert info.residual and info.pre[0].kind == "depthwise" and info.pre[0].label == "3×3 dw 192"


def test_a_fused_repvit_refuses_to_train(fused):
    model, _ = fused
    with pytest.raises(ConfigError, match="RepViT is re-parameterized .* cannot be trained"):
        model.train()


def test_stages_downsample_and_alternate_squeeze_excite():
    model = ppnets.build_model("RepViT_m1_1", width_mult=0.25)
    assert model.stages[0].downsample is None
    assert all(isinstance(s.downsample, RepViTDownsample) for s in list(model.stages)[1:])
    assert [b.se is not None for b in model.stages[2].blocks] == [j % 2 == 0 for j in range(12)]
    assert model.stages[1].downsample.pre_block.se is None
    assert [(d["num_chs"], d["reduction"]) for d in model.feature_info] == [(16, 4), (32, 8), (64, 16), (128, 32)]
    # the FFN's second BN starts at 0: a fresh block is its token mixer (+ SE) alone
    block = model.stages[0].blocks[1]
    block.eval()
    x = _x(8)[:, :1].expand([2, 16, 8, 8])
    with paddle.no_grad():
        np.testing.assert_allclose(block(x).numpy(), block.token_mixer(x).numpy(), rtol=1e-6, atol=1e-6)


def test_unknown_variant_and_the_imagenet_recipe():
    with pytest.raises(ConfigError, match=r"RepViT: unknown variant 'm0_8' \(did you mean 'm0_9'\?\)"):
        ppnets.build_model("RepViT_m0_9", variant="m0_8")
    import os
    from ppnets.config import load_config
    from helpers.runs import REPO
    cfg = load_config(os.path.join(REPO, "configs", "ImageNet", "RepViT", "RepViT_m2_3.yaml"))
    opt = cfg["Optimizer"]
    assert (opt["name"], opt["lr"]["learning_rate"], opt["weight_decay"], cfg["EMA"]["decay"]) == \
        ("AdamW", 0.004, 0.025, 0.99996)
    assert cfg["DataLoader"]["Train"]["dataset"]["batch_transform_ops"] == [
        {"MixupCutmix": {"mixup_alpha": 0.8, "cutmix_alpha": 1.0, "prob": 1.0, "switch_prob": 0.5}}]
