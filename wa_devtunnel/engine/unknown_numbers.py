"""Live diagnosis published as Notices, so the TUI and headless output both say what to check."""

from __future__ import annotations

from collections.abc import Mapping

from wa_devtunnel.engine.events import EngineEvent, EventBus, ExchangeRecorded, Notice
from wa_devtunnel.engine.recording import request_body
from wa_devtunnel.rules.decode.payload import phone_number_ids

UNKNOWN_FLAG = "unknown-phone-number-id"
# The value is the sender's to choose: a few distinct hints per session, each cut short.
MAX_HINTS = 5
MAX_SHOWN_CHARS = 32


def unknown_number_hint(phone_number_id: str) -> str:
    """The one line a developer needs when events arrive for a number they did not configure."""
    shown = phone_number_id if len(phone_number_id) <= MAX_SHOWN_CHARS else phone_number_id[:MAX_SHOWN_CHARS] + "…"
    if not shown.isdigit():  # Meta's ids are digits: anything else is not worth a copy-paste line
        return f"phone_number_id {shown!r} matches no configured account (and is not one of Meta's numeric ids)"
    return (
        f"phone_number_id {shown} matches no configured account: set "
        f"WHATSAPP_PHONE_NUMBER_ID={shown} or add it to wa-devtunnel.toml"
    )


class UnknownNumberHints:
    """Bus listener: one hint per unknown phone_number_id per session, not one per event."""

    def __init__(self, bus: EventBus, known: Mapping[str, str]) -> None:
        self.bus = bus
        self.known = dict(known)
        self.told: set[str] = set()

    def __call__(self, event: EngineEvent) -> None:
        """Cheap for every other event: the decoder already flagged the interesting ones."""
        if event.__class__ is not ExchangeRecorded:
            return
        # The event's flags, not its line, `record` or view: each of those decodes, on every request.
        if UNKNOWN_FLAG not in event.flags:  # type: ignore[union-attr]
            return
        if len(self.told) > MAX_HINTS:  # said all it will say: flagged events cost nothing more
            return
        line = event.line  # type: ignore[union-attr]
        summary = line.get("summary") or {}
        items = summary.get("items") if isinstance(summary, Mapping) else None
        if isinstance(items, list):  # a whole summary (an older receiver's)
            numbers = [str(item.get("phone_number_id") or "") for item in items if isinstance(item, Mapping)]
        else:  # the receiver's partial summary: the body's numbers, one parse (only for flagged events)
            try:
                numbers = list(phone_number_ids(request_body(line.get("request") or {})))
            except (ValueError, AttributeError):
                return
        for number in numbers:
            if number and number not in self.known and number not in self.told and len(self.told) <= MAX_HINTS:
                self.told.add(number)
                text = unknown_number_hint(number)
                if len(self.told) > MAX_HINTS:
                    text = "More events name phone_number_ids that match no configured account (not listed)."
                self.bus.publish(Notice("hint", text, topic=UNKNOWN_FLAG))
