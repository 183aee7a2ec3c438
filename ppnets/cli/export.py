"""Export a trained model to a Paddle inference model (inference.json/.pdiparams + inference.yml).

``ppnets export -c CONFIG -o Global.pretrained_model=output/MobileNetV2/best_model
[-o Global.save_inference_dir=./inference] [-o 'Export.formats=[paddle,onnx]']`` (or
``python tools/export_model.py …``). ONNX needs the deploy extra: ``pip install 'ppnets[deploy]'``.
"""

from ..export import export_model
from ..utils.logger import setup_logger
from .common import config_parser, load_config_args


def main(argv=None):
    args = config_parser(__doc__).parse_args(argv)
    setup_logger()
    export_model(load_config_args(args))

