"""Starts the engine before the UI (downloads and tunnel errors stay readable), then runs the TUI."""

from __future__ import annotations

import sys
from typing import TextIO

from wa_devtunnel.engine.events import ReceiverStarted, Subscription
from wa_devtunnel.engine.service import WebhookService
from wa_devtunnel.engine.thread import EngineThread
from wa_devtunnel.rules.untrusted import visible
from wa_devtunnel.settings import Settings

# The list may fall behind a burst, never lose an exchange of it: the UI's queue has no cap.
UI_BACKLOG = sys.maxsize


def start_engine(
    settings: Settings, progress: TextIO | None = None, timeout: float | None = None
) -> tuple[EngineThread, Subscription, ReceiverStarted]:
    """The engine on its own thread, subscribed before it starts so the UI sees every event from the first."""
    engine = EngineThread(WebhookService(settings))
    events = engine.service.bus.subscribe(UI_BACKLOG)
    try:
        started = engine.start(progress=progress, timeout=timeout)
    except BaseException:
        engine.stop()
        raise
    return engine, events, started


def _say(text: str) -> None:
    """A line on stderr after the UI is gone; paths and agent errors are shown escaped, never obeyed."""
    sys.stderr.write(visible(text, keep_newlines=True) + "\n")
    sys.stderr.flush()


def run_tui(settings: Settings) -> int:
    """The default command: engine on its own thread, the inspector in the foreground."""
    # Textual loads only when the inspector runs: every other command starts without it.
    from wa_devtunnel.tui.app import InspectorApp

    if settings.tunnel != "none":
        print(f"Starting the {settings.tunnel} tunnel...", file=sys.stderr)
    try:
        engine, events, started = start_engine(settings, progress=sys.stderr)
    except OSError as exc:
        _say(f"error: {exc.strerror or exc}")
        return 2
    try:
        InspectorApp(engine, events, started).run()
    finally:
        events.close()  # the UI is gone: nothing more to wake
        exchanges = engine.service.exchanges
        engine.stop()
    _say(f"Stopped after {exchanges} exchange(s).")
    if started.recording_path is not None:
        _say(f"Recording: {started.recording_path}")
    return 0
