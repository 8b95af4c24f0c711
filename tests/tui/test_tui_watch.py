"""`wa-devtunnel watch` in the TUI: the session so far from the recording, live after; quitting only detaches."""

from __future__ import annotations

from pathlib import Path

from tests.support.engine_host import hosted_engine
from tests.support.inspector import inspector_settings, wait_until
from wa_devtunnel.tui.app import InspectorApp
from wa_devtunnel.tui.header import EngineAlarm


async def test_a_watching_tui_shows_the_session_so_far_and_detaching_leaves_the_engine(tmp_path: Path) -> None:
    with hosted_engine(inspector_settings(tmp_path)) as hosted:
        service = hosted.engine.service
        for _ in range(3):  # before anyone watches
            assert hosted.engine.submit(service.send_sample()).result(10) == 200
        first = InspectorApp(hosted.attach(records=False))
        second = InspectorApp(hosted.attach(records=False))
        async with first.run_test(size=(120, 40)) as pilot, second.run_test(size=(120, 40)) as other:
            await wait_until(pilot, lambda: first.exchanges.row_count == 3, "the history from the recording")
            await pilot.press("s")  # a watcher's command reaches the engine; both viewers see the result
            await wait_until(pilot, lambda: first.exchanges.row_count == 4, "the live sample")
            await wait_until(other, lambda: second.exchanges.row_count == 4, "the second viewer")
            await pilot.press("q")
        assert hosted.engine.submit(service.send_sample()).result(10) == 200, "detaching never stops the engine"


async def test_a_watching_tui_says_when_the_engine_stops(tmp_path: Path) -> None:
    with hosted_engine(inspector_settings(tmp_path)) as hosted:
        app = InspectorApp(hosted.attach(records=False))
        async with app.run_test(size=(120, 40)) as pilot:
            await pilot.pause()
            hosted.engine.submit(hosted.engine.service.stop()).result(10)
            hosted.engine.submit(hosted.channel.stop()).result(10)
            alarm = app.query_one(EngineAlarm)
            await wait_until(pilot, lambda: alarm.display, "the alarm")
            assert "The engine stopped" in str(alarm.render()) and "press q" in str(alarm.render())
            await pilot.press("R")  # not ours to restart: said, not done
            await pilot.pause()
            assert app.child is None
