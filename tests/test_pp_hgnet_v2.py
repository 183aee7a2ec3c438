"""PP-HGNetV2: the LAB switch against PaddleClas's manifests, stages and strides, PaddleClas's stem pool
(and where timm's port differs), LAB learning rate and BatchNorm weight decay, blocks, a PaddleClas file."""
from __future__ import annotations

import re

import numpy as np
import paddle
import paddle.nn.functional as F
import pytest

import ppnets
from ppnets.analysis.blocks import find_blocks
from ppnets.analysis.cam import grad_cam
from ppnets.analysis.summary import summarize
from ppnets.arch.timm import convert_timm_state_dict
from ppnets.errors import ConfigError
from ppnets.optimizer import build_optimizer

from helpers.reference import check_paddleclas_file_loads, manifest, timm_reference, timm_tolerance

NAMES = [f"PPHGNetV2_B{i}" for i in range(7)]


def _layout(model) -> list:
    return [(k, list(v.shape)) for k, v in model.state_dict().items()]


def _generic(prefix: str) -> str:
    return re.sub(r"\.\d+", ".N", prefix)


def _lab_sites(name: str) -> set:
    """The layers (indices generalised) that PaddleClas's manifest of ``name`` follows with a LAB."""
    return {_generic(k[:-len(".lab.scale")]) for k, _ in manifest(name) if k.endswith(".lab.scale")}


def test_use_lab_switch_changes_keys_as_paddleclas():
    # B0 without LABs: PaddleClas's B0 keys, every LAB gone
    no_lab = ppnets.build_model("PPHGNetV2_B0", use_lab=False)
    assert _layout(no_lab) == [(k, s) for k, s in manifest("PPHGNetV2_B0") if ".lab." not in k and
                               not k.startswith("lab.")]
    # B4 with LABs: PaddleClas's B4 keys with a LAB where PaddleClas's B0 has one (after each activation
    # and the head's ReLU; never after a downsampling conv or a light block's 1×1 conv)
    sites = _lab_sites("PPHGNetV2_B0")
    assert {"stages.N.downsample", "stages.N.blocks.N.layers.N.conv1"}.isdisjoint(sites)
    expected = []
    for key, shape in manifest("PPHGNetV2_B4"):
        expected.append((key, shape))
        layer = key[:-len(".bn._variance")]
        if key.endswith(".bn._variance") and _generic(layer) in sites:
            expected += [(f"{layer}.lab.scale", [1]), (f"{layer}.lab.bias", [1])]
        if key == "last_conv.weight":
            expected += [("lab.scale", [1]), ("lab.bias", [1])]
    assert _layout(ppnets.build_model("PPHGNetV2_B4", use_lab=True)) == expected
    assert [ppnets.model_info(n).defaults["use_lab"] for n in NAMES] == [_lab_sites(n) != set() for n in NAMES]


def test_stages_strides_and_widths_from_the_manifests():
    for name in ("PPHGNetV2_B0", "PPHGNetV2_B6"):   # the others: tests/test_model_interface.py
        with paddle.LazyGuard():
            model = ppnets.build_model(name)
        widths = {}
        for key, shape in manifest(name):
            m = re.match(r"stages\.(\d+)\.blocks\.\d+\.aggregation_excitation_conv\.conv\.weight", key)
            if m:
                widths[int(m.group(1))] = shape[0]
        info = model.feature_info
        assert [d["module"] for d in info] == [f"stages.{i}" for i in range(4)]
        assert [d["num_chs"] for d in info] == [widths[i] for i in range(4)] and model.num_features == widths[3]
        assert [d["reduction"] for d in info] == [4, 8, 16, 32]
    backbone = ppnets.build_model("PPHGNetV2_B0", features_only=True)
    maps = backbone(paddle.randn([1, 3, 64, 64]))
    assert [64 // m.shape[2] for m in maps] == [4, 8, 16, 32] == [64 // m.shape[3] for m in maps]


class _ZeroPaddedPool(paddle.nn.Layer):
    """timm's stem pool: pad the bottom/right with zeros, then a 2×2 stride-1 max-pool."""

    def forward(self, x):
        return F.max_pool2d(F.pad(x, [0, 1, 0, 1]), 2, 1)


def test_stem_pool_ignores_padding_and_timm_zero_pads_it():
    model = ppnets.build_model("PPHGNetV2_B0")
    x = -paddle.rand([1, 2, 5, 5]) - 0.1            # a negative map, as a LAB with a negative bias makes
    pooled = model.stem.pool(x).numpy()
    expected = np.full_like(pooled, -np.inf)
    for dy in (0, 1):
        for dx in (0, 1):   # Paddle's SAME max-pool: the maximum over the in-image part of each window
            expected[..., :5 - dy, :5 - dx] = np.maximum(expected[..., :5 - dy, :5 - dx], x.numpy()[..., dy:, dx:])
    np.testing.assert_array_equal(pooled, expected)
    assert (pooled < 0).all()
    # timm's hgnetv2_b0 converts key for key; its logits differ from PaddleClas's model only by that pool
    sd, inputs, logits, _ = timm_reference("hgnetv2_b0")
    missing, unexpected = model.set_state_dict(convert_timm_state_dict("PPHGNetV2_B0", sd))
    assert not missing and not unexpected and "hgnetv2_b0" not in ppnets.arch.registry.TIMM_NAMES
    model.eval()
    with paddle.no_grad():
        paddle_same = model(paddle.to_tensor(inputs)).numpy()
        model.stem.pool = _ZeroPaddedPool()
        zero_padded = model(paddle.to_tensor(inputs)).numpy()
    tol = timm_tolerance(logits)
    assert np.abs(paddle_same - logits).max() > tol
    assert np.abs(zero_padded - logits).max() <= tol


def test_lab_learning_rate_and_no_weight_decay_on_batch_norm():
    """PaddleClas's parameter attributes: LABs learn at 1/100 of the LR, BatchNorm is not decayed."""
    paddle.seed(0)
    model = ppnets.build_model("PPHGNetV2_B0", class_num=3)
    coeff = 0.5
    opt = build_optimizer({"name": "Momentum", "momentum": 0.9, "lr": {"name": "Constant", "learning_rate": 1.0},
                           "regularizer": {"name": "L2", "coeff": coeff}}, 1, 1, model)
    named = {k: p for k, p in model.named_parameters() if not p.stop_gradient}   # (not BN statistics)
    before = {k: v.numpy().copy() for k, v in named.items()}
    (model(paddle.randn([2, 3, 32, 32])) * 0).sum().backward()   # zero gradients: only weight decay moves weights
    opt.step()
    labs = [k for k in named if ".lab." in k or k.startswith("lab.")]
    bns = [k for k in named if ".bn." in k]
    assert labs and bns
    for key, p in named.items():
        factor = 1.0 if key in bns else (1 - 0.01 * coeff if key in labs else 1 - coeff)
        np.testing.assert_allclose(p.numpy(), before[key] * factor, rtol=1e-6, atol=1e-7, err_msg=key)


def test_blocks_summary_and_grad_cam():
    model = ppnets.build_model("PPHGNetV2_B0", class_num=4)
    n_blocks = len({m.group(0) for k, _ in manifest("PPHGNetV2_B0") for m in [re.match(r"stages\.\d+\.blocks\.\d+", k)]
                    if m})
    blocks = find_blocks(model)
    assert len(blocks) == n_blocks
    s = summarize(model, 64, "PPHGNetV2_B0")
    assert [len(sec.blocks) for sec in s.stages] == [len(model.stages[i].blocks) for i in range(4)]
    for b in s.blocks:   # residual exactly in the blocks after a stage's first; widths as run
        assert b.info.residual == (not b.name.endswith(".0")), b.name
        assert (b.info.in_channels, b.info.out_channels) == (b.in_shape[1], b.out_shape[1]), b.name
    assert {b.info.title for b in s.blocks} == {"HG block", "HG block (light)"}
    res = grad_cam(model, paddle.randn([2, 3, 64, 64]), 2)
    assert res.cams.shape == (2, 4, 4) and res.stage == 2


def test_without_last_conv_the_classifier_reads_the_pooled_stage():
    model = ppnets.build_model("PPHGNetV2_B0", class_num=3, use_last_conv=False)
    ref = [(k, s) for k, s in manifest("PPHGNetV2_B0") if not k.startswith(("last_conv.", "lab.", "fc."))]
    assert _layout(model)[:-2] == ref
    assert model.state_dict()["fc.weight"].shape == [model.feature_info[-1]["num_chs"], 3]
    assert model(paddle.randn([1, 3, 32, 32])).shape == [1, 3]


def test_paddleclas_file_loads_completely(tmp_path):
    check_paddleclas_file_loads("PPHGNetV2_B0", str(tmp_path))   # every variant's layout: tests/test_models.py


def test_unknown_variant_is_named():
    with pytest.raises(ConfigError, match=r"PPHGNetV2: unknown variant 'B7'; valid: B0, B1, B2, B3, B4, B5, B6"):
        ppnets.build_model("PPHGNetV2_B0", variant="B7")
