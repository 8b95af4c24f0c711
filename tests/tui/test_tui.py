"""The inspector as a developer sees it: real exchanges go through the engine, assertions read the screen."""

from __future__ import annotations

import io
from collections.abc import AsyncIterator
from pathlib import Path

import aiohttp
import pytest
from rich.console import Console
from textual.pilot import Pilot
from textual.widget import Widget
from textual.widgets import ContentSwitcher, Input, Static, TabbedContent

from tests.support.constants import APP_SECRET, VERIFY_TOKEN
from tests.support.inspector import Inspector, open_inspector, wait_until
from tests.support.meta_client import MetaLikeSender
from wa_devtunnel.rules.samples import payloads as samples
from wa_devtunnel.tui.app import InspectorApp
from wa_devtunnel.tui.detail import body_renderable
from wa_devtunnel.tui.exchange_list import ExchangeList
from wa_devtunnel.tui.header import mask_token
from wa_devtunnel.tui.help import HelpScreen

FAILED_131049 = (
    "failed wamid.…ODEwMTQ0RgA= to 16505551234: "
    "131049 This message was not delivered to maintain healthy ecosystem engagement."
)
# Requests from the tests reach the receiver directly, not through a tunnel: labelled as local traffic.
LOCAL = "(local) "
# Columns without accounts: Time, Kind, HTTP, Sig, Field, ms, Summary.
KIND, HTTP, SIG, FIELD, MS, SUMMARY = 1, 2, 3, 4, 5, 6


@pytest.fixture
async def inspector(tmp_path: Path) -> AsyncIterator[Inspector]:
    """The real engine on a free port, the inspector on a 120x40 headless terminal."""
    async with open_inspector(tmp_path) as opened:
        yield opened


@pytest.fixture
async def session() -> AsyncIterator[aiohttp.ClientSession]:
    async with aiohttp.ClientSession() as client:
        yield client


@pytest.fixture
def meta(inspector: Inspector, session: aiohttp.ClientSession) -> MetaLikeSender:
    """Meta, signing with the configured App Secret."""
    return MetaLikeSender(session, inspector.started.callback_url, APP_SECRET)


# Reading the screen -------------------------------------------------------------------------------


def table(app: InspectorApp) -> ExchangeList:
    return app.query_one("#exchanges", ExchangeList)


def rows(app: InspectorApp) -> list[list[str]]:
    """Every visible row as the plain text of its cells."""
    grid = table(app)
    return [[str(cell) for cell in grid.cells(index)] for index in range(grid.row_count)]


def summaries(app: InspectorApp) -> list[str]:
    return [row[SUMMARY] for row in rows(app)]


def rendered(widget: Widget) -> str:
    """The text a Static shows, whatever it was given (str, rich Text, Group, Syntax, Table)."""
    assert isinstance(widget, Static)
    content = widget.content
    if isinstance(content, str):
        return content
    console = Console(file=io.StringIO(), width=1000, record=True, color_system=None, legacy_windows=False)
    console.print(content)
    return console.export_text()


def shown(app: InspectorApp, selector: str) -> str:
    return rendered(app.query_one(selector))


def header(app: InspectorApp) -> str:
    return shown(app, "#status")


async def wait_rows(inspector: Inspector, count: int) -> None:
    """`count` rows, and the detail showing the selected one (arrivals are drawn at most 4 times a second)."""
    app = inspector.app
    await wait_until(inspector.pilot, lambda: table(app).row_count == count, f"{count} row(s)")
    await wait_until(inspector.pilot, lambda: app.detail.shown_id == table(app).selected_id, "the detail")


async def search(pilot: Pilot[None], query: str) -> None:
    """Press /, type the query key by key, press enter."""
    await pilot.press("slash", *query, "enter")


def failed_status_payload() -> bytes:
    return samples.meta_json(samples.envelope([samples.messages_change(statuses=[samples.status("failed")])]))


def batch_payload() -> bytes:
    return samples.meta_json(
        samples.envelope(
            [
                samples.messages_change(messages=[samples.text_message(message_id="wamid.BATCH1"), samples.reaction()]),
                samples.messages_change(statuses=[samples.status("read"), samples.status("failed", error_code=131049)]),
            ]
        )
    )


# The list ------------------------------------------------------------------------------------------


async def test_rows_say_what_each_webhook_carries(inspector: Inspector, meta: MetaLikeSender) -> None:
    assert await meta.deliver(samples.text_message_payload()) == [200]
    assert await meta.deliver(failed_status_payload()) == [200]
    assert await meta.deliver(batch_payload()) == [200]
    await wait_rows(inspector, 3)

    text, status, batch = rows(inspector.app)
    assert text[KIND] == "event" and text[HTTP] == "200" and text[SIG] == "✓ ok" and text[FIELD] == "messages"
    assert "text from 16505551234" in text[SUMMARY]
    assert float(text[MS]) > 0
    assert "Does it come in another color?" in text[SUMMARY]
    assert status[SUMMARY].startswith(LOCAL + FAILED_131049[:40])
    assert ": 131049 " in status[SUMMARY]
    assert batch[SUMMARY].startswith(LOCAL + "batch: 2 messages, 2 statuses")
    assert "Events 3" in header(inspector.app)


async def test_failed_handshake_is_red_and_explained(inspector: Inspector, meta: MetaLikeSender) -> None:
    assert (await meta.handshake(VERIFY_TOKEN)).accepted
    result = await meta.handshake(VERIFY_TOKEN + " ")
    assert result.status == 403
    await wait_rows(inspector, 2)

    ok_row, failed_row = rows(inspector.app)
    assert ok_row[KIND] == "verify" and ok_row[SUMMARY] == LOCAL + "OK: challenge echoed"
    assert failed_row[HTTP] == "403"
    assert failed_row[SUMMARY] == LOCAL + "FAILED: token mismatch: leading/trailing whitespace"

    grid = table(inspector.app)
    failed_cells = grid.cells(1)
    for index in (0, KIND, HTTP, FIELD, SUMMARY):
        assert "red" in str(failed_cells[index].style), (index, failed_cells[index].style)
    assert all("red" not in str(cell.style) for cell in grid.cells(0))

    assert "1 ok/1 failed" in header(inspector.app)
    await inspector.pilot.press("4")
    signature = shown(inspector.app, "#signature-text")
    assert "Handshake FAILED: token mismatch: leading/trailing whitespace" in signature
    assert VERIFY_TOKEN not in signature
    assert "FAILED: token mismatch" in shown(inspector.app, "#summary-text")


# The detail panes ----------------------------------------------------------------------------------


async def test_detail_panes_of_the_selected_exchange(inspector: Inspector, meta: MetaLikeSender) -> None:
    body = samples.text_message_payload(text="Gr\u00e4\u00dfe? https://shop.example/a/b")
    assert b"\\u00e4" in body and b"\\/" in body
    assert await meta.deliver(body) == [200]
    await wait_rows(inspector, 1)
    app, pilot = inspector.app, inspector.pilot
    assert app.query_one(ContentSwitcher).current == "detail"

    summary = shown(app, "#summary-text")
    assert "POST /webhook/whatsapp" in summary
    assert "1 item(s):" in summary
    assert "text from 16505551234" in summary
    assert "VALID" in summary

    await pilot.press("2")
    assert app.query_one(TabbedContent).active == "body"
    pretty = shown(app, "#body-text")
    assert f"{len(body)} bytes, pretty-printed" in pretty
    assert '"object": "whatsapp_business_account",' in pretty
    assert "\n  " in pretty  # indented
    assert "Gr\u00e4\u00dfe? https://shop.example/a/b" in pretty
    assert "\\u00e4" not in pretty

    await pilot.press("b")
    assert app.query_one(TabbedContent).active == "body"
    raw = shown(app, "#body-text")
    assert f"{len(body)} bytes, exactly as received" in raw
    assert "Gr\\u00e4\\u00dfe? https:\\/\\/shop.example\\/a\\/b" in raw
    assert body.decode() in raw.replace("\n", "")
    await pilot.press("b")
    assert "pretty-printed" in shown(app, "#body-text")

    await pilot.press("3")
    assert app.query_one(TabbedContent).active == "headers"
    headers = shown(app, "#headers-text")
    assert "X-Hub-Signature-256" in headers
    assert "facebookexternalua" in headers

    await pilot.press("4")
    assert app.query_one(TabbedContent).active == "signature"
    signature = shown(app, "#signature-text")
    assert "VALID" in signature
    assert "matches the raw body signed with your App Secret" in signature


# Filters and search --------------------------------------------------------------------------------


async def test_filters_search_and_problems_only(
    inspector: Inspector, meta: MetaLikeSender, session: aiohttp.ClientSession
) -> None:
    wrong_key = MetaLikeSender(session, inspector.started.callback_url, "not-the-app-secret")
    assert (await meta.handshake(VERIFY_TOKEN)).accepted
    assert not (await meta.handshake("wrong-token")).accepted
    await meta.deliver(samples.text_message_payload())
    await wrong_key.deliver(samples.text_message_payload("Second message", message_id="wamid.SECOND"))
    await meta.deliver(failed_status_payload())
    await wait_rows(inspector, 5)
    app, pilot = inspector.app, inspector.pilot

    await search(pilot, "kind:verify")
    assert [row[KIND] for row in rows(app)] == ["verify", "verify"]
    assert "Filter: kind:verify" in header(app)
    assert not app.query_one("#search", Input).has_focus

    await pilot.press("x")
    assert table(app).row_count == 5
    assert "Filter:" not in header(app)
    assert not app.query_one("#search", Input).display

    await search(pilot, "sig:invalid")
    (invalid,) = rows(app)
    assert invalid[SIG] == "✗ BAD" and "Second message" in invalid[SUMMARY]

    await pilot.press("x")
    await search(pilot, "another color")
    await wait_until(pilot, lambda: table(app).row_count == 1, "the body search")
    assert "Does it come in another color?" in summaries(app)[0]
    assert 'Filter: "another color"' in header(app)

    await pilot.press("x")
    assert table(app).row_count == 5
    await pilot.press("e")
    assert "problems only" in header(app)
    # What a bot developer calls an error, the failed delivery too; the header's Errors tally counts the same.
    failed_handshake, bad_signature, failed_delivery = rows(app)
    assert failed_handshake[SUMMARY].startswith(LOCAL + "FAILED: token mismatch")
    assert bad_signature[SIG] == "✗ BAD"
    assert failed_delivery[SUMMARY].startswith(LOCAL + "failed wamid.")
    assert "Errors 3" in header(app)
    await pilot.press("e")
    assert table(app).row_count == 5


async def test_new_arrivals_respect_the_active_filter(inspector: Inspector, meta: MetaLikeSender) -> None:
    await meta.deliver(samples.text_message_payload())
    await wait_rows(inspector, 1)
    await search(inspector.pilot, "kind:verify")
    assert table(inspector.app).row_count == 0
    await meta.deliver(samples.text_message_payload("Later", message_id="wamid.LATER"))
    await meta.handshake(VERIFY_TOKEN)
    await wait_rows(inspector, 1)
    assert rows(inspector.app)[0][KIND] == "verify"


# Follow mode ---------------------------------------------------------------------------------------


async def test_follow_mode_pause_and_resume(inspector: Inspector, meta: MetaLikeSender) -> None:
    app, pilot = inspector.app, inspector.pilot
    for n in range(3):
        await meta.deliver(samples.text_message_payload(f"message {n}", message_id=f"wamid.F{n}"))
        await wait_rows(inspector, n + 1)
        assert table(app).cursor_row == n
    assert "FOLLOW" in header(app)
    # While following, the detail is redrawn a few times a second rather than for every arrival.
    await wait_until(pilot, lambda: "message 2" in shown(app, "#summary-text"), "the detail of the newest")

    await pilot.press("up")
    assert table(app).cursor_row == 1
    assert "PAUSED" in header(app)
    assert "message 1" in shown(app, "#summary-text")

    await meta.deliver(samples.text_message_payload("message 3", message_id="wamid.F3"))
    await wait_rows(inspector, 4)
    await pilot.pause(0.1)
    assert table(app).cursor_row == 1
    assert "PAUSED" in header(app)
    assert "message 1" in shown(app, "#summary-text")

    await pilot.press("f")
    assert table(app).cursor_row == 3
    assert "FOLLOW" in header(app) and "PAUSED" not in header(app)
    assert "message 3" in shown(app, "#summary-text")

    await meta.deliver(samples.text_message_payload("message 4", message_id="wamid.F4"))
    await wait_rows(inspector, 5)
    assert table(app).cursor_row == 4


# Keys for the dashboard ----------------------------------------------------------------------------


async def test_copy_url_and_token_and_reveal(inspector: Inspector) -> None:
    app, pilot, started = inspector.app, inspector.pilot, inspector.started
    assert f"Callback URL: {started.callback_url}" in header(app)
    assert started.callback_url.startswith("http://127.0.0.1:")

    await pilot.press("u")
    assert app.clipboard == started.callback_url
    await pilot.press("t")
    assert app.clipboard == VERIFY_TOKEN
    notices = [n.message for n in app._notifications]
    assert notices[0].startswith(f"Copied: {started.callback_url}\nMeta cannot reach a local URL")
    assert "Verify token copied" in notices
    assert all(VERIFY_TOKEN not in notice for notice in notices)

    assert VERIFY_TOKEN not in header(app)
    assert f"Verify token: {mask_token(VERIFY_TOKEN)}" in header(app)
    await pilot.press("r")
    assert f"Verify token: {VERIFY_TOKEN}" in header(app)
    await pilot.press("r")
    assert VERIFY_TOKEN not in header(app)


async def test_sample_event_appears_marked(inspector: Inspector) -> None:
    await inspector.pilot.press("s")
    await wait_rows(inspector, 1)
    (row,) = rows(inspector.app)
    assert row[SUMMARY].startswith("(sample) text from 16505551234")
    assert row[SIG] == "✓ ok"
    # The HTTP status comes back from the engine thread as a notification (app._notifications: no public API).
    await wait_until(
        inspector.pilot,
        lambda: any(n.message == "Sample event sent: HTTP 200" for n in inspector.app._notifications),
        "the sample's notification",
    )


async def test_help_screen(inspector: Inspector) -> None:
    app, pilot = inspector.app, inspector.pilot
    await pilot.press("question_mark")
    assert isinstance(app.screen, HelpScreen)
    text = "\n".join(rendered(static) for static in app.screen.query(Static))
    assert "wa-devtunnel keys" in text
    assert "Copy the callback URL" in text and "Copy the verify token" in text
    assert "moving up pauses follow mode" in text
    assert "sig:invalid" in text
    await pilot.press("escape")
    assert not isinstance(app.screen, HelpScreen)
    for close in ("q", "question_mark"):
        await pilot.press("question_mark")
        assert isinstance(app.screen, HelpScreen)
        await pilot.press(close)
        assert not isinstance(app.screen, HelpScreen)
    assert app.is_running


async def test_local_only_welcome_until_traffic(inspector: Inspector, meta: MetaLikeSender) -> None:
    app = inspector.app
    assert app.query_one(ContentSwitcher).current == "welcome"
    welcome = shown(app, "#welcome-text")
    assert f"Local only: Meta cannot reach {inspector.started.callback_url}" in welcome
    assert "NGROK_AUTHTOKEN=<token>" in welcome
    assert "https://dashboard.ngrok.com/get-started/your-authtoken" in welcome
    assert "Signatures are not checked" not in welcome
    assert "Tunnel: local-only" in header(app)

    assert (await meta.handshake(VERIFY_TOKEN)).accepted
    await wait_rows(inspector, 1)
    assert app.query_one(ContentSwitcher).current == "detail"


@pytest.mark.parametrize(
    ("body", "expected"),
    [
        ("[" * 5000 + "]" * 5000, "nested too deeply to pretty-print"),
        ("[" * 60_000, "nested too deeply to pretty-print"),
        ("[" * 100_000, "(showing 64 KiB of 98 KiB, as received"),  # too big to pretty-print in the UI at all
        ('{"object": "whatsapp_business_account"}', "pretty-printed (b: raw bytes)"),
        ('{"text": "' + "x" * 30_000 + '"}', "pretty-printed without colours"),  # highlighting would stall the UI
        ("{not json", "not JSON"),
    ],
)
def test_detail_body_never_raises_on_hostile_nesting(body: str, expected: str) -> None:
    record = {"request": {"method": "POST", "path": "/webhook/whatsapp", "body": body}}
    console = Console(file=io.StringIO(), width=100)
    console.print(body_renderable(record, raw=False))
    assert expected in console.file.getvalue()  # type: ignore[attr-defined]
