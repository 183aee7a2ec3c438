"""Where published ImageNet weights are: PaddleClas's URLs and timm's hub ids, with their top-1.

Data only (the download, cache and checks are :mod:`.hub`). Read from, at the commits the
reference data were made from:

- PaddleClas d178931f: ``MODEL_URLS`` of ``ppcls/arch/backbone/**/<family>.py`` (the file
  ``pretrained: true`` downloads) and the rule of ``ppcls/utils/save_load.py`` for ``use_ssld``
  (``_pretrained`` → ``_ssld_pretrained`` unless the URL names SSLD already; PP-HGNetV2's loader
  always asks for the ``ssld_stage1`` file). Top-1: ``docs/zh_CN/models/ImageNet1k`` and
  ``docs/zh_CN/training/advanced/ssld.md`` (as in ``tests/reference/model_sizes.md``).
- timm aa4b5850: ``results/results-imagenet.csv`` — every ImageNet-1k-evaluated hub id of the
  families ppnets shares with timm, with its top-1 at the smallest size timm evaluated it at, in
  the order of timm's ``default_cfgs`` (the first tag is the one ``timm.create_model(name,
  pretrained=True)`` loads).

Which timm names a ppnets model *is* is the registry's business (``register_model(..., timm=…)``,
:data:`ppnets.arch.registry.TIMM_NAMES`): a hub id is offered for a model only through it.
"""
from __future__ import annotations

from typing import Dict, Optional, Tuple

__all__ = ["PADDLECLAS_HOST", "PADDLECLAS", "SSLD_TOP1", "TIMM_HUB", "paddleclas_url", "paddleclas_top1"]

#: the host of every PaddleClas weights URL (a mirror replaces it)
PADDLECLAS_HOST = "https://paddle-imagenet-models-name.bj.bcebos.com"

_L, _D = "dygraph/legendary_models", "dygraph"

#: model → (folder under PADDLECLAS_HOST, published ImageNet-1k top-1 of ``pretrained: true``'s file or None)
PADDLECLAS: Dict[str, Tuple[str, Optional[float]]] = {
    "MobileNetV1_x0_25": (_L, 51.43), "MobileNetV1_x0_5": (_L, 63.52), "MobileNetV1_x0_75": (_L, 68.81),
    "MobileNetV1": (_L, 70.99),
    "MobileNetV2_x0_25": (_D, 53.21), "MobileNetV2_x0_5": (_D, 65.03), "MobileNetV2_x0_75": (_D, 69.83),
    "MobileNetV2": (_D, 72.15), "MobileNetV2_x1_5": (_D, 74.12), "MobileNetV2_x2_0": (_D, 75.23),
    "MobileNetV3_small_x0_35": (_L, 53.03), "MobileNetV3_small_x0_5": (_L, 59.21),
    "MobileNetV3_small_x0_75": (_L, 66.02), "MobileNetV3_small_x1_0": (_L, 68.24),
    "MobileNetV3_small_x1_25": (_L, 70.67),
    "MobileNetV3_large_x0_35": (_L, 64.32), "MobileNetV3_large_x0_5": (_L, 69.24),
    "MobileNetV3_large_x0_75": (_L, 73.14), "MobileNetV3_large_x1_0": (_L, 75.32),
    "MobileNetV3_large_x1_25": (_L, 76.41),
    "MobileNetV4_conv_small": (_L, 74.6), "MobileNetV4_conv_medium": (_L, 79.9), "MobileNetV4_conv_large": (_L, 83.4),
    "MobileNetV4_hybrid_medium": (_L, 80.5), "MobileNetV4_hybrid_large": (_L, 83.8),
    "ShuffleNetV2_x0_25": (_D, 49.90), "ShuffleNetV2_x0_33": (_D, 53.73), "ShuffleNetV2_x0_5": (_D, 60.32),
    "ShuffleNetV2_x1_0": (_D, 68.80), "ShuffleNetV2_x1_5": (_D, 71.63), "ShuffleNetV2_x2_0": (_D, 73.15),
    "ShuffleNetV2_swish": (_D, 70.03),
    "SqueezeNet1_0": (_D, 59.6), "SqueezeNet1_1": (_D, 60.1),
    "EfficientNetB0": (_D, 77.38), "EfficientNetB1": (_D, 79.15), "EfficientNetB2": (_D, 79.85),
    "EfficientNetB3": (_D, 81.15), "EfficientNetB4": (_D, 82.85), "EfficientNetB5": (_D, 83.62),
    "EfficientNetB6": (_D, 84.00), "EfficientNetB7": (_D, 84.30),
    "GhostNet_x0_5": (_D, 66.88), "GhostNet_x1_0": (_D, 74.02), "GhostNet_x1_3": (_D, 75.79),
    "PPLCNet_x0_25": (_L, 51.86), "PPLCNet_x0_35": (_L, 58.09), "PPLCNet_x0_5": (_L, 63.14),
    "PPLCNet_x0_75": (_L, 68.18), "PPLCNet_x1_0": (_L, 71.32), "PPLCNet_x1_5": (_L, 73.71),
    "PPLCNet_x2_0": (_L, 75.18), "PPLCNet_x2_5": (_L, 76.60),
    "PPLCNetV2_small": (_L, None), "PPLCNetV2_base": (_L, 77.04), "PPLCNetV2_large": (_L, None),
    # PP-HGNetV2's MODEL_URLS name the SSLD stage-2 file (top-1 B0 77.77 … B6 86.30); pretrained: true
    # loads the stage-1 file, whose top-1 PaddleClas does not publish
    **{f"PPHGNetV2_B{i}": (_L, None) for i in range(7)},
    "StarNet_S1": (_D, 73.6), "StarNet_S2": (_D, 74.8), "StarNet_S3": (_D, 77.0), "StarNet_S4": (_D, 79.0),
    "FasterNet_T0": (_D, 71.9), "FasterNet_T1": (_D, 75.9), "FasterNet_T2": (_D, 79.1),
    "FasterNet_S": (_D, 81.3), "FasterNet_M": (_D, 83.0), "FasterNet_L": (_D, 83.5),
}

#: models whose MODEL_URLS file is already the SSLD one, and whose loader takes its stage-1 file
_SSLD_STAGE1 = frozenset(f"PPHGNetV2_B{i}" for i in range(7))

#: the SSLD (distilled) weights PaddleClas publishes, with their top-1 (``use_ssld: true``)
SSLD_TOP1: Dict[str, float] = {
    "MobileNetV1": 77.89, "MobileNetV2": 76.74, "MobileNetV3_large_x1_0": 78.96, "MobileNetV3_small_x1_0": 71.29,
    "MobileNetV3_small_x0_35": 55.55, "GhostNet_x1_3": 79.38, "PPLCNet_x0_25": 53.43, "PPLCNet_x0_5": 66.10,
    "PPLCNet_x1_0": 74.39, "PPLCNet_x2_5": 80.82, "PPLCNetV2_base": 80.10,
}


def paddleclas_url(model: str, ssld: bool = False) -> Optional[str]:
    """The URL PaddleClas's ``<model>(pretrained=True, use_ssld=ssld)`` downloads, or None when
    PaddleClas has no such model (the SSLD file is derived by PaddleClas's rule: it may not exist)."""
    if model not in PADDLECLAS:
        return None
    folder, _ = PADDLECLAS[model]
    if model in _SSLD_STAGE1:
        return f"{PADDLECLAS_HOST}/{folder}/{model}_ssld_stage1_pretrained.pdparams"
    return f"{PADDLECLAS_HOST}/{folder}/{model}_{'ssld_' if ssld else ''}pretrained.pdparams"


def paddleclas_top1(model: str, ssld: bool = False) -> Optional[float]:
    """PaddleClas's published top-1 of :func:`paddleclas_url`'s file, None when unpublished."""
    if model in _SSLD_STAGE1:
        return None
    return SSLD_TOP1.get(model) if ssld else PADDLECLAS.get(model, ("", None))[1]


#: timm model name → its hub tags ``(tag, image size, ImageNet-1k top-1)``, timm's default first;
#: the hub id is ``timm/<name>.<tag>``
TIMM_HUB: Dict[str, Tuple[Tuple[str, int, float], ...]] = {
    "efficientnet_b0": (("ra_in1k", 224, 77.70), ("ra4_e3600_r224_in1k", 224, 78.57)),
    "efficientnet_b1": (("ra4_e3600_r240_in1k", 240, 80.40), ("ft_in1k", 224, 77.59)),
    "efficientnet_b2": (("ra_in1k", 256, 79.32),),
    "efficientnet_b3": (("ra2_in1k", 288, 81.47),),
    "efficientnet_b4": (("ra2_in1k", 320, 82.66),),
    "efficientnet_b5": (("sw_in12k_ft_in1k", 448, 85.89),),
    "fasternet_l": (("in1k", 224, 83.52),),
    "fasternet_m": (("in1k", 224, 82.85),),
    "fasternet_s": (("in1k", 224, 81.33),),
    "fasternet_t0": (("in1k", 224, 71.73),),
    "fasternet_t1": (("in1k", 224, 75.92),),
    "fasternet_t2": (("in1k", 224, 78.74),),
    "ghostnet_100": (("in1k", 224, 73.96),),
    "ghostnetv3_100": (("in1k", 224, 76.94),),
    "hgnetv2_b0": (("ssld_stage2_ft_in1k", 224, 77.36), ("ssld_stage1_in22k_in1k", 224, 76.87)),
    "hgnetv2_b1": (("ssld_stage2_ft_in1k", 224, 78.88), ("ssld_stage1_in22k_in1k", 224, 78.08)),
    "hgnetv2_b2": (("ssld_stage2_ft_in1k", 224, 81.56), ("ssld_stage1_in22k_in1k", 224, 80.74)),
    "hgnetv2_b3": (("ssld_stage2_ft_in1k", 224, 82.91), ("ssld_stage1_in22k_in1k", 224, 82.59)),
    "hgnetv2_b4": (("ssld_stage2_ft_in1k", 224, 83.70), ("ssld_stage1_in22k_in1k", 224, 82.89)),
    "hgnetv2_b5": (("ssld_stage2_ft_in1k", 224, 84.82), ("ssld_stage1_in22k_in1k", 224, 84.46)),
    "hgnetv2_b6": (("ssld_stage2_ft_in1k", 224, 86.21), ("ssld_stage1_in22k_in1k", 224, 86.05)),
    "lcnet_050": (("ra2_in1k", 224, 63.14),),
    "lcnet_075": (("ra2_in1k", 224, 68.79),),
    "lcnet_100": (("ra2_in1k", 224, 72.13),),
    "mobilenetv1_100": (("ra4_e3600_r224_in1k", 224, 75.39),),
    "mobilenetv1_100h": (("ra4_e3600_r224_in1k", 224, 75.66),),
    "mobilenetv1_125": (("ra4_e3600_r224_in1k", 224, 76.92),),
    "mobilenetv2_050": (("lamb_in1k", 224, 65.93),),
    "mobilenetv2_100": (("ra_in1k", 224, 72.91),),
    "mobilenetv2_110d": (("ra_in1k", 224, 75.06),),
    "mobilenetv2_120d": (("ra_in1k", 224, 77.30),),
    "mobilenetv2_140": (("ra_in1k", 224, 76.53),),
    "mobilenetv3_large_100": (("ra_in1k", 224, 75.78), ("ra4_e3600_r224_in1k", 224, 76.31),
                              ("miil_in21k_ft_in1k", 224, 77.92)),
    "mobilenetv3_large_150d": (("ra4_e3600_r256_in1k", 256, 80.99),),
    "mobilenetv3_rw": (("rmsp_in1k", 224, 75.62),),
    "mobilenetv3_small_050": (("lamb_in1k", 224, 57.92),),
    "mobilenetv3_small_075": (("lamb_in1k", 224, 65.28),),
    "mobilenetv3_small_100": (("lamb_in1k", 224, 67.64),),
    "mobilenetv4_conv_aa_large": (("e230_r448_in12k_ft_in1k", 448, 84.67), ("e230_r384_in12k_ft_in1k", 384, 84.31),
                                  ("e600_r384_in1k", 384, 83.26)),
    "mobilenetv4_conv_blur_medium": (("e500_r224_in1k", 224, 79.45),),
    "mobilenetv4_conv_large": (("e600_r384_in1k", 384, 82.97), ("e500_r256_in1k", 256, 81.86)),
    "mobilenetv4_conv_medium": (("e500_r256_in1k", 256, 79.92), ("e500_r224_in1k", 224, 79.09),
                                ("e250_r384_in12k_ft_in1k", 384, 82.78)),
    "mobilenetv4_conv_small": (("e2400_r224_in1k", 224, 73.76), ("e1200_r224_in1k", 224, 73.45),
                               ("e3600_r256_in1k", 256, 74.53)),
    "mobilenetv4_conv_small_050": (("e3000_r224_in1k", 224, 64.78),),
    "mobilenetv4_hybrid_large": (("ix_e600_r384_in1k", 384, 84.00), ("e600_r384_in1k", 384, 83.83)),
    "mobilenetv4_hybrid_medium": (("e200_r256_in12k_ft_in1k", 256, 82.36), ("ix_e550_r256_in1k", 256, 81.48),
                                  ("ix_e550_r384_in1k", 384, 82.95), ("e500_r224_in1k", 224, 80.43)),
    "mobileone_s0": (("apple_in1k", 224, 71.40),),
    "mobileone_s1": (("apple_in1k", 224, 75.76),),
    "mobileone_s2": (("apple_in1k", 224, 77.50),),
    "mobileone_s3": (("apple_in1k", 224, 78.00),),
    "mobileone_s4": (("apple_in1k", 224, 79.45),),
    "repvit_m0_9": (("dist_300e_in1k", 224, 78.65), ("dist_450e_in1k", 224, 79.06)),
    "repvit_m1": (("dist_in1k", 224, 78.54),),
    "repvit_m1_0": (("dist_300e_in1k", 224, 80.15), ("dist_450e_in1k", 224, 80.43)),
    "repvit_m1_1": (("dist_300e_in1k", 224, 80.83), ("dist_450e_in1k", 224, 81.31)),
    "repvit_m1_5": (("dist_300e_in1k", 224, 82.38), ("dist_450e_in1k", 224, 82.52)),
    "repvit_m2": (("dist_in1k", 224, 80.47),),
    "repvit_m2_3": (("dist_300e_in1k", 224, 83.52), ("dist_450e_in1k", 224, 83.75)),
    "repvit_m3": (("dist_in1k", 224, 81.49),),
    "starnet_s1": (("in1k", 224, 73.53),),
    "starnet_s2": (("in1k", 224, 74.67),),
    "starnet_s3": (("in1k", 224, 77.38),),
    "starnet_s4": (("in1k", 224, 78.82),),
    "tf_efficientnet_b0": (("ns_jft_in1k", 224, 78.68), ("ap_in1k", 224, 77.10), ("aa_in1k", 224, 76.88),
                           ("in1k", 224, 76.54)),
    "tf_efficientnet_b1": (("ns_jft_in1k", 240, 81.39), ("ap_in1k", 240, 79.29), ("aa_in1k", 240, 78.84),
                           ("in1k", 240, 78.55)),
    "tf_efficientnet_b2": (("ns_jft_in1k", 260, 82.41), ("ap_in1k", 260, 80.30), ("aa_in1k", 260, 80.07),
                           ("in1k", 260, 79.61)),
    "tf_efficientnet_b3": (("ns_jft_in1k", 300, 84.05), ("ap_in1k", 300, 81.84), ("aa_in1k", 300, 81.65),
                           ("in1k", 300, 80.88)),
    "tf_efficientnet_b4": (("ns_jft_in1k", 380, 85.16), ("ap_in1k", 380, 83.25), ("aa_in1k", 380, 83.04),
                           ("in1k", 380, 82.60)),
    "tf_efficientnet_b5": (("ns_jft_in1k", 456, 86.10), ("ap_in1k", 456, 84.26), ("ra_in1k", 456, 83.83),
                           ("aa_in1k", 456, 83.70), ("in1k", 456, 83.17)),
    "tf_efficientnet_b6": (("ns_jft_in1k", 528, 86.48), ("ap_in1k", 528, 84.79), ("aa_in1k", 528, 84.12)),
    "tf_efficientnet_b7": (("ns_jft_in1k", 600, 86.85), ("ap_in1k", 600, 85.13), ("ra_in1k", 600, 84.93),
                           ("aa_in1k", 600, 84.42)),
    "tf_mobilenetv3_large_075": (("in1k", 224, 73.44),),
    "tf_mobilenetv3_large_100": (("in1k", 224, 75.51),),
    "tf_mobilenetv3_large_minimal_100": (("in1k", 224, 72.27),),
    "tf_mobilenetv3_small_075": (("in1k", 224, 65.71),),
    "tf_mobilenetv3_small_100": (("in1k", 224, 67.92),),
    "tf_mobilenetv3_small_minimal_100": (("in1k", 224, 62.89),),
}
