"""Which engine events deserve a notification, and its words; the header and the banner keep the lasting state.

A toast only draws the eye: whatever the developer must be able to read later (a failed tunnel and its fix,
the registration, no webhook from Meta) stays in the header until it changes.
"""

from __future__ import annotations

from typing import NamedTuple

from textual.notifications import SeverityLevel

from wa_devtunnel.engine.events import (
    EngineEvent,
    Notice,
    RecordingHealth,
    RegistrationChanged,
    SelfTestFinished,
    TunnelChanged,
    WebhookQuiet,
)

NOTICE_SEVERITY: dict[str, SeverityLevel] = {"error": "error", "warning": "warning"}
# Notices whose lasting state the header or the start panel shows (their own events raise the toast).
SAID_BY_THE_HEADER = frozenset({"local-only", "register", "quiet"})


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
    if isinstance(event, Notice) and event.topic not in SAID_BY_THE_HEADER:
        return [Toast(event.text, NOTICE_SEVERITY.get(event.level, "information"), 8)]
    if isinstance(event, RegistrationChanged) and event.state == "failed":
        return [Toast(f"--register {event.scope} failed: {event.detail} (the header keeps this)", "error", 10)]
    if isinstance(event, RegistrationChanged) and event.state == "registered":
        return [Toast(f"Registered with Meta: {event.url} (undone when you quit)", timeout=6)]
    if isinstance(event, WebhookQuiet) and event.quiet:
        return [Toast(f"No webhook from Meta in {event.seconds:g} s (the header says what to check)", "warning", 8)]
    if isinstance(event, RecordingHealth) and event.ok and recording_was_failing:
        where = f" to {event.path}" if event.path is not None else ""
        return [Toast(f"Recording works again: writes{where} succeed, deliveries are answered 200 again.", timeout=10)]
    return []
