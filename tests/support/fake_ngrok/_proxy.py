"""The public side of a fake endpoint: HTTPS in, HTTP (or TLS) out to the upstream, like ngrok.

Request bytes go through untouched; ngrok's X-Forwarded-* headers are added; the upstream's
response is streamed back as it arrives.
"""

from __future__ import annotations

import asyncio
import html
import ssl
from collections.abc import Callable
from typing import Any, Protocol

from _http import (
    HOP_BY_HOP,
    BadRequest,
    Request,
    close_quietly,
    html_response,
    parse_headers,
    read_head,
    read_request,
    read_request_body,
    relay_chunked,
    relay_exact,
    relay_until_eof,
)

Log = Callable[..., None]
STREAM_ERRORS = (
    BadRequest,
    asyncio.IncompleteReadError,
    asyncio.LimitOverrunError,
    ConnectionError,
    ssl.SSLError,
    OSError,
)
_FORWARDED = frozenset({"x-forwarded-for", "x-forwarded-host", "x-forwarded-proto"})
_NOT_FORWARDED = HOP_BY_HOP | _FORWARDED | {"content-length", "expect"}


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


def _upstream_tls() -> ssl.SSLContext:
    context = ssl.create_default_context()
    context.check_hostname = False
    context.verify_mode = ssl.CERT_NONE
    return context


async def serve_http(
    endpoint: Forwarding,
    reader: asyncio.StreamReader,
    writer: asyncio.StreamWriter,
    *,
    interstitial: bool,
    log: Log,
) -> None:
    """One client connection: keep-alive loop of request, forward, response."""
    endpoint.conns += 1
    peer = writer.get_extra_info("peername")
    client_ip = peer[0] if peer else "127.0.0.1"
    try:
        while True:
            request = await read_request(reader)
            if request is None:
                return
            await read_request_body(request, reader, writer)
            endpoint.requests += 1
            log(
                "info",
                "join connections",
                obj="join",
                id=f"{endpoint.requests:012x}",
                l=endpoint.upstream_url,
                r=f"{client_ip}:{peer[1] if peer else 0}",
            )
            if interstitial and _is_browser_warning_target(request):
                page = html_response(200, _interstitial_page(request))
                writer.write(page.encode(keep_alive=request.keep_alive))
                await writer.drain()
                keep = True
            else:
                keep = await _forward(endpoint, request, writer, client_ip, log)
            if not (keep and request.keep_alive):
                return
    except STREAM_ERRORS:
        return
    finally:
        await close_quietly(writer)


async def serve_tcp(
    endpoint: Forwarding, reader: asyncio.StreamReader, writer: asyncio.StreamWriter
) -> None:
    """A tcp:// endpoint: splice bytes both ways."""
    endpoint.conns += 1
    try:
        up_reader, up_writer = await asyncio.open_connection(
            endpoint.upstream_host, endpoint.upstream_port
        )
    except OSError:
        await close_quietly(writer)
        return

    async def pump(src: asyncio.StreamReader, dst: asyncio.StreamWriter) -> None:
        try:
            await relay_until_eof(src, dst)
            if dst.can_write_eof():
                dst.write_eof()
        except STREAM_ERRORS:
            pass

    try:
        await asyncio.gather(pump(reader, up_writer), pump(up_reader, writer))
    finally:
        await close_quietly(up_writer)
        await close_quietly(writer)


def _is_browser_warning_target(request: Request) -> bool:
    return request.method == "GET" and request.header("ngrok-skip-browser-warning") is None


async def _forward(
    endpoint: Forwarding, request: Request, writer: asyncio.StreamWriter, client_ip: str, log: Log
) -> bool:
    try:
        up_reader, up_writer = await asyncio.open_connection(
            endpoint.upstream_host,
            endpoint.upstream_port,
            ssl=_upstream_tls() if endpoint.upstream_tls else None,
        )
    except OSError as exc:
        return await _bad_gateway(endpoint, request, writer, exc, log)
    try:
        up_writer.write(_upstream_head(request, client_ip, endpoint.scheme) + request.body)
        await up_writer.drain()
        try:
            status_line, status, headers = await _response_head(up_reader)
        except STREAM_ERRORS as exc:
            return await _bad_gateway(endpoint, request, writer, exc, log)
        return await _relay_response(request, status_line, status, headers, up_reader, writer)
    finally:
        await close_quietly(up_writer)


def _upstream_head(request: Request, client_ip: str, scheme: str) -> bytes:
    headers = [(k, v) for k, v in request.headers if k.lower() not in _NOT_FORWARDED]
    prior = request.header("X-Forwarded-For")
    headers.append(("X-Forwarded-For", f"{prior}, {client_ip}" if prior else client_ip))
    headers.append(("X-Forwarded-Host", request.header("Host") or ""))
    headers.append(("X-Forwarded-Proto", scheme))
    has_body_framing = request.header("Content-Length") or request.header("Transfer-Encoding")
    if request.body or has_body_framing or request.method in ("POST", "PUT", "PATCH"):
        headers.append(("Content-Length", str(len(request.body))))
    headers.append(("Connection", "close"))
    lines = [f"{request.method} {request.target} HTTP/1.1", *(f"{k}: {v}" for k, v in headers)]
    return ("\r\n".join(lines) + "\r\n\r\n").encode("latin-1")


async def _response_head(
    reader: asyncio.StreamReader,
) -> tuple[str, int, list[tuple[str, str]]]:
    while True:
        lines = await read_head(reader)
        if lines is None:
            raise BadRequest("upstream closed without a response")
        parts = lines[0].split(" ", 2)
        if len(parts) < 2 or not parts[0].startswith("HTTP/1.") or not parts[1].isdigit():
            raise BadRequest(f"bad status line {lines[0]!r}")
        status = int(parts[1])
        if not 100 <= status < 200 or status == 101:
            return lines[0], status, parse_headers(lines[1:])


async def _relay_response(
    request: Request,
    status_line: str,
    status: int,
    headers: list[tuple[str, str]],
    up_reader: asyncio.StreamReader,
    writer: asyncio.StreamWriter,
) -> bool:
    lowered = {k.lower(): v for k, v in headers}
    chunked = "chunked" in lowered.get("transfer-encoding", "").lower()
    length = lowered.get("content-length")
    no_body = request.method == "HEAD" or status in (204, 304)
    keep = no_body or chunked or length is not None
    out = [(k, v) for k, v in headers if k.lower() not in HOP_BY_HOP]
    if chunked and not no_body:
        out.append(("Transfer-Encoding", "chunked"))
    out.append(("Connection", "keep-alive" if keep and request.keep_alive else "close"))
    version, _, rest = status_line.partition(" ")
    head = [f"HTTP/1.1 {rest}" if version else status_line, *(f"{k}: {v}" for k, v in out)]
    writer.write(("\r\n".join(head) + "\r\n\r\n").encode("latin-1"))
    if no_body:
        pass
    elif chunked:
        await relay_chunked(up_reader, writer)
    elif length is not None:
        await relay_exact(up_reader, writer, int(length))
    else:
        await relay_until_eof(up_reader, writer)
    await writer.drain()
    return keep


async def _bad_gateway(
    endpoint: Forwarding, request: Request, writer: asyncio.StreamWriter, exc: Any, log: Log
) -> bool:
    """ngrok's ERR_NGROK_8012 page: the tunnel works but nothing answers on the upstream port."""
    err = f"dial tcp {endpoint.upstream_host}:{endpoint.upstream_port}: {exc}"
    log("warn", "failed to dial upstream", obj="join", addr=endpoint.upstream_url, err=err)
    page = html_response(
        502,
        "<!DOCTYPE html><html><head><title>ngrok - ERR_NGROK_8012</title></head><body>"
        f"<p>Traffic was successfully tunneled to the ngrok agent, but the agent failed to "
        f"establish a connection to the upstream web service at "
        f"{html.escape(endpoint.upstream_url)}.</p>"
        f"<p>The error encountered was: {html.escape(err)}</p>"
        "<p>ERR_NGROK_8012</p></body></html>",
        [("Ngrok-Error-Code", "ERR_NGROK_8012")],
    )
    writer.write(page.encode(keep_alive=request.keep_alive))
    await writer.drain()
    return True


def _interstitial_page(request: Request) -> str:
    host = html.escape(request.header("Host") or "")
    return (
        "<!DOCTYPE html><html><head><title>ngrok - Visit Site</title></head><body>"
        "<h1>You are about to visit:</h1>"
        f"<p>{host}</p>"
        "<p>This website is served for free through ngrok. You should only visit it if you "
        "trust whoever sent the link.</p>"
        "<p>To remove this page, set and send an <code>ngrok-skip-browser-warning</code> "
        "request header with any value, or use a non-browser User-Agent.</p>"
        '<form method="GET"><button type="submit">Visit Site</button></form>'
        "<p>ERR_NGROK_6024</p></body></html>"
    )
