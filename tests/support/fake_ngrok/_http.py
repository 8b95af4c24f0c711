"""Minimal HTTP/1.1 on asyncio streams: enough to serve the agent API and to proxy webhooks.

Bodies are handled as bytes end to end, so a proxied request reaches the upstream byte for byte.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
from dataclasses import dataclass, field
from http import HTTPStatus
from typing import Any

MAX_HEAD = 64 * 1024
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


class BadRequest(Exception):
    """The peer sent something that is not HTTP/1.x; the connection is dropped."""


@dataclass
class Request:
    method: str
    target: str
    version: str
    headers: list[tuple[str, str]]
    body: bytes = b""
    expects_continue: bool = False

    def header(self, name: str) -> str | None:
        lowered = name.lower()
        for key, value in self.headers:
            if key.lower() == lowered:
                return value
        return None

    @property
    def path(self) -> str:
        return self.target.split("?", 1)[0]

    @property
    def keep_alive(self) -> bool:
        connection = (self.header("Connection") or "").lower()
        if self.version == "HTTP/1.0":
            return "keep-alive" in connection
        return "close" not in connection


@dataclass
class Response:
    status: int
    headers: list[tuple[str, str]] = field(default_factory=list)
    body: bytes = b""

    def encode(self, *, keep_alive: bool) -> bytes:
        reason = _reason(self.status)
        lines = [f"HTTP/1.1 {self.status} {reason}"]
        lines += [f"{k}: {v}" for k, v in self.headers if k.lower() not in HOP_BY_HOP]
        if not any(k.lower() == "content-length" for k, _ in self.headers):
            lines.append(f"Content-Length: {len(self.body)}")
        lines.append("Connection: " + ("keep-alive" if keep_alive else "close"))
        return ("\r\n".join(lines) + "\r\n\r\n").encode("latin-1") + self.body


def json_response(status: int, payload: Any) -> Response:
    if status == HTTPStatus.NO_CONTENT:
        return Response(status)
    body = json.dumps(payload).encode()
    return Response(status, [("Content-Type", "application/json")], body)


def html_response(status: int, html: str, extra: list[tuple[str, str]] | None = None) -> Response:
    headers = [("Content-Type", "text/html"), *(extra or [])]
    return Response(status, headers, html.encode())


def _reason(status: int) -> str:
    try:
        return HTTPStatus(status).phrase
    except ValueError:
        return "Unknown"


async def read_head(reader: asyncio.StreamReader) -> list[str] | None:
    """The start line and header lines, or None when the peer closed cleanly between messages."""
    try:
        raw = await reader.readuntil(b"\r\n\r\n")
    except asyncio.IncompleteReadError as exc:
        if not exc.partial.strip():
            return None
        raise BadRequest("truncated head") from exc
    except asyncio.LimitOverrunError as exc:
        raise BadRequest("head too large") from exc
    return raw[:-4].decode("latin-1").split("\r\n")


def parse_headers(lines: list[str]) -> list[tuple[str, str]]:
    headers: list[tuple[str, str]] = []
    for line in lines:
        name, sep, value = line.partition(":")
        if not sep or not name or name != name.strip():
            raise BadRequest(f"bad header line {line!r}")
        headers.append((name, value.strip()))
    return headers


async def read_request(reader: asyncio.StreamReader) -> Request | None:
    lines = await read_head(reader)
    if lines is None:
        return None
    parts = lines[0].split(" ")
    if len(parts) != 3 or not parts[2].startswith("HTTP/1."):
        raise BadRequest(f"bad request line {lines[0]!r}")
    request = Request(parts[0], parts[1], parts[2], parse_headers(lines[1:]))
    request.expects_continue = (request.header("Expect") or "").lower() == "100-continue"
    return request


async def read_request_body(
    request: Request, reader: asyncio.StreamReader, writer: asyncio.StreamWriter
) -> None:
    """Fill ``request.body`` (de-chunked), answering ``Expect: 100-continue`` first."""
    chunked = "chunked" in (request.header("Transfer-Encoding") or "").lower()
    length = request.header("Content-Length")
    if not chunked and not length:
        return
    if request.expects_continue:
        writer.write(b"HTTP/1.1 100 Continue\r\n\r\n")
        await writer.drain()
    if chunked:
        request.body = await _read_chunked(reader)
        return
    try:
        size = int(length or "0")
    except ValueError as exc:
        raise BadRequest("bad Content-Length") from exc
    if size < 0 or size > MAX_BODY:
        raise BadRequest("Content-Length out of range")
    request.body = await reader.readexactly(size)


async def _read_chunked(reader: asyncio.StreamReader) -> bytes:
    body = bytearray()
    while True:
        size = _chunk_size(await reader.readuntil(b"\r\n"))
        if size == 0:
            while await reader.readuntil(b"\r\n") != b"\r\n":
                pass
            return bytes(body)
        if len(body) + size > MAX_BODY:
            raise BadRequest("chunked body too large")
        body += await reader.readexactly(size)
        if await reader.readexactly(2) != b"\r\n":
            raise BadRequest("bad chunk terminator")


def _chunk_size(line: bytes) -> int:
    try:
        return int(line.split(b";", 1)[0].strip(), 16)
    except ValueError as exc:
        raise BadRequest(f"bad chunk size line {line!r}") from exc


async def relay_exact(
    reader: asyncio.StreamReader, writer: asyncio.StreamWriter, size: int
) -> None:
    remaining = size
    while remaining:
        chunk = await reader.read(min(65536, remaining))
        if not chunk:
            raise asyncio.IncompleteReadError(b"", remaining)
        writer.write(chunk)
        await writer.drain()
        remaining -= len(chunk)


async def relay_chunked(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
    """Copy a chunked body verbatim, framing included, as it arrives."""
    while True:
        line = await reader.readuntil(b"\r\n")
        writer.write(line)
        size = _chunk_size(line)
        if size == 0:
            while True:
                trailer = await reader.readuntil(b"\r\n")
                writer.write(trailer)
                if trailer == b"\r\n":
                    await writer.drain()
                    return
        await relay_exact(reader, writer, size + 2)


async def relay_until_eof(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
    while chunk := await reader.read(65536):
        writer.write(chunk)
        await writer.drain()


async def close_quietly(writer: asyncio.StreamWriter) -> None:
    writer.close()
    with contextlib.suppress(OSError, asyncio.CancelledError):
        await writer.wait_closed()
