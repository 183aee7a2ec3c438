"""Export to a Paddle inference model (and ONNX), and the deploy predictor over its runtimes.

``export_model`` writes to ``Global.save_inference_dir``:

- ``inference.json`` + ``inference.pdiparams`` (``paddle.jit.save``; PIR program format),
- ``inference.onnx`` when ``Export.formats`` has ``onnx`` (paddle2onnx, dynamic batch),
- ``inference.yml``: model name, input shape, the preprocessing ops, label names and
  whether the outputs are already probabilities,
- ``inference_cls.yaml`` + ``class_id_map.txt``: PaddleClas's deploy config and label map.

A multi-label model (``Global.use_multilabel``) ends in a sigmoid instead; ``inference.yml`` then
records ``multilabel: true`` and the ``threshold`` above which a class is reported.

A ``features_only`` Arch exports its backbone: no softmax, one output per stage of
``out_indices`` (``inference.yml`` lists their ``feature_info``).

:class:`Predictor` (:mod:`ppnets.deploy.predictor`) reads only that directory and runs on
paddle.inference, ONNX Runtime or OpenVINO (:mod:`ppnets.deploy.runtimes`).
"""
from __future__ import annotations

import os
import shutil
from typing import Any, Dict, List, Optional, Sequence, Tuple

import cv2
import numpy as np
import paddle
import yaml

from ..arch.distillation import inference_arch
from ..data.labels import read_label_file
from ..data.transforms import Compose, build_transforms, ensure_chw
from ..deploy.onnx_export import MIN_OPSET, PARITY_ATOL, convert_to_onnx, parity
from ..deploy.paddleclas import DEPLOY_CONFIG, LABEL_MAP, deploy_config, label_map_text
from ..deploy.runtimes import ONNX_FILE, PADDLE_FILES
from ..errors import ConfigError, DataError
from ..utils.logger import get_logger
from .checkpoint import trained_class_names
from .export_meta import file_digests
from .models import build_run_model, load_run_weights

__all__ = ["export_model", "save_inference_model", "Predictor", "preprocess_ops", "preprocess_transform",
           "label_names_for", "export_input_shape", "pipeline_output_shape", "FORMATS"]

MODEL_FILE, PARAMS_FILE, META_FILE = "inference.json", "inference.pdiparams", "inference.yml"
FORMATS = ("paddle", "onnx")


class _WithActivation(paddle.nn.Layer):
    """``model`` followed by a softmax (class probabilities) or a sigmoid (multi-label: one per class)."""

    def __init__(self, model: paddle.nn.Layer, activation: str = "softmax") -> None:
        super().__init__()
        self.model = model
        self.activation = activation

    def forward(self, x: paddle.Tensor) -> paddle.Tensor:
        logits = self.model(x)
        if self.activation == "sigmoid":
            return paddle.nn.functional.sigmoid(logits)
        return paddle.nn.functional.softmax(logits, axis=-1)


def _preprocess_source(config: Dict[str, Any]) -> Tuple[List[Dict[str, Any]], str]:
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
    return _preprocess_source(config)[0]


def preprocess_transform(config: Dict[str, Any]) -> Compose:
    """:func:`preprocess_ops` built, its errors naming the config key the ops come from."""
    ops, where = _preprocess_source(config)
    return build_transforms(ops, where)


def label_names_for(config: Dict[str, Any]) -> Optional[List[str]]:
    """Label names: ``Infer.class_id_map_file``, else those the weights were trained with."""
    path = config["Infer"].get("class_id_map_file")
    if path:
        return read_label_file(path)
    return trained_class_names(config["Global"].get("pretrained_model"), config["Global"]["trust_pickles"])


def load_model_for_inference(config: Dict[str, Any]) -> paddle.nn.Layer:
    """Build the evaluated model of ``Arch`` (a DistillationModel's ``infer_model_name``) and load
    ``Global.pretrained_model`` (required) into it, in eval mode."""
    weights = config["Global"].get("pretrained_model")
    if not weights:
        raise ConfigError("Global.pretrained_model: required (the weights to export/infer), "
                          "e.g. -o Global.pretrained_model=output/MobileNetV2/best_model")
    trust = config["Global"]["trust_pickles"]
    model = build_run_model(config["Arch"], "export", trust)
    load_run_weights(model, config["Arch"], weights, "export", strict=True, trust=trust)
    model.eval()
    return model


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


def _write_deploy_files(tmp_dir: str, save_dir: str, meta: Dict[str, Any]) -> None:
    """PaddleClas's deploy config and ``id name`` label map beside the model (see ppnets.deploy.paddleclas)."""
    config, reason = deploy_config(meta, save_dir)
    if config is None:
        get_logger().warning(f"no {DEPLOY_CONFIG} written: {reason}")
        return
    if "onnx" in meta["formats"] and "paddle" not in meta["formats"]:
        config["Global"]["use_onnx"] = True
    with open(os.path.join(tmp_dir, DEPLOY_CONFIG), "w", encoding="utf-8") as f:
        yaml.safe_dump(config, f, sort_keys=False, allow_unicode=True)
    if meta.get("label_names"):
        with open(os.path.join(tmp_dir, LABEL_MAP), "w", encoding="utf-8") as f:
            f.write(label_map_text(meta["label_names"]))


def save_inference_model(model: paddle.nn.Layer, save_dir: str, image_shape: List[int], meta: Dict[str, Any],
                         softmax: bool = True, batch_size: Optional[int] = None,
                         formats: Sequence[str] = ("paddle",), onnx_opset: int = MIN_OPSET) -> str:
    """``paddle.jit.to_static`` + ``paddle.jit.save`` of ``model`` (eval mode) into ``save_dir``,
    with ``inference.yml`` holding ``meta`` (preprocessing ops, label names …) for :class:`Predictor`.

    ``formats`` containing ``onnx`` adds ``inference.onnx`` (paddle2onnx; its max |Δ| from the
    Paddle model is logged); without ``paddle`` the Paddle files are not kept. PaddleClas's
    deploy config and label map are written beside them.
    """
    unknown = set(formats) - set(FORMATS)
    if unknown or not formats:
        raise ConfigError(f"Export.formats: expected a non-empty list of {', '.join(FORMATS)}, got {list(formats)}")
    model.eval()
    net = _WithActivation(model) if softmax else model
    net.eval()
    c, h, w = image_shape
    spec = paddle.static.InputSpec([batch_size, c, h, w], "float32", name="x")
    static = paddle.jit.to_static(net, input_spec=[spec], full_graph=True)
    # written complete into a temporary folder first, so an interrupted export never mixes files
    tmp_dir = os.path.join(save_dir, f".export.tmp.{os.getpid()}")
    try:
        os.makedirs(tmp_dir, exist_ok=True)
    except OSError as e:
        raise ConfigError(f"Global.save_inference_dir: cannot create {save_dir}: {e.strerror or e}") from None
    try:
        paddle.jit.save(static, os.path.join(tmp_dir, "inference"))
        meta = dict(meta, input_shape=[c, h, w], softmax=softmax, formats=list(formats))
        if "onnx" in formats:
            log = get_logger()
            log.info(f"converting to ONNX (paddle2onnx, opset {onnx_opset}) and checking it against paddle.inference")
            onnx_path = convert_to_onnx(tmp_dir, opset=onnx_opset)
            delta = parity(tmp_dir, onnx_path, [c, h, w], batch=batch_size or 2)
            (log.info if delta <= PARITY_ATOL else log.warning)(
                f"{ONNX_FILE}: max |Δ| from paddle.inference = {delta:.3g} (limit {PARITY_ATOL:g})")
            meta["onnx"] = {"opset": onnx_opset, "parity_max_abs_diff": delta}
            if "paddle" not in formats:
                for name in PADDLE_FILES:
                    os.remove(os.path.join(tmp_dir, name))
        meta["files"] = file_digests(tmp_dir)
        with open(os.path.join(tmp_dir, META_FILE), "w", encoding="utf-8") as f:
            yaml.safe_dump(meta, f, sort_keys=False, allow_unicode=True)
        _write_deploy_files(tmp_dir, save_dir, meta)
        written = sorted(os.listdir(tmp_dir), key=lambda n: n == META_FILE)  # inference.yml last
        for name in written:
            os.replace(os.path.join(tmp_dir, name), os.path.join(save_dir, name))
    except OSError as e:
        raise ConfigError(f"Global.save_inference_dir: cannot write {save_dir}: {e.strerror or e}") from None
    finally:
        shutil.rmtree(tmp_dir, ignore_errors=True)
    return save_dir


def export_model(config: Dict[str, Any], save_dir: Optional[str] = None) -> str:
    """Export ``Arch`` with ``Global.pretrained_model`` to ``save_dir`` (default Global.save_inference_dir)
    in ``Export.formats``, for the image size its preprocessing produces (see :func:`export_input_shape`)."""
    save_dir = save_dir or config["Global"]["save_inference_dir"]
    log = get_logger()
    preprocess_transform(config)  # a list that cannot be built is refused before anything is written
    ops, where = _preprocess_source(config)
    image_shape = export_input_shape(config["Global"]["image_shape"], ops, where)
    log.info(f"exporting {config['Arch']['name']}: loading {config['Global']['pretrained_model']}")
    model = load_model_for_inference(config)
    name = inference_arch(config["Arch"])[0]["name"]  # a DistillationModel exports its infer_model_name
    meta = {"model_name": name, "class_num": config["Arch"]["class_num"],
            "transform_ops": ops, "label_names": label_names_for(config)}
    exp = config["Export"]
    softmax = exp["softmax"]
    if getattr(model, "features_only", False):  # a backbone: its outputs are feature maps
        meta.update(class_num=None, label_names=None, features_only=True,
                    feature_info=[{k: v for k, v in model.feature_info[i].items() if k != "modules"}
                                  for i in model.out_indices])
        softmax = False
    elif config["Global"]["use_multilabel"]:  # one sigmoid per class; inference keeps those above the threshold
        meta.update(multilabel=True, threshold=config["Infer"]["threshold"])
        model, softmax = _WithActivation(model, "sigmoid"), False
    log.info(f"tracing the model with paddle.jit.to_static and saving it (formats: {', '.join(exp['formats'])})")
    save_inference_model(model, save_dir, image_shape, meta, softmax=softmax,
                         batch_size=exp["batch_size"], formats=exp["formats"], onnx_opset=exp["onnx_opset"])
    files = sorted(f for f in os.listdir(save_dir) if f.startswith(("inference", "class_id_map")))
    log.info(f"exported {name} to {save_dir} ({', '.join(files)})")
    return save_dir




from ..deploy.predictor import Predictor  # noqa: E402  (re-exported: ppnets.engine.export.Predictor)
