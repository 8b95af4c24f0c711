"""Starts the engine before the UI (downloads and tunnel errors stay readable), then runs the TUI."""

from __future__ import annotations

import sys
from typing import TextIO

from wa_devtunnel.cli.terminal_text import say
from wa_devtunnel.engine.events import EventInbox, ReceiverStarted
from wa_devtunnel.engine.service import WebhookService
from wa_devtunnel.engine.thread import EngineThread
from wa_devtunnel.settings import Settings


def start_engine(
    settings: Settings, progress: TextIO | None = None, timeout: float | None = None
) -> tuple[EngineThread, EventInbox, ReceiverStarted]:
    """The engine on its own thread, with an inbox that holds every event from the very first one."""
    engine = EngineThread(WebhookService(settings))
    inbox = EventInbox()
    engine.listen(inbox)
    try:
        started = engine.start(progress=progress, timeout=timeout)
    except BaseException:
        engine.stop()
        raise
    return engine, inbox, started


def run_tui(settings: Settings) -> int:
    """The default command: engine on its own thread, the inspector in the foreground."""
    from wa_devtunnel.tui.app import InspectorApp

    if settings.tunnel != "none":
        print(f"Starting the {settings.tunnel} tunnel...", file=sys.stderr)
    try:
        engine, inbox, started = start_engine(settings, progress=sys.stderr)
    except OSError as exc:
        say(f"error: {exc.strerror or exc}", sys.stderr)
        return 2
    try:
        InspectorApp(engine, inbox, started).run()
    finally:
        exchanges = engine.service.exchanges
        engine.stop()
    say(f"Stopped after {exchanges} exchange(s).", sys.stderr)
    if started.recording_path is not None:
        say(f"Recording: {started.recording_path}", sys.stderr)
    return 0
