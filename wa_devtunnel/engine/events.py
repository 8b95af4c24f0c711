"""Typed engine events and a bus whose publishers never wait on subscribers."""

from __future__ import annotations

import asyncio
from collections import deque
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from wa_devtunnel.engine.exchange_view import ExchangeView, view_from_record
from wa_devtunnel.engine.recording import line_at, summary_is_partial, with_full_summary


@dataclass(frozen=True, slots=True)
class ReceiverStarted:
    """The receiver listens; these are the values that go into Meta's dashboard."""

    callback_url: str
    local_url: str
    verify_token: str
    verify_token_generated: bool
    recording_path: Path | None
    port: int
    signatures_checked: bool = False
    tunnel_state: str = "local-only"
    public_url: str | None = None
    forward_to: str | None = None
    # Where the verify token came from (settings' verify_token_source): flag, environment, env-file,
    # accounts, project-state, or generated (new this run and not kept: temporary).
    verify_token_source: str = "generated"
    # True on the run that generated it (the first in this project folder), and where it is kept.
    verify_token_new: bool = False
    state_path: str = ""
    # Every configured account's (name, verify token): front ends show each one, masked.
    accounts: tuple[tuple[str, str], ...] = ()
    # The accounts file they were read from ("" without one).
    accounts_file: str = ""
    # Why the tunnel is not up at start (its summary) and what to do about it: the start panel says both.
    tunnel_reason: str = ""
    tunnel_advice: str = ""


class ExchangeRecorded:
    """A request was answered and (unless --no-record) is on disk.

    The receiver publishes where its line is (`path`, `offset`, `length`: the recording is the source of
    truth) and the few fields the engine's inline listeners read (`seq`, `kind`, `origin`, `flags`): the
    record and its bytes are freed as soon as the answer is sent, while the event may wait in a queue.
    `line` is the record as written (read back from the recording on first read, from the page cache: what
    any reader of the file gets; its summary may be partial, only what the receiver knew); `record` is that
    record with its whole summary (DESIGN.md's reader rule), and the display view is made from it: each on
    first read, by the front end that wants it, so a receiver nobody watches never pays for them.

    Every front end shares the same event: it is read-only by contract. (Not enforced: a frozen class's
    stores cost the receiver a call each, and one is built per request.)
    """

    __slots__ = ("_line", "_record", "_view", "flags", "kind", "length", "offset", "origin", "path", "seq")

    def __init__(
        self, view: ExchangeView | None, record: Mapping[str, Any], offset: int = -1, path: Path | None = None
    ) -> None:
        self._fill(record, offset, path)
        self._line = record
        self._record = None if summary_is_partial(record) else record
        self.length = 0
        self._view = view
        if view is not None:
            self.offset, self.path = view.offset, view.recording

    @classmethod
    def written(cls, record: Mapping[str, Any], length: int, offset: int, path: Path) -> ExchangeRecorded:
        """The receiver's event for a record on disk (`length` bytes at `offset` of `path`): it keeps neither the
        record nor its bytes."""
        event = cls.__new__(cls)
        event._fill(record, offset, path)
        event._line = event._record = event._view = None
        event.length = length
        return event

    def _fill(self, record: Mapping[str, Any], offset: int, path: Path | None) -> None:
        """The fields read once from the record (a malformed one gets neutral values)."""
        seq, kind, origin = record.get("seq"), record.get("kind"), record.get("origin")
        summary = record.get("summary")
        flags = summary.get("flags") if summary.__class__ is dict else None  # type: ignore[union-attr]
        self.seq = seq if seq.__class__ is int else 0
        self.kind = kind if kind.__class__ is str else ""
        self.origin = origin if origin.__class__ is str else ""
        self.flags = tuple(flags) if flags.__class__ in (list, tuple) else ()  # type: ignore[arg-type]
        self.offset, self.path = offset, path

    @property
    def line(self) -> Mapping[str, Any]:
        """The record as written (its summary possibly partial): decoded from `data` once, when kept as bytes."""
        line = self._line
        if line is None:  # written by the receiver: read back (path is set whenever _line is not)
            line = line_at(self.path, self.offset, self.length)  # type: ignore[arg-type]
            if line is None:  # removed or rewritten meanwhile: what the event itself knows, and why no more
                line = {"v": 1, "seq": self.seq, "kind": self.kind, "origin": self.origin}
                line["recording_error"] = f"line no longer readable at offset {self.offset} of {self.path}"
            self._line = line
        return line

    @property
    def record(self) -> Mapping[str, Any]:
        """The record with its whole summary: a partial one decoded from the body (computed once)."""
        record = self._record
        if record is None:
            record = self._record = with_full_summary(self.line)  # type: ignore[arg-type]
        return record

    @property
    def view(self) -> ExchangeView:
        """The view of `record` (computed once; a race between threads only computes it twice)."""
        view = self._view
        if view is None:
            view = self._view = view_from_record(self.record, self.offset, self.path)
        return view

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, ExchangeRecorded):
            return NotImplemented
        return self.line == other.line and self.view == other.view

    __hash__ = None  # type: ignore[assignment]  # like the dataclass it replaces: the record is a dict

    def __repr__(self) -> str:
        return f"ExchangeRecorded(view={self.view!r}, record={self.record!r})"


@dataclass(frozen=True, slots=True)
class ForwardCompleted:
    """With --ack-first: the backend's late answer to an exchange already acknowledged to Meta."""

    exchange_id: str
    seq: int
    forward: Mapping[str, Any]


@dataclass(frozen=True, slots=True)
class ReceiverStopped:
    """The receiver closed; the recording is complete."""

    recording_path: Path | None
    exchanges: int
    # Every file of the session, in order, when it rolled over at the size limit.
    recording_parts: tuple[Path, ...] = ()


@dataclass(frozen=True, slots=True)
class Notice:
    """Something the developer should read (level: info, warning or error)."""

    level: str
    text: str
    topic: str = ""


@dataclass(frozen=True, slots=True)
class TunnelChanged:
    """The tunnel's state (with the reason): starting, up, local-only, failed; reconnecting (the agent died
    and we restart it); down (the agent runs, its session with the edge is down and it reconnects by itself).
    """

    state: str
    provider: str
    public_url: str | None
    callback_url: str
    reason: str = ""
    # What to do about a failed start (the provider's advice for this very failure), "" when nothing to do.
    advice: str = ""


def tunnel_down_text(provider: str, reason: str) -> str:
    """`TUNNEL DOWN: <the agent's reason>.` and what Meta sees meanwhile: the words of every front end."""
    code = " (ERR_NGROK_3200)" if provider == "ngrok" else ""
    reason = reason.rstrip(". ") or "the agent lost its session"
    return f"TUNNEL DOWN: {reason}. Meta's deliveries fail{code} until it is back; Meta retries for up to 7 days."


def routing_words(scope: str, target: str) -> str:
    """`phone number 1065...'s webhook`: what `--register SCOPE` points at this tunnel, in every front end's words."""
    what = {"phone": "phone number", "waba": "WABA", "app": "app"}.get(scope, scope)
    thing = "callback URL" if scope == "app" else "webhook"
    return f"{what} {target}'s {thing}" if target else f"the {what}'s {thing}"


STATE_FILE_SHOWN = ".wa-devtunnel/state.json"


def token_source_text(source: str, state_path: str = "", new: bool = False) -> str:
    """Where the verify token comes from, in every front end's words ("" for a source not known)."""
    where = _shown_path(state_path) if state_path else STATE_FILE_SHOWN
    kept = f"new, kept in {where}: the same at every start in this folder" if new else f"kept in {where}"
    return {
        "flag": "from --verify-token",
        "environment": "from WHATSAPP_VERIFY_TOKEN in the environment",
        "env-file": "from .env",
        "accounts": "from the accounts file",
        "project-state": kept,
        "generated": "temporary: this run only; wa-devtunnel token --write-env keeps one",
    }.get(source, "")


def _shown_path(path: str) -> str:
    """A path under the current directory as relative (`.wa-devtunnel/state.json`), any other as it is."""
    try:
        return str(Path(path).resolve().relative_to(Path.cwd().resolve()))
    except (ValueError, OSError):
        return path


@dataclass(frozen=True, slots=True)
class SelfTestFinished:
    """Our own handshake through the public URL: would Meta accept it?"""

    ok: bool
    callback_url: str
    elapsed_ms: float
    detail: str


@dataclass(frozen=True, slots=True)
class RecordingHealth:
    """Writing the recording failed (ok=False: Meta gets 503 until it works again) or recovered (ok=True).

    Persistent state, not a toast: front ends keep showing the failure until an ok=True event.
    """

    ok: bool
    path: Path | None
    reason: str = ""
    refused: int = 0


@dataclass(frozen=True, slots=True)
class RegistrationChanged:
    """`up --register`: where Meta's routing of this scope stands (persistent state, shown until the next one).

    `url` is the callback URL concerned; `previous` what the scope pointed to before ("" when nothing);
    `detail` the outcome in words (why it failed, what the undo did).
    """

    state: str
    scope: str
    url: str
    detail: str = ""
    previous: str = ""
    target: str = ""


@dataclass(frozen=True, slots=True)
class WebhookQuiet:
    """No webhook from Meta `seconds` after its handshake or a registration (quiet=True), until one comes (False).

    Persistent state: front ends show it until an event from Meta clears it. `since` says what started the
    wait ("handshake" or "registration"); `hint` what to check.
    """

    quiet: bool
    seconds: float
    callback_url: str
    since: str = "handshake"
    hint: str = ""


# The engine's own lines a front end that started it repeats in the terminal once its screen is gone
# (the outcome of undoing --register, then how the session ended).
EXIT_LINE_PREFIXES = ("Registration undone", "Registration NOT undone", "Stopped after")


EngineEvent = (
    ReceiverStarted
    | ExchangeRecorded
    | ForwardCompleted
    | ReceiverStopped
    | Notice
    | TunnelChanged
    | SelfTestFinished
    | RecordingHealth
    | RegistrationChanged
    | WebhookQuiet
)


class Subscription:
    """One front end's queue: bounded, dropping the oldest event rather than blocking the receiver.

    A front end on the engine's loop awaits `get_batch`. One on another thread passes `wake`: it is
    called (in the engine's thread) for the first event after the consumer `rearm`ed, and not again
    until the consumer has taken what came and rearms: one wake-up per burst, not per event.
    """

    def __init__(
        self, bus: EventBus, maxsize: int, wake: Callable[[], None] | None = None, exchanges: bool = True
    ) -> None:
        self._bus = bus
        self.exchanges = exchanges  # False: every event but ExchangeRecorded (EventBus.want_exchanges changes it)
        self._events: deque[EngineEvent] = deque()
        self._maxsize = maxsize
        self._wakeup = asyncio.Event()
        self._waiting = False  # a get() sleeps on _wakeup: only then does a delivery set it
        self._wake = wake
        # True from a wake-up until the consumer rearms: the engine posts nothing meanwhile.
        self._woken = False
        self.dropped = 0

    def deliver(self, event: EngineEvent) -> None:
        """Called by the bus; O(1) and never awaits."""
        events = self._events
        if len(events) >= self._maxsize:
            events.popleft()
            self.dropped += 1
        events.append(event)
        if self._wake is None:
            if self._waiting:
                self._waiting = False
                self._wakeup.set()
        elif not self._woken:
            self._woken = True
            self._wake()

    def wake_with(self, wake: Callable[[], None]) -> None:
        """From now on call `wake` for new events; called once now for those that came before it was ready."""
        self._woken = True
        self._wake = wake
        wake()

    def take(self, limit: int) -> list[EngineEvent]:
        """Up to `limit` events, oldest first, without waiting."""
        events = self._events
        return [events.popleft() for _ in range(min(limit, len(events)))]

    def rearm(self) -> bool:
        """The consumer caught up: the next event wakes it. False when one already waits (take it first)."""
        self._woken = False
        if self._events:  # delivered meanwhile, perhaps without a wake-up
            self._woken = True
            return False
        return True

    @property
    def pending(self) -> int:
        """Events delivered and not yet taken (a front end that keeps up has none)."""
        return len(self._events)

    async def get(self) -> EngineEvent:
        """Wait for the next event."""
        while not self._events:
            self._wakeup.clear()
            self._waiting = True
            await self._wakeup.wait()
        return self._events.popleft()

    async def get_batch(self, limit: int = 500) -> list[EngineEvent]:
        """Wait for at least one event, then take up to `limit` queued ones (coalescing)."""
        first = await self.get()
        batch = [first]
        while self._events and len(batch) < limit:
            batch.append(self._events.popleft())
        return batch

    def drain(self) -> list[EngineEvent]:
        """Take every queued event without waiting (used on shutdown)."""
        events = list(self._events)
        self._events.clear()
        return events

    def close(self) -> None:
        """Stop receiving events."""
        self._bus.unsubscribe(self)


class EventBus:
    """Fan-out of engine events to front ends; publish is synchronous and non-blocking."""

    def __init__(self) -> None:
        # Tuples, replaced (never mutated) on (un)subscribe: publish iterates them without copying.
        self._subscriptions: tuple[Subscription, ...] = ()
        self._exchange_subscriptions: tuple[Subscription, ...] = ()  # those that want exchanges too
        self._listeners: tuple[Callable[[EngineEvent], None], ...] = ()
        self._redact: Callable[[EngineEvent], EngineEvent] | None = None

    def set_redactor(self, redact: Callable[[EngineEvent], EngineEvent] | None) -> None:
        """Every event but an exchange passes through `redact` first: no secret reaches a front end."""
        self._redact = redact

    def add_listener(self, listener: Callable[[EngineEvent], None]) -> None:
        """For the engine's own observers (hints, registration), called inline: front ends `subscribe`."""
        self._listeners = (*self._listeners, listener)

    def subscribe(
        self, maxsize: int = 100_000, wake: Callable[[], None] | None = None, *, exchanges: bool = True
    ) -> Subscription:
        """Register a front end; it sees events published from now on (see Subscription for `wake`), exchanges
        only if `exchanges` (a front end that has nobody to show them to spares the receiver a delivery each)."""
        subscription = Subscription(self, maxsize, wake, exchanges)
        self._subscriptions = (*self._subscriptions, subscription)
        self._list_exchange_subscriptions()
        return subscription

    def want_exchanges(self, subscription: Subscription, wanted: bool) -> None:
        """From the next publish on, `subscription` gets exchanges (or no longer does)."""
        subscription.exchanges = wanted
        self._list_exchange_subscriptions()

    def _list_exchange_subscriptions(self) -> None:
        self._exchange_subscriptions = tuple(each for each in self._subscriptions if each.exchanges)

    def unsubscribe(self, subscription: Subscription) -> None:
        """Forget a subscriber (idempotent)."""
        if subscription in self._subscriptions:
            index = self._subscriptions.index(subscription)
            self._subscriptions = self._subscriptions[:index] + self._subscriptions[index + 1 :]
            self._list_exchange_subscriptions()

    def publish(self, event: EngineEvent) -> None:
        """Hand the event to every subscriber without waiting on any of them."""
        # Exchanges (the hot path) are request data, never engine text: one identity test, no redaction.
        if event.__class__ is ExchangeRecorded:
            subscriptions = self._exchange_subscriptions
        else:
            subscriptions = self._subscriptions
            if self._redact is not None:
                event = self._redact(event)
        for subscription in subscriptions:
            subscription.deliver(event)
        # Inline on the ack path: the engine's listeners read an exchange's own fields, never `record`.
        for listener in self._listeners:
            listener(event)
