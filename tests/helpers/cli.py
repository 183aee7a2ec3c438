"""Running the tools the way their scripts do, for the tests: ``ppnets.cli.run`` around a tool's ``main``,
one ``ppnets: error:`` line per problem and exit code 2."""
from __future__ import annotations

import os

import pytest

from ppnets.cli import run

from .runs import REPO, load_tool, small_overrides

CONFIG = os.path.join(REPO, "configs", "mobilenetv2.yaml")


def tool_main(name):
    """The ``main`` of ``tools/<name>.py``."""
    return load_tool(name).main


def user_errors(tool, args, capsys) -> list:
    """Run ``tools/<tool>.py args`` in-process; assert exit code 2 and only ``ppnets: error:`` lines on
    stderr (one per problem); return them without the prefix."""
    with pytest.raises(SystemExit) as exc:
        run(tool_main(tool), args)
    assert exc.value.code == 2
    lines = capsys.readouterr().err.strip().splitlines()
    assert lines and all(line.startswith("ppnets: error: ") for line in lines), lines
    return [line[len("ppnets: error: "):] for line in lines]


def user_error(tool, args, capsys) -> str:
    """:func:`user_errors` for a single problem: assert one stderr line and return it."""
    lines = user_errors(tool, args, capsys)
    assert len(lines) == 1, lines
    return lines[0]


def train_args(data, out, **extra):
    return ["-c", CONFIG] + [x for o in small_overrides(data, out, **extra) for x in ("-o", o)]
