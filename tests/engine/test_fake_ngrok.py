"""The fake ngrok agent, driven by real pyngrok, acts like the real agent where we depend on it."""

from __future__ import annotations

import asyncio
import json
import os
import socket
import stat
import threading
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from urllib.parse import urlsplit

import pytest
import yaml
from aiohttp import web
from pyngrok import aio as pyngrok_aio
from pyngrok import ngrok, process
from pyngrok.conf import PyngrokConfig
from pyngrok.exception import PyngrokNgrokError, PyngrokNgrokHTTPError

from tests.support.fake_ngrok import DEFAULT_AUTHTOKEN, FakeNgrok, MakeFakeNgrok, pid_alive

UNUSED_PORT = "9"


@dataclass(frozen=True)
class Seen:
    method: str
    raw_path: str
    headers: dict[str, str]
    body: bytes


@dataclass
class Upstream:
    port: int
    seen: list[Seen] = field(default_factory=list)


@pytest.fixture
async def upstream() -> AsyncIterator[Upstream]:
    """The developer's app: records each request, answers 201 with the body echoed after 'ack:'."""
    state = Upstream(port=0)

    async def record(request: web.Request) -> web.Response:
        body = await request.read()
        state.seen.append(Seen(request.method, request.raw_path, dict(request.headers), body))
        return web.Response(status=201, body=b"ack:" + body, headers={"X-Upstream": "yes"})

    async def stream(request: web.Request) -> web.StreamResponse:
        response = web.StreamResponse()
        response.enable_chunked_encoding()
        await response.prepare(request)
        for i in range(64):
            await response.write(bytes([i]) * 16384)
        await response.write_eof()
        return response

    app = web.Application()
    app.router.add_get("/stream", stream)
    app.router.add_route("*", "/{tail:.*}", record)
    runner = web.AppRunner(app)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    state.port = runner.addresses[0][1]
    yield state
    await runner.cleanup()


async def _chunks(body: bytes) -> AsyncIterator[bytes]:
    for _ in range(3):
        yield body


def _refused(port: int) -> bool:
    try:
        socket.create_connection(("127.0.0.1", port), timeout=1).close()
    except OSError:
        return True
    return False


async def test_https_tunnel_forwards_exact_bytes_and_streams_back(
    fake_ngrok: FakeNgrok, upstream: Upstream
) -> None:
    config = fake_ngrok.pyngrok_config()
    tunnel = await pyngrok_aio.connect(str(upstream.port), "http", pyngrok_config=config)
    assert tunnel.public_url is not None
    assert tunnel.public_url.startswith("https://localhost:")
    body = b'{"text":"caf\\u00e9 \xc3\xa9"}\r\n\xff\x00'
    async with fake_ngrok.client_session() as session:
        async with session.post(
            f"{tunnel.public_url}/webhook/whatsapp?a=1&b=%20x",
            data=body,
            headers={"Content-Type": "application/json", "X-Hub-Signature-256": "sha256=ab"},
        ) as response:
            assert response.status == 201
            assert response.headers["X-Upstream"] == "yes"
            assert await response.read() == b"ack:" + body
        async with session.get(f"{tunnel.public_url}/stream") as response:
            streamed = await response.read()
        async with session.post(f"{tunnel.public_url}/chunked", data=_chunks(body)) as response:
            assert await response.read() == b"ack:" + body * 3
    assert streamed == b"".join(bytes([i]) * 16384 for i in range(64))
    seen, chunked = upstream.seen
    assert chunked.body == body * 3
    assert (seen.method, seen.raw_path, seen.body) == ("POST", "/webhook/whatsapp?a=1&b=%20x", body)
    assert seen.headers["X-Hub-Signature-256"] == "sha256=ab"
    assert seen.headers["X-Forwarded-Proto"] == "https"
    assert seen.headers["X-Forwarded-For"] == "127.0.0.1"
    assert seen.headers["X-Forwarded-Host"] == urlsplit(tunnel.public_url).netloc
    assert seen.headers["Host"] == urlsplit(tunnel.public_url).netloc


def test_authtoken_travels_in_the_config_file_not_argv(fake_ngrok: FakeNgrok) -> None:
    config = fake_ngrok.pyngrok_config()
    ngrok.connect(UNUSED_PORT, "http", pyngrok_config=config)
    assert fake_ngrok.invocations() == [
        ["start", "--none", "--log", "stdout", "--config", str(fake_ngrok.config_path)]
    ]
    api_url = ngrok.get_ngrok_process(config).api_url
    status = ngrok.api_request(f"{api_url}/api/status")
    assert status["fake"]["authtoken_source"] == "config"


def test_pyngrok_puts_its_own_auth_token_on_argv(fake_ngrok: FakeNgrok) -> None:
    """Why the provider must leave PyngrokConfig.auth_token unset: pyngrok passes --authtoken."""
    ngrok.connect(UNUSED_PORT, "http", pyngrok_config=fake_ngrok.pyngrok_config(auth_token="t0k"))
    (argv,) = fake_ngrok.invocations()
    assert argv[argv.index("--authtoken") + 1] == "t0k"


def test_kill_leaves_no_process_and_no_listening_port(fake_ngrok: FakeNgrok) -> None:
    config = fake_ngrok.pyngrok_config()
    tunnel = ngrok.connect(UNUSED_PORT, "http", pyngrok_config=config)
    agent = ngrok.get_ngrok_process(config)
    ports = [urlsplit(agent.api_url or "").port, urlsplit(tunnel.public_url or "").port]
    ngrok.kill(config)
    assert agent.proc.poll() is not None
    assert not pid_alive(agent.proc.pid)
    assert not process.is_process_running(config.ngrok_path)
    assert all(port and _refused(port) for port in ports)


@pytest.mark.parametrize("config_version", ["3", "2"])
def test_list_refresh_and_disconnect(fake_ngrok: FakeNgrok, config_version: str) -> None:
    config = fake_ngrok.pyngrok_config(config_version=config_version)
    tunnel = ngrok.connect(UNUSED_PORT, "http", pyngrok_config=config)
    (listed,) = ngrok.get_tunnels(config)
    assert listed.public_url == tunnel.public_url
    assert listed.upstream["url"] == f"http://localhost:{UNUSED_PORT}"
    tunnel.refresh_metrics()
    assert tunnel.metrics["http"]["count"] == 0
    ngrok.disconnect(tunnel.public_url or "", config)
    assert ngrok.get_tunnels(config) == []
    assert _refused(urlsplit(tunnel.public_url or "").port or 0)


@pytest.mark.parametrize(
    ("mode", "authtoken", "code"),
    [
        ("ok", None, "ERR_NGROK_4018"),
        ("no-authtoken", DEFAULT_AUTHTOKEN, "ERR_NGROK_4018"),
        ("bad-authtoken", DEFAULT_AUTHTOKEN, "ERR_NGROK_105"),
        ("session-limit", DEFAULT_AUTHTOKEN, "ERR_NGROK_108"),
        ("too-old", DEFAULT_AUTHTOKEN, "ERR_NGROK_121"),
    ],
    ids=["token-missing", "no-authtoken", "bad-authtoken", "session-limit", "too-old"],
)
def test_session_failures_raise_pyngrok_errors_and_exit(
    make_fake_ngrok: MakeFakeNgrok, mode: str, authtoken: str | None, code: str
) -> None:
    fake = make_fake_ngrok(mode=mode, authtoken=authtoken)
    config = fake.pyngrok_config()
    with pytest.raises(PyngrokNgrokError) as caught:
        ngrok.connect(UNUSED_PORT, "http", pyngrok_config=config)
    assert caught.value.ngrok_error_code == code
    assert str(caught.value).startswith("The ngrok process errored on start: authentication failed")
    assert not process.is_process_running(config.ngrok_path)
    (run,) = fake.invocations()
    assert run[0] == "start"
    if mode == "bad-authtoken":
        assert DEFAULT_AUTHTOKEN in (caught.value.ngrok_error or "")


async def test_static_domain_is_served_under_that_name(
    make_fake_ngrok: MakeFakeNgrok, upstream: Upstream
) -> None:
    fake = make_fake_ngrok(domains=("wa-dev.example.test",), public_host=None)
    config = fake.pyngrok_config()
    tunnel = await pyngrok_aio.connect(
        str(upstream.port), "http", pyngrok_config=config, url="https://wa-dev.example.test"
    )
    assert (tunnel.public_url or "").startswith("https://wa-dev.example.test:")
    async with (
        fake.client_session() as session,
        session.post(f"{tunnel.public_url}/hook", data=b"hi") as response,
    ):
        assert response.status == 201
    assert upstream.seen[-1].headers["X-Forwarded-Host"].startswith("wa-dev.example.test:")


def test_domain_not_yours_fails_the_endpoint_with_err_ngrok_320(
    make_fake_ngrok: MakeFakeNgrok,
) -> None:
    config = make_fake_ngrok(mode="domain-not-yours").pyngrok_config()
    with pytest.raises(PyngrokNgrokHTTPError) as caught:
        ngrok.connect(UNUSED_PORT, "http", pyngrok_config=config, url="https://taken.ngrok.app")
    assert caught.value.status_code == 502
    error = json.loads(caught.value.body)
    assert (error["error_code"], error["msg"]) == (103, "failed to start tunnel")
    assert "This domain is reserved for another account." in error["details"]["err"]
    assert "ERR_NGROK_320" in error["details"]["err"]
    random_url = ngrok.connect(UNUSED_PORT, "http", pyngrok_config=config).public_url
    assert (random_url or "").startswith("https://localhost:")


BROWSER = "Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/131.0 Safari/537.36"


async def test_interstitial_mode_warns_browsers_only(make_fake_ngrok: MakeFakeNgrok, upstream: Upstream) -> None:
    """ngrok's free-plan warning: a browser's GET without the skip header, never Meta's or a client's."""
    fake = make_fake_ngrok(mode="interstitial")
    tunnel = await pyngrok_aio.connect(
        str(upstream.port), "http", pyngrok_config=fake.pyngrok_config()
    )
    url = f"{tunnel.public_url}/webhook?hub.mode=subscribe&hub.challenge=42"
    async with fake.client_session() as session:
        async with session.get(url, headers={"User-Agent": BROWSER}) as response:
            assert response.status == 200
            assert response.content_type == "text/html"
            assert response.headers["Ngrok-Error-Code"] == "ERR_NGROK_6024"
            assert "You are about to visit" in await response.text()
        assert upstream.seen == []
        skipped = {"User-Agent": BROWSER, "ngrok-skip-browser-warning": "1"}
        for headers in (skipped, {"User-Agent": "facebookexternalua"}, {}):
            async with session.get(url, headers=headers) as response:
                assert response.status == 201
                assert "Ngrok-Error-Code" not in response.headers
        async with session.post(url, data=b"{}", headers={"User-Agent": BROWSER}) as response:
            assert response.status == 201
    assert [s.method for s in upstream.seen] == ["GET", "GET", "GET", "POST"]
    assert upstream.seen[1].headers["User-Agent"] == "facebookexternalua"


async def test_nothing_listening_upstream_is_ngrok_502(fake_ngrok: FakeNgrok) -> None:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        free_port = probe.getsockname()[1]
    tunnel = await pyngrok_aio.connect(
        str(free_port), "http", pyngrok_config=fake_ngrok.pyngrok_config()
    )
    async with (
        fake_ngrok.client_session() as session,
        session.post(f"{tunnel.public_url}/hook", data=b"x") as response,
    ):
        assert response.status == 502
        assert response.headers["Ngrok-Error-Code"] == "ERR_NGROK_8012"


async def test_tcp_endpoint_splices_bytes(fake_ngrok: FakeNgrok, upstream: Upstream) -> None:
    tunnel = await pyngrok_aio.connect(
        str(upstream.port), "tcp", pyngrok_config=fake_ngrok.pyngrok_config()
    )
    public = urlsplit(tunnel.public_url or "")
    assert public.scheme == "tcp"
    reader, writer = await asyncio.open_connection("127.0.0.1", public.port)
    writer.write(b"POST /raw HTTP/1.1\r\nHost: x\r\nContent-Length: 2\r\nConnection: close\r\n\r\n")
    writer.write(b"hi")
    reply = await reader.read()
    writer.close()
    assert reply.startswith(b"HTTP/1.1 201") and reply.endswith(b"ack:hi")


def _start_in_thread(config: PyngrokConfig) -> tuple[threading.Thread, list[Exception]]:
    errors: list[Exception] = []

    def start() -> None:
        try:
            ngrok.connect(UNUSED_PORT, "http", pyngrok_config=config)
        except PyngrokNgrokError as exc:
            errors.append(exc)

    starter = threading.Thread(target=start, daemon=True)
    starter.start()
    return starter, errors


def test_silent_agent_blocks_pyngrok_past_its_startup_timeout(
    make_fake_ngrok: MakeFakeNgrok,
) -> None:
    """pyngrok's startup_timeout cannot fire while readline() blocks: a hard deadline must kill."""
    config = make_fake_ngrok(mode="silent").pyngrok_config(startup_timeout=0.3)
    starter, errors = _start_in_thread(config)
    starter.join(0.8)
    assert starter.is_alive()
    process._current_processes[config.ngrok_path].proc.kill()
    starter.join(5)
    assert not starter.is_alive()
    assert "The ngrok process was unable to start" in str(errors[0])
    assert not process.is_process_running(config.ngrok_path)


def test_agent_without_endpoints_api_needs_config_version_2(
    make_fake_ngrok: MakeFakeNgrok,
) -> None:
    """An older agent: pyngrok's default v3 health probe (/api/endpoints) never passes."""
    fake = make_fake_ngrok(mode="no-endpoints-api")
    v3 = fake.pyngrok_config(startup_timeout=0.3)
    starter, errors = _start_in_thread(v3)
    starter.join(0.8)
    # Either pyngrok still waits for a health probe that never passes, or it has given up: never healthy.
    agent = process._current_processes.get(v3.ngrok_path)
    if agent is not None:
        agent.proc.kill()
    starter.join(5)
    assert not starter.is_alive()
    assert errors, "pyngrok must not report a v3 agent without /api/endpoints as started"
    tunnel = ngrok.connect(UNUSED_PORT, "http", pyngrok_config=fake.pyngrok_config(config_version="2"))
    assert (tunnel.public_url or "").startswith("https://localhost:")


def test_die_after_exits_and_pyngrok_starts_a_new_agent(make_fake_ngrok: MakeFakeNgrok) -> None:
    fake = make_fake_ngrok(mode="die-after=0.2")
    config = fake.pyngrok_config()
    ngrok.connect(UNUSED_PORT, "http", pyngrok_config=config)
    first = ngrok.get_ngrok_process(config).proc
    assert first.wait(timeout=5) == 1
    assert not process.is_process_running(config.ngrok_path)
    fake.set_mode("ok")
    tunnel = ngrok.connect(UNUSED_PORT, "http", pyngrok_config=config)
    assert ngrok.get_ngrok_process(config).proc.pid != first.pid
    assert (tunnel.public_url or "").startswith("https://localhost:")


def test_version_update_and_add_authtoken_subcommands(make_fake_ngrok: MakeFakeNgrok) -> None:
    fake = make_fake_ngrok(authtoken=None)
    config = fake.pyngrok_config()
    assert ngrok.get_version(config)[0] == "3.30.0"
    assert "No update available" in ngrok.update(config)
    ngrok.set_auth_token("tok-set-by-pyngrok", config)
    saved = yaml.safe_load(fake.config_path.read_text())
    assert saved["agent"] == {"authtoken": "tok-set-by-pyngrok", "web_addr": "127.0.0.1:0"}
    assert stat.S_IMODE(os.stat(fake.config_path).st_mode) == 0o600
    assert fake.invocations()[-1][:3] == ["config", "add-authtoken", "tok-set-by-pyngrok"]
    ngrok.connect(UNUSED_PORT, "http", pyngrok_config=config)
