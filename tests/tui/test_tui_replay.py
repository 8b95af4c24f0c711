"""Replay from the live view: a key resends the selected exchange to the backend; another edits and re-signs."""

from __future__ import annotations

import contextlib
import json
from collections.abc import AsyncIterator
from pathlib import Path
from typing import NamedTuple

import aiohttp
import pytest
from aiohttp import web
from textual.pilot import Pilot
from textual.widgets import Static, TextArea

from tests.support.backend_app import BackendBehaviour, create_backend_app
from tests.support.constants import APP_SECRET, VERIFY_TOKEN
from tests.support.engine_host import hosted_engine
from tests.support.meta_client import MetaLikeSender
from wa_devtunnel.rules.samples import payloads as samples
from wa_devtunnel.settings import load_settings
from wa_devtunnel.tui import app as app_module
from wa_devtunnel.tui.app import InspectorApp
from wa_devtunnel.tui.editor import BodyEditor
from wa_devtunnel.tui.exchange_list import ExchangeList


class Live(NamedTuple):
    app: InspectorApp
    pilot: Pilot[None]
    behaviour: BackendBehaviour
    callback_url: str


@pytest.fixture(params=[(80, 24), (160, 45)], ids=["80x24", "160x45"])
async def live(request: pytest.FixtureRequest, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> AsyncIterator[Live]:
    monkeypatch.delenv("EDITOR", raising=False)
    monkeypatch.delenv("VISUAL", raising=False)
    behaviour = BackendBehaviour(app_secret=APP_SECRET, verify_token=VERIFY_TOKEN)
    runner = web.AppRunner(create_backend_app(behaviour))
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    port = runner.addresses[0][1]
    settings = load_settings(
        {
            "port": "0",
            "recordings_dir": str(tmp_path / "rec"),
            "tunnel": "none",
            "forward_to": f"http://127.0.0.1:{port}/webhook/whatsapp",
        },
        environ={"WHATSAPP_VERIFY_TOKEN": VERIFY_TOKEN, "WHATSAPP_APP_SECRET": APP_SECRET},
        cwd=tmp_path,
    )
    try:
        with hosted_engine(settings) as hosted:
            app = InspectorApp(hosted.attach(records=False))
            async with app.run_test(size=request.param) as pilot:
                yield Live(app, pilot, behaviour, hosted.started.callback_url)
    finally:
        await runner.cleanup()


async def _wait_rows(live: Live, count: int) -> ExchangeList:
    table = live.app.query_one(ExchangeList)
    for _ in range(100):
        if table.row_count >= count:
            return table
        await live.pilot.pause(0.05)
    raise AssertionError(f"expected {count} rows, have {table.row_count}")


def _summary(table: ExchangeList, row: int) -> str:
    return str(table.cells(row)[-1])


async def test_replay_key_resends_the_selected_event_to_the_backend(live: Live) -> None:
    body = samples.text_message_payload(text="Größe? a/b")
    async with aiohttp.ClientSession() as session:
        assert await MetaLikeSender(session, live.callback_url, APP_SECRET).deliver(body) == [200]
    table = await _wait_rows(live, 1)
    assert "-> backend 200" in _summary(table, 0)
    await live.pilot.press("p")
    table = await _wait_rows(live, 2)
    assert _summary(table, 1).startswith("(replay) text from 16505551234")
    assert "-> backend 200" in _summary(table, 1)
    first, second = live.behaviour.received
    assert second.body == first.body == body  # byte for byte, Meta's signature still valid
    assert second.signature_ok


async def test_edit_and_send_resigns_the_edited_body(live: Live) -> None:
    async with aiohttp.ClientSession() as session:
        await MetaLikeSender(session, live.callback_url, APP_SECRET).deliver(samples.text_message_payload())
    await _wait_rows(live, 1)
    await live.pilot.press("E")
    await live.pilot.pause()
    assert isinstance(live.app.screen, BodyEditor)
    editor = live.app.screen.query_one(TextArea)
    edited = json.loads(editor.text)
    edited["entry"][0]["changes"][0]["value"]["messages"][0]["text"]["body"] = "Edited: in red, please"
    editor.text = json.dumps(edited, indent=2)
    await live.pilot.press("ctrl+s")
    table = await _wait_rows(live, 2)
    assert "Edited: in red, please" in _summary(table, 1)
    assert "-> backend 200" in _summary(table, 1)
    resent = live.behaviour.received[-1]
    assert resent.signature_ok  # re-signed with the App Secret, so the backend's check passes
    assert json.loads(resent.body) == edited
    assert b"\\/" in resent.body or b"/" not in resent.body  # Meta's compact, escaped style


async def test_escape_in_the_editor_sends_nothing(live: Live) -> None:
    async with aiohttp.ClientSession() as session:
        await MetaLikeSender(session, live.callback_url, APP_SECRET).deliver(samples.text_message_payload())
    await _wait_rows(live, 1)
    await live.pilot.press("E")
    await live.pilot.pause()
    await live.pilot.press("escape")
    await live.pilot.pause(0.3)
    assert live.app.query_one(ExchangeList).row_count == 1
    assert len(live.behaviour.received) == 1


async def _open_editor(live: Live) -> TextArea:
    async with aiohttp.ClientSession() as session:
        await MetaLikeSender(session, live.callback_url, APP_SECRET).deliver(samples.text_message_payload())
    await _wait_rows(live, 1)
    await live.pilot.press("E")
    await live.pilot.pause()
    assert isinstance(live.app.screen, BodyEditor)
    return live.app.screen.query_one(TextArea)


def _problem(live: Live) -> Static:
    return live.app.screen.query_one("#editor-problem", Static)


async def test_an_edit_that_is_not_json_stays_open_with_the_error_in_place(live: Live) -> None:
    editor = await _open_editor(live)
    lines = editor.text.splitlines()
    lines[2] += " oops"  # `  "entry": [ oops`
    broken = "\n".join(lines)
    editor.text = broken
    await live.pilot.press("ctrl+s")
    await live.pilot.pause()
    assert isinstance(live.app.screen, BodyEditor), "the edit is kept"
    assert editor.text == broken
    problem = _problem(live)
    assert problem.display
    assert str(problem.content).startswith("Not valid JSON, line 3, column 14: Expecting value.")
    assert editor.cursor_location == (2, 13)  # where the parser stopped
    assert len(live.behaviour.received) == 1  # nothing sent

    editor.text = broken.replace(" oops", "")  # back to what was recorded: not an edit
    await live.pilot.press("ctrl+s")
    await live.pilot.pause()
    assert isinstance(live.app.screen, BodyEditor)
    assert str(_problem(live).content).startswith("Nothing changed yet")

    editor.text = broken.replace(" oops", "").replace("Does it come in another color?", "Fixed")
    await live.pilot.press("ctrl+s")
    table = await _wait_rows(live, 2)
    assert not isinstance(live.app.screen, BodyEditor)
    assert "Fixed" in _summary(table, 1)


async def test_the_editor_footer_shows_its_own_keys(live: Live) -> None:
    await _open_editor(live)
    await live.pilot.pause()
    footer = "".join(segment.text for segment in live.app.screen._compositor.render_strips()[-1])
    assert "Re-sign and send" in footer and "Cancel" in footer
    assert "Filter" not in footer and "Sample" not in footer


async def test_an_external_editors_edit_that_is_not_json_opens_in_app(
    live: Live, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("EDITOR", "an-editor")
    monkeypatch.setattr(live.app, "suspend", contextlib.nullcontext)
    edits: list[str] = []

    def external(text: str) -> str:
        edits.append(text.replace('"whatsapp_business_account"', '"whatsapp_business_account",,'))
        return edits[-1]

    monkeypatch.setattr(app_module, "edit_with_external_editor", external)
    async with aiohttp.ClientSession() as session:
        await MetaLikeSender(session, live.callback_url, APP_SECRET).deliver(samples.text_message_payload())
    await _wait_rows(live, 1)
    await live.pilot.press("E")
    await live.pilot.pause()
    assert isinstance(live.app.screen, BodyEditor)
    assert live.app.screen.query_one(TextArea).text == edits[0]
    assert str(_problem(live).content).startswith("Not valid JSON, line 2, column 41: Expecting property name")
    await live.pilot.press("escape")
    await live.pilot.pause(0.2)
    assert live.app.query_one(ExchangeList).row_count == 1 and len(live.behaviour.received) == 1
