"""Starts the engine as a child process (its start-up output stays readable), then runs the TUI on its channel."""

from __future__ import annotations

import contextlib
import sys
from collections.abc import Sequence

from wa_devtunnel.engine.channel.address import ChannelAddress
from wa_devtunnel.engine.channel.child import EngineChild, EngineStartFailed
from wa_devtunnel.engine.channel.client import ChannelError, EngineClient
from wa_devtunnel.engine.events import EXIT_LINE_PREFIXES
from wa_devtunnel.rules.untrusted import visible
from wa_devtunnel.settings import Settings
from wa_devtunnel.tui.priority import EngineStarter, collect_less_often, yield_to_engine


def _say(text: str) -> None:
    """A line on stderr after the UI is gone; paths and agent errors are shown escaped, never obeyed.

    A terminal that hung up answers EIO: the line is lost, the clean-up after it goes on."""
    with contextlib.suppress(OSError):
        sys.stderr.write(visible(text, keep_newlines=True) + "\n")
        sys.stderr.flush()


def _goodbye(child: EngineChild) -> None:
    """The engine's own last lines (`Registration undone: ...`, `Stopped after N exchange(s). Recording: ...`),
    now that the screen is gone."""
    for line in child.log_tail(40).splitlines():
        if line.startswith(EXIT_LINE_PREFIXES):
            _say(line)


def run_tui(settings: Settings, argv: Sequence[str]) -> int:
    """The default command: the engine in its own process (`up --headless`), the inspector in this one."""
    # Textual loads only when the inspector runs: every other command starts without it.
    from wa_devtunnel.tui.app import InspectorApp

    if settings.tunnel != "none":
        print(f"Starting the {settings.tunnel} tunnel...", file=sys.stderr)
    child = EngineChild(argv)
    starter = EngineStarter()
    try:
        client = starter.start(child, progress=sys.stderr).result()
    except EngineStartFailed as exc:
        starter.close()
        if not exc.log:
            _say(f"error: the engine exited with status {exc.exit_code}")
        return exc.exit_code or 2
    yield_to_engine()
    collect_less_often()
    app = InspectorApp(client, child, starter)
    try:
        app.run()
    finally:
        starter.close()
        if app.child is not None:  # the engine stops with the UI: override undone, agent stopped, recording closed
            app.child.stop(keep_log=True)
    if app.child is not None:
        _goodbye(app.child)
        app.child.forget()
    return 1 if app.engine_lost is not None and not app.engine_lost.clean else 0


def run_watch(address: ChannelAddress) -> int:
    """`wa-devtunnel watch`: the inspector on an engine that runs elsewhere; quitting only detaches."""
    from wa_devtunnel.tui.app import InspectorApp

    try:
        client = EngineClient.attach(address, records=False)  # bodies are read from the recording
    except ChannelError as exc:
        _say(f"error: {exc.strerror or exc}")
        return 2
    yield_to_engine()  # the engine runs elsewhere, maybe on this machine: the screen comes second
    collect_less_often()
    app = InspectorApp(client)
    try:
        app.run()
    finally:
        app.client.close()
    return 0
