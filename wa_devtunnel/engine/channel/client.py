"""A front end's side of the channel: attach to an engine, receive its events, send it commands.

The stream is the fast path; the recording is the source of truth. History (exchanges from before a
front end attached) and anything a slow front end missed (a `gap` line) are read from the recording
files, so every front end ends up with every exchange without ever slowing the engine.
"""

from __future__ import annotations

import asyncio
import base64
import contextlib
import itertools
import socket
import time
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from wa_devtunnel.engine.channel.address import ChannelAddress
from wa_devtunnel.engine.channel.protocol import (
    MAX_LINE_BYTES,
    PROTOCOL_VERSION,
    ProtocolError,
    decode,
    encode,
    event_from_message,
)
from wa_devtunnel.engine.events import (
    EngineEvent,
    ExchangeRecorded,
    ForwardCompleted,
    Notice,
    ReceiverStarted,
)
from wa_devtunnel.engine.exchange_view import (
    VIEW_FIELDS,
    ExchangeView,
    view_from_record,
    view_from_values,
    view_values,
)
from wa_devtunnel.engine.recording import records_with_offsets
from wa_devtunnel.engine.replay.source import ReplayError

READ_CHUNK = 256 * 1024
HISTORY_BATCH = 1000


class ChannelError(OSError):
    """The engine cannot be reached or refused us (no engine, a stale address, a wrong secret)."""


@dataclass(frozen=True, slots=True)
class EngineLost:
    """The channel closed: `clean` when the engine said goodbye (it stopped), else it died or vanished."""

    clean: bool
    reason: str = ""


@dataclass(frozen=True, slots=True)
class Welcome:
    """What the engine told a front end on attaching."""

    started: ReceiverStarted
    pid: int
    version: str
    tunnel: str
    accounts: tuple[str, ...]
    recording_parts: tuple[Path, ...]
    last_seq: int
    state: tuple[EngineEvent, ...] = field(default=())
    # Whether exchanges come with their whole records (else views only; bodies are in the recording).
    records: bool = True
    # The order of an exchange's view values on the wire (this version's unless the engine is another).
    view_fields: tuple[str, ...] = VIEW_FIELDS

    @classmethod
    def from_message(cls, message: Mapping[str, Any]) -> Welcome:
        """Parse the welcome line (ProtocolError when it is not one this version understands)."""
        if message.get("protocol") != PROTOCOL_VERSION:
            raise ProtocolError(
                f"the engine speaks protocol {message.get('protocol')!r}, this front end {PROTOCOL_VERSION}: "
                "run the same wa-devtunnel version for both"
            )
        started = event_from_message(message.get("started") or {})
        if not isinstance(started, ReceiverStarted):
            raise ProtocolError("the engine has not started its receiver")
        state = tuple(e for e in (event_from_message(m) for m in message.get("state") or ()) if e is not None)
        return cls(
            started=started,
            pid=int(message.get("pid", 0)),
            version=str(message.get("version", "")),
            tunnel=str(message.get("tunnel", "none")),
            accounts=tuple(str(name) for name in message.get("accounts") or ()),
            recording_parts=tuple(Path(p) for p in message.get("recording_parts") or ()),
            last_seq=int(message.get("last_seq", 0)),
            state=state,
            records=message.get("records", True) is not False,
            view_fields=_view_fields(message.get("view_fields")),
        )


def _view_fields(names: Any) -> tuple[str, ...]:
    """The engine's view field names; ours (the same object: the fast path) when they are the same."""
    if not isinstance(names, list) or tuple(names) == VIEW_FIELDS:
        return VIEW_FIELDS
    return tuple(str(name) for name in names)


def connect(
    address: ChannelAddress, timeout: float = 5.0, records: bool = True
) -> tuple[socket.socket, Welcome, bytes]:
    """Blocking attach: connect, send the secret, read the welcome; the socket, the welcome and bytes read past it.

    `records=False`: exchanges come as their views only (a TUI reads a body from the recording when shown).
    """
    sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    sock.settimeout(timeout)
    try:
        try:
            sock.connect(str(address.socket))
        except OSError as exc:
            raise ChannelError(exc.errno, f"no engine listens at {address.socket} ({exc.strerror or exc})") from None
        sock.sendall(encode({"hello": PROTOCOL_VERSION, "secret": address.secret, "records": records}))
        data = b""
        deadline = time.monotonic() + timeout
        while b"\n" not in data:
            if time.monotonic() > deadline:
                raise ChannelError(0, "the engine did not answer in time")
            chunk = sock.recv(READ_CHUNK)
            if not chunk:
                raise ChannelError(0, "the engine closed the channel before welcoming us")
            data += chunk
            if len(data) > MAX_LINE_BYTES:
                raise ChannelError(0, "the engine's welcome is too long")
        line, _, rest = data.partition(b"\n")
        message = decode(line)
        if message.get("event") == "refused":
            raise ChannelError(0, f"the engine refused us: {message.get('reason', '')}")
        welcome = Welcome.from_message(message)
    except (OSError, ProtocolError, ValueError) as exc:
        sock.close()
        if isinstance(exc, ChannelError):
            raise
        raise ChannelError(0, f"cannot attach to the engine: {exc}") from None
    sock.settimeout(None)
    sock.setblocking(False)
    return sock, welcome, rest


def recorded_events(
    parts: tuple[Path, ...], first_seq: int | None, last_seq: int | None, records: bool = True
) -> Iterator[EngineEvent | ExchangeView]:
    """The recording's exchanges (and late backend answers) with first_seq <= seq <= last_seq, in order.

    Without `records`, an exchange is only its view (as the live stream sends it), so catching up on
    thousands of exchanges never holds thousands of bodies.
    """
    for path in parts:
        try:
            for offset, record in records_with_offsets(path):
                seq = record.get("seq")
                if not isinstance(seq, int):
                    continue
                if first_seq is not None and seq < first_seq:
                    continue
                if last_seq is not None and seq > last_seq:
                    return
                if record.get("kind") == "forward_update" and isinstance(record.get("forward"), dict):
                    yield ForwardCompleted(str(record.get("ref", "")), seq, record["forward"])
                elif record.get("kind") != "forward_update":
                    view = view_from_record(record, offset, path)
                    # Kept as the live stream's views are (shared time, shared milliseconds).
                    yield ExchangeRecorded(view, record) if records else view_from_values(view_values(view))
        except OSError:
            continue  # a part removed meanwhile: what is left still shows


def _batches(events: Iterator[EngineEvent], size: int) -> Iterator[list[EngineEvent]]:
    while batch := list(itertools.islice(events, size)):
        yield batch


# What a front end is handed: engine events, an exchange as just its view (no record asked for), the end.
FrontEndEvent = EngineEvent | ExchangeView | EngineLost
Deliver = Callable[[list[FrontEndEvent]], None]


class EngineClient:
    """An attached front end's connection, driven by `run` on the front end's own loop."""

    def __init__(self, sock: socket.socket, welcome: Welcome, leftover: bytes = b"") -> None:
        self.welcome = welcome
        self.recording_parts = welcome.recording_parts
        self._sock = sock
        self._leftover = leftover
        self._writer: asyncio.StreamWriter | None = None
        self._pending: dict[int, asyncio.Future[dict[str, Any]]] = {}
        self._ids = itertools.count(1)
        self.gaps = 0
        self.caught_up = 0
        self._connected: asyncio.Event | None = None  # set once `run` has the stream (commands wait for it)
        self._closed = False

    @classmethod
    def attach(cls, address: ChannelAddress, timeout: float = 5.0, records: bool = True) -> EngineClient:
        """Blocking: connect and read the welcome (before a UI exists, errors print plainly)."""
        return cls(*connect(address, timeout, records))

    async def run(self, deliver: Deliver, *, history: bool = False) -> None:
        """Deliver batches of events until the channel closes, then an EngineLost; history first when asked."""
        reader, self._writer = await asyncio.open_unix_connection(sock=self._sock, limit=MAX_LINE_BYTES)
        self._connection_event().set()
        if history and self.welcome.last_seq:
            await self._from_recording(deliver, None, self.welcome.last_seq)
        buffer = bytearray(self._leftover)
        clean, reason = False, "the engine closed the channel"
        try:
            while True:
                end = buffer.rfind(b"\n")
                if end >= 0:
                    lines = bytes(buffer[:end]).split(b"\n")
                    del buffer[: end + 1]
                    if await self._lines(lines, deliver):
                        clean = True
                        break
                chunk = await reader.read(READ_CHUNK)
                if not chunk:
                    break
                buffer += chunk
        except (ConnectionError, OSError) as exc:
            reason = f"the channel broke: {exc}"
        finally:
            for future in self._pending.values():
                if not future.done():
                    future.set_exception(ChannelError(0, "the engine is gone"))
            self._pending.clear()
        deliver([EngineLost(clean, "the engine stopped" if clean else reason)])

    async def _lines(self, lines: list[bytes], deliver: Deliver) -> bool:
        """Decode and deliver one read's lines; True at the engine's goodbye."""
        events: list[Any] = []
        view_fields = self.welcome.view_fields
        for raw in lines:
            try:
                message = decode(raw)
            except ProtocolError:
                continue
            name = message.get("event")
            if name == "result":
                future = self._pending.pop(int(message.get("id") or 0), None)
                if future is not None and not future.done():
                    future.set_result(message)
            elif name == "gap":
                if events:
                    deliver(events)
                    events = []
                await self._catch_up(message, deliver)
            elif name == "bye":
                if events:
                    deliver(events)
                return True
            else:
                try:
                    event = event_from_message(message, view_fields)
                except ProtocolError:
                    continue  # a damaged line costs that line, never the stream (the recording has it)
                if event is not None:
                    events.append(event)
        if events:
            deliver(events)
        return False

    async def _catch_up(self, gap: Mapping[str, Any], deliver: Deliver) -> None:
        """We fell behind: read what we missed from the recording, then go on with the stream."""
        self.gaps += 1
        parts = tuple(Path(p) for p in gap.get("recording_parts") or ())
        if parts:
            self.recording_parts = parts
        first, last = gap.get("from_seq"), gap.get("to_seq")
        missed = int(gap.get("missed") or 0)
        if parts and isinstance(first, int) and isinstance(last, int):
            self.caught_up += await self._from_recording(deliver, first, last)
        else:
            text = f"{missed} exchange(s) went by while this view was behind, and the engine is not recording them."
            deliver([Notice("warning", text, topic="catch-up")])
        state = [e for e in (event_from_message(m) for m in gap.get("state") or ()) if e is not None]
        if state:
            deliver(state)

    async def _from_recording(self, deliver: Deliver, first: int | None, last: int) -> int:
        """Read in a thread, a batch at a time, handing each over before reading on (bounded memory)."""
        batches = _batches(recorded_events(self.recording_parts, first, last, self.welcome.records), HISTORY_BATCH)
        count = 0
        while batch := await asyncio.to_thread(next, batches, []):
            deliver(batch)
            count += len(batch)
        return count

    # Commands --------------------------------------------------------------------------------------

    def _connection_event(self) -> asyncio.Event:
        if self._connected is None:
            self._connected = asyncio.Event()
        return self._connected

    async def request(self, command: str, **fields: Any) -> dict[str, Any]:
        """Send one command and wait for its result line (a command sent before `run` started waits for it)."""
        if self._writer is None and not self._closed:
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._connection_event().wait(), 5.0)
        if self._writer is None or self._writer.is_closing():
            raise ChannelError(0, "not attached to an engine")
        request_id = next(self._ids)
        future: asyncio.Future[dict[str, Any]] = asyncio.get_running_loop().create_future()
        self._pending[request_id] = future
        self._writer.write(encode({"command": command, "id": request_id, **fields}))
        await self._writer.drain()
        reply = await future
        if not reply.get("ok"):
            if reply.get("kind") == "replay":
                raise ReplayError(str(reply.get("error", "")))
            if reply.get("kind") == "protocol":
                raise ChannelError(0, f"the engine refused the command: {reply.get('error', '')}")
            raise ChannelError(0, f"the engine failed: {reply.get('error', '')}")
        return reply

    async def send_sample(self) -> int:
        """POST a signed sample to the engine's receiver; the HTTP status it answered."""
        return int((await self.request("send_sample"))["status"])

    async def replay(self, record: Mapping[str, Any], edited_body: bytes | None = None) -> int:
        """Replay a recorded exchange through the engine (an edit is re-signed); the status relayed."""
        fields: dict[str, Any] = {"record": dict(record)}
        if edited_body is not None:
            fields["edited_body_b64"] = base64.b64encode(edited_body).decode("ascii")
        return int((await self.request("replay", **fields))["status"])

    async def stop_engine(self) -> None:
        """Ask the engine to stop (tunnel, receiver, recording), as Ctrl+C in its own terminal would."""
        with contextlib.suppress(ChannelError, ConnectionError):
            await self.request("stop")

    def close(self) -> None:
        """Detach (the engine goes on); safe to call twice, and after the front end's loop has ended."""
        self._closed = True
        if self._writer is not None:
            with contextlib.suppress(RuntimeError):  # the loop is closed: the socket below still closes
                self._writer.close()
        self._sock.close()
