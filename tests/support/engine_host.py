"""The real engine and its real channel, hosted on a thread of the test process (a child process costs ~1 s).

Only where the engine runs differs from `wa-devtunnel`: the service, the channel server, the client and
the wire format are the production ones. tests/tui/test_engine_process.py covers the child process itself.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from typing import NamedTuple

from tests.support.engine_thread import EngineThread
from wa_devtunnel.engine.channel.attach import EngineChannel
from wa_devtunnel.engine.channel.client import EngineClient
from wa_devtunnel.engine.events import ReceiverStarted
from wa_devtunnel.engine.service import WebhookService
from wa_devtunnel.settings import Settings


class HostedEngine(NamedTuple):
    """The engine's thread (its service is `engine.service`), its channel, and what it announced."""

    engine: EngineThread
    channel: EngineChannel
    started: ReceiverStarted

    def attach(self, records: bool = True) -> EngineClient:
        """A front end's connection, as `wa-devtunnel watch` makes it (a TUI's: records=False)."""
        return EngineClient.attach(self.channel.address, records=records)


@contextlib.contextmanager
def hosted_engine(settings: Settings, service: WebhookService | None = None) -> Iterator[HostedEngine]:
    """Start the service and its channel on an engine thread; stop both (and remove the socket) after."""
    engine = EngineThread(service or WebhookService(settings))
    channel = EngineChannel(engine.service, request_stop=lambda: None)
    try:
        started = engine.start(timeout=10)
        engine.submit(channel.start()).result(10)
        yield HostedEngine(engine, channel, started)
    finally:
        with contextlib.suppress(Exception):
            if engine._started:
                engine.submit(engine.service.stop()).result(15)
                engine.submit(channel.stop()).result(5)
        engine.stop()
