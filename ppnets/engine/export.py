"""Export to a Paddle inference model, and the deploy predictor on ``paddle.inference``.

``export_model`` writes to ``Global.save_inference_dir``:

- ``inference.json`` + ``inference.pdiparams`` (``paddle.jit.save``; PIR program format),
- ``inference.yml``: model name, input shape, the preprocessing ops, label names and
  whether the outputs are already probabilities.

A ``features_only`` Arch exports its backbone: no softmax, one output per stage of
``out_indices`` (``inference.yml`` lists their ``feature_info``).

:class:`Predictor` reads only that directory and runs on a stock ``paddle.inference``.
"""
from __future__ import annotations

import os
import shutil
from typing import Any, Dict, List, Optional, Tuple

import numpy as np
import paddle
import yaml

from ..arch import build_model
from ..data.labels import read_label_file
from ..data.transforms import Compose, build_transforms, ensure_chw
from ..errors import ConfigError, DataError
from ..utils.logger import get_logger
from ..utils.runtime import retain_freed_memory as _retain_freed_memory
from .checkpoint import load_pretrained, trained_class_names
from .export_meta import check_export_files, file_digests, read_export_meta
from .infer import softmax

__all__ = ["export_model", "save_inference_model", "Predictor", "preprocess_ops", "preprocess_transform",
           "label_names_for"]

MODEL_FILE, PARAMS_FILE, META_FILE = "inference.json", "inference.pdiparams", "inference.yml"


class _WithSoftmax(paddle.nn.Layer):
    def __init__(self, model: paddle.nn.Layer) -> None:
        super().__init__()
        self.model = model

    def forward(self, x: paddle.Tensor) -> paddle.Tensor:
        return paddle.nn.functional.softmax(self.model(x), axis=-1)


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
    """Build ``Arch`` and load ``Global.pretrained_model`` (required) into it, in eval mode."""
    arch = dict(config["Arch"])
    name = arch.pop("name")
    weights = config["Global"].get("pretrained_model")
    if not weights:
        raise ConfigError("Global.pretrained_model: required (the weights to export/infer), "
                          "e.g. -o Global.pretrained_model=output/MobileNetV2/best_model")
    model = build_model(name, **arch)
    load_pretrained(model, weights, name, strict=True, trust=config["Global"]["trust_pickles"])
    model.eval()
    return model


def save_inference_model(model: paddle.nn.Layer, save_dir: str, image_shape: List[int], meta: Dict[str, Any],
                         softmax: bool = True, batch_size: Optional[int] = None) -> str:
    """``paddle.jit.to_static`` + ``paddle.jit.save`` of ``model`` (eval mode) into ``save_dir``,
    with ``inference.yml`` holding ``meta`` (preprocessing ops, label names …) for :class:`Predictor`."""
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
        meta = dict(meta, input_shape=[c, h, w], softmax=softmax, files=file_digests(tmp_dir))
        with open(os.path.join(tmp_dir, META_FILE), "w", encoding="utf-8") as f:
            yaml.safe_dump(meta, f, sort_keys=False, allow_unicode=True)
        written = sorted(os.listdir(tmp_dir), key=lambda n: n == META_FILE)  # inference.yml last
        for name in written:
            os.replace(os.path.join(tmp_dir, name), os.path.join(save_dir, name))
    except OSError as e:
        raise ConfigError(f"Global.save_inference_dir: cannot write {save_dir}: {e.strerror or e}") from None
    finally:
        shutil.rmtree(tmp_dir, ignore_errors=True)
    return save_dir


def export_model(config: Dict[str, Any], save_dir: Optional[str] = None) -> str:
    """Export ``Arch`` with ``Global.pretrained_model`` to ``save_dir`` (default Global.save_inference_dir)."""
    save_dir = save_dir or config["Global"]["save_inference_dir"]
    preprocess_transform(config)  # a list that cannot be built is refused before anything is written
    model = load_model_for_inference(config)
    meta = {"model_name": config["Arch"]["name"], "class_num": config["Arch"]["class_num"],
            "transform_ops": preprocess_ops(config), "label_names": label_names_for(config)}
    softmax = config["Export"]["softmax"]
    if getattr(model, "features_only", False):  # a backbone: its outputs are feature maps
        meta.update(class_num=None, label_names=None, features_only=True,
                    feature_info=[{k: v for k, v in model.feature_info[i].items() if k != "modules"}
                                  for i in model.out_indices])
        softmax = False
    save_inference_model(model, save_dir, config["Global"]["image_shape"], meta,
                         softmax=softmax, batch_size=config["Export"]["batch_size"])
    get_logger().info(f"exported {config['Arch']['name']} to {save_dir} ({MODEL_FILE}, {PARAMS_FILE}, {META_FILE})")
    return save_dir


class Predictor:
    """Classify images with an exported model through ``paddle.inference`` (CPU, oneDNN); for a
    ``features_only`` export, :meth:`features` returns its maps.

    Args:
        model_dir: a directory written by :func:`export_model`.
        cpu_threads: math library threads (default: all cores).
        use_mkldnn: use oneDNN kernels (several times faster on x86 CPUs; Paddle 3 turns them
            on by default, so ``False`` disables them explicitly).
        use_gpu: run on GPU 0 (needs a CUDA build of Paddle).
        ir_optim: apply Paddle's graph optimisations (BN folding, conv + activation fusion …).
        retain_freed_memory: on the CPU, make the process keep freed memory for reuse
            (:func:`ppnets.utils.runtime.retain_freed_memory`): without it every run
            page-faults its activations afresh; +20 % img/s for MobileNetV2 at batch 16.
    """

    def __init__(self, model_dir: str, cpu_threads: Optional[int] = None, use_mkldnn: bool = True,
                 use_gpu: bool = False, ir_optim: bool = True, retain_freed_memory: bool = True) -> None:
        paths = [os.path.join(model_dir, n) for n in (MODEL_FILE, PARAMS_FILE, META_FILE)]
        missing = [p for p in paths if not os.path.isfile(p)]
        if missing:
            raise DataError(f"{model_dir}: not an exported ppnets model (missing {', '.join(missing)}); "
                            "run tools/export_model.py first")
        self.model_dir = model_dir
        self.meta = read_export_meta(model_dir)
        check_export_files(model_dir, self.meta)
        where = f"{paths[2]}: transform_ops"
        self.transform = build_transforms(ensure_chw(self.meta["transform_ops"], where), where=where)
        self.label_names = self.meta.get("label_names")
        cfg = paddle.inference.Config(paths[0], paths[1])
        if use_gpu:
            cfg.enable_use_gpu(256, 0)
        else:
            cfg.disable_gpu()
            cfg.set_cpu_math_library_num_threads(cpu_threads or os.cpu_count() or 1)
            if use_mkldnn:
                cfg.enable_mkldnn()
            else:
                cfg.disable_mkldnn()
            if retain_freed_memory:
                _retain_freed_memory()
        cfg.switch_ir_optim(ir_optim)
        # enable_memory_optim() is not used: with PIR programs Paddle 3.3's predictor fails to
        # build ("Not find predictor_id 0 and pass_name memory_optimize_pass")
        cfg.disable_glog_info()
        self.config = cfg
        try:
            self.predictor = paddle.inference.create_predictor(cfg)
        except (RuntimeError, ValueError, OSError) as e:  # Paddle's C++ errors, e.g. a damaged .pdiparams
            first = next((line.strip() for line in str(e).splitlines() if line.strip()), type(e).__name__)
            raise DataError(f"{model_dir}: paddle.inference cannot load the exported model ({first[:160]}); "
                            "re-export it with tools/export_model.py") from None
        self.input = self.predictor.get_input_handle(self.predictor.get_input_names()[0])
        self.outputs = [self.predictor.get_output_handle(n) for n in self.predictor.get_output_names()]
        self.output = self.outputs[0]

    def run(self, batch: np.ndarray) -> np.ndarray:
        """NCHW float32 batch → class probabilities (N, class_num)."""
        if self.meta.get("features_only"):
            raise DataError(f"{self.model_dir}: a features_only (backbone) export outputs feature maps, "
                            "not class scores; use Predictor.features()")
        self._forward(batch)
        out = self.output.copy_to_cpu()
        return out if self.meta.get("softmax", True) else softmax(out)

    def features(self, batch: np.ndarray) -> List[np.ndarray]:
        """NCHW float32 batch → every output of the exported program (a backbone's stage maps)."""
        self._forward(batch)
        return [out.copy_to_cpu() for out in self.outputs]

    def _forward(self, batch: np.ndarray) -> None:
        self.input.reshape(list(batch.shape))
        self.input.copy_from_cpu(np.ascontiguousarray(batch, dtype=np.float32))
        self.predictor.run()
