"""The engine's inline bus listeners run on the acknowledgement path: they read the event's own fields
(seq, kind, origin, flags), never `line` (read back from the recording), `record` (which would decode the
body again) or the view."""

from __future__ import annotations

import json
from pathlib import Path
from types import SimpleNamespace
from typing import Any

from wa_devtunnel.engine.events import EventBus, ExchangeRecorded, Notice
from wa_devtunnel.engine.meta.handshake_watch import HandshakeWatch
from wa_devtunnel.engine.meta.registration import Registrar
from wa_devtunnel.engine.recording import SessionRecorder, encode_record, read_recording
from wa_devtunnel.engine.unknown_numbers import UNKNOWN_FLAG, UnknownNumberHints
from wa_devtunnel.rules.samples import payloads as samples


def partial_line(seq: int, flags: list[str], body: bytes, **fields: Any) -> dict[str, Any]:
    """A receiver's line: its summary partial (what the receiver knew), the body as sent."""
    request = {"method": "POST", "path": "/webhook/whatsapp", "query": "", "headers": [], "body": body.decode()}
    return (
        {"v": 1, "id": f"id{seq}", "seq": seq, "kind": "event", "request": request}
        | fields
        | {"summary": {"partial": True, "flags": flags}}
    )


def derived(event: ExchangeRecorded) -> bool:
    return object.__getattribute__(event, "_record") is not None or object.__getattribute__(event, "_view") is not None


async def test_the_engine_listeners_read_the_line_and_derive_nothing() -> None:
    bus = EventBus()
    watch = HandshakeWatch(bus, "ngrok")
    hints = UnknownNumberHints(bus, {"111": "main"})
    registrar = SimpleNamespace(meta_events=0)
    bus.add_listener(watch.observe)
    bus.add_listener(hints)
    bus.add_listener(lambda event: Registrar.observe(registrar, event))  # type: ignore[arg-type]
    front = bus.subscribe()

    body = samples.text_message_payload(text="hi")  # its phone_number_id is not "111": the flagged one is hinted
    ordinary = ExchangeRecorded(None, partial_line(1, [], body, origin="meta"), 0)
    flagged = ExchangeRecorded(None, partial_line(2, [UNKNOWN_FLAG], body, origin="meta"), 100)
    local = ExchangeRecorded(None, partial_line(3, [], body, origin="local"), 200)
    for event in (ordinary, flagged, local):
        bus.publish(event)

    assert not any(derived(event) for event in (ordinary, flagged, local)), "a listener derived a summary or view"
    assert registrar.meta_events == 2, "Meta's events counted from the line (kind and origin)"
    said = [e for e in front.drain() if isinstance(e, Notice) and e.topic == UNKNOWN_FLAG]
    assert len(said) == 1 and "matches no configured account" in said[0].text
    # What a front end reads is still the whole summary, derived when it asks.
    assert "items" in ordinary.record["summary"]


def test_the_receivers_event_keeps_where_its_line_is_and_reads_it_back_when_asked(tmp_path: Path) -> None:
    """ExchangeRecorded.written holds no record and no bytes: `line` is read back from the recording (what any
    reader gets), the listeners' fields come from the record; a line gone meanwhile gives a stand-in, no error."""
    body = samples.text_message_payload(text="read me back")
    record = partial_line(7, ["duplicate"], body, origin="meta")
    with SessionRecorder(tmp_path / "rec") as recorder:
        recorder.append(partial_line(6, [], body))  # the line before: offsets matter
        data = encode_record(record)
        offset = recorder.append_line(data)
        path = recorder.path
    event = ExchangeRecorded.written(record, len(data), offset, path)
    assert (event.seq, event.kind, event.origin, event.flags) == (7, "event", "meta", ("duplicate",))
    assert object.__getattribute__(event, "_line") is None  # nothing of the record kept
    assert event.line == json.loads(data) == read_recording(path).records[1]
    assert event.record["summary"]["flags"] == ["duplicate"] and "items" in event.record["summary"]
    assert "read me back" in event.view.headline

    path.write_bytes(b"")  # the file emptied (by hand) before a front end asked
    gone = ExchangeRecorded.written(record, len(data), offset, path)
    assert gone.line["seq"] == 7 and "no longer readable" in gone.line["recording_error"]
    assert gone.view.seq == 7  # still shown, not a crash
