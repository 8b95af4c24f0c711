"""The engine's HTTP client: one way to open an aiohttp session, and one vocabulary for why a request failed.

Forwarding, replay, `trigger`, the tunnel self-test and the Graph API client say it the same way: nothing was
sent ("backend unreachable: connection refused", "...: Name or service not known", "...: TLS failed: ..."),
or no full answer came ("backend did not answer within 10 s", "backend protocol error: Server disconnected"),
or the HTTP(S) proxy this machine is told to use failed ("...: proxy 10.0.0.1:3128 answered 407 Proxy Authentication
Required").
"""

from __future__ import annotations

import errno
import functools
import re
import ssl
from dataclasses import dataclass
from enum import StrEnum

import aiohttp

from wa_devtunnel.rules.decode.items import one_line

# Everything a request can raise for a reason outside our program (ssl.SSLError is an OSError).
REQUEST_ERRORS: tuple[type[BaseException], ...] = (aiohttp.ClientError, OSError, TimeoutError)
# aiohttp sends these unless told not to; a proxy or a replay must send only what it was given.
AUTO_HEADERS = ("User-Agent", "Content-Type", "Accept", "Accept-Encoding")
_ERRNO = re.compile(r"\[Errno (\d+)\]")
_CUT_OFF = (errno.ECONNRESET, errno.EPIPE)  # connected, then the peer hung up mid-exchange


class Failure(StrEnum):
    """Why no HTTP answer came back."""

    REFUSED = "refused"  # nothing listens on that port
    UNREACHABLE = "unreachable"  # no such host, no route, network down
    TIMED_OUT = "timed out"
    TLS = "TLS"  # handshake failed or certificate not trusted (`untrusted` tells which)
    PROTOCOL = "protocol"  # connected, but the answer was cut off or was not HTTP
    PROXY = "proxy"  # the proxy (HTTPS_PROXY) could not be reached or refused to pass the request on


@dataclass(frozen=True, slots=True)
class RequestFailure:
    """A failed request in one wording: `reason` alone, or `about(subject)` as a sentence."""

    kind: Failure
    detail: str = ""
    timeout_s: float | None = None
    # TLS only: the peer's certificate was refused (not trusted, expired, wrong name), not the handshake itself.
    untrusted: bool = False

    @property
    def could_not_connect(self) -> bool:
        """Nothing was sent: trying the next request to the same place is pointless."""
        return self.kind in (Failure.REFUSED, Failure.UNREACHABLE, Failure.TLS, Failure.PROXY)

    @property
    def reason(self) -> str:
        """The failure without a subject, for a column or a parenthesis: `connection refused`."""
        if self.kind is Failure.REFUSED:
            return "connection refused"
        if self.kind is Failure.TIMED_OUT:
            return f"did not answer within {self.timeout_s or 0:g} s"
        if self.kind is Failure.TLS:
            return f"TLS failed: {self.detail}"
        if self.kind is Failure.PROTOCOL:
            return f"protocol error: {self.detail}"
        if self.kind is Failure.PROXY:
            return f"proxy {self.detail}"
        return self.detail

    def about(self, subject: str) -> str:
        """`backend unreachable: connection refused` / `backend did not answer within 10 s`."""
        if self.could_not_connect:
            return f"{subject} unreachable: {self.reason}"
        return f"{subject} {self.reason}"


@dataclass(frozen=True, slots=True)
class TrustStore:
    """The certificates a client trusts, and how to name them when a certificate is refused."""

    context: ssl.SSLContext
    name: str


@functools.cache
def machine_trust_store() -> TrustStore:
    """What this machine trusts: its own store via truststore (macOS Keychain, Windows, a company's CA), else certifi.

    Python's default store misses the macOS Keychain (a python.org build without certifi trusts nothing) and a
    company's TLS-inspecting proxy CA, and would call a good certificate untrusted.
    """
    try:
        import truststore

        return TrustStore(truststore.SSLContext(ssl.PROTOCOL_TLS_CLIENT), "this machine's certificate store")
    except (ImportError, OSError, ssl.SSLError):
        pass
    try:
        import certifi

        return TrustStore(ssl.create_default_context(cafile=certifi.where()), "certifi's CA bundle")
    except (ImportError, OSError, ssl.SSLError):
        return TrustStore(ssl.create_default_context(), "OpenSSL's default CA paths")


def client_session(
    timeout_s: float,
    *,
    decompress: bool = True,
    auto_headers: bool = True,
    max_connections: int = 100,
    ssl_context: ssl.SSLContext | None = None,
    trust_env: bool = False,
    cookies: bool = True,
) -> aiohttp.ClientSession:
    """A session with a total deadline per request; `decompress=False, auto_headers=False` passes bytes as given.

    `trust_env` follows HTTPS_PROXY/NO_PROXY (requests to the public internet, as Meta's would go from here).
    `cookies=False`: no cookie jar (nothing kept from an answer, nothing added to a request; a proxy's choice).
    """
    return aiohttp.ClientSession(
        cookie_jar=None if cookies else aiohttp.DummyCookieJar(),
        timeout=aiohttp.ClientTimeout(total=timeout_s),
        auto_decompress=decompress,
        skip_auto_headers=() if auto_headers else AUTO_HEADERS,
        connector=aiohttp.TCPConnector(limit=max_connections, ssl=ssl_context if ssl_context is not None else True),
        trust_env=trust_env,
    )


def request_failure(exc: BaseException, timeout_s: float | None = None) -> RequestFailure:
    """Turn what aiohttp, asyncio or the OS raised into one of the six failures."""
    if isinstance(exc, aiohttp.ClientHttpProxyError):  # the proxy answered the CONNECT with an error
        proxy = exc.request_info.real_url
        return RequestFailure(Failure.PROXY, f"{proxy.host}:{proxy.port} answered {exc.status} {_words(exc)}")
    if isinstance(exc, aiohttp.ClientProxyConnectionError):  # nothing was said to the proxy at all
        cause = request_failure(exc.os_error, timeout_s)
        return RequestFailure(Failure.PROXY, f"{exc.host}:{exc.port} unreachable: {cause.reason}")
    if isinstance(exc, TimeoutError):
        return RequestFailure(Failure.TIMED_OUT, timeout_s=timeout_s)
    if isinstance(exc, aiohttp.ClientSSLError | aiohttp.ServerFingerprintMismatch | ssl.SSLError):
        return RequestFailure(Failure.TLS, _tls_detail(exc), untrusted=_certificate_refused(exc))
    if isinstance(exc, aiohttp.ClientConnectorError):
        exc = exc.os_error
    if isinstance(exc, ConnectionRefusedError) or _all_refused(exc):
        return RequestFailure(Failure.REFUSED)
    if isinstance(exc, aiohttp.ServerDisconnectedError) or getattr(exc, "errno", None) in _CUT_OFF:
        return RequestFailure(Failure.PROTOCOL, _words(exc))
    if isinstance(exc, OSError):
        return RequestFailure(Failure.UNREACHABLE, _words(exc))
    return RequestFailure(Failure.PROTOCOL, _words(exc))


def _all_refused(exc: BaseException) -> bool:
    """asyncio's "Multiple exceptions: ..." when every address of a name (::1, 127.0.0.1) refused."""
    codes = _ERRNO.findall(str(exc)) if isinstance(exc, OSError) and exc.errno is None else []
    return bool(codes) and all(int(code) == errno.ECONNREFUSED for code in codes)


def _certificate_refused(exc: BaseException) -> bool:
    """The certificate failed verification (aiohttp wraps ssl's SSLCertVerificationError)."""
    cause = getattr(exc, "certificate_error", None) or getattr(exc, "os_error", None) or exc
    return isinstance(exc, aiohttp.ClientConnectorCertificateError) or isinstance(cause, ssl.SSLCertVerificationError)


def _tls_detail(exc: BaseException) -> str:
    """The certificate's problem in OpenSSL's words ("self-signed certificate"), else the error itself."""
    cause = getattr(exc, "certificate_error", None) or getattr(exc, "os_error", None) or exc
    return one_line(getattr(cause, "verify_message", None) or _words(cause), 160)


def _words(exc: BaseException) -> str:
    """The system's own words for it on one line ("Name or service not known"), else the error's text or name."""
    if isinstance(exc, aiohttp.ClientResponseError):  # its str() is a repr of status, message and URL
        text = exc.message
    else:
        text = exc.strerror if isinstance(exc, OSError) and exc.strerror else str(exc)
    return one_line(text or type(exc).__name__, 160)
