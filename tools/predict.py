"""Classify images with an exported model: ``python tools/predict.py --model_dir ./inference --image IMAGE_OR_FOLDER``.

The same as ``ppnets predict`` (installed with ppnets); the code and ``--help`` are in ``ppnets/cli/predict.py``.
"""
from ppnets.cli import run
from ppnets.cli.predict import main

if __name__ == "__main__":
    run(main)
