"""What rows, the detail and the tallies say, without a terminal: plain words, never a Python repr."""

from __future__ import annotations

import io
import json
from dataclasses import replace
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st
from rich.console import Console

from wa_devtunnel.engine.exchange_view import ExchangeView, view_from_record
from wa_devtunnel.tui.char_wrap import CharWrapped
from wa_devtunnel.tui.detail import ORIGIN_WORDS, body_renderable, plain_value, summary_renderable
from wa_devtunnel.tui.model import Counters, ExchangeStore, is_problem
from wa_devtunnel.tui.rows import columns, row_cells, summary_text
from wa_devtunnel.tui.safe import data_block

# Meta's compact style: one line, spaces only inside strings.
COMPACT = (
    '{"object":"whatsapp_business_account","entry":[{"id":"102290129340398","changes":[{"value":'
    '{"messaging_product":"whatsapp","statuses":[{"id":"wamid.HBgLMTY1MDU1NTEyMzQVAgARGBI5","status":"failed",'
    '"errors":[{"code":131049,"title":"This message was not delivered to maintain healthy ecosystem engagement."}]}]}'
    ',"field":"messages"}]}]}'
)


def record(**fields: Any) -> dict[str, Any]:
    base: dict[str, Any] = {
        "id": "ex1",
        "seq": 1,
        "received_at": "2026-12-07T10:10:10.000000Z",
        "kind": "event",
        "request": {"method": "POST", "path": "/webhook/whatsapp", "body": COMPACT},
        "response": {"status": 200, "body": "EVENT_RECEIVED"},
        "signature": "valid",
        "summary": {"headline": "messages: text from 16505551234: hi", "fields": ["messages"]},
        "elapsed_ms": 1.5,
        "origin": "meta",
        "remote": "127.0.0.1",
    }
    base.update(fields)
    return base


def view(**fields: Any) -> ExchangeView:
    return view_from_record(record(**fields))


def status_view(status: str) -> ExchangeView:
    items = [{"kind": "status", "status": status, "line": f"{status} wamid.X"}]
    return view(summary={"headline": f"messages: {status} wamid.X", "fields": ["messages"], "items": items})


def rendered(renderable: object, width: int = 1000) -> str:
    console = Console(file=io.StringIO(), width=width, record=True, color_system=None, legacy_windows=False)
    console.print(renderable)
    return console.export_text()


# Problems and the Errors tally -----------------------------------------------------------------------


@pytest.mark.parametrize(
    ("made", "problem"),
    [
        (lambda: status_view("failed"), True),  # 131026 / 131049: what a bot developer most needs to see
        (lambda: status_view("read"), False),
        (lambda: view(signature="invalid"), True),
        (lambda: view(kind="verify", verify={"ok": False, "reason": "token mismatch"}, response={"status": 403}), True),
        (lambda: view(response={"status": 503}), True),
        (lambda: view(response={"status": 400}), True),  # an error answer to the webhook path
        (lambda: view(forward={"status": None, "error": "backend unreachable: refused"}), True),
        (lambda: view(forward={"status": 500}), True),
        (lambda: view(forward={"status": 200}), False),
        (lambda: view(kind="other", request={"method": "GET", "path": "/.env"}, response={"status": 404}), False),
        (lambda: view(), False),
    ],
)
def test_problems_are_what_a_developer_calls_an_error(made: Any, problem: bool) -> None:
    exchange = made()
    assert is_problem(exchange) is problem
    counters = Counters()
    counters.count(exchange)
    assert counters.errors == int(problem)  # the header's Errors tally and `e` agree


def test_a_late_backend_failure_is_counted_once() -> None:
    store = ExchangeStore()
    pending = view(forward={"pending": True})
    store.add(pending)
    assert store.counters.errors == 0
    store.forward_completed(pending.id, {"status": 502})
    assert store.counters.errors == 1 and is_problem(store.views[0])
    store.forward_completed(pending.id, {"status": 502})
    assert store.counters.errors == 1


def test_clearing_the_store_keeps_the_tallies() -> None:
    store = ExchangeStore()
    for seq in range(3):
        store.add(view(id=f"ex{seq}", seq=seq), record(id=f"ex{seq}"))
    assert store.clear() == 3
    assert not store.views and not store.records and store.record_bytes == 0
    assert store.counters.events == 3


# Rows --------------------------------------------------------------------------------------------------


def test_the_origin_label_leads_the_summary_before_the_field() -> None:
    sample = view(
        origin="sample",
        summary={"headline": "template order_confirmation APPROVED", "fields": ["message_template_status_update"]},
    )
    narrow = columns(False, narrow=True)
    assert "Field" not in narrow
    assert str(row_cells(sample, narrow)[-1]) == "(sample) template_status: template order_confirmation APPROVED"
    wide = columns(False)
    assert str(row_cells(sample, wide)[-1]) == "(sample) template order_confirmation APPROVED"
    assert summary_text(replace(sample, origin="meta")) == "template order_confirmation APPROVED"


def test_a_field_named_by_its_headline_is_not_repeated() -> None:
    update = view(summary={"headline": "account_update ACCOUNT_VIOLATION", "fields": ["account_update"]})
    assert summary_text(update, with_field=True) == "account_update ACCOUNT_VIOLATION"


def test_flags_read_as_words_beside_the_account_column() -> None:
    unknown = view(
        account="shop",
        summary={
            "headline": "messages: text from 1650: hi",
            "fields": ["messages"],
            "flags": ["unknown-phone-number-id"],
        },
    )
    cells = dict(zip(columns(True), row_cells(unknown, columns(True)), strict=True))
    assert str(cells["Account"]) == "shop"
    assert str(cells["Summary"]) == "text from 1650: hi  [unknown phone_number_id]"


@pytest.mark.parametrize("origin", ["other", "local", "selftest", "replay", "sample"])
def test_every_origin_but_meta_is_labelled(origin: str) -> None:
    assert summary_text(view(origin=origin)).startswith(f"({origin}) text from")


# The detail ----------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("value", "words"),
    [
        (["event", "violation_info"], "event, violation_info"),
        (("event", "violation_info"), "event, violation_info"),  # a tuple, as a record made in memory has
        ([{"code": 131049}], '{"code": 131049}'),
        ({"type": "SCAM"}, '{"type": "SCAM"}'),
        (False, "false"),
        (None, "null"),
        (7, "7"),
        ("as is", "as is"),
    ],
)
def test_decoded_fields_are_words_not_python(value: object, words: str) -> None:
    assert plain_value(value) == words
    item = {"kind": "field", "line": "account_update", "raw_keys": value}
    text = rendered(summary_renderable(record(summary={"items": [item]})))
    assert "['" not in text and "('" not in text and "{'" not in text


def test_the_detail_names_the_sender_and_its_origin_in_words() -> None:
    through_tunnel = record(origin="other", remote="127.0.0.1")
    text = rendered(summary_renderable(through_tunnel, client="203.0.113.9"))
    (line,) = [line for line in text.splitlines() if line.startswith("From ")]
    assert line.split(None, 1)[1].rstrip() == f"203.0.113.9  {ORIGIN_WORDS['other']}"
    text = rendered(summary_renderable(record(origin="local")))  # no client known: the socket's peer
    assert f"127.0.0.1  {ORIGIN_WORDS['local']}" in text
    assert "(meta)" not in rendered(summary_renderable(record()))


@pytest.mark.parametrize("width", [20, 37, 80])
def test_the_raw_body_is_folded_by_character_so_every_byte_shows(width: int) -> None:
    text = rendered(body_renderable(record(), raw=True), width=width)
    lines = text.splitlines()
    lines = lines[next(n for n, line in enumerate(lines) if line.startswith("{")) :]  # under "N bytes, as received"
    assert all(len(line.rstrip()) <= width for line in lines)
    assert "".join(line.rstrip("\n") for line in lines).rstrip() == COMPACT
    assert all(len(line) == width for line in lines[:-1])  # full lines: never wrapped early at a space


@given(st.text(alphabet=st.characters(blacklist_categories=("Cs",)), max_size=300), st.integers(2, 60))
def test_char_wrap_never_loses_or_widens_anything(body: str, width: int) -> None:
    text = rendered(CharWrapped(data_block(body)), width=width)
    assert all(len(line) <= width or not line.isascii() for line in text.splitlines())
    folded = rendered(CharWrapped(data_block(body)), width=1000)
    assert "".join(folded.split()) == "".join(text.split())


def test_hostile_text_in_a_raw_body_stays_escaped() -> None:
    hostile = record(request={"method": "POST", "path": "/w", "body": "\x1b[2J[bold]x[/bold]\u202e" + "y" * 50})
    text = rendered(body_renderable(hostile, raw=True), width=20)
    assert "\x1b" not in text and "\u202e" not in text
    assert "\\x1b" in "".join(text.split()) and "[bold]x[/bold]" in "".join(text.split())
    json.dumps(text)  # plain text only
