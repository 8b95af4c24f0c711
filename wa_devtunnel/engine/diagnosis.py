"""Live diagnosis published as Notices, so the TUI and headless output both say what to check."""

from __future__ import annotations

from collections.abc import Mapping

from wa_devtunnel.engine.events import EngineEvent, EventBus, ExchangeRecorded, Notice

UNKNOWN_FLAG = "unknown-phone-number-id"


def unknown_number_hint(phone_number_id: str) -> str:
    """The one line a developer needs when events arrive for a number they did not configure."""
    return (
        f"phone_number_id {phone_number_id} matches no configured account: set "
        f"WHATSAPP_PHONE_NUMBER_ID={phone_number_id} or add it to wa-devtunnel.toml"
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
            if number and number not in self.known and number not in self.told:
                self.told.add(number)
                self.bus.publish(Notice("hint", unknown_number_hint(number), topic=UNKNOWN_FLAG))
