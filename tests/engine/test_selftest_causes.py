"""The self-test names the real cause: ngrok's error code, an untrusted certificate, the machine's proxy."""

from __future__ import annotations

import asyncio
import contextlib
import ssl
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass

import pytest
import trustme
from aiohttp import web

from wa_devtunnel.engine.tunnel.edge_errors import NGROK_EDGE_ERRORS
from wa_devtunnel.engine.tunnel.selftest import judge_handshake_answer, run_selftest

TOKEN = "verify-me"
PROXY_VARIABLES = ("HTTPS_PROXY", "HTTP_PROXY", "ALL_PROXY", "NO_PROXY")


def ngrok_page(code: str, title: str) -> str:
    """An ngrok edge error page as the edge serves it (HTML, the code in the body too)."""
    head = f"<!DOCTYPE html><html><head><title>ngrok - {title}</title></head>"
    return f"{head}<body><p>{title}</p><p>{code}</p></body></html>"


# path -> (status, ngrok-error-code header, content type, body)
PAGES: dict[str, tuple[int, str, str, str]] = {
    "offline": (404, "ERR_NGROK_3200", "text/html", ngrok_page("ERR_NGROK_3200", "The endpoint is offline.")),
    "upstream": (502, "ERR_NGROK_8012", "text/html", ngrok_page("ERR_NGROK_8012", "failed to dial upstream")),
    "bandwidth": (403, "ERR_NGROK_725", "text/html", ngrok_page("ERR_NGROK_725", "bandwidth limit")),
    "requests": (429, "ERR_NGROK_727", "text/html", ngrok_page("ERR_NGROK_727", "HTTP requests limit")),
    "per-minute": (429, "ERR_NGROK_734", "text/html", ngrok_page("ERR_NGROK_734", "requests per minute")),
    "warning": (
        200,
        "ERR_NGROK_6024",
        "text/html",
        "<html><body><h1>You are about to visit:</h1><p>x.ngrok-free.app</p>ERR_NGROK_6024</body></html>",
    ),
    "unknown": (500, "ERR_NGROK_9999", "text/html", ngrok_page("ERR_NGROK_9999", "something new")),
}


@pytest.fixture(autouse=True)
def no_proxy_from_the_outside(monkeypatch: pytest.MonkeyPatch) -> None:
    """The self-test follows HTTPS_PROXY: each test sets exactly what it means."""
    for name in PROXY_VARIABLES:
        monkeypatch.delenv(name, raising=False)
        monkeypatch.delenv(name.lower(), raising=False)


@dataclass
class Edge:
    """A local server that answers like ngrok's edge (plain HTTP) and like a healthy receiver (HTTPS)."""

    http: str
    https: str
    ca: trustme.CA

    def trusting(self) -> ssl.SSLContext:
        context = ssl.create_default_context()
        self.ca.configure_trust(context)
        return context


@pytest.fixture
async def edge() -> AsyncIterator[Edge]:
    async def page(request: web.Request) -> web.Response:
        status, code, content_type, body = PAGES[request.match_info["name"]]
        return web.Response(status=status, text=body, content_type=content_type, headers={"Ngrok-Error-Code": code})

    async def receiver(request: web.Request) -> web.Response:
        ok = request.query.get("hub.verify_token") == TOKEN
        return web.Response(text=request.query["hub.challenge"]) if ok else web.Response(status=403)

    ca = trustme.CA()
    tls = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    ca.issue_cert("127.0.0.1").configure_cert(tls)
    app = web.Application()
    app.router.add_get("/page/{name}", page)
    app.router.add_get("/webhook/whatsapp", receiver)
    runner = web.AppRunner(app)
    await runner.setup()
    await web.TCPSite(runner, "127.0.0.1", 0).start()
    await web.TCPSite(runner, "127.0.0.1", 0, ssl_context=tls).start()
    plain, secure = (address[1] for address in runner.addresses)
    yield Edge(f"http://127.0.0.1:{plain}", f"https://127.0.0.1:{secure}", ca)
    await runner.cleanup()


@pytest.mark.parametrize(
    ("name", "expected"),
    [
        ("offline", "HTTP 404 ERR_NGROK_3200 from ngrok, not from the receiver: the endpoint is offline"),
        ("upstream", "HTTP 502 ERR_NGROK_8012 from ngrok, not from the receiver: ngrok reached the agent, but"),
        ("bandwidth", "HTTP 403 ERR_NGROK_725 from ngrok, not from the receiver: free-plan quota reached"),
        ("requests", "HTTP 429 ERR_NGROK_727 from ngrok, not from the receiver: free-plan quota reached"),
        ("per-minute", "HTTP 429 ERR_NGROK_734 from ngrok, not from the receiver: free-plan quota reached"),
        ("warning", "HTTP 200 ERR_NGROK_6024 from ngrok, not from the receiver: ngrok showed its browser warning"),
        ("unknown", "HTTP 500 ERR_NGROK_9999 from ngrok, not from the receiver: see https://ngrok.com/docs/errors/"),
    ],
)
async def test_the_selftest_names_ngroks_error_code(edge: Edge, name: str, expected: str) -> None:
    result = await run_selftest(f"{edge.http}/page/{name}", TOKEN)
    assert not result.ok
    assert result.detail.startswith(expected), result.detail
    assert ("interstitial" in result.detail) == (name == "warning"), result.detail


def test_every_mapped_code_is_worded_once() -> None:
    quotas = [code for code, text in NGROK_EDGE_ERRORS.items() if text.startswith("free-plan quota reached")]
    assert sorted(quotas) == ["ERR_NGROK_725", "ERR_NGROK_727", "ERR_NGROK_734"]
    assert [code for code, text in NGROK_EDGE_ERRORS.items() if "interstitial" in text] == ["ERR_NGROK_6024"]


def test_an_ngrok_page_without_a_header_is_judged_by_its_code_not_called_an_interstitial() -> None:
    page = ngrok_page("ERR_NGROK_3200", "The endpoint x.ngrok-free.app is offline.")
    ok, detail = judge_handshake_answer(404, "text/html", page, "123")
    assert not ok and "ERR_NGROK_3200" in detail and "interstitial" not in detail
    ok, detail = judge_handshake_answer(200, "text/html", "<html><body>Sign in to the proxy</body></html>", "123")
    assert not ok and "interstitial" not in detail and "HTML page (HTTP 200)" in detail
    ok, detail = judge_handshake_answer(404, "text/plain", "404: Not Found", "123")
    assert detail.startswith("HTTP 404: the path does not reach the receiver")


def test_a_receiver_body_naming_an_ngrok_code_is_not_taken_for_the_edge() -> None:
    """Only ngrok's header (or an HTML page) names an edge error: a plain answer is the receiver's own."""
    ok, detail = judge_handshake_answer(403, "text/plain", "ERR_NGROK_3200", "123")
    assert not ok and detail == "HTTP 403: the receiver refused the verify token"


async def test_a_certificate_this_machine_does_not_trust_is_worded_as_such(edge: Edge) -> None:
    result = await run_selftest(f"{edge.https}/webhook/whatsapp", TOKEN)  # the machine's own trust store
    assert not result.ok
    assert result.detail.startswith("this machine does not trust the certificate of 127.0.0.1 ("), result.detail
    assert "checked against this machine's certificate store" in result.detail
    assert result.detail.endswith(
        "a TLS-inspecting proxy or an outdated CA store? Meta only accepts publicly trusted certificates"
    )
    trusted = await run_selftest(f"{edge.https}/webhook/whatsapp", TOKEN, ssl_context=edge.trusting())
    assert trusted.ok, trusted.detail


@contextlib.contextmanager
def _closing(server: asyncio.Server) -> Iterator[asyncio.Server]:
    try:
        yield server
    finally:
        server.close()


async def _connect_proxy(seen: list[str]) -> asyncio.Server:
    """An HTTP CONNECT proxy, as a company's or `HTTPS_PROXY` points to: it records each target."""

    async def pipe(source: asyncio.StreamReader, sink: asyncio.StreamWriter) -> None:
        with contextlib.suppress(OSError):
            while chunk := await source.read(65536):
                sink.write(chunk)
                await sink.drain()
        sink.close()

    async def handle(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        head = await reader.readuntil(b"\r\n\r\n")
        method, target = head.split(b" ")[:2]
        seen.append(f"{method.decode()} {target.decode()}")
        host, port = target.decode().rsplit(":", 1)
        up_reader, up_writer = await asyncio.open_connection(host, int(port))
        writer.write(b"HTTP/1.1 200 Connection established\r\n\r\n")
        await writer.drain()
        await asyncio.gather(pipe(reader, up_writer), pipe(up_reader, writer))

    return await asyncio.start_server(handle, "127.0.0.1", 0)


async def test_the_selftest_goes_through_https_proxy_and_honours_no_proxy(
    edge: Edge, monkeypatch: pytest.MonkeyPatch
) -> None:
    seen: list[str] = []
    with _closing(await _connect_proxy(seen)) as proxy:
        port = proxy.sockets[0].getsockname()[1]
        monkeypatch.setenv("HTTPS_PROXY", f"http://127.0.0.1:{port}")
        url = f"{edge.https}/webhook/whatsapp"
        result = await run_selftest(url, TOKEN, ssl_context=edge.trusting())
        assert result.ok, result.detail
        assert seen == [f"CONNECT {edge.https.removeprefix('https://')}"]
        monkeypatch.setenv("NO_PROXY", "127.0.0.1")
        result = await run_selftest(url, TOKEN, ssl_context=edge.trusting())
        assert result.ok, result.detail
        assert len(seen) == 1
