"""One training run per output folder: an advisory lock on ``<run folder>/.lock``.

Two runs writing the same checkpoints and logs would corrupt each other's ``latest``. The lock
is a POSIX record lock (``fcntl.lockf``) on a file holding the owner's pid. The kernel drops it
when the owner exits in any way (``kill -9`` included), so a lock left by a killed run is
recovered by simply taking it again; the stale pid in the file is then overwritten. Record
locks belong to the process, so the data loader's forked workers do not inherit them (they
could outlive a killed owner for a moment). Within one process the lock is re-entrant (a tool
building two engines on one folder, the tests).
"""
from __future__ import annotations

import os
import threading
from typing import Dict, Tuple

from ..errors import ConfigError

__all__ = ["RunLock"]

LOCK_NAME = ".lock"

_held: Dict[str, Tuple[int, int]] = {}  # real path → (fd, holders) for this process
_guard = threading.Lock()


def _describe_owner(path: str) -> str:
    try:
        with open(path, encoding="utf-8") as f:
            pid = f.read().strip()
    except OSError:
        pid = ""
    return f"pid {pid}" if pid.isdigit() else "a process whose pid is not recorded yet"


class RunLock:
    """Hold the lock of ``folder`` while the object is acquired (``acquire()``/``release()`` or ``with``).

    ``acquire`` raises a one-line :class:`~ppnets.errors.ConfigError` naming the other process
    when another run holds it. Where ``fcntl`` is missing (Windows) the lock does nothing.
    """

    def __init__(self, folder: str) -> None:
        self.path = os.path.realpath(os.path.join(folder, LOCK_NAME))
        self.acquired = False

    def acquire(self) -> "RunLock":
        if self.acquired:
            return self
        try:
            import fcntl
        except ImportError:  # pragma: no cover - not POSIX
            return self
        with _guard:
            if self.path in _held:
                fd, holders = _held[self.path]
                _held[self.path] = (fd, holders + 1)
                self.acquired = True
                return self
            fd = os.open(self.path, os.O_RDWR | os.O_CREAT, 0o644)
            try:
                fcntl.lockf(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except OSError:
                os.close(fd)
                folder = os.path.dirname(self.path)
                raise ConfigError(f"Global.output_dir: {folder} is in use by another training run "
                                  f"({_describe_owner(self.path)}); wait for it to finish, stop it, or choose "
                                  "another Global.output_dir") from None
            os.ftruncate(fd, 0)
            os.write(fd, f"{os.getpid()}\n".encode())
            _held[self.path] = (fd, 1)
            self.acquired = True
        return self

    def release(self) -> None:
        if not self.acquired:
            return
        with _guard:
            fd, holders = _held.pop(self.path)
            if holders > 1:
                _held[self.path] = (fd, holders - 1)
            else:
                os.close(fd)  # closing the descriptor drops the lock
        self.acquired = False

    def __enter__(self) -> "RunLock":
        return self.acquire()

    def __exit__(self, *exc) -> None:
        self.release()

    def __del__(self) -> None:
        try:
            self.release()
        except Exception:  # interpreter shutdown
            pass
