"""Shared by the deploy tests: a briefly trained digits model exported to Paddle + ONNX."""
from __future__ import annotations

import os
import socket
import subprocess
import sys
import time
from typing import Dict, List

from conftest import REPO, load_small_config


def trained_export(digits_slice: str, out_dir: str, formats: str = "[paddle,onnx]") -> Dict[str, object]:
    """Train MobileNetV2_x0_25 for 3 epochs on the 3-class digits slice, export it in ``formats``.

    Returns ``{"cfg", "model_dir", "weights"}``."""
    from ppnets.engine import Trainer
    from ppnets.export import export_model

    cfg = load_small_config(digits_slice, out_dir, **{"Global.epochs": 3, "Global.save_interval": 0,
                                                      "Global.use_visualdl": False})
    Trainer(cfg).train()
    weights = os.path.join(out_dir, cfg["Arch"]["name"], "best_model")
    cfg["Global"]["pretrained_model"] = weights
    cfg["Export"]["formats"] = formats.strip("[]").split(",")
    model_dir = export_model(cfg, os.path.join(out_dir, "inference"))
    return {"cfg": cfg, "model_dir": model_dir, "weights": weights}


def tool(*args: str, timeout: float = 600) -> subprocess.CompletedProcess:
    """Run ``python tools/...`` from the repository root."""
    return subprocess.run([sys.executable, *args], cwd=REPO, capture_output=True, text=True, timeout=timeout)


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def start_server(model_dir: str, extra: List[str], timeout: float = 120) -> tuple:
    """Start ``tools/serve.py`` on a free 127.0.0.1 port; wait for /health. Returns (process, base URL)."""
    import httpx

    port = free_port()
    proc = subprocess.Popen([sys.executable, "tools/serve.py", "--model_dir", model_dir, "--port", str(port), *extra],
                            cwd=REPO, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    url = f"http://127.0.0.1:{port}"
    deadline = time.time() + timeout
    while time.time() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(f"server exited with {proc.returncode}: {proc.stdout.read()}")
        try:
            if httpx.get(url + "/health", timeout=2).status_code == 200:
                return proc, url
        except httpx.TransportError:
            time.sleep(0.3)
    proc.kill()
    raise RuntimeError("server did not answer /health in time")
