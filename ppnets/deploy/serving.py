"""Running the app on uvicorn with the server's limits: the listening socket, the open-files limit,
and a shutdown that is bounded in time.

- :func:`listen` binds the socket before the model loads, so a port in use is one line
  (``--port 8000: 127.0.0.1:8000 is already in use …``, exit 2) instead of uvicorn's log and exit 3.
- :func:`ensure_open_files` raises the soft ``ulimit -n`` to what ``max_connections`` needs (or
  says in one line that it cannot), so the accept loop never meets EMFILE.
- :class:`LimitedServer` is uvicorn's server whose SIGTERM/SIGINT (1) marks the app as draining —
  request bodies still arriving are answered 503 at once, new requests too — (2) lets uvicorn wait
  ``graceful_timeout`` for requests being decoded or run, then cancel what remains, and (3) when
  the process still has not ended :data:`~ppnets.deploy.limits.FORCE_EXIT_MARGIN_S` later (a native
  call that never returns), ends it with exit code 1. A completed shutdown exits 0.
"""
from __future__ import annotations

import asyncio
import errno
import logging
import os
import socket
import sys
import threading
from typing import Any, List, Optional

import uvicorn
from uvicorn.config import LOGGING_CONFIG

from ..errors import ConfigError
from .limits import FORCE_EXIT_MARGIN_S, ServerLimits
from .protocol import ConnectionCounters, protocol_class

__all__ = ["listen", "ensure_open_files", "LimitedServer", "make_server", "serve"]

log = logging.getLogger("uvicorn.error")

#: file descriptors the process needs besides its connections (model files, pipes, thread pools' handles)
SPARE_FILES = 128


def listen(host: str, port: int, backlog: int = 128) -> socket.socket:
    """A listening TCP socket on ``host:port`` (port 0: any free port), or a one-line ConfigError."""
    try:
        infos = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM, flags=socket.AI_PASSIVE)
    except socket.gaierror as e:
        raise ConfigError(f"--host: cannot listen on {host!r}: {e.strerror}") from None
    family, kind, proto, _, address = infos[0]
    sock = socket.socket(family, kind, proto)
    try:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.bind(address)
        sock.listen(backlog)
    except OSError as e:
        sock.close()
        if e.errno == errno.EADDRINUSE:
            raise ConfigError(f"--port {port}: {host}:{port} is already in use (another server?); stop it or "
                              "choose another --port") from None
        raise ConfigError(f"--host/--port: cannot listen on {host}:{port}: {e.strerror or e}") from None
    sock.set_inheritable(True)
    return sock


def ensure_open_files(limits: ServerLimits) -> int:
    """Raise the soft limit on open files to what ``max_connections`` needs; return the limit in force."""
    import resource

    need = limits.connection_files + SPARE_FILES
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if soft != resource.RLIM_INFINITY and soft < need:
        if hard == resource.RLIM_INFINITY or hard >= need:
            resource.setrlimit(resource.RLIMIT_NOFILE, (need, hard))
            return need
        raise ConfigError(f"--max_connections {limits.max_connections}: needs {need} open files, but the limit is "
                          f"{hard} (ulimit -n); lower --max_connections or raise the limit")
    return soft


class LimitedServer(uvicorn.Server):
    """uvicorn's server with the draining and bounded shutdown described in the module."""

    def __init__(self, config: uvicorn.Config, app: Any, limits: ServerLimits, force_exit: bool) -> None:
        super().__init__(config)
        self.app, self.limits, self.force_exit_allowed = app, limits, force_exit

    async def startup(self, sockets: Optional[List[socket.socket]] = None) -> None:
        asyncio.get_running_loop().set_exception_handler(_AcceptErrors())
        await super().startup(sockets)

    def handle_exit(self, sig: int, frame: Any) -> None:
        super().handle_exit(sig, frame)
        # uvicorn re-raises the signal once it has shut down (so SIGTERM ends the process as killed by
        # it, SIGINT with a KeyboardInterrupt traceback); a completed graceful shutdown exits 0 instead
        getattr(self, "_captured_signals", []).clear()

    async def shutdown(self, sockets: Optional[List[socket.socket]] = None) -> None:
        draining = getattr(self.app.state, "draining", None)
        if draining is not None:
            draining.set()
        if self.force_exit_allowed:
            timer = threading.Timer(self.limits.graceful_timeout + FORCE_EXIT_MARGIN_S, _force_exit,
                                    args=(self.limits.graceful_timeout + FORCE_EXIT_MARGIN_S,))
            timer.daemon = True
            timer.start()
        await super().shutdown(sockets)
        counters = getattr(self.app.state, "connections", None)
        if counters is not None and any(counters.counts.values()):
            log.info("connections over the run: %s", ", ".join(f"{v} {k.replace('_', ' ')}"
                                                                for k, v in counters.counts.items()))


class _AcceptErrors:
    """The loop's exception handler: asyncio logs every failed ``accept()`` (EMFILE, ENFILE, ENOBUFS) with
    a traceback, then pauses accepting for a second; make that one line, at most every 10 s. Other
    errors: asyncio's default."""

    def __init__(self) -> None:
        self.last = -1e9

    def __call__(self, loop: asyncio.AbstractEventLoop, context: dict) -> None:
        if str(context.get("message", "")).startswith("socket.accept() out of system resource"):
            if loop.time() - self.last >= 10:
                self.last = loop.time()
                log.warning("cannot accept connections for a second: %s (raise ulimit -n or lower "
                            "--max_connections)", context.get("exception"))
            return
        loop.default_exception_handler(context)


def _force_exit(after: float) -> None:
    try:
        log.error("the shutdown did not finish within %g s (--graceful_timeout + %g s); exiting", after,
                  FORCE_EXIT_MARGIN_S)
        sys.stderr.flush()
    finally:
        os._exit(1)


class _QuietCancel:
    """The app, with a request cut off by the shutdown timeout logged as one line instead of uvicorn's
    "Exception in ASGI application" traceback."""

    def __init__(self, app: Any) -> None:
        self.app = app

    async def __call__(self, scope: Any, receive: Any, send: Any) -> None:
        try:
            await self.app(scope, receive, send)
        except asyncio.CancelledError:
            if scope.get("type") != "http":
                raise
            log.warning("a request to %s was cut off by the shutdown (--graceful_timeout)", scope.get("path"))


def make_server(app: Any, limits: ServerLimits, counters: Optional[ConnectionCounters] = None,
                log_config: Any = LOGGING_CONFIG, force_exit: bool = True) -> LimitedServer:
    """The uvicorn server for ``app`` with ``limits`` (run it with ``.run(sockets=[listen(...)])``).
    ``force_exit``: end the process if the shutdown overruns (off for a server run in a thread)."""
    counters = counters or getattr(app.state, "connections", None) or ConnectionCounters()
    config = uvicorn.Config(_QuietCancel(app), http=protocol_class(limits, counters), loop="asyncio", ws="none",
                            lifespan="on", log_config=log_config, log_level="info", access_log=False,
                            timeout_keep_alive=limits.keep_alive, timeout_graceful_shutdown=limits.graceful_timeout,
                            h11_max_incomplete_event_size=limits.max_header_bytes, backlog=limits.backlog)
    return LimitedServer(config, app, limits, force_exit)


def serve(app: Any, host: str, port: int, limits: ServerLimits, sock: Optional[socket.socket] = None) -> None:
    """Serve ``app`` on ``host:port`` (or the already listening ``sock``) until SIGTERM/SIGINT."""
    sock = sock or listen(host, port, limits.backlog)
    server = make_server(app, limits)
    bound = sock.getsockname()
    log.info("serving on http://%s:%d (limits: %s)", host if ":" not in host else f"[{host}]", bound[1],
             ", ".join(f"{k}={v:g}" for k, v in vars(limits).items()))
    server.run(sockets=[sock])
