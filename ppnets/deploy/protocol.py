"""The server's connections: uvicorn's h11 protocol with deadlines and a connection cap.

uvicorn's own limits leave gaps that matter on the internet: a connection that never sends a
complete request line and headers is never closed (``timeout_keep_alive`` starts only after a
first response, and any byte received stops it), and ``limit_concurrency`` answers its 503 (plain
text, without ``Retry-After``) only once a request has arrived — connections beyond it keep their
socket meanwhile, so 1,100 idle ones exhaust ``ulimit -n 1024``. :func:`protocol_class` gives a
protocol that adds:

- a **header deadline** (``header_timeout``): from the moment a connection opens, or its previous
  response is complete, it has that long to deliver a whole request line and headers; then it is
  answered 408 (if it had sent part of one) and closed;
- a **connection cap** (``max_connections``): a connection beyond it makes room by closing the
  connection that has waited longest for a request (it has nothing in progress); if every
  connection has a request in progress, the new one is answered 503 with ``Retry-After`` and
  closed (sockets beyond :data:`OVERFLOW_CONNECTIONS` more are closed at once). The same 503
  answers a request while ``max_connections`` requests are in progress (requests whose client has
  gone still count until they finish);
- a cap on the request line and headers (``max_header_kb``): 431, both for headers arriving in
  pieces (h11's ``max_incomplete_event_size``) and for ones arriving in one read (which h11 parses
  whatever their size, so their parsed size is checked before the app runs);
- JSON for the errors uvicorn answers itself: a malformed request (400).

Events are counted in :class:`ConnectionCounters` (shown by ``GET /model``), and logged at most
once per :data:`LOG_EVERY_S` seconds, so a flood of connections cannot flood the log.
"""
from __future__ import annotations

import json
import logging
import time
from typing import Any, Dict, Optional

import h11
from uvicorn.protocols.http.h11_impl import H11Protocol

from .limits import OVERFLOW_CONNECTIONS, ServerLimits

__all__ = ["protocol_class", "ConnectionCounters", "json_response_bytes", "LOG_EVERY_S"]

log = logging.getLogger("uvicorn.error")

#: the shortest interval between two log lines about refused, closed or timed-out connections
LOG_EVERY_S = 10.0
#: seconds a connection accepted beyond the cap has to send its request (to be answered 503)
REFUSED_DEADLINE_S = 2.0


class ConnectionCounters:
    """Counts of what the protocol did, for ``GET /model`` and the throttled log line."""

    def __init__(self) -> None:
        self.connections: Optional[set] = None  # uvicorn's set of open connections, once one was made
        self.counts: Dict[str, int] = {"refused": 0, "closed_idle": 0, "header_timeouts": 0, "bad_requests": 0}
        self._logged: Dict[str, int] = dict(self.counts)
        self._last_log = 0.0

    @property
    def open(self) -> int:
        return len(self.connections) if self.connections is not None else 0

    def count(self, what: str) -> None:
        self.counts[what] += 1
        now = time.monotonic()
        if now - self._last_log >= LOG_EVERY_S:
            news = {k: v - self._logged[k] for k, v in self.counts.items() if v > self._logged[k]}
            self._logged, self._last_log = dict(self.counts), now
            log.warning("connections: %s (%d open)", ", ".join(f"{v} {k.replace('_', ' ')}" for k, v in news.items()),
                        self.open)

    def as_dict(self) -> Dict[str, int]:
        return {"open": self.open, **self.counts}


def json_response_bytes(status: int, message: str, headers: Optional[Dict[str, str]] = None) -> bytes:
    """A whole HTTP/1.1 response ``{"error": message}`` with ``Connection: close``, as bytes."""
    body = json.dumps({"error": message}).encode()
    reason = {400: "Bad Request", 408: "Request Timeout", 431: "Request Header Fields Too Large",
              503: "Service Unavailable"}.get(status, "Error")
    lines = [f"HTTP/1.1 {status} {reason}", "content-type: application/json", f"content-length: {len(body)}",
             "connection: close"] + [f"{k}: {v}" for k, v in (headers or {}).items()]
    return ("\r\n".join(lines) + "\r\n\r\n").encode() + body


def _refusal_app(limits: ServerLimits):
    message = (f"the server is at its limit of {limits.max_connections} connections or requests in progress "
               "(--max_connections); retry shortly")

    async def refuse(scope: Dict[str, Any], receive, send) -> None:
        body = json.dumps({"error": message}).encode()
        await send({"type": "http.response.start", "status": 503,
                    "headers": [(b"content-type", b"application/json"), (b"content-length", str(len(body)).encode()),
                                (b"retry-after", b"1"), (b"connection", b"close")]})
        await send({"type": "http.response.body", "body": body, "more_body": False})
    return refuse


def _header_guard(app: Any, limits: ServerLimits):
    """``app`` behind a check of the request line and headers' size: h11's ``max_incomplete_event_size``
    stops only headers that arrive in several pieces, not ones that arrive in one read."""
    limit = limits.max_header_bytes

    async def guarded(scope: Dict[str, Any], receive, send) -> None:
        size = len(scope.get("raw_path", b"")) + len(scope.get("query_string", b"")) + \
            sum(len(k) + len(v) + 4 for k, v in scope.get("headers", ()))
        if scope.get("type") == "http" and size > limit:
            body = json.dumps({"error": f"the request line and headers are larger than {limits.max_header_kb:g} KiB "
                                        "(--max_header_kb)"}).encode()
            await send({"type": "http.response.start", "status": 431,
                        "headers": [(b"content-type", b"application/json"),
                                    (b"content-length", str(len(body)).encode()), (b"connection", b"close")]})
            await send({"type": "http.response.body", "body": body, "more_body": False})
            return
        await app(scope, receive, send)
    return guarded


class GuardedH11Protocol(H11Protocol):
    """uvicorn's h11 protocol with the header deadline and the connection cap (see the module)."""

    limits: ServerLimits = ServerLimits()
    counters: ConnectionCounters = ConnectionCounters()
    refusal_app: Any = None

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._app = _header_guard(self.app, self.limits)
        self._header_timer: Any = None
        self._waiting_since: Optional[float] = None  # loop time since which it waits for a request
        self._received = False                       # bytes of a new request have arrived
        self._refused = False

    # -- connection life
    def connection_made(self, transport) -> None:  # type: ignore[override]
        super().connection_made(transport)
        if self.counters.connections is None:
            self.counters.connections = self.connections
        self._start_waiting()
        if len(self.connections) > self.limits.max_connections and not self._close_longest_waiting():
            self._refused = True
            self.counters.count("refused")
            overflow = sum(1 for c in self.connections if getattr(c, "_refused", False))
            if overflow > OVERFLOW_CONNECTIONS:
                self.transport.close()
                return
            self._arm(min(REFUSED_DEADLINE_S, self.limits.header_timeout))

    def connection_lost(self, exc: Optional[Exception]) -> None:
        self._disarm()
        super().connection_lost(exc)

    def data_received(self, data: bytes) -> None:
        if self._waiting_since is not None:
            self._received = True
        super().data_received(data)

    def handle_events(self) -> None:
        at_cap = self._refused or len(self.tasks) >= self.limits.max_connections
        self.app = self.refusal_app if at_cap else self._app
        before = self.cycle
        super().handle_events()
        if self.cycle is not before and self.cycle is not None:  # a request's headers are complete
            self._disarm()
            self._waiting_since = None

    def on_response_complete(self) -> None:
        if not self.transport.is_closing():
            self._start_waiting()  # before uvicorn goes on with a pipelined request
        super().on_response_complete()

    def shutdown(self) -> None:
        """uvicorn's graceful close; a connection already closing (or whose h11 state is an error) just closes."""
        self._disarm()
        if self.transport.is_closing():
            return
        try:
            super().shutdown()
        except h11.LocalProtocolError:
            self.transport.close()

    def send_400_response(self, msg: str) -> None:
        self.counters.count("bad_requests")
        buffered = len(self.conn.trailing_data[0])
        if buffered > self.limits.max_header_bytes:
            status, message = 431, (f"the request line and headers are larger than {self.limits.max_header_kb:g} KiB "
                                    "(--max_header_kb)")
        else:
            status, message = 400, "malformed HTTP request"
        self._disarm()
        if not self.transport.is_closing():
            self.transport.write(json_response_bytes(status, message))
            self.transport.close()

    # -- the header deadline and the cap
    def _start_waiting(self) -> None:
        self._waiting_since = self.loop.time()
        self._received = False
        self._arm(self.limits.header_timeout)

    def _arm(self, seconds: float) -> None:
        self._disarm()
        self._header_timer = self.loop.call_later(seconds, self._header_deadline)

    def _disarm(self) -> None:
        if self._header_timer is not None:
            self._header_timer.cancel()
            self._header_timer = None

    def _header_deadline(self) -> None:
        self._header_timer = None
        if self.transport.is_closing() or self._waiting_since is None:
            return
        self.counters.count("header_timeouts")
        if self._received and self.conn.our_state is h11.IDLE:
            self.transport.write(json_response_bytes(
                408, f"the request line and headers did not arrive within {self.limits.header_timeout:g} s "
                     "(--header_timeout)"))
        self.transport.close()

    def _close_longest_waiting(self) -> bool:
        """Close the connection that has waited longest for a request (not this one); False if none waits."""
        waiting = [c for c in self.connections if c is not self and getattr(c, "_waiting_since", None) is not None
                   and not c.transport.is_closing()]
        if not waiting:
            return False
        victim = min(waiting, key=lambda c: c._waiting_since)
        victim._disarm()
        victim.transport.close()
        self.counters.count("closed_idle")
        return True


def protocol_class(limits: ServerLimits, counters: ConnectionCounters) -> type:
    """A :class:`GuardedH11Protocol` subclass bound to these limits and counters (uvicorn's ``http=``)."""
    return type("PPNetsH11Protocol", (GuardedH11Protocol,),
                {"limits": limits, "counters": counters, "refusal_app": staticmethod(_refusal_app(limits))})
