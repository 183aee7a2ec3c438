"""The model contract for re-parameterized families (:mod:`ppnets.arch.reparam`) and the fast CPU
conv path for every convolution of every registered model."""
from __future__ import annotations

import numpy as np
import paddle
import paddle.nn as nn
import pytest

import ppnets
from ppnets.arch import ClassificationModel, FamilyHead, reparameterize
from ppnets.arch.layers import DepthwiseConv2D, FastConv2D
from ppnets.arch.reparam import fuse_conv_bn, fused_conv, identity_kernel, pad_kernel, fuse_bn
from ppnets.errors import ConfigError

from helpers.models import randomize_bn_statistics


class ToyRepBlock(nn.Layer):
    """RepVGG's block: k×k conv-BN + 1×1 conv-BN + BN identity, summed, ReLU; fuses to one k×k conv."""

    def __init__(self, channels: int, groups: int = 1, k: int = 3) -> None:
        super().__init__()
        self.k, self.groups = k, groups
        self.conv_kxk = nn.Conv2D(channels, channels, k, padding=k // 2, groups=groups, bias_attr=False)
        self.bn_kxk = nn.BatchNorm2D(channels)
        self.conv_1x1 = nn.Conv2D(channels, channels, 1, groups=groups, bias_attr=False)
        self.bn_1x1 = nn.BatchNorm2D(channels)
        self.bn_id = nn.BatchNorm2D(channels)
        self.reparam_conv = None

    def forward(self, x):
        if self.reparam_conv is not None:
            return nn.functional.relu(self.reparam_conv(x))
        y = self.bn_kxk(self.conv_kxk(x)) + self.bn_1x1(self.conv_1x1(x)) + self.bn_id(x)
        return nn.functional.relu(y)

    def reparameterize(self):
        if self.reparam_conv is not None:
            return
        w1, b1 = fuse_conv_bn(self.conv_kxk, self.bn_kxk)
        w2, b2 = fuse_conv_bn(self.conv_1x1, self.bn_1x1)
        c = self.conv_kxk.weight.shape[0]
        w3, b3 = fuse_bn(identity_kernel(c, self.groups, self.k), self.bn_id)
        self.reparam_conv = fused_conv(self.conv_kxk, w1 + pad_kernel(w2, self.k) + w3, b1 + b2 + b3)
        for name in ("conv_kxk", "bn_kxk", "conv_1x1", "bn_1x1", "bn_id"):
            delattr(self, name)


class ToyHead(FamilyHead):
    """BatchNorm → Linear with a distillation twin, averaged (RepViT's head)."""

    def __init__(self, channels: int, class_num: int) -> None:
        super().__init__()
        self.hidden_size, self.channels = channels, channels
        self.pool = nn.AdaptiveAvgPool2D(1)
        self.reset_classifier(class_num)

    def reset_classifier(self, class_num):
        self.class_num = class_num
        self.head = nn.Sequential(nn.BatchNorm1D(self.channels), nn.Linear(self.channels, class_num))
        self.head_dist = nn.Sequential(nn.BatchNorm1D(self.channels), nn.Linear(self.channels, class_num))

    def get_classifier(self):
        return self.head

    def forward(self, x, pre_logits=False):
        x = paddle.flatten(self.pool(x), 1)
        if pre_logits:
            return x
        return (self.head(x) + self.head_dist(x)) / 2


class ToyRepNet(ClassificationModel):
    def __init__(self, class_num: int = 5, width: int = 8) -> None:
        super().__init__()
        self.stem = nn.Conv2D(3, width, 3, stride=2, padding=1)
        self.stages = nn.Sequential(ToyRepBlock(width), ToyRepBlock(width, groups=width), ToyRepBlock(width, k=5))
        self.stem_modules = ("stem",)
        self.add_stage("stages", width, 2)
        self.head = ToyHead(width, class_num)
        self.init_family_head("head", width, class_num)


def test_fused_equals_unfused_on_a_toy_branchy_model():
    paddle.seed(0)
    model = ToyRepNet()
    randomize_bn_statistics(model)
    model.eval()
    x = paddle.randn([2, 3, 20, 20])
    with paddle.no_grad():
        before = model(x).numpy()
        n_convs = sum(isinstance(l, nn.Conv2D) for l in model.sublayers())
        assert ppnets.reparameterize(model) is model
        after = model(x).numpy()
    assert n_convs == 7 and sum(isinstance(l, nn.Conv2D) for l in model.sublayers()) == 4
    assert np.abs(after - before).max() <= 1e-5 * (1 + np.abs(before).max())
    assert model.reparameterize() is model   # a second call changes nothing
    with paddle.no_grad():
        assert np.array_equal(model(x).numpy(), after)
    # the fused convolutions are on the fast path: depthwise where it is depthwise
    assert isinstance(model.stages[1].reparam_conv, DepthwiseConv2D)
    assert type(model.stages[0].reparam_conv) is FastConv2D


def test_a_fused_model_refuses_to_train_and_fusing_switches_to_eval():
    model = ToyRepNet()
    model.train()
    reparameterize(model)
    assert not model.training and not any(l.training for l in model.sublayers())
    with pytest.raises(ConfigError, match="ToyRepNet is re-parameterized .* cannot be trained"):
        model.train()


def test_family_head_keeps_the_model_interface():
    model = ToyRepNet(class_num=5)
    model.eval()
    x = paddle.randn([1, 3, 16, 16])
    feats = model.forward_features(x)
    assert model.forward_head(feats, pre_logits=True).shape == [1, model.head_hidden_size] == [1, 8]
    assert model(x).shape == [1, 5] and model.num_features == 8
    old = model.get_classifier()
    model.reset_classifier(3)
    assert model.get_classifier() is not old and model.class_num == 3 and model(x).shape == [1, 3]
    backbone = ToyRepNet(features_only=True)
    assert "head" not in dict(backbone.named_children()) and len(backbone(x)) == 1


def test_models_without_fused_forms_are_unchanged_by_reparameterize():
    paddle.seed(1)
    model = ppnets.build_model("MobileNetV2_x0_25", class_num=4)
    model.eval()
    x = paddle.randn([1, 3, 32, 32])
    with paddle.no_grad():
        before = model(x).numpy()
        after = model.reparameterize()(x).numpy()
    assert np.array_equal(before, after)


@pytest.mark.parametrize("name", ppnets.list_models())
def test_every_convolution_is_on_the_fast_cpu_path(name):
    """However a family builds a convolution, the finished model runs it through FastConv2D (oneDNN in
    training), so no layer silently falls back to Paddle's slow dynamic-graph kernel."""
    with paddle.LazyGuard():
        model = ppnets.build_model(name)
    slow = [n for n, layer in model.named_sublayers()
            if isinstance(layer, nn.layer.conv._ConvNd) and not isinstance(layer, FastConv2D)]
    assert not slow, f"{name}: convolutions off the fast path: {slow[:5]}"
