"""The ``ppnets`` logger: console and ``<output_dir>/train.log``; only rank 0 writes."""
from __future__ import annotations

import logging
import os
import sys
from typing import Optional

_LOGGER = logging.getLogger("ppnets")


class _ConsoleHandler(logging.StreamHandler):
    """Writes to whatever ``sys.stdout`` is when a record is emitted (not the one it was made with): a
    redirected or replaced stdout (``contextlib.redirect_stdout``, a test's capture) that has since
    been closed would otherwise turn every later record into a logging error."""

    def __init__(self) -> None:
        super().__init__(sys.stdout)

    @property
    def stream(self):
        return sys.stdout

    @stream.setter
    def stream(self, value) -> None:   # logging.StreamHandler assigns it; the current stdout is used
        pass


def get_logger() -> logging.Logger:
    return _LOGGER


def setup_logger(log_file: Optional[str] = None, rank: int = 0, level: int = logging.INFO) -> logging.Logger:
    """(Re)configure the logger: rank 0 logs to stdout and ``log_file``; other ranks log warnings only."""
    for h in list(_LOGGER.handlers):
        _LOGGER.removeHandler(h)
        h.close()
    _LOGGER.propagate = False
    fmt = logging.Formatter("[%(asctime)s] ppnets %(levelname)s: %(message)s", "%Y/%m/%d %H:%M:%S")
    _LOGGER.setLevel(level if rank == 0 else logging.WARNING)
    console = _ConsoleHandler()
    console.setFormatter(fmt)
    _LOGGER.addHandler(console)
    if log_file and rank == 0:
        os.makedirs(os.path.dirname(os.path.abspath(log_file)), exist_ok=True)
        fh = logging.FileHandler(log_file, encoding="utf-8")
        fh.setFormatter(fmt)
        _LOGGER.addHandler(fh)
    return _LOGGER
