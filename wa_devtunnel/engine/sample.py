"""A signed sample event sent to our own receiver, so a new user sees the whole flow at once."""

from __future__ import annotations

import secrets
import time

from wa_devtunnel.engine.trigger import Delivery, send_deliveries
from wa_devtunnel.rules.samples import payloads as samples


def sample_event_body() -> bytes:
    """A Meta-shaped text message with a fresh id, so it is never flagged as a duplicate."""
    message_id = "wamid.SAMPLE" + secrets.token_hex(12).upper()
    return samples.text_message_payload(
        text="Hello from wa-devtunnel! This is a signed sample event.",
        message_id=message_id,
        timestamp=str(int(time.time())),
    )


async def send_sample_event(url: str, app_secret: str | None, origin_key: str | None = None) -> int:
    """POST it like Meta would (signed when an App Secret is set); return the receiver's status."""
    (result,) = await send_deliveries(url, [Delivery("sample", sample_event_body())], app_secret, origin_key=origin_key)
    if result.status is None:
        raise ConnectionError(result.error or "no answer")
    return result.status
