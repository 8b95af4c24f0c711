"""The engine's events into the UI: one coalescing message per batch (toolong's pattern), never a poll."""

from __future__ import annotations

import contextlib
import time
from collections.abc import Callable
from typing import Any

from textual.app import App
from textual.message import Message

from wa_devtunnel.engine.events import EngineEvent, Subscription

# Events are applied in slices of at most DRAIN_BATCH, DRAIN_INTERVAL_S apart: keys are handled between
# them (a slice takes ~2 ms); the app paints what the slices brought a few times a second in a burst.
DRAIN_BATCH = 500
DRAIN_INTERVAL_S = 0.05


class EngineEventsArrived(Message):
    """Events wait in the subscription: one message however many came."""

    def can_replace(self, message: Message) -> bool:
        """A second one still waiting in the queue says nothing new."""
        return isinstance(message, EngineEventsArrived)


class EngineFeed:
    """Woken in the engine's thread (post a message, return), drained in the UI's: the engine never waits."""

    def __init__(self, app: App[Any], events: Subscription, apply: Callable[[list[EngineEvent]], None]) -> None:
        self._app = app
        self._events = events
        self._apply = apply
        self._last_drain = 0.0
        self._drain_scheduled = False

    def start(self) -> None:
        """After the first refresh, so the first batch lands in a laid-out screen; earlier events wait queued."""
        self._app.call_after_refresh(self._events.wake_with, self._wake)

    def _wake(self) -> None:
        """Called in the engine's thread: never raises into the receiver."""
        with contextlib.suppress(RuntimeError):  # the app's loop may be closing
            self._app.post_message(EngineEventsArrived())

    def arrived(self) -> None:
        """A wake-up: apply at once when idle, else when DRAIN_INTERVAL_S has passed since the last batch."""
        if self._drain_scheduled:
            return
        wait = self._last_drain + DRAIN_INTERVAL_S - time.monotonic()
        if wait <= 0:
            self._drain()
        else:
            self._drain_scheduled = True
            self._app.set_timer(wait, self._drain)

    def _drain(self) -> None:
        """One batch; while a burst goes on, look again after the interval rather than be woken in the middle."""
        self._drain_scheduled = False
        self._last_drain = time.monotonic()
        events = self._events.take(DRAIN_BATCH)
        if events:
            self._apply(events)
            self._drain_scheduled = True
            self._app.set_timer(DRAIN_INTERVAL_S, self._drain)
        elif not self._events.rearm():  # caught up, but one slipped in meanwhile
            self.arrived()
