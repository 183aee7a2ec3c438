"""Export to a Paddle inference model (and ONNX), and the deploy predictor over its runtimes.

``export_model`` writes to ``Global.save_inference_dir``:

- ``inference.json`` + ``inference.pdiparams`` (``paddle.jit.save``; PIR program format),
- ``inference.onnx`` when ``Export.formats`` has ``onnx`` (paddle2onnx, dynamic batch),
- ``inference.yml``: model name, input shape, the preprocessing ops, label names and
  whether the outputs are already probabilities,
- ``inference_cls.yaml`` + ``class_id_map.txt``: PaddleClas's deploy config and label map.

:class:`Predictor` reads only that directory and runs on paddle.inference, ONNX Runtime or
OpenVINO (:mod:`ppnets.deploy.runtimes`).
"""
from __future__ import annotations

import os
import shutil
from typing import Any, Dict, List, Optional, Sequence

import cv2
import numpy as np
import paddle
import yaml

from ..arch import build_model
from ..data.transforms import Compose, build_transforms
from ..deploy.onnx_export import MIN_OPSET, PARITY_ATOL, convert_to_onnx, parity
from ..deploy.paddleclas import DEPLOY_CONFIG, LABEL_MAP, deploy_config, label_map_text
from ..deploy.runtimes import ONNX_FILE, PADDLE_FILES, auto_backend, create_runtime, resolve_backend
from ..errors import ConfigError, DataError
from ..utils.logger import get_logger
from .checkpoint import load_pretrained, trained_class_names
from .infer import read_label_file, softmax

__all__ = ["export_model", "save_inference_model", "Predictor", "preprocess_ops", "label_names_for",
           "check_input_shape", "pipeline_output_shape", "FORMATS"]

MODEL_FILE, PARAMS_FILE, META_FILE = "inference.json", "inference.pdiparams", "inference.yml"
FORMATS = ("paddle", "onnx")


class _WithSoftmax(paddle.nn.Layer):
    def __init__(self, model: paddle.nn.Layer) -> None:
        super().__init__()
        self.model = model

    def forward(self, x: paddle.Tensor) -> paddle.Tensor:
        return paddle.nn.functional.softmax(self.model(x), axis=-1)


def preprocess_ops(config: Dict[str, Any]) -> List[Dict[str, Any]]:
    """The inference preprocessing: ``Infer.transforms`` or else ``DataLoader.Eval``'s ops."""
    ops = config["Infer"].get("transforms")
    if ops is None:
        ops = (config["DataLoader"].get("Eval") or {}).get("dataset", {}).get("transform_ops")
    if not ops:
        raise ConfigError("Infer.transforms: no preprocessing given (and DataLoader.Eval.dataset.transform_ops "
                          "is empty)")
    return ops


def label_names_for(config: Dict[str, Any]) -> Optional[List[str]]:
    """Label names: ``Infer.class_id_map_file``, else those the weights were trained with."""
    path = config["Infer"].get("class_id_map_file")
    if path:
        return read_label_file(path)
    return trained_class_names(config["Global"].get("pretrained_model"))


def load_model_for_inference(config: Dict[str, Any]) -> paddle.nn.Layer:
    """Build ``Arch`` and load ``Global.pretrained_model`` (required) into it, in eval mode."""
    arch = dict(config["Arch"])
    name = arch.pop("name")
    weights = config["Global"].get("pretrained_model")
    if not weights:
        raise ConfigError("Global.pretrained_model: required (the weights to export/infer), "
                          "e.g. -o Global.pretrained_model=output/MobileNetV2/best_model")
    model = build_model(name, **arch)
    load_pretrained(model, weights, name, strict=True)
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


def check_input_shape(image_shape: List[int], ops: List[Dict[str, Any]], where: str) -> None:
    """A ConfigError when the preprocessing ``ops`` does not produce ``Global.image_shape`` images:
    the exported model would declare an input size its own pipeline never feeds it."""
    shape = pipeline_output_shape(build_transforms(ops, where=where))
    if shape is None:
        raise ConfigError(f"{where}: the preprocessing gives images of different sizes; end it with a fixed "
                          f"size (CropImage or ResizeImage size) equal to Global.image_shape {list(image_shape)}")
    if shape != list(image_shape):
        raise ConfigError(f"Global.image_shape: {list(image_shape)} differs from the {shape} images that {where} "
                          f"produces; set -o 'Global.image_shape={shape}' or change the preprocessing")


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
    net = _WithSoftmax(model) if softmax else model
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
            onnx_path = convert_to_onnx(tmp_dir, opset=onnx_opset)
            delta = parity(tmp_dir, onnx_path, [c, h, w], batch=batch_size or 2)
            log = get_logger().info if delta <= PARITY_ATOL else get_logger().warning
            log(f"{ONNX_FILE}: max |Δ| from paddle.inference = {delta:.3g} (limit {PARITY_ATOL:g})")
            meta["onnx"] = {"opset": onnx_opset, "parity_max_abs_diff": delta}
            if "paddle" not in formats:
                for name in PADDLE_FILES:
                    os.remove(os.path.join(tmp_dir, name))
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
    in ``Export.formats``; the preprocessing must produce ``Global.image_shape`` images."""
    save_dir = save_dir or config["Global"]["save_inference_dir"]
    ops = preprocess_ops(config)
    where = "Infer.transforms" if config["Infer"].get("transforms") else "DataLoader.Eval.dataset.transform_ops"
    check_input_shape(config["Global"]["image_shape"], ops, where)
    meta = {"model_name": config["Arch"]["name"], "class_num": config["Arch"]["class_num"],
            "transform_ops": ops, "label_names": label_names_for(config)}
    exp = config["Export"]
    save_inference_model(load_model_for_inference(config), save_dir, config["Global"]["image_shape"], meta,
                         softmax=exp["softmax"], batch_size=exp["batch_size"], formats=exp["formats"],
                         onnx_opset=exp["onnx_opset"])
    files = sorted(f for f in os.listdir(save_dir) if f.startswith(("inference", "class_id_map")))
    get_logger().info(f"exported {config['Arch']['name']} to {save_dir} ({', '.join(files)})")
    return save_dir


class Predictor:
    """Classify images with an exported model on paddle.inference, ONNX Runtime or OpenVINO.

    Args:
        model_dir: a directory written by :func:`export_model` (and tools/quantize.py for int8).
        backend: ``auto`` (default: with an ONNX file, OpenVINO for inputs of 96×96 pixels
            and more, ONNX Runtime below; else paddle.inference — see
            :mod:`ppnets.deploy.runtimes`), ``paddle``, ``onnxruntime`` or ``openvino``.
        precision: ``fp32``, or ``int8`` (``inference.int8.onnx``; ONNX Runtime or OpenVINO).
        cpu_threads: math library threads (default: all cores).
        use_mkldnn, use_gpu, ir_optim: paddle.inference only — oneDNN kernels (Paddle 3 turns
            them on by default, so ``False`` disables them explicitly), GPU 0 (a CUDA build of
            Paddle), Paddle's graph optimisations.
        retain_freed_memory: paddle.inference on the CPU: make the process keep freed memory
            for reuse (:func:`ppnets.utils.runtime.retain_freed_memory`): without it every run
            page-faults its activations afresh; +20 % img/s for MobileNetV2 at batch 16.

    Every backend gets the same preprocessing (:attr:`transform`) and returns probabilities.
    """

    def __init__(self, model_dir: str, backend: str = "auto", precision: str = "fp32",
                 cpu_threads: Optional[int] = None, use_mkldnn: bool = True, use_gpu: bool = False,
                 ir_optim: bool = True, retain_freed_memory: bool = True) -> None:
        meta_path = os.path.join(model_dir, META_FILE)
        if not os.path.isfile(meta_path):
            raise DataError(f"{model_dir}: not an exported ppnets model (missing {meta_path}); "
                            "run tools/export_model.py first")
        with open(meta_path, encoding="utf-8") as f:
            self.meta = yaml.safe_load(f)
        self.transform = build_transforms(self.meta["transform_ops"], where=f"{meta_path}: transform_ops")
        self.label_names = self.meta.get("label_names")
        self.model_dir, self.precision = model_dir, precision
        candidates = resolve_backend(model_dir, backend, precision)
        self.backend = auto_backend(candidates, self.meta["input_shape"]) if backend == "auto" else candidates[0]
        options = dict(use_mkldnn=use_mkldnn, use_gpu=use_gpu, ir_optim=ir_optim,
                       retain_freed_memory=retain_freed_memory) if self.backend == "paddle" else {}
        self.runtime = create_runtime(model_dir, self.backend, precision, cpu_threads, **options)
        self.config = self.runtime.config

    def run(self, batch: np.ndarray) -> np.ndarray:
        """NCHW float32 batch → class probabilities (N, class_num)."""
        out = self.runtime(np.ascontiguousarray(batch, dtype=np.float32))
        return out if self.meta.get("softmax", True) else softmax(out)
