"""The HTTP server's limits (``tools/serve.py``): their defaults, their checks, and the budgets that
bound what the server holds in memory at once.

Every limit is a field of :class:`ServerLimits` and a flag of ``tools/serve.py`` of the same name
(:data:`LIMIT_FLAGS` gives its help text); ``docs/reliability.md`` ("Server limits") lists them with
their defaults and what a client sees past each.
"""
from __future__ import annotations

import math
from dataclasses import dataclass, fields
from typing import Dict, Tuple

from ..errors import ConfigError

__all__ = ["ServerLimits", "LIMIT_FLAGS", "Budget", "FORCE_EXIT_MARGIN_S", "OVERFLOW_CONNECTIONS"]

#: seconds past ``graceful_timeout`` after which a server that still has not exited ends itself
FORCE_EXIT_MARGIN_S = 5.0
#: connections accepted beyond ``max_connections`` only to answer them 503 (when no idle one can be
#: closed to make room); past these the socket is closed at once
OVERFLOW_CONNECTIONS = 32


@dataclass(frozen=True)
class ServerLimits:
    """What the server accepts; the defaults are those of ``tools/serve.py``."""

    max_mb: float = 8.0             #: largest request body (MiB) → 413
    max_mpx: float = 40.0           #: largest image (megapixels, read from its header) → 413
    decode_mpx: float = 80.0        #: megapixels being decoded at once → 503 + Retry-After
    buffer_mb: float = 64.0         #: request bodies being received at once (MiB) → 503 + Retry-After
    max_connections: int = 256      #: open connections (and requests in progress) → 503 + Retry-After
    header_timeout: float = 10.0    #: seconds to receive a request's line and headers → 408 / closed
    body_timeout: float = 30.0      #: seconds to receive a request's body → 408
    keep_alive: float = 5.0         #: seconds an idle keep-alive connection stays open (uvicorn)
    max_header_kb: float = 16.0     #: largest request line + headers (KiB, h11) → 431
    graceful_timeout: float = 10.0  #: seconds SIGTERM waits for requests in progress (uvicorn)

    @property
    def max_bytes(self) -> int:
        return int(self.max_mb * 2 ** 20)

    @property
    def max_pixels(self) -> int:
        return int(self.max_mpx * 1e6)

    @property
    def decode_pixels(self) -> int:
        return int(self.decode_mpx * 1e6)

    @property
    def buffer_bytes(self) -> int:
        return int(self.buffer_mb * 2 ** 20)

    @property
    def max_header_bytes(self) -> int:
        return int(self.max_header_kb * 1024)

    @property
    def backlog(self) -> int:
        """The listen backlog, which is also how many connections asyncio accepts in one pass of its
        loop (``max_connections`` / 2, 64 to 512: below 64, a burst of new connections overflows the
        kernel's queue and waits a second for the retransmitted SYN)."""
        return min(512, max(64, self.max_connections // 2))

    @property
    def connection_files(self) -> int:
        """The most sockets the server holds: ``max_connections``, the :data:`OVERFLOW_CONNECTIONS`
        answered 503, and three accept passes — asyncio accepts a pass of ``backlog`` connections,
        creates their protocols a pass later and closes the idle ones they displace a pass after
        that, so up to three passes are open beyond the cap."""
        return self.max_connections + OVERFLOW_CONNECTIONS + 3 * self.backlog

    @property
    def memory_bound_mib(self) -> float:
        """The most memory (MiB) the server adds to its resting RSS under any load (docs/reliability.md):
        bodies being received (twice: a multipart body is copied once), each connection's uncounted
        first 64 KiB and uvicorn's read buffer, the images being decoded (6 bytes per pixel; a 16-bit
        PNG 15, and it counts 2.5 times in ``decode_mpx``, but one of ``max_mpx`` may take it all),
        and 100 MiB for threads, sockets and the batch."""
        decoding = max(6 * self.decode_pixels, 15 * self.max_pixels) / 2 ** 20
        return 2 * self.buffer_mb + 0.25 * self.max_connections + decoding + 100

    def check(self) -> "ServerLimits":
        """Raise a one-line ConfigError naming the first flag out of range; return self."""
        for f in fields(self):
            value = getattr(self, f.name)
            low, high = _RANGES[f.name]
            if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value) \
                    or not low <= value <= high or (f.type == "int" and int(value) != value):
                kind = "an integer" if f.type == "int" else "a number"
                raise ConfigError(f"--{f.name}: expected {kind} from {low:g} to {high:g}, got {value}")
        if self.decode_mpx < self.max_mpx:
            raise ConfigError(f"--decode_mpx {self.decode_mpx:g} is below --max_mpx {self.max_mpx:g}: an image of the "
                              "largest accepted size could never be decoded")
        if self.buffer_mb < self.max_mb:
            raise ConfigError(f"--buffer_mb {self.buffer_mb:g} is below --max_mb {self.max_mb:g}: a body of the "
                              "largest accepted size could never be received")
        return self


_RANGES: Dict[str, Tuple[float, float]] = {
    "max_mb": (0.001, 1024), "max_mpx": (0.0001, 1000), "decode_mpx": (0.0001, 10000),
    "buffer_mb": (0.001, 65536), "max_connections": (1, 100000), "header_timeout": (0.1, 3600),
    "body_timeout": (0.1, 3600), "keep_alive": (0.1, 3600), "max_header_kb": (1, 1024),
    "graceful_timeout": (0.1, 3600),
}

#: the help text of each limit's flag in ``tools/serve.py`` (the default is appended there)
LIMIT_FLAGS: Dict[str, str] = {
    "max_mb": "largest request body, MiB; larger ones get 413",
    "max_mpx": "largest image, megapixels, read from its header before decoding; larger ones get 413",
    "decode_mpx": "megapixels being decoded at once (all requests together); past it 503 + Retry-After",
    "buffer_mb": "request bodies being received at once, MiB (all requests together); past it 503 + Retry-After",
    "max_connections": "open connections and requests in progress; past it the oldest idle connection is "
                       "closed, or the new one answered 503 + Retry-After",
    "header_timeout": "seconds a connection has to send a whole request line and headers; then 408 or closed",
    "body_timeout": "seconds a request has to send its whole body; then 408",
    "keep_alive": "seconds an idle keep-alive connection stays open",
    "max_header_kb": "largest request line + headers, KiB; larger ones get 431",
    "graceful_timeout": "seconds SIGTERM waits for requests being decoded or run; bodies still arriving are "
                        f"answered 503 at once; the process ends itself {FORCE_EXIT_MARGIN_S:g} s later at worst",
}


class Budget:
    """A shared amount (pixels being decoded, bytes being received) that requests take and give back.

    Used from the event loop's thread only, so it needs no lock. :meth:`take` never waits: a
    request that does not fit is answered 503 with ``Retry-After`` at once, instead of queueing
    behind work that could take seconds.
    """

    def __init__(self, total: int) -> None:
        self.total, self.used, self.peak, self.refused = int(total), 0, 0, 0

    def take(self, amount: int) -> bool:
        if self.used + amount > self.total:
            self.refused += 1
            return False
        self.used += amount
        self.peak = max(self.peak, self.used)
        return True

    def give(self, amount: int) -> None:
        self.used = max(0, self.used - amount)
