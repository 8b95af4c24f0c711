"""The receiver's server on a public URL: deadlines, a connection cap, and every answer recorded, quietly.

Real sockets on port 0 against the ReceiverRunner the service uses, with timeouts shortened to tenths
of a second; one test runs the real CLI under `ulimit -n 128` to show the accept-loop flood is gone.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import resource
import subprocess
import sys
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import aiohttp
import pytest
from aiohttp import web

from tests.support import cli_process
from wa_devtunnel.engine.events import EventBus, Notice, Subscription
from wa_devtunnel.engine.http_server import LISTEN_BACKLOG, SERVER_HEADER, ReceiverRunner, ServerLimits
from wa_devtunnel.engine.receiver import ReceiverConfig, create_receiver_app
from wa_devtunnel.engine.recording import SessionRecorder, read_recording
from wa_devtunnel.engine.server_limits import LimitStats, NoticeThrottle, connection_cap, raise_fd_limit

WEBHOOK = "/webhook/whatsapp"
TOKEN = "limits-verify-token"
HANDSHAKE = f"GET {WEBHOOK}?hub.mode=subscribe&hub.challenge=42&hub.verify_token={TOKEN} HTTP/1.1\r\nHost: x\r\n"
FAST = ServerLimits(max_connections=64, header_timeout_s=0.3, body_timeout_s=0.4, idle_timeout_s=0.3)


@dataclass
class Served:
    """One ReceiverRunner on a real port, its recording and what it published."""

    runner: ReceiverRunner
    recorder: SessionRecorder
    events: Subscription
    port: int

    @property
    def stats(self) -> LimitStats:
        return self.runner.stats

    def records(self) -> list[dict[str, Any]]:
        if not self.recorder.paths:  # the session file is created at the first record
            return []
        read = read_recording(self.recorder.path)
        assert read.problems == ()
        return list(read.records)

    def notices(self, prefix: str = "limits:") -> list[Notice]:
        return [e for e in self.events.drain() if isinstance(e, Notice) and e.topic.startswith(prefix)]


@pytest.fixture
async def serve(tmp_path: Path) -> AsyncIterator[Callable[..., Awaitable[Served]]]:
    started: list[Served] = []

    async def start(limits: ServerLimits = FAST) -> Served:
        bus = EventBus()
        events = bus.subscribe()
        recorder = SessionRecorder(tmp_path / f"recordings-{len(started)}")
        config = ReceiverConfig(path=WEBHOOK, handshake_tokens=(("default", TOKEN),))
        runner = ReceiverRunner(create_receiver_app(config, bus, recorder), limits, bus)
        await runner.setup()
        await web.TCPSite(runner, "127.0.0.1", 0, backlog=LISTEN_BACKLOG).start()
        served = Served(runner, recorder, events, runner.addresses[0][1])
        started.append(served)
        return served

    yield start
    for served in started:
        await served.runner.cleanup()
        served.recorder.close()


async def raw_exchange(port: int, data: bytes, timeout: float = 3.0) -> bytes:
    """Send bytes, read until the server closes."""
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    try:
        writer.write(data)
        await writer.drain()
        return await asyncio.wait_for(reader.read(), timeout)
    finally:
        writer.close()
        with contextlib.suppress(OSError):
            await writer.wait_closed()


async def closed_after(reader: asyncio.StreamReader, timeout: float = 3.0) -> float:
    """Seconds until the server closes this connection (EOF or reset), reading and dropping what it sends."""
    started = time.monotonic()
    with contextlib.suppress(ConnectionResetError):
        while await asyncio.wait_for(reader.read(65536), timeout):
            pass
    return time.monotonic() - started


def header(response: bytes, name: str) -> str | None:
    for line in response.split(b"\r\n\r\n", 1)[0].split(b"\r\n")[1:]:
        key, _, value = line.decode("latin-1").partition(":")
        if key.strip().lower() == name.lower():
            return value.strip()
    return None


# --------------------------------------------------------------------------- timeouts


async def test_idle_keep_alive_connection_is_closed_after_the_idle_timeout(serve: Callable[..., Any]) -> None:
    served = await serve()
    reader, writer = await asyncio.open_connection("127.0.0.1", served.port)
    writer.write(HANDSHAKE.encode() + b"\r\n")
    first = await reader.readuntil(b"42")
    assert first.startswith(b"HTTP/1.1 200") and header(first, "Connection") is None  # kept alive
    idle = await closed_after(reader)
    writer.close()
    assert 0.2 <= idle < 2.0
    assert served.stats.header_timeouts == 0  # an idle connection is not a slow client
    assert served.notices() == []


async def test_slow_headers_are_dropped_while_a_normal_client_is_served(serve: Callable[..., Any]) -> None:
    served = await serve()
    reader, writer = await asyncio.open_connection("127.0.0.1", served.port)
    writer.write(f"GET {WEBHOOK} HTTP/1.1\r\nHost: x\r\n".encode())

    async def trickle() -> None:
        with contextlib.suppress(OSError):
            for _ in range(30):
                writer.write(b"X")
                await asyncio.sleep(0.05)

    async def normal_client() -> list[tuple[int, float]]:
        answers = []
        async with aiohttp.ClientSession() as session:
            for _ in range(8):
                started = time.monotonic()
                async with session.get(f"http://127.0.0.1:{served.port}/elsewhere") as response:
                    await response.read()
                    answers.append((response.status, time.monotonic() - started))
                await asyncio.sleep(0.05)
        return answers

    trickling = asyncio.create_task(trickle())
    dropped_after, answers = await asyncio.gather(closed_after(reader), normal_client())
    trickling.cancel()
    writer.close()
    assert 0.2 <= dropped_after < 2.0  # 0.3 s header deadline, although a byte arrives every 50 ms
    assert [status for status, _ in answers] == [404] * 8
    assert max(elapsed for _, elapsed in answers) < 1.0
    assert served.stats.header_timeouts == 1
    (notice,) = served.notices()
    assert notice.topic == "limits:header" and "WA_DEVTUNNEL_HEADER_TIMEOUT" in notice.text


async def test_a_keep_alive_requests_head_has_the_same_deadline_from_its_first_byte(
    serve: Callable[..., Any],
) -> None:
    served = await serve(ServerLimits(max_connections=8, header_timeout_s=0.3, body_timeout_s=1, idle_timeout_s=5))
    reader, writer = await asyncio.open_connection("127.0.0.1", served.port)
    writer.write(HANDSHAKE.encode() + b"\r\n")
    await reader.readuntil(b"42")
    await asyncio.sleep(0.5)  # idle past the header deadline: fine, the idle timeout is 5 s
    writer.write(b"GET / HTTP/1.1\r\nHost: x\r\n")  # ... but this head never ends
    assert 0.2 <= await closed_after(reader) < 2.0
    writer.close()
    assert served.stats.header_timeouts == 1


async def test_a_silent_connection_is_closed_without_a_warning(serve: Callable[..., Any]) -> None:
    served = await serve()
    reader, writer = await asyncio.open_connection("127.0.0.1", served.port)
    assert 0.2 <= await closed_after(reader) < 2.0
    writer.close()
    assert served.stats.header_timeouts == 0
    assert served.notices() == []


async def test_a_body_slower_than_the_body_timeout_gets_408_and_is_recorded(serve: Callable[..., Any]) -> None:
    served = await serve()
    reader, writer = await asyncio.open_connection("127.0.0.1", served.port)
    writer.write(
        f"POST {WEBHOOK}?a=1 HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
        "Content-Length: 1000\r\n\r\n{".encode()
    )

    async def trickle() -> None:
        with contextlib.suppress(OSError):
            for _ in range(40):
                await asyncio.sleep(0.05)
                writer.write(b" ")

    trickling = asyncio.create_task(trickle())
    started = time.monotonic()
    answer = await asyncio.wait_for(reader.read(), 3)
    elapsed = time.monotonic() - started
    trickling.cancel()
    writer.close()
    assert answer.startswith(b"HTTP/1.1 408"), answer
    assert header(answer, "Connection") == "close" and header(answer, "Server") == SERVER_HEADER
    assert 0.3 <= elapsed < 2.5
    # A fast client posting a whole body meanwhile is not affected.
    async with (
        aiohttp.ClientSession() as session,
        session.post(f"http://127.0.0.1:{served.port}{WEBHOOK}", data=b'{"object": "x"}') as response,
    ):
        assert response.status == 200
    slow, fast = served.records()
    assert slow["kind"] == "other" and slow["response"]["status"] == 408
    assert slow["request"]["method"] == "POST" and slow["request"]["path"] == WEBHOOK
    assert slow["request"]["query"] == "a=1" and "WA_DEVTUNNEL_BODY_TIMEOUT" in slow["reason"]
    assert fast["kind"] == "event" and fast["response"]["status"] == 200
    assert served.stats.body_timeouts == 1
    (notice,) = served.notices()
    assert notice.topic == "limits:body"


async def test_a_big_body_sent_quickly_is_not_cut_by_the_body_timeout(serve: Callable[..., Any]) -> None:
    served = await serve()
    body = b'{"object": "whatsapp_business_account", "pad": "' + b"x" * 3_000_000 + b'"}'
    async with (
        aiohttp.ClientSession() as session,
        session.post(f"http://127.0.0.1:{served.port}{WEBHOOK}", data=body) as response,
    ):
        assert response.status == 200
    assert served.stats.body_timeouts == 0


async def test_an_oversized_body_still_trickling_after_its_413_is_cut_off_quietly(
    serve: Callable[..., Any], caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)
    served = await serve()
    reader, writer = await asyncio.open_connection("127.0.0.1", served.port)
    writer.write(f"POST {WEBHOOK} HTTP/1.1\r\nHost: x\r\nContent-Length: 10000000\r\n\r\n".encode())
    writer.write(b"x" * 70_000)  # past the 64 KiB the receiver keeps of an oversized body

    async def trickle() -> None:
        with contextlib.suppress(OSError):
            for _ in range(60):
                await asyncio.sleep(0.05)
                writer.write(b"x")

    trickling = asyncio.create_task(trickle())
    answer = await reader.readuntil(b"\r\n\r\n")
    assert answer.startswith(b"HTTP/1.1 413") and header(answer, "Server") == SERVER_HEADER
    assert await closed_after(reader) < 2.0  # aiohttp would linger 10 s reading the rest; the body deadline ends it
    trickling.cancel()
    writer.close()
    (record,) = served.records()
    assert record["response"]["status"] == 413
    assert served.stats.body_timeouts == 0  # it had its answer: nothing more to record or count
    assert not [r for r in caplog.records if r.name.startswith(("aiohttp", "wa_devtunnel", "asyncio"))]


async def test_a_client_that_leaves_mid_body_is_counted_without_a_traceback(
    serve: Callable[..., Any], caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)
    served = await serve()
    _, writer = await asyncio.open_connection("127.0.0.1", served.port)
    writer.write(f"POST {WEBHOOK} HTTP/1.1\r\nHost: x\r\nContent-Length: 100\r\n\r\n{{".encode())
    await writer.drain()
    await asyncio.sleep(0.05)
    writer.close()
    for _ in range(50):
        if served.stats.disconnects:
            break
        await asyncio.sleep(0.02)
    assert served.stats.disconnects == 1
    assert served.records() == []  # nobody got an answer
    assert not [r for r in caplog.records if r.name.startswith(("aiohttp", "wa_devtunnel", "asyncio"))]


# --------------------------------------------------------------------------- the connection cap


async def test_connections_past_the_cap_get_503_and_one_notice_per_interval(serve: Callable[..., Any]) -> None:
    limits = ServerLimits(
        max_connections=3, header_timeout_s=5, body_timeout_s=5, idle_timeout_s=5, notice_interval_s=0.3
    )
    served = await serve(limits)
    held = [await asyncio.open_connection("127.0.0.1", served.port) for _ in range(3)]
    await asyncio.sleep(0.05)
    refused = [await raw_exchange(served.port, b"") for _ in range(20)]
    assert all(answer.startswith(b"HTTP/1.1 503 Service Unavailable") for answer in refused)
    assert header(refused[0], "Connection") == "close" and header(refused[0], "Server") == SERVER_HEADER
    assert served.stats.refused_connections == 20
    assert [n.text for n in served.notices()] == [
        "Refused 1 connection(s): at the limit of 3 open connections (WA_DEVTUNNEL_MAX_CONNECTIONS)."
    ]
    await asyncio.sleep(0.4)  # the interval ends: the rest in one line
    assert [n.text for n in served.notices()] == [
        "Refused 19 connection(s): at the limit of 3 open connections (WA_DEVTUNNEL_MAX_CONNECTIONS)."
    ]
    # One of the three leaves: the next connection is served.
    held[0][1].close()
    await asyncio.sleep(0.05)
    answer = await raw_exchange(served.port, HANDSHAKE.encode() + b"Connection: close\r\n\r\n")
    assert answer.startswith(b"HTTP/1.1 200") and answer.endswith(b"42")
    for _, writer in held[1:]:
        writer.close()


def test_the_cap_leaves_room_under_the_open_file_limit() -> None:
    assert connection_cap(256, 1_048_576, forwarding=True) == 256
    assert connection_cap(256, 1024, forwarding=False) == 256
    assert connection_cap(256, 128, forwarding=False) == 32  # 128 - 32 reserved - 64 backlog
    assert connection_cap(256, 128, forwarding=True) == 16  # each forwarded request holds a second socket
    assert connection_cap(5, 128, forwarding=False) == 5
    assert connection_cap(256, 16, forwarding=False) == 2


def test_the_soft_open_file_limit_is_raised_to_the_hard_one() -> None:
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if hard == resource.RLIM_INFINITY or hard < 300:
        pytest.skip(f"needs a finite hard limit above 300 (have {hard})")
    resource.setrlimit(resource.RLIMIT_NOFILE, (256, hard))
    try:
        assert raise_fd_limit() == hard
        assert resource.getrlimit(resource.RLIMIT_NOFILE) == (hard, hard)
    finally:
        resource.setrlimit(resource.RLIMIT_NOFILE, (soft, hard))


def test_the_accept_loop_flood_is_gone_under_ulimit_128(tmp_path: Path) -> None:
    """125 slow uploads against `ulimit -n 128` used to write megabytes of tracebacks and lock everyone out."""
    limit = "import resource, sys, runpy; resource.setrlimit(resource.RLIMIT_NOFILE, (128, 128)); "
    limit += "sys.argv = ['wa_devtunnel', *sys.argv[1:]]; runpy.run_module('wa_devtunnel', run_name='__main__')"
    env_file = cli_process.write_env_file(tmp_path)
    argv = [sys.executable, "-c", limit, "--headless", "--tunnel", "none", "--port", "0"]
    argv += ["--recordings-dir", str(tmp_path / "recordings"), "--env-file", str(env_file)]
    env = cli_process.minimal_env(tmp_path, {"WA_DEVTUNNEL_BODY_TIMEOUT": "1.5"})
    stdout, stderr = tmp_path / "out", tmp_path / "err"
    with open(stdout, "wb") as out, open(stderr, "wb") as err:
        proc = subprocess.Popen(argv, cwd=tmp_path, env=env, stdout=out, stderr=err, stdin=subprocess.DEVNULL)
    cli = cli_process.CliProcess(proc, tmp_path, tmp_path / "recordings", stdout, stderr)
    try:
        cli.wait_for_callback_url()
        asyncio.run(_slow_uploads_then_probe(cli.port, stderr))
    finally:
        if proc.poll() is None:
            proc.terminate()
        proc.wait(timeout=10)
    text = cli.stderr()
    assert "Too many open files" not in text and "Traceback" not in text, text[:2000]
    assert len(text) < 3000, text
    assert "At most 32 open connections, not 256: the open-file limit is 128" in text
    assert 1 <= text.count("[warning] Refused ") <= 3  # one line per 10 s interval, not one per connection
    assert "Answered 408 to" in text


async def _slow_uploads_then_probe(port: int, stderr: Path) -> None:
    head = f"POST {WEBHOOK} HTTP/1.1\r\nHost: x\r\nContent-Length: 1000000\r\n\r\n{{".encode()
    held = []
    for _ in range(125):
        with contextlib.suppress(OSError):
            _, writer = await asyncio.open_connection("127.0.0.1", port)
            writer.write(head)
            held.append(writer)
    await asyncio.sleep(0.3)
    assert stderr.stat().st_size < 3000
    # The 32 slow uploads get their 408 after 1.5 s; then a normal request is answered again.
    deadline = time.monotonic() + 6
    answer = b""
    while not answer.startswith(b"HTTP/1.1 200") and time.monotonic() < deadline:
        await asyncio.sleep(0.2)
        with contextlib.suppress(OSError):
            probe = HANDSHAKE.replace(TOKEN, cli_process.VERIFY_TOKEN) + "Connection: close\r\n\r\n"
            answer = await raw_exchange(port, probe.encode())
    for writer in held:
        writer.close()
    assert answer.startswith(b"HTTP/1.1 200"), answer


# --------------------------------------------------------------------------- malformed requests

MALFORMED = {
    "newline in the path": (b"GET /a%0Ab HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n", 404, "GET", "/a\nb"),
    "OPTIONS *": (b"OPTIONS * HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n", 404, "OPTIONS", "*"),
    "CONNECT": (b"CONNECT x:443 HTTP/1.1\r\nHost: x:443\r\nConnection: close\r\n\r\n", 404, "CONNECT", "x:443"),
    "header without colon": (b"GET /h HTTP/1.1\r\nHost: x\r\nNoColonHere\r\n\r\n", 400, "GET", "/h"),
    "100 KB header": (b"GET /big HTTP/1.1\r\nHost: x\r\nX-Big: " + b"a" * 100_000 + b"\r\n\r\n", 400, "GET", "/big"),
    "control in the path": (b"GET /\x1b[31m HTTP/1.1\r\nHost: x\r\n\r\n", 400, "GET", "/\x1b[31m"),
    "not HTTP": (b"HELLO\r\n\r\n", 400, "", ""),
    "TLS on the plain port": (b"\x16\x03\x01\x02\x00\x01\x00\x01\xfc\x03\x03", 400, "", ""),
}


@pytest.mark.parametrize("case", sorted(MALFORMED))
async def test_a_malformed_request_is_answered_recorded_and_quiet(
    case: str, serve: Callable[..., Any], caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)
    data, status, method, path = MALFORMED[case]
    served = await serve()
    answers = [await raw_exchange(served.port, data) for _ in range(3)]
    for answer in answers:
        assert answer.startswith(f"HTTP/1.1 {status}".encode()) or answer.startswith(f"HTTP/1.0 {status}".encode())
        assert header(answer, "Server") == SERVER_HEADER
        assert b"aiohttp" not in answer and b"Python" not in answer
    records = served.records()
    assert len(records) == 3
    for record in records:
        assert record["kind"] == "other" and record["response"]["status"] == status
        assert (record["request"]["method"], record["request"]["path"]) == (method, path)
        assert record["reason"]
    # Recorded like any request (one line each on the screen), and nothing on stderr: no traceback, no notice.
    assert served.notices() == []
    assert not [r for r in caplog.records if r.name.startswith(("aiohttp", "wa_devtunnel", "asyncio"))]


async def test_a_bug_in_the_handler_is_a_recorded_500_with_one_traceback_per_interval(
    serve: Callable[..., Any], caplog: pytest.LogCaptureFixture, monkeypatch: pytest.MonkeyPatch
) -> None:
    def broken(*args: object, **kwargs: object) -> None:
        raise RuntimeError("a bug of ours")

    monkeypatch.setattr("wa_devtunnel.engine.receiver.decide_handshake", broken)
    caplog.set_level(logging.DEBUG)
    served = await serve()
    for _ in range(4):
        answer = await raw_exchange(served.port, HANDSHAKE.encode() + b"Connection: close\r\n\r\n")
        assert answer.startswith(b"HTTP/1.1 500") and header(answer, "Server") == SERVER_HEADER
        assert b"a bug of ours" not in answer
    assert [r["response"]["status"] for r in served.records()] == [500] * 4
    logged = [r for r in caplog.records if r.name.startswith(("aiohttp", "wa_devtunnel"))]
    assert len(logged) == 1 and logged[0].exc_info is not None
    (notice,) = served.notices()
    assert notice.level == "error" and "RuntimeError" in notice.text


async def test_no_answer_names_a_version(serve: Callable[..., Any]) -> None:
    served = await serve()
    async with aiohttp.ClientSession() as session:
        for method, path in (("GET", WEBHOOK), ("POST", WEBHOOK), ("GET", "/x"), ("DELETE", WEBHOOK)):
            async with session.request(method, f"http://127.0.0.1:{served.port}{path}", data=b"{}") as response:
                assert response.headers.get("Server") == SERVER_HEADER, (method, path)


async def test_notice_throttle_says_the_first_at_once_and_the_rest_as_one_count() -> None:
    bus = EventBus()
    events = bus.subscribe()
    throttle = NoticeThrottle(bus, interval_s=0.2)
    published = [throttle.hit("limits:x", lambda n: f"{n} things") for _ in range(100)]
    assert published == [True] + [False] * 99
    assert [e.text for e in events.drain() if isinstance(e, Notice)] == ["1 things"]
    await asyncio.sleep(0.3)
    assert [e.text for e in events.drain() if isinstance(e, Notice)] == ["99 things"]
    throttle.hit("limits:x", lambda n: f"{n} things")  # inside the next interval: held
    throttle.close()  # ... and said on close
    assert [e.text for e in events.drain() if isinstance(e, Notice)] == ["1 things"]
