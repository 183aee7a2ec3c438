"""The command line: the ``ppnets`` command (:mod:`~ppnets.cli.main`), the code of each command
(``train``, ``eval``, ``export``, ``predict``, ``serve``, ``check_data``, ``analyze``; ``tools/*.py``
are thin scripts over them), and the plumbing they share (``-c/-o/--print-config/--debug``, the
user-error exit path, ``--bad-image``)."""
from .common import config_parser, load_config_args, run

__all__ = ["config_parser", "load_config_args", "run"]
