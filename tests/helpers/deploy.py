"""Shared by the deploy tests: a briefly trained digits model exported to Paddle + ONNX."""
from __future__ import annotations

import json
import os
import socket
import struct
import subprocess
import sys
import time
import zlib
from typing import Dict, List, Optional

from .runs import REPO, load_small_config


def trained_export(digits_slice: str, out_dir: str, formats: str = "[paddle,onnx]", epochs: int = 3,
                   **overrides) -> Dict[str, object]:
    """Train MobileNetV2_x0_25 for ``epochs`` on the 3-class digits slice, export it in ``formats``.

    Returns ``{"cfg", "model_dir", "weights"}``."""
    from ppnets.engine import Trainer
    from ppnets.export import export_model

    cfg = load_small_config(digits_slice, out_dir, **{"Global.epochs": epochs, "Global.save_interval": 0,
                                                      "Global.use_visualdl": False, **overrides})
    Trainer(cfg).train()
    weights = os.path.join(out_dir, cfg["Arch"]["name"], "best_model")
    cfg["Global"]["pretrained_model"] = weights
    cfg["Export"]["formats"] = formats.strip("[]").split(",")
    model_dir = export_model(cfg, os.path.join(out_dir, "inference"))
    return {"cfg": cfg, "model_dir": model_dir, "weights": weights}


_SHARED: Dict[str, Dict[str, object]] = {}


def shared_trained_export(digits_slice: str, tmp_path_factory) -> Dict[str, object]:
    """A :func:`trained_export` made once per test session, for the tests that only read it (the serving
    tests). Trained long enough to tell the digits apart (≈ 90 % on the slice's val images), so
    that different images get clearly different answers."""
    if digits_slice not in _SHARED:
        _SHARED[digits_slice] = trained_export(digits_slice, str(tmp_path_factory.mktemp("shared_export")), epochs=12,
                                               **{"Optimizer.lr.learning_rate": 0.05})
    return _SHARED[digits_slice]


def tool(*args: str, timeout: float = 600) -> subprocess.CompletedProcess:
    """Run ``python tools/...`` from the repository root."""
    return subprocess.run([sys.executable, *args], cwd=REPO, capture_output=True, text=True, timeout=timeout)


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def start_server(model_dir: str, extra: List[str], timeout: float = 120, log: Optional[str] = None) -> tuple:
    """Start ``tools/serve.py`` on a free 127.0.0.1 port; wait for /health. Returns (process, base URL).
    ``log``: a file for the server's output (else a pipe, which a chatty server could fill)."""
    import httpx

    port = free_port()
    out = open(log, "w") if log else subprocess.PIPE
    proc = subprocess.Popen([sys.executable, "tools/serve.py", "--model_dir", model_dir, "--port", str(port), *extra],
                            cwd=REPO, stdout=out, stderr=subprocess.STDOUT, text=True)
    if log:
        out.close()
    url = f"http://127.0.0.1:{port}"
    deadline = time.time() + timeout
    while time.time() < deadline:
        if proc.poll() is not None:
            text = open(log).read() if log else proc.stdout.read()
            raise RuntimeError(f"server exited with {proc.returncode}: {text}")
        try:
            if httpx.get(url + "/health", timeout=2).status_code == 200:
                return proc, url
        except httpx.TransportError:
            time.sleep(0.3)
    proc.kill()
    raise RuntimeError("server did not answer /health in time")


class ThreadServer:
    """The app of ``create_app`` on the real uvicorn server (``ppnets.deploy.serving.make_server``, with
    its protocol and limits) in a thread of the test process, on a free 127.0.0.1 port: no second
    process to start, and the app (``.app``) can be inspected. Its log goes to the ``uvicorn.error``
    logger (pytest's ``caplog``)."""

    def __init__(self, model_dir: str, **app_options) -> None:
        import threading

        from ppnets.deploy.server import create_app
        from ppnets.deploy.serving import listen, make_server

        self.app = create_app(model_dir, **app_options)
        sock = listen("127.0.0.1", 0)
        self.port = sock.getsockname()[1]
        self.url = f"http://127.0.0.1:{self.port}"
        self.server = make_server(self.app, self.app.state.limits, log_config=None, force_exit=False)
        self.thread = threading.Thread(target=self.server.run, kwargs={"sockets": [sock]}, daemon=True)
        self.thread.start()
        deadline = time.time() + 30
        while not self.server.started:
            if time.time() > deadline or not self.thread.is_alive():
                raise RuntimeError("the server thread did not start")
            time.sleep(0.02)

    def stop(self, timeout: float = 30) -> float:
        """Ask for the shutdown (what SIGTERM does); returns the seconds it took."""
        start = time.time()
        self.server.should_exit = True
        self.thread.join(timeout)
        return time.time() - start


# ----------------------------------------------------------------------------- raw HTTP clients
# (for the clients a library would not make: idle, trickling, oversized, disconnecting)
def connect(port: int, data: bytes = b"", timeout: float = 10.0) -> socket.socket:
    s = socket.create_connection(("127.0.0.1", port), timeout=timeout)
    if data:
        s.sendall(data)
    return s


def response(s: socket.socket, data: bytes = b""):
    """``(status, headers, body)`` read until the server closes (after ``data``, already read), or None if
    it closed without answering."""
    try:
        while True:
            chunk = s.recv(65536)
            if not chunk:
                break
            data += chunk
    except (ConnectionResetError, socket.timeout):
        pass
    finally:
        s.close()
    if not data:
        return None
    head, _, body = data.partition(b"\r\n\r\n")
    lines = head.decode("latin1").split("\r\n")
    headers = dict(line.lower().split(": ", 1) for line in lines[1:])
    return int(lines[0].split()[1]), headers, body


def error_of(answer) -> str:
    """The JSON error message of an answer (which must be JSON)."""
    status, headers, body = answer
    assert headers["content-type"].startswith("application/json"), answer
    return json.loads(body)["error"]


def post(path: str, body: bytes, extra: str = "", length=None) -> bytes:
    n = len(body) if length is None else length
    return (f"POST {path} HTTP/1.1\r\nHost: t\r\nContent-Type: image/png\r\nContent-Length: {n}\r\n"
            f"Connection: close\r\n{extra}\r\n").encode() + body


def trickle(port: int, head: bytes, rest: bytes, every: float) -> tuple:
    """Send ``head``, then ``rest`` one byte every ``every`` s until the server answers or closes.
    Returns ``(seconds until then, the answer or None)``."""
    s = connect(port, head, timeout=20)
    start, first = time.time(), b""
    s.settimeout(every)
    try:
        for i in range(len(rest)):
            try:
                first = s.recv(65536)
                break
            except socket.timeout:
                s.sendall(rest[i:i + 1])
    except (BrokenPipeError, ConnectionResetError):
        pass
    elapsed = time.time() - start
    s.settimeout(5)
    return elapsed, (response(s, first) if first else (s.close(), None)[1])


def png_header_only(width: int, height: int) -> bytes:
    """A PNG whose header says ``width``×``height`` (its pixel data is a few bytes: never decodable)."""
    def chunk(kind: bytes, data: bytes) -> bytes:
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data) & 0xFFFFFFFF)
    return (b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0))
            + chunk(b"IDAT", zlib.compress(b"\0" * 16)) + chunk(b"IEND", b""))
