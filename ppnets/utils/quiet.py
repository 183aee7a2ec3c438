"""Quiet Paddle: its messages that carry nothing for a ppnets user stay off the console.

``import ppnets`` installs, for the whole process, ``ignore`` filters for Paddle's :data:`HARMLESS`
Python warnings (``set_state_dict``'s "Skip loading for …" while ppnets lists the skipped keys;
BatchNorm's note that it tracks running statistics; the compiler cache ppnets never uses), and sets
``GLOG_minloglevel=2`` unless it is set already, which keeps Paddle's C++ INFO and WARNING lines
(PIR notes while tracing an export) quiet when ppnets is imported before Paddle; errors still
show. With ``--debug`` on the command line, or ``PPNETS_DEBUG=1``, nothing is silenced.
:func:`quiet_paddle_warnings` silences the same warnings around a block, whatever the filters.
"""
from __future__ import annotations

import contextlib
import os
import sys
import warnings
from typing import Iterator

__all__ = ["HARMLESS", "quiet_paddle_warnings", "debug_requested", "quiet_paddle"]

#: Paddle's own warnings that carry nothing for a ppnets user (ppnets reports the same facts itself)
HARMLESS = (
    r"Skip loading for .*",                       # set_state_dict: ppnets lists skipped/missing keys
    r".*unused values in state_dict.*",           # ditto, for keys the model does not have
    r"When training, we now always track global mean and variance.*",  # BatchNorm in training
    r"No ccache found.*",                         # paddle's import: ppnets compiles nothing
)


def debug_requested() -> bool:
    """``--debug`` among the command-line arguments, or ``PPNETS_DEBUG`` set (and not 0)."""
    return "--debug" in sys.argv[1:] or os.environ.get("PPNETS_DEBUG", "") not in ("", "0")


def quiet_paddle() -> None:
    """Install the process-wide quiet (see the module docstring), unless debugging was asked for."""
    if debug_requested():
        return
    os.environ.setdefault("GLOG_minloglevel", "2")
    for pattern in HARMLESS:
        warnings.filterwarnings("ignore", message=pattern, module="paddle")


@contextlib.contextmanager
def quiet_paddle_warnings() -> Iterator[None]:
    """Within the block, Paddle's :data:`HARMLESS` warnings are not shown (others are)."""
    with warnings.catch_warnings():
        for pattern in HARMLESS:
            warnings.filterwarnings("ignore", message=pattern)
        yield
