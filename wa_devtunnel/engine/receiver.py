"""The aiohttp receiver: answers Meta like a correct app would, and records every request."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from itertools import count
from typing import Any

from aiohttp import HttpVersion11, web

from wa_devtunnel.engine.events import EventBus, ExchangeRecorded, ForwardCompleted, Notice, RecordingHealth
from wa_devtunnel.engine.exchange import build_record, header_pairs, new_exchange_id, utc_timestamp
from wa_devtunnel.engine.forwarder import Forwarder, forward_headers
from wa_devtunnel.engine.origin import ORIGIN_HEADER, new_origin_key, trusted_origin, without_key
from wa_devtunnel.engine.recording import SessionRecorder
from wa_devtunnel.rules.decode.payload import SeenIds, WebhookSummary, decode_payload
from wa_devtunnel.rules.handshake import decide_handshake, redact_verify_token
from wa_devtunnel.rules.signature import (
    SIGNATURE_HEADER,
    SignatureCheck,
    SignatureVerdict,
    SigningKey,
    check_signature,
    signing_keys,
)

# How much of an oversized body is kept in the recording (the rest is not read at all).
OVERSIZE_PREFIX_BYTES = 64 * 1024
# Bodies above this are verified and decoded in a worker thread: the event loop keeps answering meanwhile.
OFFLOAD_BODY_BYTES = 64 * 1024
# Strangers learn nothing from an answer: the reason goes to our own screen and recording only.
GENERIC_ANSWERS = {
    400: "Bad Request",
    401: "Unauthorized",
    403: "Forbidden",
    404: "Not Found",
    405: "Method Not Allowed",
    413: "Payload Too Large",
    503: "Service Unavailable",
}
# Nothing in it confirms to a stranger that filling the disk worked; Meta only needs the status.
RECORDING_FAILED_ANSWER = GENERIC_ANSWERS[503]
# A body refused for its signature (--require-signature) is kept whole up to this size, else its start:
# Meta retries a refusal, and a stranger's flood must not fill the disk.
REFUSED_BODY_KEPT_BYTES = 256 * 1024


@dataclass(frozen=True, slots=True)
class ReceiverConfig:
    """What the receiver needs to decide, verify and label, built from Settings."""

    path: str
    handshake_tokens: Sequence[tuple[str, str]]
    signature_secrets: Sequence[tuple[str, str]] = ()
    wrong_signing_keys: Sequence[tuple[str, str]] = ()
    accounts_by_phone_number_id: Mapping[str, str] = field(default_factory=dict)
    max_body_bytes: int = 3_670_016
    require_signature: bool = False
    ack_first: bool = False
    ack_first_backlog_bytes: int = 64 * 1024 * 1024
    # Bytes of bodies being read at once, across connections: a stranger's slow megabytes stay bounded.
    body_memory_bytes: int = 128 * 1024 * 1024
    # Only requests carrying this session's key may label themselves selftest/sample/replay.
    origin_key: str = field(default_factory=new_origin_key, repr=False)
    # The verify tokens alone, for redacting them wherever a query carries them.
    verify_tokens: tuple[str, ...] = field(init=False, repr=False, compare=False)
    # The App Secrets as HMAC keys, encoded once here rather than on every request.
    signing_keys: tuple[SigningKey, ...] = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        object.__setattr__(self, "signing_keys", signing_keys(self.signature_secrets))
        object.__setattr__(self, "verify_tokens", tuple(token for _, token in self.handshake_tokens))


@dataclass(slots=True)
class ReceiverState:
    """Per-app mutable state: the session's sequence numbers and seen ids."""

    config: ReceiverConfig
    recorder: SessionRecorder | None
    bus: EventBus
    seq: count[int] = field(default_factory=lambda: count(1))
    seen: SeenIds = field(default_factory=SeenIds)
    exchanges: int = 0
    forwarder: Forwarder | None = None
    background: set[asyncio.Task[None]] = field(default_factory=set)
    backlog_bytes: int = 0
    body_bytes_in_flight: int = 0
    recording_failed: bool = False
    refused_unrecorded: int = 0


RECEIVER_STATE = web.AppKey("receiver_state", ReceiverState)
_UNCHECKED = SignatureVerdict.UNCHECKED.value
_ORIGIN_LOWER = ORIGIN_HEADER.lower()


class ReceiverBusy(Exception):
    """Bodies being read already hold the memory budget: this one is refused (503) rather than buffered."""

    def __init__(self, prefix: bytes, seen: int, in_flight: int) -> None:
        super().__init__(f"{in_flight} bytes of other bodies being read")
        self.prefix = prefix
        self.seen = seen


async def _read_body(state: ReceiverState, request: web.Request, limit: int) -> tuple[bytes, bool, int]:
    """Read the raw body up to `limit`; return (bytes kept, oversized?, bytes seen).

    Bodies still arriving share one memory budget (ReceiverConfig.body_memory_bytes): past it the read
    stops with ReceiverBusy. A client that goes away mid-body frees its buffers at once (the exception's
    traceback would otherwise keep them alive until a full garbage collection).
    """
    if request.content.is_eof():  # a small body usually arrives whole with its headers: take it as is
        body = request.content.read_nowait()
        if len(body) <= limit:
            return body, False, len(body)
        return body[:OVERSIZE_PREFIX_BYTES], True, len(body)
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


def _matches_webhook_path(path: str, webhook_path: str) -> bool:
    return path == webhook_path or path.rstrip("/") == webhook_path.rstrip("/")


def _commit(state: ReceiverState, record: dict[str, Any]) -> bool:
    """Persist before answering (nothing acknowledged is ever lost), then notify front ends.

    False when the line could not be written whole: the caller answers 503 so Meta retries, and the
    record (marked with the error) still reaches the front ends.
    """
    offset = -1
    path = None
    recorded = True
    if state.recorder is not None:
        try:
            offset = state.recorder.append(record)
            path = state.recorder.path  # after a rollover, the new part
        except OSError as exc:
            recorded = False
            _recording_trouble(state, record, exc)
        else:
            # Only Meta's kind of request proves recovery: a stranger's tiny 404 may fit where an event did not.
            if state.recording_failed and record["kind"] != "other":
                _recording_recovered(state)
    state.exchanges += 1
    state.bus.publish(ExchangeRecorded(None, record, offset, path))
    return recorded


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


async def handle_any(request: web.Request) -> web.StreamResponse:
    """Single entry point: the webhook path gets Meta's semantics, anything else is recorded as other."""
    started = time.perf_counter()
    state = request.app[RECEIVER_STATE]
    config = state.config
    received_at = utc_timestamp()
    method = request.method
    raw_query = request.rel_url.raw_query_string
    headers = header_pairs(request.raw_headers)
    origin_value = request.headers.get(ORIGIN_HEADER)
    extra: dict[str, Any] = {"origin": trusted_origin(origin_value, config.origin_key)}
    if origin_value is not None:  # the session key is never written down
        wanted = ORIGIN_HEADER.lower()
        headers = [[name, without_key(value) if name.lower() == wanted else value] for name, value in headers]
    if request.remote:
        extra["remote"] = request.remote
    body = b""
    truncated = False
    seen_bytes = 0
    on_path = _matches_webhook_path(request.path, config.path)
    # --require-signature and no signature at all: the answer is 401 whatever follows, so only the start is read.
    unsigned_refusal = (
        config.require_signature and on_path and method == "POST" and SIGNATURE_HEADER not in request.headers
    )
    busy: ReceiverBusy | None = None
    if request.can_read_body:
        limit = OVERSIZE_PREFIX_BYTES if unsigned_refusal else config.max_body_bytes
        try:
            body, truncated, seen_bytes = await _read_body(state, request, limit)
        except ReceiverBusy as exc:
            busy, body, truncated, seen_bytes = exc, exc.prefix, True, exc.seen
    oversized = truncated and not unsigned_refusal and busy is None
    signature = _UNCHECKED
    # The token is redacted whatever the path or method (Meta's handshake may hit a mistyped path).
    query = redact_verify_token(raw_query, config.verify_tokens) if raw_query else raw_query

    attempt = None
    if busy is not None:
        kind = "event" if on_path and method == "POST" else "other"
        status, text = 503, GENERIC_ANSWERS[503]
        extra["reason"] = f"receiver busy: {busy} (WA_DEVTUNNEL_BODY_MEMORY_BYTES); Meta retries a 503"
        if kind == "event":
            extra["summary"] = {"ok": False, "problem": extra["reason"]}
    elif on_path and method == "GET":
        kind = "verify"
        attempt = decide_handshake(raw_query, config.handshake_tokens)
        status, text = attempt.status, attempt.body
        extra["verify"] = {"ok": attempt.ok, "reason": attempt.reason}
        if attempt.account:
            extra["account"] = attempt.account
    elif on_path and method == "POST":
        kind = "event"
        status, text, signature = await _answer_event(state, request, body, oversized, seen_bytes, extra)
    elif on_path:
        kind = "other"
        status, text = 405, GENERIC_ANSWERS[405]
        extra["reason"] = f"method {method} not allowed: Meta sends GET (handshake) and POST (events)"
    else:
        kind = "other"
        status, text = 404, GENERIC_ANSWERS[404]
        extra["reason"] = f"not the webhook path ({config.path})"

    relayed: bytes | None = None
    relayed_type = ""
    forward_later: list[tuple[str, str]] | None = None
    # With --require-signature a bad signature is refused here, like a strict app: it never reaches the backend.
    refused_here = config.require_signature and status in (401, 403) and kind == "event"
    if state.forwarder is not None and kind in ("verify", "event") and not truncated and not refused_here:
        outgoing = forward_headers(
            [
                (name, without_key(value) if name.lower() == _ORIGIN_LOWER else value)  # the key stays with us
                for name, value in ((k.decode("latin-1"), v.decode("latin-1")) for k, v in request.raw_headers)
            ],
            request.remote,
            request.host,
            request.scheme,
        )
        # The handshake is the backend's to answer, always; past the backlog cap, back-pressure instead of memory.
        if config.ack_first and kind == "event" and state.backlog_bytes + len(body) <= config.ack_first_backlog_bytes:
            extra["forward"] = {"url": state.forwarder.target_url, "status": None, "pending": True}
            forward_later = outgoing
        else:
            if config.ack_first and kind == "event":
                extra["forward_inline"] = f"--ack-first backlog full ({state.backlog_bytes} bytes waiting)"
            result = await state.forwarder.forward(method, raw_query, outgoing, body)
            extra["forward"] = result.to_record()
            status = result.relay_status
            relayed = result.body if result.error is None else result.error.encode("utf-8")
            relayed_type = result.content_type if result.error is None else ""
            text = relayed.decode("utf-8", "replace")
            if result.error is not None:
                _backend_trouble(state, result.error, retried=True)
            if attempt is not None:  # a forwarded handshake
                extra["verify"] = _backend_verdict(attempt.challenge, result.status, result.body, extra["verify"])
    if refused_here and len(body) > REFUSED_BODY_KEPT_BYTES:
        truncated, seen_bytes, body = True, len(body), body[:OVERSIZE_PREFIX_BYTES]
    if truncated:
        extra["request_body_truncated"] = True
        extra["request_body_size"] = seen_bytes
    extra["elapsed_ms"] = round((time.perf_counter() - started) * 1000, 3)
    record = build_record(
        seq=next(state.seq),
        received_at=received_at,
        kind=kind,
        method=method,
        path=request.path or request.raw_path,  # CONNECT host:443 has no path, only a target
        query=query,
        headers=headers,
        body=body,
        status=status,
        response_body=text,
        signature=signature,
        extra=extra,
    )
    if not _commit(state, record):
        return _plain(503, RECORDING_FAILED_ANSWER)
    if forward_later is not None and state.forwarder is not None:
        state.backlog_bytes += len(body)
        task = asyncio.ensure_future(_forward_in_background(state, record, method, raw_query, forward_later, body))
        state.background.add(task)
        task.add_done_callback(state.background.discard)
    if relayed is not None:  # the backend's answer, byte for byte, with its own Content-Type
        response = web.Response(status=status, body=relayed)
        response.headers["Content-Type"] = relayed_type or "text/plain"
        response.headers["X-Content-Type-Options"] = "nosniff"
        return response
    response = _plain(status, text)
    if kind == "other" and status == 405:
        response.headers["Allow"] = "GET, POST"
    return response


def _plain(status: int, text: str) -> web.Response:
    """Our own answers: UTF-8 text that no browser may sniff into HTML (the challenge is sender-chosen)."""
    response = web.Response(status=status, body=text.encode("utf-8"), content_type="text/plain", charset="utf-8")
    response.headers["X-Content-Type-Options"] = "nosniff"
    return response


def _backend_trouble(state: ReceiverState, error: str, *, retried: bool) -> None:
    """Say what failed and what happens next: Meta retries a non-200, not an event it already has a 200 for."""
    consequence = (
        "Meta got that answer and will retry this delivery."
        if retried
        else "Meta already had its 200 (--ack-first) and will not retry: replay it (p, or wa-devtunnel replay)."
    )
    state.bus.publish(Notice("error", f"{error[:1].upper()}{error[1:]}. {consequence}", topic="forward"))


def _backend_verdict(challenge: str | None, status: int | None, body: bytes, local: dict[str, Any]) -> dict[str, Any]:
    """A forwarded handshake passes or fails by what Meta got from the backend; our own check is kept too."""
    ok = status == 200 and challenge is not None and body == challenge.encode("utf-8")
    if ok:
        reason = ""
    elif status is None:
        reason = "the backend did not answer"
    elif status == 200:
        reason = "the backend answered 200 but not with the challenge verbatim"
    else:
        reason = f"the backend refused it (HTTP {status})"
    return {"ok": ok, "reason": reason, "local": dict(local)}


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


async def _answer_event(
    state: ReceiverState,
    request: web.Request,
    body: bytes,
    oversized: bool,
    seen_bytes: int,
    extra: dict[str, Any],
) -> tuple[int, str, str]:
    """Decide the answer to a POST; fills `extra` with signature detail and the decoded summary."""
    config = state.config
    if oversized:
        limit = config.max_body_bytes
        extra["summary"] = {"ok": False, "problem": f"body of {seen_bytes} bytes exceeds {limit}"}
        return 413, GENERIC_ANSWERS[413], "unchecked"
    signature_header = request.headers.get("X-Hub-Signature-256")
    legacy_header = request.headers.get("X-Hub-Signature")
    if len(body) > OFFLOAD_BODY_BYTES:  # hashing and decoding megabytes must not hold the event loop
        check, summary = await asyncio.get_running_loop().run_in_executor(
            None, _verify_and_decode, state, body, signature_header, legacy_header
        )
    else:
        check, summary = _verify_and_decode(state, body, signature_header, legacy_header)
    extra["signature_detail"] = check.detail
    verdict = check.verdict.value
    refused = _refusal(config, check)
    if summary is None:
        extra["summary"] = {"ok": False, "problem": "not decoded: refused for its signature (--require-signature)"}
    else:
        extra["summary"] = summary.to_dict()
        _label_account(summary, check, extra)
    if refused is not None:
        return refused, GENERIC_ANSWERS[refused], verdict
    assert summary is not None
    if not body:  # the reason is the summary's problem, on our side only
        return 400, GENERIC_ANSWERS[400], verdict
    if not summary.ok and summary.problem.startswith(("body is not JSON", "JSON is not an object")):
        return 400, GENERIC_ANSWERS[400], verdict
    return 200, "EVENT_RECEIVED", verdict


def _refusal(config: ReceiverConfig, check: SignatureCheck) -> int | None:
    """With --require-signature a missing signature is 401 and a wrong one 403, like a strict app."""
    if config.require_signature and check.verdict is SignatureVerdict.MISSING:
        return 401
    if config.require_signature and check.verdict is SignatureVerdict.INVALID:
        return 403
    return None


def _verify_and_decode(
    state: ReceiverState, body: bytes, signature_header: str | None, legacy_header: str | None
) -> tuple[SignatureCheck, WebhookSummary | None]:
    """The signature first; the decoding (the expensive part) only for a body that will be accepted."""
    config = state.config
    check = check_signature(
        body,
        signature_header,
        config.signature_secrets,
        config.wrong_signing_keys,
        legacy_header=legacy_header,
        keys=config.signing_keys,
    )
    if _refusal(config, check) is not None:
        return check, None
    unproven = check.verdict in (SignatureVerdict.INVALID, SignatureVerdict.MISSING)
    if unproven and len(body) > REFUSED_BODY_KEPT_BYTES:  # a stranger's megabytes are not worth a decode
        problem = f"not decoded: {len(body)} bytes without a valid signature (the body is recorded)"
        return check, WebhookSummary(False, problem, "", (), (), (), problem)
    summary = decode_payload(body, accounts_by_phone_number_id=config.accounts_by_phone_number_id, seen=state.seen)
    return check, summary


def _label_account(summary: WebhookSummary, check: SignatureCheck, extra: dict[str, Any]) -> None:
    """The account the items name, or the one whose App Secret signed the body."""
    accounts = set()
    for item in summary.items:
        account = getattr(item, "account", None)  # field updates and change errors have none
        if account is not None:
            accounts.add(account)
    if len(accounts) == 1:
        extra["account"] = accounts.pop()
    elif check.account and check.verdict is SignatureVerdict.VALID:
        extra["account"] = check.account


async def _expect(request: web.Request) -> None:
    """`Expect: 100-continue` is honoured; any other expectation is ignored and the request answered as usual.

    (aiohttp's default answers 417 itself, echoing the sender's header and recording nothing.)
    """
    if request.version == HttpVersion11 and request.headers.get("Expect", "").lower() == "100-continue":
        await request.writer.write(b"HTTP/1.1 100 Continue\r\n\r\n")
        request.writer.output_size = 0


def create_receiver_app(
    config: ReceiverConfig, bus: EventBus, recorder: SessionRecorder | None, forwarder: Forwarder | None = None
) -> web.Application:
    """App factory: one catch-all route so that every request is answered and recorded by us."""
    # Bodies are recorded, verified and forwarded exactly as sent: never decompressed on the way in.
    app = web.Application(client_max_size=config.max_body_bytes + 1, handler_args={"auto_decompress": False})
    app[RECEIVER_STATE] = ReceiverState(config=config, recorder=recorder, bus=bus, forwarder=forwarder)
    if config.path.startswith("/") and not {"{", "}", "%"} & set(config.path):
        # Meta's deliveries find the handler by a dict lookup instead of the catch-all's regex.
        app.router.add_route("*", config.path, handle_any, expect_handler=_expect)
    app.router.add_route("*", "/{tail:.*}", handle_any, expect_handler=_expect)
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
    """Record an answer the server gave without handle_any (malformed head, body too slow): each leaves a trace."""
    state = app[RECEIVER_STATE]
    headers = header_pairs(raw_headers)
    wanted = ORIGIN_HEADER.lower()
    headers = [[name, without_key(value) if name.lower() == wanted else value] for name, value in headers]
    extra: dict[str, Any] = {"origin": trusted_origin(None, state.config.origin_key), "reason": reason}
    if remote:
        extra["remote"] = remote
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
