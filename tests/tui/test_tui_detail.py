"""The detail tabs show every value a developer acts on, decoded: nothing is only in the raw body."""

from __future__ import annotations

import io
from collections.abc import AsyncIterator
from pathlib import Path

import aiohttp
import pytest
from rich.console import Console
from textual.widgets import Static

from tests.support.constants import APP_SECRET
from tests.support.inspector import Inspector, open_inspector, wait_until
from tests.support.meta_client import MetaLikeSender
from wa_devtunnel.rules.decode.payload import decode_payload
from wa_devtunnel.rules.samples import payloads as samples
from wa_devtunnel.rules.samples.messages import flow_reply, list_reply
from wa_devtunnel.tui.detail import VALUE_SHOWN, summary_renderable, value_shown
from wa_devtunnel.tui.exchange_list import ExchangeList

ANSWERS = {"flow_token": "booking-7731", "appointment_date": "2026-12-09", "party_size": "4", "notes": "window seat"}


def rendered(renderable: object) -> str:
    console = Console(file=io.StringIO(), width=1000, record=True, color_system=None, legacy_windows=False)
    console.print(renderable)
    return console.export_text()


def payload(message: dict[str, object]) -> bytes:
    return samples.meta_json(samples.envelope([samples.messages_change([message])]))


@pytest.fixture
async def inspector(tmp_path: Path) -> AsyncIterator[Inspector]:
    async with open_inspector(tmp_path) as opened:
        yield opened


async def test_a_flow_submissions_answers_and_a_list_replys_id_are_in_the_detail(inspector: Inspector) -> None:
    app, pilot = inspector.app, inspector.pilot
    async with aiohttp.ClientSession() as session:
        meta = MetaLikeSender(session, inspector.started.callback_url, APP_SECRET)
        assert await meta.deliver(payload(flow_reply(ANSWERS, message_id="wamid.FLOW1"))) == [200]
        assert await meta.deliver(payload(list_reply(reply_id="ship-express-24h", message_id="wamid.LIST1"))) == [200]
    exchanges = app.query_one("#exchanges", ExchangeList)
    await wait_until(pilot, lambda: exchanges.row_count == 2, "two rows")
    summary = app.query_one("#summary-text", Static)
    await wait_until(pilot, lambda: "ship-express-24h" in rendered(summary.content), "the list reply's id")
    assert '    interactive.list_reply.id = "ship-express-24h"' in rendered(summary.content)

    await pilot.press("up")
    await wait_until(pilot, lambda: "booking-7731" in rendered(summary.content), "the flow's answers")
    text = rendered(summary.content)
    for answer in ANSWERS.values():
        assert f'"{answer}"' in text, answer


def test_values_are_data_with_escapes_shown_and_long_ones_cut() -> None:
    body = payload(list_reply(title="[bold]x[/bold] \x1b[2J\u202e", reply_id="r" * 3000))
    record = {
        "kind": "event",
        "request": {"method": "POST", "path": "/webhook/whatsapp", "body": body.decode()},
        "response": {"status": 200, "body": "EVENT_RECEIVED"},
        "summary": decode_payload(body).to_dict(),
    }
    text = rendered(summary_renderable(record))
    assert "\x1b" not in text and "\u202e" not in text
    assert '"[bold]x[/bold] \\u001b[2J\\u202e"' in text
    assert "(cut: 3,002 characters, the Body tab has all)" in text
    assert len(value_shown("r" * 3000)) < VALUE_SHOWN + 60
    assert value_shown(False) == "false" and value_shown(None) == "null"


def test_billable_false_is_shown() -> None:
    item = {"kind": "status", "line": "delivered", "billable": False, "forwarded": False}
    record = {"kind": "event", "summary": {"items": [item]}}
    text = rendered(summary_renderable(record))
    assert "  billable  false" in text and "forwarded" not in text


def test_a_record_without_item_values_gets_them_from_its_body() -> None:
    """Recorded by an older decoder (or without values): the detail decodes the body again."""
    body = payload(list_reply(reply_id="ship-express-24h"))
    summary = decode_payload(body, accounts_by_phone_number_id={"106540352242922": "shop"}).to_dict()
    for item in summary["items"]:
        del item["values"]
    record = {
        "kind": "event",
        "request": {"method": "POST", "path": "/webhook/whatsapp", "body": body.decode()},
        "summary": summary,
    }
    text = rendered(summary_renderable(record))
    assert '    interactive.list_reply.id = "ship-express-24h"' in text
    assert "  account               shop" in text  # what the receiver knew stays
