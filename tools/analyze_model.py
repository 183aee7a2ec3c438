"""Study one architecture (layer table, roll-ups, diagram): ``python tools/analyze_model.py --model NAME``.

The same as ``ppnets analyze`` (installed with ppnets); the code and ``--help`` are in ``ppnets/cli/analyze.py``.
"""
from ppnets.cli import run
from ppnets.cli.analyze import main

if __name__ == "__main__":
    run(main)
