"""The inspector app: composes header, list, detail and filter bar, and wires them to the engine's service."""

from __future__ import annotations

import asyncio
import contextlib
import os
import signal
from collections.abc import Coroutine, Iterable, Iterator, Mapping
from typing import Any, TypeVar

from textual import on, work
from textual.app import App, ComposeResult, SystemCommand
from textual.notifications import SeverityLevel
from textual.screen import Screen
from textual.widgets import Footer

from wa_devtunnel.engine.events import (
    EngineEvent,
    ExchangeRecorded,
    ExchangeView,
    ForwardCompleted,
    ReceiverStarted,
    RecordingHealth,
    Subscription,
)
from wa_devtunnel.engine.exchange_view import text_in_record
from wa_devtunnel.engine.recording import request_body
from wa_devtunnel.engine.replay.source import ReplayError
from wa_devtunnel.engine.thread import EngineThread
from wa_devtunnel.tui.editor import BodyEditor, EditRejected, edit_with_external_editor, editable_text, edited_body
from wa_devtunnel.tui.engine_feed import EngineEventsArrived, EngineFeed
from wa_devtunnel.tui.exchange_detail import ExchangeDetail
from wa_devtunnel.tui.exchange_list import ExchangeList
from wa_devtunnel.tui.filter_bar import FilterBar
from wa_devtunnel.tui.header import HeaderState, RecordingAlarm, StatusHeader
from wa_devtunnel.tui.help import KEYS, HelpScreen, binding_commands
from wa_devtunnel.tui.model import ExchangeStore, ListFilter
from wa_devtunnel.tui.safe import toast_message
from wa_devtunnel.tui.toasts import toasts_for
from wa_devtunnel.tui.welcome import welcome_text

# More new rows than this in one batch is a burst: the detail then follows a few times a second.
BURST_ROWS = 3
T = TypeVar("T")


class InspectorApp(App[None]):
    """wa-devtunnel's live view: keyboard first, never in the receiver's way."""

    CSS_PATH = "app.tcss"
    TITLE = "wa-devtunnel"
    BINDINGS = KEYS

    def __init__(self, engine: EngineThread, events: Subscription, started: ReceiverStarted) -> None:
        super().__init__()
        self.engine = engine
        self.service = engine.service
        self.events = events
        self.started = started
        self.store = ExchangeStore()
        self.filter = ListFilter()
        self.feed = EngineFeed(self, events, lambda batch: self.apply_events(batch))  # apply_events may be wrapped
        settings = self.service.settings
        self.header = StatusHeader(HeaderState.at_start(started, settings.forward_to), id="status")
        self.exchanges = ExchangeList(bool(settings.accounts), self._visible_views, id="exchanges")
        self.detail = ExchangeDetail(
            welcome_text(started, settings), self.store, self.service.read_record, started.recording_path, id="lower"
        )
        self.filter_bar = FilterBar(id="search")

    @property
    def state(self) -> HeaderState:
        """What the header shows (the tunnel, the tallies, follow mode)."""
        return self.header.state

    def compose(self) -> ComposeResult:
        yield RecordingAlarm(id="recording-alarm")
        yield self.header
        yield self.exchanges
        yield self.detail
        yield self.filter_bar
        yield Footer()

    def on_mount(self) -> None:
        self._refresh_header()
        self.exchanges.focus()
        self.feed.start()
        with contextlib.suppress(NotImplementedError, RuntimeError):
            for signum in (signal.SIGTERM, signal.SIGHUP):  # SIGHUP: the terminal window was closed
                asyncio.get_running_loop().add_signal_handler(signum, self.exit)

    def on_resize(self, event: Any) -> None:
        if self.exchanges.fit_width(event.size.width):
            self._rebuild_list()

    def notify(
        self,
        message: str,
        *,
        title: str = "",
        severity: SeverityLevel = "information",
        timeout: float | None = None,
        markup: bool = True,
    ) -> None:
        """Every toast is plain text: messages quote requests and agents, so markup is never parsed."""
        super().notify(
            toast_message(message), title=toast_message(title), severity=severity, timeout=timeout, markup=False
        )

    # Engine events -----------------------------------------------------------------------------

    def on_engine_events_arrived(self, _: EngineEventsArrived) -> None:
        self.feed.arrived()

    def apply_events(self, events: Iterable[EngineEvent]) -> None:
        """Update the model, then the widgets once."""
        new_rows: list[ExchangeView] = []
        for event in events:
            if isinstance(event, ExchangeRecorded):
                view = event.view
                if view.recording is not None:
                    self.state.recording = view.recording  # the part being written now
                self.store.add(view, event.record)
                self.filter.note_arrival(view, event.record)
                if self.filter.shows(view):
                    new_rows.append(view)
                continue
            for toast in toasts_for(event, self.state.recording_failed):
                self.notify(toast.text, severity=toast.severity, timeout=toast.timeout)
            self.state.note(event)
            if isinstance(event, ForwardCompleted):
                self._forward_completed(event)
            elif isinstance(event, RecordingHealth) and not event.ok:  # a banner until writes work again
                self.query_one(RecordingAlarm).raise_alarm(event)
            elif isinstance(event, RecordingHealth):
                self.query_one(RecordingAlarm).clear()
        if new_rows:
            self.detail.current = "detail"
            if self.exchanges.add(new_rows):
                # A trickle shows at once; under a burst the detail is redrawn a few times a second.
                self._show_selected(deferred=len(new_rows) > BURST_ROWS or self.detail.redraw_pending)
        self._refresh_header()

    def _forward_completed(self, event: ForwardCompleted) -> None:
        """--ack-first: the backend's late answer updates the row and the detail."""
        updated = self.store.forward_completed(event.exchange_id, event.forward)
        if updated is None:
            return
        self.exchanges.update(updated)
        if self.detail.shown_id == updated.id:
            self._show_selected()
        if event.forward.get("error"):
            self.notify(f"Backend: {event.forward['error']}", severity="error")

    # The list and the detail -------------------------------------------------------------------

    def _visible_views(self) -> Iterator[ExchangeView]:
        return (view for view in self.store.views if self.filter.shows(view))

    def _rebuild_list(self) -> None:
        self.exchanges.rebuild()
        self._show_selected()
        self._refresh_header()

    def _refresh_header(self) -> None:
        self.state.counters = self.store.counters
        self.state.filter_text = self.filter.describe()
        self.state.following = self.exchanges.following
        self.header.show()

    @on(ExchangeList.CursorMoved)
    def _cursor_moved(self) -> None:
        self._refresh_header()
        self._show_selected()

    def _show_selected(self, deferred: bool = False) -> None:
        self.detail.show_exchange(self.exchanges.selected_id, deferred)

    # Actions -----------------------------------------------------------------------------------

    def action_follow(self) -> None:
        """Jump to the newest exchange and keep following."""
        self.exchanges.follow()
        self._show_selected()
        self._refresh_header()

    def action_copy_url(self) -> None:
        """Copy the callback URL (OSC 52 works over SSH)."""
        self.copy_to_clipboard(self.state.callback_url)
        self.notify(f"Copied: {self.state.callback_url}")

    def action_copy_token(self) -> None:
        """Copy the verify token without showing it."""
        self.copy_to_clipboard(self.state.verify_token)
        self.notify("Verify token copied")

    def action_reveal_token(self) -> None:
        """Show or mask the verify token."""
        self.state.token_revealed = not self.state.token_revealed
        self._refresh_header()

    def action_toggle_raw(self) -> None:
        """Pretty JSON or the exact bytes."""
        self.detail.toggle_raw()
        self._show_selected()

    def action_open_body(self) -> None:
        """The whole body in $PAGER (less): the Body tab shows only the first 64 KiB of a big one."""
        self.detail.open_whole_body()

    def action_write_body(self) -> None:
        """The exact body bytes to a private temp file, for an editor, jq or `wa-devtunnel decode`."""
        self.detail.write_body()

    def action_tab(self, name: str) -> None:
        """Switch the detail tab."""
        self.detail.tab(name)

    def action_help(self) -> None:
        """Every key and the filter syntax."""
        self.push_screen(HelpScreen(self.BINDINGS))

    def action_search(self) -> None:
        """Open the filter bar."""
        self.filter_bar.open()

    def action_clear_filters(self) -> None:
        """Show everything again."""
        self.filter = ListFilter()
        self.filter_bar.clear()
        self.exchanges.focus()
        self._rebuild_list()

    def action_problems_only(self) -> None:
        """Only failed handshakes, bad signatures and non-2xx answers."""
        self.filter.problems_only = not self.filter.problems_only
        self._rebuild_list()

    @on(FilterBar.Applied)
    def _filter_applied(self, event: FilterBar.Applied) -> None:
        self.filter = ListFilter(query=event.query, problems_only=self.filter.problems_only)
        self.exchanges.focus()
        if event.query.text:
            self._find_text(event.query.text, list(self.store.records.items()))
        else:
            self._rebuild_list()

    @on(FilterBar.Left)
    def _filter_left(self) -> None:
        self.exchanges.focus()

    @work(thread=True, exclusive=True, group="search")
    def _find_text(self, text: str, cached: list[tuple[str, Mapping[str, Any]]]) -> None:
        """Memory holds only a few records: the service searches every file of the session; the UI hands copies."""
        matches = {eid for eid, record in cached if text_in_record(record, text)} | self.service.search_bodies(text)
        self.call_from_thread(self._text_found, text, matches)

    def _text_found(self, text: str, matches: set[str]) -> None:
        if self.filter.query.text == text:
            self.filter.text_matches |= matches
            self._rebuild_list()
            self.notify(f"{len(self.filter.text_matches)} exchange(s) contain {text!r}")

    # Asking the engine -------------------------------------------------------------------------

    async def _on_engine(self, call: Coroutine[Any, Any, T]) -> T:
        """Run one of the service's coroutines on the engine's loop; awaiting it never makes the engine wait."""
        return await asyncio.wrap_future(self.engine.submit(call))

    def action_send_sample(self) -> None:
        """POST a signed sample event to our own receiver."""
        self._send_sample()

    @work(group="sample")
    async def _send_sample(self) -> None:
        try:
            status = await self._on_engine(self.service.send_sample())
        except Exception as exc:  # any failure is shown, never raised into the UI
            self.notify(f"Sample failed: {exc}", severity="error")
            return
        self.notify(f"Sample event sent: HTTP {status}")

    def action_replay(self) -> None:
        """Send the selected exchange again, through our receiver to the forward target."""
        record = self.detail.shown_record()
        if record is None or record.get("kind") not in ("event", "verify"):
            self.notify("Select an event or a handshake to replay", severity="warning")
            return
        self._replay(record, None)

    async def action_edit_and_send(self) -> None:
        """Edit the selected event's body ($EDITOR, else in-app), then re-sign and send it."""
        record = self.detail.shown_record()
        if record is None or record.get("kind") != "event":
            self.notify("Select an event to edit and re-send", severity="warning")
            return
        text = editable_text(request_body(record.get("request") or {}))
        if os.environ.get("VISUAL") or os.environ.get("EDITOR"):
            with self.suspend():
                edited = edit_with_external_editor(text)
            self._send_edited(record, edited)
        else:
            self.push_screen(BodyEditor(text), lambda edited: self._send_edited(record, edited))

    def _send_edited(self, record: Mapping[str, Any], edited: str | None) -> None:
        try:
            body = edited_body(request_body(record.get("request") or {}), edited)
        except EditRejected as rejected:
            self.notify(str(rejected), severity=rejected.severity)
            return
        self._replay(record, body)

    @work(group="replay")
    async def _replay(self, record: Mapping[str, Any], edited_body: bytes | None) -> None:
        try:
            result = await self._on_engine(self.service.replay_exchange(record, edited_body))
        except ReplayError as exc:
            self.notify(f"Not sent: {exc}", severity="error")
            return
        target = self.service.settings.forward_to or "wa-devtunnel's own receiver (no --forward-to)"
        what = "Edited body re-signed and sent" if edited_body is not None else f"Replayed seq {record.get('seq')}"
        self.notify(f"{what} to {target}: HTTP {result.relay_status}")

    def get_system_commands(self, screen: Screen[Any]) -> Iterable[SystemCommand]:
        """Every action in the command palette (ctrl+p)."""
        yield from super().get_system_commands(screen)
        yield from binding_commands(self.BINDINGS, self.run_action)
