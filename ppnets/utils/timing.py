"""Interleaved timing: the one way ppnets times several things against each other.

Every run is called ``warmup`` times untimed, then ``rounds`` rounds call every run once, in
order, and each run's time is the median of its rounds. Interleaving spreads a change of the
machine's load (another process, a frequency change) over all runs instead of penalising the
one measured while it lasted. Used by :mod:`ppnets.bench` and :mod:`ppnets.analysis.zoo`.
"""
from __future__ import annotations

import statistics
import sys
import time
from typing import Any, Callable, Dict, Hashable, Iterable, List, Mapping, Optional, Sequence, TypeVar

from ..errors import ConfigError

__all__ = ["interleaved", "median", "Timed", "Progress", "no_progress", "terminal_bar"]

K = TypeVar("K", bound=Hashable)
Progress = Callable[[Iterable[Any], str], Iterable[Any]]


class Timed(float):
    """Seconds a run measured itself; returned by a run of :func:`interleaved`, they replace
    the wall time of the call (e.g. a step timed inside a worker process, without the
    round trip of asking it)."""


def no_progress(items: Iterable[Any], desc: str) -> Iterable[Any]:
    """The default ``progress``: no bar (``tqdm``-like callables take its place)."""
    return items


def terminal_bar(items: Iterable[Any], desc: str, unit: str = "it", total: Optional[int] = None) -> Iterable[Any]:
    """``items`` behind a tqdm bar on stderr while stderr is a terminal (the bar disappears when
    done); elsewhere (a log file, a pipe, the tests) ``items`` unchanged. A :data:`Progress`."""
    from tqdm import tqdm

    return tqdm(items, desc=desc, unit=unit, total=total, disable=None, leave=False, file=sys.stderr,
                dynamic_ncols=True)


def interleaved(runs: Mapping[K, Callable[[], Any]], rounds: int, warmup: int = 1,
                progress: Progress = no_progress, desc: str = "rounds") -> Dict[K, List[float]]:
    """Seconds per call of each run: ``warmup`` untimed calls each, then ``rounds`` rounds that
    call every run once, in order.

    A run that returns :class:`Timed` seconds is counted with those; otherwise the wall time
    of the call counts.
    """
    if rounds < 1:
        raise ConfigError(f"--rounds: must be a positive integer, got {rounds}")
    for fn in runs.values():
        for _ in range(warmup):
            fn()
    times: Dict[K, List[float]] = {k: [] for k in runs}
    for _ in progress(range(rounds), desc):
        for name, fn in runs.items():
            tic = time.perf_counter()
            own = fn()
            elapsed = time.perf_counter() - tic
            times[name].append(float(own) if isinstance(own, Timed) else elapsed)
    return times


def median(values: Sequence[float]) -> float:
    """The median as a float."""
    return float(statistics.median(values))
