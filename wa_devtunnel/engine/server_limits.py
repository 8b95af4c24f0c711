"""What the receiver's connections share: the limits, the cap under the fd limit, counters, one notice per interval."""

from __future__ import annotations

import asyncio
import logging
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from http import HTTPStatus
from typing import Any

from aiohttp import web

from wa_devtunnel.engine.events import EventBus, Notice
from wa_devtunnel.engine.receiver import SERVER_HEADER, record_rejected
from wa_devtunnel.settings import Settings

try:
    import resource
except ImportError:  # pragma: no cover - Windows has no RLIMIT_NOFILE
    resource = None  # type: ignore[assignment]

# A flood of the same trouble becomes one line per this many seconds, with a count.
NOTICE_INTERVAL_S = 10.0
# Pending connections the kernel queues; also how many one accept() burst may open before any is refused.
LISTEN_BACKLOG = 64
# Descriptors kept for everything but client connections: stdio, recording, event loop, agent, instance file.
FD_RESERVE = 32
# When the hard limit is unlimited, ask for this much (macOS refuses more than its OPEN_MAX, 10240).
_FD_TARGETS = (65536, 10240)
_ACCEPT_FAILED = "socket.accept() out of system resource"


@dataclass(frozen=True, slots=True)
class ServerLimits:
    """Deadlines and the connection cap: generous for Meta (3 MB bodies, few connections), tight for strangers."""

    max_connections: int
    header_timeout_s: float
    body_timeout_s: float
    idle_timeout_s: float
    notice_interval_s: float = NOTICE_INTERVAL_S

    @classmethod
    def from_settings(cls, settings: Settings) -> ServerLimits:
        """The WA_DEVTUNNEL_* limits the user configured (or their defaults)."""
        return cls(
            max_connections=settings.max_connections,
            header_timeout_s=settings.header_timeout_s,
            body_timeout_s=settings.body_timeout_s,
            idle_timeout_s=settings.idle_timeout_s,
        )


@dataclass(slots=True)
class LimitStats:
    """What the limits did this session, so that nothing answered or dropped goes uncounted."""

    refused_connections: int = 0
    header_timeouts: int = 0
    body_timeouts: int = 0
    disconnects: int = 0
    internal_errors: int = 0
    accept_failures: int = 0
    malformed: Counter[str] = field(default_factory=Counter)


class NoticeThrottle:
    """At most one notice per topic per interval: the first at once, the rest as one count when it ends."""

    def __init__(self, bus: EventBus, interval_s: float) -> None:
        self._bus = bus
        self._interval = interval_s
        self._loop = asyncio.get_running_loop()
        self._quiet_until: dict[str, float] = {}
        self._pending: dict[str, tuple[int, Callable[[int], str], str]] = {}
        self._timers: dict[str, asyncio.TimerHandle] = {}

    def hit(self, topic: str, text: Callable[[int], str], level: str = "warning") -> bool:
        """Count one occurrence; True when it was published now (the first of its interval)."""
        now = self._loop.time()
        quiet_until = self._quiet_until.get(topic, 0.0)
        if now >= quiet_until and topic not in self._pending:
            self._quiet_until[topic] = now + self._interval
            self._bus.publish(Notice(level, text(1), topic=topic))
            return True
        count = self._pending[topic][0] if topic in self._pending else 0
        self._pending[topic] = (count + 1, text, level)
        if topic not in self._timers:
            self._timers[topic] = self._loop.call_at(max(quiet_until, now), self._flush, topic)
        return False

    def _flush(self, topic: str) -> None:
        self._timers.pop(topic, None)
        pending = self._pending.pop(topic, None)
        if pending is not None:
            count, text, level = pending
            self._quiet_until[topic] = self._loop.time() + self._interval
            self._bus.publish(Notice(level, text(count), topic=topic))

    def close(self) -> None:
        """Say what is still pending and stop the timers (the server is going away)."""
        for topic in list(self._timers):
            self._timers[topic].cancel()
            self._flush(topic)


def raise_fd_limit() -> int:
    """Raise the soft open-file limit to the hard one (it often starts at 256 or 1024); the soft limit in force."""
    if resource is None:  # pragma: no cover
        return 512
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if soft == resource.RLIM_INFINITY:
        return _FD_TARGETS[0]
    for target in (hard,) if hard != resource.RLIM_INFINITY else _FD_TARGETS:
        if soft >= target:
            break
        try:
            resource.setrlimit(resource.RLIMIT_NOFILE, (target, hard))
        except (ValueError, OSError):
            continue
        return target
    return soft


def connection_cap(wanted: int, fd_limit: int, *, forwarding: bool) -> int:
    """Client connections that fit under the fd limit, with room for our own files and one accept burst.

    Forwarding opens one connection to the backend per request in flight, so each client counts twice.
    """
    spare = (fd_limit - FD_RESERVE - LISTEN_BACKLOG) // (2 if forwarding else 1)
    return max(1, min(wanted, max(spare, fd_limit // 8)))


def _refusal_bytes() -> bytes:
    """The whole 503 answer, built once: a refused connection costs one write and one close."""
    body = b"Service Unavailable"
    head = (
        "HTTP/1.1 503 Service Unavailable\r\n"
        f"Server: {SERVER_HEADER}\r\n"
        "Content-Type: text/plain; charset=utf-8\r\n"
        "X-Content-Type-Options: nosniff\r\n"
        "Retry-After: 1\r\n"
        "Connection: close\r\n"
        f"Content-Length: {len(body)}\r\n\r\n"
    )
    return head.encode("ascii") + body


_REFUSAL = _refusal_bytes()


class ConnectionGuard:
    """State the connections of one server share: the cap, the counters, the notices, the app to record into."""

    def __init__(self, app: web.Application, limits: ServerLimits, bus: EventBus, max_connections: int) -> None:
        self.app = app
        self.limits = limits
        self.max_connections = max_connections
        self.open = 0
        self.stats = LimitStats()
        self.notices = NoticeThrottle(bus, limits.notice_interval_s)

    def refuse(self, transport: asyncio.BaseTransport) -> None:
        """Past the cap: answer 503 and close at once, one notice per interval however many."""
        self.stats.refused_connections += 1
        if isinstance(transport, asyncio.WriteTransport):
            transport.write(_REFUSAL)
        transport.close()
        limit = self.max_connections
        self.notices.hit(
            "limits:connections",
            lambda n: (
                f"Refused {n} connection(s): at the limit of {limit} open connections (WA_DEVTUNNEL_MAX_CONNECTIONS)."
            ),
        )

    def record(self, request: web.BaseRequest, status: int, reason: str, head: bytes = b"") -> None:
        """Every answer leaves a trace: the receiver records it as kind "other" with the reason."""
        raw_headers: Any = ()
        query = ""
        if request.method == "UNKNOWN" and not request.raw_headers:  # aiohttp's stand-in for an unparsable head
            method, path = _request_line(head)
        else:
            method, path = request.method, request.path
            query, raw_headers = request.rel_url.raw_query_string, request.raw_headers
        record_rejected(
            self.app,
            method=method,
            path=path,
            status=status,
            reason=reason,
            remote=request.remote,
            answer=answer_phrase(status),
            query=query,
            raw_headers=raw_headers,
        )


class AcceptFailures(logging.Filter):
    """asyncio logs every failed accept() with a traceback (thousands a second when out of descriptors)."""

    def __init__(self, guard: ConnectionGuard) -> None:
        super().__init__()
        self.guard = guard

    def filter(self, record: logging.LogRecord) -> bool:
        if not str(record.msg).startswith(_ACCEPT_FAILED):
            return True
        self.guard.stats.accept_failures += 1
        self.guard.notices.hit(
            "limits:descriptors",
            lambda n: f"{n} connection(s) could not be accepted: the process is out of file descriptors (ulimit -n).",
            "error",
        )
        return False


def answer_phrase(status: int) -> str:
    """The whole body of our own error answers: the status and its phrase, nothing a stranger could use."""
    return f"{status} {HTTPStatus(status).phrase}"


def parser_reason(exc: BaseException) -> str:
    """The parser's own words, short: `Invalid header token`, `Got more than 8190 bytes when reading`."""
    text = getattr(exc, "message", "") or str(exc) or type(exc).__name__
    return text.strip().splitlines()[0].split(": b'")[0].rstrip(":. ")[:120]


def _request_line(head: bytes) -> tuple[str, str]:
    """Method and target of a head the parser refused, when its first line looks like a request line."""
    parts = head.split(b"\n", 1)[0].rstrip(b"\r").split(b" ")
    if len(parts) >= 2 and parts[0].isalpha() and len(parts[0]) <= 20:
        return parts[0].decode("ascii"), parts[1].decode("latin-1")
    return "", ""
