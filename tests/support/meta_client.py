"""A test client that behaves like Meta's webhook sender (handshake budget, signing, retries)."""

from __future__ import annotations

import hashlib
import hmac
import secrets
import time
from dataclasses import dataclass
from urllib.parse import urlencode

import aiohttp

META_HANDSHAKE_BUDGET_S = 6.0
# The user agents Meta's webhooks arrive with, written out here (not imported) so a wrong product constant fails.
HANDSHAKE_USER_AGENT = "facebookplatform/1.0 (+http://developers.facebook.com)"
EVENT_USER_AGENT = "facebookexternalua"


@dataclass(frozen=True)
class HandshakeResult:
    """What Meta concludes from one verification GET."""

    accepted: bool
    status: int
    body: str
    content_type: str
    challenge: str
    elapsed_s: float


def meta_signature(body: bytes, app_secret: str) -> str:
    """X-Hub-Signature-256 computed independently of the code under test."""
    return "sha256=" + hmac.new(app_secret.encode(), body, hashlib.sha256).hexdigest()


class MetaLikeSender:
    """Sends what Meta sends: the GET handshake and signed compact JSON POSTs, retrying on non-200."""

    def __init__(
        self,
        session: aiohttp.ClientSession,
        url: str,
        app_secret: str | None = None,
        ssl: object = None,
    ) -> None:
        self.session = session
        self.url = url
        self.app_secret = app_secret
        self.ssl = ssl

    async def handshake(self, token: str, challenge: str | None = None) -> HandshakeResult:
        """Meta accepts only 200 + the exact challenge as text/plain within ~6 s."""
        challenge = challenge or str(secrets.randbelow(10**10))
        query = urlencode(
            {"hub.mode": "subscribe", "hub.challenge": challenge, "hub.verify_token": token}
        )
        started = time.perf_counter()
        async with self.session.get(
            f"{self.url}?{query}",
            headers={"User-Agent": HANDSHAKE_USER_AGENT},
            timeout=aiohttp.ClientTimeout(total=META_HANDSHAKE_BUDGET_S),
            ssl=self.ssl,
        ) as response:
            body = await response.text()
            content_type = response.headers.get("Content-Type", "")
            status = response.status
        elapsed = time.perf_counter() - started
        accepted = status == 200 and body == challenge and content_type.startswith("text/plain")
        return HandshakeResult(accepted, status, body, content_type, challenge, elapsed)

    def headers_for(self, body: bytes) -> dict[str, str]:
        """The headers observed on real deliveries."""
        headers = {
            "Content-Type": "application/json",
            "User-Agent": EVENT_USER_AGENT,
            "Accept-Encoding": "deflate, gzip",
        }
        if self.app_secret is not None:
            headers["X-Hub-Signature-256"] = meta_signature(body, self.app_secret)
            headers["X-Hub-Signature"] = (
                "sha1=" + hmac.new(self.app_secret.encode(), body, hashlib.sha1).hexdigest()
            )
        return headers

    async def deliver(self, body: bytes, attempts: int = 3) -> list[int]:
        """POST until a 200 (Meta retries on anything else); return every status seen."""
        statuses: list[int] = []
        for _ in range(attempts):
            async with self.session.post(
                self.url, data=body, headers=self.headers_for(body), ssl=self.ssl
            ) as response:
                await response.read()
                statuses.append(response.status)
            if statuses[-1] == 200:
                break
        return statuses
