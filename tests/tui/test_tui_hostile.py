"""The inspector under hostile traffic: real requests through the engine, the app must keep running.

`GET /%5B/x%5D` or a message `hello [/oops]` used to raise Rich's MarkupError and take the receiver
down with the UI; `[@click=...]` in a message became an action. Here they arrive as real HTTP requests.
"""

from __future__ import annotations

import io
import json
import os
import stat
import tempfile
import uuid
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import aiohttp
import pytest
from hypothesis import HealthCheck, given, settings
from rich.console import Console
from textual.widget import Widget
from textual.widgets import Static
from yarl import URL

from tests.cli.test_untrusted_rendering import assert_terminal_safe, hostile_records, hostile_text
from tests.support.constants import APP_SECRET, VERIFY_TOKEN
from tests.support.inspector import Inspector, open_inspector, wait_until
from tests.support.meta_client import MetaLikeSender
from wa_devtunnel.engine.events import ExchangeRecorded, Notice, RecordingHealth, TunnelChanged
from wa_devtunnel.rules.samples import payloads as samples
from wa_devtunnel.tui.app import InspectorApp
from wa_devtunnel.tui.exchange_list import ExchangeList
from wa_devtunnel.tui.model import ExchangeStore

SUMMARY = 6  # Time, Kind, HTTP, Sig, Field, ms, Summary (no Account column with one account)
CRASHING_TEXTS = (
    "hello [/oops]",
    "[/quote]",
    "[@click=app.screenshot('pwned.svg','/tmp')]click me[/]",
    "[link=https://evil.example]your bank[/link]",
    "\x1b]52;c;aGVsbG8=\x07\x1b]0;title\x07\x1b[2Jgone\rsig=valid \u202eabc\u200b",
)


@pytest.fixture
async def running(tmp_path: Path) -> AsyncIterator[Inspector]:
    """The real engine on a free port, the inspector on a 120x40 headless terminal."""
    async with open_inspector(tmp_path) as opened:
        yield opened


def rendered(widget: Widget) -> str:
    """The plain text a Static shows; asserts nothing in it is an action or a link."""
    assert isinstance(widget, Static)
    content = widget.content
    assert not isinstance(content, str), "a str given to Static.update is parsed as markup"
    console = Console(file=io.StringIO(), width=1000, color_system=None, legacy_windows=False)
    for segment in console.render(content):
        assert segment.style is None or (not segment.style.link and not segment.style.meta), segment
    console.print(content)
    return console.file.getvalue()  # type: ignore[attr-defined,no-any-return]


def summaries(app: InspectorApp) -> list[str]:
    table = app.query_one("#exchanges", ExchangeList)
    return [str(table.cells(index)[SUMMARY]) for index in range(table.row_count)]


def toasts(app: InspectorApp) -> list[str]:
    return [notification.message for notification in app._notifications]


async def test_crashing_requests_leave_the_app_running_and_answering_meta(running: Inspector) -> None:
    app, pilot = running.app, running.pilot
    base = URL(running.started.callback_url)
    async with aiohttp.ClientSession() as session:
        hostile_path = base.with_path("/%5B/x%5D", encoded=True)
        async with session.get(hostile_path) as response:
            assert response.status == 404
        meta = MetaLikeSender(session, running.started.callback_url, APP_SECRET)
        for number, text in enumerate(CRASHING_TEXTS):
            assert await meta.deliver(samples.text_message_payload(text, message_id=f"wamid.HOSTILE{number}")) == [200]
        await wait_until(pilot, lambda: app.query_one(ExchangeList).row_count == 1 + len(CRASHING_TEXTS), "every row")
        for tab in ("1", "2", "b", "3", "4", "2", "b"):  # every detail tab of the last one, drawn for real
            await pilot.press(tab)
            await pilot.pause()
        await pilot.press("up", "up", "up", "up", "up", "1")  # and the hostile path's own detail
        await pilot.pause()
        assert app.is_running and app.return_code is None

        shown = summaries(app)
        assert shown[0] == "(local) GET /[/x]"
        assert any("hello [/oops]" in row for row in shown)
        assert any("[@click=app.screenshot(" in row for row in shown)
        assert "GET /[/x]" in rendered(app.query_one("#summary-text"))

        await pilot.press("f", "2")  # the escape-laden message: shown as escapes, never obeyed
        await pilot.pause()
        summary, body = rendered(app.query_one("#summary-text")), rendered(app.query_one("#body-text"))
        assert '"body": "\\u001b]52;c;aGVsbG8=\\u0007' in body and "\\u202eabc\\u200b" in body
        assert "\\x1b]52;c;aGVsbG8=\\x07" in summary and "\\x0dsig=valid \\u202eabc" in summary
        assert_terminal_safe(summary)
        assert_terminal_safe(body)

        assert (await meta.handshake(VERIFY_TOKEN)).accepted  # the receiver still answers Meta
    await wait_until(pilot, lambda: app.query_one(ExchangeList).row_count == 2 + len(CRASHING_TEXTS), "the handshake")
    assert app.is_running and not list(Path("/tmp").glob("pwned*.svg"))


async def test_toasts_quote_agents_and_requests_as_plain_text(running: Inspector) -> None:
    app, pilot = running.app, running.pilot
    app.events.deliver(Notice("error", "Tunnel failed: [/x] [@click=app.quit]quit[/] \x1b]52;c;aGk=\x07\r\u202e"))
    app.events.deliver(TunnelChanged("reconnecting", "ngrok", None, running.started.callback_url, "[bold]\x1b[2J"))
    await wait_until(pilot, lambda: len(toasts(app)) >= 2, "two toasts")
    await pilot.pause()
    assert app.is_running
    assert all(not notification.markup for notification in app._notifications)
    first, second = toasts(app)[:2]
    assert first == "Tunnel failed: [/x] [@click=app.quit]quit[/] \\x1b]52;c;aGk=\\x07\\x0d\\u202e"
    assert second == "Tunnel down: [bold]\\x1b[2J"
    assert "[bold]\\x1b[2J" in rendered(app.query_one("#status"))


async def test_recording_failure_raises_a_banner_until_writes_work_again(running: Inspector) -> None:
    app, pilot = running.app, running.pilot
    alarm = app.query_one("#recording-alarm", Static)
    assert not alarm.display
    path = running.started.recording_path
    app.events.deliver(RecordingHealth(False, path, "[Errno 28] No space left on device [/x]\x1b[2J", refused=1))
    await wait_until(pilot, lambda: alarm.display, "the banner")
    text = rendered(alarm)
    assert "RECORDING FAILED: [Errno 28] No space left on device [/x]\\x1b[2J" in text
    assert "Meta gets 503 and will retry" in text and "1 delivery(ies) refused" in text
    assert "FAILING" in rendered(app.query_one("#status"))
    assert alarm.region.height >= 2 and alarm.region.y == 0  # on screen, at the top

    app.events.deliver(RecordingHealth(False, path, "[Errno 28] No space left on device", refused=4))
    await wait_until(pilot, lambda: "4 delivery(ies)" in rendered(alarm), "the count to move")
    assert alarm.display  # persistent: a second failure is not a reason to hide it

    app.events.deliver(RecordingHealth(True, path))
    await wait_until(pilot, lambda: not alarm.display, "the banner to go")
    assert any("Recording works again" in toast for toast in toasts(app))
    assert "FAILING" not in rendered(app.query_one("#status"))


async def test_a_big_body_is_cut_and_can_be_had_whole(
    running: Inspector, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(tempfile, "tempdir", str(tmp_path))
    monkeypatch.setenv("PAGER", "less")
    app, pilot = running.app, running.pilot
    body = samples.text_message_payload("x" * (300 * 1024))
    async with aiohttp.ClientSession() as session:
        assert await MetaLikeSender(session, running.started.callback_url, APP_SECRET).deliver(body) == [200]
    await wait_until(pilot, lambda: app.query_one(ExchangeList).row_count == 1, "the row")
    await pilot.press("2")
    shown = rendered(app.query_one("#body-text"))
    assert "(showing 64 KiB of 300 KiB, as received: press o to open the whole body in $PAGER" in shown
    assert len(shown) < 80 * 1024

    await pilot.press("w")
    await wait_until(pilot, lambda: any("written to" in toast for toast in toasts(app)), "the file")
    [written] = tmp_path.glob("wa-devtunnel-seq1-*.json")
    assert written.read_bytes() == body
    assert stat.S_IMODE(os.stat(written).st_mode) == 0o600

    await pilot.press("o")  # no terminal to hand to a pager here: it says so and writes the file instead
    await wait_until(pilot, lambda: len(list(tmp_path.glob("wa-devtunnel-seq1-*.json"))) == 2, "the fallback")
    assert any("No pager" in toast for toast in toasts(app))
    assert app.is_running


async def test_arbitrary_records_through_the_running_app(running: Inspector) -> None:
    """The same property as the pure renderers', but through the widgets: the app must never raise."""
    app = running.app

    @settings(max_examples=25, deadline=None, suppress_health_check=list(HealthCheck))
    @given(hostile_records(), hostile_text)
    def arrives(record: dict[str, Any], text: str) -> None:
        record["id"] = uuid.uuid4().hex  # the receiver makes ids; the store keys views by id
        app.apply_events([ExchangeRecorded(None, record), Notice("info", text), RecordingHealth(False, None, text)])
        for widget in ("#summary-text", "#body-text", "#headers-text", "#signature-text", "#status"):
            assert_terminal_safe(rendered(app.query_one(widget)))
        assert_terminal_safe(rendered(app.query_one("#recording-alarm")))
        table = app.query_one(ExchangeList)
        for cell in table.cells(table.row_count - 1):
            assert_terminal_safe(str(cell))
        assert_terminal_safe(table.row_text(table.row_count - 1))

    arrives()
    await running.pilot.pause()
    assert app.is_running and app.return_code is None
    assert toasts(app)
    for toast in toasts(app):  # the notices arrive once the app's loop runs again
        assert_terminal_safe(toast)
    json.dumps(toasts(app))


def test_the_record_cache_is_bounded_in_bytes_not_only_in_records() -> None:
    """Eight 3.5 MB events took the TUI to 825 MB: big records fall out and are re-read from the file."""
    store = ExchangeStore(max_record_bytes=1000)
    for number in range(5):
        store.remember(str(number), {"request": {"body": "x" * 400}})
    assert list(store.records) == ["3", "4"] and store.record_bytes == 800
    store.remember("4", {"request": {"body_b64": "eA=="}})  # replacing one recounts it
    assert store.record_bytes == 404
    store.remember("big", {"request": {"body": "x" * 5000}})
    assert list(store.records) == ["big"]  # the newest stays, however big: it is the one on screen


async def test_a_session_rolled_over_into_parts_is_read_from_the_right_part(running: Inspector, tmp_path: Path) -> None:
    """Offsets point into the part an exchange was written to: the detail and the body search follow them."""
    app, pilot = running.app, running.pilot
    parts = [tmp_path / "20261207-101010.jsonl", tmp_path / "20261207-101010-2.jsonl"]
    events = []
    for number, part in enumerate(parts, 1):
        body = samples.text_message_payload(f"needle-{number}", message_id=f"wamid.PART{number}").decode()
        record = {"v": 1, "id": f"part{number}", "seq": number, "kind": "event", "request": {"body": body}}
        record |= {"received_at": "2026-12-07T10:10:10.000000Z", "response": {"status": 200, "body": ""}}
        part.write_text("\n" * number + json.dumps(record) + "\n")  # a different offset in each part
        events.append(ExchangeRecorded(None, record, number, part))
    for event in events:
        app.events.deliver(event)
    await wait_until(pilot, lambda: app.query_one(ExchangeList).row_count == 2, "both parts' rows")
    app.store.records.clear()  # fallen out of the cache: read back from the files
    app.store.record_bytes = 0
    await pilot.press("up", "2")
    assert "needle-1" in rendered(app.query_one("#body-text"))
    await pilot.press("down")
    assert "needle-2" in rendered(app.query_one("#body-text"))

    await pilot.press("slash", *"needle-2", "enter")
    await wait_until(pilot, lambda: app.query_one(ExchangeList).row_count == 1, "the search to find the second part")
    table = app.query_one(ExchangeList)
    assert table.row_id(0) == "part2"
