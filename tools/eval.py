"""Evaluate trained weights on DataLoader.Eval: ``python tools/eval.py -c CONFIG -o Global.pretrained_model=…``.

The same as ``ppnets eval`` (installed with ppnets); the code and ``--help`` are in ``ppnets/cli/eval.py``.
"""
from ppnets.cli import run
from ppnets.cli.eval import main

if __name__ == "__main__":
    run(main)
