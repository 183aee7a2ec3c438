"""The exported model on deploy runtimes: img/s and latency per batch size, thread count and setting.

Each runtime is one entry of :data:`PREDICTOR_BACKENDS`: a function that takes the export
directory, the thread counts and the options and returns a list of ``(variant name,
settings, run)``, in table order, where ``run(batch)`` runs one batch (NCHW float32) and
``settings`` holds at least ``threads``. Add a runtime by adding an entry.
"""
from __future__ import annotations

import os
from typing import Any, Callable, Dict, List, Sequence, Tuple

import numpy as np
import paddle

from ..analysis.zoo import export_for_benchmark
from ..arch import build_model
from ..deploy import Predictor
from ..errors import ConfigError
from ..utils.timing import Progress, interleaved, median, no_progress
from .results import Result
from .runtimes import bench_backends

__all__ = ["PREDICTOR_BACKENDS", "paddle_inference", "bench_predictor"]

Runner = Callable[[np.ndarray], Any]
Factory = Callable[[str, Sequence[int], Dict[str, Any]], List[Tuple[str, Dict[str, Any], Runner]]]


def paddle_inference(model_dir: str, threads: Sequence[int], options: Dict[str, Any]
                     ) -> List[Tuple[str, Dict[str, Any], Runner]]:
    """The deploy :class:`~ppnets.deploy.Predictor` (stock ``paddle.inference``) per
    ``options["mkldnn"]`` value (oneDNN on/off) and thread count."""
    out = []
    for use_mkldnn in options.get("mkldnn", (True, False)):
        for t in threads:
            predictor = Predictor(model_dir, cpu_threads=t, use_mkldnn=use_mkldnn)
            name = f"paddle.inference, {'oneDNN' if use_mkldnn else 'no oneDNN'}, {t} thread{'s' if t != 1 else ''}"
            out.append((name, {"mkldnn": use_mkldnn, "threads": t}, predictor.run))
    return out


#: runtime name → factory (see the module docstring), in the order of the table.
PREDICTOR_BACKENDS: Dict[str, Factory] = {"paddle": paddle_inference}


def bench_predictor(model: str, size: int, work_dir: str, batches: Sequence[int] = (1, 16),
                    threads: Sequence[int] = (1, 2), mkldnn: Sequence[bool] = (True, False), rounds: int = 5,
                    warmup: int = 2, class_num: int = 1000, backends: Sequence[str] = ("paddle",),
                    progress: Progress = no_progress, runtimes: Sequence[Tuple[str, str]] = ()) -> List[Result]:
    """The exported model (random weights) on every runtime of ``backends``: img/s and latency
    (ms per batch) for every (runtime setting, threads, batch size), all timed in interleaved rounds
    in this process; then the ``(backend, precision)`` pairs of ``runtimes`` (paddle.inference, ONNX
    Runtime, OpenVINO, ``auto``; fp32 and INT8) each in its own process, at the largest thread count
    (:func:`ppnets.bench.runtimes.bench_backends`)."""

    unknown = [b for b in backends if b not in PREDICTOR_BACKENDS]
    if unknown:
        raise ConfigError(f"predictor backends: unknown {unknown}; valid: {', '.join(PREDICTOR_BACKENDS)}")
    paddle.seed(0)
    net = build_model(model, class_num=class_num)
    out_dir = export_for_benchmark(net, os.path.join(work_dir, f"export_{model}_{size}"), size, model)
    del net
    rng = np.random.default_rng(0)
    inputs = {b: rng.standard_normal((b, 3, size, size)).astype(np.float32) for b in batches}
    runs: Dict[Tuple[int, int], Callable[[], Any]] = {}
    meta: Dict[Tuple[int, int], Tuple[str, Dict[str, Any]]] = {}
    for name in backends:
        for variant, settings, run in PREDICTOR_BACKENDS[name](out_dir, threads, {"mkldnn": tuple(mkldnn)}):
            i = len({k[0] for k in runs})
            for b in batches:
                runs[(i, b)] = (lambda r=run, x=inputs[b]: r(x))
                meta[(i, b)] = (variant, dict(settings, backend=name, rounds=rounds))
    times = interleaved(runs, rounds, warmup, progress, f"predictor {model} {size}px")
    results = []
    for (i, b), ts in times.items():
        variant, settings = meta[(i, b)]
        med = median(ts)
        results.append(Result("predictor", variant, model, size, b, {"img_s": b / med, "latency_ms": med * 1000.0},
                              settings))
    if runtimes:
        results += bench_backends(model, size, work_dir, batches, max(threads), rounds, warmup, runtimes, class_num,
                                  progress)
    return results
