"""What the `make_receiver` and `receiver` fixtures hand a test: a receiver served as `up` serves it, its recording."""

from __future__ import annotations

from typing import Any

from aiohttp import web
from aiohttp.test_utils import TestServer
from aiohttp.web_runner import BaseRunner

from wa_devtunnel.engine.events import EventBus
from wa_devtunnel.engine.http_server import ReceiverRunner, ServerLimits
from wa_devtunnel.engine.origin import ORIGIN_HEADER, origin_header
from wa_devtunnel.engine.receiver import ReceiverConfig
from wa_devtunnel.engine.recording import SessionRecorder, read_recording
from wa_devtunnel.settings import Settings


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


class ReceiverTestServer(TestServer):
    """The receiver app served as `up` serves it (ReceiverRunner: the limits and the low-level handler), port 0."""

    def __init__(self, app: web.Application, bus: EventBus, *, forwarding: bool = False) -> None:
        super().__init__(app)
        self.bus = bus
        self.forwarding = forwarding

    async def _make_runner(self, **kwargs: Any) -> BaseRunner:
        limits = ServerLimits.from_settings(Settings())
        return ReceiverRunner(self.app, limits, self.bus, forwarding=self.forwarding)
