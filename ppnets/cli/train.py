"""Train a model from a YAML config: ``ppnets train -c mobilenetv2 [-o KEY=VALUE ...]``, or from a checkout
``python tools/train.py -c configs/mobilenetv2.yaml``. ``-c`` takes a file or a shipped config's name
(``mobilenetv2``, ``digits/pplcnet``, ``ImageNet/MobileNetV3/MobileNetV3_small_x1_0``)."""

from ..engine import Trainer
from .common import config_parser, load_config_args


def main(argv=None):
    args = config_parser(__doc__).parse_args(argv)
    Trainer(load_config_args(args)).train()

