"""Every inference runtime timed in its own process, rounds interleaved, median kept.

:func:`time_runtimes` times each ``(backend, precision, batch)`` in a benchmark worker of its
own (:class:`ppnets.bench.workers.Worker`: no runtime shares a process, an allocator or a
thread pool with another) through :func:`ppnets.utils.timing.interleaved`; each worker sleeps
briefly before its timed call so the previous worker's spinning thread pools settle. A busy
spell of a shared machine thus falls on all runtimes alike. :func:`bench_backends` adds the
export (Paddle + ONNX, random weights), the INT8 file and the result rows of
``tools/benchmark.py``.
"""
from __future__ import annotations

import os
import statistics
import tempfile
from typing import Any, Callable, Dict, Iterable, List, Optional, Sequence, Tuple

import numpy as np
import paddle

from ..analysis.zoo import export_for_benchmark
from ..arch import build_model
from ..deploy.exported import read_export_meta, write_export_meta
from ..deploy.predictor import Predictor
from ..deploy.quantize import quantize_onnx
from ..deploy.runtimes import INT8_FILE, ONNX_FILE
from ..utils.timing import interleaved
from .results import Result
from .workers import Worker

__all__ = ["time_runtimes", "bench_backends", "predictor_runner", "VARIANTS"]

#: (backend, precision) pairs of the predictor benchmark
VARIANTS = (("paddle", "fp32"), ("onnxruntime", "fp32"), ("openvino", "fp32"), ("auto", "fp32"),
            ("onnxruntime", "int8"), ("openvino", "int8"), ("auto", "int8"))
#: pause before each timed run: Intel OpenMP (paddle.inference) spins 200 ms after its work (KMP_BLOCKTIME)
_SETTLE_S = 0.3


def predictor_runner(spec: Dict[str, Any]) -> Callable[[], None]:
    """The worker-side runner of one ``(backend, precision, batch)``: ``spec["calls"]`` predictions
    of a random batch; ``info["runtime"]`` is the runtime the Predictor loaded (what ``auto`` chose)."""
    predictor = Predictor(spec["model_dir"], backend=spec["backend"], precision=spec["precision"],
                          cpu_threads=spec["threads"])
    x = np.random.default_rng(0).standard_normal((spec["batch"], *spec["shape"])).astype(np.float32)

    def run() -> None:
        for _ in range(spec["calls"]):
            predictor.run(x)

    run.info = {"runtime": predictor.backend}
    run.pause_s = _SETTLE_S
    return run


def time_runtimes(model_dir: str, variants: Sequence[Tuple[str, str]], shape: Sequence[int],
                  batches: Sequence[int] = (1, 16), threads: int = 0, rounds: int = 5, warmup: int = 2,
                  images_per_call: int = 16, progress: Callable[[Iterable[Any], str], Iterable[Any]] = lambda x, d: x,
                  resolved: Optional[Dict[Tuple[str, str], str]] = None) -> Dict[Tuple[str, str, int], List[float]]:
    """Seconds per batch of each ``(backend, precision, batch)``, one list entry per round;
    ``resolved`` receives the runtime each variant ran on (what ``auto`` chose).

    Each timed call runs ``ceil(images_per_call / batch)`` predictions, so a round processes about
    the same number of images at every batch size."""

    threads = threads or os.cpu_count() or 1
    calls = {b: max(1, -(-images_per_call // b)) for b in batches}
    workers: Dict[Tuple[str, str, int], Worker] = {}
    with tempfile.TemporaryDirectory(prefix="ppnets_runtimes_") as logs:
        try:
            for b in batches:
                for backend, precision in variants:   # started one by one: loading a runtime is itself busy
                    spec = {"model_dir": os.path.abspath(model_dir), "backend": backend, "precision": precision,
                            "threads": threads, "shape": list(shape), "batch": b, "calls": calls[b]}
                    worker = Worker("ppnets.bench.runtimes:predictor_runner", spec,
                                    os.path.join(logs, f"{backend}_{precision}_b{b}.log"))
                    workers[(backend, precision, b)] = worker
                    runtime = worker.wait_ready()["runtime"]
                    if resolved is not None:
                        resolved[(backend, precision)] = runtime
            times = interleaved(workers, rounds, warmup, progress, "runtimes")
        finally:
            for worker in workers.values():
                worker.close()
    # timed batch by batch, reported variant by variant
    return {(*v, b): [t / calls[b] for t in times[(*v, b)]] for v in variants for b in batches}


def bench_backends(model: str, size: int, work_dir: str, batches: Sequence[int] = (1, 16), threads: int = 0,
                   rounds: int = 5, warmup: int = 2, variants: Sequence[Tuple[str, str]] = VARIANTS,
                   class_num: int = 1000, progress: Callable[[Iterable[Any], str], Iterable[Any]] = lambda x, d: x
                   ) -> List[Any]:
    """``model`` (random weights, softmax head) exported to Paddle + ONNX, INT8-quantized on random
    calibration batches when an int8 variant is asked for, and timed by :func:`time_runtimes`.
    Rows of ``section="predictor"``; ``auto`` is timed as a variant of its own (its choice is in the name)."""

    out_dir = os.path.join(work_dir, f"export_{model}_{size}_onnx")
    if not os.path.isfile(os.path.join(out_dir, ONNX_FILE)):
        paddle.seed(0)
        export_for_benchmark(build_model(model, class_num=class_num), out_dir, size, model, formats=("paddle", "onnx"))
    int8 = os.path.join(out_dir, INT8_FILE)
    if any(p == "int8" for _, p in variants) and not os.path.isfile(int8):
        rng = np.random.default_rng(0)
        quantize_onnx(os.path.join(out_dir, ONNX_FILE), int8,
                      [rng.standard_normal((8, 3, size, size)).astype(np.float32) for _ in range(4)])
        write_export_meta(out_dir, read_export_meta(out_dir))   # inference.yml lists the INT8 file
    threads = threads or os.cpu_count() or 1
    resolved: Dict[Tuple[str, str], str] = {}
    times = time_runtimes(out_dir, variants, (3, size, size), batches, threads, rounds, warmup, progress=progress,
                          resolved=resolved)
    rows = []
    for (backend, precision, b), ts in times.items():
        med = float(statistics.median(ts))
        name = f"auto (chose {resolved[(backend, precision)]})" if backend == "auto" else backend
        rows.append(Result("predictor", f"{name} {precision}, own process, {threads} threads", model, size,
                           b, {"img_s": b / med, "latency_ms": med * 1000.0},
                           {"backend": backend, "runtime": resolved[(backend, precision)], "precision": precision,
                            "threads": threads, "rounds": rounds}))
    return rows
