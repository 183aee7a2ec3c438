"""The conv backend: Global.conv_backend, its resolution and fallback, and the oneDNN loader."""
from __future__ import annotations

import logging
import os
import subprocess
import sys

import pytest

from helpers.runs import REPO, load_small_config, small_overrides
from ppnets.arch import backend, onednn
from ppnets.arch.onednn import runtime
from ppnets.config import load_config
from ppnets.errors import ConfigError


class _Lines(logging.Handler):
    def __init__(self):
        super().__init__()
        self.records = []

    def emit(self, record):
        self.records.append(record)


@pytest.fixture
def log():
    logger = logging.getLogger("test_backend")
    handler = _Lines()
    logger.setLevel(logging.DEBUG)
    logger.addHandler(handler)
    yield logger, handler.records
    logger.removeHandler(handler)


def test_resolve_names_the_kernels_of_each_setting(log, monkeypatch):
    logger, records = log
    assert backend.resolve("paddle", "cpu", logger) == "paddle"
    assert backend.resolve("auto", "gpu", logger) == "paddle"
    assert records == []
    assert backend.resolve("onednn", "gpu", logger) == "paddle"
    assert len(records) == 1 and "CPU only" in records[0].getMessage()
    if onednn.available():
        assert backend.resolve("auto", "cpu") == backend.resolve("onednn", "cpu") == "onednn"
    with pytest.raises(ConfigError, match="Global.conv_backend: unknown backend 'fast'; valid: auto, onednn, paddle"):
        backend.resolve("fast")


@pytest.mark.parametrize("why, level", [("disabled by PPNETS_ONEDNN=0", logging.INFO),
                                        ("oneDNN unavailable: libdnnl.so.3: cannot open", logging.WARNING)])
def test_unavailable_onednn_falls_back_to_paddle_with_one_line(log, monkeypatch, why, level):
    logger, records = log
    monkeypatch.setattr(runtime, "_runtime", None)
    monkeypatch.setattr(runtime, "_reason", why)
    assert not onednn.available()
    assert backend.resolve("auto", "cpu", logger) == "paddle"
    assert [(r.levelno, r.getMessage()) for r in records] == [
        (level, f"Global.conv_backend: auto: {why}; using Paddle's convolution kernels")]


def test_loader_reports_a_missing_wrong_or_other_version_library_without_raising(monkeypatch, tmp_path):
    rt, why = runtime.load(str(tmp_path / "libdnnl.so.3"))
    assert rt is None and why.startswith("oneDNN unavailable: ") and "libdnnl.so.3" in why
    fake = tmp_path / "libfake.so"
    fake.write_bytes(b"\x7fELF not really")
    rt, why = runtime.load(str(fake))
    assert rt is None and "libfake.so" in why
    rt, why = runtime.load("libgomp.so.1")  # a real library without oneDNN's symbols
    assert rt is None and "dnnl_version" in why
    if onednn.available():
        monkeypatch.setattr(runtime, "BINDING_VERSION", (3, 99))
        rt, why = runtime.load(runtime.library_path())
        assert rt is None and f"is oneDNN {onednn.version()}; the binding is written for 3.99" in why
    monkeypatch.setenv(runtime.LIBRARY_ENV, "/elsewhere/libdnnl.so.3")
    assert runtime.library_path() == "/elsewhere/libdnnl.so.3"


def test_config_key_is_checked():
    assert load_config(os.path.join(REPO, "configs", "mobilenetv2.yaml"))["Global"]["conv_backend"] == "auto"
    with pytest.raises(ConfigError, match="conv_backend"):
        load_config(os.path.join(REPO, "configs", "mobilenetv2.yaml"), ["Global.conv_backend=mkl"])


_TRAIN = """
import sys
from ppnets.config import load_config
from ppnets.engine import Trainer
cfg = load_config(sys.argv[1], sys.argv[2:])
engine = Trainer(cfg)
print("BACKEND", engine.conv_backend)
print("LOSS", engine.train()["eval"]["loss"])
"""


@pytest.mark.parametrize("env", [{runtime.LIBRARY_ENV: "/nonexistent/libdnnl.so.3"},
                                 {runtime.LIBRARY_ENV: "libgomp.so.1"}, {"PPNETS_ONEDNN": "0"}])
def test_training_without_a_usable_onednn_runs_on_paddle_kernels(digits_slice, tmp_path, env):
    overrides = small_overrides(digits_slice, str(tmp_path), **{"Global.epochs": 1, "Global.print_batch_step": 100})
    proc = subprocess.run([sys.executable, "-c", _TRAIN, os.path.join(REPO, "configs", "mobilenetv2.yaml"),
                           *overrides], capture_output=True, text=True, timeout=300,
                          env=dict(os.environ, PYTHONPATH=REPO, **env))
    assert proc.returncode == 0, proc.stderr[-2000:]
    lines = proc.stdout.splitlines()
    assert "BACKEND paddle" in lines and any(line.startswith("LOSS ") for line in lines)
    notes = [line for line in lines if "conv_backend" in line]
    assert len(notes) == 1 and "using Paddle's convolution kernels" in notes[0]
    assert "Traceback" not in proc.stderr


def test_engine_runs_its_passes_on_its_backend(digits_slice, tmp_path, monkeypatch):
    from ppnets.engine import Trainer
    seen = []
    import ppnets.arch.layers as layers
    real = layers.FastConv2D.forward

    def spy(self, x):
        seen.append(backend.active())
        return real(self, x)

    monkeypatch.setattr(layers.FastConv2D, "forward", spy)
    for name in ("paddle", "auto"):
        seen.clear()
        cfg = load_small_config(digits_slice, str(tmp_path / name), **{"Global.epochs": 1,
                                                                       "Global.conv_backend": name})
        engine = Trainer(cfg)
        engine.train()
        want = backend.resolve(name)
        assert engine.conv_backend == want and seen and set(seen) == {want}
    assert backend.active() == "paddle"  # nothing leaks out of the engine
