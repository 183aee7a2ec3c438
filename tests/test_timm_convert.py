"""timm's weights for MobileNetV1/V2/V3 and EfficientNet: what the converter does beyond timm's logits.

``tests/test_timm_reference.py`` checks that each mapped timm model's weights give timm's logits. Here:
another class count converts, a file of another model fails with one line naming the keys, and both names are accepted.
(That each tensor lands in the right place is what the reference test's logits show.) Small models,
stand-in tensors made from timm's key manifests, no forward pass.
"""
from __future__ import annotations

import os
import re

import numpy as np
import pytest

import ppnets
from ppnets.arch.timm import convert_timm_state_dict, timm_names, timm_to_ppnets_name
from ppnets.errors import CheckpointError, ConfigError

from helpers.reference import TIMM, timm_reference_names

FAMILIES = ("mobilenetv1_", "mobilenetv2_", "mobilenetv3_", "tf_mobilenetv3_", "tf_efficientnet_b")


def _timm_sd(name: str) -> dict:
    """timm's state_dict of ``name`` (its key manifest), each tensor distinct and asymmetric: cheap to make."""
    sd = {}
    with open(os.path.join(TIMM, f"{name}.keys.txt"), encoding="utf-8") as f:
        for i, line in enumerate(f):
            key, shape = line.split(" ", 1)
            shape = [int(d) for d in re.findall(r"\d+", shape)]
            sd[key] = (np.arange(int(np.prod(shape))) % 1000 + 1000 * i).astype("float32").reshape(shape)
    return sd


def test_every_reference_of_these_families_is_mapped():
    # the reference test only runs mapped names: a lost registration must not pass silently
    ours = [n for n in timm_reference_names() if n.startswith(FAMILIES)]
    assert {n: timm_names().get(n) for n in ours} == {
        "mobilenetv1_100": "MobileNetV1_timm", "mobilenetv2_050": "MobileNetV2_x0_5_timm",
        "mobilenetv2_075": "MobileNetV2_x0_75_timm", "mobilenetv2_100": "MobileNetV2_timm",
        "mobilenetv3_large_100": "MobileNetV3_large_x1_0_timm", "mobilenetv3_small_100": "MobileNetV3_small_x1_0_timm",
        "tf_mobilenetv3_large_100": "MobileNetV3_large_x1_0_tf",
        "tf_mobilenetv3_small_100": "MobileNetV3_small_x1_0_tf",
        **{f"tf_efficientnet_b{i}": f"EfficientNetB{i}" for i in range(8)}}


def test_another_class_count_converts_and_loads_strictly():
    sd = _timm_sd("mobilenetv3_small_100")
    sd["classifier.weight"] = np.random.default_rng(0).standard_normal((10, 1024)).astype("float32")
    sd["classifier.bias"] = np.arange(10, dtype="float32")
    out = convert_timm_state_dict("mobilenetv3_small_100", sd)       # class count read from the file
    assert out["fc.weight"].shape == (1024, 10)
    model = ppnets.build_model("MobileNetV3_small_x1_0_timm", class_num=10)
    missing, unexpected = model.set_state_dict(out)
    assert not missing and not unexpected
    assert np.array_equal(model.fc.weight.numpy(), sd["classifier.weight"].T)
    with pytest.raises(CheckpointError, match=r"shape mismatch.*fc\.weight \[1024, 10\] vs model \[1024, 1000\].*"
                                              r"another class count"):
        convert_timm_state_dict("mobilenetv3_small_100", sd, class_num=1000)


@pytest.mark.parametrize("timm_name,target,message", [
    # EfficientNet-B0's file for B1: B1's extra blocks are missing
    ("tf_efficientnet_b0", "EfficientNetB1",
     r"do not fit EfficientNetB1: 128 missing key\(s\): blocks\.0\.1\.conv_dw\.conv\.weight, "),
    # timm's MobileNetV3-small for -large (named by timm's name)
    ("mobilenetv3_small_100", "mobilenetv3_large_100",
     r"do not fit MobileNetV3_large_x1_0_timm: 76 missing key\(s\): blocks\.11\.expand_conv\.conv\.weight, .*; "
     r"20 unexpected key\(s\): blocks\.0\.mid_se\.conv1\.weight, .*; 153 shape mismatch\(es\): "
     r"last_conv\.weight \[1024, 576, 1, 1\] vs model \[1280, 960, 1, 1\], "),
    # 0.5's file for 0.75
    ("mobilenetv2_050", "MobileNetV2_x0_75_timm",
     r"do not fit MobileNetV2_x0_75_timm: \d+ shape mismatch\(es\): conv1\._conv\.weight \[16, 3, 3, 3\] vs "
     r"model \[24, 3, 3, 3\]"),
    # PaddleClas's MobileNetV1 (ReLU, not timm's ReLU6) has no timm mapping, although its shapes are the same
    ("mobilenetv1_100", "MobileNetV1", r"do not fit MobileNetV1: 137 missing key\(s\): conv\.conv\.weight, .*; "
                                       r"137 unexpected key\(s\): conv_stem\.weight, "),
])
def test_the_wrong_model_fails_in_one_line_naming_the_keys(timm_name, target, message):
    with pytest.raises(CheckpointError, match=message) as err:
        convert_timm_state_dict(target, _timm_sd(timm_name))
    assert "\n" not in str(err.value)


def test_a_key_of_no_known_part_is_reported_under_timm_s_name():
    sd = _timm_sd("mobilenetv2_050")
    sd["blocks.1.0.aa.weight"] = np.zeros(3, "float32")    # e.g. an anti-aliasing layer ppnets does not have
    with pytest.raises(CheckpointError, match=r"do not fit MobileNetV2_x0_5_timm: 1 unexpected key\(s\): "
                                              r"blocks\.1\.0\.aa\.weight$"):
        convert_timm_state_dict("mobilenetv2_050", sd)


def test_timm_name_or_ppnets_name():
    sd = _timm_sd("tf_mobilenetv3_small_100")
    by_timm = convert_timm_state_dict("tf_mobilenetv3_small_100", sd)
    by_ppnets = convert_timm_state_dict("MobileNetV3_small_x1_0_tf", sd)
    assert by_timm.keys() == by_ppnets.keys() and all(np.array_equal(by_timm[k], by_ppnets[k]) for k in by_timm)
    assert timm_to_ppnets_name("tf_efficientnet_b3.ns_jft_in1k") == "EfficientNetB3"
    assert timm_to_ppnets_name("mobilenetv1_100.ra4_e3600_r224_in1k") == "MobileNetV1_timm"
    with pytest.raises(ConfigError, match=r"timm model 'efficientnet_b0' has no ppnets equivalent"):
        timm_to_ppnets_name("efficientnet_b0")   # symmetric padding, BN eps 1e-5: not EfficientNetB0
