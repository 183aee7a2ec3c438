"""Inference runtimes behind :class:`ppnets.deploy.Predictor`: paddle.inference, ONNX Runtime, OpenVINO.

Each runtime takes an NCHW float32 batch and returns the exported model's output
(probabilities, or logits when exported with ``Export.softmax: false``).

``backend="auto"`` (:func:`auto_backend`): when the export has an ONNX file, OpenVINO for
inputs of at least 96×96 pixels and ONNX Runtime below; without one, paddle.inference.
OpenVINO has the larger fixed cost per call (it lost by 2-10× on a 32-px model) and the
faster kernels (it won at 224 px, fp32 and INT8, batch 1 and 16); the threshold lies between
those measured sizes. paddle.inference was never the fastest (figures in docs/deploy.md).
"""
from __future__ import annotations

import importlib.util
import json
import os
from typing import Callable, Dict, List, Optional, Sequence, Tuple

import numpy as np

from ..errors import ConfigError, DataError
from ..utils.extras import require_extra
from ..utils.runtime import retain_freed_memory as _retain_freed_memory

__all__ = ["BACKENDS", "AUTO_ORDER", "PRECISIONS", "MODEL_FILES", "RUNTIME_FILES", "resolve_backend",
           "auto_candidates", "auto_backend", "installed", "PARITY_ATOL", "auto_choice", "OPENVINO_MIN_PIXELS", "create_runtime", "PaddleRuntime",
           "OnnxRuntime", "OpenVINORuntime"]

PADDLE_FILES = ("inference.json", "inference.pdiparams")
ONNX_FILE, INT8_FILE = "inference.onnx", "inference.int8.onnx"
BACKENDS = ("paddle", "onnxruntime", "openvino")
PRECISIONS = ("fp32", "int8")
#: backend="auto": the runtimes it considers; paddle only when no ONNX runtime has its file
AUTO_ORDER = ("onnxruntime", "openvino", "paddle")
#: an ONNX runtime's outputs may differ from paddle.inference's by at most this times (1 + max |output|)
#: (float32 kernels differ; checked at export time and recorded in inference.yml; OpenVINO over it is
#: refused for that export)
PARITY_ATOL = 1e-4
#: backend="auto": OpenVINO for inputs of at least this many pixels (H × W), ONNX Runtime below
OPENVINO_MIN_PIXELS = 96 * 96
#: (backend, precision) → the files it reads from the export directory
MODEL_FILES: Dict[Tuple[str, str], Tuple[str, ...]] = {
    ("paddle", "fp32"): PADDLE_FILES,
    ("onnxruntime", "fp32"): (ONNX_FILE,), ("onnxruntime", "int8"): (INT8_FILE,),
    ("openvino", "fp32"): (ONNX_FILE,), ("openvino", "int8"): (INT8_FILE,),
}
#: every file a runtime loads: an export folder must list each one it holds (see ppnets.deploy.exported)
RUNTIME_FILES = tuple(sorted({f for files in MODEL_FILES.values() for f in files}))
_MODULES = {"paddle": "paddle", "onnxruntime": "onnxruntime", "openvino": "openvino"}
_HOW_TO_GET = {ONNX_FILE: "export with -o 'Export.formats=[paddle,onnx]'",
               INT8_FILE: "run tools/quantize.py --model_dir DIR -c CONFIG",
               PADDLE_FILES[0]: "run tools/export_model.py", PADDLE_FILES[1]: "run tools/export_model.py"}


def installed(backend: str) -> bool:
    """Whether the runtime's Python package can be imported (without importing it)."""
    return importlib.util.find_spec(_MODULES[backend]) is not None


def _has_files(model_dir: str, backend: str, precision: str) -> bool:
    files = MODEL_FILES.get((backend, precision))
    return files is not None and all(os.path.isfile(os.path.join(model_dir, f)) for f in files)


def auto_candidates(model_dir: str, precision: str = "fp32") -> List[str]:
    """What ``backend="auto"`` chooses among: the ONNX runtimes installed with their file, else paddle."""
    found = [b for b in AUTO_ORDER if _has_files(model_dir, b, precision) and installed(b)]
    onnx_runtimes = [b for b in found if b != "paddle"]
    return onnx_runtimes or found


def resolve_backend(model_dir: str, backend: str = "auto", precision: str = "fp32") -> List[str]:
    """The runtime(s) ``backend`` may be for this export: ``[backend]``, or the candidates of ``auto``.

    Raises a :class:`ConfigError` for an unknown name or precision and a :class:`DataError`
    when the model file the runtime needs is missing (with the command that writes it).
    """
    if precision not in PRECISIONS:
        raise ConfigError(f"precision: expected one of {', '.join(PRECISIONS)}, got {precision!r}")
    if backend == "auto":
        found = auto_candidates(model_dir, precision)
        if not found:
            needed = INT8_FILE if precision == "int8" else f"{PADDLE_FILES[0]} or {ONNX_FILE}"
            raise DataError(f"{model_dir}: no {precision} model for any installed runtime (looked for {needed})")
        return found
    if backend not in BACKENDS:
        raise ConfigError(f"backend: expected auto or one of {', '.join(BACKENDS)}, got {backend!r}")
    if (backend, precision) not in MODEL_FILES:
        raise ConfigError(f"backend {backend}: no {precision} support (int8 runs on onnxruntime or openvino)")
    for f in MODEL_FILES[(backend, precision)]:
        if not os.path.isfile(os.path.join(model_dir, f)):
            raise DataError(f"{model_dir}: {f} is missing for backend {backend} ({_HOW_TO_GET[f]})")
    require_extra(f"backend {backend}", (_MODULES[backend],))
    return [backend]


def auto_backend(candidates: Sequence[str], input_shape: Sequence[int]) -> str:
    """``backend="auto"``'s choice among ``candidates`` (:func:`auto_candidates`) for an input
    of ``input_shape`` (C, H, W): OpenVINO from :data:`OPENVINO_MIN_PIXELS` pixels up, else
    ONNX Runtime (whichever of them is there), else paddle.inference."""
    pixels = int(input_shape[-1]) * int(input_shape[-2])
    order = ("openvino", "onnxruntime") if pixels >= OPENVINO_MIN_PIXELS else ("onnxruntime", "openvino")
    return next((b for b in order + ("paddle",) if b in candidates), candidates[0])


def auto_choice(candidates: Sequence[str], input_shape: Sequence[int], precision: str = "fp32") -> str:
    """One line saying what ``backend="auto"`` chose and why (:func:`auto_backend`)."""
    chosen = auto_backend(candidates, input_shape)
    h, w = int(input_shape[-2]), int(input_shape[-1])
    side = int(OPENVINO_MIN_PIXELS ** 0.5)
    if chosen == "paddle":
        why = "the export has no ONNX file an installed runtime reads"
    elif len([b for b in candidates if b != "paddle"]) == 1:
        why = f"the only ONNX runtime installed with its {precision} file"
    else:
        why = (f"input {h}×{w} is {'at least' if h * w >= OPENVINO_MIN_PIXELS else 'below'} {side}×{side} pixels, "
               f"where {'OpenVINO' if h * w >= OPENVINO_MIN_PIXELS else 'ONNX Runtime'} is the faster")
    return f"backend auto: {chosen} ({why}; candidates: {', '.join(candidates)}; choose with --backend)"


def _dims(shape: Sequence) -> List[Optional[int]]:
    """A declared input shape with its dynamic dimensions (names, -1, None) as None."""
    return [int(d) if isinstance(d, int) and d > 0 else None for d in shape]


def _program_input_shape(program_file: str) -> Optional[List[Optional[int]]]:
    """The declared shape of the first ``data`` op of a PIR program (``inference.json``), or None."""
    try:
        with open(program_file, encoding="utf-8") as f:
            stack = [json.load(f)]
    except (OSError, ValueError):
        return None
    while stack:   # depth-first, in document order
        node = stack.pop()
        if isinstance(node, dict):
            if node.get("#") == "1.data":
                attrs = {a.get("N"): (a.get("AT") or {}).get("D") for a in node.get("A", []) if isinstance(a, dict)}
                shape = attrs.get("shape")
                return _dims(shape) if isinstance(shape, list) else None
            stack.extend(reversed(list(node.values())))
        elif isinstance(node, list):
            stack.extend(reversed(node))
    return None


class PaddleRuntime:
    """paddle.inference on the CPU (oneDNN by default) or GPU 0."""

    def __init__(self, model_dir: str, cpu_threads: int, use_mkldnn: bool = True, use_gpu: bool = False,
                 ir_optim: bool = True, retain_freed_memory: bool = True) -> None:
        import paddle.inference

        cfg = paddle.inference.Config(*(os.path.join(model_dir, f) for f in PADDLE_FILES))
        if use_gpu:
            cfg.enable_use_gpu(256, 0)
        else:
            cfg.disable_gpu()
            cfg.set_cpu_math_library_num_threads(cpu_threads)
            if use_mkldnn:
                cfg.enable_mkldnn()
            else:
                cfg.disable_mkldnn()   # Paddle 3 enables oneDNN by default
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
        self.output_handles = [self.predictor.get_output_handle(n) for n in self.predictor.get_output_names()]
        self.input_shape = _program_input_shape(os.path.join(model_dir, PADDLE_FILES[0]))

    def _run(self, batch: np.ndarray) -> None:
        self.input.reshape(list(batch.shape))
        self.input.copy_from_cpu(batch)
        self.predictor.run()

    def __call__(self, batch: np.ndarray) -> np.ndarray:
        self._run(batch)
        return self.output_handles[0].copy_to_cpu()

    def outputs(self, batch: np.ndarray) -> List[np.ndarray]:
        """Every output of the program (a backbone's stage maps)."""
        self._run(batch)
        return [h.copy_to_cpu() for h in self.output_handles]


class OnnxRuntime:
    """ONNX Runtime's CPU execution provider, all graph optimisations, ``cpu_threads`` intra-op threads."""

    def __init__(self, model_path: str, cpu_threads: int) -> None:
        import onnxruntime as ort

        opts = ort.SessionOptions()
        opts.intra_op_num_threads = cpu_threads
        opts.inter_op_num_threads = 1
        opts.execution_mode = ort.ExecutionMode.ORT_SEQUENTIAL
        opts.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
        opts.log_severity_level = 3   # no warnings about initializers the optimiser removed
        self.config = opts
        self.session = ort.InferenceSession(model_path, sess_options=opts, providers=["CPUExecutionProvider"])
        self.input_name = self.session.get_inputs()[0].name
        self.output_name = self.session.get_outputs()[0].name
        self.input_shape = _dims(self.session.get_inputs()[0].shape)

    def __call__(self, batch: np.ndarray) -> np.ndarray:
        return self.session.run([self.output_name], {self.input_name: batch})[0]

    def outputs(self, batch: np.ndarray) -> List[np.ndarray]:
        return self.session.run(None, {self.input_name: batch})


class OpenVINORuntime:
    """OpenVINO's CPU plugin on the ONNX file, ``cpu_threads`` inference threads, latency hint.

    The precision hint is f32: OpenVINO's default on CPUs it thinks have bf16 is bfloat16,
    which moves MobileNetV2's probabilities by up to 3e-2 (f32: 3e-7 from ONNX Runtime)."""

    def __init__(self, model_path: str, cpu_threads: int) -> None:
        import openvino as ov

        core = ov.Core()
        self.config = {"INFERENCE_NUM_THREADS": cpu_threads, "PERFORMANCE_HINT": "LATENCY",
                       "INFERENCE_PRECISION_HINT": "f32"}
        self.compiled = core.compile_model(core.read_model(model_path), "CPU", self.config)
        self.request = self.compiled.create_infer_request()
        self.output = self.compiled.output(0)
        self.input_shape = _dims([d.get_length() if d.is_static else None
                                  for d in self.compiled.input(0).get_partial_shape()])

    def __call__(self, batch: np.ndarray) -> np.ndarray:
        return self.request.infer({0: batch}, share_inputs=True)[self.output].copy()

    def outputs(self, batch: np.ndarray) -> List[np.ndarray]:
        result = self.request.infer({0: batch}, share_inputs=True)
        return [result[o].copy() for o in self.compiled.outputs]


def create_runtime(model_dir: str, backend: str, precision: str, cpu_threads: Optional[int] = None,
                   **paddle_options) -> Callable[[np.ndarray], np.ndarray]:
    """Build the runtime ``backend`` (already resolved) for ``precision`` over ``model_dir``."""
    threads = cpu_threads or os.cpu_count() or 1
    if backend == "paddle":
        return PaddleRuntime(model_dir, threads, **paddle_options)
    path = os.path.join(model_dir, MODEL_FILES[(backend, precision)][0])
    try:
        return OnnxRuntime(path, threads) if backend == "onnxruntime" else OpenVINORuntime(path, threads)
    except Exception as e:   # a damaged or foreign file: the runtimes' own errors (ONNX Runtime's are plain Exceptions)
        first = str(e).strip().splitlines()[0] if str(e).strip() else type(e).__name__
        raise DataError(f"{path}: {backend} cannot load it: {first[:300]}") from None


