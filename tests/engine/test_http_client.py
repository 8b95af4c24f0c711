"""One HTTP-client vocabulary: every way a request fails is named the same way, whoever sent it."""

from __future__ import annotations

import asyncio
import errno
import socket
import ssl
from collections.abc import AsyncIterator

import pytest
import trustme
from aiohttp import web

from wa_devtunnel.engine.http_client import (
    REQUEST_ERRORS,
    Failure,
    RequestFailure,
    client_session,
    request_failure,
)

TIMEOUT_S = 0.3


async def _slow(request: web.Request) -> web.Response:
    await asyncio.sleep(5)
    return web.Response(text="late")


async def _headers(request: web.Request) -> web.Response:
    return web.json_response([name.decode() for name, _ in request.raw_headers])


@pytest.fixture
async def servers() -> AsyncIterator[dict[str, str]]:
    """Local places that fail in each way: refusing, slow, an untrusted certificate, hanging up, not HTTP."""
    cert = trustme.CA().issue_cert("127.0.0.1")
    tls = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    cert.configure_cert(tls)
    app = web.Application()
    app.router.add_get("/slow", _slow)
    app.router.add_get("/headers", _headers)
    runner = web.AppRunner(app, handler_cancellation=True)
    await runner.setup()
    await web.TCPSite(runner, "127.0.0.1", 0).start()
    await web.TCPSite(runner, "127.0.0.1", 0, ssl_context=tls).start()
    plain, secure = (address[1] for address in runner.addresses)

    async def hang_up(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await reader.read(100)
        writer.close()

    async def not_http(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await reader.read(100)
        writer.write(b"SSH-2.0-OpenSSH\r\n\r\n")
        await writer.drain()
        writer.close()

    raw = [await asyncio.start_server(handler, "127.0.0.1", 0) for handler in (hang_up, not_http)]
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        free = probe.getsockname()[1]
    yield {
        "refused": f"http://127.0.0.1:{free}/",
        "slow": f"http://127.0.0.1:{plain}/slow",
        "headers": f"http://127.0.0.1:{plain}/headers",
        "untrusted": f"https://127.0.0.1:{secure}/",
        "hangs up": f"http://127.0.0.1:{raw[0].sockets[0].getsockname()[1]}/",
        "not http": f"http://127.0.0.1:{raw[1].sockets[0].getsockname()[1]}/",
    }
    for server in raw:
        server.close()
    await runner.cleanup()


async def _fail(url: str) -> RequestFailure:
    async with client_session(TIMEOUT_S) as session:
        try:
            async with session.get(url):
                pass
        except REQUEST_ERRORS as exc:
            return request_failure(exc, TIMEOUT_S)
    raise AssertionError(f"{url} answered")


@pytest.mark.parametrize(
    ("place", "kind", "sentence"),
    [
        ("refused", Failure.REFUSED, "backend unreachable: connection refused"),
        ("slow", Failure.TIMED_OUT, "backend did not answer within 0.3 s"),
        ("untrusted", Failure.TLS, "backend unreachable: TLS failed: unable to get local issuer certificate"),
        ("hangs up", Failure.PROTOCOL, "backend protocol error: Server disconnected"),
        ("not http", Failure.PROTOCOL, "backend protocol error: Bad status line"),
    ],
)
async def test_each_failure_has_one_wording(
    servers: dict[str, str], place: str, kind: Failure, sentence: str
) -> None:
    failure = await _fail(servers[place])
    assert failure.kind is kind
    assert failure.about("backend").startswith(sentence)
    assert failure.about("backend").endswith(failure.reason)
    assert "\n" not in failure.reason


@pytest.mark.parametrize(
    ("error", "kind", "reason"),
    [
        (socket.gaierror(socket.EAI_NONAME, "Name or service not known"), Failure.UNREACHABLE, "Name or service"),
        (OSError(errno.ENETUNREACH, "Network is unreachable"), Failure.UNREACHABLE, "Network is unreachable"),
        (ConnectionRefusedError(errno.ECONNREFUSED, "Connect call failed"), Failure.REFUSED, "connection refused"),
        (  # localhost is ::1 and 127.0.0.1: asyncio joins both refusals into one plain OSError
            OSError(
                "Multiple exceptions: [Errno 111] Connect call failed ('::1', 9, 0, 0), "
                "[Errno 111] Connect call failed ('127.0.0.1', 9)"
            ),
            Failure.REFUSED,
            "connection refused",
        ),
        (ConnectionResetError(errno.ECONNRESET, "Connection reset by peer"), Failure.PROTOCOL, "protocol error: Conn"),
        (TimeoutError(), Failure.TIMED_OUT, "did not answer within 0.3 s"),
    ],
)
def test_system_errors_map_to_the_same_words(error: OSError, kind: Failure, reason: str) -> None:
    failure = request_failure(error, TIMEOUT_S)
    assert (failure.kind, failure.reason[: len(reason)]) == (kind, reason)


def test_only_failures_before_sending_mean_unreachable() -> None:
    unreachable = {kind for kind in Failure if RequestFailure(kind, "x", 1).could_not_connect}
    assert unreachable == {Failure.REFUSED, Failure.UNREACHABLE, Failure.TLS, Failure.PROXY}


async def test_a_verbatim_session_sends_only_the_headers_it_is_given(servers: dict[str, str]) -> None:
    async def send(**options: bool) -> list[str]:
        async with (
            client_session(TIMEOUT_S, **options) as session,
            session.get(servers["headers"], headers={"X-Mine": "1"}) as response,
        ):
            return [name for name in await response.json() if name != "Host"]

    assert await send(decompress=False, auto_headers=False) == ["X-Mine"]
    assert {"User-Agent", "Accept", "Accept-Encoding"} <= set(await send())
