"""Train a model from a YAML config: ``python tools/train.py -c configs/mobilenetv2.yaml [-o KEY=VALUE ...]``."""
import _bootstrap  # noqa: F401

from ppnets.config import load_config
from ppnets.engine import Engine
from ppnets.utils.cli import config_parser, run


def main(argv=None):
    args = config_parser(__doc__).parse_args(argv)
    Engine(load_config(args.config, args.override), mode="train").train()


if __name__ == "__main__":
    run(main)
