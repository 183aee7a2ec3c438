"""Train a model from a YAML config: ``python tools/train.py -c configs/mobilenetv2.yaml [-o KEY=VALUE ...]``.

The same as ``ppnets train`` (installed with ppnets); the code and ``--help`` are in ``ppnets/cli/train.py``.
"""
from ppnets.cli import run
from ppnets.cli.train import main

if __name__ == "__main__":
    run(main)
