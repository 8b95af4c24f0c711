"""Replay's client path (issue 17): one pooled session, records written on the loop, the view made only if asked."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

from aiohttp import web

from wa_devtunnel.engine.exchange import build_record
from wa_devtunnel.engine.recording import SessionRecorder, read_recording
from wa_devtunnel.engine.replay.plan import ReplayOptions, plan_replay
from wa_devtunnel.engine.replay.send import send_plan
from wa_devtunnel.engine.replay.source import Selection, load_recordings, select
from wa_devtunnel.rules.samples import payloads as samples
from wa_devtunnel.rules.signature import sign_body

SECRET = "sender-test-secret"
EVENTS = 40


def write_session(directory: Path) -> Path:
    with SessionRecorder(directory) as recorder:
        for seq in range(1, EVENTS + 1):
            body = samples.text_message_payload(f"event {seq}", message_id=f"wamid.SENDER{seq}")
            headers = [["Content-Type", "application/json"], ["X-Hub-Signature-256", sign_body(body, SECRET)]]
            recorder.append(
                build_record(
                    seq=seq,
                    received_at="2026-12-07T07:00:00.000000Z",
                    kind="event",
                    method="POST",
                    path="/webhook/whatsapp",
                    query="",
                    headers=headers,
                    body=body,
                    status=200,
                    response_body="EVENT_RECEIVED",
                    signature="valid",
                    extra={"origin": "meta"},
                )
            )
    return recorder.path


async def test_every_answer_recorded_once_in_answer_order_without_cookies_or_views(
    tmp_path: Path, aiohttp_server: Callable[..., Awaitable[Any]]
) -> None:
    seen: list[tuple[bytes, str | None]] = []

    async def webhook(request: web.Request) -> web.Response:
        seen.append((await request.read(), request.headers.get("Cookie")))
        response = web.Response(text="ok")
        response.set_cookie("session", "from-the-backend")
        return response

    app = web.Application()
    app.router.add_post("/webhook/whatsapp", webhook)
    server = await aiohttp_server(app)
    loaded = load_recordings([write_session(tmp_path / "rec")])
    chosen = select(loaded.exchanges, Selection())
    assert all(exchange._view is None for exchange in chosen)  # the default selection needs no view
    url = f"http://localhost:{server.port}/webhook/whatsapp"  # a name: a jar would keep cookies of a name
    options = ReplayOptions(url, app_secret=SECRET, concurrency=8)
    plan = plan_replay(chosen, options)
    recorder = SessionRecorder(tmp_path / "replays", suffix="replay")
    results = await send_plan(plan, options, recorder)
    recorder.close()

    assert [r.ok for r in results] == [True] * EVENTS
    assert sorted(body for body, _cookie in seen) == sorted(e.body for e in chosen)  # byte-identical
    assert {cookie for _body, cookie in seen} == {None}  # no cookie jar: nothing is sent back
    assert all(exchange._view is None for exchange in chosen)  # nor did sending make one
    records = read_recording(recorder.path).records
    assert [record["seq"] for record in records] == list(range(1, EVENTS + 1))
    assert sorted(record["replay_of"]["seq"] for record in records) == list(range(1, EVENTS + 1))
    assert {record["signature"] for record in records} == {"valid"}
    by_seq = {exchange.seq: exchange for exchange in chosen}
    for record in records:
        source = by_seq[record["replay_of"]["seq"]]
        assert record["replay_of"]["id"] == source.id == source.view.id
        assert record["request"]["body"].encode() == source.body
        assert record["kind"] == source.kind == source.view.kind
