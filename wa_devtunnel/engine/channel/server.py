"""The engine's side of the channel: streams events to every attached front end and runs their commands.

A watcher never slows the engine: events go out with non-blocking writes, and a watcher whose socket
buffer fills is dropped to catch-up mode (nothing more is written to it); once it has read what was
queued it gets one `gap` line naming the sequence numbers it missed, which it reads from the recording.
"""

from __future__ import annotations

import asyncio
import base64
import binascii
import contextlib
import hmac
import os
from collections import deque
from collections.abc import Callable
from typing import Any

from wa_devtunnel import __version__
from wa_devtunnel.engine.channel.address import ChannelAddress, remove_address
from wa_devtunnel.engine.channel.protocol import (
    MAX_HELLO_BYTES,
    MAX_LINE_BYTES,
    PROTOCOL_VERSION,
    ProtocolError,
    decode,
    encode,
    encode_event,
    event_message,
)
from wa_devtunnel.engine.events import (
    EngineEvent,
    ExchangeRecorded,
    Notice,
    RecordingHealth,
    RegistrationChanged,
    SelfTestFinished,
    Subscription,
    TunnelChanged,
    WebhookQuiet,
)
from wa_devtunnel.engine.exchange_view import VIEW_FIELDS
from wa_devtunnel.engine.replay.source import ReplayError
from wa_devtunnel.engine.service import WebhookService

HELLO_TIMEOUT_S = 5.0
# A watcher's queued bytes above HIGH: it is behind, and gets nothing more until they drop below LOW.
WRITE_HIGH_BYTES = 4 * 1024 * 1024
WRITE_LOW_BYTES = 512 * 1024
PUMP_BATCH = 500
# After each write, wait this long before the next: a burst goes out ~100 writes a second (each watcher
# is woken that often, not per exchange); a lone exchange still reaches a watcher at once.
COALESCE_S = 0.01
# A watcher attaching later still sees what the engine said lately (a failed tunnel, a local-only hint).
RECENT_NOTICES = 10
# The lasting state a watcher must know even if it missed the event that set it.
STATE_EVENTS = (TunnelChanged, SelfTestFinished, RecordingHealth, RegistrationChanged, WebhookQuiet)


class Watcher(asyncio.Protocol):
    """One attached front end: authenticates with the secret, then receives lines and sends commands."""

    def __init__(self, server: ChannelServer) -> None:
        self.server = server
        self.transport: asyncio.Transport | None = None
        self.authenticated = False
        # Whole records (bodies) with each exchange, or only its view (a TUI reads bodies from the recording).
        self.records = True
        self.behind = False
        self.missed_from: int | None = None
        self.missed_to: int | None = None
        self.missed = 0
        self._buffer = bytearray()
        self._hello_timer: asyncio.TimerHandle | None = None

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        assert isinstance(transport, asyncio.Transport)
        self.transport = transport
        transport.set_write_buffer_limits(high=WRITE_HIGH_BYTES, low=WRITE_LOW_BYTES)
        self._hello_timer = asyncio.get_running_loop().call_later(HELLO_TIMEOUT_S, self._refuse, "no hello in time")

    def data_received(self, data: bytes) -> None:
        self._buffer += data
        limit = MAX_LINE_BYTES if self.authenticated else MAX_HELLO_BYTES
        while self.transport is not None and not self.transport.is_closing():
            end = self._buffer.find(b"\n")
            if end < 0:
                if len(self._buffer) > limit:
                    self._refuse("line too long")
                return
            line = bytes(self._buffer[:end])
            del self._buffer[: end + 1]
            self._line(line)

    def _line(self, line: bytes) -> None:
        try:
            message = decode(line)
        except ProtocolError as exc:
            self._refuse(f"bad line: {exc}")
            return
        if not self.authenticated:
            self._hello(message)
        else:
            self.server.run_command(self, message)

    def _hello(self, message: dict[str, Any]) -> None:
        secret = message.get("secret")
        if message.get("hello") != PROTOCOL_VERSION or not isinstance(secret, str):
            self._refuse(f"expected a protocol {PROTOCOL_VERSION} hello with the engine's secret")
            return
        if not hmac.compare_digest(secret.encode(), self.server.address.secret.encode()):
            self.server.refused_clients += 1
            self._refuse("wrong secret")
            return
        if self._hello_timer is not None:
            self._hello_timer.cancel()
        self.authenticated = True
        # Without a recording there is nowhere else to read a body from: records are sent whatever was asked.
        self.records = message.get("records", True) is not False or self.server.service.recorder is None
        self.send(encode(self.server.welcome() | {"records": self.records}))
        self.server.attach(self)

    def _refuse(self, reason: str) -> None:
        if self.transport is not None and not self.transport.is_closing():
            self.transport.write(encode({"event": "refused", "reason": reason}))
            self.transport.close()

    def send(self, data: bytes) -> None:
        """Queue bytes without waiting (the transport buffers; pause_writing says when that is too much)."""
        if self.transport is not None and not self.transport.is_closing():
            self.transport.write(data)

    def missed_exchange(self, seq: int | None) -> None:
        """While behind: count what it will read from the recording instead."""
        self.missed += 1
        if seq is not None:
            if self.missed_from is None:
                self.missed_from = seq
            self.missed_to = seq

    def pause_writing(self) -> None:
        self.behind = True

    def resume_writing(self) -> None:
        self.behind = False
        if self.missed:
            self.send(encode(self.server.gap(self)))
            self.missed, self.missed_from, self.missed_to = 0, None, None

    def connection_lost(self, exc: Exception | None) -> None:
        if self._hello_timer is not None:
            self._hello_timer.cancel()
        self.server.detach(self)
        self.transport = None


class ChannelServer:
    """Serves the engine's channel on its loop; `request_stop` is how a front end's `stop` ends the engine."""

    def __init__(self, service: WebhookService, address: ChannelAddress, request_stop: Callable[[], None]) -> None:
        self.service = service
        self.address = address
        self.request_stop = request_stop
        self.watchers: list[Watcher] = []
        self.refused_clients = 0
        self._server: asyncio.AbstractServer | None = None
        # Subscribed from construction: the start-up notices (tunnel failed, local only) reach the first watcher.
        # Exchanges only while someone watches: until then the receiver's last seq is all the channel needs.
        self._subscription: Subscription = service.bus.subscribe(exchanges=False)
        self._recent_notices: deque[Notice] = deque(maxlen=RECENT_NOTICES)
        self._pump: asyncio.Task[None] | None = None
        self._commands: set[asyncio.Task[None]] = set()
        self._state: dict[type, EngineEvent] = {}
        self.last_seq = 0

    async def start(self) -> None:
        """Listen (the socket made private before anyone can connect) and start streaming the bus."""
        self._pump = asyncio.ensure_future(self._stream())
        previous = os.umask(0o177)  # the socket file is created 0600, inside a 0700 directory
        try:
            self._server = await asyncio.get_running_loop().create_unix_server(
                lambda: Watcher(self), str(self.address.socket)
            )
        finally:
            os.umask(previous)

    async def _stream(self) -> None:
        """One subscription for every watcher: each event is encoded once, whoever listens."""
        while True:
            batch = await self._subscription.get_batch(PUMP_BATCH)
            self.publish(batch)
            # Let a burst gather: one write of many lines, not a write per exchange; with no watcher, one turn
            # of this task per COALESCE_S instead of one per loop turn of the receiver (its seq and state only).
            await asyncio.sleep(COALESCE_S)

    def publish(self, batch: list[EngineEvent]) -> None:
        """Send a batch of events to every watcher that keeps up (one write each); note what the others miss."""
        watchers = self.watchers
        pending: list[list[bytes]] = [[] for _ in watchers]
        for event in batch:
            exchange = event.__class__ is ExchangeRecorded
            seq: int | None = None
            if exchange:
                seq = self.last_seq = event.seq  # type: ignore[union-attr]  # never `line` or `record`: both decode
            elif isinstance(event, STATE_EVENTS):
                self._state[type(event)] = event
            elif event.__class__ is Notice:
                self._recent_notices.append(event)  # type: ignore[arg-type]
            if not watchers:
                continue
            encoded: dict[bool, bytes] = {}  # with and without the record, each made once if anyone wants it
            for watcher, lines in zip(watchers, pending, strict=True):
                if watcher.behind:
                    if exchange:
                        watcher.missed_exchange(seq)
                    continue
                form = watcher.records or not exchange
                line = encoded.get(form)
                if line is None:
                    try:
                        line = encoded[form] = encode_event(event, with_record=form)
                    except (TypeError, ValueError):  # never seen; the recording still has it
                        continue
                lines.append(line)
        for watcher, lines in zip(watchers, pending, strict=True):
            if lines:
                watcher.send(b"".join(lines))

    def welcome(self) -> dict[str, Any]:
        """What a front end needs to draw itself: the start values, the lasting state, where the recording is."""
        service, settings = self.service, self.service.settings
        started = service.started
        return {
            "event": "welcome",
            "protocol": PROTOCOL_VERSION,
            "version": __version__,
            "pid": os.getpid(),
            "tunnel": service.tunnel.name,
            "accounts": [account.name for account in settings.accounts],
            "recording_parts": self._recording_parts(),
            "last_seq": self.last_seq if self.watchers else self.service.last_seq,
            "view_fields": list(VIEW_FIELDS),  # the order of an exchange's "view" values
            "exchanges": service.exchanges,
            "started": event_message(started) if started is not None else None,
            "state": [event_message(event) for event in (*self._state.values(), *self._recent_notices)],
        }

    def _recording_parts(self) -> list[str]:
        """Every file of the session so far (where a front end reads what the stream did not bring)."""
        recorder = self.service.recorder
        return [str(path) for path in recorder.paths] if recorder is not None else []

    def gap(self, watcher: Watcher) -> dict[str, Any]:
        """What a watcher that fell behind missed, and the state it must know now."""
        return {
            "event": "gap",
            "missed": watcher.missed,
            "from_seq": watcher.missed_from,
            "to_seq": watcher.missed_to,
            "recording_parts": self._recording_parts(),
            "state": [event_message(event) for event in self._state.values()],
        }

    def attach(self, watcher: Watcher) -> None:
        """A watcher that said hello gets events from the next batch on (its welcome's last_seq just before)."""
        if not self.watchers:  # exchanges stream from now on; the ones before are the recording's
            self.last_seq = self.service.last_seq
            self.service.bus.want_exchanges(self._subscription, True)
        self.watchers = [*self.watchers, watcher]

    def detach(self, watcher: Watcher) -> None:
        """A watcher gone (detached, or its process ended)."""
        self.watchers = [w for w in self.watchers if w is not watcher]
        if not self.watchers:
            self.service.bus.want_exchanges(self._subscription, False)

    # Commands ------------------------------------------------------------------------------------

    def run_command(self, watcher: Watcher, message: dict[str, Any]) -> None:
        """Each command runs as its own task and answers with a `result` line carrying its id."""
        task = asyncio.ensure_future(self._command(watcher, message))
        self._commands.add(task)
        task.add_done_callback(self._commands.discard)

    async def _command(self, watcher: Watcher, message: dict[str, Any]) -> None:
        command, request_id = message.get("command"), message.get("id")
        reply: dict[str, Any] = {"event": "result", "id": request_id, "ok": True}
        try:
            if command == "send_sample":
                reply["status"] = await self.service.send_sample()
            elif command == "replay":
                record = message.get("record")
                if not isinstance(record, dict):
                    raise ReplayError("replay needs the recorded exchange")
                edited = message.get("edited_body_b64")
                body = base64.b64decode(edited, validate=True) if isinstance(edited, str) else None
                result = await self.service.replay_exchange(record, body)
                reply["status"] = result.relay_status
            elif command == "stop":
                self.request_stop()
            elif command == "ping":
                pass
            else:
                raise ProtocolError(f"unknown command {command!r}")
        except ReplayError as exc:  # nothing to send (no secret, not a replayable record): the user's to fix
            reply = {"event": "result", "id": request_id, "ok": False, "error": str(exc), "kind": "replay"}
        except (ProtocolError, binascii.Error) as exc:
            reply = {"event": "result", "id": request_id, "ok": False, "error": str(exc), "kind": "protocol"}
        except Exception as exc:  # the engine never dies of a front end's request: it says why instead
            reply = {"event": "result", "id": request_id, "ok": False, "error": f"{type(exc).__name__}: {exc}"}
        watcher.send(encode(reply))

    async def stop(self, remove_directory: bool = True) -> None:
        """Say goodbye to every watcher (after the engine's last events), stop listening, remove the socket.

        The private directory goes too, unless a parent made it (it holds the parent's log of this engine).
        """
        if self._server is not None:
            self._server.close()
        self.publish(self._subscription.drain())
        if self._pump is not None:
            self._pump.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._pump
        for task in list(self._commands):
            task.cancel()
        for watcher in self.watchers:
            watcher.send(encode({"event": "bye"}))
            if watcher.transport is not None:
                watcher.transport.close()
        self._subscription.close()
        if remove_directory:
            remove_address(self.address)
        else:
            with contextlib.suppress(OSError):
                self.address.socket.unlink()
