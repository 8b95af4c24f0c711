"""Self-test: send Meta's handshake to the public URL and judge the answer as Meta would."""

from __future__ import annotations

import secrets
import ssl
import time
from dataclasses import dataclass

from wa_devtunnel.engine.http_client import REQUEST_ERRORS, Failure, client_session, request_failure
from wa_devtunnel.engine.origin import ORIGIN_HEADER, origin_header
from wa_devtunnel.rules.handshake import verification_query

META_BUDGET_S = 6.0
META_USER_AGENT = "facebookexternalua"
# What each failure means for the URL pasted into Meta's dashboard.
MEANING = {
    Failure.TLS: "; Meta only accepts a publicly trusted certificate",
    Failure.TIMED_OUT: ": Meta gives up after about 6 s",
}


@dataclass(frozen=True, slots=True)
class SelfTestResult:
    """PASS with the round trip, or the precise reason Meta would refuse this URL."""

    ok: bool
    url: str
    elapsed_ms: float
    detail: str

    def line(self) -> str:
        """`Self-test: PASS ...` / `Self-test: FAIL ...` for headless output and the TUI header."""
        verdict = "PASS" if self.ok else "FAIL"
        return f"Self-test: {verdict} {self.detail} ({self.elapsed_ms:.0f} ms)"


def new_challenge() -> str:
    """A fresh numeric challenge like Meta's, so an endpoint that echoes a constant is caught."""
    return str(secrets.randbelow(9 * 10**9) + 10**9)


def judge_handshake_answer(status: int, content_type: str, body: str, challenge: str) -> tuple[bool, str]:
    """Meta accepts only 200 + the exact challenge; explain every other answer."""
    looks_html = "html" in content_type.lower() or body.lstrip().lower().startswith(("<!doctype", "<html"))
    if status == 200 and body == challenge:
        if not content_type.lower().startswith("text/plain"):
            return (
                True,
                f"challenge echoed, but as {content_type or 'no content type'} (text/plain is safest)",
            )
        return True, "Meta's handshake answered through the tunnel: challenge echoed as text/plain"
    if looks_html and ("ngrok" in body.lower() or status == 200):
        return False, (
            f"got an HTML page (HTTP {status}) instead of our answer: the tunnel shows an "
            "interstitial/warning page, Meta would see that page, not the challenge"
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
) -> SelfTestResult:
    """One handshake exactly like Meta's (random challenge, ~6 s budget), marked as ours."""
    challenge = new_challenge()
    query = verification_query(challenge, verify_token)
    headers = {"User-Agent": META_USER_AGENT, ORIGIN_HEADER: origin_header("selftest", origin_key)}
    started = time.perf_counter()

    def elapsed() -> float:
        return (time.perf_counter() - started) * 1000

    try:
        async with (
            client_session(timeout_s, ssl_context=ssl_context) as session,
            session.get(f"{callback_url}?{query}", headers=headers) as response,
        ):
            body = await response.text(errors="replace")
            ok, detail = judge_handshake_answer(
                response.status, response.headers.get("Content-Type", ""), body, challenge
            )
    except REQUEST_ERRORS as exc:
        failure = request_failure(exc, timeout_s)
        detail = failure.about("callback URL") + MEANING.get(failure.kind, "")
        return SelfTestResult(False, callback_url, elapsed(), detail)
    return SelfTestResult(ok, callback_url, elapsed(), detail)
