"""The model interface (ppnets.arch.base.ClassificationModel) on every registered model.

For each model of ``ppnets.list_models()`` (so a new family is covered without editing this file):
``feature_info`` against the maps ``forward_intermediates`` returns, ``features_only`` backbones,
``forward_head(pre_logits=True)``, ``num_features``, ``reset_classifier`` / ``class_num=0`` and
``freeze_stages``. Then, once: frozen parameters through real training steps (``Arch.freeze_stages``),
and the export of a ``features_only`` Arch through ``tools/export_model.py``.

Batch 1 and 64/96-pixel inputs without gradients keep the whole registry fast. Reductions are
checked as the growth of the map between the two sizes (``Δh = 32 / reduction``), which holds for
every padding rule (SqueezeNet's unpadded pools included).
"""
from __future__ import annotations

import os

import numpy as np
import paddle
import pytest

import ppnets
from ppnets.engine import Trainer
from ppnets.checkpoint import read_weights
from ppnets.deploy import Predictor
from ppnets.errors import ConfigError

from helpers.runs import REPO, load_small_config, load_tool

ALL = ppnets.list_models()
SIZES = (64, 96)


@pytest.fixture(scope="module", params=ALL)
def built(request):
    """Each model built once (seed 0, 5 classes) and shared by the tests of that model, in file order."""
    paddle.seed(0)
    model = ppnets.build_model(request.param, class_num=5)
    model.eval()
    return request.param, model


def _x(size):
    return paddle.to_tensor(np.random.RandomState(size).rand(1, 3, size, size).astype("float32"))


def _prefixes(model, stages):
    """``str.startswith`` argument matching the names inside the stem and the given stages."""
    names = list(model.stem_modules) + [m for i in stages for m in model.feature_info[i]["modules"]]
    return tuple(n + "." for n in names)


_MEMO = {"model": None}


def _run(model, what):
    """Forward passes of the shared model, computed once and reused by the tests of that model:
    ``("maps", size)`` (the stage maps, and at 64 px the output of the last stage's ``module``,
    caught by a hook) or ``"features"`` (``forward_features`` at 64 px)."""
    if _MEMO["model"] is not model:
        _MEMO.clear()
        _MEMO["model"] = model
    if what not in _MEMO:
        with paddle.no_grad():
            if what == "features":
                _MEMO[what] = model.forward_features(_x(64))
            else:
                caught = []
                module = dict(model.named_sublayers())[model.feature_info[-1]["module"]]
                hook = module.register_forward_post_hook(lambda layer, inp, out: caught.append(out))
                try:
                    _MEMO[what] = (model.forward_intermediates(_x(what[1])), caught[-1])
                finally:
                    hook.remove()
    return _MEMO[what]


def test_feature_info_describes_the_stage_maps(built):
    name, model = built
    info = model.feature_info
    assert info and all(set(d) >= {"module", "num_chs", "reduction", "modules"} for d in info)
    subs = dict(model.named_sublayers())
    assert all(d["module"] == d["modules"][-1] and d["module"] in subs for d in info)
    (small, caught), (large, _) = (_run(model, ("maps", s)) for s in SIZES)
    assert [m.shape[1] for m in small] == [m.shape[1] for m in large] == [d["num_chs"] for d in info] == info.channels()
    assert info.reduction() == [d["reduction"] for d in info] and [d["index"] for d in info] == list(range(len(info)))
    for d, a, b in zip(info, small, large):
        r = d["reduction"]
        assert (b.shape[2] - a.shape[2]) * r == (b.shape[3] - a.shape[3]) * r == SIZES[1] - SIZES[0], (d, a.shape)
    assert [d["reduction"] for d in info] == sorted(d["reduction"] for d in info)
    # "module" is the sublayer whose output is the stage map (what hooks, e.g. Grad-CAM, attach to)
    assert np.array_equal(caught.numpy(), small[-1].numpy())


def test_forward_head_and_widths(built):
    name, model = built
    feats = _run(model, "features")
    with paddle.no_grad():
        logits = model.forward_head(feats)
        pooled = model.forward_head(feats, pre_logits=True)
    assert feats.shape[1] == model.num_features
    assert feats.shape[2:] == _run(model, ("maps", 64))[0][-1].shape[2:]  # the neck keeps the last resolution
    assert logits.shape == [1, 5] == [1, model.class_num]
    assert pooled.shape == [1, model.head_hidden_size]


def test_features_only_backbone(built):
    name, model = built
    n = len(model.feature_info)
    picks = sorted({0, n // 2, n - 1})
    paddle.seed(0)
    backbone = ppnets.build_model(name, class_num=5, features_only=True, out_indices=picks)
    backbone.eval()
    with paddle.no_grad():
        maps = backbone(_x(64))
    ref = [_run(model, ("maps", 64))[0][i] for i in picks]
    assert backbone.out_indices == tuple(picks)
    assert [m.shape for m in maps] == [r.shape for r in ref]
    # timm's FeatureInfo: one entry per output map, with channels()/reduction()/module_name()
    info = backbone.feature_info
    assert len(info) == len(maps) and info.channels() == [m.shape[1] for m in maps]
    assert info.reduction() == model.feature_info.reduction(picks) and [d["index"] for d in info] == picks
    assert info.module_name() == model.feature_info.module_name(picks) and len(backbone.stage_info) == picks[-1] + 1
    for m, r in zip(maps, ref):  # same weights (same seed), same maps
        np.testing.assert_allclose(m.numpy(), r.numpy(), rtol=1e-5, atol=1e-5)
    # neck, head and unused stages are gone: every parameter left belongs to the stem or a kept stage
    keep = _prefixes(model, range(picks[-1] + 1))
    layout = [(k, v.shape) for k, v in backbone.state_dict().items()]
    assert layout and all(k.startswith(keep) for k, _ in layout), [k for k, _ in layout if not k.startswith(keep)][:3]
    # a second build in the same process: the same layout (here, its backbone part), new parameter names
    assert layout == [(k, v.shape) for k, v in model.state_dict().items() if k.startswith(keep)]
    assert {p.name for p in backbone.parameters()}.isdisjoint(p.name for p in model.parameters())
    with pytest.raises(ConfigError, match=r"out_indices/indices must be stage numbers in \[-\d+, \d+\]"):
        backbone.stage_indices([n])


def test_classifier_reset_keeps_paddleclas_key(built):
    name, model = built
    before = {k: v.shape for k, v in model.state_dict().items()}
    fc = model.get_classifier()
    model.reset_classifier(3)
    assert model.get_classifier() is not fc and model.class_num == 3
    after = {k: v.shape for k, v in model.state_dict().items()}
    assert list(after) == list(before)  # same keys, same order: only the classifier's shapes change
    changed = {k for k in before if before[k] != after[k]}
    assert changed and all(3 in after[k] for k in changed)
    feats = _run(model, "features")
    with paddle.no_grad():
        assert model.forward_head(feats).shape == [1, 3]
        pooled = model.forward_head(feats, pre_logits=True)
        model.reset_classifier(0)  # timm: no classifier, the head returns the pooled features
        np.testing.assert_array_equal(model.forward_head(feats).numpy(), pooled.numpy())
    assert all(k not in model.state_dict() for k in changed)
    model.reset_classifier(5)


def test_class_num_zero_and_none():
    for name in {ppnets.model_info(n).cls: n for n in ALL}.values():  # one model per class
        with pytest.raises(ConfigError, match=r"class_num must be an integer >= 0.*got None"):
            ppnets.build_model(name, class_num=None)
    model = ppnets.build_model("MobileNetV3_small_x0_35", class_num=0)
    model.eval()
    with paddle.no_grad():
        assert model(_x(64)).shape == [1, model.head_hidden_size] == [1, 1280]
    assert model.num_features == 200


def test_freeze_stages_marks_stem_and_first_stages(built):
    name, model = built
    n = len(model.feature_info)
    with pytest.raises(ConfigError, match=r"freeze_stages must be -1 .* got"):
        model.freeze_stages(n + 1)
    k = n // 2
    trainable = {pname for pname, p in model.named_parameters() if not p.stop_gradient}  # not BN statistics
    model.freeze_stages(k)
    frozen = _prefixes(model, range(k))
    assert any(pname.startswith(frozen) for pname in trainable)
    for pname, p in model.named_parameters():
        if pname in trainable:
            assert p.stop_gradient == pname.startswith(frozen), pname
    model.train()
    for lname, layer in model.named_sublayers():
        if isinstance(layer, paddle.nn.BatchNorm2D):
            # (+ ".": a stem module may itself be a BatchNorm, timm's "bn1")
            assert layer.training == (not (lname + ".").startswith(frozen)), lname
    model.eval()


# --------------------------------------------------------------------------- once


def test_timm_habits_feature_info_per_output_and_num_classes(tmp_path):
    backbone = ppnets.build_model("MobileNetV2_x0_25", features_only=True, out_indices=(1, 2, 3))
    info = backbone.feature_info
    assert len(info) == 3 and info.channels() == [6, 8, 16] and info.reduction() == [4, 8, 16]
    assert info.channels(-1) == 16 and info.module_name() == ["conv3", "conv4", "conv5"]
    assert len(backbone(_x(64))) == 3
    assert ppnets.build_model("MobileNetV2_x0_25", num_classes=7).class_num == 7
    # the config takes timm's name too; given with a different class_num it says which to use
    from ppnets.config import load_config
    config = os.path.join(REPO, "configs", "mobilenetv2.yaml")
    cfg = load_config(config, ["~Arch.class_num", "Arch.num_classes=4"])
    assert cfg["Arch"]["class_num"] == 4 and "num_classes" not in cfg["Arch"]
    with pytest.raises(ConfigError) as e:
        load_config(config, ["Arch.num_classes=4"])
    assert str(e.value) == ("Arch.num_classes: 4, but Arch.class_num is 10 (num_classes is timm's name for class_num: "
                            "give one, e.g. -o Arch.class_num=4)")



def test_frozen_parameters_stay_identical_through_training(digits_slice, tmp_path):
    cfg = load_small_config(digits_slice, str(tmp_path), **{"Global.epochs": 1, "Arch.freeze_stages": 3,
                                                             "Global.eval_during_train": False})
    engine = Trainer(cfg)
    model = engine.model
    frozen = _prefixes(model, range(3))
    start = {k: v.numpy().copy() for k, v in model.state_dict().items()}
    engine.train()
    end = {k: v.numpy() for k, v in model.state_dict().items()}
    same = {k for k in start if np.array_equal(start[k], end[k])}
    frozen_keys = {k for k in start if k.startswith(frozen)}
    assert frozen_keys and frozen_keys <= same  # weights and BN running statistics untouched
    assert any("_mean" in k for k in frozen_keys)
    trained = [k for k in start if not k.startswith(frozen) and "weight" in k]
    assert trained and not any(k in same for k in trained)  # everything after the frozen stages moved
    with pytest.raises(ConfigError, match=r"Arch: unknown key 'freeze_stage'.*did you mean 'freeze_stages'"):
        load_small_config(digits_slice, str(tmp_path), **{"Arch.freeze_stage": 3})


def test_export_features_only_arch(digits_slice, tmp_path):
    export_main = load_tool("export_model").main
    paddle.seed(1)
    model = ppnets.build_model("MobileNetV1_x0_25", class_num=3)
    weights = str(tmp_path / "w.pdparams")
    paddle.save(model.state_dict(), weights)   # a classifier's weights: the head keys are left aside
    out = str(tmp_path / "backbone")
    config = os.path.join(REPO, "configs", "mobilenetv2.yaml")
    export_main(["-c", config, "-o", f"Global.pretrained_model={weights}", "-o", f"Global.save_inference_dir={out}",
                 "-o", "Arch.name=MobileNetV1_x0_25", "-o", "Arch.class_num=3", "-o", "Arch.features_only=True",
                 "-o", "Arch.out_indices=[0,2]", "-o", "Global.image_shape=[3,64,64]",
                 "-o", "Infer.transforms=[{DecodeImage: {}}, {ResizeImage: {size: 64}}, {NormalizeImage: {}}]"])
    predictor = Predictor(out)
    assert predictor.meta["features_only"] and [d["num_chs"] for d in predictor.meta["feature_info"]] == [16, 64]
    x = _x(64)
    maps = predictor.features(x.numpy())
    model.eval()
    with paddle.no_grad():
        ref = model.forward_intermediates(x, [0, 2])
    assert len(maps) == 2
    for got, want in zip(maps, ref):
        np.testing.assert_allclose(got, want.numpy(), rtol=1e-4, atol=1e-4)  # no softmax, raw maps
    with pytest.raises(ppnets.errors.DataError, match="features_only"):
        predictor.run(x.numpy())
    assert set(read_weights(weights)) > set(ppnets.build_model("MobileNetV1_x0_25", features_only=True).state_dict())
    with pytest.raises(ConfigError, match="Arch.features_only: a feature extractor has no classifier"):
        Trainer(load_small_config(digits_slice, str(tmp_path), **{"Arch.features_only": True}))
