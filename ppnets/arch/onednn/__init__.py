"""oneDNN kernels for training on the CPU, called through :mod:`ctypes`.

Paddle's dynamic-graph CPU kernels for ``conv2d`` run im2col + GEMM per sample and per
group: a depthwise convolution becomes ``N × C`` tiny matrix products, and even the 1×1
convolutions reach a fraction of the machine's FLOP rate. Paddle's *inference* on the CPU
uses oneDNN, whose kernels are JIT-compiled for the CPU's vector ISA, and the wheel ships
that library. This package calls its C API — nothing to compile:

- :mod:`.runtime`: loading and self-check of the library, engine, stream, plan cache;
- :mod:`.conv`: :func:`conv2d`, forward and both backward passes as a ``PyLayer``.

:func:`available` tells whether the library loaded and passed its self-check; when it did
not, or when ``PPNETS_ONEDNN=0`` is set, :mod:`ppnets.arch.backend` falls back to Paddle's
kernels. Exported programs never use this path: they keep Paddle's ``conv2d`` op, which
``paddle.inference`` maps to oneDNN itself.

oneDNN parallelises over the OpenMP threads of the calling thread; their number is set by
:func:`ppnets.arch.backend.set_num_threads` (all cores unless ``OMP_NUM_THREADS`` says otherwise).
"""
from __future__ import annotations

from typing import Optional

from . import runtime
from .conv import conv2d

__all__ = ["available", "unavailable_reason", "version", "conv2d", "set_num_threads", "clear_cache"]


def available() -> bool:
    """True when the oneDNN library loaded and passed the self-check."""
    return runtime.get() is not None


def unavailable_reason() -> Optional[str]:
    """Why :func:`available` is False (None when it is True)."""
    return runtime.reason()


def version() -> Optional[str]:
    """The loaded library's version, e.g. ``"3.6.2"`` (None when unavailable)."""
    rt = runtime.get()
    return rt.version if rt is not None else None


def set_num_threads(n: int) -> None:
    """Threads of oneDNN's OpenMP runtime (libgomp) for its kernels (small convolutions use one).

    Use :func:`ppnets.arch.backend.set_num_threads`, which owns the count; this applies it."""
    rt = runtime.get()
    if rt is None:
        return
    with rt.lock:
        rt.threads = max(int(n), 1)
        rt.gomp.omp_set_num_threads(rt.threads)
        runtime.close_plans(rt)  # primitives size their work split when they are built


def clear_cache() -> None:
    """Free every cached plan and scratch buffer."""
    rt = runtime.get()
    if rt is None:
        return
    with rt.lock:
        runtime.close_plans(rt, buffers=True)
