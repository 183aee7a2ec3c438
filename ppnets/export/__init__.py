"""Export to a Paddle inference model (and ONNX, and PaddleClas's deploy format).

``export_model`` replaces the folder ``Global.save_inference_dir`` with (written beside it, then
swapped in as a unit, see :mod:`ppnets.deploy.folders`):

- ``inference.json`` + ``inference.pdiparams`` (``paddle.jit.save``; PIR program format),
- ``inference.onnx`` when ``Export.formats`` has ``onnx`` (paddle2onnx, dynamic batch),
- ``inference.yml``: model name, input shape, the preprocessing ops, label names (exactly
  ``class_num``), whether the outputs are already probabilities, and the size and SHA-256 of
  every other file (``files``: :class:`~ppnets.deploy.Predictor` loads nothing else),
- ``inference_cls.yaml`` + ``class_id_map.txt``: PaddleClas's deploy config and label map.

A model with re-parameterizable blocks (MobileOne, RepViT, PP-LCNetV2 …) is fused before it is
traced (``Export.reparameterize``, default true): the exported program has one convolution where
training had several branches. A multi-label model (``Global.use_multilabel``) ends in a sigmoid
instead; ``inference.yml`` then records ``multilabel: true`` and the ``threshold`` above which a
class is reported. A ``features_only`` Arch exports its backbone: no softmax, one output per stage
of ``out_indices`` (``inference.yml`` lists their ``feature_info``).

:class:`ppnets.deploy.Predictor` reads only that directory and runs on paddle.inference, ONNX
Runtime or OpenVINO (:mod:`ppnets.deploy.runtimes`).
"""
from __future__ import annotations

import os
from typing import Any, Dict, Optional

from ..arch.distillation import inference_arch
from ..arch.reparam import reparameterize
from ..checkpoint import load_model_for_inference
from ..deploy.folders import check_replaceable
from ..utils.extras import ONNX_EXPORT, require_extra
from ..utils.logger import get_logger
from .pipeline import (export_input_shape, label_names_for, pipeline_output_shape,
                       plain_preprocessing, preprocess_ops, preprocess_source, preprocess_transform)
from .writer import FORMATS, WithActivation, save_inference_model

__all__ = ["export_model", "save_inference_model", "preprocess_ops", "preprocess_transform", "label_names_for",
           "export_input_shape", "pipeline_output_shape", "plain_preprocessing", "FORMATS"]


def export_model(config: Dict[str, Any], save_dir: Optional[str] = None) -> str:
    """Export ``Arch`` with ``Global.pretrained_model`` to ``save_dir`` (default Global.save_inference_dir)
    in ``Export.formats``, for the image size its preprocessing produces (see :func:`export_input_shape`)."""
    save_dir = save_dir or config["Global"]["save_inference_dir"]
    check_replaceable(os.path.realpath(save_dir))   # a folder of other files is refused before any work
    log = get_logger()
    if "onnx" in config["Export"]["formats"]:  # a missing package is named now, not after tracing
        require_extra("Export.formats: onnx", ONNX_EXPORT)
    preprocess_transform(config)  # a list that cannot be built is refused before anything is written
    ops, where = preprocess_source(config)
    image_shape = export_input_shape(config["Global"]["image_shape"], ops, where)
    label_names = label_names_for(config)   # exactly Arch.class_num names, checked before the weights load
    log.info(f"exporting {config['Arch']['name']}: loading {config['Global']['pretrained_model']}")
    model = load_model_for_inference(config)
    fused = config["Export"]["reparameterize"]
    if fused:
        reparameterize(model)  # fuses re-parameterizable blocks; no-op for other models
    name = inference_arch(config["Arch"])[0]["name"]  # a DistillationModel exports its infer_model_name
    meta = {"model_name": name, "class_num": config["Arch"]["class_num"],
            "transform_ops": ops, "label_names": label_names, "reparameterized": fused}
    exp = config["Export"]
    softmax = exp["softmax"]
    if getattr(model, "features_only", False):  # a backbone: its outputs are feature maps
        meta.update(class_num=None, label_names=None, features_only=True,
                    feature_info=[{k: v for k, v in d.items() if k != "modules"} for d in model.feature_info])
        softmax = False
    elif config["Global"]["use_multilabel"]:  # one sigmoid per class; inference keeps those above the threshold
        meta.update(multilabel=True, threshold=config["Infer"]["threshold"])
        model, softmax = WithActivation(model, "sigmoid"), False
    log.info(f"tracing the model with paddle.jit.to_static and saving it (formats: {', '.join(exp['formats'])})")
    save_inference_model(model, save_dir, image_shape, meta, softmax=softmax,
                         batch_size=exp["batch_size"], formats=exp["formats"], onnx_opset=exp["onnx_opset"])
    files = sorted(f for f in os.listdir(save_dir) if f.startswith(("inference", "class_id_map")))
    log.info(f"exported {name} to {save_dir} ({', '.join(files)})")
    return save_dir
