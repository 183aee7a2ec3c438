"""Static INT8 post-training quantization of ``inference.onnx`` with ONNX Runtime.

:func:`quantize_onnx` writes ``inference.int8.onnx``: QDQ format, uint8 activations and
int8 weights (u8s8), weights per output channel by default, activation ranges calibrated on
real preprocessed images (MinMax, Percentile or Entropy). The graph is first prepared by
ONNX Runtime's ``quant_pre_process`` (shape inference, Conv+BN folding), so every quantized
convolution carries its folded weights.

``reduce_range`` (7-bit weights) is used when the CPU lacks VNNI (:func:`has_vnni`): AVX2's
u8×s8 multiply-add (``vpmaddubsw``) saturates its int16 sums with full-range weights.
"""
from __future__ import annotations

import os
import tempfile
from typing import Any, Callable, Dict, Iterable, Iterator, List, Optional, Sequence, Set, Tuple

import numpy as np

from ..errors import ConfigError, DataError

__all__ = ["CALIBRATIONS", "cpu_flags", "has_vnni", "quantize_onnx", "calibration_batches", "sample_indices",
           "evaluate_top1"]

CALIBRATIONS = ("minmax", "percentile", "entropy")
_VNNI_FLAGS = {"avx512_vnni", "avx_vnni", "amx_int8"}


def cpu_flags(path: str = "/proc/cpuinfo") -> Set[str]:
    """The CPU's feature flags (Linux ``/proc/cpuinfo``; empty elsewhere)."""
    try:
        with open(path, encoding="utf-8") as f:
            for line in f:
                if line.startswith("flags"):
                    return set(line.split(":", 1)[1].split())
    except OSError:
        pass
    return set()


def has_vnni(flags: Optional[Set[str]] = None) -> bool:
    """Whether the CPU has an int8 dot-product instruction set (AVX512-VNNI, AVX-VNNI or AMX)."""
    return bool(_VNNI_FLAGS & (cpu_flags() if flags is None else flags))


class _Reader:
    """An ``onnxruntime.quantization.CalibrationDataReader`` over NCHW float32 batches."""

    def __init__(self, input_name: str, batches: Iterable[np.ndarray]) -> None:
        self.input_name = input_name
        self._it: Iterator[np.ndarray] = iter(batches)

    def get_next(self) -> Optional[Dict[str, np.ndarray]]:
        batch = next(self._it, None)
        return None if batch is None else {self.input_name: np.ascontiguousarray(batch, dtype=np.float32)}

    def __iter__(self):
        return self

    def __next__(self) -> Dict[str, np.ndarray]:
        item = self.get_next()
        if item is None:
            raise StopIteration
        return item


def quantize_onnx(fp32_path: str, out_path: str, batches: Iterable[np.ndarray], calibration: str = "minmax",
                  per_channel: bool = True, reduce_range: Optional[bool] = None, percentile: float = 99.999,
                  exclude_op_types: Sequence[str] = ()) -> Dict[str, Any]:
    """Quantize ``fp32_path`` to ``out_path`` calibrating on ``batches``; returns the settings used.

    ``reduce_range=None`` decides from the CPU (:func:`has_vnni`). ``exclude_op_types`` keeps
    those ops in float (e.g. ``HardSigmoid`` …; ORT quantizes Conv, MatMul, Add, Mul and the
    ops between them by default)."""
    from onnxruntime.quantization import CalibrationMethod, QuantFormat, QuantType, quantize_static
    from onnxruntime.quantization.shape_inference import quant_pre_process
    import onnx

    if calibration not in CALIBRATIONS:
        raise ConfigError(f"--calibration: expected one of {', '.join(CALIBRATIONS)}, got {calibration!r}")
    if not 0 < percentile <= 100:
        raise ConfigError(f"--percentile: expected a number in (0, 100], got {percentile}")
    reduce = (not has_vnni()) if reduce_range is None else reduce_range
    method = {"minmax": CalibrationMethod.MinMax, "percentile": CalibrationMethod.Percentile,
              "entropy": CalibrationMethod.Entropy}[calibration]
    input_name = onnx.load(fp32_path, load_external_data=False).graph.input[0].name
    extra: Dict[str, Any] = {"CalibPercentile": percentile} if calibration == "percentile" else {}
    with tempfile.TemporaryDirectory(prefix="ppnets_quant_") as tmp:
        prepared = os.path.join(tmp, "prepared.onnx")
        quant_pre_process(fp32_path, prepared, skip_symbolic_shape=True)
        nodes = onnx.load(prepared).graph.node
        excluded = [n.name for n in nodes if n.op_type in set(exclude_op_types)]
        quantize_static(prepared, out_path, _Reader(input_name, batches), quant_format=QuantFormat.QDQ,
                        activation_type=QuantType.QUInt8, weight_type=QuantType.QInt8, per_channel=per_channel,
                        reduce_range=reduce, calibrate_method=method, nodes_to_exclude=excluded or None,
                        extra_options=extra)
    return {"format": "QDQ", "activations": "uint8", "weights": "int8", "per_channel": per_channel,
            "reduce_range": reduce, "calibration": calibration, "vnni": has_vnni(),
            **({"percentile": percentile} if calibration == "percentile" else {}),
            "excluded_op_types": list(exclude_op_types)}


def sample_indices(n_total: int, n: int, seed: int = 0) -> List[int]:
    """``n`` distinct indices of ``range(n_total)`` drawn with ``seed`` (all of them if ``n >= n_total``)."""
    if n_total == 0:
        raise DataError("the calibration dataset is empty")
    rng = np.random.default_rng(seed)
    return sorted(rng.permutation(n_total)[:n].tolist())


def calibration_batches(load: Callable[[int], np.ndarray], indices: Sequence[int], batch_size: int,
                        progress: Callable[[Iterable[Any], str], Iterable[Any]] = lambda x, d: x) -> List[np.ndarray]:
    """Preprocessed images ``load(i)`` for ``indices``, stacked into NCHW batches."""
    return [np.stack([load(i) for i in indices[s:s + batch_size]]).astype(np.float32)
            for s in progress(range(0, len(indices), batch_size), "reading calibration images")]


def evaluate_top1(runs: Dict[str, Callable[[np.ndarray], np.ndarray]], load: Callable[[int], Tuple[np.ndarray, int]],
                  n: int, batch_size: int = 32,
                  progress: Callable[[Iterable[Any], str], Iterable[Any]] = lambda x, d: x) -> Dict[str, Dict[str, float]]:
    """Top-1 of each ``runs`` entry (a batch → scores function) over samples ``0..n-1`` of ``load``,
    and how often each agrees with the first entry's top-1."""
    correct = {k: 0 for k in runs}
    agree = {k: 0 for k in runs}
    first = next(iter(runs))
    for s in progress(range(0, n, batch_size), "evaluating"):
        items = [load(i) for i in range(s, min(n, s + batch_size))]
        batch = np.stack([x for x, _ in items]).astype(np.float32)
        labels = np.array([y for _, y in items])
        top = {k: run(batch).argmax(axis=1) for k, run in runs.items()}
        for k in runs:
            correct[k] += int((top[k] == labels).sum())
            agree[k] += int((top[k] == top[first]).sum())
    return {k: {"top1": correct[k] / n, "agreement": agree[k] / n, "samples": n} for k in runs}
