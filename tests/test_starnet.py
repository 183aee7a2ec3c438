"""StarNet: the star block against a NumPy computation (ReLU6 star product, biased convs), the stage
layout and stochastic depth of PaddleClas/timm, the block drawing, and a PaddleClas-layout file."""
from __future__ import annotations

import os

import numpy as np
import paddle
import pytest

import ppnets
from ppnets.analysis.diagram import model_dot
from ppnets.analysis.summary import summarize
from ppnets.arch.starnet import StarBlock
from ppnets.config import load_config

from helpers.runs import REPO
from helpers.reference import check_paddleclas_file_loads, timm_reference_names


def _conv(x, w, b, groups=1):
    """NumPy 'same' convolution, stride 1: x [C, H, W], w [O, C/groups, k, k], b [O]."""
    c, h, wd = x.shape
    o, cg, k, _ = w.shape
    p = k // 2
    xp = np.pad(x, ((0, 0), (p, p), (p, p)))
    out = np.zeros((o, h, wd))
    per = o // groups
    for oc in range(o):
        g = oc // per
        patch = xp[g * cg:(g + 1) * cg]
        for i in range(k):
            for j in range(k):
                out[oc] += np.tensordot(w[oc, :, i, j], patch[:, i:i + h, j:j + wd], axes=1)
    return out + b[:, None, None]


def _bn(x, layer):
    mean, var = layer._mean.numpy(), layer._variance.numpy()
    return (x - mean[:, None, None]) / np.sqrt(var[:, None, None] + layer._epsilon) * \
        layer.weight.numpy()[:, None, None] + layer.bias.numpy()[:, None, None]


def model_defaults(name):
    d = ppnets.model_info(name).defaults
    return d["base_dim"], d["depths"]


def _wb(unit):
    return unit.conv.weight.numpy().astype(np.float64), unit.conv.bias.numpy().astype(np.float64)


def test_star_block_is_relu6_star_product_of_biased_convs():
    paddle.seed(0)
    dim, ratio = 4, 3
    block = StarBlock(dim, ratio)
    rng = np.random.default_rng(0)
    for p in block.parameters():                      # non-trivial biases and BN affine parameters
        p.set_value(rng.normal(0, 0.5, p.shape).astype("float32"))
    for bn in (block.dwconv.bn, block.g.bn):
        bn._mean.set_value(rng.normal(0, 0.3, bn._mean.shape).astype("float32"))
        bn._variance.set_value(rng.uniform(0.5, 2, bn._variance.shape).astype("float32"))
    block.f1.conv.weight.set_value(block.f1.conv.weight.numpy() * 8)   # f1 well past 6: ReLU6 clips
    block.eval()
    x = rng.normal(0, 1, (1, dim, 6, 6)).astype("float32")
    with paddle.no_grad():
        got = block(paddle.to_tensor(x)).numpy()[0]
    y = _bn(_conv(x[0], *_wb(block.dwconv), groups=dim), block.dwconv.bn)
    f1, f2 = _conv(y, *_wb(block.f1)), _conv(y, *_wb(block.f2))
    assert f1.max() > 6                                  # the clip is exercised
    star = np.clip(f1, 0, 6) * f2
    out = _conv(_bn(_conv(star, *_wb(block.g)), block.g.bn), *_wb(block.dwconv2), groups=dim)
    np.testing.assert_allclose(got, x[0] + out, rtol=1e-4, atol=1e-3)
    relu = _conv(_bn(_conv(np.maximum(f1, 0) * f2, *_wb(block.g)), block.g.bn), *_wb(block.dwconv2), groups=dim)
    assert np.abs(got - (x[0] + relu)).max() > 1e-2      # a plain ReLU would differ


@pytest.mark.parametrize("name", ["StarNet_S1", "StarNet_S050"])
def test_stages_stem_and_neck(name):
    model = ppnets.build_model(name, class_num=3)
    base, depths = model_defaults(name)
    assert [f["num_chs"] for f in model.feature_info] == [base * 2 ** i for i in range(4)]
    assert [f["reduction"] for f in model.feature_info] == [4, 8, 16, 32]
    assert [len(model.stages[i]) - 1 for i in range(4)] == list(depths)   # downsampler + blocks
    assert model.stem[0].conv.weight.shape == [32, 3, 3, 3]                 # 32 wide whatever the base
    assert model.neck_modules == ("norm",) and model.num_features == 8 * base
    model.eval()
    x = paddle.to_tensor(np.random.default_rng(1).normal(0, 1, (2, 3, 64, 64)).astype("float32"))
    with paddle.no_grad():
        last = model.forward_intermediates(x)[-1]
        feats = model.forward_features(x)
        np.testing.assert_allclose(feats.numpy(), model.norm(last).numpy(), rtol=1e-5, atol=1e-5)
        logits = model(x).numpy()
    pooled = feats.numpy().mean(axis=(2, 3))
    expected = pooled @ model.head.weight.numpy() + model.head.bias.numpy()
    np.testing.assert_allclose(logits, expected, rtol=1e-4, atol=1e-4)


def test_timm_only_variants_are_registered_without_paddleclas_reference():
    names = ppnets.list_models(family="StarNet")
    timm_only = [n for n in names if not ppnets.model_info(n).paddleclas]
    assert sorted(timm_only) == ["StarNet_S050", "StarNet_S100", "StarNet_S150"]
    # every StarNet converts from exactly its timm namesake, which has a reference
    assert all(ppnets.model_info(n).timm == (n.replace("StarNet_", "starnet_").lower(),) for n in names)
    assert {t for n in names for t in ppnets.model_info(n).timm} <= set(timm_reference_names())


def test_stochastic_depth_is_linear_over_all_blocks():
    model = ppnets.build_model("StarNet_S100", drop_path_rate=0.2)
    blocks = [b for stage in model.stages for b in list(stage)[1:]]
    rates = [b.drop_path.p if b.drop_path is not None else 0.0 for b in blocks]
    np.testing.assert_allclose(rates, np.linspace(0, 0.2, len(blocks)), rtol=1e-6, atol=1e-7)
    assert blocks[0].drop_path is None                   # rate 0: no layer


def test_block_paths_and_summary():
    model = ppnets.build_model("StarNet_S050", class_num=10)
    s = summarize(model, 64)
    assert [len(sec.blocks) for sec in s.stages] == list(model_defaults("StarNet_S050")[1])
    for b in s.blocks:
        assert b.info.title == "Star block" and b.info.residual and b.info.kernel == 7
        assert b.info.in_channels == b.info.out_channels == b.in_shape[1] == b.out_shape[1]
        assert b.info.expansion == 3.0
    assert sum(sec.macs for sec in s.sections) == s.macs
    dot = model_dot(s, model)
    assert dot.count("Star block") == len(s.blocks) and dot.count("label=<+>") == len(s.blocks)
    assert dot.count("k7 s1 e3 ReLU6(f1) · f2") == len(s.blocks)


def test_paddleclas_file_loads_completely(tmp_path):
    check_paddleclas_file_loads("StarNet_S1", str(tmp_path))


def test_imagenet_recipe_is_paddleclas():
    """Spot checks of PaddleClas's StarNet recipe (ppcls/configs/ImageNet/StarNet/StarNet_S4.yaml)."""
    cfg = load_config(os.path.join(REPO, "configs", "ImageNet", "StarNet", "StarNet_S4.yaml"))
    opt, lr = cfg["Optimizer"], cfg["Optimizer"]["lr"]
    assert (opt["name"], opt["weight_decay"], opt["one_dim_param_no_weight_decay"]) == ("AdamW", 0.05, True)
    assert (lr["name"], lr["learning_rate"], lr["eta_min"], lr["warmup_epoch"], lr["warmup_start_lr"]) == \
        ("Cosine", 0.003, 1e-5, 5, 1e-6)
    assert (cfg["Global"]["epochs"], cfg["Arch"]["drop_path_rate"], cfg["AMP"]["level"]) == (300, 0.02, "O1")
    train = cfg["DataLoader"]["Train"]
    assert [next(iter(op)) for op in train["dataset"]["transform_ops"]] == [
        "DecodeImage", "RandCropImage", "RandFlipImage", "TimmAutoAugment", "NormalizeImage", "RandomErasing",
        "ToCHWImage"]
    assert train["dataset"]["transform_ops"][3]["TimmAutoAugment"]["config_str"] == "rand-m1-mstd0.5-inc1"
    assert train["dataset"]["batch_transform_ops"] == [{"OpSampler": {"MixupOperator": {"alpha": 0.8, "prob": 0.5},
                                                                      "CutmixOperator": {"alpha": 0.2, "prob": 0.5}}}]
    assert train["sampler"]["batch_size"] == 256 and cfg["Loss"]["Train"] == [{"CELoss": {"epsilon": 0.1}}]
