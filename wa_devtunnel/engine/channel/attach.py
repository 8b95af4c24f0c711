"""Opening an engine's channel for front ends, and stopping when the front end that started it is gone."""

from __future__ import annotations

import asyncio
import os
import sys
from collections.abc import Callable
from typing import TextIO

from wa_devtunnel.engine.channel.address import (
    CHANNEL_ENV,
    SECRET_ENV,
    ChannelAddress,
    address_from_environment,
    private_address,
)
from wa_devtunnel.engine.channel.server import ChannelServer
from wa_devtunnel.engine.events import Notice
from wa_devtunnel.engine.service import WebhookService


class _ParentGone(asyncio.Protocol):
    """Our stdin is a pipe from the TUI that started us: its end closes when that process ends, however it ends."""

    def __init__(self, gone: Callable[[], None]) -> None:
        self._gone = gone

    def eof_received(self) -> bool:
        self._gone()
        return False

    def connection_lost(self, exc: Exception | None) -> None:
        self._gone()


class EngineChannel:
    """The channel of one engine run: made before the service starts (its first notices are kept for the
    first watcher), listening once the receiver is up."""

    def __init__(self, service: WebhookService, request_stop: Callable[[], None]) -> None:
        parent = address_from_environment()
        for name in (CHANNEL_ENV, SECRET_ENV):  # ours alone: no process we start inherits the secret
            os.environ.pop(name, None)
        # Started by a TUI: it chose the address and holds our stdin. Otherwise a private one of our own.
        self.owned = parent is not None
        self.address: ChannelAddress = parent or private_address()
        self.request_stop = request_stop
        self.parent_pid = os.getppid()
        service.channel = self.address
        self.server = ChannelServer(service, self.address, request_stop)
        self.listening = False

    async def start(self, stdin: TextIO | None = None) -> None:
        """Listen; an owned engine also stops when its parent's end of stdin closes. OSError when it cannot listen."""
        try:
            await self.server.start()
        except OSError as exc:
            self.server.service.channel = None
            self.server.service.announce_instance()  # `watch` then says this engine accepts no watchers
            if self.owned:
                raise OSError(exc.errno, f"cannot open the engine's channel at {self.address.socket}: {exc}") from exc
            text = f"Front ends cannot attach (wa-devtunnel watch): {exc.strerror or exc} ({self.address.socket})"
            self.server.service.bus.publish(Notice("warning", text, topic="channel"))
            return
        self.listening = True
        if self.owned:
            loop = asyncio.get_running_loop()
            await loop.connect_read_pipe(lambda: _ParentGone(self.request_stop), stdin or sys.stdin)

    async def stop(self) -> None:
        """After the service stopped: the last events, a goodbye to every watcher, the socket removed."""
        # A parent keeps the directory (it reads our last line from the log there), unless it is dead.
        parent_alive = self.owned and os.getppid() == self.parent_pid
        await self.server.stop(remove_directory=not parent_alive)
