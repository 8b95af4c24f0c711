"""The engine's channel: typed events out to several front ends, commands in, private to the user.

The engine and the channel here are the production ones, hosted on a thread (tests/support/engine_host.py);
tests/tui/test_engine_process.py covers the engine as a child process.
"""

from __future__ import annotations

import asyncio
import os
import socket
import stat
from collections.abc import Iterator
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import aiohttp
import pytest

from tests.support.constants import APP_SECRET
from tests.support.engine_host import HostedEngine, hosted_engine
from tests.support.inspector import inspector_settings
from tests.support.meta_client import MetaLikeSender
from wa_devtunnel.engine.channel import server as channel_server
from wa_devtunnel.engine.channel.address import ChannelAddress
from wa_devtunnel.engine.channel.client import ChannelError, EngineClient, EngineLost, Welcome
from wa_devtunnel.engine.channel.protocol import (
    PROTOCOL_VERSION,
    ProtocolError,
    decode,
    encode,
    encode_event,
    event_from_message,
)
from wa_devtunnel.engine.channel.server import ChannelServer
from wa_devtunnel.engine.events import (
    EventBus,
    ExchangeRecorded,
    ForwardCompleted,
    Notice,
    ReceiverStarted,
    ReceiverStopped,
    RecordingHealth,
    RegistrationChanged,
    SelfTestFinished,
    TunnelChanged,
    WebhookQuiet,
)
from wa_devtunnel.engine.instance import instance_path, read_instance
from wa_devtunnel.engine.replay.source import ReplayError
from wa_devtunnel.rules.samples import payloads as samples

WAIT_S = 10.0


@pytest.fixture
def hosted(tmp_path: Path) -> Iterator[HostedEngine]:
    with hosted_engine(inspector_settings(tmp_path)) as engine:
        yield engine


class Collected:
    """What one front end received, and the task reading its channel."""

    def __init__(self, client: EngineClient, history: bool = False) -> None:
        self.client = client
        self.events: list[Any] = []
        self.task = asyncio.ensure_future(client.run(self.events.extend, history=history))

    def exchanges(self) -> list[ExchangeRecorded]:
        return [e for e in self.events if isinstance(e, ExchangeRecorded)]

    async def until(self, count: int) -> list[ExchangeRecorded]:
        for _ in range(int(WAIT_S / 0.02)):
            if len(self.exchanges()) >= count:
                return self.exchanges()
            await asyncio.sleep(0.02)
        raise AssertionError(f"expected {count} exchanges, got {len(self.exchanges())}")

    async def close(self) -> None:
        self.client.close()
        await asyncio.wait_for(self.task, WAIT_S)


def attach_slowly(engine: HostedEngine, monkeypatch: pytest.MonkeyPatch) -> EngineClient:
    """A watcher attached but not reading yet, with buffers small enough for a few hundred deliveries to fill."""
    monkeypatch.setattr(channel_server, "WRITE_HIGH_BYTES", 16 * 1024)
    monkeypatch.setattr(channel_server, "WRITE_LOW_BYTES", 4 * 1024)
    client = engine.attach()
    client._sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
    return client


async def deliver_texts(url: str, count: int, concurrency: int = 16) -> list[int]:
    """`count` signed text messages as Meta sends them; every status."""
    statuses: list[int] = []
    bodies = [samples.text_message_payload(text=f"hello {n}", message_id=f"wamid.ch{n:05d}") for n in range(count)]
    async with aiohttp.ClientSession() as session:
        sender = MetaLikeSender(session, url, APP_SECRET)

        async def one(body: bytes) -> None:
            statuses.extend(await sender.deliver(body, attempts=1))

        for start in range(0, count, concurrency):
            await asyncio.gather(*(one(body) for body in bodies[start : start + concurrency]))
    return statuses


# The wire format ----------------------------------------------------------------------------------


def test_every_engine_event_reads_back_as_the_same_typed_event(tmp_path: Path) -> None:
    part = tmp_path / "20261207-080000.jsonl"
    record = {"id": "abc", "seq": 7, "kind": "event", "request": {"body": "caf\u00e9 \U0001f600 \x1b[2J"}}
    events = [
        ReceiverStarted("https://x.ngrok.app/w", "http://127.0.0.1:1/w", "tok", True, part, 1, True, "up"),
        ForwardCompleted("abc", 7, {"status": 200, "error": None}),
        ReceiverStopped(part, 3, (part, tmp_path / "b.jsonl")),
        Notice("error", "Tunnel failed: [/x] \u202e", "tunnel"),
        TunnelChanged("reconnecting", "ngrok", None, "http://127.0.0.1:1/w", "ERR_NGROK_3200"),
        SelfTestFinished(False, "https://x/w", 12.5, "502"),
        RecordingHealth(False, part, "disk full", 2),
        ReceiverStarted(
            "http://127.0.0.1:1/w",
            "http://127.0.0.1:1/w",
            "tok",
            False,
            None,
            1,
            tunnel_state="failed",
            verify_token_source="project-state",
            verify_token_new=True,
            state_path=str(tmp_path / ".wa-devtunnel" / "state.json"),
            accounts=(("shop", "shop-token"), ("support", "support-token")),
            accounts_file=str(tmp_path / "wa-devtunnel.toml"),
            tunnel_reason="could not download the ngrok agent: offline",
            tunnel_advice="set PYNGROK_NGROK_PATH=/path/to/ngrok in .env",
        ),
        TunnelChanged("failed", "ngrok", None, "http://127.0.0.1:1/w", "no agent\n  fix it", "fix it"),
        RegistrationChanged("registered", "phone", "https://x/w", "Meta verified it", "", "106540352242922"),
        RegistrationChanged("undo-failed", "app", "https://x/w", "timed out [/x]", "https://prod/w", "123"),
        WebhookQuiet(True, 120.0, "https://x/w", "handshake", "No webhook from Meta in 120 s"),
        WebhookQuiet(False, 120.0, "https://x/w", "registration"),
    ]
    for event in events:
        assert event_from_message(decode(encode_event(event))) == event
    started = event_from_message(decode(encode_event(events[7])))
    assert isinstance(started, ReceiverStarted) and isinstance(started.accounts[0], tuple), "pairs, not lists"
    with pytest.raises(ProtocolError, match="accounts"):
        event_from_message({"event": "started", "callback_url": "u", "accounts": [3]})
    exchange = event_from_message(decode(encode_event(ExchangeRecorded(None, record, 120, part))))
    assert isinstance(exchange, ExchangeRecorded)
    assert (exchange.record, exchange.offset, exchange.path) == (record, 120, part)


def test_a_lone_surrogate_from_a_hostile_header_still_crosses_the_channel() -> None:
    record = {"id": "x", "seq": 1, "kind": "other", "request": {"path": "/\udce9"}}
    back = event_from_message(decode(encode_event(ExchangeRecorded(None, record))))
    assert isinstance(back, ExchangeRecorded) and back.record == record


def test_unknown_events_are_skipped_and_damaged_lines_are_errors() -> None:
    assert event_from_message({"event": "from-a-newer-engine", "x": 1}) is None
    with pytest.raises(ProtocolError):
        decode(b"[1, 2]")
    with pytest.raises(ProtocolError):
        decode(b"{not json")


def test_a_front_end_refuses_an_engine_of_another_protocol_version() -> None:
    with pytest.raises(ProtocolError, match="same wa-devtunnel version"):
        Welcome.from_message({"event": "welcome", "protocol": PROTOCOL_VERSION + 1})


# Private to the user ------------------------------------------------------------------------------


def test_the_channel_and_its_secret_are_private_to_the_user(hosted: HostedEngine, tmp_path: Path) -> None:
    address = hosted.channel.address
    assert stat.S_IMODE(os.stat(address.directory).st_mode) == 0o700
    assert stat.S_IMODE(os.stat(address.socket).st_mode) & 0o077 == 0
    instance = read_instance(tmp_path / "rec")
    assert instance is not None
    assert (instance.channel, instance.channel_secret) == (str(address.socket), address.secret)
    assert stat.S_IMODE(os.stat(instance_path(tmp_path / "rec")).st_mode) == 0o600
    assert len(address.secret) >= 40  # 256 bits, url-safe


def test_a_client_without_the_secret_is_refused(hosted: HostedEngine) -> None:
    wrong = ChannelAddress(hosted.channel.address.socket, "not-the-secret")
    with pytest.raises(ChannelError, match="refused us: wrong secret"):
        EngineClient.attach(wrong)
    assert hosted.channel.server.refused_clients == 1
    assert hosted.channel.server.watchers == []


def _raw_exchange(address: ChannelAddress, send: bytes) -> bytes:
    with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as sock:
        sock.settimeout(WAIT_S)
        sock.connect(str(address.socket))
        if send:
            sock.sendall(send)
        received = b""
        while chunk := sock.recv(65536):
            received += chunk
        return received


def test_anything_but_a_hello_with_the_secret_gets_nothing_and_is_closed(
    hosted: HostedEngine, monkeypatch: pytest.MonkeyPatch
) -> None:
    address = hosted.channel.address
    for attempt in (
        encode({"command": "stop", "id": 1}),  # a command before the hello
        encode({"hello": PROTOCOL_VERSION}),  # no secret
        b"x" * 10_000,  # no line at all
        b"\x00\xff garbage\n",
    ):
        answer = _raw_exchange(address, attempt)
        assert b'"refused"' in answer and b"welcome" not in answer and b"exchange" not in answer
    monkeypatch.setattr(channel_server, "HELLO_TIMEOUT_S", 0.2)
    assert b"no hello in time" in _raw_exchange(address, b"")
    assert hosted.engine.service.started is not None  # the engine never stopped for any of them


# Several front ends ---------------------------------------------------------------------------------


async def test_two_watchers_see_every_exchange_and_detaching_leaves_the_engine_running(
    hosted: HostedEngine,
) -> None:
    first, second = Collected(hosted.attach()), Collected(hosted.attach())
    assert await deliver_texts(hosted.started.callback_url, 5) == [200] * 5
    seen = [[e.record["seq"] for e in await watcher.until(5)] for watcher in (first, second)]
    assert seen[0] == seen[1] and sorted(seen[0]) == seen[0] and len(set(seen[0])) == 5
    await first.close()
    assert isinstance(first.events[-1], EngineLost)  # this front end detached; the engine goes on
    assert await second.client.send_sample() == 200  # commands from a watcher reach the engine
    assert await deliver_texts(hosted.started.callback_url, 1) == [200]
    assert len(await second.until(7)) == 7
    await second.close()


async def test_a_watcher_attaching_later_gets_the_session_so_far_from_the_recording(hosted: HostedEngine) -> None:
    assert await deliver_texts(hosted.started.callback_url, 4) == [200] * 4
    await asyncio.sleep(0.2)  # the engine has streamed them (to nobody)
    late = Collected(hosted.attach(), history=True)
    assert late.client.welcome.last_seq == 4
    assert await deliver_texts(hosted.started.callback_url, 1) == [200]
    assert [e.record["seq"] for e in await late.until(5)] == [1, 2, 3, 4, 5]
    history = late.exchanges()[0]
    assert history.offset == 0 and history.path == hosted.started.recording_path
    await late.close()


async def test_a_watcher_attaching_later_gets_the_lasting_states_in_its_welcome(hosted: HostedEngine) -> None:
    """A TUI restarted or a `watch` started after --register or a quiet spell still shows them."""
    registered = RegistrationChanged("registered", "phone", "https://x/w", "Meta verified it", "", "1065")
    quiet = WebhookQuiet(True, 120.0, "https://x/w", "handshake", "No webhook from Meta in 120 s")

    async def publish() -> None:
        hosted.engine.service.bus.publish(registered)
        hosted.engine.service.bus.publish(quiet)

    hosted.engine.submit(publish()).result(WAIT_S)
    for _ in range(int(WAIT_S / 0.02)):  # the channel's pump takes them from the bus
        if quiet in hosted.channel.server._state.values():
            break
        await asyncio.sleep(0.02)
    client = hosted.attach(records=False)
    try:
        assert registered in client.welcome.state and quiet in client.welcome.state
    finally:
        client.close()


async def test_a_slow_watcher_never_slows_the_acks_and_catches_up_from_the_recording(
    hosted: HostedEngine, monkeypatch: pytest.MonkeyPatch
) -> None:
    slow_client = attach_slowly(hosted, monkeypatch)
    fast = Collected(hosted.attach())
    count = 400
    assert await deliver_texts(hosted.started.callback_url, count) == [200] * count
    assert len(await fast.until(count)) == count
    slow_watcher = next(w for w in hosted.channel.server.watchers if w.missed)
    assert slow_watcher.behind, "the slow watcher was dropped to catch-up mode"
    assert slow_watcher.missed > 0, "what it could not take was counted, not queued"

    slow = Collected(slow_client)  # it starts reading: what it missed comes from the recording
    got = await slow.until(count)
    assert [e.record["seq"] for e in got] == list(range(1, count + 1)), "every exchange once, in order"
    # The client counts what it caught up once its read of the recording has ended (one more thread hop
    # after the last batch was handed over): wait for that, not for a time.
    for _ in range(int(WAIT_S / 0.01)):
        if slow_client.caught_up:
            break
        await asyncio.sleep(0.01)
    assert slow_client.gaps >= 1 and slow_client.caught_up > 0
    await slow.close()
    await fast.close()


async def test_a_watcher_that_falls_behind_an_engine_not_recording_is_told_what_it_missed(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    with hosted_engine(inspector_settings(tmp_path, no_record=True)) as engine:
        slow_client = attach_slowly(engine, monkeypatch)
        assert await deliver_texts(engine.started.callback_url, 300) == [200] * 300
        slow = Collected(slow_client)
        for _ in range(int(WAIT_S / 0.02)):
            if any(isinstance(e, Notice) and e.topic == "catch-up" for e in slow.events):
                break
            await asyncio.sleep(0.02)
        notices = [e.text for e in slow.events if isinstance(e, Notice) and e.topic == "catch-up"]
        assert notices and "not recording" in notices[0]
        await slow.close()


# Commands -------------------------------------------------------------------------------------------


async def test_commands_answer_with_their_result_and_bad_ones_are_refused_not_fatal(hosted: HostedEngine) -> None:
    watcher = Collected(hosted.attach())
    assert await watcher.client.send_sample() == 200
    [sample] = await watcher.until(1)
    assert sample.record["origin"] == "sample"
    assert await watcher.client.replay(sample.record) == 200
    assert await watcher.client.replay(sample.record, b'{"object":"whatsapp_business_account","entry":[]}') == 200
    replays = await watcher.until(3)
    assert [e.record["origin"] for e in replays] == ["sample", "replay", "replay"]
    with pytest.raises(ChannelError, match="unknown command"):
        await watcher.client.request("format-the-disk")
    with pytest.raises(ReplayError, match="recorded exchange"):
        await watcher.client.request("replay", record="not a record")
    scanner = {**sample.record, "kind": "other"}  # a scanner's 404: nothing a backend should get again
    with pytest.raises(ReplayError, match="only events and handshakes"):
        await watcher.client.replay(scanner)
    assert await watcher.client.send_sample() == 200  # still serving
    await watcher.close()


async def test_stop_from_a_watcher_ends_the_engine_and_every_watcher_hears_goodbye(tmp_path: Path) -> None:
    stopped = asyncio.Event()
    with hosted_engine(inspector_settings(tmp_path)) as engine:
        loop = asyncio.get_running_loop()
        engine.channel.server.request_stop = lambda: loop.call_soon_threadsafe(stopped.set)
        watcher, other = Collected(engine.attach()), Collected(engine.attach())
        await watcher.client.stop_engine()
        await asyncio.wait_for(stopped.wait(), WAIT_S)
        engine.engine.submit(engine.engine.service.stop()).result(WAIT_S)
        engine.engine.submit(engine.channel.stop()).result(WAIT_S)
        for front_end in (watcher, other):
            await asyncio.wait_for(front_end.task, WAIT_S)
            assert isinstance(front_end.events[-2], ReceiverStopped)
            assert front_end.events[-1] == EngineLost(True, "the engine stopped")
    assert not engine.channel.address.directory.exists()


async def test_a_damaged_line_costs_that_line_not_the_stream() -> None:
    import socket as sockets

    from wa_devtunnel.engine.channel.client import Welcome
    from wa_devtunnel.engine.channel.protocol import encode as encode_line

    ours, theirs = sockets.socketpair()
    started = ReceiverStarted("http://127.0.0.1:1/w", "http://127.0.0.1:1/w", "tok", False, None, 1)
    client = EngineClient(ours, Welcome(started, 1, "x", "none", (), (), 0))
    good = encode_line({"event": "notice", "level": "info", "text": "still here", "topic": ""})
    theirs.sendall(b'{"event":"exchange","view":["too short"]}\n' + b"{not json\n" + good + b'{"event":"bye"}\n')
    got: list[Any] = []
    await asyncio.wait_for(client.run(got.extend), WAIT_S)
    theirs.close()
    assert got == [Notice("info", "still here", ""), EngineLost(True, "the engine stopped")]


def test_an_engine_nobody_watches_never_decodes_an_exchange_for_the_channel() -> None:
    """The receiver writes a partial summary; reading `record` would decode the body again on the engine's loop."""
    line = {"id": "x", "seq": 7, "kind": "event", "summary": {"partial": True, "flags": []}}
    line["request"] = {"method": "POST", "path": "/webhook/whatsapp", "headers": [], "body": "{}"}
    event = ExchangeRecorded(None, line)
    service = SimpleNamespace(bus=EventBus())  # all publish needs of the service
    server = ChannelServer(service, None, lambda: None)  # type: ignore[arg-type]
    server.publish([event])
    assert server.last_seq == 7
    assert object.__getattribute__(event, "_record") is None, "the whole summary was derived for nobody"


def test_a_channel_nobody_watches_is_handed_no_exchange_and_a_watcher_starts_at_the_receivers_last_seq() -> None:
    """Until a watcher attaches, the receiver's deliveries skip the channel (its last seq is the receiver's);
    from the attach on, every exchange streams; after the last watcher leaves, none again."""

    def exchange(seq: int) -> ExchangeRecorded:
        line = {"id": f"x{seq}", "seq": seq, "kind": "event", "summary": {"partial": True, "flags": []}}
        return ExchangeRecorded(None, line | {"request": {"method": "POST", "path": "/w", "headers": [], "body": ""}})

    bus = EventBus()
    service = SimpleNamespace(bus=bus, last_seq=0)
    server = ChannelServer(service, None, lambda: None)  # type: ignore[arg-type]
    queue = server._subscription
    for seq in (1, 2, 3):
        bus.publish(exchange(seq))
    service.last_seq = 3
    bus.publish(Notice("info", "kept for the first watcher"))
    assert queue.pending == 1  # the notice only
    watcher = SimpleNamespace(behind=False, records=False)
    server.attach(watcher)  # type: ignore[arg-type]
    assert server.last_seq == 3
    bus.publish(exchange(4))
    assert [getattr(e, "seq", None) for e in queue.drain()] == [None, 4]
    server.detach(watcher)  # type: ignore[arg-type]
    bus.publish(exchange(5))
    assert queue.pending == 0
