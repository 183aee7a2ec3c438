"""Serve an exported model over HTTP: ``python tools/serve.py --model_dir ./inference [--port 8000]``.

The same as ``ppnets serve`` (installed with ppnets); the code and ``--help`` are in ``ppnets/cli/serve.py``.
"""
from ppnets.cli import run
from ppnets.cli.serve import main

if __name__ == "__main__":
    run(main)
