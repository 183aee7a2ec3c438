"""Evaluate trained weights on DataLoader.Eval (a folder-per-class dataset or a file list).

``python tools/eval.py -c CONFIG -o Global.pretrained_model=output/MobileNetV2/best_model``

Prints top-1/top-5, per-class accuracy and the confusion matrix, and saves both as CSV
next to the weights' run (``<output_dir>/<Arch.name>/``).
"""

from ppnets.engine.evaluate import run_evaluation
from ppnets.utils.cli import config_parser, load_config_args, run


def main(argv=None):
    args = config_parser(__doc__).parse_args(argv)
    run_evaluation(load_config_args(args))


if __name__ == "__main__":
    run(main)
