"""Shared fixtures. The helpers the tests import are in ``tests/helpers/`` (``runs``, ``cli``, ``processes``,
``deploy``, ``models``, ``reference``, ``weights_server``); pytest puts this folder on the path."""
import os

import pytest

from ppnets.cli import run

from helpers.cli import tool_main, train_args
from helpers.runs import make_digits_slice


@pytest.fixture(scope="session")
def digits_slice(tmp_path_factory) -> str:
    """A 3-class slice of the shipped digits dataset (40 train / 10 val images per class)."""
    return make_digits_slice(str(tmp_path_factory.mktemp("digits")))


@pytest.fixture
def data(tmp_path):
    """A private, writable copy of a small digits slice (tests damage it)."""
    return make_digits_slice(str(tmp_path / "data"), n_train=8, n_val=4)


@pytest.fixture(scope="module")
def trained(tmp_path_factory):
    root = tmp_path_factory.mktemp("trained")
    data = make_digits_slice(str(root / "data"), n_train=8, n_val=4)
    out = str(root / "out")
    run(tool_main("train"), train_args(data, out, **{"Global.epochs": 1}))
    return {"data": data, "prefix": os.path.join(out, "MobileNetV2_x0_25", "latest")}


@pytest.fixture(autouse=True)
def fresh_ppnets_logger():
    """Each test starts with the ``ppnets`` logger of a fresh process (no handlers): a tool run in one
    test configures it, and what a later test's tool prints must not depend on the order tests run in
    (pytest-xdist reorders them)."""
    import logging

    yield
    logger = logging.getLogger("ppnets")
    for handler in list(logger.handlers):
        logger.removeHandler(handler)
        handler.close()
    logger.setLevel(logging.NOTSET)
    logger.propagate = True
