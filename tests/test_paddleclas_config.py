"""PaddleClas's own config keys: mapped, ignored with a notice, or refused; every error at once; -o append/delete.

The configs are written here in the shape of PaddleClas's ImageNet configs (its key names and values),
not copied from PaddleClas.
"""
from __future__ import annotations

import os
import subprocess
import sys

import numpy as np
import pytest
import yaml

from ppnets.config import load_config
from ppnets.data import build_transforms
from ppnets.errors import ConfigError

from helpers.runs import REPO

DEFAULT = os.path.join(REPO, "configs", "mobilenetv2.yaml")


def paddleclas_shaped(tmp_path, **sections) -> str:
    """configs/mobilenetv2.yaml as a base, with PaddleClas-style sections on top."""
    cfg = {"_base_": DEFAULT, **sections}
    path = tmp_path / "ppcls_style.yaml"
    path.write_text(yaml.safe_dump(cfg, sort_keys=False))
    return str(path)


def test_paddleclas_amp_infer_and_optimizer_keys_are_mapped(tmp_path):
    path = paddleclas_shaped(
        tmp_path,
        Global={"epochs": 3, "use_dali": False, "eval_mode": "classification", "to_static": False},
        AMP={"use_amp": False, "use_fp16_test": False, "scale_loss": 128.0, "use_dynamic_loss_scaling": True,
             "use_promote": False, "level": "O1"},
        Arch={"name": "MobileNetV2_x0_25", "class_num": 10, "pretrained": False},
        Optimizer={"_delete_": True, "name": "AdamW", "beta1": 0.9, "beta2": 0.999, "epsilon": "1e-8", "weight_decay": 0.05,
                   "regularizer": None,
                   "lr": {"name": "MultiStepDecay", "learning_rate": 0.1, "milestones": [4, 5], "gamma": 0.5,
                          "last_epoch": -1, "verbose": False, "warmup_epoch": 5}},
        Infer={"infer_imgs": "x.png", "batch_size": 10,
               "PostProcess": {"name": "Topk", "topk": 3, "class_id_map_file": "labels.txt"}})
    cfg = load_config(path)
    assert cfg["AMP"]["enabled"] is False and cfg["AMP"]["eval"] is False and cfg["AMP"]["use_promote"] is False
    assert cfg["AMP"]["scale_loss"] == 128.0
    assert "use_amp" not in cfg["AMP"] and "use_dali" not in cfg["Global"] and "pretrained" not in cfg["Arch"]
    assert cfg["Optimizer"]["epsilon"] == 1e-8 and isinstance(cfg["Optimizer"]["epsilon"], float)
    lr = cfg["Optimizer"]["lr"]
    assert lr["name"] == "MultiStep" and "last_epoch" not in lr and "verbose" not in lr
    assert lr["warmup_epoch"] == 3  # clipped to Global.epochs, as PaddleClas does
    assert cfg["Infer"]["topk"] == 3 and cfg["Infer"]["class_id_map_file"] == "labels.txt"
    assert "PostProcess" not in cfg["Infer"]
    assert cfg.notices == ["Optimizer.lr.warmup_epoch: 5 is more than Global.epochs (3); clipped to 3, "
                           "as PaddleClas does"]


def test_an_amp_section_in_paddleclas_form_turns_amp_on(tmp_path):
    cfg = load_config(paddleclas_shaped(tmp_path, AMP={"use_fp16_test": True, "level": "O2", "scale_loss": 128.0}))
    assert cfg["AMP"]["enabled"] is True and cfg["AMP"]["eval"] is True and cfg["AMP"]["level"] == "O2"


def test_ignored_keys_say_why(tmp_path):
    path = paddleclas_shaped(
        tmp_path, Global={"use_dali": True, "class_num": 10},
        Optimizer={"name": "Momentum", "momentum": 0.9, "clip_grad": 5.0,
                   "lr": {"name": "Cosine", "learning_rate": 0.02}},
        DataLoader={"Train": {"dataset": {"transform_ops": [
            {"DecodeImage": {"to_rgb": True, "channel_first": False}},
            {"RandCropImage": {"size": 32, "interpolation": "bicubic", "backend": "pil"}},
            {"ToCHWImage": None}]}}})
    cfg = load_config(path)
    assert cfg.notices == [
        "Global.use_dali: ignored — DALI is NVIDIA's GPU data pipeline; ppnets reads the same transform_ops with "
        "paddle.io.DataLoader",
        "Optimizer.clip_grad: ignored (5.0) — PaddleClas's optimizers ignore it too; set Optimizer.clip_norm to "
        "clip gradients by their global norm",
        "DataLoader.Train.dataset.transform_ops.RandCropImage.backend: pil ignored — ppnets decodes and resizes "
        "with OpenCV (cv2), as PaddleClas does by default"]
    assert cfg["Arch"]["class_num"] == 10  # Global.class_num only fills an unset Arch.class_num
    ops = cfg["DataLoader"]["Train"]["dataset"]["transform_ops"]
    assert ops[1] == {"RandCropImage": {"size": 32, "interpolation": "bicubic"}}


def test_momentum_weight_decay_becomes_coupled_l2(tmp_path):
    cfg = load_config(paddleclas_shaped(tmp_path, Optimizer={
        "_delete_": True, "name": "Momentum", "momentum": 0.9, "weight_decay": 1e-4,
        "lr": {"name": "Cosine", "learning_rate": 0.1}}))
    assert cfg["Optimizer"]["regularizer"] == {"name": "L2", "coeff": 1e-4}
    assert "weight_decay" not in cfg["Optimizer"]


def test_multi_scale_sampler_is_read_as_one_scale(tmp_path):
    """PP-LCNetV2's recipe: MultiScaleSampler batches of first_bs × the first scale's pixels at a random scale;
    ppnets trains at the RandCropImage size with the batch the sampler gives it there."""
    ops = [{"DecodeImage": {"to_rgb": True, "channel_first": False}}, {"RandCropImage": {"size": 64}},
           {"NormalizeImage": {"scale": "1.0/255.0", "order": ""}}, {"ToCHWImage": None}]
    train = {"dataset": {"_delete_": True, "name": "MultiScaleDataset", "image_root": "./dataset/ILSVRC2012/",
                         "cls_label_path": "./dataset/ILSVRC2012/train_list.txt", "transform_ops": ops},
             "sampler": {"name": "MultiScaleSampler", "scales": [32, 48, 64, 96], "first_bs": 40,
                         "divided_factor": 32, "is_training": True}}
    cfg = load_config(paddleclas_shaped(tmp_path, DataLoader={"Train": train}))
    batch = int(40 * 32 * 32 / (64 * 64))
    assert cfg["DataLoader"]["Train"]["dataset"]["name"] == "ImageNetDataset"
    sampler = cfg["DataLoader"]["Train"]["sampler"]
    assert (sampler["name"], sampler["batch_size"], sampler["shuffle"], sampler["drop_last"]) == \
        ("DistributedBatchSampler", batch, True, False)
    assert cfg.notices == [f"DataLoader.Train.sampler: MultiScaleSampler (scales [32, 48, 64, 96], first_bs 40) read as "
                           f"one scale — ppnets trains at the RandCropImage size 64x64, with the batch size "
                           f"MultiScaleSampler gives it ({batch}; DistributedBatchSampler)"]


def test_keys_that_cannot_apply_are_refused_with_what_to_do(tmp_path):
    path = paddleclas_shaped(tmp_path, Global={"eval_mode": "retrieval"},
                             Arch={"name": "MobileNetV2_x0_25"},
                             Optimizer={"lr": {"name": "Cosine", "learning_rate": 0.1, "last_epoch": 7}})
    with pytest.raises(ConfigError) as e:
        load_config(path)
    lines = str(e.value).splitlines()
    assert lines == [
        "Global.eval_mode: 'retrieval' is not supported — ppnets trains and evaluates classifiers "
        "(eval_mode: classification); use PaddleClas for retrieval/face recognition",
        "Optimizer.lr.last_epoch: 7 — ppnets restores the schedule's position from a checkpoint; remove last_epoch "
        "and resume with Global.checkpoints=<prefix>"]


def test_three_errors_print_three_lines_and_exit_2(tmp_path):
    path = paddleclas_shaped(tmp_path, Global={"epochs": "ten", "use_dali_pipeline": True},
                             Arch={"name": "MobileNetV2_x0_25", "scale": "big"})
    r = subprocess.run([sys.executable, os.path.join(REPO, "tools", "train.py"), "-c", path],
                       capture_output=True, text=True, timeout=300)
    assert r.returncode == 2 and "Traceback" not in r.stderr
    lines = r.stderr.strip().splitlines()
    assert len(lines) == 3
    assert lines[0].startswith("ppnets: error: Global: unknown key 'use_dali_pipeline'; valid: epochs, ")
    assert lines[1:] == ["ppnets: error: Global.epochs: expected int, got 'ten' (str)",
                         "ppnets: error: Arch.scale: expected float, got 'big' (str)"]


def test_misleading_did_you_mean_is_gone():
    with pytest.raises(ConfigError) as e:
        load_config(DEFAULT, ["Global.use_sync_bn=true"])
    assert "did you mean" not in str(e.value)
    with pytest.raises(ConfigError, match=r"unknown key 'epoch' \(did you mean 'epochs'\?\)"):
        load_config(DEFAULT, ["Global.epoch=3"])


def test_override_appends_to_a_list_and_deletes_keys_and_sections():
    cfg = load_config(DEFAULT, ["DataLoader.Train.dataset.transform_ops.+={RandFlipImage: {flip_code: 1}}",
                                "~DataLoader.Train.dataset.transform_ops.0", "~AMP", "AMP.level=O2",
                                "~Global.pretrained_model", "Metric.Eval.+={TopkAcc: {topk: [2]}}"])
    base = load_config(DEFAULT)
    ops, base_ops = cfg["DataLoader"]["Train"]["dataset"]["transform_ops"], base["DataLoader"]["Train"]["dataset"]["transform_ops"]
    assert ops == base_ops[1:] + [{"RandFlipImage": {"flip_code": 1}}]
    assert cfg["AMP"]["level"] == "O2" and cfg["AMP"]["enabled"] is False
    assert cfg["Metric"]["Eval"] == base["Metric"]["Eval"] + [{"TopkAcc": {"topk": [2]}}]
    with pytest.raises(ConfigError, match=r"'Global.epochs' is a int, not a list"):
        load_config(DEFAULT, ["Global.epochs.+=3"])


def test_timm_autoaugment_strings():
    rand = build_transforms([{"TimmAutoAugment": {"config_str": "rand-m9-mstd0.5-inc1", "img_size": 32}}])
    op = rand.ops[0].inner
    assert op.num_layers == 2 and op.ops[0].magnitude == 9 and op.ops[0].magnitude_std == 0.5
    img = (np.arange(32 * 32 * 3) % 251).astype(np.uint8).reshape(32, 32, 3)
    out1 = rand(img.copy(), np.random.default_rng(3))
    out2 = rand(img.copy(), np.random.default_rng(3))
    assert out1.shape == img.shape and (out1 == out2).all() and not (out1 == img).all()
    auto = build_transforms([{"TimmAutoAugment": {"config_str": "original"}}])
    assert len(auto.ops[0].inner.policy) == 25
    for bad, msg in (("augmix-m5", "is not supported"), ("rand-x9", "cannot read the section 'x9'"),
                     ("rand-n2", "needs a magnitude")):
        with pytest.raises(ConfigError, match=msg):
            build_transforms([{"TimmAutoAugment": {"config_str": bad}}])


def test_pretrained_true_names_paddleclas_s_weights(tmp_path):
    """``Arch.pretrained: true`` (``use_ssld``) is PaddleClas's download: Global.pretrained_model becomes the
    source ``paddleclas`` (``ssld``), resolved (from the cache or downloaded) when the weights are loaded
    (tests/test_pretrained.py); a Global.pretrained_model of the config's own wins, as in PaddleClas."""
    cfg = load_config(paddleclas_shaped(tmp_path, Arch={"name": "MobileNetV2_x0_25", "pretrained": True}))
    assert cfg["Global"]["pretrained_model"] == "paddleclas" and "pretrained" not in cfg["Arch"]
    assert cfg.notices == ["Arch.pretrained: true — Global.pretrained_model: paddleclas, PaddleClas's ImageNet "
                           "weights of MobileNetV2_x0_25 (from ~/.paddleclas/weights/, downloaded there if missing)"]
    cfg = load_config(paddleclas_shaped(tmp_path, Arch={"name": "MobileNetV2", "pretrained": True, "use_ssld": True}))
    assert cfg["Global"]["pretrained_model"] == "ssld" and "use_ssld" not in cfg["Arch"]
    cfg = load_config(paddleclas_shaped(tmp_path, Arch={"name": "MobileNetV2", "pretrained": True},
                                        Global={"pretrained_model": "mine.pdparams"}))
    assert cfg["Global"]["pretrained_model"] == "mine.pdparams" and cfg.notices == []


def test_paddleclas_model_arguments_without_effect_are_dropped_with_a_notice(tmp_path):
    cfg = load_config(paddleclas_shaped(tmp_path, Arch={"_delete_": True, "name": "MobileNetV4_conv_small",
                                                        "class_num": 10, "drop_rate": 0.25, "drop_path_rate": 0.03,
                                                        "use_fused_attn": False}))
    assert cfg["Arch"]["drop_path_rate"] == 0.03  # a real MobileNetV4 argument stays
    assert "drop_rate" not in cfg["Arch"] and "use_fused_attn" not in cfg["Arch"]
    assert cfg.notices == ["Arch.drop_rate: 0.25 ignored — PaddleClas's MobileNetV4 accepts it but never applies "
                           "it; Arch.dropout sets the classifier dropout"]


def test_fasternet_decode_to_pil_and_null_autoaugment_policy(tmp_path):
    """PaddleClas's FasterNet configs: ``DecodeImage: {to_np: false}`` (a PIL image, RGB with the pil backend,
    made an array by the next resize) and ``TimmAutoAugment: {config_str: null}`` (no policy)."""
    decode_pil = {"DecodeImage": {"backend": "pil", "to_np": False, "channel_first": False}}
    cfg = load_config(paddleclas_shaped(tmp_path, DataLoader={
        "Train": {"dataset": {"transform_ops": [
            {"DecodeImage": {"to_rgb": True, "channel_first": False}}, {"RandCropImage": {"size": 32}},
            {"TimmAutoAugment": {"config_str": None}}, {"ToCHWImage": None}]}},
        "Eval": {"dataset": {"transform_ops": [decode_pil, {"ResizeImage": {"resize_short": 36}},
                                               {"CropImage": {"size": 32}}, {"ToCHWImage": None}]}}}))
    train = cfg["DataLoader"]["Train"]["dataset"]["transform_ops"]
    assert [next(iter(op)) for op in train] == ["DecodeImage", "RandCropImage", "ToCHWImage"]
    assert cfg["DataLoader"]["Eval"]["dataset"]["transform_ops"][0] == {   # RGB, as the PIL image
        "DecodeImage": {"to_rgb": True, "channel_first": False}}
    assert cfg.notices == [
        "DataLoader.Train.dataset.transform_ops.TimmAutoAugment: config_str null — no policy, the op is left out "
        "(PaddleClas's TimmAutoAugment cannot build it)",
        "DataLoader.Eval.dataset.transform_ops.DecodeImage.backend: pil ignored — ppnets decodes and resizes with "
        "OpenCV (cv2), as PaddleClas does by default"]
    # with the cv2 backend PaddleClas passes the array on as decoded (BGR)
    cv2_cfg = load_config(paddleclas_shaped(tmp_path, DataLoader={"Eval": {"dataset": {"transform_ops": [
        {"DecodeImage": {"to_np": False}}, {"ToCHWImage": None}]}}}))
    assert cv2_cfg["DataLoader"]["Eval"]["dataset"]["transform_ops"][0] == {
        "DecodeImage": {"to_rgb": False, "channel_first": False}}


def test_drop_rate_without_effect_names_the_model_family(tmp_path):
    for value, notices in ((0, []), (0.2, ["Arch.drop_rate: 0.2 ignored — PaddleClas's StarNet accepts it but never "
                                           "applies it; Arch.dropout sets the classifier dropout"])):
        cfg = load_config(paddleclas_shaped(tmp_path, Arch={"_delete_": True, "name": "StarNet_S1", "class_num": 10,
                                                            "drop_rate": value, "drop_path_rate": 0.01}))
        assert "drop_rate" not in cfg["Arch"] and cfg["Arch"]["drop_path_rate"] == 0.01
        assert cfg.notices == notices
