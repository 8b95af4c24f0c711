"""What the `make_receiver` and `receiver` fixtures hand a test: a receiver app and its recording."""

from __future__ import annotations

from typing import Any

from wa_devtunnel.engine.events import EventBus
from wa_devtunnel.engine.origin import ORIGIN_HEADER, origin_header
from wa_devtunnel.engine.receiver import ReceiverConfig
from wa_devtunnel.engine.recording import SessionRecorder, read_recording


class ReceiverHarness:
    """A receiver behind aiohttp's test client, with its recording readable at any time."""

    def __init__(self, client: Any, recorder: SessionRecorder, bus: EventBus, config: ReceiverConfig) -> None:
        self.client = client
        self.recorder = recorder
        self.bus = bus
        self.config = config

    def origin(self, label: str) -> dict[str, str]:
        """The header our own tools send, with this session's key, so the receiver labels it."""
        return {ORIGIN_HEADER: origin_header(label, self.config.origin_key)}

    def records(self) -> list[dict[str, Any]]:
        read = read_recording(self.recorder.path)
        assert read.problems == ()
        return list(read.records)
