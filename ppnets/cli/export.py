"""Export a trained model to a Paddle inference model (inference.json/.pdiparams + inference.yml).

``python tools/export_model.py -c CONFIG -o Global.pretrained_model=output/MobileNetV2/best_model
[-o Global.save_inference_dir=./inference]``
"""

from ppnets.export import export_model
from ppnets.cli import config_parser, load_config_args, run
from ppnets.utils.logger import setup_logger


def main(argv=None):
    args = config_parser(__doc__).parse_args(argv)
    setup_logger()
    export_model(load_config_args(args))


if __name__ == "__main__":
    run(main)
