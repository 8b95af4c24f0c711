"""The lifecycle screen (key L) as a developer sees it: real deliveries through the engine, the screen read
from the recording, each sent message with its status chain, pricing or failure, and its contact's thread."""

from __future__ import annotations

import io
import json
from collections.abc import AsyncIterator
from datetime import datetime
from pathlib import Path
from typing import Any

import aiohttp
import pytest
from hypothesis import given, settings
from rich.console import Console
from textual.widgets import DataTable, Static

from tests.cli.test_untrusted_rendering import assert_terminal_safe, hostile_text, rendered
from tests.support.constants import APP_SECRET
from tests.support.inspector import Inspector, open_inspector, wait_until
from tests.support.meta_client import MetaLikeSender
from wa_devtunnel.rules.lifecycle import LifecycleBook
from wa_devtunnel.tui.help import HelpScreen
from wa_devtunnel.tui.lifecycle_screen import LifecycleScreen, message_row, read_new_records, thread_text

USER = "16505551234"
WAMID_READ = "wamid.HBgLMTY1MDU1NTEyMzQVAgARGBI0QTg5RjJDMUQ3RTZCNTA5QjMA"
WAMID_FAILED = "wamid.HBgLMTY1MDU1NTEyMzQVAgARGBJDMDhFNzQ2QjE1RkEyOTlEMjAA"
T0 = 1796637601
HOSTILE = "[red]x[/red] \x1b[2J"
ERROR = {"code": 131049, "title": "This message was not delivered to maintain healthy ecosystem engagement."}


def body(statuses: list[dict[str, Any]] | None = None, text: str | None = None) -> bytes:
    value: dict[str, Any] = {
        "messaging_product": "whatsapp",
        "metadata": {"display_phone_number": "15550783881", "phone_number_id": "106540352242922"},
    }
    if text is not None:
        value["contacts"] = [{"profile": {"name": "Sheena"}, "wa_id": USER}]
        value["messages"] = [
            {"from": USER, "id": "wamid.INBOUND1", "timestamp": str(T0 - 30), "type": "text", "text": {"body": text}}
        ]
    if statuses:
        value["statuses"] = statuses
    change = {"value": value, "field": "messages"}
    return json.dumps({"object": "whatsapp_business_account", "entry": [{"id": "1", "changes": [change]}]}).encode()


def status(name: str, wamid: str = WAMID_READ, at: int = T0, **extra: Any) -> dict[str, Any]:
    return {"id": wamid, "status": name, "timestamp": str(at), "recipient_id": USER, **extra}


SENT = status(
    "sent",
    biz_opaque_callback_data="order-42",
    pricing={"billable": True, "pricing_model": "PMP", "category": "utility", "type": "regular"},
)


@pytest.fixture
async def inspector(tmp_path: Path) -> AsyncIterator[Inspector]:
    async with open_inspector(tmp_path, size=(160, 40)) as opened:
        yield opened


@pytest.fixture
async def meta(inspector: Inspector) -> AsyncIterator[MetaLikeSender]:
    async with aiohttp.ClientSession() as session:
        yield MetaLikeSender(session, inspector.started.callback_url, APP_SECRET)


def plain(widget: Static) -> str:
    console = Console(file=io.StringIO(), width=1000, record=True, color_system=None, legacy_windows=False)
    console.print(widget.content)
    return console.export_text()


def table_rows(screen: LifecycleScreen) -> list[list[str]]:
    table: DataTable[Any] = screen.query_one(DataTable)
    return [[cell.plain for cell in table.get_row_at(index)] for index in range(table.row_count)]


async def deliver_all(inspector: Inspector, meta: MetaLikeSender, *payloads: bytes) -> None:
    before = inspector.app.store.counters.events
    for payload in payloads:
        assert await meta.deliver(payload) == [200]
    count = before + len(payloads)
    await wait_until(inspector.pilot, lambda: inspector.app.store.counters.events == count, f"{count} events")


def local(seconds: int) -> str:
    return datetime.fromtimestamp(seconds).strftime("%H:%M:%S")


async def test_sent_messages_show_their_statuses_pricing_or_failure_and_the_contacts_thread(
    inspector: Inspector, meta: MetaLikeSender
) -> None:
    app, pilot = inspector.app, inspector.pilot
    await deliver_all(
        inspector,
        meta,
        body([SENT], text=HOSTILE),
        body([status("read", at=T0 + 40)]),  # before its delivered: Meta's order is kept anyway
        body([status("delivered", at=T0 + 2), status("failed", WAMID_FAILED, at=T0 + 50, errors=[ERROR])]),
    )
    await pilot.press("L")
    screen = app.screen
    assert isinstance(screen, LifecycleScreen)
    await wait_until(pilot, lambda: len(table_rows(screen)) == 2, "two sent messages")

    failed, read = table_rows(screen)  # newest first
    assert failed[1] == "wamid.…RkEyOTlEMjAA" and failed[2] == USER
    assert failed[4] == f"failed {local(T0 + 50)}"
    assert failed[5] == "131049 This message was not delivered to maintain healthy ecosystem engagement."
    assert read[1] == "wamid.…RTZCNTA5QjMA" and read[3] == "order-42"
    assert read[4] == f"sent {local(T0)} -> delivered +2s -> read +40s"
    assert read[5] == "utility, billable, PMP regular"
    title = plain(screen.query_one("#lifecycle-title", Static))
    assert "2 sent message(s), 1 contact(s) and group(s), from 3 event(s)" in title

    await pilot.press("down")
    await wait_until(pilot, lambda: screen.selected_wamid() == WAMID_READ, "the second row selected")
    thread = plain(screen.query_one("#lifecycle-thread", Static))
    assert f"Message {WAMID_READ}" in thread and "callback data: order-42" in thread
    assert f"Thread with {USER} (3 message(s) in and out)" in thread
    assert f'{local(T0 - 30)} <- text "[red]x[/red] \\x1b[2J"' in thread  # data, never markup or an escape
    assert "\x1b" not in thread

    # New exchanges while the screen is open: read from where the last read stopped.
    await deliver_all(inspector, meta, body([status("sent", "wamid.THIRD", at=T0 + 60)]))
    await wait_until(pilot, lambda: len(table_rows(screen)) == 3, "the third message")
    assert table_rows(screen)[0][1] == "wamid.THIRD"
    assert screen.selected_wamid() == WAMID_READ  # the selection stays on its message
    assert "from 4 event(s)" in plain(screen.query_one("#lifecycle-title", Static))

    await pilot.press("escape")
    assert not isinstance(app.screen, LifecycleScreen)
    await deliver_all(inspector, meta, body([status("read", "wamid.THIRD", at=T0 + 61)]))
    await pilot.press("L")  # the same screen again, caught up
    assert app.screen is screen
    await wait_until(pilot, lambda: table_rows(screen)[0][4].startswith("sent"), "the update")
    assert table_rows(screen)[0][4] == f"sent {local(T0 + 60)} -> read +1s"


async def test_the_key_is_listed_in_help(inspector: Inspector) -> None:
    await inspector.pilot.press("question_mark")
    assert isinstance(inspector.app.screen, HelpScreen)
    assert any(key.keys == "L" and key.action == "lifecycle" for key in inspector.app.screen._keys)


async def test_an_empty_session_says_what_will_appear(inspector: Inspector) -> None:
    await inspector.pilot.press("L")
    screen = inspector.app.screen
    assert isinstance(screen, LifecycleScreen)
    await wait_until(
        inspector.pilot, lambda: "from 0 event(s)" in plain(screen.query_one("#lifecycle-title", Static)), "read"
    )
    assert "No message sent by the business yet" in plain(screen.query_one("#lifecycle-thread", Static))


def test_the_reader_stops_before_a_half_written_line_and_skips_damage(tmp_path: Path) -> None:
    path = tmp_path / "s.jsonl"
    good = json.dumps({"kind": "event", "seq": 1}, separators=(",", ":"))
    path.write_bytes(f'{good}\n{{"kind":"event", broken\n{{"kind":"verify"}}\n{good[:9]}'.encode())
    records, offset = read_new_records(path, 0)
    assert records == [{"kind": "event", "seq": 1}]
    assert offset == len(path.read_bytes()) - 9
    assert read_new_records(path, offset) == ([], offset)
    assert read_new_records(tmp_path / "missing.jsonl", 0) == ([], 0)


@settings(max_examples=40, deadline=None)
@given(hostile_text, hostile_text, hostile_text)
def test_rows_and_threads_show_any_request_text_as_data(text: str, callback: str, who: str) -> None:
    book = LifecycleBook()
    book.add([{"kind": "message", "message_id": text or "m", "sender": who, "type": text, "text": text}])
    book.add(
        [{"kind": "status", "status_id": text + "s", "status": text, "recipient_id": who, "timestamp": "5",
          "biz_opaque_callback_data": callback, "pricing_category": text, "group_id": callback,
          "participant": who, "errors": [{"code": text, "title": text}]}]
    )  # fmt: skip
    (message,) = book.outgoing()
    for cell in message_row(message).cells:
        assert "\n" not in cell.plain
        assert_terminal_safe(rendered(cell))
    assert_terminal_safe(rendered(thread_text(book, message.wamid)))
