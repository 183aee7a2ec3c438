"""The deploy predictor: an exported model directory on paddle.inference, ONNX Runtime or OpenVINO.

It reads only that directory: ``inference.yml`` (checked: the files it lists must be the ones
exported, and no unlisted model file may be there, see :mod:`ppnets.deploy.exported`), the model
files of the chosen runtime, and the preprocessing recorded at export time, so every backend gets
the same input. That preprocessing must produce the ``input_shape`` the model was exported for,
and the model file must declare that shape: a mismatch is refused when the folder is loaded.
"""
from __future__ import annotations

import os
from typing import Any, Dict, List, Optional, Tuple

import numpy as np

from ..data.transforms import Compose, build_transforms, ensure_chw
from ..errors import ConfigError, DataError, short_repr
from .exported import META_FILE, check_export_files, check_onnx_file, read_export_meta
from .inputs import probe_pipeline
from .postprocess import softmax
from .runtimes import MODEL_FILES, PARITY_ATOL, auto_backend, auto_choice, create_runtime, resolve_backend

__all__ = ["Predictor"]


_REEXPORT = "re-export it with tools/export_model.py"


def _checked_pipeline(meta: Dict[str, Any], where: str) -> Tuple[Compose, List[int]]:
    """The export's preprocessing, built, and its ``input_shape``: the ops must decode image files
    (DecodeImage first) into images of that shape. Errors name ``where`` (the export's file)."""
    ops, input_shape = meta["transform_ops"], list(meta["input_shape"])
    if next(iter(ops[0])) != "DecodeImage":
        raise DataError(f"{where}: must begin with DecodeImage (the export's preprocessing reads image files), "
                        f"got {short_repr(ops[0])}; {_REEXPORT}")
    try:
        transform = build_transforms(ensure_chw(ops, where), where=where)
    except ConfigError as e:   # the export's file, not the user's config: name it
        raise DataError(f"{e if str(e).startswith(where) else f'{where}: {e}'}; {_REEXPORT}") from None
    shape, why = probe_pipeline(transform)
    if shape is None:
        raise DataError(f"{where}: the preprocessing {why}; {_REEXPORT}")
    if shape != input_shape:
        raise DataError(f"{where}: the preprocessing gives {shape} images, but the model takes input_shape "
                        f"{input_shape}; {_REEXPORT}")
    return transform, input_shape


class Predictor:
    """Classify images with an exported model; for a ``features_only`` export, :meth:`features`
    returns its maps.

    Args:
        model_dir: a directory written by ``tools/export_model.py`` (and ``tools/quantize.py`` for int8).
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

    Every backend gets the same preprocessing (:attr:`transform`) and returns probabilities:
    the softmax over the classes, or for a multi-label export (:attr:`multilabel`) one sigmoid
    per class, of which the classes reaching :attr:`threshold` are the answer.
    """

    def __init__(self, model_dir: str, backend: str = "auto", precision: str = "fp32",
                 cpu_threads: Optional[int] = None, use_mkldnn: bool = True, use_gpu: bool = False,
                 ir_optim: bool = True, retain_freed_memory: bool = True) -> None:
        self.model_dir, self.precision = model_dir, precision
        if not os.path.isfile(os.path.join(model_dir, META_FILE)):
            raise DataError(f"{model_dir}: not an exported ppnets model (missing {os.path.join(model_dir, META_FILE)}); "
                            "run tools/export_model.py first")
        self.meta = read_export_meta(model_dir)
        check_export_files(model_dir, self.meta)
        where = f"{model_dir}/{META_FILE}: transform_ops"
        self.transform, input_shape = _checked_pipeline(self.meta, where)
        self.label_names = self.meta.get("label_names")
        self.multilabel = bool(self.meta.get("multilabel", False))
        #: a multi-label export: the probability from which a class is reported (None otherwise)
        self.threshold: Optional[float] = float(self.meta["threshold"]) if self.multilabel else None
        candidates = resolve_backend(model_dir, backend, precision)
        off = _openvino_parity_failure(self.meta, model_dir) if precision == "fp32" else None
        if off:   # OpenVINO got this export wrong: never run on it (auto falls back to paddle.inference)
            candidates = [b for b in candidates if b != "openvino"]
            if not candidates and backend == "auto" and all(
                    os.path.isfile(os.path.join(model_dir, f)) for f in MODEL_FILES[("paddle", "fp32")]):
                candidates = ["paddle"]
            if not candidates:
                raise DataError(off)
        self.backend = auto_backend(candidates, self.meta["input_shape"]) if backend == "auto" else candidates[0]
        #: with backend="auto": one line saying what it chose and why (the tools print it on stderr)
        self.backend_choice: Optional[str] = auto_choice(candidates, self.meta["input_shape"], precision) \
            if backend == "auto" else None
        options = dict(use_mkldnn=use_mkldnn, use_gpu=use_gpu, ir_optim=ir_optim,
                       retain_freed_memory=retain_freed_memory) if self.backend == "paddle" else {}
        model_file = os.path.join(model_dir, MODEL_FILES[(self.backend, precision)][0])
        if model_file.endswith(".onnx"):
            check_onnx_file(model_file, self.meta["files"])
        self.runtime = create_runtime(model_dir, self.backend, precision, cpu_threads, **options)
        self.config = self.runtime.config
        declared = getattr(self.runtime, "input_shape", None)
        if declared and (len(declared) != 4 or any(d is not None and d != want
                                                   for d, want in zip(declared[1:], input_shape))):
            shown = ["N" if d is None else d for d in declared]
            raise DataError(f"{model_file}: the model takes inputs of shape {shown}, but {META_FILE} says "
                            f"input_shape {input_shape}; {_REEXPORT}")

    def run(self, batch: np.ndarray) -> np.ndarray:
        """NCHW float32 batch → class probabilities (N, class_num): softmax, or per-class sigmoid."""
        if self.meta.get("features_only"):
            raise DataError(f"{self.model_dir}: a features_only (backbone) export outputs feature maps, "
                            "not class scores; use Predictor.features()")
        out = self.runtime(np.ascontiguousarray(batch, dtype=np.float32))
        if self.multilabel:
            return out  # the export ends in the per-class sigmoid
        return out if self.meta.get("softmax", True) else softmax(out)

    def features(self, batch: np.ndarray) -> List[np.ndarray]:
        """NCHW float32 batch → every output of the exported model (a backbone's stage maps)."""
        return self.runtime.outputs(np.ascontiguousarray(batch, dtype=np.float32))


def _openvino_parity_failure(meta: dict, model_dir: str) -> Optional[str]:
    """Why OpenVINO may not run this export (its outputs failed the export-time parity check), or None."""
    check = meta.get("openvino")
    if check is None:
        return None
    try:
        delta, limit = float(check["parity_max_abs_diff"]), float(check.get("parity_limit", PARITY_ATOL))
    except (TypeError, KeyError, ValueError, AttributeError):
        raise DataError(f"{model_dir}/{META_FILE}: openvino: expected {{parity_max_abs_diff: number, parity_limit: "
                        f"number}}, got {short_repr(check)}; {_REEXPORT}") from None
    if delta <= limit:   # (a NaN is never <=: refused)
        return None
    return (f"{model_dir}: backend openvino: OpenVINO's outputs for this export differ from paddle.inference's "
            f"by {delta:.3g} (limit {limit:.3g}, checked at export time, recorded in {META_FILE}); "
            "use --backend onnxruntime or paddle")
