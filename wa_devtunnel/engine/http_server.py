"""Serve the receiver app with the limits a public URL needs.

aiohttp closes idle keep-alive connections (`keepalive_timeout`) but has no deadline for a request's
head or body, no cap on open connections, answers malformed requests itself (a traceback on stderr,
nothing recorded) and names its version in `Server`. A RequestHandler subclass adds the deadlines
and the cap; every answer it gives goes through the receiver's recording; floods become one notice
per kind per interval (engine/server_limits.py: the numbers, the shared guard, the counters, the throttle).
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Coroutine
from http import HTTPStatus
from typing import Any

from aiohttp import web
from aiohttp.http_exceptions import HttpProcessingError
from aiohttp.web_protocol import RequestPayloadError, _ErrInfo

from wa_devtunnel.engine.events import EventBus, Notice
from wa_devtunnel.engine.receiver import DirectHandler
from wa_devtunnel.engine.server_limits import (
    LISTEN_BACKLOG,
    SERVER_HEADER,
    AcceptFailures,
    ConnectionGuard,
    LimitStats,
    ServerLimits,
    answer_phrase,
    connection_cap,
    parser_reason,
    raise_fd_limit,
)

__all__ = ["LISTEN_BACKLOG", "SERVER_HEADER", "BodyTimeout", "ReceiverRunner", "ServerLimits"]

# How much of a refused request head is kept to name its method and target in the recording.
HEAD_SNIPPET_BYTES = 2048
_log = logging.getLogger(__name__)


class BodyTimeout(asyncio.TimeoutError):
    """The body did not arrive in time; raised into whatever reads it (a TimeoutError, so lingering stays quiet)."""


class LimitedRequestHandler(web.RequestHandler):
    """aiohttp's connection protocol with a head deadline, a connection cap and quiet, recorded errors."""

    __slots__ = ("_bad_head", "_body_timer", "_guard", "_head_bytes", "_head_timer")

    def __init__(self, manager: web.Server, *, guard: ConnectionGuard, **kwargs: Any) -> None:
        super().__init__(manager, **kwargs)
        self._guard = guard
        self._head_timer: asyncio.TimerHandle | None = None
        self._head_bytes = False  # some of a request head arrived: a slow client, not an idle one
        self._body_timer: asyncio.TimerHandle | None = None
        self._bad_head = b""

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        guard = self._guard
        if guard.open >= guard.max_connections:
            self._manager = None  # nothing was set up: connection_lost has nothing to undo
            guard.refuse(transport)
            return
        guard.open += 1
        super().connection_made(transport)
        self._start_head_deadline()

    def connection_lost(self, exc: BaseException | None) -> None:
        if self._manager is not None:
            self._guard.open -= 1
        for timer in (self._head_timer, self._body_timer):
            if timer is not None:
                timer.cancel()
        self._head_timer = self._body_timer = None
        super().connection_lost(exc)

    def data_received(self, data: bytes) -> None:
        parsed = self._request_count
        _base_data_received(self, data)
        if self._request_count != parsed:  # a whole head (or an unparsable one): its deadline is met
            if self._head_timer is not None:
                self._head_timer.cancel()
                self._head_timer = None
            self._head_bytes = False
            message, payload = self._messages[-1]
            if message.__class__ is _ErrInfo:
                self._bad_head = data[:HEAD_SNIPPET_BYTES]
            elif not payload.is_eof():  # the body is still to come: from now it has body_timeout_s
                self._body_timer = self._loop.call_later(self._guard.limits.body_timeout_s, _expire_body, payload)
                payload.on_eof(self._body_timer.cancel)
        elif data and (self._head_timer is not None or (self._waiter is not None and not self._waiter.done())):
            # No whole head yet, and the handler waits for one (or the first one's deadline runs): a head begins.
            self._head_bytes = True
            if self._head_timer is None:  # a keep-alive request's head starts now: it has the same time
                self._start_head_deadline()

    def _start_head_deadline(self) -> None:
        """From now, a whole request head within header_timeout_s; it replaces aiohttp's idle timer meanwhile."""
        if self._keepalive_handle is not None:  # re-armed by aiohttp after the next response
            self._keepalive_handle.cancel()
            self._keepalive_handle = None
        self._head_timer = self._loop.call_later(self._guard.limits.header_timeout_s, self._head_expired)

    def _head_expired(self) -> None:
        """No whole request head in time: drop the connection (a slow head is counted, a silent one is idle)."""
        self._head_timer = None
        if self._force_close or self.transport is None:
            return
        guard = self._guard
        if self._head_bytes:
            guard.stats.header_timeouts += 1
            seconds = guard.limits.header_timeout_s
            guard.notices.hit(
                "limits:header",
                lambda n: (
                    f"Dropped {n} connection(s) that did not send their request headers within "
                    f"{seconds:g} s (WA_DEVTUNNEL_HEADER_TIMEOUT)."
                ),
            )
        self.force_close()

    def handle_error(
        self,
        request: web.BaseRequest,
        status: int = 500,
        exc: BaseException | None = None,
        message: str | None = None,
    ) -> web.StreamResponse:
        """Answer, record and count what aiohttp would log with a traceback; a client that left gets nothing."""
        guard = self._guard
        if isinstance(exc, ConnectionError) or self.transport is None or request.writer.output_size > 0:
            guard.stats.disconnects += 1
            raise ConnectionError("the client went away before an answer could be sent") from exc
        if isinstance(exc, BodyTimeout) or (status == 504 and isinstance(request.content.exception(), BodyTimeout)):
            status = 408
            reason = f"the body did not arrive within {guard.limits.body_timeout_s:g} s (WA_DEVTUNNEL_BODY_TIMEOUT)"
            guard.stats.body_timeouts += 1
            self._lingering_time = 0.0  # what is left of the body is not worth waiting for
            guard.notices.hit("limits:body", lambda n: f"Answered 408 to {n} request(s): {reason}.")
        elif isinstance(exc, (HttpProcessingError, RequestPayloadError)):
            status = 400
            reason = f"malformed request: {parser_reason(exc)}"
            guard.stats.malformed[type(exc).__name__] += 1
        else:  # a bug of ours, not the client's: once per interval with its traceback
            status = 500 if status < 500 else status
            reason = f"internal error: {type(exc).__name__ if exc else HTTPStatus(status).phrase}"
            guard.stats.internal_errors += 1
            if guard.notices.hit("limits:internal", lambda n: f"{n} request(s) failed with an {reason}.", "error"):
                _log.error("Error handling a request from %s", request.remote, exc_info=exc)
        guard.record(request, status, reason, self._bad_head)
        response = web.Response(status=status, text=answer_phrase(status))
        response.headers["X-Content-Type-Options"] = "nosniff"
        response.force_close()
        return response

    def finish_response(  # type: ignore[override]  # returns aiohttp's coroutine instead of awaiting it
        self, request: web.BaseRequest, resp: web.StreamResponse, start_time: float | None
    ) -> Coroutine[Any, Any, tuple[web.StreamResponse, bool]]:
        """Every answer: no version in `Server` (the receiver's own answers carry ours already)."""
        try:
            if not resp.prepared and "Server" not in resp.headers:
                resp.headers["Server"] = SERVER_HEADER
        except AttributeError:  # not a response (a handler bug): aiohttp answers 500 itself
            pass
        return _base_finish_response(self, request, resp, start_time)


_base_data_received = web.RequestHandler.data_received  # called directly: no super() object per chunk
_base_finish_response = web.RequestHandler.finish_response


def _expire_body(payload: Any) -> None:
    """The body deadline passed: the handler's next read raises BodyTimeout (then 408, recorded)."""
    if not payload.is_eof():
        payload.set_exception(BodyTimeout())


class LimitedServer(web.Server):
    """aiohttp's low-level Server, making LimitedRequestHandler connections around the receiver.

    Requests go straight to the receiver (DirectHandler) as aiohttp's plain BaseRequest: the app's router
    and per-request Application machinery would only lead every one of them to the same handler.
    """

    def __init__(self, base: web.Server, guard: ConnectionGuard, app: web.Application) -> None:
        super().__init__(
            DirectHandler(app),
            handler_cancellation=base.handler_cancellation,
            loop=asyncio.get_running_loop(),
            **base._kwargs,
        )
        self.guard = guard

    def __call__(self) -> LimitedRequestHandler:
        return LimitedRequestHandler(self, loop=self._loop, guard=self.guard, **self._kwargs)


class ReceiverRunner(web.AppRunner):
    """An AppRunner whose server applies ServerLimits; set up, started and cleaned up like aiohttp's."""

    def __init__(self, app: web.Application, limits: ServerLimits, bus: EventBus, *, forwarding: bool = False) -> None:
        super().__init__(app, access_log=None, handle_signals=False, keepalive_timeout=limits.idle_timeout_s)
        self.limits = limits
        self.bus = bus
        self.forwarding = forwarding
        self.guard: ConnectionGuard | None = None
        self._accept_filter: AcceptFailures | None = None

    @property
    def stats(self) -> LimitStats:
        """What the limits did so far (zeros before setup)."""
        return self.guard.stats if self.guard is not None else LimitStats()

    async def _make_server(self) -> web.Server:
        base = await super()._make_server()
        fd_limit = raise_fd_limit()
        wanted = self.limits.max_connections
        cap = connection_cap(wanted, fd_limit, forwarding=self.forwarding)
        self.guard = ConnectionGuard(self.app, self.limits, self.bus, cap)
        if cap < wanted:
            self.bus.publish(
                Notice(
                    "warning",
                    f"At most {cap} open connections, not {wanted}: the open-file limit is {fd_limit} "
                    "(raise it with `ulimit -n`, or lower WA_DEVTUNNEL_MAX_CONNECTIONS).",
                    topic="limits:connections",
                )
            )
        self._accept_filter = AcceptFailures(self.guard)
        logging.getLogger("asyncio").addFilter(self._accept_filter)
        return LimitedServer(base, self.guard, self.app)

    async def _cleanup_server(self) -> None:
        if self._accept_filter is not None:
            logging.getLogger("asyncio").removeFilter(self._accept_filter)
            self._accept_filter = None
        if self.guard is not None:
            self.guard.notices.close()
        await super()._cleanup_server()
