"""Export a trained model to a Paddle inference model (and ONNX): ``python tools/export_model.py -c CONFIG …``.

The same as ``ppnets export`` (installed with ppnets); the code and ``--help`` are in ``ppnets/cli/export.py``.
"""
from ppnets.cli import run
from ppnets.cli.export import main

if __name__ == "__main__":
    run(main)
