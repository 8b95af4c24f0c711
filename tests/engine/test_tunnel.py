"""The ngrok tunnel end to end: real pyngrok, a fake agent, Meta-like traffic through public HTTPS."""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Any

import pytest

from tests.support.constants import APP_SECRET, VERIFY_TOKEN
from tests.support.fake_ngrok import DEFAULT_AUTHTOKEN, FakeNgrok, MakeFakeNgrok, pid_alive
from tests.support.meta_client import MetaLikeSender, meta_signature
from wa_devtunnel.engine.events import (
    EngineEvent,
    Notice,
    ReceiverStarted,
    SelfTestFinished,
    Subscription,
    TunnelChanged,
)
from wa_devtunnel.engine.recording import read_recording, request_body
from wa_devtunnel.engine.service import WebhookService
from wa_devtunnel.engine.tunnel.ngrok import NgrokTunnel, explain_agent_error
from wa_devtunnel.rules.samples import payloads as samples
from wa_devtunnel.settings import load_settings


def _service(tmp_path: Path, fake: FakeNgrok, *, authtoken: str | None = DEFAULT_AUTHTOKEN,
             deadline: float = 10.0) -> WebhookService:
    settings = load_settings(
        {"port": "0", "recordings_dir": str(tmp_path / "rec"), "tunnel": "ngrok"},
        environ={"WHATSAPP_VERIFY_TOKEN": VERIFY_TOKEN, "WHATSAPP_APP_SECRET": APP_SECRET},
        cwd=tmp_path,
    )
    tunnel = NgrokTunnel(
        authtoken, ngrok_path=str(fake.ngrok_path), start_deadline_s=deadline, upstream_host=settings.host
    )
    return WebhookService(settings, tunnel=tunnel, selftest_ssl=fake.ssl_context())


async def _next(subscription: Subscription, kind: type, timeout: float = 10.0) -> Any:
    async def wait() -> EngineEvent:
        while True:
            event = await subscription.get()
            if isinstance(event, kind):
                return event

    return await asyncio.wait_for(wait(), timeout)


def _agent_pids(fake: FakeNgrok) -> list[int]:
    return [entry["pid"] for entry in fake._log_entries() if entry["argv"][:1] == ["start"]]


async def test_meta_traffic_through_the_public_url_is_answered_and_recorded(
    tmp_path: Path, fake_ngrok: FakeNgrok
) -> None:
    service = _service(tmp_path, fake_ngrok)
    events = service.bus.subscribe()
    started = await service.start()
    try:
        assert started.tunnel_state == "up"
        assert started.callback_url.startswith("https://localhost:")
        assert started.callback_url.endswith("/webhook/whatsapp")
        selftest = await _next(events, SelfTestFinished)
        assert selftest.ok, selftest.detail
        assert selftest.elapsed_ms < 6000

        bodies = [samples.text_message_payload(text="Größe? 😮 a/b"), samples.dashboard_test_sample()]
        async with fake_ngrok.client_session() as session:
            sender = MetaLikeSender(session, started.callback_url, APP_SECRET)
            handshake = await sender.handshake(VERIFY_TOKEN)
            assert handshake.accepted, handshake
            for body in bodies:
                assert await sender.deliver(body) == [200]
    finally:
        await service.stop()
    records = read_recording(started.recording_path).records
    assert [r["origin"] for r in records] == ["selftest", "meta", "meta", "meta"]
    events_recorded = [r for r in records if r["kind"] == "event"]
    assert [request_body(r["request"]) for r in events_recorded] == bodies
    for record in events_recorded:
        assert record["signature"] == "valid"
        headers = {k.lower(): v for k, v in record["request"]["headers"]}
        assert headers["x-forwarded-proto"] == "https"
        assert meta_signature(request_body(record["request"]), APP_SECRET) == headers["x-hub-signature-256"]


async def test_authtoken_never_on_the_agent_command_line(tmp_path: Path, fake_ngrok: FakeNgrok) -> None:
    service = _service(tmp_path, fake_ngrok)
    await service.start()
    await service.stop()
    invocations = fake_ngrok.invocations()
    assert invocations
    assert all(DEFAULT_AUTHTOKEN not in " ".join(argv) for argv in invocations)
    assert any("--config" in argv for argv in invocations)


async def test_no_agent_process_survives_shutdown(tmp_path: Path, fake_ngrok: FakeNgrok) -> None:
    service = _service(tmp_path, fake_ngrok)
    await service.start()
    pids = _agent_pids(fake_ngrok)
    assert pids and all(pid_alive(pid) for pid in pids)
    await service.stop()
    assert not any(pid_alive(pid) for pid in pids)


async def test_missing_authtoken_explains_and_continues_local_only(
    tmp_path: Path, make_fake_ngrok: MakeFakeNgrok, capfd: pytest.CaptureFixture[str]
) -> None:
    fake = make_fake_ngrok(mode="no-authtoken")
    service = _service(tmp_path, fake)
    events = service.bus.subscribe()
    started = await service.start()
    try:
        assert started.tunnel_state == "failed"
        assert started.callback_url == service.local_url
        failed = await _next(events, TunnelChanged)
        while failed.state != "failed":
            failed = await _next(events, TunnelChanged)
        assert "ERR_NGROK_4018" in failed.reason
        assert "dashboard.ngrok.com/get-started/your-authtoken" in failed.reason
        notice = await _next(events, Notice)
        assert "local-only" in notice.text
        # The receiver still works locally.
        async with fake.client_session() as session:
            result = await MetaLikeSender(session, started.callback_url).handshake(VERIFY_TOKEN)
        assert result.accepted
    finally:
        await service.stop()
    # The agent's own stderr banner and pyngrok's log lines never reach the developer's terminal.
    captured = capfd.readouterr()
    assert "ERR_NGROK_4018" not in captured.err + captured.out


async def test_no_authtoken_configured_at_all(tmp_path: Path, fake_ngrok: FakeNgrok) -> None:
    service = _service(tmp_path, fake_ngrok, authtoken=None)
    started = await service.start()
    await service.stop()
    assert started.tunnel_state == "failed"
    assert fake_ngrok.invocations() == []


async def test_silent_agent_hits_our_deadline(tmp_path: Path, make_fake_ngrok: MakeFakeNgrok) -> None:
    fake = make_fake_ngrok(mode="silent")
    service = _service(tmp_path, fake, deadline=1.5)
    events = service.bus.subscribe()
    loop = asyncio.get_running_loop()
    began = loop.time()
    started = await service.start()
    took = loop.time() - began
    try:
        assert started.tunnel_state == "failed"
        assert took < 6
        notice = await _next(events, Notice)
        assert "did not come up within 2 s" in notice.text or "within 1" in notice.text
    finally:
        await service.stop()
    assert not any(pid_alive(pid) for pid in _agent_pids(fake))


@pytest.mark.parametrize(
    ("mode", "code", "advice"),
    [
        ("session-limit", "ERR_NGROK_108", "the free plan allows 3"),
        # ngrok's minimum for an account can rise above our 3.30 floor: the agent starts, the service refuses it.
        ("too-old,version=3.30.0", "ERR_NGROK_121", " update`"),
    ],
)
async def test_agent_errors_keep_their_code_and_say_what_to_do(
    tmp_path: Path, make_fake_ngrok: MakeFakeNgrok, mode: str, code: str, advice: str
) -> None:
    fake = make_fake_ngrok(mode=mode)
    service = _service(tmp_path, fake)
    events = service.bus.subscribe()
    await service.start()
    await service.stop()
    notice = await _next(events, Notice)
    assert code in notice.text
    assert advice in notice.text


async def test_agent_dying_is_reported_and_the_tunnel_comes_back(
    tmp_path: Path, make_fake_ngrok: MakeFakeNgrok
) -> None:
    fake = make_fake_ngrok(mode="die-after=1.5")
    service = _service(tmp_path, fake)
    events = service.bus.subscribe()
    started = await service.start()
    try:
        states: list[TunnelChanged] = []
        while [e.state for e in states][-2:] != ["reconnecting", "up"]:
            states.append(await _next(events, TunnelChanged, timeout=15))
        reconnecting, back = states[-2:]
        assert "exited" in reconnecting.reason
        # A random ngrok URL usually changes on restart; either way the developer is told which.
        expected = "reconnected" if back.callback_url == started.callback_url else "changed"
        assert expected in back.reason
        assert service.callback_url == back.callback_url
    finally:
        await service.stop()
    assert not any(pid_alive(pid) for pid in _agent_pids(fake))


async def test_the_browser_warning_page_never_stands_in_meta_s_way(
    tmp_path: Path, make_fake_ngrok: MakeFakeNgrok
) -> None:
    # ngrok's free-plan interstitial is for browsers only; Meta's user agent (the self-test's) goes through.
    fake = make_fake_ngrok(mode="interstitial")
    service = _service(tmp_path, fake)
    events = service.bus.subscribe()
    await service.start()
    try:
        result = await _next(events, SelfTestFinished)
    finally:
        await service.stop()
    assert result.ok, result.detail


def test_domain_errors_point_to_the_dashboard() -> None:
    error = explain_agent_error("failed to start tunnel: ERR_NGROK_320 The domain 'x.ngrok.app' is reserved "
                                "for another account")
    assert error.code == "ERR_NGROK_320"
    assert "dashboard.ngrok.com/domains" in str(error)


async def test_started_event_precedes_selftest(tmp_path: Path, fake_ngrok: FakeNgrok) -> None:
    service = _service(tmp_path, fake_ngrok)
    events = service.bus.subscribe()
    await service.start()
    try:
        started = await _next(events, ReceiverStarted)
        result = await _next(events, SelfTestFinished)
    finally:
        await service.stop()
    assert result.callback_url == started.callback_url
