"""User-facing errors.

Every mistake a user can make (a bad config, a missing file, a corrupt image, an
unknown name) raises a subclass of :class:`PPNetsError`. The command-line tools
print its message as one line on stderr and exit with code 2; internal errors keep
their traceback (see :func:`ppnets.utils.cli.run`).
"""
from __future__ import annotations

import difflib
from typing import Iterable, List


class PPNetsError(Exception):
    """An error caused by user input; printed as one line, exit code 2."""


class ConfigError(PPNetsError):
    """A config file, a config key or a command-line override is wrong."""


class DataError(PPNetsError):
    """A dataset, a file list or an image is missing or unreadable."""


class CheckpointError(PPNetsError):
    """A weights or checkpoint file is missing, truncated or does not fit the model."""


class TrainingError(PPNetsError):
    """Training cannot continue (e.g. the loss became NaN)."""


def did_you_mean(name: str, choices: Iterable[str]) -> str:
    """Return ``" (did you mean 'x'?)"`` for a choice that is surely meant (a typo or another
    case), or ``""``: a loose match would mislead (``use_dali`` is not ``use_visualdl``)."""
    choices = list(choices)
    lowered = {c.lower(): c for c in choices}
    if str(name).lower() in lowered:
        return f" (did you mean '{lowered[str(name).lower()]}'?)"
    close = difflib.get_close_matches(str(name), choices, n=1, cutoff=0.75)
    return f" (did you mean '{close[0]}'?)" if close else ""


def closest(name: str, choices: Iterable[str], n: int = 5) -> List[str]:
    """Up to ``n`` choices most like ``name`` (case-insensitive), best first."""
    choices = list(choices)
    by_lower = {c.lower(): c for c in choices}
    return [by_lower[c] for c in difflib.get_close_matches(str(name).lower(), list(by_lower), n=n, cutoff=0.4)]


class TrainingInterrupted(PPNetsError):
    """Training was stopped by SIGINT/SIGTERM after saving ``latest`` (exit code 130)."""

    exit_code = 130
