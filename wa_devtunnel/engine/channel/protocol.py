"""The event stream's wire format: versioned JSON Lines, one engine event or command per line.

JSON Lines, measured against msgpack (benchmarks/event_stream.py, 5,000 exchange events): msgpack
encodes 0.9 us/event faster on the engine's side (4.2 against 5.1 us, next to ~200 us per request) but
decodes 1.6x slower in the front end and is only 14% smaller; JSON needs no new dependency, is what
recordings already are (orjson writes both), and a developer can read it with `socat`.
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
    SelfTestFinished,
    TunnelChanged,
)

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
}
EVENT_TYPES = {name: cls for cls, name in EVENT_NAMES.items()}
_PATH_FIELDS = frozenset({"recording_path", "path"})


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


def event_message(event: EngineEvent) -> dict[str, Any]:
    """The wire form of an engine event: `{"event": name, ...fields}`."""
    if event.__class__ is ExchangeRecorded:
        path = event.path  # type: ignore[union-attr]
        return {
            "event": "exchange",
            "offset": event.offset,  # type: ignore[union-attr]
            "path": str(path) if path is not None else None,
            "record": event.record,  # type: ignore[union-attr]
        }
    message: dict[str, Any] = {"event": EVENT_NAMES[type(event)]}
    for field in dataclasses.fields(event):  # type: ignore[arg-type]
        message[field.name] = getattr(event, field.name)
    return message


def encode_event(event: EngineEvent) -> bytes:
    """One event as one line."""
    try:
        return encode(event_message(event))
    except (orjson.JSONEncodeError, TypeError):
        # Lone surrogates or huge ints from a hostile request: the standard library escapes them.
        import json

        text = json.dumps(event_message(event), default=_default, ensure_ascii=True, separators=(",", ":"))
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


def event_from_message(message: dict[str, Any]) -> EngineEvent | None:
    """The typed event of a stream line (None for an event this version does not know)."""
    name = message.get("event")
    if name == "exchange":
        record = message.get("record")
        if not isinstance(record, dict):
            raise ProtocolError("exchange without a record")
        path = message.get("path")
        return ExchangeRecorded(None, record, int(message.get("offset", -1)), Path(path) if path else None)
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
        values[field.name] = value
    try:
        return cls(**values)
    except TypeError as exc:
        raise ProtocolError(f"{name}: {exc}") from None
