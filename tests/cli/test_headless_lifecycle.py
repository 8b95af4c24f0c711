"""Headless lines: each item of a batch on its own line under its exchange, each status saying what it joins
to (its message's statuses so far, its callback data); a lone item stays one line; request text is data."""

from __future__ import annotations

import io
import json
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from wa_devtunnel.cli import headless
from wa_devtunnel.cli.headless import ITEM_INDENT, HeadlessPrinter
from wa_devtunnel.engine.events import ExchangeRecorded
from wa_devtunnel.engine.exchange_view import view_from_record
from wa_devtunnel.rules.decode.payload import decode_payload

USER = "16505551234"
WAMID = "wamid.HBgLMTY1MDU1NTEyMzQVAgARGBI0QTg5RjJDMUQ3RTZCNTA5QjMA"
TAIL = "RTZCNTA5QjMA"
WAMID_FAILED = "wamid.HBgLMTY1MDU1NTEyMzQVAgARGBJDMDhFNzQ2QjE1RkEyOTlEMjAA"
T0 = 1796637601  # 10:00:01 UTC
HOSTILE = "[red]x[/red] \x1b[2J"
ERROR = {"code": 131049, "title": "This message was not delivered to maintain healthy ecosystem engagement."}


@pytest.fixture(autouse=True)
def utc(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    """Lines show local time: UTC here, whatever the machine's zone."""
    monkeypatch.setenv("TZ", "UTC")
    time.tzset()
    yield
    monkeypatch.undo()
    time.tzset()


def status(name: str, wamid: str = WAMID, at: int = T0, **extra: Any) -> dict[str, Any]:
    return {"id": wamid, "status": name, "timestamp": str(at), "recipient_id": USER, **extra}


def body(statuses: list[dict[str, Any]] | None = None, texts: list[str] | None = None) -> bytes:
    value: dict[str, Any] = {
        "messaging_product": "whatsapp",
        "metadata": {"display_phone_number": "15550783881", "phone_number_id": "106540352242922"},
    }
    if texts:
        value["contacts"] = [{"profile": {"name": "Sheena"}, "wa_id": USER}]
        value["messages"] = [
            {"from": USER, "id": f"wamid.IN{n}", "timestamp": str(T0), "type": "text", "text": {"body": text}}
            for n, text in enumerate(texts)
        ]
    if statuses:
        value["statuses"] = statuses
    change = {"value": value, "field": "messages"}
    return json.dumps({"object": "whatsapp_business_account", "entry": [{"id": "1", "changes": [change]}]}).encode()


def record(seq: int, payload: bytes) -> dict[str, Any]:
    return {
        "v": 1,
        "id": f"ex{seq}",
        "seq": seq,
        "received_at": "2026-12-07T10:00:50.000001Z",
        "kind": "event",
        "request": {
            "method": "POST",
            "path": "/webhook/whatsapp",
            "query": "",
            "headers": [],
            "body": payload.decode(),
        },
        "response": {"status": 200, "body": ""},
        "signature": "valid",
        "summary": decode_payload(payload).to_dict(),
    }


def status_line(text: str, start: str, note: str, indent: str = ITEM_INDENT) -> bool:
    """The decoder's status line (whatever it adds after the short id), then our note at the end."""
    head, _, rest = text.partition(indent + start + " ") if indent else text.rpartition(start + " ")
    return bool(_) and (not indent or head == "") and f"wamid.…{TAIL}" in rest and text.endswith(note)


def printed(*payloads: bytes, json_lines: bool = False) -> list[str]:
    out = io.StringIO()
    printer = HeadlessPrinter(out, io.StringIO(), json_lines)
    for seq, payload in enumerate(payloads, 1):
        printer.render(ExchangeRecorded(None, record(seq, payload)))
    return out.getvalue().splitlines()


def test_a_batch_prints_each_item_under_its_exchange_and_statuses_say_what_they_join() -> None:
    lines = printed(
        body([status("sent", biz_opaque_callback_data="order-42")]),
        body([status("delivered", at=T0 + 2)]),
        body([status("read", at=T0 + 40), status("failed", WAMID_FAILED, errors=[ERROR])], texts=[HOSTILE]),
    )
    assert len(lines) == 6
    sent, delivered, batch, message, read, failed = lines
    assert status_line(sent, "messages: sent", '(callback "order-42")', indent="")
    assert status_line(delivered, "messages: delivered", '(sent 10:00:01, delivered +2s; callback "order-42")', "")
    assert batch.startswith("10:00:50  POST") and "batch: 1 message, 2 statuses" in batch
    assert message == ITEM_INDENT + 'text from 16505551234: "[red]x[/red] \\x1b[2J"'  # data, escaped
    assert status_line(read, "read", '(sent 10:00:01, delivered +2s, read +40s; callback "order-42")')
    assert failed.startswith(ITEM_INDENT + "failed ") and "131049 This message was not delivered" in failed
    assert "\x1b" not in "\n".join(lines)


def test_a_status_arriving_before_its_sent_still_reads_in_metas_order() -> None:
    *_, last = printed(body([status("read", at=T0 + 40)]), body([status("sent"), status("delivered", at=T0 + 2)]))
    assert status_line(last, "delivered", "(sent 10:00:01, delivered +2s, read +40s)")


def test_a_lone_item_stays_one_line_and_a_repeated_batch_adds_no_status() -> None:
    lines = printed(body(texts=["hello"]), body([status("sent")]), body([status("sent")]))
    assert len(lines) == 3
    assert lines[0].endswith('messages: text from 16505551234: "hello"')
    for repeated in lines[1:]:  # the repeated sent is no second step: no chain to show
        assert status_line(repeated, "messages: sent", "", indent="") and "(sent" not in repeated


def test_json_lines_are_unchanged_and_carry_the_items() -> None:
    lines = printed(body([status("read")], texts=[HOSTILE]), json_lines=True)
    assert len(lines) == 1
    exchange = json.loads(lines[0])
    assert [item["kind"] for item in exchange["summary"]["items"]] == ["message", "status"]
    assert exchange["summary"]["items"][0]["text"] == HOSTILE


def test_watch_reads_a_batchs_items_from_the_recording(tmp_path: Path) -> None:
    """`watch --headless` gets views only: the items come from the recorded line."""
    path = tmp_path / "session.jsonl"
    first = json.dumps(record(1, body([status("sent")])))
    second = record(2, body([status("delivered", at=T0 + 5)], texts=["hi"]))
    path.write_text(first + "\n" + json.dumps(second) + "\n", encoding="utf-8")
    out = io.StringIO()
    printer = HeadlessPrinter(out, io.StringIO(), json_lines=False)
    printer.render(view_from_record(json.loads(first), 0, path))
    printer.render(view_from_record(second, len(first) + 1, path))
    printer.render(view_from_record(second, 10**6, path))  # no line there: only the exchange's line
    lines = out.getvalue().splitlines()
    assert lines[2] == ITEM_INDENT + 'text from 16505551234: "hi"'
    assert status_line(lines[3], "delivered", "(sent 10:00:01, delivered +5s)")
    assert len(lines) == 5 and "batch: 1 message, 1 status" in lines[4]


def test_a_huge_batch_is_cut_with_a_count(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(headless, "ITEM_LINES_LIMIT", 2)
    lines = printed(body([status("sent", f"wamid.{n}") for n in range(5)]))
    assert len(lines) == 4
    assert lines[1].startswith(ITEM_INDENT + "sent wamid.0") and lines[2].startswith(ITEM_INDENT + "sent wamid.1")
    assert lines[3] == ITEM_INDENT + "... and 3 more item(s): the recording has them all"


def test_a_record_without_a_summary_is_decoded_from_its_body() -> None:
    out = io.StringIO()
    bare = record(1, body([status("sent"), status("read", at=T0 + 3)]))
    del bare["summary"]
    HeadlessPrinter(out, io.StringIO(), json_lines=False).render(ExchangeRecorded(None, bare))
    sent, read = out.getvalue().splitlines()[1:]
    assert status_line(sent, "sent", "") and "(" not in sent
    assert status_line(read, "read", "(sent 10:00:01, read +3s)")
