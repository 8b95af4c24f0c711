"""The receiver on a public URL: what strangers get back, what is never acknowledged, what is never held."""

from __future__ import annotations

import asyncio
import errno
import json
import threading
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from tests.support.backend_app import BackendBehaviour, create_backend_app
from tests.support.constants import APP_SECRET, VERIFY_TOKEN
from tests.support.meta_client import meta_signature
from tests.support.receiver_harness import ReceiverHarness, ReceiverTestServer
from wa_devtunnel.engine import receiver as receiver_module
from wa_devtunnel.engine import verdicts
from wa_devtunnel.engine.events import EventBus, ExchangeRecorded, Notice, RecordingHealth
from wa_devtunnel.engine.forwarder import Forwarder
from wa_devtunnel.engine.receiver import ReceiverConfig, create_receiver_app
from wa_devtunnel.engine.recording import SessionRecorder, read_recording, with_full_summary
from wa_devtunnel.engine.unknown_numbers import MAX_HINTS, UnknownNumberHints
from wa_devtunnel.rules.samples import payloads as samples

WEBHOOK = "/webhook/whatsapp"


def signed(body: bytes, secret: str = APP_SECRET) -> dict[str, str]:
    return {"Content-Type": "application/json", "X-Hub-Signature-256": meta_signature(body, secret)}


class FailingAppends:
    """Stands in for SessionRecorder.append_line (the receiver's write): fails while `failing` is set (a full disk)."""

    def __init__(self, real: Callable[[bytes], int]) -> None:
        self.real = real
        self.failing = False

    def __call__(self, data: bytes) -> int:
        if self.failing:
            raise OSError(errno.ENOSPC, "No space left on device")
        return self.real(data)


async def test_an_unrecorded_event_is_answered_503_until_writing_works_again(
    make_receiver: Callable[..., Any],
) -> None:
    receiver: ReceiverHarness = await make_receiver()
    subscription = receiver.bus.subscribe()
    appends = FailingAppends(receiver.recorder.append_line)
    receiver.recorder.append_line = appends  # type: ignore[method-assign]
    first, second, third = (samples.text_message_payload(f"m{i}", message_id=f"wamid.M{i}") for i in range(3))

    ok = await receiver.client.post(WEBHOOK, data=first, headers=signed(first))
    appends.failing = True
    lost = [await receiver.client.post(WEBHOOK, data=second, headers=signed(second)) for _ in range(2)]
    appends.failing = False
    back = await receiver.client.post(WEBHOOK, data=third, headers=signed(third))

    assert ok.status == 200 and back.status == 200
    assert [r.status for r in lost] == [503, 503]  # Meta retries a non-200; it never retries a 200
    events = subscription.drain()
    health = [e for e in events if isinstance(e, RecordingHealth)]
    assert [(h.ok, h.refused) for h in health] == [(False, 1), (False, 2), (True, 2)]  # counted, then cleared
    assert "No space left on device" in health[0].reason
    shown = [e.record for e in events if isinstance(e, ExchangeRecorded)]
    assert [r["response"]["status"] for r in shown] == [200, 503, 503, 200]  # the screen still sees them
    assert "No space left" in shown[1]["recording_error"]
    assert [r["response"]["status"] for r in receiver.records()] == [200, 200]


async def test_a_strangers_small_request_does_not_declare_recovery(make_receiver: Callable[..., Any]) -> None:
    """A full disk may still take a tiny 404 line: only Meta's kind of request proves writing works again."""
    receiver: ReceiverHarness = await make_receiver()
    subscription = receiver.bus.subscribe()
    appends = FailingAppends(receiver.recorder.append_line)
    receiver.recorder.append_line = appends  # type: ignore[method-assign]
    body = samples.text_message_payload("m")
    appends.failing = True
    assert (await receiver.client.post(WEBHOOK, data=body, headers=signed(body))).status == 503
    appends.failing = False
    assert (await receiver.client.get("/x")).status == 404
    health = [e.ok for e in subscription.drain() if isinstance(e, RecordingHealth)]
    assert health == [False]
    assert (await receiver.client.post(WEBHOOK, data=body, headers=signed(body))).status == 200
    assert [e.ok for e in subscription.drain() if isinstance(e, RecordingHealth)] == [True]


async def test_a_stranger_learns_nothing_from_refusals(make_receiver: Callable[..., Any]) -> None:
    receiver: ReceiverHarness = await make_receiver(require_signature=True)
    guess = await receiver.client.get(f"{WEBHOOK}?hub.mode=subscribe&hub.challenge=1&hub.verify_token= {VERIFY_TOKEN}")
    body = samples.text_message_payload("x")
    unsigned = await receiver.client.post(WEBHOOK, data=body, headers={"Content-Type": "application/json"})
    wrong = await receiver.client.post(WEBHOOK, data=body, headers=signed(body, "a-guessed-secret"))
    answers = [(r.status, await r.text()) for r in (guess, unsigned, wrong)]
    assert answers == [(403, "Forbidden"), (401, "Unauthorized"), (403, "Forbidden")]
    verify, missing, invalid = receiver.records()
    assert verify["verify"]["reason"].startswith("token mismatch")  # the reason is ours to read
    assert missing["signature"] == "missing" and invalid["signature"] == "invalid"


async def test_the_challenge_echo_is_plain_utf8_text_nobody_sniffs(receiver: ReceiverHarness) -> None:
    challenge = "<script>alert(1)</script>"
    response = await receiver.client.get(
        WEBHOOK, params={"hub.mode": "subscribe", "hub.challenge": challenge, "hub.verify_token": VERIFY_TOKEN}
    )
    assert (response.status, await response.text()) == (200, challenge)
    assert response.headers["Content-Type"] == "text/plain; charset=utf-8"
    assert response.headers["X-Content-Type-Options"] == "nosniff"


def big_batch(messages: int) -> bytes:
    items = [samples.text_message(text="x" * 200, message_id=f"wamid.BIG{i}") for i in range(messages)]
    return samples.meta_json(samples.envelope([samples.messages_change(messages=items)]))


async def test_big_bodies_are_verified_and_decoded_off_the_event_loop(
    receiver: ReceiverHarness, monkeypatch: pytest.MonkeyPatch
) -> None:
    threads: list[str] = []
    real = receiver_module.judge_event

    def spy(*args: Any) -> Any:
        threads.append(threading.current_thread().name)
        return real(*args)

    monkeypatch.setattr(receiver_module, "judge_event", spy)
    small = samples.text_message_payload("small")
    big = big_batch(2000)
    assert len(big) > receiver_module.OFFLOAD_BODY_BYTES
    for body in (small, big):
        response = await receiver.client.post(WEBHOOK, data=body, headers=signed(body))
        assert response.status == 200
    loop_thread = threading.current_thread().name
    assert threads[0] == loop_thread and threads[1] != loop_thread
    assert with_full_summary(receiver.records()[1])["summary"]["headline"].startswith("batch: 2000 messages")


async def test_a_refused_signature_is_never_decoded(
    make_receiver: Callable[..., Any], monkeypatch: pytest.MonkeyPatch
) -> None:
    """--require-signature: a stranger's megabytes cost one HMAC, not a JSON parse and a decode."""
    receiver: ReceiverHarness = await make_receiver(require_signature=True)
    decoded: list[bytes] = []
    real = verdicts.ack_facts
    monkeypatch.setattr(verdicts, "ack_facts", lambda body, **kw: decoded.append(body) or real(body, **kw))
    body = big_batch(500)
    response = await receiver.client.post(WEBHOOK, data=body, headers=signed(body, "wrong"))
    assert response.status == 403 and decoded == []
    (record,) = receiver.records()
    assert record["summary"]["problem"].startswith("not decoded")
    assert len(record["request"]["body"]) == len(body)  # still recorded whole


async def test_ack_first_backlog_turns_into_back_pressure_not_memory(
    aiohttp_client: Callable[..., Any], aiohttp_server: Callable[..., Any], tmp_path: Path
) -> None:
    behaviour = BackendBehaviour(app_secret=APP_SECRET, delay_s=0.5)
    backend = await aiohttp_server(create_backend_app(behaviour))
    config = ReceiverConfig(
        path=WEBHOOK,
        handshake_tokens=(("default", VERIFY_TOKEN),),
        signature_secrets=(("default", APP_SECRET),),
        ack_first=True,
        ack_first_backlog_bytes=1500,
    )
    bus = EventBus()
    subscription = bus.subscribe()
    forwarder = Forwarder(str(backend.make_url(WEBHOOK)))
    recorder = SessionRecorder(tmp_path / "rec")
    app = create_receiver_app(config, bus, recorder, forwarder)
    client = await aiohttp_client(ReceiverTestServer(app, bus, forwarding=True))
    try:
        bodies = [samples.text_message_payload("y" * 300, message_id=f"wamid.B{i}") for i in range(3)]
        assert all(len(b) < 1500 for b in bodies) and sum(map(len, bodies)) > 1500
        for body in bodies:
            assert (await client.post(WEBHOOK, data=body, headers=signed(body))).status == 200
        records = read_recording(recorder.path).records
        pending = [bool(r["forward"].get("pending")) for r in records if r["kind"] == "event"]
        assert pending[0] is True and pending[-1] is False  # the one past the cap was forwarded before its 200
        assert "backlog full" in records[-1]["forward_inline"]
        assert records[-1]["forward"]["status"] == 200
    finally:
        background = app[receiver_module.RECEIVER_STATE].background
        for task in list(background):
            await task
        await forwarder.close()
        recorder.close()
    late = [e for e in subscription.drain() if isinstance(e, Notice) and e.topic == "forward"]
    assert late == []


async def test_ack_first_does_not_promise_a_retry_that_never_comes(
    aiohttp_client: Callable[..., Any], tmp_path: Path
) -> None:
    config = ReceiverConfig(path=WEBHOOK, handshake_tokens=(("default", VERIFY_TOKEN),), ack_first=True)
    bus = EventBus()
    subscription = bus.subscribe()
    forwarder = Forwarder("http://127.0.0.1:9/nothing-listens", 2)
    recorder = SessionRecorder(tmp_path / "rec")
    app = create_receiver_app(config, bus, recorder, forwarder)
    client = await aiohttp_client(ReceiverTestServer(app, bus, forwarding=True))
    try:
        body = samples.text_message_payload("z")
        assert (await client.post(WEBHOOK, data=body)).status == 200
        for task in list(app[receiver_module.RECEIVER_STATE].background):
            await task
    finally:
        await forwarder.close()
        recorder.close()
    (notice,) = [e for e in subscription.drain() if isinstance(e, Notice) and e.topic == "forward"]
    assert "will not retry" in notice.text and "Meta will retry" not in notice.text


def test_unknown_number_hints_are_few_and_short() -> None:
    bus = EventBus()
    subscription = bus.subscribe()
    hints = UnknownNumberHints(bus, {"1000": "default"})
    for index in range(MAX_HINTS + 10):
        number = f"{index}" * 40
        record = {"summary": {"flags": ["unknown-phone-number-id"], "items": [{"phone_number_id": number}]}}
        hints(ExchangeRecorded(None, record))
    told = [e.text for e in subscription.drain() if isinstance(e, Notice)]
    assert len(told) == MAX_HINTS + 1 and "not listed" in told[-1]
    assert all(len(text) < 200 for text in told)


async def test_recorded_headers_never_hold_the_origin_key(receiver: ReceiverHarness) -> None:
    await receiver.client.post(WEBHOOK, data=b"{}", headers=receiver.origin("replay"))
    text = json.dumps(receiver.records())
    assert receiver.config.origin_key not in text


async def test_a_strangers_unsigned_megabytes_are_not_even_read(make_receiver: Callable[..., Any]) -> None:
    """--require-signature and no signature: 401 after the first 64 KiB; the recording keeps that start."""
    receiver: ReceiverHarness = await make_receiver(require_signature=True)
    body = big_batch(8000)
    response = await receiver.client.post(WEBHOOK, data=body, headers={"Content-Type": "application/json"})
    assert (response.status, await response.text()) == (401, "Unauthorized")
    (record,) = receiver.records()
    assert record["signature"] == "missing" and record["request_body_truncated"] is True
    assert len(record["request"]["body"]) == receiver_module.OVERSIZE_PREFIX_BYTES
    assert body.startswith(record["request"]["body"].encode())


async def test_a_refused_big_body_is_recorded_by_its_start(make_receiver: Callable[..., Any]) -> None:
    receiver: ReceiverHarness = await make_receiver(require_signature=True)
    body = big_batch(3000)
    assert len(body) > receiver_module.REFUSED_BODY_KEPT_BYTES
    response = await receiver.client.post(WEBHOOK, data=body, headers=signed(body, "a-guess"))
    assert response.status == 403
    (record,) = receiver.records()
    assert (record["request_body_size"], record["request_body_truncated"]) == (len(body), True)
    assert len(record["request"]["body"]) == receiver_module.OVERSIZE_PREFIX_BYTES


async def _open_upload(port: int, declared: int, first: bytes) -> tuple[Any, Any]:
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    head = f"POST {WEBHOOK} HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nContent-Length: {declared}\r\n\r\n"
    writer.write(head.encode() + first)
    await writer.drain()
    return reader, writer


async def _until(condition: Callable[[], bool], timeout_s: float = 5.0) -> None:
    deadline = asyncio.get_running_loop().time() + timeout_s
    while not condition():
        assert asyncio.get_running_loop().time() < deadline, "condition not reached"
        await asyncio.sleep(0.01)


async def test_bodies_being_read_share_one_memory_budget(aiohttp_client: Callable[..., Any], tmp_path: Path) -> None:
    """Slow uploads hold at most body_memory_bytes: the next one is refused 503 (recorded), not buffered."""
    config = ReceiverConfig(path=WEBHOOK, handshake_tokens=(("default", VERIFY_TOKEN),), body_memory_bytes=150_000)
    recorder = SessionRecorder(tmp_path / "rec")
    bus = EventBus()
    app = create_receiver_app(config, bus, recorder)
    server = (await aiohttp_client(ReceiverTestServer(app, bus))).server
    state = app[receiver_module.RECEIVER_STATE]
    _, hog = await _open_upload(server.port, 1_000_000, b"x" * 120_000)
    await _until(lambda: state.body_bytes_in_flight >= 120_000)
    reader, writer = await _open_upload(server.port, 200_000, b"y" * 60_000)  # still arriving: it is read
    answer = await reader.read(200)
    assert answer.startswith(b"HTTP/1.1 503")
    writer.close()
    hog.close()  # the slow client goes away mid-body: its buffers are released at once
    await _until(lambda: state.body_bytes_in_flight == 0)
    recorder.close()
    (record,) = read_recording(recorder.path).records
    assert record["response"]["status"] == 503 and record["reason"].startswith("receiver busy")
    assert record["request_body_truncated"] is True


async def test_strangers_get_no_parser_details(receiver: ReceiverHarness) -> None:
    not_json = await receiver.client.post(WEBHOOK, data=b"\x8b\x08 not json")
    empty = await receiver.client.post(WEBHOOK, data=b"")
    assert [(r.status, await r.text()) for r in (not_json, empty)] == [(400, "Bad Request")] * 2
    first, second = receiver.records()
    assert first["summary"]["problem"].startswith("body is not JSON")  # the reason is ours
    assert second["summary"]["problem"] == "body is not JSON: empty body"


@pytest.mark.parametrize("expect", ["<script>alert(1)</script>", "100-continue"])
async def test_an_expect_header_is_never_echoed_and_the_request_is_recorded(
    receiver: ReceiverHarness, expect: str
) -> None:
    body = samples.text_message_payload("expect")
    response = await receiver.client.post(WEBHOOK, data=body, headers={**signed(body), "Expect": expect})
    assert (response.status, await response.text()) == (200, "EVENT_RECEIVED")
    (record,) = receiver.records()
    assert record["response"]["status"] == 200


@pytest.mark.parametrize(
    "query",
    [
        f"hub.mode=subscribe&HUB.VERIFY_TOKEN={VERIFY_TOKEN}&hub.challenge=6",
        f"hub.mode=subscribe&hub.challenge=6&x={VERIFY_TOKEN}",
        f"hub.mode=subscribe&hub.challenge=6&hub.verify_token=%2520{VERIFY_TOKEN}",
    ],
)
async def test_the_verify_token_is_never_recorded_under_any_name(receiver: ReceiverHarness, query: str) -> None:
    await receiver.client.get(f"{WEBHOOK}?{query}")
    (record,) = receiver.records()
    assert VERIFY_TOKEN not in json.dumps(record)
    assert "REDACTED" in record["request"]["query"]


async def test_big_bodies_without_a_valid_signature_are_not_decoded(
    receiver: ReceiverHarness, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Without --require-signature they are still answered like events, but a stranger's megabytes cost no decode."""
    decoded: list[int] = []
    real = verdicts.ack_facts

    def spy(body: bytes, **kw: Any) -> Any:
        decoded.append(len(body))
        return real(body, **kw)

    monkeypatch.setattr(verdicts, "ack_facts", spy)
    big = big_batch(3000)
    small = samples.text_message_payload("small, badly signed")
    for body in (big, small):
        assert (await receiver.client.post(WEBHOOK, data=body, headers=signed(body, "a-guess"))).status == 200
    assert decoded == [len(small)]  # a small one is still parsed: a wrong App Secret is a common mistake
    first, _ = receiver.records()
    assert first["summary"]["headline"].startswith("not decoded:") and first["signature"] == "invalid"
