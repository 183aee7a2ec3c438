"""Every inference runtime timed in its own process, rounds interleaved, median kept.

:func:`time_runtimes` starts one worker process per ``(backend, precision)`` (spawned, so no
runtime shares a process, an allocator or a thread pool with another), then runs rounds:
each worker in turn runs its batches while the others wait idle on a pipe, and the parent
sleeps briefly between workers so spinning thread pools settle. A busy spell of a shared
machine thus falls on all runtimes alike. :func:`bench_backends` adds the export (Paddle +
ONNX, random weights), the INT8 file and the result rows of ``tools/benchmark.py``.
"""
from __future__ import annotations

import multiprocessing as mp
import os
import statistics
import time
from typing import Any, Callable, Dict, Iterable, List, Optional, Sequence, Tuple

import numpy as np

__all__ = ["time_runtimes", "bench_backends", "VARIANTS"]

#: (backend, precision) pairs of the predictor benchmark
VARIANTS = (("paddle", "fp32"), ("onnxruntime", "fp32"), ("openvino", "fp32"), ("auto", "fp32"),
            ("onnxruntime", "int8"), ("openvino", "int8"), ("auto", "int8"))
#: pause before each timed run: Intel OpenMP (paddle.inference) spins 200 ms after its work (KMP_BLOCKTIME)
_SETTLE_S = 0.3


def _worker(conn: Any, model_dir: str, backend: str, precision: str, threads: int, shape: Tuple[int, ...],
            batches: Sequence[int]) -> None:
    os.environ.setdefault("GLOG_minloglevel", "2")
    from ..engine.export import Predictor

    try:
        predictor = Predictor(model_dir, backend=backend, precision=precision, cpu_threads=threads)
    except Exception as e:  # reported to the parent, which raises it
        conn.send(("error", f"{backend}/{precision}: {type(e).__name__}: {e}"))
        return
    rng = np.random.default_rng(0)
    inputs = {b: rng.standard_normal((b, *shape)).astype(np.float32) for b in batches}
    conn.send(("ready", predictor.backend))
    while True:
        msg = conn.recv()
        if msg is None:
            break
        batch, calls = msg
        x = inputs[batch]
        tic = time.perf_counter()
        for _ in range(calls):
            predictor.run(x)
        conn.send((time.perf_counter() - tic) / calls)


def _receive(conn: Any, proc: Any) -> Any:
    try:
        return conn.recv()
    except EOFError:
        proc.join(timeout=5)
        raise RuntimeError(f"benchmark worker {proc.name} died (exit code {proc.exitcode})") from None


def time_runtimes(model_dir: str, variants: Sequence[Tuple[str, str]], shape: Sequence[int],
                  batches: Sequence[int] = (1, 16), threads: int = 0, rounds: int = 5, warmup: int = 2,
                  images_per_call: int = 16, progress: Callable[[Iterable[Any], str], Iterable[Any]] = lambda x, d: x,
                  resolved: Optional[Dict[Tuple[str, str], str]] = None) -> Dict[Tuple[str, str, int], List[float]]:
    """Seconds per batch of each ``(backend, precision, batch)``, one list entry per round;
    ``resolved`` receives the runtime each variant ran on (what ``auto`` chose).

    Each timed entry runs ``ceil(images_per_call / batch)`` calls, so a round processes about
    the same number of images at every batch size."""
    threads = threads or os.cpu_count() or 1
    ctx = mp.get_context("spawn")
    workers = []
    try:
        for backend, precision in variants:   # started one by one: loading a runtime is itself busy
            parent, child = ctx.Pipe()
            proc = ctx.Process(target=_worker, args=(child, model_dir, backend, precision, threads, tuple(shape),
                                                     tuple(batches)), daemon=True)
            proc.start()
            child.close()   # a dead worker then ends the parent's recv() with EOFError
            workers.append(((backend, precision), parent, proc))
            status, detail = _receive(parent, proc)
            if status == "error":
                raise RuntimeError(detail)
            if resolved is not None:
                resolved[(backend, precision)] = detail
        calls = {b: max(1, -(-images_per_call // b)) for b in batches}
        for _, conn, proc in workers:
            for b in batches:
                for _ in range(warmup):
                    conn.send((b, 1))
                    _receive(conn, proc)
        times: Dict[Tuple[str, str, int], List[float]] = {(*v, b): [] for v, _, _ in workers for b in batches}
        for _ in progress(range(rounds), "runtimes"):
            for b in batches:
                for variant, conn, proc in workers:
                    time.sleep(_SETTLE_S)
                    conn.send((b, calls[b]))
                    times[(*variant, b)].append(_receive(conn, proc))
        return times
    finally:
        for _, conn, proc in workers:
            try:
                conn.send(None)
            except (BrokenPipeError, OSError):
                pass
            proc.join(timeout=30)
            if proc.is_alive():
                proc.kill()


def bench_backends(model: str, size: int, work_dir: str, batches: Sequence[int] = (1, 16), threads: int = 0,
                   rounds: int = 5, warmup: int = 2, variants: Sequence[Tuple[str, str]] = VARIANTS,
                   class_num: int = 1000, progress: Callable[[Iterable[Any], str], Iterable[Any]] = lambda x, d: x
                   ) -> List[Any]:
    """``model`` (random weights, softmax head) exported to Paddle + ONNX, INT8-quantized on random
    calibration batches when an int8 variant is asked for, and timed by :func:`time_runtimes`.
    Rows of ``section="predictor"``; ``auto`` is timed as a variant of its own (its choice is in the name)."""
    import paddle

    from ..analysis.zoo import export_for_benchmark
    from ..arch import build_model
    from ..bench.results import Result
    from .quantize import quantize_onnx
    from .runtimes import INT8_FILE, ONNX_FILE

    out_dir = os.path.join(work_dir, f"export_{model}_{size}_onnx")
    if not os.path.isfile(os.path.join(out_dir, ONNX_FILE)):
        paddle.seed(0)
        export_for_benchmark(build_model(model, class_num=class_num), out_dir, size, model, formats=("paddle", "onnx"))
    int8 = os.path.join(out_dir, INT8_FILE)
    if any(p == "int8" for _, p in variants) and not os.path.isfile(int8):
        rng = np.random.default_rng(0)
        quantize_onnx(os.path.join(out_dir, ONNX_FILE), int8,
                      [rng.standard_normal((8, 3, size, size)).astype(np.float32) for _ in range(4)])
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
