"""The cloudflared provider end to end: a fake cloudflared that prints what the real one prints, Meta-like traffic
through its public HTTPS side, its failures in its own words, its dropped connection, and nothing left behind."""

from __future__ import annotations

import asyncio
import os
import re
import subprocess
import sys
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass, field
from datetime import date
from pathlib import Path
from typing import Any

import pytest
from aiohttp import web

from tests.support.constants import APP_SECRET, VERIFY_TOKEN
from tests.support.fake_cloudflared import FakeCloudflared, MakeFakeCloudflared, is_fake_cloudflared
from tests.support.meta_client import MetaLikeSender, meta_signature
from wa_devtunnel.engine.doctor.cloudflared import check_cloudflared
from wa_devtunnel.engine.doctor.report import DoctorInput, Status
from wa_devtunnel.engine.events import EngineEvent, SelfTestFinished, Subscription, TunnelChanged
from wa_devtunnel.engine.instance import RunningInstance, write_instance
from wa_devtunnel.engine.leftovers import clear_leftovers
from wa_devtunnel.engine.processes import command_line, process_identity
from wa_devtunnel.engine.recording import read_recording
from wa_devtunnel.engine.service import WebhookService, tunnel_for
from wa_devtunnel.engine.tunnel import cloudflared as cloudflared_module
from wa_devtunnel.engine.tunnel.cloudflared import CloudflaredTunnel, find_cloudflared
from wa_devtunnel.engine.tunnel.cloudflared_log import INSTALL_URL, CloudflaredLog
from wa_devtunnel.engine.tunnel.provider import AGENT_WORKDIR_PREFIX, TunnelError, TunnelHealth
from wa_devtunnel.rules.samples import payloads as samples
from wa_devtunnel.settings import load_settings

QUICK_URL = re.compile(r"https://[a-z]+(?:-[a-z]+){3}\.trycloudflare\.com:\d+")


@dataclass
class Receiver:
    """A local aiohttp app standing in for the webhook receiver: records every request byte for byte."""

    port: int = 0
    seen: list[tuple[str, str, dict[str, str], bytes]] = field(default_factory=list)


@pytest.fixture
async def receiver() -> AsyncIterator[Receiver]:
    state = Receiver()

    async def handle(request: web.Request) -> web.Response:
        body = await request.read()
        state.seen.append((request.method, request.path_qs, dict(request.headers), body))
        return web.Response(text="EVENT_RECEIVED", headers={"X-Receiver": "yes"})

    app = web.Application()
    app.router.add_route("*", "/{tail:.*}", handle)
    runner = web.AppRunner(app, access_log=None)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    state.port = runner.addresses[0][1]
    try:
        yield state
    finally:
        await runner.cleanup()


def _tunnel(fake: FakeCloudflared, deadline: float = 10.0) -> CloudflaredTunnel:
    return CloudflaredTunnel(str(fake.path), start_deadline_s=deadline)


async def _until(condition: Callable[[], bool], timeout: float = 10.0) -> None:
    """Poll a state change the fake makes on its own clock (never asserts on how fast)."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout
    while not condition():
        assert loop.time() < deadline, "the expected state never came"
        await asyncio.sleep(0.05)


def _nothing_left(fake: FakeCloudflared, workdir: str | None) -> None:
    assert fake.pids(), "cloudflared was never started"
    assert not fake.live_pids()
    assert workdir is None or not Path(workdir).exists()


# The provider against the fake ------------------------------------------------------------------


async def test_the_quick_tunnel_url_and_a_signed_post_reaching_the_receiver_byte_exact(
    fake_cloudflared: FakeCloudflared, receiver: Receiver
) -> None:
    tunnel = _tunnel(fake_cloudflared)
    url = await tunnel.start(receiver.port)
    footprint = tunnel.footprint()
    try:
        assert QUICK_URL.fullmatch(url), url
        assert tunnel.health() == TunnelHealth(alive=True, public_url=url)
        assert (await tunnel.check()).session_up
        body = samples.text_message_payload(text="Größe? 😮 a/b\r\n").replace(b", ", b",  ")
        headers = {"Content-Type": "application/json", "X-Hub-Signature-256": meta_signature(body, APP_SECRET)}
        async with (
            fake_cloudflared.client_session() as session,
            session.post(f"{url}/webhook/whatsapp?x=1%202", data=body, headers=headers) as answer,
        ):
            assert answer.status == 200
            assert await answer.text() == "EVENT_RECEIVED"
            assert answer.headers["Server"] == "cloudflare" and answer.headers["CF-RAY"]
            assert answer.headers["X-Receiver"] == "yes"
    finally:
        await tunnel.stop()
    [(method, target, seen_headers, seen_body)] = receiver.seen
    assert (method, target, seen_body) == ("POST", "/webhook/whatsapp?x=1%202", body)
    assert seen_headers["X-Hub-Signature-256"] == meta_signature(body, APP_SECRET)
    assert seen_headers["X-Forwarded-Proto"] == "https"
    assert seen_headers["Cf-Connecting-Ip"] == "127.0.0.1"
    [argv] = fake_cloudflared.invocations()
    assert argv[:2] == ["tunnel", "--no-autoupdate"]
    assert argv[argv.index("--url") + 1] == f"http://127.0.0.1:{receiver.port}"
    assert argv[argv.index("--metrics") + 1] == "127.0.0.1:0"
    assert footprint is not None and argv[argv.index("--config") + 1] == footprint.marker
    _nothing_left(fake_cloudflared, footprint.workdir)


async def test_cloudflared_gets_none_of_our_secrets_nor_a_developer_s_tunnel_settings(
    fake_cloudflared: FakeCloudflared, receiver: Receiver, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("WHATSAPP_APP_SECRET", APP_SECRET)
    monkeypatch.setenv("NGROK_AUTHTOKEN", "2secretNgrokToken0123456789")
    monkeypatch.setenv("TUNNEL_TOKEN", "a-named-tunnel-token")
    monkeypatch.setenv("TUNNEL_URL", "http://127.0.0.1:1")  # would redirect the quick tunnel
    monkeypatch.setenv("HTTPS_PROXY", "http://proxy.example:3128")
    tunnel = _tunnel(fake_cloudflared)
    await tunnel.start(receiver.port)
    await tunnel.stop()
    [env] = fake_cloudflared.environments()
    assert not {"WHATSAPP_APP_SECRET", "NGROK_AUTHTOKEN", "TUNNEL_TOKEN", "TUNNEL_URL"} & env.keys()
    assert env["HTTPS_PROXY"] == "http://proxy.example:3128"
    assert env["PATH"] == os.environ["PATH"]
    assert APP_SECRET not in " ".join(fake_cloudflared.invocations()[0])


async def test_a_developer_s_named_tunnel_config_does_not_hijack_the_quick_tunnel(
    fake_cloudflared: FakeCloudflared, receiver: Receiver, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    home = tmp_path / "home"
    (home / ".cloudflared").mkdir(parents=True)
    (home / ".cloudflared" / "config.yml").write_text(
        "tunnel: 6ff42ae2-765d-4adf-8112-31c55c1551ef\n"
        "ingress:\n  - hostname: app.example.com\n    service: http://localhost:3000\n  - service: http_status:404\n"
    )
    monkeypatch.setenv("HOME", str(home))
    # The trap is real in the fake: cloudflared alone refuses a quick tunnel with that file present.
    plain = subprocess.run(
        [str(fake_cloudflared.path), "tunnel", "--url", f"http://127.0.0.1:{receiver.port}"],
        capture_output=True,
        text=True,
        timeout=30,
        env={**os.environ, "HOME": str(home)},
    )
    assert plain.returncode == 1 and "Use `cloudflared tunnel run` to start tunnel" in plain.stderr
    tunnel = _tunnel(fake_cloudflared)
    url = await tunnel.start(receiver.port)
    try:
        async with fake_cloudflared.client_session() as session, session.post(f"{url}/hook", data=b"{}") as answer:
            assert answer.status == 200
    finally:
        await tunnel.stop()
    assert [seen[1] for seen in receiver.seen] == ["/hook"]


async def test_rate_limited_quick_tunnel_creation_fails_in_cloudflared_s_own_words(
    make_fake_cloudflared: MakeFakeCloudflared,
) -> None:
    fake = make_fake_cloudflared(mode="rate-limited")
    tunnel = _tunnel(fake)
    with pytest.raises(TunnelError) as caught:
        await tunnel.start(9)
    message = str(caught.value)
    assert "cloudflared exited (code 1) before the tunnel was up" in message
    assert "failed to unmarshal quick Tunnel: invalid character 'e' looking for beginning of value" in message
    assert "HTTP 429, error 1015" in caught.value.advice and "--tunnel ngrok" in caught.value.advice
    assert tunnel.footprint() is None
    _nothing_left(fake, None)


async def test_an_offline_machine_is_told_cloudflared_could_not_reach_the_quick_tunnel_service(
    make_fake_cloudflared: MakeFakeCloudflared,
) -> None:
    fake = make_fake_cloudflared(mode="offline")
    with pytest.raises(TunnelError) as caught:
        await _tunnel(fake).start(9)
    assert "lookup api.trycloudflare.com" in caught.value.summary
    assert "api.trycloudflare.com" in caught.value.advice and "HTTPS_PROXY" in caught.value.advice


async def test_a_silent_cloudflared_hits_our_deadline_and_is_stopped(
    make_fake_cloudflared: MakeFakeCloudflared,
) -> None:
    fake = make_fake_cloudflared(mode="silent")
    tunnel = _tunnel(fake, deadline=1.0)
    with pytest.raises(TunnelError) as caught:
        await tunnel.start(9)
    assert "cloudflared printed no quick tunnel URL within 1 s" in caught.value.summary
    assert "Requesting new quick Tunnel on trycloudflare.com..." in caught.value.summary
    _nothing_left(fake, None)


async def test_a_url_without_an_edge_connection_is_a_failure_naming_port_7844(
    make_fake_cloudflared: MakeFakeCloudflared,
) -> None:
    fake = make_fake_cloudflared(mode="no-edge", env={"FAKE_CLOUDFLARED_RETRY_S": "0.1"})
    with pytest.raises(TunnelError) as caught:
        await _tunnel(fake, deadline=1.0).start(9)
    assert QUICK_URL.search(caught.value.summary)
    assert "no recent network activity" in caught.value.summary
    assert "7844" in caught.value.advice
    _nothing_left(fake, None)


async def test_a_missing_cloudflared_gets_install_advice(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    with pytest.raises(TunnelError) as caught:
        await CloudflaredTunnel(str(tmp_path / "nowhere" / "cloudflared")).start(9)
    assert "CLOUDFLARED_PATH=" in caught.value.summary and "does not exist" in caught.value.summary
    assert INSTALL_URL in caught.value.advice
    monkeypatch.setenv("PATH", str(tmp_path))
    with pytest.raises(TunnelError, match="CLOUDFLARED_PATH=cloudflared does not exist"):
        await CloudflaredTunnel("cloudflared").prepare(sys.stderr)
    tunnel = CloudflaredTunnel(None)
    with pytest.raises(TunnelError) as caught:
        await tunnel.prepare(sys.stderr)
    assert caught.value.summary == "cloudflared is not installed (not found on PATH)"
    assert INSTALL_URL in caught.value.advice and "--tunnel ngrok" in caught.value.advice


def test_cloudflared_is_found_on_path_or_by_its_name(
    fake_cloudflared: FakeCloudflared, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("PATH", f"{fake_cloudflared.root}{os.pathsep}{os.environ['PATH']}")
    assert find_cloudflared(None) == str(fake_cloudflared.path)
    assert find_cloudflared("cloudflared") == str(fake_cloudflared.path)
    assert find_cloudflared(str(fake_cloudflared.path)) == str(fake_cloudflared.path)


async def test_a_dropped_connection_is_session_down_with_the_reason_then_up_again(
    make_fake_cloudflared: MakeFakeCloudflared, receiver: Receiver
) -> None:
    fake = make_fake_cloudflared(mode="drop-after=0.3,recover-after=1.5", env={"FAKE_CLOUDFLARED_RETRY_S": "0.1"})
    tunnel = _tunnel(fake)
    url = await tunnel.start(receiver.port)
    try:
        await _until(lambda: not tunnel.health().session_up)
        health = tunnel.health()
        assert health.alive and health.public_url == url
        assert "lost its connection to Cloudflare and is reconnecting" in health.detail
        assert "no recent network activity" in health.detail
        assert not (await tunnel.check()).session_up
        async with fake.client_session() as session, session.post(f"{url}/hook", data=b"{}") as answer:
            assert answer.status == 530
            assert "Error</span> <span>1033" in await answer.text()
        await _until(lambda: tunnel.health().session_up)
        assert tunnel.health() == TunnelHealth(alive=True, public_url=url)
        async with fake.client_session() as session, session.post(f"{url}/hook", data=b"{}") as answer:
            assert answer.status == 200
    finally:
        await tunnel.stop()
    assert len(receiver.seen) == 1


async def test_a_quick_tunnel_cloudflare_forgot_needs_a_new_one(make_fake_cloudflared: MakeFakeCloudflared) -> None:
    fake = make_fake_cloudflared(mode="expire-after=0.3", env={"FAKE_CLOUDFLARED_RETRY_S": "0.1"})
    tunnel = _tunnel(fake)
    await tunnel.start(9)
    try:
        await _until(lambda: not tunnel.health().alive)
        assert "Unauthorized: Tunnel not found" in tunnel.health().detail
        assert "new URL" in tunnel.health().detail
    finally:
        await tunnel.stop()


async def test_a_killed_cloudflared_is_not_alive(fake_cloudflared: FakeCloudflared) -> None:
    tunnel = _tunnel(fake_cloudflared)
    await tunnel.start(9)
    footprint = tunnel.footprint()
    assert footprint is not None
    os.kill(footprint.pid, 9)
    await _until(lambda: not tunnel.health().alive)
    assert tunnel.health().detail.startswith("cloudflared was killed (signal 9)")
    await tunnel.stop()
    _nothing_left(fake_cloudflared, footprint.workdir)


async def test_footprint_then_stop_leaves_no_process_and_no_directory(
    fake_cloudflared: FakeCloudflared, receiver: Receiver
) -> None:
    tunnel = _tunnel(fake_cloudflared)
    assert tunnel.footprint() is None
    await tunnel.start(receiver.port)
    footprint = tunnel.footprint()
    assert footprint is not None
    [pid] = fake_cloudflared.live_pids()
    assert footprint.pid == pid and footprint.identity == process_identity(pid)
    assert footprint.marker in command_line(pid)
    assert Path(footprint.workdir).name.startswith(AGENT_WORKDIR_PREFIX)
    assert footprint.files == (footprint.marker,) and Path(footprint.marker).parent == Path(footprint.workdir)
    await tunnel.stop()
    await tunnel.stop()  # idempotent
    assert tunnel.footprint() is None
    assert not tunnel.health().alive
    _nothing_left(fake_cloudflared, footprint.workdir)


async def test_a_cloudflared_ignoring_sigterm_is_killed(
    make_fake_cloudflared: MakeFakeCloudflared, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(cloudflared_module, "STOP_GRACE_S", 0.3)
    fake = make_fake_cloudflared(mode="ignore-term")
    tunnel = _tunnel(fake)
    await tunnel.start(9)
    await tunnel.stop()
    _nothing_left(fake, None)


async def test_a_start_after_a_crash_stops_the_cloudflared_left_behind(
    fake_cloudflared: FakeCloudflared, tmp_path: Path
) -> None:
    tunnel = _tunnel(fake_cloudflared)
    await tunnel.start(9)
    footprint = tunnel.footprint()
    assert footprint is not None
    dead = subprocess.Popen([sys.executable, "-c", "pass"])
    dead.wait()
    local = "http://127.0.0.1:9/webhook/whatsapp"
    recordings = tmp_path / "recordings"
    write_instance(recordings, RunningInstance(dead.pid, local, local, None, None, None, "gone", agent=footprint))
    try:
        said = clear_leftovers(recordings)
    finally:
        await tunnel.stop()
    assert said is not None and f"pid {footprint.pid}" in said
    assert not is_fake_cloudflared(footprint.pid)
    assert not Path(footprint.workdir).exists()


# The service with --tunnel cloudflared ------------------------------------------------------------


async def _next(subscription: Subscription, kind: type, timeout: float = 10.0) -> Any:
    async def wait() -> EngineEvent:
        while True:
            event = await subscription.get()
            if isinstance(event, kind):
                return event

    return await asyncio.wait_for(wait(), timeout)


@pytest.mark.usefixtures("trycloudflare_dns")
async def test_the_service_with_tunnel_cloudflared_passes_its_self_test_and_records_meta_traffic(
    fake_cloudflared: FakeCloudflared, tmp_path: Path
) -> None:
    settings = load_settings(
        {"port": "0", "recordings_dir": str(tmp_path / "rec"), "tunnel": "cloudflared"},
        environ={
            "WHATSAPP_VERIFY_TOKEN": VERIFY_TOKEN,
            "WHATSAPP_APP_SECRET": APP_SECRET,
            "CLOUDFLARED_PATH": str(fake_cloudflared.path),
        },
        cwd=tmp_path,
    )
    assert isinstance(tunnel_for(settings), CloudflaredTunnel)
    service = WebhookService(settings, selftest_ssl=fake_cloudflared.ssl_context())
    events = service.bus.subscribe()
    started = await service.start()
    footprint = service.tunnel.footprint()
    try:
        assert started.tunnel_state == "up"
        assert QUICK_URL.fullmatch(started.public_url or ""), started.public_url
        assert started.callback_url == f"{started.public_url}/webhook/whatsapp"
        selftest = await _next(events, SelfTestFinished)
        assert selftest.ok, selftest.detail
        body = samples.text_message_payload(text="via Cloudflare")
        async with fake_cloudflared.client_session() as session:
            sender = MetaLikeSender(session, started.callback_url, APP_SECRET)
            assert (await sender.handshake(VERIFY_TOKEN)).accepted
            assert await sender.deliver(body) == [200]
    finally:
        await service.stop()
    records = read_recording(started.recording_path).records
    assert [r["origin"] for r in records] == ["selftest", "meta", "meta"]
    assert records[-1]["signature"] == "valid"
    assert footprint is not None
    _nothing_left(fake_cloudflared, footprint.workdir)


@pytest.mark.usefixtures("trycloudflare_dns")
async def test_the_service_shows_a_dropped_cloudflared_connection_as_down_then_up_without_a_restart(
    make_fake_cloudflared: MakeFakeCloudflared, tmp_path: Path
) -> None:
    fake = make_fake_cloudflared(mode="drop-after=0.5,recover-after=1.5", env={"FAKE_CLOUDFLARED_RETRY_S": "0.1"})
    settings = load_settings(
        {"port": "0", "recordings_dir": str(tmp_path / "rec"), "tunnel": "cloudflared"},
        environ={"WHATSAPP_VERIFY_TOKEN": VERIFY_TOKEN, "CLOUDFLARED_PATH": str(fake.path)},
        cwd=tmp_path,
    )
    service = WebhookService(settings, selftest_ssl=fake.ssl_context())
    events = service.bus.subscribe()
    started = await service.start()
    try:
        down = await _next(events, TunnelChanged)
        while down.state != "down":
            down = await _next(events, TunnelChanged)
        assert "no recent network activity" in down.reason
        back = await _next(events, TunnelChanged)
        assert (back.state, back.reason, back.public_url) == ("up", "reconnected", started.public_url)
        selftest = await _next(events, SelfTestFinished)
        while not selftest.ok:  # the probe made while down came first
            selftest = await _next(events, SelfTestFinished)
    finally:
        await service.stop()
    assert len(fake.pids()) == 1  # never restarted
    _nothing_left(fake, None)


# cloudflared's log, line by line (lines as the real one prints them) ---------------------------------

REAL_START = """\
2026-02-22T03:45:30Z INF Requesting new quick Tunnel on trycloudflare.com...
2026-02-22T03:45:35Z INF +--------------------------------------------------------------------------------------------+
2026-02-22T03:45:35Z INF |  Your quick Tunnel has been created! Visit it at (it may take some time to be reachable):  |
2026-02-22T03:45:35Z INF |  https://subsidiary-bride-joan-rotation.trycloudflare.com                                  |
2026-02-22T03:45:35Z INF +--------------------------------------------------------------------------------------------+
2026-02-22T03:45:35Z INF Settings: map[ha-connections:1 protocol:quic url:http://localhost:8000]
2026-02-22T03:45:37Z INF Starting metrics server on 127.0.0.1:20241/metrics
2026-02-22T03:45:38Z INF Registered tunnel connection connIndex=0 connection=6a4ed8a7-e279-441d-bbbe-aeda5bfcd3aa \
event=0 ip=198.41.200.23 location=mia04 protocol=quic
"""


def _fed(text: str) -> CloudflaredLog:
    log = CloudflaredLog()
    for line in text.splitlines():
        log.feed(line + "\n")
    return log


def test_the_real_startup_lines_give_the_url_the_metrics_address_and_a_connection() -> None:
    log = _fed(REAL_START)
    assert log.url == "https://subsidiary-bride-joan-rotation.trycloudflare.com"
    assert log.metrics == "127.0.0.1:20241"
    assert log.session_up and log.ever_connected and not log.problems


def test_a_lost_connection_keeps_its_error_through_the_retry_lines_until_registered_again() -> None:
    log = _fed(
        REAL_START
        + '2026-05-16T16:04:30Z ERR Serve tunnel error error="accept stream listener encountered a failure while '
        'serving" connIndex=0 event=0 ip=198.41.192.167\n'
        "2026-05-16T16:04:30Z INF Retrying connection in up to 1s connIndex=0 event=0 ip=198.41.192.167\n"
    )
    assert not log.session_up
    assert log.down_reason == "accept stream listener encountered a failure while serving"
    log.feed("2026-05-16T16:04:31Z INF Registered tunnel connection connIndex=0 connection=x event=0 ip=1.2.3.4\n")
    assert log.session_up and log.down_reason == ""


def test_an_origin_error_is_not_a_lost_connection_and_an_early_unauthorized_is_not_a_forgotten_tunnel() -> None:
    log = _fed(
        '2026-08-14T07:02:29Z ERR Register tunnel error from server side error="Unauthorized: Tunnel not found" '
        "connIndex=0 event=0 ip=198.41.200.193\n" + REAL_START + '2026-08-14T07:04:47Z ERR  error="Unable to reach '
        "the origin service. The service may be down or it may not be responding to traffic from cloudflared: dial "
        'tcp 127.0.0.1:8888: connect: connection refused" connIndex=0 event=1 ingressRule=0 '
        "originService=http://localhost:8888\n"
    )
    assert log.session_up and not log.gone_reason
    log.feed('2026-08-14T09:00:00Z ERR Connection terminated error="Unauthorized: Tunnel not found" connIndex=0\n')
    assert log.gone_reason == "Unauthorized: Tunnel not found"


def test_the_rate_limited_run_s_reason_is_its_last_plain_line() -> None:
    log = _fed(
        "2026-05-29T09:25:34Z INF Requesting new quick Tunnel on trycloudflare.com...\n"
        '2026-05-29T09:25:34Z ERR Error unmarshaling QuickTunnel response: error code: 1015 error="invalid '
        'character \'e\' looking for beginning of value" status_code="429 Too Many Requests"\n'
        "failed to unmarshal quick Tunnel: invalid character 'e' looking for beginning of value\n"
    )
    assert log.reason() == "failed to unmarshal quick Tunnel: invalid character 'e' looking for beginning of value"
    assert log.problems[0].startswith("Error unmarshaling QuickTunnel response: error code: 1015: invalid")
    assert log.url is None and not log.session_up


def test_cloudflared_s_text_never_reaches_us_with_control_characters_and_no_url_outside_the_box() -> None:
    log = _fed(
        '2026-01-01T00:00:00Z ERR \x1b[31mboom\x1b[0m \x07\u202e error="x\x1b]0;title\x07"\n'
        "2026-01-01T00:00:00Z INF visit https://evil.trycloudflare.com now\n"
        "2026-01-01T00:00:00Z INF |  https://evil.example.com  |\n" + "x" * 5000 + "\n"
    )
    for text in (*log.tail, *log.problems, log.reason()):
        assert not re.search(r"[\x00-\x1f\x7f\u202e]", text), text
        assert len(text) <= 300
    assert log.url is None


# doctor ---------------------------------------------------------------------------------------------


def _doctor_input(tmp_path: Path, tunnel: str, cloudflared_path: str) -> DoctorInput:
    flags = {"recordings_dir": str(tmp_path / "rec"), "tunnel": tunnel}
    loaded = load_settings(flags, environ={"CLOUDFLARED_PATH": cloudflared_path}, cwd=tmp_path)
    return DoctorInput(loaded, dict(os.environ), tmp_path / ".env", (), (), None, None)


async def test_doctor_shows_cloudflared_s_version_and_warns_when_it_is_over_a_year_old(
    make_fake_cloudflared: MakeFakeCloudflared, tmp_path: Path
) -> None:
    fake = make_fake_cloudflared(mode="version=2025.8.1")
    inp = _doctor_input(tmp_path, tunnel="cloudflared", cloudflared_path=str(fake.path))
    result = await check_cloudflared(inp, today=date(2025, 9, 1))
    assert (result.status, result.detail) == (Status.PASS, f"cloudflared version 2025.8.1 ({fake.path})")
    fake.set_mode("version=2023.5.0")
    result = await check_cloudflared(inp, today=date(2025, 9, 1))
    assert result.status is Status.WARN and "2023.5.0" in result.detail and "28 months old" in result.detail
    assert INSTALL_URL in result.fix


async def test_doctor_fails_a_missing_cloudflared_only_when_it_is_the_tunnel(tmp_path: Path) -> None:
    missing = str(tmp_path / "cloudflared")
    result = await check_cloudflared(_doctor_input(tmp_path, tunnel="cloudflared", cloudflared_path=missing))
    assert result.status is Status.FAIL and "does not exist" in result.detail and INSTALL_URL in result.fix
    result = await check_cloudflared(_doctor_input(tmp_path, tunnel="none", cloudflared_path=missing))
    assert result.status is Status.SKIP
