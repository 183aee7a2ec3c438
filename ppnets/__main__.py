"""``python -m ppnets <command> …``: the ``ppnets`` command (:mod:`ppnets.cli.main`)."""
from .cli.main import main

main()
