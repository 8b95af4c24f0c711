"""Replaying one exchange from the live view: through our own receiver, so it is recorded and forwarded."""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Any

from wa_devtunnel.engine.exchange_view import view_from_record
from wa_devtunnel.engine.forwarder import Forwarder, ForwardResult
from wa_devtunnel.engine.recording import request_body
from wa_devtunnel.engine.replay.plan import ReplayOptions, plan_replay
from wa_devtunnel.engine.replay.source import RecordedExchange
from wa_devtunnel.settings import Settings


async def replay_through_receiver(
    record: Mapping[str, Any],
    settings: Settings,
    local_url: str,
    edited_body: bytes | None = None,
    origin_key: str | None = None,
) -> ForwardResult:
    """Send one recorded exchange again (an edited body is re-signed); the receiver forwards it."""
    exchange = RecordedExchange(
        session=Path(""), record=record, view=view_from_record(record), body=request_body(record.get("request") or {})
    )
    options = ReplayOptions(
        target_url=local_url,
        app_secret=settings.app_secret,
        verify_token=settings.verify_token,
        origin_key=origin_key,
    )
    edits = {exchange.view.id: edited_body} if edited_body is not None else None
    (planned,) = plan_replay([exchange], options, edits)
    sender = Forwarder(local_url, settings.forward_timeout_s + 5)
    try:
        return await sender.forward(planned.method, planned.query, planned.headers, planned.body)
    finally:
        await sender.close()
