"""Which engine events deserve a notification, and its words; the header and the banner keep the lasting state."""

from __future__ import annotations

from typing import NamedTuple

from textual.notifications import SeverityLevel

from wa_devtunnel.engine.events import EngineEvent, Notice, RecordingHealth, SelfTestFinished, TunnelChanged

NOTICE_SEVERITY: dict[str, SeverityLevel] = {"error": "error", "warning": "warning"}


class Toast(NamedTuple):
    """One notification (plain text: the app never parses markup in it)."""

    text: str
    severity: SeverityLevel = "information"
    timeout: float | None = None


def toasts_for(event: EngineEvent, recording_was_failing: bool) -> list[Toast]:
    """The notifications one event raises (usually none)."""
    if isinstance(event, TunnelChanged):
        toasts = []
        if event.state == "up" and "changed" in event.reason:
            toasts.append(Toast(f"New Callback URL: {event.callback_url}. Paste it into Meta.", "warning"))
        if event.state == "reconnecting":
            toasts.append(Toast(f"Tunnel down: {event.reason}", "error", 8))
        if event.state == "up" and event.reason == "reconnected":
            toasts.append(Toast(f"Tunnel back up: {event.callback_url}", timeout=6))
        # "down" has no toast of its own: its error notice (TUNNEL DOWN: ...) is the toast.
        return toasts
    if isinstance(event, SelfTestFinished) and not event.ok:
        return [Toast(f"Self-test failed: {event.detail}", "error", 10)]
    if isinstance(event, Notice) and event.topic != "local-only":  # the welcome panel says that one
        return [Toast(event.text, NOTICE_SEVERITY.get(event.level, "information"), 8)]
    if isinstance(event, RecordingHealth) and event.ok and recording_was_failing:
        where = f" to {event.path}" if event.path is not None else ""
        return [Toast(f"Recording works again: writes{where} succeed, deliveries are answered 200 again.", timeout=10)]
    return []
