"""SVG snapshots that pin the inspector's layout (pytest-textual-snapshot; update with --snapshot-update).

The traffic is real: it goes through a running engine once per module. Only what changes from run to
run is then pinned (arrival times, durations, the client's port), so the pictures are deterministic.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import time
from collections.abc import Callable, Iterator
from dataclasses import replace
from pathlib import Path
from typing import Any

import aiohttp
import pytest
from textual.pilot import Pilot

from tests.support.constants import APP_SECRET, VERIFY_TOKEN
from tests.support.engine_host import hosted_engine
from tests.support.engine_thread import EngineThread
from tests.support.meta_client import MetaLikeSender
from wa_devtunnel.engine.channel.client import EngineClient, connect
from wa_devtunnel.engine.events import ExchangeRecorded, ReceiverStarted, RecordingHealth
from wa_devtunnel.engine.exchange_view import view_from_record
from wa_devtunnel.engine.service import WebhookService
from wa_devtunnel.rules.samples import payloads as samples
from wa_devtunnel.settings import Settings, load_settings
from wa_devtunnel.tui.app import InspectorApp
from wa_devtunnel.tui.exchange_list import ExchangeList

SIZE = (120, 40)
PINNED_PORT = 8765
PINNED_URL = f"http://127.0.0.1:{PINNED_PORT}/webhook/whatsapp"
PINNED_RECORDING = Path("recordings/20260314-082648.jsonl")
# Fixed offset, no DST and no tz database needed: 08:26:50Z shows as 09:26:50.
PINNED_TZ = "CET-1"
PINNED_CLIENT = "198.51.100.7"
SMALL, LARGE = (80, 24), (160, 45)

RecordedTraffic = list[dict[str, Any]]


def settings_in(directory: Path) -> Settings:
    return load_settings(
        {"port": "0", "recordings_dir": str(directory / "rec"), "tunnel": "none"},
        environ={"WHATSAPP_VERIFY_TOKEN": VERIFY_TOKEN, "WHATSAPP_APP_SECRET": APP_SECRET},
        cwd=directory,
    )


async def typical_session(url: str) -> None:
    """What a developer sees in the first minutes: handshakes, a message, its statuses, a batch."""
    async with aiohttp.ClientSession() as session:
        meta = MetaLikeSender(session, url, APP_SECRET)
        assert (await meta.handshake(VERIFY_TOKEN, challenge="1158201444")).accepted
        assert not (await meta.handshake(VERIFY_TOKEN + " ", challenge="1158201445")).accepted
        await meta.deliver(samples.text_message_payload())
        for status in (samples.status("read"), samples.status("failed", error_code=131049)):
            await meta.deliver(samples.meta_json(samples.envelope([samples.messages_change(statuses=[status])])))
        batch = samples.envelope(
            [
                samples.messages_change(
                    messages=[samples.text_message(message_id="wamid.B1"), samples.reaction(message_id="wamid.B2")]
                ),
                samples.messages_change(
                    statuses=[
                        samples.status("delivered", message_id="wamid.B3"),
                        samples.status("failed", message_id="wamid.B4"),
                    ]
                ),
            ]
        )
        await meta.deliver(samples.meta_json(batch))


def pinned(record: dict[str, Any], index: int) -> dict[str, Any]:
    """The same record with what varies between runs fixed."""
    record = json.loads(json.dumps(record))
    record["received_at"] = f"2026-03-14T08:26:{50 + index:02d}.{index * 111111:06d}Z"
    record["elapsed_ms"] = round(0.4 + index * 0.15, 3)
    record["remote"] = "127.0.0.1"
    # As Meta's deliveries through a tunnel are: Meta's user agent, the client the tunnel saw (a test address).
    record["origin"] = "meta"
    record["client"] = PINNED_CLIENT
    for header in record["request"]["headers"]:
        if header[0].lower() == "host":
            header[1] = f"127.0.0.1:{PINNED_PORT}"
    return record


@pytest.fixture(scope="module")
def recorded_traffic(tmp_path_factory: pytest.TempPathFactory) -> RecordedTraffic:
    """Six real exchanges through a real engine, then pinned."""
    engine = EngineThread(WebhookService(settings_in(tmp_path_factory.mktemp("traffic"))))
    events = engine.service.bus.subscribe()
    recorded: list[ExchangeRecorded] = []
    try:
        started = engine.start(timeout=10)
        asyncio.run(typical_session(started.callback_url))
        deadline = time.monotonic() + 5
        while len(recorded) < 6 and time.monotonic() < deadline:
            recorded += [e for e in events.take(100) if isinstance(e, ExchangeRecorded)]
            time.sleep(0.01)
    finally:
        engine.stop()
    assert len(recorded) == 6
    return [pinned(dict(event.record), index) for index, event in enumerate(recorded)]


@pytest.fixture
def fixed_timezone(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    """Rows show the local clock: make it the same everywhere."""
    monkeypatch.setenv("TZ", PINNED_TZ)
    time.tzset()
    yield
    monkeypatch.undo()
    time.tzset()


@pytest.fixture
def make_app(tmp_path: Path, fixed_timezone: None) -> Iterator[Callable[[RecordedTraffic], InspectorApp]]:
    """An inspector attached to a real (started) engine, fed pinned records and a pinned start-up."""
    with contextlib.ExitStack() as stack:

        def build(records: RecordedTraffic) -> InspectorApp:
            hosted = stack.enter_context(hosted_engine(settings_in(tmp_path)))
            sock, welcome, rest = connect(hosted.channel.address)
            started = ReceiverStarted(
                callback_url=PINNED_URL,
                local_url=PINNED_URL,
                verify_token=VERIFY_TOKEN,
                verify_token_generated=False,
                verify_token_source="environment",
                recording_path=PINNED_RECORDING,
                port=PINNED_PORT,
                signatures_checked=True,
            )
            # Only the pinned start-up and records: nothing the engine said itself (its port, its notices).
            app = InspectorApp(EngineClient(sock, replace(welcome, started=started, state=()), rest))
            for record in records:
                app.events.deliver(ExchangeRecorded(view_from_record(record), record))
            return app

        yield build


async def until_rows(pilot: Pilot[None], count: int) -> None:
    table = pilot.app.query_one("#exchanges", ExchangeList)
    for _ in range(100):
        if table.row_count == count and pilot.app.detail.shown_id == table.selected_id:  # a burst's detail comes later
            return
        await pilot.pause(0.05)
    pytest.fail(f"the table never reached {count} rows")


def test_main_screen_with_typical_traffic(
    snap_compare: Any, make_app: Callable[[RecordedTraffic], InspectorApp], recorded_traffic: RecordedTraffic
) -> None:
    async def run_before(pilot: Pilot[None]) -> None:
        await until_rows(pilot, 6)

    assert snap_compare(make_app(recorded_traffic), terminal_size=SIZE, run_before=run_before)


def test_failed_handshake_selected(
    snap_compare: Any, make_app: Callable[[RecordedTraffic], InspectorApp], recorded_traffic: RecordedTraffic
) -> None:
    async def run_before(pilot: Pilot[None]) -> None:
        await until_rows(pilot, 6)
        await pilot.press("up", "up", "up", "up")
        assert pilot.app.query_one("#exchanges", ExchangeList).cursor_row == 1
        await pilot.press("4")

    assert snap_compare(make_app(recorded_traffic), terminal_size=SIZE, run_before=run_before)


def test_local_only_start_up(snap_compare: Any, make_app: Callable[[RecordedTraffic], InspectorApp]) -> None:
    async def run_before(pilot: Pilot[None]) -> None:
        await pilot.pause(0.1)

    assert snap_compare(make_app([]), terminal_size=SIZE, run_before=run_before)


def test_recording_failure_banner(
    snap_compare: Any, make_app: Callable[[RecordedTraffic], InspectorApp], recorded_traffic: RecordedTraffic
) -> None:
    """The loud, persistent banner while writes fail (Meta gets 503): red, on top, with the reason."""

    async def run_before(pilot: Pilot[None]) -> None:
        await until_rows(pilot, 6)
        app = pilot.app
        assert isinstance(app, InspectorApp)
        app.events.deliver(RecordingHealth(False, PINNED_RECORDING, "[Errno 28] No space left on device", refused=3))
        await pilot.pause(0.2)

    assert snap_compare(make_app(recorded_traffic), terminal_size=SIZE, run_before=run_before)


# The two sizes the keys are checked at (80x24: the smallest a developer uses; 160x45: a full screen).


def test_main_screen_80x24(
    snap_compare: Any, make_app: Callable[[RecordedTraffic], InspectorApp], recorded_traffic: RecordedTraffic
) -> None:
    async def run_before(pilot: Pilot[None]) -> None:
        await until_rows(pilot, 6)

    assert snap_compare(make_app(recorded_traffic), terminal_size=SMALL, run_before=run_before)


def test_main_screen_160x45(
    snap_compare: Any, make_app: Callable[[RecordedTraffic], InspectorApp], recorded_traffic: RecordedTraffic
) -> None:
    async def run_before(pilot: Pilot[None]) -> None:
        await until_rows(pilot, 6)

    assert snap_compare(make_app(recorded_traffic), terminal_size=LARGE, run_before=run_before)


def test_zoomed_raw_body_80x24(
    snap_compare: Any, make_app: Callable[[RecordedTraffic], InspectorApp], recorded_traffic: RecordedTraffic
) -> None:
    """z and b: the detail takes the room, the exact body folded by character."""

    async def run_before(pilot: Pilot[None]) -> None:
        await until_rows(pilot, 6)
        await pilot.press("up", "up", "up", "z", "b")
        await pilot.pause(0.2)

    assert snap_compare(make_app(recorded_traffic), terminal_size=SMALL, run_before=run_before)


def test_help_80x24(snap_compare: Any, make_app: Callable[[RecordedTraffic], InspectorApp]) -> None:
    async def run_before(pilot: Pilot[None]) -> None:
        await pilot.press("question_mark")
        await pilot.pause(0.2)

    assert snap_compare(make_app([]), terminal_size=SMALL, run_before=run_before)


def test_filter_matching_nothing_80x24(
    snap_compare: Any, make_app: Callable[[RecordedTraffic], InspectorApp], recorded_traffic: RecordedTraffic
) -> None:
    async def run_before(pilot: Pilot[None]) -> None:
        await until_rows(pilot, 6)
        await pilot.press("slash", *"type:image", "enter")
        await pilot.pause(0.2)

    assert snap_compare(make_app(recorded_traffic), terminal_size=SMALL, run_before=run_before)


def test_editor_keeps_an_edit_that_is_not_json_80x24(
    snap_compare: Any,
    make_app: Callable[[RecordedTraffic], InspectorApp],
    recorded_traffic: RecordedTraffic,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.delenv("EDITOR", raising=False)
    monkeypatch.delenv("VISUAL", raising=False)

    async def run_before(pilot: Pilot[None]) -> None:
        await until_rows(pilot, 6)
        await pilot.press("up", "up", "up", "E")
        await pilot.pause(0.2)
        await pilot.press("down", "down", "end", "x", "ctrl+s")
        await pilot.pause(0.2)

    assert snap_compare(make_app(recorded_traffic), terminal_size=SMALL, run_before=run_before)
