"""What an export records besides the network: the inference preprocessing (``Infer.transforms``,
else ``DataLoader.Eval``'s ops), the image size it produces, and the label names."""
from __future__ import annotations

from typing import Any, Dict, List, Optional, Tuple

import cv2
import numpy as np

from ..checkpoint import trained_class_names
from ..data.labels import read_label_file
from ..data.transforms import Compose, build_transforms, ensure_chw
from ..errors import ConfigError, DataError
from ..utils.logger import get_logger

__all__ = ["preprocess_source", "preprocess_ops", "preprocess_transform", "label_names_for",
           "pipeline_output_shape", "export_input_shape"]


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
    """Label names: ``Infer.class_id_map_file``, else those the weights were trained with."""
    path = config["Infer"].get("class_id_map_file")
    if path:
        return read_label_file(path)
    return trained_class_names(config["Global"].get("pretrained_model"), config["Global"]["trust_pickles"])


def pipeline_output_shape(transform: Compose) -> Optional[List[int]]:
    """The ``[C, H, W]`` every image leaves ``transform`` with, or None when it depends on the image
    (checked on two synthetic images of different sizes and aspect ratios)."""
    shapes = set()
    for h, w in ((517, 389), (403, 611)):
        image = np.random.default_rng(h).integers(0, 256, (h, w, 3), dtype=np.uint8)
        ok, png = cv2.imencode(".png", image)
        try:
            shapes.add(tuple(np.asarray(transform(png.tobytes())).shape))
        except DataError:   # e.g. a crop larger than the synthetic image
            return None
    return list(shapes.pop()) if len(shapes) == 1 else None


def export_input_shape(image_shape: List[int], ops: List[Dict[str, Any]], where: str) -> List[int]:
    """The ``[C, H, W]`` to export for: the size the preprocessing ``ops`` produces (the exported
    model is only ever fed those images). A ConfigError when that size depends on the image; a
    warning when ``Global.image_shape`` says otherwise (PaddleClas's MobileNetV4 configs declare
    256-480 px there but crop 224 for inference)."""
    shape = pipeline_output_shape(build_transforms(ops, where=where))
    if shape is None:
        raise ConfigError(f"{where}: the preprocessing gives images of different sizes; end it with a fixed "
                          f"size (CropImage or ResizeImage size) equal to Global.image_shape {list(image_shape)}")
    if shape != list(image_shape):
        get_logger().warning(f"Global.image_shape: {list(image_shape)} differs from the {shape} images that "
                             f"{where} produces; exporting for {shape}, the images the exported pipeline feeds")
    return shape
