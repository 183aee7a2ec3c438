"""Check a dataset before training on it: ``python tools/check_dataset.py -c CONFIG`` or ``… DATASET_DIR``.

The same as ``ppnets check-data`` (installed with ppnets); the code and ``--help`` are in ``ppnets/cli/check_data.py``.
"""
from ppnets.cli import run
from ppnets.cli.check_data import main

if __name__ == "__main__":
    run(main)
