"""The ``ppnets`` command: ``ppnets <command> [options]``, one command per tool of ``tools/``, with
the same flags (``ppnets train -c mobilenetv2`` is ``python tools/train.py -c configs/mobilenetv2.yaml``).

Each command's code is ``ppnets/cli/<module>.py``; it is imported only when run, so ``ppnets --help``
and a command whose optional packages are missing stay quick. Installed by ``pip install .`` as a
console script (``[project.scripts]`` in pyproject.toml); ``python -m ppnets`` is the same.
"""
from __future__ import annotations

import importlib
import os
import sys
from typing import List, Optional, Sequence

from ..errors import did_you_mean
from .common import run

__all__ = ["COMMANDS", "main"]

#: command → (module of ppnets.cli, its tools/ script, one line of help)
COMMANDS = {
    "train": ("train", "tools/train.py", "train a model from a YAML config (-c FILE, or a shipped config's name)"),
    "eval": ("eval", "tools/eval.py", "evaluate trained weights: top-1/top-5, per-class accuracy, confusion matrix"),
    "export": ("export", "tools/export_model.py", "export trained weights for deployment (Paddle inference, ONNX)"),
    "predict": ("predict", "tools/predict.py", "classify an image or a folder with an exported model"),
    "serve": ("serve", "tools/serve.py", "serve an exported model over HTTP (needs ppnets[deploy])"),
    "check-data": ("check_data", "tools/check_dataset.py", "check a dataset (counts, bad images, duplicates, "
                                                           "labels, paths); --split writes file lists"),
    "weights": ("weights", "tools/weights.py", "published ImageNet weights: list, download, verify, convert"),
    "analyze": ("analyze", "tools/analyze_model.py", "study an architecture: layer table, MACs, diagram"),
}


def _usage() -> str:
    lines = ["usage: ppnets <command> [options]   (ppnets <command> --help for its options)", "", "commands:"]
    lines += [f"  {name:<11} {summary}" for name, (_, _, summary) in COMMANDS.items()]
    lines += ["", "-c takes a config file or a shipped config's name: mobilenetv2, digits/pplcnet, "
              "ImageNet/MobileNetV2/MobileNetV2_x0_5 …",
              "From a checkout, python tools/<tool>.py takes the same options."]
    return "\n".join(lines)


def main(argv: Optional[Sequence[str]] = None) -> None:
    """Run ``ppnets <command> …``: user errors are one ``ppnets: error:`` line and exit code 2."""
    argv: List[str] = list(sys.argv[1:] if argv is None else argv)
    if not argv or argv[0] in ("-h", "--help"):
        try:
            print(_usage(), file=sys.stdout if argv else sys.stderr, flush=True)
        except BrokenPipeError:  # ppnets --help | head
            os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        sys.exit(0 if argv else 2)
    if argv[0] == "--version":
        from .. import __version__
        print(f"ppnets {__version__}")
        return
    name = argv[0]
    if name not in COMMANDS:
        print(f"ppnets: error: unknown command {name!r}{did_you_mean(name, COMMANDS)}; commands: "
              f"{', '.join(COMMANDS)}", file=sys.stderr)
        sys.exit(2)
    module_name = COMMANDS[name][0]
    try:
        module = importlib.import_module(f"{__package__}.{module_name}")
    except ModuleNotFoundError as e:
        if e.name != f"{__package__}.{module_name}":
            raise
        print(f"ppnets: error: 'ppnets {name}' is not part of this version of ppnets "
              f"(ppnets/cli/{module_name}.py is missing)", file=sys.stderr)
        sys.exit(2)
    prog, sys.argv[0] = sys.argv[0], f"ppnets {name}"  # argparse's usage and errors name the command
    try:
        run(module.main, argv[1:])
    finally:
        sys.argv[0] = prog
