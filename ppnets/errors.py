"""User-facing errors.

Every mistake a user can make (a bad config, a missing file, a corrupt image, an
unknown name) raises a subclass of :class:`PPNetsError`. The command-line tools
print its message as one line on stderr and exit with code 2; internal errors keep
their traceback (see :func:`ppnets.cli.run`).
"""
from __future__ import annotations

import difflib
import reprlib
from typing import Any, Iterable, List


#: the longest text of a value quoted in an error message
MAX_REPR = 80


_REPR = reprlib.Repr()
_REPR.maxstring = _REPR.maxother = MAX_REPR
_REPR.maxlist = _REPR.maxdict = _REPR.maxtuple = 8
_REPR.maxlevel = 3


def short_repr(value: Any, limit: int = MAX_REPR) -> str:
    """``repr(value)`` with long strings and containers abbreviated, at most ``limit`` characters:
    a huge value (e.g. a YAML alias bomb) never floods a message or takes long to format."""
    text = _REPR.repr(value)
    return text if len(text) <= limit else text[:limit - 1] + "…"


class PPNetsError(Exception):
    """An error caused by user input; printed as one line, exit code 2."""


class ConfigError(PPNetsError):
    """A config file, a config key or a command-line override is wrong."""


class DataError(PPNetsError):
    """A dataset, a file list or an image is missing or unreadable."""


class CheckpointError(PPNetsError):
    """A weights or checkpoint file is missing, truncated or does not fit the model."""


class MissingExtraError(PPNetsError):
    """An optional extra (``ppnets[deploy]``: ONNX, ONNX Runtime, OpenVINO, the HTTP server) is not installed."""


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
    """Training was stopped by SIGINT/SIGTERM/SIGHUP after saving ``latest`` (exit code 130)."""

    exit_code = 130
