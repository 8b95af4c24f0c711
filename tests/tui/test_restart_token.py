"""`R` after the engine died: the restarted engine has the same verify token, and says where it comes from.

A token kept in the project state file comes back by itself (labelled as kept); only a temporary one
(the state file could not keep it) is carried to the new engine through its environment.
"""

from __future__ import annotations

import signal
from collections.abc import Mapping
from pathlib import Path

from tests.support.cli_process import minimal_env
from tests.support.constants import APP_SECRET
from tests.support.inspector import wait_until
from wa_devtunnel.engine.channel.child import EngineChild
from wa_devtunnel.project_state import STATE_DIR_VARIABLE
from wa_devtunnel.tui.app import InspectorApp
from wa_devtunnel.tui.header import EngineAlarm


async def restart_after_a_kill(tmp_path: Path, extra: Mapping[str, str]) -> tuple[tuple[str, str], tuple[str, str]]:
    """(token, source) of the first engine and of the one `R` started after the first was killed."""
    env = minimal_env(tmp_path, {"WHATSAPP_APP_SECRET": APP_SECRET, **extra})  # no WHATSAPP_VERIFY_TOKEN
    child = EngineChild(["up", "--port", "0", "--tunnel", "none"], environ=env, cwd=tmp_path)
    app = InspectorApp(child.start(), child)
    try:
        async with app.run_test(size=(120, 40)) as pilot:
            first = (app.started.verify_token, app.started.verify_token_source)
            assert child.process is not None
            child.process.send_signal(signal.SIGKILL)
            alarm = app.query_one(EngineAlarm)
            await wait_until(pilot, lambda: "ENGINE DIED" in str(alarm.render()), "the alarm")
            await pilot.press("R")
            await wait_until(pilot, lambda: app.child is not child and not alarm.display, "the restart", 30)
            second = (app.started.verify_token, app.started.verify_token_source)
    finally:
        for engine in {child, app.child}:
            if engine is not None:
                engine.stop()
    return first, second


async def test_a_kept_token_comes_back_labelled_as_kept(tmp_path: Path) -> None:
    first, second = await restart_after_a_kill(tmp_path, {})
    assert first[1] == "project-state"
    assert second == first, "the same token, still from the project state file (not 'environment')"


async def test_a_temporary_token_is_carried_to_the_new_engine(tmp_path: Path) -> None:
    blocked = tmp_path / "state"
    (blocked / "state.json").mkdir(parents=True)  # something else where the state file goes: nothing is kept
    first, second = await restart_after_a_kill(tmp_path, {STATE_DIR_VARIABLE: str(blocked)})
    assert first[1] == "generated"
    assert second == (first[0], "environment"), "what the developer pasted into Meta still works"
