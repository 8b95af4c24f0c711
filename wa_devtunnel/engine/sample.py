"""A signed sample event sent to our own receiver, so a new user sees the whole flow at once."""

from __future__ import annotations

import secrets
import time

import aiohttp

from wa_devtunnel.engine.receiver import ORIGIN_HEADER
from wa_devtunnel.rules import samples
from wa_devtunnel.rules.signature import sign_body


def sample_event_body() -> bytes:
    """A Meta-shaped text message with a fresh id, so it is never flagged as a duplicate."""
    message_id = "wamid.SAMPLE" + secrets.token_hex(12).upper()
    return samples.text_message_payload(
        text="Hello from wa-devtunnel! This is a signed sample event.",
        message_id=message_id,
        timestamp=str(int(time.time())),
    )


async def send_sample_event(url: str, app_secret: str | None) -> int:
    """POST it like Meta would (signed when an App Secret is set); return the receiver's status."""
    body = sample_event_body()
    headers = {"Content-Type": "application/json", "User-Agent": "wa-devtunnel-sample", ORIGIN_HEADER: "sample"}
    if app_secret:
        headers["X-Hub-Signature-256"] = sign_body(body, app_secret)
    async with (
        aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=10)) as session,
        session.post(url, data=body, headers=headers) as response,
    ):
        await response.read()
        return response.status
