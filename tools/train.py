"""Train a model from a YAML config: ``python tools/train.py -c configs/mobilenetv2.yaml [-o KEY=VALUE ...]``."""

from ppnets.engine import Engine
from ppnets.utils.cli import config_parser, load_config_args, run


def main(argv=None):
    args = config_parser(__doc__).parse_args(argv)
    Engine(load_config_args(args), mode="train").train()


if __name__ == "__main__":
    run(main)
