"""The machine a benchmark runs on, its thread settings, and quiet engines."""
from __future__ import annotations

import contextlib
import datetime
import os
import platform
import resource
import tempfile
from typing import Any, Dict, Iterator, Optional

import cv2
import numpy as np
import paddle

from ..arch import backend, onednn

__all__ = ["machine_info", "peak_rss_mb", "set_threads", "quiet_logger", "temporary_workdir"]


def _cpu_model() -> str:
    try:
        with open("/proc/cpuinfo", encoding="utf-8") as f:
            for line in f:
                if line.startswith("model name"):
                    return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


def _memory_gb() -> Optional[float]:
    try:
        return round(os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES") / 2 ** 30, 1)
    except (ValueError, OSError, AttributeError):
        return None


def machine_info() -> Dict[str, Any]:
    """CPU, cores, memory, load, and the versions of Python, Paddle, oneDNN, NumPy and OpenCV."""
    return {
        "date": datetime.datetime.now().isoformat(timespec="seconds"),
        "cpu": _cpu_model(), "cores": os.cpu_count(), "memory_gb": _memory_gb(),
        "load_average": [round(v, 2) for v in os.getloadavg()] if hasattr(os, "getloadavg") else None,
        "python": platform.python_version(), "paddle": paddle.__version__, "numpy": np.__version__,
        "opencv": cv2.__version__, "platform": platform.platform(),
        "onednn_training": onednn.version() or onednn.unavailable_reason(),
    }


def peak_rss_mb() -> float:
    """Peak resident memory of this process so far, MiB (Linux ``ru_maxrss`` is in KiB)."""
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024.0


def set_threads(onednn_threads: int, paddle_threads: Optional[int] = None) -> None:
    """Threads of the oneDNN training kernels (:func:`ppnets.arch.backend.set_num_threads`) and,
    if given, of Paddle's own CPU math kernels (Paddle's default is 1; more makes its OpenMP
    workers spin between calls, which delays the oneDNN kernels' wake-ups on a 2-core machine)."""
    if paddle_threads is not None:
        paddle.base.core.set_num_threads(int(paddle_threads))
    backend.set_num_threads(int(onednn_threads))


_DEVNULL: Optional[Any] = None


@contextlib.contextmanager
def quiet_logger() -> Iterator[None]:
    """Keep the engine's console log lines off the terminal; log files are still written.

    An engine set up within the block binds its console handler to the ``sys.stdout`` of
    that moment, so stdout is a null stream that stays open for the life of the process."""
    global _DEVNULL
    if _DEVNULL is None:
        _DEVNULL = open(os.devnull, "w")
    with contextlib.redirect_stdout(_DEVNULL):
        yield


def temporary_workdir() -> tempfile.TemporaryDirectory:
    """A temporary directory for generated images, exports and run outputs (removed on exit)."""
    return tempfile.TemporaryDirectory(prefix="ppnets_bench_")
