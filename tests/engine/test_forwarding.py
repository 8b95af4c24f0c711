"""Live forwarding (issue 5, part 1) against a real backend app that checks signatures with its own secret.

The backend (tests/backend_app.py) runs on a local port; our receiver forwards to it. Everything is
offline, on port 0, and every server, client and background task is closed by the fixtures.
"""

from __future__ import annotations

import asyncio
import json
import signal
import socket
from collections.abc import AsyncIterator, Callable, Iterator, Sequence
from dataclasses import dataclass, field
from io import StringIO
from pathlib import Path
from typing import Any

import aiohttp
import pytest
from aiohttp import web

from tests.support import cli_process
from tests.support.backend_app import BackendBehaviour, create_backend_app
from tests.support.constants import APP_SECRET, VERIFY_TOKEN
from tests.support.meta_client import MetaLikeSender, meta_signature
from tests.support.receiver_harness import ReceiverHarness, ReceiverTestServer
from wa_devtunnel.cli.headless import HeadlessPrinter, format_exchange_line
from wa_devtunnel.engine.events import EngineEvent, EventBus, ExchangeRecorded, ForwardCompleted, Notice, Subscription
from wa_devtunnel.engine.exchange_view import view_from_record
from wa_devtunnel.engine.forwarder import Forwarder, forward_headers
from wa_devtunnel.engine.receiver import RECEIVER_STATE, ReceiverConfig, create_receiver_app
from wa_devtunnel.engine.recording import SessionRecorder, read_recording, request_body
from wa_devtunnel.engine.service import WebhookService
from wa_devtunnel.rules.samples import payloads as samples
from wa_devtunnel.settings import load_settings

WEBHOOK = "/webhook/whatsapp"
BACKEND_TOKEN = "backend-verify-token"
# Meta's escaped style: \u00e4 / \u00f6 for umlauts, a UTF-16 surrogate pair for the emoji, "\/" for "/".
TRICKY_TEXT = "Größe? ä 😮 https://shop.example/a/b"
HOP_BY_HOP_SENT = (
    "Connection",
    "Keep-Alive",
    "TE",
    "Upgrade",
    "Proxy-Authorization",
    "Proxy-Connection",
    "Proxy-Authenticate",
    "Transfer-Encoding",
)
FORWARDED_NAMES = ("x-forwarded-for", "x-forwarded-proto", "x-forwarded-host")
# Set by the HTTP client for the new hop, not copied from Meta's request.
NEW_HOP_NAMES = ("host", "content-length")


def meta_body() -> bytes:
    body = samples.text_message_payload(text=TRICKY_TEXT)
    assert b"\\u00e4" in body and b"\\u00f6" in body and b"\\ud83d\\ude2e" in body and b"\\/" in body
    return body


# --------------------------------------------------------------------------- the developer's backend


@dataclass(frozen=True)
class SeenByBackend:
    """The request line target and header lines exactly as they reached the backend."""

    raw_path: str
    raw_headers: tuple[tuple[str, str], ...]


@dataclass
class Backend:
    behaviour: BackendBehaviour
    url: str
    port: int
    seen: list[SeenByBackend] = field(default_factory=list)

    def header_names(self, index: int = -1) -> list[str]:
        return [name for name, _ in self.seen[index].raw_headers]

    def header(self, name: str, index: int = -1) -> list[str]:
        return [v for n, v in self.seen[index].raw_headers if n.lower() == name.lower()]


def _capturing_backend_app(behaviour: BackendBehaviour, seen: list[SeenByBackend]) -> web.Application:
    app = create_backend_app(behaviour)

    @web.middleware
    async def capture(request: web.Request, handler: Any) -> web.StreamResponse:
        headers = tuple((k.decode("latin-1"), v.decode("latin-1")) for k, v in request.raw_headers)
        seen.append(SeenByBackend(request.raw_path, headers))
        return await handler(request)

    app.middlewares.append(capture)
    return app


@pytest.fixture
async def backend() -> AsyncIterator[Backend]:
    """The developer's app: its secret is Meta's App Secret, its verify token is its own."""
    behaviour = BackendBehaviour(app_secret=APP_SECRET, verify_token=BACKEND_TOKEN)
    seen: list[SeenByBackend] = []
    # handler_cancellation: a handler still sleeping when our forwarder gives up ends at once.
    runner = web.AppRunner(
        _capturing_backend_app(behaviour, seen), access_log=None, handler_cancellation=True, shutdown_timeout=2
    )
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    port = runner.addresses[0][1]
    try:
        yield Backend(behaviour, f"http://127.0.0.1:{port}{WEBHOOK}", port, seen)
    finally:
        await runner.cleanup()


@pytest.fixture
def dead_backend_url() -> Iterator[str]:
    """A port that is bound but not listening: connecting is refused, and nobody else can take it."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        yield f"http://127.0.0.1:{sock.getsockname()[1]}{WEBHOOK}"


# --------------------------------------------------------------------------- our receiver, forwarding


class ForwardingHarness(ReceiverHarness):
    """The receiver with a Forwarder, its bus subscribed from the start."""

    def __init__(
        self, client: Any, recorder: SessionRecorder, bus: EventBus, subscription: Subscription, forwarder: Forwarder
    ) -> None:
        super().__init__(client, recorder, bus, client.server.app[RECEIVER_STATE].config)
        self.subscription = subscription
        self.forwarder = forwarder
        self._skipped: list[EngineEvent] = []

    @property
    def url(self) -> str:
        return str(self.client.make_url(WEBHOOK))

    def sender(self, app_secret: str | None = APP_SECRET) -> MetaLikeSender:
        return MetaLikeSender(self.client.session, self.url, app_secret)

    def events(self) -> list[EngineEvent]:
        """Every event published so far and not yet taken (including those wait_for passed over)."""
        events, self._skipped = [*self._skipped, *self.subscription.drain()], []
        return events

    async def wait_for(self, kind: type[Any], timeout: float = 5.0) -> Any:
        """The next event of this type; the others stay available to events()."""

        async def next_one() -> Any:
            while True:
                event = await self.subscription.get()
                if isinstance(event, kind):
                    return event
                self._skipped.append(event)

        return await asyncio.wait_for(next_one(), timeout)

    async def settle(self) -> None:
        """Wait for --ack-first forwards still in flight."""
        pending = list(self.client.server.app[RECEIVER_STATE].background)
        if pending:
            await asyncio.wait(pending, timeout=10)

    def exchange_records(self) -> list[dict[str, Any]]:
        return [r for r in self.records() if r["kind"] != "forward_update"]


@pytest.fixture
async def make_forwarding_receiver(
    aiohttp_client: Callable[..., Any], tmp_path: Path
) -> AsyncIterator[Callable[..., Any]]:
    """Like conftest's make_receiver, plus `forwarder=Forwarder(target, timeout_s)`."""
    made: list[ForwardingHarness] = []

    async def factory(target_url: str, *, timeout_s: float = 5.0, **overrides: Any) -> ForwardingHarness:
        options: dict[str, Any] = {
            "path": WEBHOOK,
            "handshake_tokens": (("default", VERIFY_TOKEN),),
            "signature_secrets": (("default", APP_SECRET),),
            "wrong_signing_keys": (("the verify token", VERIFY_TOKEN),),
        }
        options.update(overrides)
        bus = EventBus()
        subscription = bus.subscribe()
        recorder = SessionRecorder(tmp_path / f"recordings-{len(made)}")
        forwarder = Forwarder(target_url, timeout_s)
        app = create_receiver_app(ReceiverConfig(**options), bus, recorder, forwarder)
        client = await aiohttp_client(ReceiverTestServer(app, bus, forwarding=True))
        harness = ForwardingHarness(client, recorder, bus, subscription, forwarder)
        made.append(harness)
        return harness

    yield factory
    for harness in made:
        await harness.settle()
        await harness.forwarder.close()
        harness.recorder.close()


async def raw_request(port: int, head: Sequence[str], body: bytes = b"") -> tuple[int, bytes]:
    """One HTTP/1.1 request written byte for byte (header order, case, duplicates as given)."""
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    try:
        writer.write(("\r\n".join(head) + "\r\n\r\n").encode("latin-1") + body)
        await writer.drain()
        raw = await asyncio.wait_for(reader.read(), timeout=5)
    finally:
        writer.close()
        await writer.wait_closed()
    status_line, _, rest = raw.partition(b"\r\n")
    _, _, response_body = rest.partition(b"\r\n\r\n")
    return int(status_line.split()[1]), response_body


# --------------------------------------------------------------------------- exact bytes, signatures


def _batch_body() -> bytes:
    messages = [samples.text_message(f"message {i}: {TRICKY_TEXT}", message_id=f"wamid.{i}") for i in range(2000)]
    return samples.meta_json(samples.envelope([samples.messages_change(messages)]))


BODIES = {
    "meta-escaped": meta_body,
    "unescaped-slashes": lambda: samples.text_message_payload(text=TRICKY_TEXT, escape_slashes=False),
    "raw-utf8-pretty": lambda: json.dumps(
        json.loads(samples.text_message_payload(text=TRICKY_TEXT)), ensure_ascii=False, indent=2
    ).encode("utf-8"),
    "dashboard-test-button": samples.dashboard_test_sample,
    "batch-of-2000": _batch_body,
}


@pytest.mark.parametrize("make_body", BODIES.values(), ids=BODIES.keys())
async def test_post_arrives_byte_identical_and_backend_signature_check_passes(
    make_forwarding_receiver: Callable[..., Any], backend: Backend, make_body: Callable[[], bytes]
) -> None:
    body = make_body()
    receiver = await make_forwarding_receiver(backend.url)
    assert await receiver.sender().deliver(body, attempts=1) == [200]

    (got,) = backend.behaviour.received
    assert got.method == "POST"
    assert got.body == body
    assert got.signature_ok is True  # Meta's original X-Hub-Signature-256, verified by the backend's own code
    assert got.headers["X-Hub-Signature-256"] == meta_signature(body, APP_SECRET)
    (record,) = receiver.records()
    assert request_body(record["request"]) == body
    assert record["signature"] == "valid"


async def test_backend_status_body_and_latency_are_relayed_and_recorded(
    make_forwarding_receiver: Callable[..., Any], backend: Backend
) -> None:
    body = meta_body()
    receiver = await make_forwarding_receiver(backend.url)
    headers = receiver.sender().headers_for(body)
    async with receiver.client.session.post(receiver.url, data=body, headers=headers) as response:
        assert response.status == 200
        assert await response.text() == "backend says 200"  # the backend's body, not our EVENT_RECEIVED
        assert response.content_type == "text/plain"

    (record,) = receiver.records()
    assert record["response"] == {"status": 200, "body": "backend says 200"}
    forward = record["forward"]
    assert forward["url"] == backend.url
    assert forward["status"] == 200
    assert forward["body"] == "backend says 200"
    assert forward["error"] is None
    assert isinstance(forward["elapsed_ms"], float) and 0 < forward["elapsed_ms"] < 5000


async def test_concurrent_deliveries_each_arrive_intact(
    make_forwarding_receiver: Callable[..., Any], backend: Backend
) -> None:
    receiver = await make_forwarding_receiver(backend.url)
    bodies = [samples.text_message_payload(text=f"#{i} {TRICKY_TEXT}") for i in range(20)]
    results = await asyncio.gather(*(receiver.sender().deliver(b, attempts=1) for b in bodies))
    assert results == [[200]] * len(bodies)
    assert sorted(r.body for r in backend.behaviour.received) == sorted(bodies)
    assert all(r.signature_ok for r in backend.behaviour.received)


async def test_backend_with_another_secret_rejects_and_meta_sees_its_403(
    make_forwarding_receiver: Callable[..., Any], backend: Backend
) -> None:
    """The backend decides, as in production: its own signature check fails, so Meta gets its 403."""
    backend.behaviour.app_secret = "not-the-app-secret"
    receiver = await make_forwarding_receiver(backend.url)
    assert await receiver.sender().deliver(meta_body(), attempts=1) == [403]
    (record,) = receiver.records()
    assert record["signature"] == "valid"  # our own check (right secret) still says valid
    assert record["forward"]["status"] == 403
    assert record["forward"]["body"] == "backend: invalid signature"
    assert record["response"]["status"] == 403


# --------------------------------------------------------------------------- headers


def _signed_head(port: int, body: bytes, *lines: str) -> list[str]:
    return [
        f"POST {WEBHOOK} HTTP/1.1",
        f"Host: 127.0.0.1:{port}",
        *lines,
        f"Content-Length: {len(body)}",
    ]


def _end_to_end(pairs: Sequence[tuple[str, str]]) -> list[tuple[str, str]]:
    """Headers that must be copied as they are: not hop-by-hop, not new-hop, not X-Forwarded-*."""
    skip = {n.lower() for n in HOP_BY_HOP_SENT} | set(FORWARDED_NAMES) | set(NEW_HOP_NAMES)
    return [(n, v) for n, v in pairs if n.lower() not in skip]


async def test_headers_keep_order_case_and_duplicates_minus_hop_by_hop(
    make_forwarding_receiver: Callable[..., Any], backend: Backend
) -> None:
    body = meta_body()
    receiver = await make_forwarding_receiver(backend.url)
    port = receiver.client.server.port
    sent = [
        ("User-Agent", "facebookexternalua"),
        ("Keep-Alive", "timeout=5"),
        ("accept", "*/*"),
        ("Accept-Encoding", "deflate, gzip"),
        ("TE", "trailers"),
        ("Content-Type", "application/json"),
        ("Upgrade", "h2c"),
        ("x-hub-signature", "sha1=" + "0" * 40),
        ("X-Hub-Signature-256", meta_signature(body, APP_SECRET)),
        ("Proxy-Authorization", "Basic cHJveHk6c2VjcmV0"),
        ("Proxy-Connection", "keep-alive"),
        ("Proxy-Authenticate", "Basic"),
        ("X-Trace", "first"),
        ("Authorization", "Bearer kept-for-the-backend"),
        ("X-Trace", "second"),
        ("Connection", "close"),
    ]
    status, answer = await raw_request(port, _signed_head(port, body, *(f"{n}: {v}" for n, v in sent)), body)
    assert (status, answer) == (200, b"backend says 200")

    (got,) = backend.behaviour.received
    assert got.body == body and got.signature_ok is True
    arrived = backend.seen[0].raw_headers
    assert _end_to_end(arrived) == _end_to_end(sent)  # same names, case, values, order and duplicates
    arrived_names = {n.lower() for n, _ in arrived}
    assert not arrived_names & {n.lower() for n in HOP_BY_HOP_SENT}, arrived
    assert backend.header("Host") == [f"127.0.0.1:{backend.port}"]
    assert backend.header("Content-Length") == [str(len(body))]
    assert backend.header("X-Forwarded-For") == ["127.0.0.1"]
    assert backend.header("X-Forwarded-Proto") == ["http"]
    assert backend.header("X-Forwarded-Host") == [f"127.0.0.1:{port}"]
    # The recording keeps what Meta sent (credentials redacted), not what the backend got.
    recorded = receiver.records()[0]["request"]["headers"]
    assert [n for n, _ in recorded] == ["Host", *(n for n, _ in sent), "Content-Length"]


async def test_behind_the_tunnel_only_the_nearest_hop_is_believed(
    make_forwarding_receiver: Callable[..., Any], backend: Backend
) -> None:
    """Behind ngrok: the agent's own X-Forwarded-For entry and Proto count; a sender's made-up ones do not."""
    body = meta_body()
    receiver = await make_forwarding_receiver(backend.url)
    port = receiver.client.server.port
    head = [
        f"POST {WEBHOOK} HTTP/1.1",
        "Host: abc123.ngrok-free.app",  # ngrok keeps the public Host
        "User-Agent: facebookexternalua",
        "Content-Type: application/json",
        f"X-Hub-Signature-256: {meta_signature(body, APP_SECRET)}",
        "X-Forwarded-For: 10.6.6.6, 173.252.95.7",  # the sender's claim, then what the agent appended
        "X-Forwarded-Proto: https",
        "X-Forwarded-Host: evil.example",
        "Forwarded: for=10.6.6.6;host=evil.example;proto=http",
        "X-Real-IP: 10.6.6.6",
        f"Content-Length: {len(body)}",
        "Connection: close",
    ]
    assert await raw_request(port, head, body) == (200, b"backend says 200")
    assert backend.header("X-Forwarded-For") == ["173.252.95.7"]
    assert backend.header("X-Forwarded-Proto") == ["https"]
    assert backend.header("X-Forwarded-Host") == ["abc123.ngrok-free.app"]
    assert backend.header("Forwarded") == [] and backend.header("X-Real-IP") == []
    assert backend.behaviour.received[0].signature_ok is True


def test_a_remote_peer_cannot_claim_another_client() -> None:
    """Not through our tunnel (e.g. --host 0.0.0.0 on a LAN): every client-sent proxy header is replaced."""
    sent = [("X-Forwarded-For", "1.2.3.4"), ("X-Forwarded-Proto", "https"), ("X-Real-IP", "1.2.3.4"), ("A", "b")]
    assert forward_headers(sent, "192.168.1.20", "laptop:8765", "http") == [
        ("A", "b"),
        ("X-Forwarded-For", "192.168.1.20"),
        ("X-Forwarded-Proto", "http"),
        ("X-Forwarded-Host", "laptop:8765"),
    ]


async def test_the_client_the_backend_gets_is_the_one_the_recording_names(
    make_forwarding_receiver: Callable[..., Any], backend: Backend
) -> None:
    """One rule for the tunnel's last hop (origin.tunnel_client): cloudflared's Cf-Connecting-Ip counts too."""
    body = meta_body()
    receiver = await make_forwarding_receiver(backend.url)
    port = receiver.client.server.port
    head = _signed_head(
        port,
        body,
        "Content-Type: application/json",
        f"X-Hub-Signature-256: {meta_signature(body, APP_SECRET)}",
        "Cf-Connecting-Ip: 173.252.95.9",
        "Connection: close",
    )
    assert await raw_request(port, head, body) == (200, b"backend says 200")
    assert backend.header("X-Forwarded-For") == ["173.252.95.9"]
    assert backend.header("Cf-Connecting-Ip") == []
    assert receiver.records()[0]["client"] == "173.252.95.9"


def test_our_origin_header_reaches_the_backend_without_its_key() -> None:
    sent = [("X-WA-Devtunnel-Origin", "replay; key=secret-session-key"), ("A", "b")]
    assert forward_headers(sent, "192.168.1.20", "laptop:8765", "http")[:2] == [
        ("X-WA-Devtunnel-Origin", "replay"),
        ("A", "b"),
    ]


async def test_no_cookie_from_the_backend_is_added_to_the_next_request() -> None:
    """A proxy passes on what it was given: the forwarder keeps no cookie jar."""
    cookies: list[str | None] = []

    async def handler(request: web.Request) -> web.Response:
        cookies.append(request.headers.get("Cookie"))
        response = web.Response(text="ok")
        response.set_cookie("session", "backend-set")
        return response

    app = web.Application()
    app.router.add_post(WEBHOOK, handler)
    runner = web.AppRunner(app, access_log=None)
    await runner.setup()
    await web.TCPSite(runner, "127.0.0.1", 0).start()
    forwarder = Forwarder(f"http://localhost:{runner.addresses[0][1]}{WEBHOOK}")  # a name: jars skip bare IPs
    try:
        for _ in range(2):
            result = await forwarder.forward("POST", "", [("Content-Type", "application/json")], b"{}")
            assert result.status == 200, result.error
    finally:
        await forwarder.close()
        await runner.cleanup()
    assert cookies == [None, None]


async def test_chunked_request_arrives_whole_without_transfer_encoding(
    make_forwarding_receiver: Callable[..., Any], backend: Backend
) -> None:
    body = meta_body()
    receiver = await make_forwarding_receiver(backend.url)
    port = receiver.client.server.port
    half = len(body) // 2
    chunked = (
        b"".join(f"{len(part):x}\r\n".encode() + part + b"\r\n" for part in (body[:half], body[half:])) + b"0\r\n\r\n"
    )
    head = [
        f"POST {WEBHOOK} HTTP/1.1",
        f"Host: 127.0.0.1:{port}",
        "Content-Type: application/json",
        f"X-Hub-Signature-256: {meta_signature(body, APP_SECRET)}",
        "Transfer-Encoding: chunked",
        "Connection: close",
    ]
    assert await raw_request(port, head, chunked) == (200, b"backend says 200")
    (got,) = backend.behaviour.received
    assert got.body == body and got.signature_ok is True
    assert backend.header("Transfer-Encoding") == []
    assert backend.header("Content-Length") == [str(len(body))]


async def test_headers_named_in_connection_are_hop_by_hop_too(
    make_forwarding_receiver: Callable[..., Any], backend: Backend
) -> None:
    body = meta_body()
    receiver = await make_forwarding_receiver(backend.url)
    port = receiver.client.server.port
    head = _signed_head(
        port,
        body,
        "Content-Type: application/json",
        f"X-Hub-Signature-256: {meta_signature(body, APP_SECRET)}",
        "X-Hop-Secret: for-the-tunnel-only",
        "Connection: close, X-Hop-Secret",
    )
    assert await raw_request(port, head, body) == (200, b"backend says 200")
    assert backend.header("X-Hop-Secret") == []


async def test_of_several_x_forwarded_for_lines_only_the_last_entry_counts(
    make_forwarding_receiver: Callable[..., Any], backend: Backend
) -> None:
    body = meta_body()
    receiver = await make_forwarding_receiver(backend.url)
    port = receiver.client.server.port
    head = _signed_head(
        port,
        body,
        "Content-Type: application/json",
        f"X-Hub-Signature-256: {meta_signature(body, APP_SECRET)}",
        "X-Forwarded-For: 173.252.95.7",
        "X-Forwarded-For: 10.0.0.2",
        "Connection: close",
    )
    assert await raw_request(port, head, body) == (200, b"backend says 200")
    assert backend.header("X-Forwarded-For") == ["10.0.0.2"]


# --------------------------------------------------------------------------- the handshake


async def test_handshake_is_answered_by_the_backend_with_its_token(
    make_forwarding_receiver: Callable[..., Any], backend: Backend
) -> None:
    receiver = await make_forwarding_receiver(backend.url)
    result = await receiver.sender().handshake(BACKEND_TOKEN, challenge="1158201444")
    assert result.accepted, result  # 200, the challenge verbatim, text/plain: Meta is satisfied

    (got,) = backend.behaviour.received
    assert got.method == "GET"
    query = f"hub.mode=subscribe&hub.challenge=1158201444&hub.verify_token={BACKEND_TOKEN}"
    assert backend.seen[0].raw_path == f"{WEBHOOK}?{query}"
    (record,) = receiver.records()
    assert record["kind"] == "verify"
    assert record["response"] == {"status": 200, "body": "1158201444"}
    assert record["forward"]["status"] == 200 and record["forward"]["body"] == "1158201444"
    assert BACKEND_TOKEN not in json.dumps(record)  # still redacted in the recording


async def test_handshake_refused_by_the_backend_is_refused_to_meta(
    make_forwarding_receiver: Callable[..., Any], backend: Backend
) -> None:
    """Our own token is not the backend's: the backend's 403 is what Meta gets."""
    receiver = await make_forwarding_receiver(backend.url)
    result = await receiver.sender().handshake(VERIFY_TOKEN)
    assert not result.accepted
    assert (result.status, result.body) == (403, "backend: bad verify token")
    (record,) = receiver.records()
    assert record["forward"]["status"] == 403
    assert record["response"]["status"] == 403


async def test_handshake_verdict_reflects_the_backends_answer(
    make_forwarding_receiver: Callable[..., Any], backend: Backend
) -> None:
    receiver = await make_forwarding_receiver(backend.url)
    assert (await receiver.sender().handshake(BACKEND_TOKEN, challenge="42")).accepted
    (record,) = receiver.records()
    view = view_from_record(record)
    assert view.verify_ok is True
    assert "FAILED" not in format_exchange_line(view)


async def test_handshake_query_string_is_forwarded_verbatim(
    make_forwarding_receiver: Callable[..., Any], backend: Backend
) -> None:
    receiver = await make_forwarding_receiver(backend.url + "?tenant=a%2Fb")
    port = receiver.client.server.port
    query = f"hub.mode=subscribe&hub.challenge=12%2b34&hub.verify_token={BACKEND_TOKEN}&x=%7e&y=a+b&z"
    head = [f"GET {WEBHOOK}?{query} HTTP/1.1", f"Host: 127.0.0.1:{port}", "Connection: close"]
    assert await raw_request(port, head) == (200, b"12+34")
    assert backend.seen[0].raw_path == f"{WEBHOOK}?tenant=a%2Fb&{query}"


# --------------------------------------------------------------------------- status relaying, failures


@pytest.mark.parametrize("backend_status", [202, 400, 500, 503])
async def test_backend_status_decides_whether_meta_retries(
    make_forwarding_receiver: Callable[..., Any], backend: Backend, backend_status: int
) -> None:
    backend.behaviour.status = backend_status
    receiver = await make_forwarding_receiver(backend.url)
    body = meta_body()
    statuses = await receiver.sender().deliver(body, attempts=3)
    # MetaLikeSender retries on anything but 200, as Meta does.
    assert statuses == [backend_status] * (1 if backend_status == 200 else 3)
    assert [r.body for r in backend.behaviour.received] == [body] * len(statuses)
    records = receiver.records()
    assert [r["response"]["status"] for r in records] == statuses
    for record in records:
        assert record["forward"]["status"] == backend_status
        assert record["forward"]["body"] == f"backend says {backend_status}"
        assert record["forward"]["elapsed_ms"] > 0
        assert record["forward"]["error"] is None


async def test_backend_500_is_relayed_to_meta(make_forwarding_receiver: Callable[..., Any], backend: Backend) -> None:
    backend.behaviour.status = 500
    receiver = await make_forwarding_receiver(backend.url)
    body = meta_body()
    headers = receiver.sender().headers_for(body)
    async with receiver.client.session.post(receiver.url, data=body, headers=headers) as response:
        assert response.status == 500
        assert await response.text() == "backend says 500"
    (record,) = receiver.records()
    assert record["response"] == {"status": 500, "body": "backend says 500"}
    assert record["forward"]["status"] == 500
    assert record["forward"]["body"] == "backend says 500"
    assert record["forward"]["elapsed_ms"] > 0
    assert not [e for e in receiver.events() if isinstance(e, Notice) and e.topic == "forward"]


async def test_backend_down_is_502_recorded_and_announced(
    make_forwarding_receiver: Callable[..., Any], dead_backend_url: str
) -> None:
    receiver = await make_forwarding_receiver(dead_backend_url)
    body = meta_body()
    headers = receiver.sender().headers_for(body)
    async with receiver.client.session.post(receiver.url, data=body, headers=headers) as response:
        assert response.status == 502
        answer = await response.text()
    assert "unreachable" in answer

    (record,) = receiver.records()
    assert record["response"]["status"] == 502
    assert record["forward"]["status"] is None
    assert "unreachable" in record["forward"]["error"]
    assert request_body(record["request"]) == body  # recorded anyway: replay it once the backend is up
    notices = [e for e in receiver.events() if isinstance(e, Notice) and e.topic == "forward"]
    assert len(notices) == 1
    assert notices[0].level == "error"
    assert "Backend unreachable" in notices[0].text


async def test_handshake_with_backend_down_is_502(
    make_forwarding_receiver: Callable[..., Any], dead_backend_url: str
) -> None:
    receiver = await make_forwarding_receiver(dead_backend_url)
    result = await receiver.sender().handshake(BACKEND_TOKEN)
    assert not result.accepted and result.status == 502
    (record,) = receiver.records()
    assert "unreachable" in record["forward"]["error"]


async def test_backend_slower_than_the_timeout_is_504(
    make_forwarding_receiver: Callable[..., Any], backend: Backend
) -> None:
    backend.behaviour.delay_s = 5.0
    receiver = await make_forwarding_receiver(backend.url, timeout_s=0.2)
    assert await receiver.sender().deliver(meta_body(), attempts=1) == [504]

    (record,) = receiver.records()
    assert record["response"]["status"] == 504
    assert record["forward"]["status"] is None
    assert "did not answer within 0.2 s" in record["forward"]["error"]
    assert 150 < record["forward"]["elapsed_ms"] < 5000  # gave up at the timeout, not when the backend answered
    notices = [e for e in receiver.events() if isinstance(e, Notice) and e.topic == "forward"]
    assert len(notices) == 1 and "did not answer" in notices[0].text


# --------------------------------------------------------------------------- --ack-first


async def test_ack_first_answers_at_once_and_records_the_backend_later(
    make_forwarding_receiver: Callable[..., Any], backend: Backend
) -> None:
    backend.behaviour.delay_s = 0.5
    receiver = await make_forwarding_receiver(backend.url, ack_first=True)
    body = meta_body()
    headers = receiver.sender().headers_for(body)
    async with receiver.client.session.post(receiver.url, data=body, headers=headers) as response:
        assert response.status == 200
        assert await response.text() == "EVENT_RECEIVED"
    # Meta has its answer while the backend is still working: no forward result exists yet.
    assert not any(isinstance(e, ForwardCompleted) for e in receiver.events())

    (record,) = receiver.records()
    assert record["forward"] == {"url": backend.url, "status": None, "pending": True}
    assert record["response"]["status"] == 200

    completed = await receiver.wait_for(ForwardCompleted)
    assert completed.exchange_id == record["id"]
    assert completed.seq == record["seq"]
    assert completed.forward["status"] == 200
    exchange, update = receiver.records()
    assert exchange == record  # the acknowledged line is never rewritten
    assert update["kind"] == "forward_update"
    assert update["ref"] == record["id"]
    assert update["seq"] > record["seq"]
    assert update["forward"]["status"] == 200
    assert update["forward"]["body"] == "backend says 200"
    assert update["forward"]["elapsed_ms"] >= 450
    (got,) = backend.behaviour.received
    assert got.body == body and got.signature_ok is True


async def test_ack_first_with_backend_down_still_acknowledges_and_reports(
    make_forwarding_receiver: Callable[..., Any], dead_backend_url: str
) -> None:
    receiver = await make_forwarding_receiver(dead_backend_url, ack_first=True)
    assert await receiver.sender().deliver(meta_body(), attempts=1) == [200]
    completed = await receiver.wait_for(ForwardCompleted)
    assert completed.forward["status"] is None
    assert "unreachable" in completed.forward["error"]
    _, update = receiver.records()
    assert update["ref"] == completed.exchange_id and "unreachable" in update["forward"]["error"]
    notices = [e for e in receiver.events() if isinstance(e, Notice) and e.topic == "forward"]
    assert notices and "Backend unreachable" in notices[0].text


# --------------------------------------------------------------------------- what is not forwarded


async def test_scanner_requests_and_wrong_methods_are_not_forwarded(
    make_forwarding_receiver: Callable[..., Any], backend: Backend
) -> None:
    receiver = await make_forwarding_receiver(backend.url)
    session = receiver.client.session
    for method, path, expected in [
        ("GET", "/wp-login.php", 404),
        ("POST", "/.env", 404),
        ("GET", "/webhook", 404),
        ("PUT", WEBHOOK, 405),
        ("DELETE", WEBHOOK, 405),
    ]:
        async with session.request(method, receiver.client.make_url(path), data=b"x") as response:
            assert response.status == expected, (method, path)
    assert backend.behaviour.received == []
    assert backend.seen == []
    assert all("forward" not in r for r in receiver.records())


async def test_oversized_body_is_413_and_not_forwarded(
    make_forwarding_receiver: Callable[..., Any], backend: Backend
) -> None:
    receiver = await make_forwarding_receiver(backend.url, max_body_bytes=1024)
    body = samples.text_message_payload(text="x" * 4096)
    assert await receiver.sender().deliver(body, attempts=1) == [413]
    assert backend.seen == []
    (record,) = receiver.records()
    assert record["response"]["status"] == 413
    assert "forward" not in record


# --------------------------------------------------------------------------- headless rendering


async def test_headless_line_shows_the_backend_status(
    make_forwarding_receiver: Callable[..., Any], backend: Backend
) -> None:
    receiver = await make_forwarding_receiver(backend.url)
    await receiver.sender().deliver(meta_body(), attempts=1)
    await receiver.sender().handshake(BACKEND_TOKEN)
    event_record, verify_record = receiver.records()
    assert format_exchange_line(view_from_record(event_record)).endswith("  -> backend 200")
    assert format_exchange_line(view_from_record(verify_record)).endswith("  -> backend 200")
    # The live line comes from the ExchangeRecorded view, which must say the same.
    live = [e for e in receiver.events() if isinstance(e, ExchangeRecorded)]
    assert [format_exchange_line(e.view) for e in live] == [
        format_exchange_line(view_from_record(r)) for r in (event_record, verify_record)
    ]


async def test_headless_line_shouts_backend_unreachable(
    make_forwarding_receiver: Callable[..., Any], dead_backend_url: str
) -> None:
    receiver = await make_forwarding_receiver(dead_backend_url)
    await receiver.sender().deliver(meta_body(), attempts=1)
    (record,) = receiver.records()
    line = format_exchange_line(view_from_record(record))
    assert "  502  " in line
    assert "-> BACKEND UNREACHABLE" in line
    assert "BACKEND BACKEND" not in line


async def test_headless_printer_shows_pending_then_the_late_answer(
    make_forwarding_receiver: Callable[..., Any], backend: Backend
) -> None:
    backend.behaviour.delay_s = 0.2
    receiver = await make_forwarding_receiver(backend.url, ack_first=True)
    await receiver.sender().deliver(meta_body(), attempts=1)
    await receiver.wait_for(ForwardCompleted)
    await receiver.settle()
    out, err = StringIO(), StringIO()
    printer = HeadlessPrinter(out, err, json_lines=False)
    (record,) = receiver.exchange_records()
    printer.render(ExchangeRecorded(view=view_from_record(record), record=record))
    update = receiver.records()[1]
    printer.render(ForwardCompleted(exchange_id=record["id"], seq=record["seq"], forward=update["forward"]))
    first, second = out.getvalue().splitlines()
    assert first.endswith(f"  -> backend pending (#{record['seq']}, acknowledged first)")
    assert second == f"          ↳ #{record['seq']} forwarded: 200 in {update['forward']['elapsed_ms']:.0f} ms"


# --------------------------------------------------------------------------- through the service and the CLI


def _service_settings(tmp_path: Path, **flags: str | bool) -> Any:
    values: dict[str, Any] = {
        "port": "0",
        "tunnel": "none",
        "recordings_dir": str(tmp_path / "rec"),
        "app_secret": APP_SECRET,
        "verify_token": VERIFY_TOKEN,
        **flags,
    }
    return load_settings(values, environ={}, cwd=tmp_path)


async def test_service_uses_forward_to_and_forward_timeout(tmp_path: Path, backend: Backend) -> None:
    backend.behaviour.delay_s = 1.0
    service = WebhookService(_service_settings(tmp_path, forward_to=backend.url, forward_timeout="0.2"))
    started = await service.start()
    try:
        assert started.forward_to == backend.url
        assert service.forwarder is not None and service.forwarder.timeout_s == 0.2
        async with aiohttp.ClientSession() as session:
            sender = MetaLikeSender(session, service.local_url, APP_SECRET)
            assert await sender.deliver(meta_body(), attempts=1) == [504]
            backend.behaviour.delay_s = 0
            assert await sender.deliver(meta_body(), attempts=1) == [200]
    finally:
        await service.stop()
    assert service.recorder is not None
    records = read_recording(service.recorder.path).records
    assert [r["forward"]["status"] for r in records] == [None, 200]
    assert "did not answer within 0.2 s" in records[0]["forward"]["error"]


async def test_service_stop_waits_for_ack_first_forwards(tmp_path: Path, backend: Backend) -> None:
    """Stopping right after an --ack-first delivery still records the backend's late answer."""
    backend.behaviour.delay_s = 0.3
    service = WebhookService(_service_settings(tmp_path, forward_to=backend.url, ack_first=True))
    subscription = service.bus.subscribe()
    await service.start()
    try:
        async with aiohttp.ClientSession() as session:
            sender = MetaLikeSender(session, service.local_url, APP_SECRET)
            assert await sender.deliver(meta_body(), attempts=1) == [200]
    finally:
        await service.stop()
    assert service.recorder is not None
    exchange, update = read_recording(service.recorder.path).records
    assert exchange["forward"]["pending"] is True
    assert update["kind"] == "forward_update" and update["ref"] == exchange["id"]
    assert update["forward"]["status"] == 200
    assert [e.exchange_id for e in subscription.drain() if isinstance(e, ForwardCompleted)] == [exchange["id"]]


def test_cli_headless_forwards_and_prints_the_backend_status(tmp_path: Path) -> None:
    behaviour = BackendBehaviour(app_secret=cli_process.APP_SECRET, verify_token=cli_process.VERIFY_TOKEN)
    body = meta_body()
    # The backend's socket exists before the CLI starts (its port goes on the command line); it is
    # served inside asyncio.run below, while the requests go through the CLI.
    listener = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    try:
        listener.bind(("127.0.0.1", 0))
        listener.listen()
        target = f"http://127.0.0.1:{listener.getsockname()[1]}{WEBHOOK}"
        with cli_process.running_cli(tmp_path, "--forward-to", target) as cli:

            async def talk() -> tuple[bool, list[int]]:
                runner = web.AppRunner(create_backend_app(behaviour), access_log=None)
                await runner.setup()
                await web.SockSite(runner, listener).start()
                try:
                    async with aiohttp.ClientSession() as session:
                        sender = MetaLikeSender(session, cli.callback_url, cli_process.APP_SECRET)
                        handshake = await sender.handshake(cli_process.VERIFY_TOKEN)
                        return handshake.accepted, await sender.deliver(body, attempts=1)
                finally:
                    await runner.cleanup()

            accepted, statuses = asyncio.run(talk())
            assert cli.stop(signal.SIGTERM) == 0
            stdout, stderr = cli.stdout(), cli.stderr()
    finally:
        listener.close()

    assert accepted and statuses == [200]
    assert f"Forwarding to: {target}" in stdout
    assert [r.body for r in behaviour.received if r.method == "POST"] == [body]
    assert all(r.signature_ok for r in behaviour.received if r.method == "POST")
    lines = stdout.splitlines()
    verify_lines = [line for line in lines if "  GET " in line and " verify " in line]
    event_lines = [line for line in lines if "  POST " in line and " event " in line]
    assert len(verify_lines) == 1 and verify_lines[0].endswith("-> backend 200"), lines
    assert len(event_lines) == 1 and "sig=valid" in event_lines[0], lines
    assert event_lines[0].endswith("-> backend 200"), lines
    assert "Traceback" not in stderr


# --------------------------------------------------------------------------- strictness, handshakes, exact relay


async def test_require_signature_refuses_before_the_backend(
    make_forwarding_receiver: Callable[..., Any], backend: Backend
) -> None:
    receiver = await make_forwarding_receiver(backend.url, require_signature=True)
    body = meta_body()
    async with receiver.client.session.post(receiver.url, data=body) as response:  # no signature at all
        assert response.status == 401
    assert backend.behaviour.received == []
    (record,) = receiver.records()
    assert "forward" not in record


async def test_ack_first_still_lets_the_backend_answer_the_handshake(
    make_forwarding_receiver: Callable[..., Any], backend: Backend
) -> None:
    receiver = await make_forwarding_receiver(backend.url, ack_first=True)
    result = await receiver.sender().handshake(BACKEND_TOKEN)
    assert result.accepted, result
    (record,) = receiver.records()
    assert record["verify"]["ok"] is True
    assert record["verify"]["local"]["ok"] is False  # our own token differs; the backend's answer is what counts


async def test_backend_answer_is_relayed_byte_for_byte(
    make_forwarding_receiver: Callable[..., Any], backend: Backend
) -> None:
    backend.behaviour.status = 500
    receiver = await make_forwarding_receiver(backend.url)
    body = meta_body()
    async with receiver.client.session.post(receiver.url, data=body, headers=receiver.sender().headers_for(body)) as r:
        assert r.status == 500
        assert await r.read() == b"backend says 500"
        assert r.headers["Content-Type"].startswith("text/plain")
