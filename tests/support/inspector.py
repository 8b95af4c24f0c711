"""The real engine on a free port with the inspector on a headless terminal, for the TUI tests."""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator, Callable
from pathlib import Path
from typing import NamedTuple

import pytest
from textual.pilot import Pilot

from tests.support.constants import APP_SECRET, VERIFY_TOKEN
from tests.support.engine_host import hosted_engine
from tests.support.engine_thread import EngineThread
from wa_devtunnel.engine.events import ReceiverStarted
from wa_devtunnel.settings import Settings, load_settings
from wa_devtunnel.tui.app import InspectorApp

WAIT_S = 10.0


class Inspector(NamedTuple):
    """What a TUI test drives: the app, its pilot, the engine behind it and what it announced."""

    app: InspectorApp
    pilot: Pilot[None]
    engine: EngineThread
    started: ReceiverStarted


@contextlib.asynccontextmanager
async def open_inspector(tmp_path: Path, size: tuple[int, int] = (120, 40), **flags: str) -> AsyncIterator[Inspector]:
    """Start the engine (port 0, no tunnel, signed with the test App Secret) and the app on its channel."""
    with hosted_engine(inspector_settings(tmp_path, **flags)) as hosted:
        app = InspectorApp(hosted.attach(records=False))
        async with app.run_test(size=size) as pilot:
            await pilot.pause()
            yield Inspector(app, pilot, hosted.engine, hosted.started)


def inspector_settings(tmp_path: Path, **flags: str) -> Settings:
    """`wa-devtunnel --port 0 --tunnel none` with the test's token and App Secret, nothing from the shell."""
    return load_settings(
        {"port": "0", "recordings_dir": str(tmp_path / "rec"), "tunnel": "none", **flags},
        environ={"WHATSAPP_VERIFY_TOKEN": VERIFY_TOKEN, "WHATSAPP_APP_SECRET": APP_SECRET},
        cwd=tmp_path,
    )


async def wait_until(pilot: Pilot[None], condition: Callable[[], bool], what: str, timeout: float = WAIT_S) -> None:
    """Let the app apply what the engine published until `condition()` holds."""
    waited = 0.0
    while not condition():
        if waited >= timeout:
            pytest.fail(f"timed out after {timeout} s waiting for {what}")
        await pilot.pause(0.05)
        waited += 0.05
