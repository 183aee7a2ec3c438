"""Command-line plumbing shared by ``tools/*.py``: ``-c/-o/--print-config/--debug`` and the user-error exit path."""
from __future__ import annotations

import argparse
import sys
from typing import Any, Callable, Dict, List, Optional, Sequence

import yaml

from ..config import load_config
from ..deploy.inputs import BAD_IMAGE_POLICIES
from ..config.yaml_io import _plain
from ..errors import PPNetsError

__all__ = ["config_parser", "load_config_args", "run", "add_bad_image_arg", "BadImages"]


def config_parser(description: str) -> argparse.ArgumentParser:
    """An ArgumentParser with PaddleClas's ``-c CONFIG`` and repeatable ``-o Section.key=value``."""
    parser = argparse.ArgumentParser(description=description)
    parser.add_argument("-c", "--config", required=True, help="YAML config file (ppnets's or PaddleClas's)")
    parser.add_argument("-o", "--override", action="append", default=[], metavar="KEY=VALUE",
                        help="override a config key: -o Global.epochs=5, list items by index "
                             "(…transform_ops.1.RandCropImage.size=64), append with "
                             "'…transform_ops.+={ToCHWImage: null}', delete with '~Section.key' (repeatable)")
    parser.add_argument("--print-config", action="store_true",
                        help="print the resolved config (ppnets's keys, defaults filled) and exit")
    parser.add_argument("--trust-pickles", action="store_true",
                        help="same as -o Global.trust_pickles=true: read weights/checkpoint pickles with Paddle's "
                             "unrestricted loader (can run code from the file; only for files you trust)")
    parser.add_argument("--debug", action="store_true", help="show tracebacks of user errors")
    return parser


def load_config_args(args: argparse.Namespace) -> Dict[str, Any]:
    """Load ``args.config`` with ``args.override``; with ``--print-config`` print it and exit 0."""
    overrides = list(args.override) + (["Global.trust_pickles=true"] if getattr(args, "trust_pickles", False) else [])
    cfg = load_config(args.config, overrides)
    if getattr(args, "print_config", False):
        for notice in cfg.notices:
            print(f"# notice: {notice}")
        print(yaml.safe_dump(_plain(cfg), sort_keys=False, allow_unicode=True), end="")
        sys.exit(0)
    return cfg


def run(main: Callable[[Optional[Sequence[str]]], object], argv: Optional[List[str]] = None) -> None:
    """Call ``main(argv)``; a :class:`PPNetsError` becomes stderr lines ``ppnets: error: …`` and exit code 2.

    An error that lists several problems (a config with three mistakes) prints one line each.
    With ``--debug`` the traceback is shown instead. Other exceptions are internal errors and keep
    their traceback.
    """
    argv = list(sys.argv[1:] if argv is None else argv)
    try:
        main(argv)
    except PPNetsError as e:
        if "--debug" in argv:
            raise
        kind = "interrupted" if getattr(e, "exit_code", 2) == 130 else "error"
        lines = [line for line in str(e).split("\n") if line.strip()] or [type(e).__name__]
        try:
            for line in lines:
                print(f"ppnets: {kind}: {line}", file=sys.stderr)
        except OSError:  # stderr is gone (a closed terminal after SIGHUP): the exit code still tells
            pass
        sys.exit(getattr(e, "exit_code", 2))


def add_bad_image_arg(parser: argparse.ArgumentParser) -> None:
    """``--bad-image skip|warn|error`` of the tools that classify a folder (tools/predict.py, tools/infer.py)."""
    parser.add_argument("--bad-image", default="warn", choices=BAD_IMAGE_POLICIES,
                        help="a file that cannot be read or decoded: warn = results for the others, one "
                             "'ppnets: warning:' line per bad file, exit 1 (default); skip = results for the "
                             "others, exit 0; error = stop at the first, exit 2")


class BadImages:
    """The ``--bad-image`` policy: :attr:`on_bad` goes to :func:`~ppnets.deploy.inputs.classify_files`,
    :meth:`finish` ends the command with exit 1 when a file was bad and ``warn`` was asked for."""

    def __init__(self, policy: str) -> None:
        self.policy = policy
        self.bad: List[str] = []

    @property
    def on_bad(self) -> Optional[Callable[[str, str], None]]:
        return None if self.policy == "error" else self._record

    def _record(self, path: str, message: str) -> None:
        self.bad.append(path)
        if self.policy == "warn":
            print(f"ppnets: warning: {message}", file=sys.stderr, flush=True)

    def finish(self) -> None:
        sys.stdout.flush()
        if self.bad and self.policy == "warn":
            sys.exit(1)
