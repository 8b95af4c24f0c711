"""Self-test: send Meta's handshake to the public URL and judge the answer as Meta would."""

from __future__ import annotations

import ipaddress
import secrets
import ssl
import time
from dataclasses import dataclass

from yarl import URL

from wa_devtunnel.engine.http_client import (
    REQUEST_ERRORS,
    Failure,
    RequestFailure,
    TrustStore,
    client_session,
    machine_trust_store,
    request_failure,
)
from wa_devtunnel.engine.origin import META_HANDSHAKE_USER_AGENT, ORIGIN_HEADER, origin_header
from wa_devtunnel.engine.origin import META_USER_AGENT as META_USER_AGENT  # `trigger` sends it with events
from wa_devtunnel.engine.tunnel.edge_errors import NGROK_ERROR_HEADER, edge_error, ngrok_error_code
from wa_devtunnel.rules.handshake import verification_query

META_BUDGET_S = 6.0
# Cloudflare's "origin unreachable/tunnel not ready" answers (530 with error 1033/1016) and gateway errors.
EDGE_NOT_READY = frozenset({502, 503, 504, 530})
THROUGH_THE_TUNNEL = "through the tunnel"
# What each failure means for the URL pasted into Meta's dashboard.
MEANING = {
    Failure.TLS: "; Meta only accepts publicly trusted certificates",
    Failure.TIMED_OUT: ": Meta gives up after about 6 s",
}


@dataclass(frozen=True, slots=True)
class SelfTestResult:
    """PASS with the round trip, or the precise reason Meta would refuse this URL."""

    ok: bool
    url: str
    elapsed_ms: float
    detail: str
    # An answer came from past the tunnel's edge (not a DNS, connection or edge error): retrying won't change it.
    reached: bool = False

    def line(self) -> str:
        """`Self-test: PASS ...` / `Self-test: FAIL ...` for headless output and the TUI header."""
        verdict = "PASS" if self.ok else "FAIL"
        return f"Self-test: {verdict} {self.detail} ({self.elapsed_ms:.0f} ms)"


def new_challenge() -> str:
    """A fresh numeric challenge like Meta's, so an endpoint that echoes a constant is caught."""
    return str(secrets.randbelow(9 * 10**9) + 10**9)


def meta_cannot_reach(url: str) -> str:
    """Why Meta could not call this URL as written (this machine, a private address, plain http), or ""."""
    parsed = URL(url)
    host = parsed.host or ""
    try:
        address = ipaddress.ip_address(host.strip("[]"))
    except ValueError:
        address = None
    where = ""
    if host == "localhost" or host.endswith(".localhost") or (address is not None and address.is_loopback):
        where = f"Meta cannot reach {host}, this machine"
    elif address is not None and (address.is_private or address.is_link_local or address.is_unspecified):
        where = f"Meta cannot reach {host}, a private address"
    if parsed.scheme == "https":
        return where
    return f"{where}, and calls only https URLs" if where else "Meta calls only https URLs"


def judge_handshake_answer(
    status: int, content_type: str, body: str, challenge: str, error_code: str = "", route: str = THROUGH_THE_TUNNEL
) -> tuple[bool, str]:
    """Meta accepts only 200 + the exact challenge; explain every other answer.

    `error_code` is the tunnel edge's own code for an answer it made (ngrok's `ngrok-error-code` header);
    `route` says where the answer came from ("through the tunnel", "locally (...)", or "" when unknown).
    """
    looks_html = "html" in content_type.lower() or body.lstrip().lower().startswith(("<!doctype", "<html"))
    if status == 200 and body == challenge:
        answered = f"Meta's handshake answered {route}".rstrip()
        if not content_type.lower().startswith("text/plain"):
            return (
                True,
                f"{answered}: challenge echoed, but as {content_type or 'no content type'} (text/plain is safest)",
            )
        return True, f"{answered}: challenge echoed as text/plain"
    edge = edge_error(status, ngrok_error_code(error_code, body if looks_html else ""), body if looks_html else "")
    if edge:
        return False, edge
    if looks_html and status == 200:
        return False, (
            "got an HTML page (HTTP 200) instead of the challenge: something between Meta and the receiver "
            "answered (a proxy's or a tunnel's page); Meta would see that page, not the challenge"
        )
    if status == 404:
        return False, "HTTP 404: the path does not reach the receiver (check --path and the URL in Meta)"
    if status == 403:
        return False, "HTTP 403: the receiver refused the verify token"
    if status == 200 and body.strip('"') == challenge:
        return False, "the challenge came back JSON-encoded (with quotes): Meta needs it verbatim"
    if status == 200:
        return False, f"HTTP 200 but the body is not the challenge ({body[:60]!r})"
    if status in (502, 503, 504):
        return False, f"HTTP {status} from the tunnel: it cannot reach the receiver's port"
    return False, f"HTTP {status}: Meta needs 200 with the challenge"


async def run_selftest(
    callback_url: str,
    verify_token: str,
    *,
    timeout_s: float = META_BUDGET_S,
    ssl_context: ssl.SSLContext | None = None,
    origin_key: str | None = None,
    route: str = THROUGH_THE_TUNNEL,
) -> SelfTestResult:
    """One handshake exactly like Meta's (its user agent, a random challenge, ~6 s budget), marked as ours.

    It goes out as this machine's other HTTPS clients do (its trust store, HTTPS_PROXY/NO_PROXY), so a
    failure is about the URL, not about Python's view of the network; tests pass their own `ssl_context`.
    `route` words a good answer: where it came from (see judge_handshake_answer).
    """
    trust = TrustStore(ssl_context, "the given CA") if ssl_context is not None else machine_trust_store()
    challenge = new_challenge()
    query = verification_query(challenge, verify_token)
    headers = {"User-Agent": META_HANDSHAKE_USER_AGENT, ORIGIN_HEADER: origin_header("selftest", origin_key)}
    started = time.perf_counter()

    def elapsed() -> float:
        return (time.perf_counter() - started) * 1000

    try:
        async with (
            client_session(timeout_s, ssl_context=trust.context, trust_env=True) as session,
            session.get(f"{callback_url}?{query}", headers=headers) as response,
        ):
            body = await response.text(errors="replace")
            status, edge_code = response.status, response.headers.get(NGROK_ERROR_HEADER, "")
            ok, detail = judge_handshake_answer(
                status, response.headers.get("Content-Type", ""), body, challenge, edge_code, route
            )
    except REQUEST_ERRORS as exc:
        failure = request_failure(exc, timeout_s)
        return SelfTestResult(False, callback_url, elapsed(), failure_detail(failure, callback_url, trust))
    return SelfTestResult(ok, callback_url, elapsed(), detail, reached=not edge_code and status not in EDGE_NOT_READY)


def failure_detail(failure: RequestFailure, callback_url: str, trust: TrustStore) -> str:
    """No answer came: why, in the words that point at the right machine (a refused certificate is ours to trust)."""
    if failure.kind is Failure.TLS and failure.untrusted:
        host = URL(callback_url).host or callback_url
        return (
            f"this machine does not trust the certificate of {host} ({failure.detail}; checked against "
            f"{trust.name}): a TLS-inspecting proxy or an outdated CA store? Meta only accepts publicly "
            "trusted certificates"
        )
    return failure.about("callback URL") + MEANING.get(failure.kind, "")
