"""Paddle inference model → ONNX (paddle2onnx), and the parity check of the two.

:func:`convert_to_onnx` converts ``inference.json`` + ``inference.pdiparams`` to
``inference.onnx`` (opset ≥ 13: ``HardSwish``/``HardSigmoid`` of MobileNetV3; the batch
axis stays dynamic) then folded by polygraphy (with onnx-graphsurgeon: both pinned in
requirements.txt, so nothing is installed at run time), after the pad values paddle2onnx
2.1 gets wrong are set from the program (:func:`_fix_pad_values`).
:func:`parity` runs both files on the same random batch and returns the max |Δ|.
"""
from __future__ import annotations

import contextlib
import io
import json
import os
import re
from typing import Any, Dict, List, Optional, Sequence, Tuple

import numpy as np

from ..errors import ConfigError
from ..utils.extras import ONNX_EXPORT, require_extra
from ..deploy.runtimes import (ONNX_FILE, PADDLE_FILES, PARITY_ATOL, OnnxRuntime, OpenVINORuntime, PaddleRuntime,
                               installed)

__all__ = ["convert_to_onnx", "parity", "MIN_OPSET", "PARITY_ATOL"]

MIN_OPSET = 13


def convert_to_onnx(model_dir: str, out_path: Optional[str] = None, opset: int = MIN_OPSET) -> str:
    """Convert the Paddle inference model in ``model_dir`` to ONNX at ``out_path`` (default
    ``model_dir/inference.onnx``). paddle2onnx's own logging is kept off the console."""
    if opset < MIN_OPSET:
        raise ConfigError(f"Export.onnx_opset: expected {MIN_OPSET} or higher (HardSwish), got {opset}")
    # before anything runs (polygraphy would otherwise try to pip-install onnx-graphsurgeon by itself)
    require_extra("Export.formats: onnx", ONNX_EXPORT)
    import onnx
    import paddle2onnx

    out_path = out_path or os.path.join(model_dir, ONNX_FILE)
    os.environ["POLYGRAPHY_AUTOINSTALL_DEPS"] = "0"   # everything polygraphy needs is pinned
    from polygraphy.backend.onnx import fold_constants
    from polygraphy.logger import G_LOGGER

    G_LOGGER.module_severity = G_LOGGER.ERROR
    model_file, params_file = (os.path.join(model_dir, f) for f in PADDLE_FILES)
    log = io.StringIO()
    data = None
    with contextlib.redirect_stdout(log), contextlib.redirect_stderr(log):
        try:
            data = paddle2onnx.export(model_file, params_file, None, opset_version=opset, auto_upgrade_opset=True,
                                      enable_onnx_checker=True, optimize_tool="None")
        except NameError:   # its result variable is unbound when the conversion failed
            pass
    if not isinstance(data, bytes):   # paddle2onnx logs a failure instead of raising it
        detail = " ".join(line for line in log.getvalue().splitlines() if "rror" in line)[:400]
        raise ConfigError(f"Export.formats: paddle2onnx could not convert {model_dir}: {detail or 'no output'}")
    model = onnx.load_from_string(data)
    _fix_pad_values(model, _pad_values(model_file))
    with contextlib.redirect_stdout(log), contextlib.redirect_stderr(log):
        model = fold_constants(model)
    onnx.checker.check_model(model)
    onnx.save(model, out_path)
    return out_path


def _pad_values(program_file: str) -> List[float]:
    """``pad_value`` of every ``pad3d`` op of a PIR program (``inference.json``), in program order."""
    with open(program_file, encoding="utf-8") as f:
        program = json.load(f)
    values: List[float] = []
    stack = [program]
    while stack:   # depth-first, in document order
        node = stack.pop()
        if isinstance(node, dict):
            if node.get("#") == "1.pad3d":
                attrs = {a.get("N"): (a.get("AT") or {}).get("D") for a in node.get("A", [])}
                values.append(float(attrs.get("pad_value") or 0.0))
            stack.extend(reversed(list(node.values())))
        elif isinstance(node, list):
            stack.extend(reversed(node))
    return values


def _fix_pad_values(model: Any, values: List[float]) -> None:
    """Set the constant of each converted ``pad3d`` (ONNX ``Pad``) to the program's ``pad_value``.

    paddle2onnx 2.1 reads the op's float64 ``pad_value`` attribute as float32 and writes
    uninitialised memory into the Pad's constant input (EfficientNet's ``SamePad2D`` then
    pads with garbage, differently on every conversion)."""
    from onnx import numpy_helper

    producers = {o: n for n in model.graph.node for o in n.output}
    for node in model.graph.node:
        m = re.fullmatch(r"p2o\.pd_op\.pad3d\.(\d+)\.0", node.output[0]) if node.op_type == "Pad" else None
        if m is None:
            continue
        index = int(m.group(1))
        if index >= len(values) or len(node.input) < 3:
            raise ConfigError(f"Export.formats: cannot match ONNX node {node.name} to the program's pad ops")
        constant = producers.get(node.input[2])
        if constant is None or constant.op_type != "Constant":
            continue
        for attr in constant.attribute:
            if attr.name == "value":
                dtype = numpy_helper.to_array(attr.t).dtype
                attr.t.CopyFrom(numpy_helper.from_array(np.array(values[index], dtype=dtype), attr.t.name))


def parity(model_dir: str, onnx_path: str, input_shape: Sequence[int], batch: int = 2,
           seed: int = 0) -> Tuple[Dict[str, float], float]:
    """How far each installed ONNX runtime (ONNX Runtime, and OpenVINO when it is installed) is from
    paddle.inference on one random NCHW batch: ``({"onnxruntime": max |Δ|, ...}, L)`` with the limit
    ``L = PARITY_ATOL · (1 + max |paddle output|)``.

    OpenVINO is checked on its own because it rewrites the graph itself: OpenVINO 2026.4 gets a
    BatchNorm after a residual sum over a 1×1 map wrong (StarNet at 32 px), where ONNX Runtime is exact.
    """
    x = np.random.default_rng(seed).standard_normal((batch, *input_shape)).astype(np.float32)
    reference = PaddleRuntime(model_dir, cpu_threads=1, retain_freed_memory=False).outputs(x)
    runtimes = {"onnxruntime": OnnxRuntime}
    if installed("openvino"):
        runtimes["openvino"] = OpenVINORuntime
    limit = PARITY_ATOL * (1.0 + max(float(np.abs(a).max()) for a in reference))
    deltas = {}
    for name, runtime in runtimes.items():
        got = runtime(onnx_path, cpu_threads=1).outputs(x)
        shapes = [a.shape for a in got], [a.shape for a in reference]
        if shapes[0] != shapes[1]:
            raise ConfigError(f"{onnx_path}: {name}'s output shapes {shapes[0]} differ from Paddle's {shapes[1]}")
        deltas[name] = max(float(np.abs(a - b).max()) for a, b in zip(got, reference))
    return deltas, limit
