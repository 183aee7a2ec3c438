"""The convolution backend: which kernels a model's convolutions run on in dynamic mode.

Models are built with plain ``nn.Conv2D`` semantics: outside :func:`use` their convolutions
are Paddle's, and so are exported programs. The engine resolves ``Global.conv_backend``
(:func:`resolve`) and runs training and evaluation inside ``use(backend)``:

- ``paddle``: Paddle's ``conv2d`` kernels everywhere.
- ``onednn``: in dynamic mode, float32 NCHW convolutions on the CPU (outside AMP autocast)
  run on :mod:`ppnets.arch.onednn`; in a traced ``to_static`` training program, depthwise
  convolutions with small outputs use :func:`~ppnets.arch.layers.depthwise_conv_unfold`.
- ``auto``: ``onednn`` on the CPU, ``paddle`` on a GPU.

When oneDNN is asked for but its library is missing, is another version than the binding's
or ``PPNETS_ONEDNN=0`` is set, :func:`resolve` logs one line and returns ``paddle``.

The active backend is a :class:`contextvars.ContextVar`: each thread (and asyncio task)
has its own, so two engines in two threads never switch each other's kernels. The threads
of the oneDNN kernels are owned here too (:func:`set_num_threads`).
"""
from __future__ import annotations

import contextlib
import contextvars
import logging
import os
from typing import Iterator, Optional

from ..errors import ConfigError
from . import onednn

__all__ = ["BACKENDS", "resolve", "use", "active", "onednn_active", "set_num_threads", "num_threads"]

BACKENDS = ("auto", "onednn", "paddle")
_ACTIVE: contextvars.ContextVar[str] = contextvars.ContextVar("ppnets_conv_backend", default="paddle")
_threads: Optional[int] = None


def resolve(name: str, device: str = "cpu", log: Optional[logging.Logger] = None) -> str:
    """The backend that ``Global.conv_backend: name`` runs on ``device``: ``"onednn"`` or ``"paddle"``.

    Logs one line on ``log`` when oneDNN was asked for (``onednn``, or ``auto`` on the CPU)
    but cannot be used.
    """
    if name not in BACKENDS:
        raise ConfigError(f"Global.conv_backend: unknown backend '{name}'; valid: {', '.join(BACKENDS)}")
    if name == "paddle" or (name == "auto" and device != "cpu"):
        return "paddle"
    if device != "cpu":
        if log is not None:
            log.warning(f"Global.conv_backend: onednn runs on the CPU only; device {device} uses Paddle's kernels")
        return "paddle"
    if onednn.available():
        return "onednn"
    if log is not None:
        why = onednn.unavailable_reason()
        level = logging.INFO if why and "PPNETS_ONEDNN" in why else logging.WARNING
        log.log(level, f"Global.conv_backend: {name}: {why}; using Paddle's convolution kernels")
    return "paddle"


@contextlib.contextmanager
def use(backend: str) -> Iterator[None]:
    """Within the block (in this thread), convolutions run on ``backend`` (a :func:`resolve` result)."""
    if backend not in ("onednn", "paddle"):
        raise ValueError(f"backend must be 'onednn' or 'paddle' (see resolve()), got {backend!r}")
    token = _ACTIVE.set(backend)
    try:
        yield
    finally:
        _ACTIVE.reset(token)


def active() -> str:
    """The backend of the current thread: ``"onednn"`` or ``"paddle"`` (the default)."""
    return _ACTIVE.get()


def onednn_active() -> bool:
    """True within ``use("onednn")``."""
    return _ACTIVE.get() == "onednn"


def set_num_threads(n: int) -> None:
    """Threads of the oneDNN training kernels, for the whole process (default: all cores, or
    ``OMP_NUM_THREADS``). Paddle's own CPU kernels keep their own count
    (``paddle.base.core.set_num_threads``, 1 by default)."""
    global _threads
    if int(n) < 1:
        raise ConfigError(f"threads: must be a positive integer, got {n}")
    _threads = int(n)
    onednn.set_num_threads(_threads)


def num_threads() -> int:
    """The thread count of the oneDNN training kernels."""
    if _threads is not None:
        return _threads
    rt = onednn.runtime.get()
    return rt.threads if rt is not None else int(os.environ.get("OMP_NUM_THREADS", "0") or 0) or (os.cpu_count() or 1)
