"""Command-line plumbing shared by ``tools/*.py``: ``-c/-o/--debug`` and the user-error exit path."""
from __future__ import annotations

import argparse
import sys
from typing import Callable, List, Optional, Sequence

from ..errors import PPNetsError

__all__ = ["config_parser", "run"]


def config_parser(description: str) -> argparse.ArgumentParser:
    """An ArgumentParser with PaddleClas's ``-c CONFIG`` and repeatable ``-o Section.key=value``."""
    parser = argparse.ArgumentParser(description=description)
    parser.add_argument("-c", "--config", required=True, help="YAML config file")
    parser.add_argument("-o", "--override", action="append", default=[], metavar="KEY=VALUE",
                        help="override a config key, e.g. -o Global.epochs=5 (repeatable; list items by index)")
    parser.add_argument("--debug", action="store_true", help="show tracebacks of user errors")
    return parser


def run(main: Callable[[Optional[Sequence[str]]], object], argv: Optional[List[str]] = None) -> None:
    """Call ``main(argv)``; a :class:`PPNetsError` becomes one stderr line and exit code 2.

    With ``--debug`` the traceback is shown instead. Other exceptions are internal errors
    and keep their traceback.
    """
    argv = list(sys.argv[1:] if argv is None else argv)
    try:
        main(argv)
    except PPNetsError as e:
        if "--debug" in argv:
            raise
        message = " ".join(str(e).split("\n"))
        kind = "interrupted" if getattr(e, "exit_code", 2) == 130 else "error"
        print(f"ppnets: {kind}: {message}", file=sys.stderr)
        sys.exit(getattr(e, "exit_code", 2))
