"""POSTs of synthetic events, one after the other, timed; signed and headed the way Meta sends them."""

from __future__ import annotations

import hashlib
import hmac
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass

import aiohttp

from wa_devtunnel.engine.http_client import REQUEST_ERRORS, client_session, request_failure
from wa_devtunnel.engine.origin import ORIGIN_HEADER, origin_header
from wa_devtunnel.engine.tunnel.selftest import META_USER_AGENT
from wa_devtunnel.rules.signature import LEGACY_SIGNATURE_HEADER, SIGNATURE_HEADER, sign_body

DEFAULT_TIMEOUT_S = 10.0


@dataclass(frozen=True, slots=True)
class Delivery:
    """One POST to make: its label, the exact bytes, and whether it repeats the previous bytes."""

    label: str
    body: bytes
    again: bool = False


@dataclass(frozen=True, slots=True)
class DeliveryResult:
    """What the target answered to one POST, or why it could not."""

    delivery: Delivery
    status: int | None
    elapsed_ms: float
    answer: str
    error: str | None = None
    unreachable: bool = False

    @property
    def ok(self) -> bool:
        """Meta counts only 2xx as delivered; everything else is retried."""
        return self.status is not None and 200 <= self.status < 300


def meta_headers(body: bytes, app_secret: str | None, origin_key: str | None = None) -> dict[str, str]:
    """The headers Meta sends (signatures when a secret is known), plus our origin mark."""
    headers = {
        "Content-Type": "application/json",
        "User-Agent": META_USER_AGENT,
        ORIGIN_HEADER: origin_header("sample", origin_key),
    }
    if app_secret:
        headers[SIGNATURE_HEADER] = sign_body(body, app_secret)
        legacy = hmac.new(app_secret.encode("utf-8"), body, hashlib.sha1).hexdigest()
        headers[LEGACY_SIGNATURE_HEADER] = f"sha1={legacy}"
    return headers


async def _post(
    session: aiohttp.ClientSession, url: str, delivery: Delivery, secret: str | None, origin_key: str | None
) -> DeliveryResult:
    started = time.perf_counter()
    headers = meta_headers(delivery.body, secret, origin_key)
    try:
        async with session.post(url, data=delivery.body, headers=headers) as response:
            answer = (await response.read()).decode("utf-8", "replace")
            elapsed = (time.perf_counter() - started) * 1000
            return DeliveryResult(delivery, response.status, elapsed, answer)
    except REQUEST_ERRORS as exc:
        failure = request_failure(exc, session.timeout.total)
        elapsed = (time.perf_counter() - started) * 1000
        return DeliveryResult(delivery, None, elapsed, "", failure.reason, unreachable=failure.could_not_connect)


async def send_deliveries(
    url: str,
    deliveries: Sequence[Delivery],
    app_secret: str | None,
    *,
    timeout_s: float = DEFAULT_TIMEOUT_S,
    on_result: Callable[[DeliveryResult], None] = lambda result: None,
    origin_key: str | None = None,
) -> list[DeliveryResult]:
    """POST one after the other (the order is the point of --sequence); stop when nothing listens."""
    results: list[DeliveryResult] = []
    async with client_session(timeout_s, decompress=False) as session:
        for delivery in deliveries:
            result = await _post(session, url, delivery, app_secret, origin_key)
            results.append(result)
            on_result(result)
            if result.unreachable:
                break
    return results
