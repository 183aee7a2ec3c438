"""Paddle inference model → ONNX (paddle2onnx), and the parity check of the two.

:func:`convert_to_onnx` converts ``inference.json`` + ``inference.pdiparams`` to
``inference.onnx`` (opset ≥ 13: ``HardSwish``/``HardSigmoid`` of MobileNetV3; the batch
axis stays dynamic) with paddle2onnx's constant folding (polygraphy, with
onnx-graphsurgeon: both pinned in requirements.txt, so nothing is installed at run time).
:func:`parity` runs both files on the same random batch and returns the max |Δ|.
"""
from __future__ import annotations

import contextlib
import importlib.util
import io
import os
from typing import Optional, Sequence

import numpy as np

from ..errors import ConfigError
from .runtimes import ONNX_FILE, PADDLE_FILES, OnnxRuntime, PaddleRuntime

__all__ = ["convert_to_onnx", "parity", "MIN_OPSET", "PARITY_ATOL"]

MIN_OPSET = 13
#: outputs of the ONNX file may differ from paddle.inference's by at most this (export-time check)
PARITY_ATOL = 1e-4


def convert_to_onnx(model_dir: str, out_path: Optional[str] = None, opset: int = MIN_OPSET) -> str:
    """Convert the Paddle inference model in ``model_dir`` to ONNX at ``out_path`` (default
    ``model_dir/inference.onnx``). paddle2onnx's own logging is kept off the console."""
    if opset < MIN_OPSET:
        raise ConfigError(f"Export.onnx_opset: expected {MIN_OPSET} or higher (HardSwish), got {opset}")
    missing = [m for m in ("paddle2onnx", "onnx", "polygraphy", "onnx_graphsurgeon")
               if importlib.util.find_spec(m) is None]
    if missing:   # polygraphy would otherwise try to pip-install onnx-graphsurgeon by itself
        raise ConfigError(f"Export.formats: onnx needs the packages {', '.join(missing)} "
                          "(pip install -r requirements.txt)")
    import paddle2onnx

    out_path = out_path or os.path.join(model_dir, ONNX_FILE)
    os.environ["POLYGRAPHY_AUTOINSTALL_DEPS"] = "0"   # paddle2onnx sets it to 1; everything is pinned
    from polygraphy.logger import G_LOGGER

    G_LOGGER.module_severity = G_LOGGER.ERROR
    log = io.StringIO()
    with contextlib.redirect_stdout(log), contextlib.redirect_stderr(log):
        paddle2onnx.export(*(os.path.join(model_dir, f) for f in PADDLE_FILES), out_path,
                           opset_version=opset, auto_upgrade_opset=True, enable_onnx_checker=True,
                           optimize_tool="polygraphy")
    if not os.path.isfile(out_path):   # paddle2onnx logs a failure instead of raising it
        detail = " ".join(line for line in log.getvalue().splitlines() if "rror" in line)[:400]
        raise ConfigError(f"Export.formats: paddle2onnx could not convert {model_dir}: {detail or 'no output'}")
    return out_path


def parity(model_dir: str, onnx_path: str, input_shape: Sequence[int], batch: int = 2, seed: int = 0) -> float:
    """Max |Δ| between paddle.inference and ONNX Runtime outputs on one random NCHW batch."""
    x = np.random.default_rng(seed).standard_normal((batch, *input_shape)).astype(np.float32)
    reference = PaddleRuntime(model_dir, cpu_threads=1, retain_freed_memory=False)(x)
    got = OnnxRuntime(onnx_path, cpu_threads=1)(x)
    if got.shape != reference.shape:
        raise ConfigError(f"{onnx_path}: output shape {got.shape} differs from Paddle's {reference.shape}")
    return float(np.abs(got - reference).max())
