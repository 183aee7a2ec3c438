"""Benchmark variants in their own processes, timed in interleaved rounds by the parent.

A :class:`Worker` starts ``python workers.py`` (this file, run as a script: it imports
nothing of ppnets, so a PyTorch variant's process never loads Paddle and the two OpenMP
runtimes never share a process), sends it a factory and a JSON spec, and the worker builds
the runner (``factory(spec)``: a no-argument callable, optionally with an ``info`` dict).
Then each call of the :class:`Worker` runs the runner once in the worker process and
returns the seconds the worker measured as :class:`~ppnets.utils.timing.Timed`, so
:func:`~ppnets.utils.timing.interleaved` counts them without the round trip.

The factory is ``"package.module:function"`` (imported normally) or ``"file.py:function"``
(loaded from that file without importing its package). Protocol: one JSON line per message
on the worker's stdin/stdout; everything else the worker prints goes to ``log_path``. The
runner's ``info`` reaches the parent with the worker's ``pid`` and whether it loaded Paddle. A
runner with a ``pause_s`` attribute is preceded by that many seconds of sleep before each timed
call (the previous variant's spinning thread pools settle), not counted.
"""
from __future__ import annotations

import importlib
import importlib.util
import json
import os
import subprocess
import sys
import time
import traceback
from typing import Any, Callable, Dict, Optional

__all__ = ["Worker", "WorkerError"]


class WorkerError(RuntimeError):
    """A worker failed to build or run its variant (the message ends with its log's last lines)."""


class Worker:
    """One variant in its own process (see the module docstring); close it with :meth:`close`."""

    def __init__(self, factory: str, spec: Dict[str, Any], log_path: str, env: Optional[Dict[str, str]] = None
                 ) -> None:
        self.factory, self.log_path = factory, log_path
        self.info: Dict[str, Any] = {}
        full_env = dict(os.environ)
        full_env.update(env or {})
        root = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
        full_env["PYTHONPATH"] = os.pathsep.join(p for p in (root, full_env.get("PYTHONPATH")) if p)
        full_env.setdefault("GLOG_minloglevel", "2")
        os.makedirs(os.path.dirname(os.path.abspath(log_path)), exist_ok=True)
        self._log = open(log_path, "w", encoding="utf-8")
        self.proc = subprocess.Popen([sys.executable, os.path.abspath(__file__)], stdin=subprocess.PIPE,
                                     stdout=subprocess.PIPE, stderr=self._log, text=True, env=full_env)
        self._ready = False
        self._send({"factory": factory, "spec": spec})

    def _send(self, message: Any) -> None:
        try:
            self.proc.stdin.write(json.dumps(message) + "\n")
            self.proc.stdin.flush()
        except BrokenPipeError:
            raise self._error("exited") from None

    def _receive(self) -> Dict[str, Any]:
        line = self.proc.stdout.readline()
        if not line:
            raise self._error("exited")
        reply = json.loads(line)
        if "error" in reply:
            raise self._error(reply["error"])
        return reply

    def _error(self, what: str) -> WorkerError:
        self._log.flush()
        try:
            with open(self.log_path, encoding="utf-8", errors="replace") as f:
                tail = [ln.rstrip() for ln in f.readlines()[-8:] if ln.strip()]
        except OSError:
            tail = []
        return WorkerError(f"benchmark worker {self.factory}: {what}" + ("; log " + self.log_path + ":\n"
                                                                        + "\n".join(tail) if tail else ""))

    def wait_ready(self) -> Dict[str, Any]:
        """Wait until the runner is built; returns its ``info`` (versions, settings …)."""
        if not self._ready:
            self.info = self._receive().get("info", {})
            self._ready = True
        return self.info

    def __call__(self) -> float:
        self.wait_ready()
        self._send("run")
        from ..utils.timing import Timed   # here, not at the top: this file also runs as a script (the worker)
        return Timed(self._receive()["seconds"])

    def close(self) -> None:
        """Stop the worker (killed if it does not exit within 10 s)."""
        if self.proc.poll() is None:
            try:
                self._send("exit")
                self.proc.wait(timeout=10)
            except (WorkerError, subprocess.TimeoutExpired):
                self.proc.kill()
                self.proc.wait()
        for stream in (self.proc.stdin, self.proc.stdout, self._log):
            stream.close()

    def __enter__(self) -> "Worker":
        return self

    def __exit__(self, *exc: Any) -> None:
        self.close()


def _load_factory(factory: str) -> Callable[[Dict[str, Any]], Callable[[], Any]]:
    where, name = factory.rsplit(":", 1)
    if where.endswith(".py"):
        spec = importlib.util.spec_from_file_location(f"_bench_factory_{os.getpid()}", where)
        module = importlib.util.module_from_spec(spec)
        spec.loader.exec_module(module)
    else:
        module = importlib.import_module(where)
    return getattr(module, name)


def _serve() -> int:
    """The worker process: build the runner, then time it on every ``"run"``."""
    out = os.fdopen(os.dup(1), "w", buffering=1, encoding="utf-8")
    os.dup2(2, 1)  # what the runner prints goes to the log, not into the protocol

    def reply(message: Dict[str, Any]) -> None:
        out.write(json.dumps(message) + "\n")

    request = json.loads(sys.stdin.readline())
    try:
        runner = _load_factory(request["factory"])(request["spec"])
        if not callable(runner):
            raise TypeError(f"{request['factory']} returned {type(runner).__name__}, not a callable")
    except Exception as e:  # reported to the parent, which raises it
        traceback.print_exc()
        reply({"error": f"{type(e).__name__}: {e}"})
        return 1
    info = {"pid": os.getpid(), "paddle_loaded": "paddle" in sys.modules}
    info.update(getattr(runner, "info", {}))
    reply({"ready": True, "info": info})
    pause = float(getattr(runner, "pause_s", 0.0))
    for line in sys.stdin:
        if json.loads(line) != "run":
            break
        try:
            if pause:
                time.sleep(pause)
            tic = time.perf_counter()
            runner()
            reply({"seconds": time.perf_counter() - tic})
        except Exception as e:
            traceback.print_exc()
            reply({"error": f"{type(e).__name__}: {e}"})
            return 1
    return 0


if __name__ == "__main__":
    del sys.path[0]  # this file's folder: its modules (data.py, train.py …) must not shadow top-level ones
    sys.exit(_serve())
