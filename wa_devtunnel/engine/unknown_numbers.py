"""Live diagnosis published as Notices, so the TUI and headless output both say what to check."""

from __future__ import annotations

from collections.abc import Mapping

from wa_devtunnel.engine.events import EngineEvent, EventBus, ExchangeRecorded, Notice

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
        if not isinstance(event, ExchangeRecorded):
            return
        # Read the record, not the view: building the view costs the receiver time on every request.
        summary = event.record.get("summary") or {}
        if not isinstance(summary, Mapping) or UNKNOWN_FLAG not in (summary.get("flags") or ()):
            return
        for item in summary.get("items", ()) or ():
            number = str(item.get("phone_number_id") or "") if isinstance(item, Mapping) else ""
            if number and number not in self.known and number not in self.told and len(self.told) <= MAX_HINTS:
                self.told.add(number)
                text = unknown_number_hint(number)
                if len(self.told) > MAX_HINTS:
                    text = "More events name phone_number_ids that match no configured account (not listed)."
                self.bus.publish(Notice("hint", text, topic=UNKNOWN_FLAG))
