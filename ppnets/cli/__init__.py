"""The command line: the plumbing shared by ``tools/*.py`` (``-c/-o/--print-config/--debug`` and the
user-error exit path)."""
from .common import config_parser, load_config_args, run

__all__ = ["config_parser", "load_config_args", "run"]
