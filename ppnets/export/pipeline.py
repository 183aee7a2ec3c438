"""What an export records besides the network: the inference preprocessing (``Infer.transforms``,
else ``DataLoader.Eval``'s ops), the image size it produces, and the label names."""
from __future__ import annotations

from typing import Any, Dict, List, Optional, Tuple

from ..checkpoint import trained_class_names
from ..data.labels import read_label_file
from ..data.transforms import Compose, build_transforms, ensure_chw
from ..deploy.inputs import pipeline_output_shape, probe_pipeline
from ..errors import ConfigError, short_repr
from ..utils.logger import get_logger

__all__ = ["preprocess_source", "preprocess_ops", "preprocess_transform", "label_names_for",
           "pipeline_output_shape", "export_input_shape", "plain_preprocessing"]


def preprocess_source(config: Dict[str, Any]) -> Tuple[List[Dict[str, Any]], str]:
    """``(ops, config key)`` of the inference preprocessing: ``Infer.transforms``, else ``DataLoader.Eval``'s."""
    ops, where = config["Infer"].get("transforms"), "Infer.transforms"
    if ops is None:
        ops = (config["DataLoader"].get("Eval") or {}).get("dataset", {}).get("transform_ops")
        where = "DataLoader.Eval.dataset.transform_ops"
    if not ops:
        raise ConfigError("Infer.transforms: no preprocessing given (and DataLoader.Eval.dataset.transform_ops "
                          "is empty)")
    return ensure_chw(ops, where), where


def preprocess_ops(config: Dict[str, Any]) -> List[Dict[str, Any]]:
    """The inference preprocessing: ``Infer.transforms`` or else ``DataLoader.Eval``'s ops, ending on a
    CHW image (a list whose result is HWC, as PaddleClas's dataset lists are, gets ``ToCHWImage``)."""
    return preprocess_source(config)[0]


def preprocess_transform(config: Dict[str, Any]) -> Compose:
    """:func:`preprocess_ops` built, its errors naming the config key the ops come from."""
    ops, where = preprocess_source(config)
    return build_transforms(ops, where)


def label_names_for(config: Dict[str, Any]) -> Optional[List[str]]:
    """Label names: ``Infer.class_id_map_file``, else those the weights were trained with; either must
    name exactly ``Arch.class_num`` classes."""
    path = config["Infer"].get("class_id_map_file")
    weights = config["Global"].get("pretrained_model")
    names = read_label_file(path) if path else trained_class_names(weights, config["Global"]["trust_pickles"])
    class_num = config["Arch"].get("class_num")
    if names is not None and class_num is not None and len(names) != class_num:
        if path:
            raise ConfigError(f"Infer.class_id_map_file: {path} names {len(names):,} classes, but Arch.class_num is "
                              f"{class_num}; the label file needs one name per class")
        raise ConfigError(f"Global.pretrained_model: {weights} was trained with {len(names):,} class names, but "
                          f"Arch.class_num is {class_num}")
    return names


def export_input_shape(image_shape: List[int], ops: List[Dict[str, Any]], where: str) -> List[int]:
    """The ``[C, H, W]`` to export for: the size the preprocessing ``ops`` produces (the exported
    model is only ever fed those images). A ConfigError when that size depends on the image; a
    warning when ``Global.image_shape`` says otherwise (PaddleClas's MobileNetV4 configs declare
    256-480 px there but crop 224 for inference)."""
    if not ops or next(iter(ops[0])) != "DecodeImage":
        raise ConfigError(f"{where}: must begin with DecodeImage (the exported preprocessing reads image files), "
                          f"got {short_repr(ops[0] if ops else None)}")
    shape, why = probe_pipeline(build_transforms(ops, where=where))
    if shape is None:
        raise ConfigError(f"{where}: the preprocessing {why}; end it with a fixed size (CropImage or ResizeImage "
                          f"size) equal to Global.image_shape {list(image_shape)}")
    if shape != list(image_shape):
        get_logger().warning(f"Global.image_shape: {list(image_shape)} differs from the {shape} images that "
                             f"{where} produces; exporting for {shape}, the images the exported pipeline feeds")
    return shape


def plain_preprocessing(size: int) -> List[Dict[str, Any]]:
    """A minimal inference pipeline for ``size``-px exports of models without a config (benchmarks,
    checks): decode, resize to ``size`` × ``size``, normalise (ImageNet statistics), CHW."""
    return [{"DecodeImage": {"to_rgb": True, "channel_first": False}}, {"ResizeImage": {"size": size}},
            {"NormalizeImage": {"scale": 1.0 / 255.0, "mean": [0.485, 0.456, 0.406], "std": [0.229, 0.224, 0.225],
                                "order": ""}},
            {"ToCHWImage": None}]
