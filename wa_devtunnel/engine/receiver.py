"""The aiohttp receiver: answers Meta like a correct app would, and records every request."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Coroutine, Sequence
from dataclasses import dataclass, field
from itertools import count
from typing import Any

from aiohttp import HttpVersion11, web
from aiohttp.hdrs import EXPECT
from multidict import CIMultiDict

from wa_devtunnel.engine.events import EventBus, ExchangeRecorded, ForwardCompleted, Notice, RecordingHealth
from wa_devtunnel.engine.exchange import build_record, header_pairs, new_exchange_id, utc_timestamp
from wa_devtunnel.engine.forwarder import Forwarder, forward_headers
from wa_devtunnel.engine.origin import request_origin
from wa_devtunnel.engine.recording import SessionRecorder, encode_record
from wa_devtunnel.engine.verdicts import (
    GENERIC_ANSWERS,
    REFUSED_BODY_KEPT_BYTES,
    EventVerdict,
    ForwardOutcome,
    ReceiverConfig,
    Refusal,
    backend_handshake,
    busy_refusal,
    exchange_fields,
    judge_event,
    oversized_event,
)
from wa_devtunnel.rules.decode.payload import SeenIds
from wa_devtunnel.rules.handshake import VerifyAttempt, decide_handshake, redact_verify_token
from wa_devtunnel.rules.signature import LEGACY_SIGNATURE_HEADER, SIGNATURE_HEADER, SignatureVerdict

# How much of an oversized body is kept in the recording (the rest is not read at all).
OVERSIZE_PREFIX_BYTES = 64 * 1024
# Bodies above this are verified and decoded in a worker thread: the event loop keeps answering meanwhile.
OFFLOAD_BODY_BYTES = 64 * 1024
# Strangers learn nothing: no product, no version (aiohttp would say `Python/3.11 aiohttp/3.14.5`).
SERVER_HEADER = "webhook"
# Nothing in it confirms to a stranger that filling the disk worked; Meta only needs the status.
RECORDING_FAILED_ANSWER = GENERIC_ANSWERS[503]


@dataclass(slots=True)
class ReceiverState:
    """Per-app mutable state: the session's sequence numbers and seen ids."""

    config: ReceiverConfig
    recorder: SessionRecorder | None
    bus: EventBus
    seq: count[int] = field(default_factory=lambda: count(1))
    seen: SeenIds = field(default_factory=SeenIds)
    exchanges: int = 0
    last_seq: int = 0  # the seq of the last exchange published (a front end attaching reads up to it)
    forwarder: Forwarder | None = None
    background: set[asyncio.Task[None]] = field(default_factory=set)
    backlog_bytes: int = 0
    body_bytes_in_flight: int = 0
    recording_failed: bool = False
    refused_unrecorded: int = 0


RECEIVER_STATE = web.AppKey("receiver_state", ReceiverState)
_UNCHECKED = SignatureVerdict.UNCHECKED.value


class ReceiverBusy(Exception):
    """Bodies being read already hold the memory budget: this one is refused (503) rather than buffered."""

    def __init__(self, prefix: bytes, seen: int, in_flight: int) -> None:
        super().__init__(f"{in_flight} bytes of other bodies being read")
        self.prefix = prefix
        self.seen = seen


async def _read_body(state: ReceiverState, request: web.BaseRequest, limit: int) -> tuple[bytes, bool, int]:
    """Read the raw body still arriving, up to `limit`; return (bytes kept, oversized?, bytes seen).

    Bodies still arriving share one memory budget (ReceiverConfig.body_memory_bytes): past it the read
    stops with ReceiverBusy. A client that goes away mid-body frees its buffers at once (the exception's
    traceback would otherwise keep them alive until a full garbage collection).
    """
    declared = request.content_length
    if declared is not None and declared > limit:
        prefix = await request.content.read(OVERSIZE_PREFIX_BYTES)
        return prefix, True, declared
    chunks: list[bytes] = []
    size = 0
    try:
        while True:
            chunk = await request.content.readany()
            if not chunk:
                break
            size += len(chunk)
            state.body_bytes_in_flight += len(chunk)
            if size > limit:
                kept = b"".join(chunks)[:OVERSIZE_PREFIX_BYTES]
                return kept, True, size
            chunks.append(chunk)
            if state.body_bytes_in_flight > state.config.body_memory_bytes:
                raise ReceiverBusy(b"".join(chunks)[:OVERSIZE_PREFIX_BYTES], size, state.body_bytes_in_flight)
        return b"".join(chunks), False, size
    finally:
        state.body_bytes_in_flight -= size
        chunks.clear()


def _commit(state: ReceiverState, record: dict[str, Any]) -> bool:
    """Persist before answering (nothing acknowledged is ever lost), then notify front ends.

    False when the line could not be written whole: the caller answers 503 so Meta retries, and the
    record (marked with the error) still reaches the front ends.
    """
    state.exchanges += 1
    state.last_seq = record["seq"]
    recorder = state.recorder
    if recorder is None:  # --no-record
        state.bus.publish(ExchangeRecorded(None, record))
        return True
    data = encode_record(record)
    try:
        offset = recorder.append_line(data)
    except OSError as exc:
        _recording_trouble(state, record, exc)
        state.bus.publish(ExchangeRecorded(None, record))
        return False
    # Only Meta's kind of request proves recovery: a stranger's tiny 404 may fit where an event did not.
    if state.recording_failed and record["kind"] != "other":
        _recording_recovered(state)
    # The event says where the line is, and keeps neither it nor the record: both are freed with this request
    # (path: after a rollover, the new part).
    state.bus.publish(ExchangeRecorded.written(record, len(data), offset, recorder.path))
    return True


def _recording_trouble(state: ReceiverState, record: dict[str, Any], exc: OSError) -> None:
    """The line is not on disk: the answer becomes 503 and the front ends raise a persistent warning."""
    reason = str(exc) or type(exc).__name__
    record["response"] = {"status": 503, "body": RECORDING_FAILED_ANSWER}
    record["recording_error"] = reason
    if not state.recording_failed:  # a new episode: count its refusals from one
        state.recording_failed = True
        state.refused_unrecorded = 0
    state.refused_unrecorded += 1
    path = state.recorder.path if state.recorder is not None else None
    # Every refusal updates the front ends' count; they speak up once per episode.
    state.bus.publish(RecordingHealth(False, path, reason, state.refused_unrecorded))


def _recording_recovered(state: ReceiverState) -> None:
    state.recording_failed = False
    path = state.recorder.path if state.recorder is not None else None
    state.bus.publish(RecordingHealth(True, path, "", state.refused_unrecorded))


class DirectHandler:
    """The receiver as aiohttp's low-level server handler: every request, no router, no Application per request
    (targets no route could match, `*` or `host:443`, reach `answer` like any other request)."""

    __slots__ = ("state",)

    def __init__(self, app: web.Application) -> None:
        self.state = app[RECEIVER_STATE]

    def __call__(self, request: web.BaseRequest) -> Coroutine[Any, Any, web.StreamResponse]:
        return answer(self.state, request)


async def answer(state: ReceiverState, request: web.BaseRequest) -> web.StreamResponse:
    """Single entry point: read, verify, record one whole line, answer (`Expect: 100-continue` honoured first)."""
    started = time.perf_counter()
    content = request.content
    # A client that waits for `100 Continue` has not sent its body: one that has needs no 100 (most requests).
    if not content.is_eof() and EXPECT in request.headers:
        await _expect(request)
        await request.writer.drain()
    config = state.config
    received_at = utc_timestamp()
    method = request.method
    raw_query = request.rel_url.raw_query_string
    headers = header_pairs(request.raw_headers)  # the session's origin key is never written down
    origin, client = request_origin(request.headers, config.origin_key)
    body = b""
    truncated = False
    seen_bytes = 0
    raw_path = request.rel_url.raw_path
    path = raw_path if "%" not in raw_path else request.path  # decoded only when it holds an escape
    on_path = path == config.path or path.rstrip("/") == config.path.rstrip("/")  # a trailing slash is the same path
    # --require-signature and no signature at all: the answer is 401 whatever follows, so only the start is read.
    unsigned_refusal = (
        config.require_signature and on_path and method == "POST" and SIGNATURE_HEADER not in request.headers
    )
    busy: ReceiverBusy | None = None
    if request.can_read_body:
        limit = OVERSIZE_PREFIX_BYTES if unsigned_refusal else config.max_body_bytes
        if content.is_eof():  # a small body usually arrives whole with its headers: take it as is
            body = content.read_nowait()
            seen_bytes = len(body)
            if seen_bytes > limit:
                truncated, body = True, body[:OVERSIZE_PREFIX_BYTES]
        else:
            try:
                body, truncated, seen_bytes = await _read_body(state, request, limit)
            except ReceiverBusy as exc:
                busy, body, truncated, seen_bytes = exc, exc.prefix, True, exc.seen
    # The token is redacted whatever the path or method (Meta's handshake may hit a mistyped path).
    query = redact_verify_token(raw_query, config.verify_tokens) if raw_query else raw_query

    verdict: Refusal | VerifyAttempt | EventVerdict
    if busy is not None:
        verdict = busy_refusal(str(busy), is_event=on_path and method == "POST")
    elif on_path and method == "GET":
        verdict = decide_handshake(raw_query, config.handshake_tokens)
    elif on_path and method == "POST":
        if truncated and not unsigned_refusal:  # too big to read: 413, nothing checked
            verdict = oversized_event(seen_bytes, config.max_body_bytes)
        else:
            request_headers = request.headers
            signature_header = request_headers.get(SIGNATURE_HEADER)
            legacy_header = request_headers.get(LEGACY_SIGNATURE_HEADER)
            if len(body) > OFFLOAD_BODY_BYTES:  # hashing and decoding megabytes must not hold the event loop
                verdict = await asyncio.get_running_loop().run_in_executor(
                    None, judge_event, config, state.seen, body, signature_header, legacy_header
                )
            else:
                verdict = judge_event(config, state.seen, body, signature_header, legacy_header)
    elif on_path:
        verdict = Refusal("other", 405, f"method {method} not allowed: Meta sends GET (handshake) and POST (events)")
    else:
        verdict = Refusal("other", 404, f"not the webhook path ({config.path})")
    if isinstance(verdict, VerifyAttempt):
        kind, status, text, signature = "verify", verdict.status, verdict.body, _UNCHECKED
    else:
        kind, status, text, signature = verdict.kind, verdict.status, verdict.answer, verdict.signature

    forward: ForwardOutcome | None = None
    # With --require-signature a bad signature is refused here, like a strict app: it never reaches the backend.
    refused_here = config.require_signature and status in (401, 403) and kind == "event"
    if state.forwarder is not None and kind != "other" and not truncated and not refused_here:
        forward = await _forward(state, request, kind, body, verdict)
        if forward.result is not None:
            status = forward.result.relay_status
    if refused_here and len(body) > REFUSED_BODY_KEPT_BYTES:
        truncated, seen_bytes, body = True, len(body), body[:OVERSIZE_PREFIX_BYTES]
    fields = exchange_fields(
        origin,
        request.remote,
        client,
        verdict,
        forward,
        seen_bytes if truncated else None,
        round((time.perf_counter() - started) * 1000, 3),
    )
    result = forward.result if forward is not None else None
    relayed = None if result is None else result.body if result.error is None else result.error.encode("utf-8")
    record = build_record(
        seq=next(state.seq),
        received_at=received_at,
        kind=kind,
        method=method,
        path=path or request.raw_path,  # CONNECT host:443 has no path, only a target
        query=query,
        headers=headers,
        body=body,
        status=status,
        response_body=text if relayed is None else relayed.decode("utf-8", "replace"),
        signature=signature,
        extra=fields,
    )
    if not _commit(state, record):
        return _plain(503, RECORDING_FAILED_ANSWER)
    if forward is not None and result is None:  # --ack-first: Meta has its 200, the backend gets it meanwhile
        state.backlog_bytes += len(body)
        later = _forward_in_background(state, record, method, raw_query, _outgoing_headers(request), body)
        task = asyncio.ensure_future(later)
        state.background.add(task)
        task.add_done_callback(state.background.discard)
    if relayed is not None:  # the backend's answer, byte for byte, with its own Content-Type
        response = web.Response(status=status, body=relayed)
        response.headers["Content-Type"] = (result.content_type if result.error is None else "") or "text/plain"
        response.headers["X-Content-Type-Options"] = "nosniff"
        return response
    response = _plain(status, text)
    if kind == "other" and status == 405:
        response.headers["Allow"] = "GET, POST"
    return response


def _outgoing_headers(request: web.BaseRequest) -> list[tuple[str, str]]:
    """The request's headers as the backend gets them, in one pass (our origin key stays with us)."""
    return forward_headers(
        ((k.decode("latin-1"), v.decode("latin-1")) for k, v in request.raw_headers),
        request.remote,
        request.host,
        request.scheme,
        request.headers,
    )


async def _forward(
    state: ReceiverState,
    request: web.BaseRequest,
    kind: str,
    body: bytes,
    verdict: Refusal | VerifyAttempt | EventVerdict,
) -> ForwardOutcome:
    """Forward now and relay the backend's answer, or (--ack-first, room in the backlog) later."""
    config, forwarder = state.config, state.forwarder
    assert forwarder is not None
    # The handshake is the backend's to answer, always; past the backlog cap, back-pressure instead of memory.
    if config.ack_first and kind == "event" and state.backlog_bytes + len(body) <= config.ack_first_backlog_bytes:
        return ForwardOutcome({"url": forwarder.target_url, "status": None, "pending": True})
    inline = None
    if config.ack_first and kind == "event":
        inline = f"--ack-first backlog full ({state.backlog_bytes} bytes waiting)"
    result = await forwarder.forward(request.method, request.rel_url.raw_query_string, _outgoing_headers(request), body)
    if result.error is not None:
        _backend_trouble(state, result.error, retried=True)
    verify = backend_handshake(verdict, result) if isinstance(verdict, VerifyAttempt) else None
    return ForwardOutcome(result.to_record(), result, inline, verify)


# Our own answers' headers, in the order they always had; aiohttp copies them into each response.
_PLAIN_HEADERS = CIMultiDict(
    {"Content-Type": "text/plain; charset=utf-8", "X-Content-Type-Options": "nosniff", "Server": SERVER_HEADER}
)


def _plain(status: int, text: str) -> web.Response:
    """Our own answers: UTF-8 text that no browser may sniff into HTML (the challenge is sender-chosen)."""
    return web.Response(status=status, body=text.encode("utf-8"), headers=_PLAIN_HEADERS)


def _backend_trouble(state: ReceiverState, error: str, *, retried: bool) -> None:
    """Say what failed and what happens next: Meta retries a non-200, not an event it already has a 200 for."""
    consequence = (
        "Meta got that answer and will retry this delivery."
        if retried
        else "Meta already had its 200 (--ack-first) and will not retry: replay it (p, or wa-devtunnel replay)."
    )
    state.bus.publish(Notice("error", f"{error[:1].upper()}{error[1:]}. {consequence}", topic="forward"))


async def _forward_in_background(
    state: ReceiverState,
    record: dict[str, Any],
    method: str,
    raw_query: str,
    headers: list[tuple[str, str]],
    body: bytes,
) -> None:
    """--ack-first: Meta already has its 200; the backend's answer is recorded when it arrives."""
    assert state.forwarder is not None
    try:
        result = await state.forwarder.forward(method, raw_query, headers, body)
    finally:
        state.backlog_bytes -= len(body)
    if result.error is not None:
        _backend_trouble(state, result.error, retried=False)
    update = {
        "v": record["v"],
        "id": new_exchange_id(),
        "seq": next(state.seq),
        "received_at": utc_timestamp(),
        "kind": "forward_update",
        "ref": record["id"],
        "forward": result.to_record(),
    }
    if state.recorder is not None and not state.recorder.closed:
        try:
            state.recorder.append(update)
        except OSError as exc:  # the exchange itself is on disk; only the backend's late answer is lost
            state.bus.publish(Notice("error", f"Could not record the backend's answer to seq {record['seq']}: {exc}"))
    state.bus.publish(ForwardCompleted(exchange_id=record["id"], seq=record["seq"], forward=update["forward"]))


async def _expect(request: web.BaseRequest) -> None:
    """`Expect: 100-continue` is honoured; any other expectation is ignored and the request answered as usual.

    (aiohttp's default answers 417 itself, echoing the sender's header and recording nothing.)
    """
    if request.version == HttpVersion11 and request.headers.get("Expect", "").lower() == "100-continue":
        await request.writer.write(b"HTTP/1.1 100 Continue\r\n\r\n")
        request.writer.output_size = 0


def create_receiver_app(
    config: ReceiverConfig, bus: EventBus, recorder: SessionRecorder | None, forwarder: Forwarder | None = None
) -> web.Application:
    """The receiver's app: its state, and the handler options (ReceiverRunner serves it; its low-level server
    hands every request to `answer`, so the app has no routes)."""
    # Bodies are recorded, verified and forwarded exactly as sent: never decompressed on the way in.
    app = web.Application(client_max_size=config.max_body_bytes + 1, handler_args={"auto_decompress": False})
    app[RECEIVER_STATE] = ReceiverState(config=config, recorder=recorder, bus=bus, forwarder=forwarder)
    return app


def record_rejected(
    app: web.Application,
    *,
    method: str,
    path: str,
    status: int,
    reason: str,
    remote: str | None,
    answer: str = "",
    query: str = "",
    raw_headers: Sequence[tuple[bytes, bytes]] = (),
) -> bool:
    """Record an answer the server gave without `answer` (malformed head, body too slow): each leaves a trace."""
    state = app[RECEIVER_STATE]
    headers = header_pairs(raw_headers)
    named = CIMultiDict((name.decode("latin-1"), value.decode("latin-1")) for name, value in raw_headers)
    origin, client = request_origin(named, state.config.origin_key)
    extra: dict[str, Any] = {"origin": origin, "reason": reason}
    if remote:
        extra["remote"] = remote
    if client:
        extra["client"] = client
    record = build_record(
        seq=next(state.seq),
        received_at=utc_timestamp(),
        kind="other",
        method=method,
        path=path,
        query=redact_verify_token(query, state.config.verify_tokens) if query else query,
        headers=headers,
        body=b"",
        status=status,
        response_body=answer,
        signature=_UNCHECKED,
        extra=extra,
    )
    return _commit(state, record)
