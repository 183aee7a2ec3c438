"""Quiet Paddle warnings: the Python warnings Paddle emits on paths ppnets drives itself and reports
better (``set_state_dict``'s "Skip loading for …" while ppnets lists the skipped keys; BatchNorm's
note that it tracks running statistics), silenced only around those calls."""
from __future__ import annotations

import contextlib
import warnings
from typing import Iterator

__all__ = ["HARMLESS", "quiet_paddle_warnings"]

#: Paddle's own warnings that carry nothing for a ppnets user (ppnets reports the same facts itself)
HARMLESS = (
    r"Skip loading for .*",                       # set_state_dict: ppnets lists skipped/missing keys
    r".*unused values in state_dict.*",           # ditto, for keys the model does not have
    r"When training, we now always track global mean and variance.*",  # BatchNorm in training
    r"No ccache found.*",                         # paddle's import: ppnets compiles nothing
)


@contextlib.contextmanager
def quiet_paddle_warnings() -> Iterator[None]:
    """Within the block, Paddle's :data:`HARMLESS` warnings are not shown (others are)."""
    with warnings.catch_warnings():
        for pattern in HARMLESS:
            warnings.filterwarnings("ignore", message=pattern)
        yield
