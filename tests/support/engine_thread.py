"""The service on a thread and loop of the test process: tests host the real engine without a child process."""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Coroutine
from concurrent.futures import Future
from typing import Any, TextIO, TypeVar

from wa_devtunnel.engine.events import ReceiverStarted
from wa_devtunnel.engine.service import WebhookService

T = TypeVar("T")


class EngineThread:
    """Owns a background event loop running one WebhookService."""

    def __init__(self, service: WebhookService) -> None:
        self.service = service
        self._loop = asyncio.new_event_loop()
        self._thread = threading.Thread(target=self._run, name="wa-devtunnel-engine", daemon=True)
        self._started = False

    def _run(self) -> None:
        asyncio.set_event_loop(self._loop)
        self._loop.run_forever()

    def submit(self, coroutine: Coroutine[Any, Any, T]) -> Future[T]:
        """Run one of the service's coroutines on the engine loop (e.g. send_sample) and get a future for it."""
        return asyncio.run_coroutine_threadsafe(coroutine, self._loop)

    def start(self, progress: TextIO | None = None, timeout: float | None = None) -> ReceiverStarted:
        """Start the thread, prepare and start the service; raises what service.start raises."""
        if not self._started:
            self._thread.start()
            self._started = True

        async def boot() -> ReceiverStarted:
            await self.service.prepare(progress)
            return await self.service.start()

        return self.submit(boot()).result(timeout)

    def stop(self, timeout: float = 15.0) -> None:
        """Stop the service (tunnel, receiver, recording), then the loop and thread."""
        if not self._started:
            return
        try:
            self.submit(self.service.stop()).result(timeout)
        finally:
            self._loop.call_soon_threadsafe(self._loop.stop)
            self._thread.join(timeout)
            if not self._thread.is_alive():
                self._loop.close()
            self._started = False
