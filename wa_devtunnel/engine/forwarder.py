"""Forwarding to the developer's backend: exact bytes, original headers, the backend's answer relayed."""

from __future__ import annotations

import time
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Any

import aiohttp
from multidict import CIMultiDict
from yarl import URL

from wa_devtunnel.engine.http_client import REQUEST_ERRORS, Failure, client_session, request_failure
from wa_devtunnel.engine.origin import ORIGIN_HEADER, RequestHeaders, tunnel_client, without_key

# RFC 9110 hop-by-hop headers, plus the ones the client library must compute itself.
HOP_BY_HOP = frozenset(
    {
        "connection",
        "keep-alive",
        "proxy-authenticate",
        "proxy-authorization",
        "proxy-connection",
        "te",
        "trailer",
        "transfer-encoding",
        "upgrade",
        "host",
        "content-length",
    }
)
DEFAULT_FORWARD_TIMEOUT_S = 10.0


@dataclass(frozen=True, slots=True)
class ForwardResult:
    """What the backend answered (or why it could not), and how long it took."""

    url: str
    status: int | None
    body: bytes
    content_type: str
    elapsed_ms: float
    error: str | None = None
    timed_out: bool = False

    def to_record(self) -> dict[str, Any]:
        """The `forward` object of a version-1 record."""
        return {
            "url": self.url,
            "status": self.status,
            "elapsed_ms": round(self.elapsed_ms, 3),
            "error": self.error,
            "body": self.body.decode("utf-8", "replace")[:4096],
        }

    @property
    def relay_status(self) -> int:
        """What Meta gets: the backend's status, or 502/504 when it could not answer."""
        if self.status is not None:
            return self.status
        return 504 if self.timed_out else 502


def end_to_end_headers(raw_headers: Iterable[Sequence[str]]) -> list[tuple[str, str]]:
    """The original headers in order, minus hop-by-hop ones: what a proxy (or a replay) passes on."""
    pairs = [(str(pair[0]), str(pair[1])) for pair in raw_headers]
    # Headers named in Connection are hop-by-hop too (RFC 9110 section 7.6.1).
    named = {
        token.strip().lower()
        for name, value in pairs
        if name.lower() == "connection"
        for token in value.split(",")
        if token.strip()
    }
    return [(name, value) for name, value in pairs if name.lower() not in HOP_BY_HOP | named]


# Proxy headers a client can simply make up: never passed on, always rebuilt from what we know.
CLIENT_PROXY_HEADERS = frozenset(
    {
        "x-forwarded-for",
        "x-forwarded-host",
        "x-forwarded-proto",
        "x-forwarded-port",
        "x-forwarded-server",
        "x-forwarded-prefix",
        "forwarded",
        "x-real-ip",
        "x-client-ip",
        "true-client-ip",
        "x-cluster-client-ip",
        "fastly-client-ip",
        "cf-connecting-ip",
        "cf-connecting-ipv6",
        "x-forwarded-scheme",
        "x-forwarded-ssl",
        "x-original-forwarded-for",
        "x-original-host",
        "x-original-url",
        "x-rewrite-url",
        "x-host",
    }
)
_LOOPBACK = ("127.", "::1", "::ffff:127.")
# Never passed on: hop-by-hop, computed by the client library, or a proxy header a client can make up.
_NOT_PASSED_ON = HOP_BY_HOP | CLIENT_PROXY_HEADERS
_ORIGIN_LOWER = ORIGIN_HEADER.lower()


def forward_headers(
    raw_headers: Iterable[tuple[str, str]],
    remote: str | None,
    host: str,
    proto: str,
    headers: RequestHeaders | None = None,
) -> list[tuple[str, str]]:
    """The original headers in order, minus hop-by-hop ones and client-made proxy headers, plus our X-Forwarded-*.

    One pass over `raw_headers` (`headers`, the same as a case-insensitive multidict, answers the lookups; built
    here when not given). Our origin header loses its session key. Only the nearest hop is believed: from a
    loopback peer (the tunnel agent on this machine) the client is the one the recording names
    (origin.tunnel_client: the last X-Forwarded-For entry, else Cf-Connecting-Ip) and the last
    X-Forwarded-Proto value the scheme; anything earlier is the sender's own claim. The host is the Host the
    request arrived with (the public one through ngrok).
    """
    if headers is None:
        raw_headers = list(raw_headers)
        headers = CIMultiDict(raw_headers)
    skip = _NOT_PASSED_ON
    if (connection := headers.getall("Connection", None)) is not None:
        # Headers named in Connection are hop-by-hop too (RFC 9110 section 7.6.1).
        named = {token.strip().lower() for value in connection for token in value.split(",")}
        skip = skip | named
    passed = []
    for name, value in raw_headers:
        lower = name.lower()
        if lower not in skip:
            passed.append((name, without_key(value) if lower == _ORIGIN_LOWER else value))
    client, scheme = remote or "", proto
    if remote and remote.startswith(_LOOPBACK):
        client = tunnel_client(headers) or client
        if (protos := headers.getall("X-Forwarded-Proto", None)) is not None:
            last = protos[-1].strip().lower()
            scheme = last if last in ("http", "https") else scheme
    if client:
        passed.append(("X-Forwarded-For", client))
    passed.append(("X-Forwarded-Proto", scheme))
    if host:
        passed.append(("X-Forwarded-Host", host))
    return passed


class Forwarder:
    """One pooled client to the backend; created and closed on the engine's loop.

    Per request only the request itself is built: the target URL is parsed once (a query string is appended
    to the parsed URL as given), the deadline is the session's, no cookie jar (a proxy passes on only what it
    was given, and filtering a jar costs every request), keep-alive connections are pooled (`max_connections`
    at once; Meta's concurrent deliveries and replay's --concurrency fit in the default).
    """

    def __init__(
        self, target_url: str, timeout_s: float = DEFAULT_FORWARD_TIMEOUT_S, max_connections: int = 100
    ) -> None:
        self.target_url = target_url
        self.timeout_s = timeout_s
        self.max_connections = max_connections
        self._session: aiohttp.ClientSession | None = None
        self._url = URL(target_url, encoded=True)

    def _client(self) -> aiohttp.ClientSession:
        if self._session is None or self._session.closed:
            self._session = client_session(
                self.timeout_s,
                decompress=False,
                auto_headers=False,
                max_connections=self.max_connections,
                cookies=False,
            )
        return self._session

    def url_for(self, raw_query: str) -> str:
        """The target URL with the original query string intact (the handshake needs it verbatim)."""
        if not raw_query:
            return self.target_url
        joiner = "&" if "?" in self.target_url else "?"
        return f"{self.target_url}{joiner}{raw_query}"

    async def forward(
        self, method: str, raw_query: str, headers: Sequence[tuple[str, str]], body: bytes
    ) -> ForwardResult:
        """Send one request as received; never raises for a backend problem."""
        started = time.perf_counter()
        url = URL(self.url_for(raw_query), encoded=True) if raw_query else self._url
        try:
            async with self._client().request(
                method, url, data=body or None, headers=headers, allow_redirects=False
            ) as response:
                payload = await response.read()
                elapsed = (time.perf_counter() - started) * 1000
                content_type = response.headers.get("Content-Type", "")
                return ForwardResult(self.target_url, response.status, payload, content_type, elapsed)
        except REQUEST_ERRORS as exc:
            failure = request_failure(exc, self.timeout_s)
            timed_out = failure.kind is Failure.TIMED_OUT
            elapsed = (time.perf_counter() - started) * 1000
            return ForwardResult(self.target_url, None, b"", "", elapsed, failure.about("backend"), timed_out)

    async def close(self) -> None:
        """Close the pool (idempotent)."""
        if self._session is not None:
            await self._session.close()
            self._session = None
