"""Train a model from a YAML config: ``python tools/train.py -c configs/mobilenetv2.yaml [-o KEY=VALUE ...]``."""

from ppnets.cli import config_parser, load_config_args, run
from ppnets.engine import Trainer


def main(argv=None):
    args = config_parser(__doc__).parse_args(argv)
    Trainer(load_config_args(args)).train()


if __name__ == "__main__":
    run(main)
