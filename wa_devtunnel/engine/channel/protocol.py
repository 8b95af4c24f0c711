"""The event stream's wire format: versioned JSON Lines, one engine event or command per line.

JSON Lines, measured against msgpack (benchmarks/event_stream.py, 5,000 exchange events with their
records): msgpack is no faster (encode 6.3 against 6.5 us, decode 13.2 against 12.4) and 14% smaller;
JSON needs no new dependency, is what recordings already are (orjson writes both), and a developer can
read it with `socat`. What a TUI asks for, an exchange's view alone, is 344 bytes and 3.3 us to decode.
docs/event-stream.md documents every line.
"""

from __future__ import annotations

import dataclasses
from pathlib import Path
from typing import Any

import orjson

from wa_devtunnel.engine.events import (
    EngineEvent,
    ExchangeRecorded,
    ForwardCompleted,
    Notice,
    ReceiverStarted,
    ReceiverStopped,
    RecordingHealth,
    RegistrationChanged,
    SelfTestFinished,
    TunnelChanged,
    WebhookQuiet,
)
from wa_devtunnel.engine.exchange_view import VIEW_FIELDS, ExchangeView, shared_path, view_from_values, view_values

# A front end refuses an engine with another major version; minor additions (new keys, new events) are
# ignored by older readers.
PROTOCOL_VERSION = 1
# The first line a client sends (its secret) is small; a command line may carry a whole 3 MB body.
MAX_HELLO_BYTES = 4096
MAX_LINE_BYTES = 64 * 1024 * 1024

EVENT_NAMES: dict[type, str] = {
    ReceiverStarted: "started",
    ExchangeRecorded: "exchange",
    ForwardCompleted: "forward",
    ReceiverStopped: "stopped",
    Notice: "notice",
    TunnelChanged: "tunnel",
    SelfTestFinished: "selftest",
    RecordingHealth: "recording",
    RegistrationChanged: "registration",
    WebhookQuiet: "quiet",
}
EVENT_TYPES = {name: cls for cls, name in EVENT_NAMES.items()}
_PATH_FIELDS = frozenset({"recording_path", "path"})
# What a view field is when an engine of another minor version does not send it (required ones: an error).
_VIEW_DEFAULTS = {
    name: field.default
    for name, field in ExchangeView.__dataclass_fields__.items()
    if field.default is not dataclasses.MISSING
}


class ProtocolError(ValueError):
    """A line that is not what the protocol says (damaged, another version, or not JSON)."""


def encode(message: dict[str, Any]) -> bytes:
    """One line of the stream."""
    return orjson.dumps(message, option=orjson.OPT_APPEND_NEWLINE, default=_default)


def _default(value: Any) -> Any:
    if isinstance(value, Path):
        return str(value)
    if isinstance(value, bytes):  # a record's raw parts never are (bodies are text or base64): be safe
        return value.decode("utf-8", "backslashreplace")
    raise TypeError(f"{type(value).__name__} is not JSON serializable")


def exchange_message(event: ExchangeRecorded, with_record: bool) -> dict[str, Any]:
    """An exchange: its view always; the whole record (bodies and all) only for a front end that asked."""
    if not with_record:  # the view carries the offset and the part too
        return {"event": "exchange", "view": view_values(event.view)}  # positional: the welcome's "view_fields"
    path = event.path
    return {
        "event": "exchange",
        "offset": event.offset,
        "path": str(path) if path is not None else None,
        "view": view_values(event.view),
        "record": event.record,
    }


def event_message(event: EngineEvent) -> dict[str, Any]:
    """The wire form of an engine event: `{"event": name, ...fields}` (an exchange with its record)."""
    if event.__class__ is ExchangeRecorded:
        return exchange_message(event, with_record=True)  # type: ignore[arg-type]
    message: dict[str, Any] = {"event": EVENT_NAMES[type(event)]}
    for field in dataclasses.fields(event):  # type: ignore[arg-type]
        message[field.name] = getattr(event, field.name)
    return message


def encode_event(event: EngineEvent, with_record: bool = True) -> bytes:
    """One event as one line (an exchange without its record when `with_record` is False)."""
    message = exchange_message(event, with_record) if event.__class__ is ExchangeRecorded else event_message(event)  # type: ignore[arg-type]
    try:
        return encode(message)
    except (orjson.JSONEncodeError, TypeError):
        # Lone surrogates or huge ints from a hostile request: the standard library escapes them.
        import json

        text = json.dumps(message, default=_default, ensure_ascii=True, separators=(",", ":"))
        return text.encode("ascii") + b"\n"


def decode(line: bytes) -> dict[str, Any]:
    """One line back into a message; ProtocolError when it is not a JSON object."""
    try:
        message = orjson.loads(line)
    except orjson.JSONDecodeError:
        import json

        try:  # what encode_event's fallback wrote (lone surrogates escaped)
            message = json.loads(line)
        except ValueError as exc:
            raise ProtocolError(f"not JSON: {exc}") from None
    if not isinstance(message, dict):
        raise ProtocolError("not a JSON object")
    return message


def _pairs(value: Any) -> tuple[tuple[str, str], ...]:
    """`[[name, token], ...]` back into pairs; ProtocolError for anything else."""
    try:
        return tuple((str(name), str(token)) for name, token in value or ())
    except (TypeError, ValueError):
        raise ProtocolError(f"accounts: not a list of pairs: {str(value)[:80]}") from None


def view_from_message(values: Any, fields: tuple[str, ...] = VIEW_FIELDS) -> ExchangeView:
    """An exchange's view from its wire form: values in the order of `fields` (the engine's welcome says
    which; an engine of another minor version may have more or fewer). ProtocolError when it is not one."""
    try:
        if fields is not VIEW_FIELDS and fields != VIEW_FIELDS:
            named = dict(zip(fields, values, strict=False))
            values = [named[name] if name in named else _VIEW_DEFAULTS[name] for name in VIEW_FIELDS]
        return view_from_values(values)
    except (TypeError, ValueError, KeyError) as exc:
        raise ProtocolError(f"exchange view: {exc}") from None


def event_from_message(
    message: dict[str, Any], view_fields: tuple[str, ...] = VIEW_FIELDS
) -> EngineEvent | ExchangeView | None:
    """The typed event of a stream line (None for an event this version does not know).

    An exchange sent without its record is just its ExchangeView: a TUI builds one per event of a burst.
    """
    name = message.get("event")
    if name == "exchange":
        record = message.get("record")
        view = message.get("view")
        if not isinstance(record, dict) and not isinstance(view, list):
            raise ProtocolError("exchange without a view or a record")
        if not isinstance(record, dict):
            return view_from_message(view, view_fields)
        path = message.get("path")
        return ExchangeRecorded(
            view_from_message(view, view_fields) if isinstance(view, list) else None,
            record,
            int(message.get("offset", -1)),
            shared_path(path) if path else None,
        )
    cls = EVENT_TYPES.get(str(name))
    if cls is None:
        return None
    values: dict[str, Any] = {}
    for field in dataclasses.fields(cls):
        if field.name not in message:
            continue
        value = message[field.name]
        if field.name in _PATH_FIELDS:
            value = Path(value) if value else None
        elif field.name == "recording_parts":
            value = tuple(Path(part) for part in value or ())
        elif field.name == "accounts":  # (name, verify token) pairs: JSON has lists
            value = _pairs(value)
        values[field.name] = value
    try:
        return cls(**values)
    except TypeError as exc:
        raise ProtocolError(f"{name}: {exc}") from None
