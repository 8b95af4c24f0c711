"""The public side of a fake endpoint: HTTPS in, HTTP (or TLS) out to the upstream, like ngrok.

An aiohttp.web listener takes each request; an aiohttp client sends the same method, target, headers
and body bytes to the upstream, with ngrok's X-Forwarded-* added; the upstream's answer streams back.
What ngrok's edge answers by itself carries ``Ngrok-Error-Code``: ERR_NGROK_3200 (404) while the agent's
session is down, ERR_NGROK_6024 (the free plan's browser warning, 200) for a browser's GET, ERR_NGROK_8012
(502) when nothing answers upstream.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Callable
from typing import Protocol

import aiohttp
from _ngrok_errors import browser_warning_page, offline_page, upstream_failed_page
from aiohttp import web
from yarl import URL

Log = Callable[..., None]
MAX_BODY = 64 * 1024 * 1024
HOP_BY_HOP = frozenset(
    {
        "connection",
        "keep-alive",
        "proxy-connection",
        "proxy-authenticate",
        "proxy-authorization",
        "te",
        "trailer",
        "transfer-encoding",
        "upgrade",
    }
)
_FORWARDED = frozenset({"x-forwarded-for", "x-forwarded-host", "x-forwarded-proto"})
_NOT_FORWARDED = HOP_BY_HOP | _FORWARDED | {"content-length", "expect"}
# Headers aiohttp's client would add on its own: the upstream must see only what the sender sent.
_CLIENT_EXTRAS = ("User-Agent", "Content-Type", "Accept", "Accept-Encoding")
UPSTREAM_ERRORS = (aiohttp.ClientError, OSError, asyncio.TimeoutError)


class Forwarding(Protocol):
    """What the proxy needs to know about an endpoint (see ``_agent.Endpoint``)."""

    name: str
    scheme: str
    upstream_url: str
    upstream_host: str
    upstream_port: int
    upstream_tls: bool
    conns: int
    requests: int


class EdgeSession(Protocol):
    """The agent's session with the edge (see ``_session.Session``): down means ERR_NGROK_3200."""

    @property
    def up(self) -> bool: ...


def public_app(endpoint: Forwarding, session: EdgeSession, *, interstitial: bool, log: Log) -> web.Application:
    """An aiohttp app that forwards every method and path of one endpoint."""
    seen: set[int] = set()
    upstream = aiohttp.ClientSession(
        connector=aiohttp.TCPConnector(ssl=False),  # like ngrok, any upstream certificate will do
        timeout=aiohttp.ClientTimeout(total=None),
        auto_decompress=False,
        skip_auto_headers=_CLIENT_EXTRAS,
    )

    async def forward(request: web.Request) -> web.StreamResponse:
        if not session.up:  # the edge has no session to send this through: the agent never sees it
            return _edge_error(404, "ERR_NGROK_3200", offline_page(request.host.split(":")[0]))
        if id(request.transport) not in seen:
            seen.add(id(request.transport))
            endpoint.conns += 1
        body = await request.read()
        endpoint.requests += 1
        client_ip, client_port = request.remote or "127.0.0.1", _peer_port(request)
        log(
            "info",
            "join connections",
            obj="join",
            id=f"{endpoint.requests:012x}",
            l=endpoint.upstream_url,
            r=f"{client_ip}:{client_port}",
        )
        if interstitial and request.method == "GET" and _browser_without_skip(request):
            return _edge_error(200, "ERR_NGROK_6024", browser_warning_page(request.host))
        url = URL(f"{endpoint.upstream_url}{request.raw_path}", encoded=True)
        headers = _upstream_headers(request, body, client_ip, endpoint.scheme)
        try:
            async with upstream.request(
                request.method, url, headers=headers, data=body or None, allow_redirects=False
            ) as answer:
                return await _relay(request, answer)
        except UPSTREAM_ERRORS as exc:
            return _bad_gateway(endpoint, exc, log)

    async def close_upstream(app: web.Application) -> None:
        await upstream.close()

    app = web.Application(client_max_size=MAX_BODY)
    app.router.add_route("*", "/{tail:.*}", forward)
    app.on_cleanup.append(close_upstream)
    return app


def _peer_port(request: web.Request) -> int:
    peer = request.transport.get_extra_info("peername") if request.transport else None
    return peer[1] if peer else 0


def _upstream_headers(request: web.Request, body: bytes, client_ip: str, scheme: str) -> list[tuple[str, str]]:
    """The sender's headers in order (Host included), then ngrok's X-Forwarded-*; one request per connection."""
    raw = [(name.decode("latin-1"), value.decode("latin-1")) for name, value in request.raw_headers]
    headers = [(name, value) for name, value in raw if name.lower() not in _NOT_FORWARDED]
    prior = request.headers.get("X-Forwarded-For")
    headers.append(("X-Forwarded-For", f"{prior}, {client_ip}" if prior else client_ip))
    headers.append(("X-Forwarded-Host", request.headers.get("Host", "")))
    headers.append(("X-Forwarded-Proto", scheme))
    framed = "Content-Length" in request.headers or "Transfer-Encoding" in request.headers
    if body or framed or request.method in ("POST", "PUT", "PATCH"):
        headers.append(("Content-Length", str(len(body))))
    headers.append(("Connection", "close"))
    return headers


async def _relay(request: web.Request, answer: aiohttp.ClientResponse) -> web.StreamResponse:
    """The upstream's status, reason, end-to-end headers and body, streamed as they arrive."""
    response = web.StreamResponse(status=answer.status, reason=answer.reason)
    for name, value in answer.raw_headers:
        if name.decode("latin-1").lower() not in HOP_BY_HOP:
            response.headers.add(name.decode("latin-1"), value.decode("latin-1"))
    await response.prepare(request)
    try:
        async for chunk in answer.content.iter_any():
            await response.write(chunk)
    except UPSTREAM_ERRORS:  # the upstream broke off mid-body: so does the tunnel
        if request.transport is not None:
            request.transport.close()
        return response
    await response.write_eof()
    return response


def _browser_without_skip(request: web.Request) -> bool:
    """ngrok warns browsers only: a browser User-Agent and no ``ngrok-skip-browser-warning`` header."""
    agent = request.headers.get("User-Agent", "")
    return "mozilla/" in agent.lower() and "ngrok-skip-browser-warning" not in request.headers


def _edge_error(status: int, code: str, page: str) -> web.Response:
    """An answer from ngrok's edge itself: an HTML page and the ``Ngrok-Error-Code`` header naming why."""
    return web.Response(status=status, text=page, content_type="text/html", headers={"Ngrok-Error-Code": code})


def _bad_gateway(endpoint: Forwarding, exc: BaseException, log: Log) -> web.Response:
    """ngrok's ERR_NGROK_8012 page: the tunnel works but nothing answers on the upstream port."""
    refused = isinstance(getattr(exc, "os_error", exc), ConnectionRefusedError)
    reason = "connect: connection refused" if refused else (str(exc) or type(exc).__name__)
    err = f"dial tcp {endpoint.upstream_host}:{endpoint.upstream_port}: {reason}"
    log("warn", "failed to dial upstream", obj="join", addr=endpoint.upstream_url, err=err)
    return _edge_error(502, "ERR_NGROK_8012", upstream_failed_page(endpoint.upstream_url, err))


async def serve_tcp(
    endpoint: Forwarding, session: EdgeSession, reader: asyncio.StreamReader, writer: asyncio.StreamWriter
) -> None:
    """A tcp:// endpoint: splice bytes both ways (no HTTP involved); nothing gets through while the session is down."""
    if not session.up:
        await _close(writer)
        return
    endpoint.conns += 1
    try:
        up_reader, up_writer = await asyncio.open_connection(endpoint.upstream_host, endpoint.upstream_port)
    except OSError:
        await _close(writer)
        return

    async def pump(source: asyncio.StreamReader, sink: asyncio.StreamWriter) -> None:
        with contextlib.suppress(OSError, asyncio.IncompleteReadError):
            while chunk := await source.read(65536):
                sink.write(chunk)
                await sink.drain()
            if sink.can_write_eof():
                sink.write_eof()

    try:
        await asyncio.gather(pump(reader, up_writer), pump(up_reader, writer))
    finally:
        await _close(up_writer)
        await _close(writer)


async def _close(writer: asyncio.StreamWriter) -> None:
    writer.close()
    with contextlib.suppress(OSError, asyncio.CancelledError):
        await writer.wait_closed()
