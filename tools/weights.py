"""Published ImageNet weights: ``python tools/weights.py list|download|verify|convert|docs …``.

The same as ``ppnets weights`` (installed with ppnets); the code and ``--help`` are in ``ppnets/cli/weights.py``.
"""
from ppnets.cli import run
from ppnets.cli.weights import main

if __name__ == "__main__":
    run(main)
