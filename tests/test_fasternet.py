"""FasterNet: the partial convolution and the block against NumPy, the head (pool → 1×1 conv → act →
linear), PaddleClas's flat stage/merge layout, timm's key mapping, stochastic depth, initialisation,
the block drawing and a PaddleClas-layout file."""
from __future__ import annotations

import math
import os

import numpy as np
import paddle
import pytest

import ppnets
from ppnets.analysis.diagram import model_dot
from ppnets.analysis.summary import summarize
from ppnets.arch.fasternet import FasterNetBlock, PartialConv, from_timm
from ppnets.arch.timm import convert_timm_state_dict
from ppnets.config import load_config

from helpers.runs import REPO
from helpers.reference import TIMM, check_paddleclas_file_loads, manifest


def _conv3x3(x, w):
    """NumPy 3×3 'same' convolution (no bias): x [C, H, W], w [O, C, 3, 3]."""
    _, h, wd = x.shape
    xp = np.pad(x, ((0, 0), (1, 1), (1, 1)))
    return sum(np.einsum("oc,chw->ohw", w[:, :, i, j], xp[:, i:i + h, j:j + wd]) for i in range(3) for j in range(3))


def _pw(x, w):
    return np.einsum("oc,chw->ohw", w[:, :, 0, 0], x)


_ACTS = {"gelu": np.vectorize(lambda v: 0.5 * v * (1 + math.erf(v / math.sqrt(2)))), "relu": lambda v: np.maximum(v, 0)}


def test_partial_conv_convolves_the_first_quarter_and_passes_the_rest():
    paddle.seed(0)
    pconv = PartialConv(10, 4)                        # 10 // 4 = 2 channels convolved, 8 untouched
    x = np.random.default_rng(0).normal(0, 1, (1, 10, 5, 5)).astype("float32")
    xt = paddle.to_tensor(x)
    out = pconv(xt).numpy()[0]
    assert pconv.partial_conv3.weight.shape == [2, 2, 3, 3]
    np.testing.assert_array_equal(out[2:], x[0, 2:])
    np.testing.assert_allclose(out[:2], _conv3x3(x[0, :2], pconv.partial_conv3.weight.numpy()), rtol=1e-5, atol=1e-5)
    np.testing.assert_array_equal(xt.numpy(), x)   # the input (the residual) is left intact


@pytest.mark.parametrize("act", ["gelu", "relu"])
def test_block_is_pconv_then_pointwise_mlp_plus_input(act):
    paddle.seed(0)
    block = FasterNetBlock(8, 4, 2.0, act=act)
    rng = np.random.default_rng(1)
    bn = block.mlp[1]
    bn._mean.set_value(rng.normal(0, 0.3, 16).astype("float32"))
    bn._variance.set_value(rng.uniform(0.5, 2, 16).astype("float32"))
    bn.weight.set_value(rng.uniform(0.5, 1.5, 16).astype("float32"))
    bn.bias.set_value(rng.normal(0, 0.5, 16).astype("float32"))
    block.eval()
    x = rng.normal(0, 1, (1, 8, 4, 4)).astype("float32")
    with paddle.no_grad():
        got = block(paddle.to_tensor(x)).numpy()[0]
    y = x[0].astype(np.float64).copy()
    y[:2] = _conv3x3(y[:2], block.spatial_mixing.partial_conv3.weight.numpy())
    h = _pw(y, block.mlp[0].weight.numpy())
    h = (h - bn._mean.numpy()[:, None, None]) / np.sqrt(bn._variance.numpy()[:, None, None] + bn._epsilon) \
        * bn.weight.numpy()[:, None, None] + bn.bias.numpy()[:, None, None]
    expected = x[0] + _pw(_ACTS[act](h), block.mlp[3].weight.numpy())
    np.testing.assert_allclose(got, expected, rtol=1e-4, atol=1e-5)


def test_head_pools_then_1x1_conv_and_act_then_linear():
    paddle.seed(0)
    model = ppnets.build_model("FasterNet_T0", class_num=3)
    model.eval()
    x = paddle.to_tensor(np.random.default_rng(2).normal(0, 1, (2, 3, 64, 64)).astype("float32"))
    with paddle.no_grad():
        feats = model.forward_features(x).numpy()
        pre = model.forward_head(paddle.to_tensor(feats), pre_logits=True).numpy()
        logits = model(x).numpy()
    assert feats.shape == (2, model.feature_info[-1]["num_chs"], 2, 2) and model.head_hidden_size == 1280
    w = model.avgpool_pre_head[1].weight.numpy()[:, :, 0, 0]
    np.testing.assert_allclose(pre, _ACTS["gelu"](feats.mean(axis=(2, 3)) @ w.T), rtol=1e-4, atol=1e-5)
    np.testing.assert_allclose(logits, pre @ model.head.weight.numpy() + model.head.bias.numpy(), rtol=1e-4,
                               atol=1e-5)


def test_stages_are_paddleclas_flat_stage_and_merge_layout():
    model = ppnets.build_model("FasterNet_T0")
    depths = ppnets.model_info("FasterNet_T0").defaults["depths"]
    assert [f["modules"] for f in model.feature_info] == [
        ("stages.0",), ("stages.1", "stages.2"), ("stages.3", "stages.4"), ("stages.5", "stages.6")]
    assert [f["reduction"] for f in model.feature_info] == [4, 8, 16, 32]
    assert [len(model.stages[2 * i].blocks) for i in range(4)] == list(depths)
    # the manifest's stage indices: blocks at even positions, merges (reduction + norm) at odd ones
    keys = [k for k, _ in manifest("FasterNet_T0")]
    assert {int(k.split(".")[1]) for k in keys if ".reduction." in k} == {1, 3, 5}
    assert {int(k.split(".")[1]) for k in keys if ".blocks." in k} == {0, 2, 4, 6}


def test_timm_keys_map_one_to_one_onto_paddleclas_keys():
    """timm keeps each merge in its stage (``stages.i.downsample``) and names the head ``conv_head`` /
    ``classifier``; the mapping gives PaddleClas's keys, every one once, shapes checked on conversion."""
    rows = [line.split(" ", 1) for line in open(os.path.join(TIMM, "fasternet_t0.keys.txt")) if line.strip()]
    timm_sd = {k: np.zeros([int(d) for d in shape.strip(" []\n").split(",")], "float32") for k, shape in rows}
    renamed = from_timm(timm_sd)
    assert len(renamed) == len(timm_sd)
    for timm_key, ours in (("stages.1.downsample.reduction.weight", "stages.1.reduction.weight"),
                           ("stages.3.downsample.norm.running_var", "stages.5.norm.running_var"),
                           ("stages.3.blocks.1.mlp.0.weight", "stages.6.blocks.1.mlp.0.weight"),
                           ("conv_head.weight", "avgpool_pre_head.1.weight"), ("classifier.bias", "head.bias")):
        assert renamed[ours] is timm_sd[timm_key]
    sd = convert_timm_state_dict("fasternet_t0", timm_sd)      # checked key by key and shape by shape
    assert sorted(sd) == sorted(k for k, _ in manifest("FasterNet_T0"))


def test_stochastic_depth_is_linear_over_all_blocks_and_variants_keep_paddleclas_rates():
    model = ppnets.build_model("FasterNet_T1")
    blocks = [b for i in range(0, 7, 2) for b in model.stages[i].blocks]
    rates = [b.drop_path.p if b.drop_path is not None else 0.0 for b in blocks]
    np.testing.assert_allclose(rates, np.linspace(0, ppnets.model_info("FasterNet_T1").defaults["drop_path_rate"],
                                                  len(blocks)), rtol=1e-6, atol=1e-8)
    assert rates[-1] > 0


def test_weights_start_from_truncated_normal_002():
    paddle.seed(0)
    model = ppnets.build_model("FasterNet_T0")
    for w in (model.stages[4].blocks[0].mlp[0].weight, model.avgpool_pre_head[1].weight, model.head.weight):
        v = w.numpy()
        assert abs(v.std() - 0.02) < 0.002 and abs(v.mean()) < 0.002
    assert not model.head.bias.numpy().any()


def test_block_paths_and_summary():
    model = ppnets.build_model("FasterNet_T0", class_num=10)
    s = summarize(model, 64)
    depths = ppnets.model_info("FasterNet_T0").defaults["depths"]
    # each stage after the first starts with its patch merging (2×2/2 conv doubling the width)
    assert [[b.info.title for b in sec.blocks] for sec in s.stages] == [
        ["Patch merging"] * (i > 0) + [f"FasterNet block (3×3 PConv on {c // 4}/{c})"] * d
        for i, (d, c) in enumerate(zip(depths, [f["num_chs"] for f in model.feature_info]))]
    for b in s.blocks:
        if b.info.title == "Patch merging":
            assert b.info.stride == 2 and b.info.out_channels == 2 * b.info.in_channels == b.out_shape[1]
            continue
        assert b.info.residual and b.info.expansion == 2.0 and b.info.act == "GELU"
        assert b.info.in_channels == b.info.out_channels == b.in_shape[1] == b.out_shape[1]
        assert b.info.branches[1][0].label == "PartialConv"
    assert sum(sec.macs for sec in s.sections) == s.macs
    dot = model_dot(s, model)
    assert dot.count("FasterNet block") == sum(depths) and dot.count("label=<+>") == sum(depths)
    assert dot.count("Patch merging") == 3 and dot.count("k2 s2") == 3


def test_paddleclas_file_loads_completely(tmp_path):
    check_paddleclas_file_loads("FasterNet_T0", str(tmp_path))


@pytest.mark.parametrize("name, wd, lr, magnitude, mixup", [
    ("FasterNet_T0", 0.005, 0.004, None, 0.05), ("FasterNet_T2", 0.02, 0.004, 5, 0.1),
    ("FasterNet_L", 0.05, 0.002, 7, 0.7)])
def test_imagenet_recipe_is_paddleclas(name, wd, lr, magnitude, mixup):
    """Spot checks of PaddleClas's per-model FasterNet recipes (ppcls/configs/ImageNet/FasterNet/)."""
    cfg = load_config(os.path.join(REPO, "configs", "ImageNet", "FasterNet", f"{name}.yaml"))
    opt = cfg["Optimizer"]
    assert (opt["name"], opt["weight_decay"], opt["lr"]["learning_rate"], opt["lr"]["warmup_epoch"]) == \
        ("AdamW", wd, lr, 20)
    assert "clip_norm" not in opt or opt["clip_norm"] is None       # PaddleClas's clip_grad is ignored there too
    train = cfg["DataLoader"]["Train"]
    ops = {next(iter(op)): next(iter(op.values())) for op in train["dataset"]["transform_ops"]}
    assert ops.get("TimmAutoAugment", {}).get("config_str") == (magnitude and f"rand-m{magnitude}-mstd0.5-inc1")
    assert "RandomErasing" not in ops and ops["RandCropImage"]["interpolation"] == "bicubic"
    assert train["dataset"]["batch_transform_ops"][0]["OpSampler"]["MixupOperator"]["alpha"] == mixup
    assert train["sampler"]["batch_size"] == 50 and cfg["Global"]["epochs"] == 300
    assert "drop_path_rate" not in cfg["Arch"]                       # the model's own rate, as in PaddleClas
