"""The inspector app: composes header, list, detail and filter bar, and wires them to an engine over its channel."""

from __future__ import annotations

import asyncio
import contextlib
import os
import signal
import sys
import time
from collections.abc import Iterable, Iterator, Mapping
from pathlib import Path
from typing import Any

from rich.text import Text
from textual import on, work
from textual.app import App, ComposeResult, SystemCommand
from textual.notifications import SeverityLevel
from textual.screen import Screen
from textual.widgets import Footer, Input, TextArea

from wa_devtunnel.engine.channel.child import EngineChild
from wa_devtunnel.engine.channel.client import ChannelError, EngineClient, EngineLost, FrontEndEvent
from wa_devtunnel.engine.events import (
    EventBus,
    ExchangeRecorded,
    ExchangeView,
    ForwardCompleted,
    ReceiverStarted,
    RecordingHealth,
)
from wa_devtunnel.engine.exchange_view import text_in_record
from wa_devtunnel.engine.recording import read_record_at, request_body
from wa_devtunnel.engine.replay.source import ReplayError
from wa_devtunnel.engine.session_search import search_recordings
from wa_devtunnel.tui.editor import (
    BodyEditor,
    EditRejected,
    edit_with_external_editor,
    editable_text,
    edited_body,
    json_problem,
)
from wa_devtunnel.tui.engine_feed import EngineEventsArrived, EngineFeed
from wa_devtunnel.tui.exchange_detail import ExchangeDetail
from wa_devtunnel.tui.exchange_list import ExchangeList
from wa_devtunnel.tui.filter_bar import FilterBar
from wa_devtunnel.tui.header import EngineAlarm, HeaderState, RecordingAlarm, StatusHeader
from wa_devtunnel.tui.help import KEYS, HelpScreen, binding_commands
from wa_devtunnel.tui.lifecycle_screen import LifecycleScreen
from wa_devtunnel.tui.model import ExchangeStore, ListFilter
from wa_devtunnel.tui.priority import EngineStarter
from wa_devtunnel.tui.safe import data, toast_message
from wa_devtunnel.tui.terminal_watch import TerminalWatch, let_go_of_dead_terminal
from wa_devtunnel.tui.toasts import toasts_for
from wa_devtunnel.tui.welcome import welcome_text

# The list may fall behind a burst, never lose an exchange of it: the UI's queue has no cap.
UI_BACKLOG = sys.maxsize
# More exchanges than this since the last paint is a burst: painted every BURST_PAINT_S, which costs the
# machine (and so the engine, on a busy one) a tenth of painting every slice.
BURST_EVENTS = 100
BURST_PAINT_S = 0.4


class InspectorApp(App[None]):
    """wa-devtunnel's live view: keyboard first, never in the receiver's way."""

    CSS_PATH = "app.tcss"
    TITLE = "wa-devtunnel"
    BINDINGS = KEYS

    def __init__(
        self, client: EngineClient, child: EngineChild | None = None, starter: EngineStarter | None = None
    ) -> None:
        """`client` is attached to the engine; `child` is set when this UI started it (and may restart it,
        through `starter`, so a new engine runs above the screen's priority too)."""
        super().__init__()
        self.client = client
        self.child = child
        self.starter = starter
        welcome = client.welcome
        self.started = welcome.started
        self.engine_lost: EngineLost | None = None
        self.recording_parts: list[Path] = list(welcome.recording_parts)
        self.store = ExchangeStore()
        self.filter = ListFilter()
        # The channel's events land in a local queue drained in slices: the engine never waits for this UI.
        self.events = EventBus().subscribe(UI_BACKLOG)
        self.feed = EngineFeed(self, self.events, lambda batch: self.apply_events(batch))  # apply_events may be wrapped
        self.header = StatusHeader(HeaderState.at_start(self.started, self.started.forward_to), id="status")
        self.exchanges = ExchangeList(bool(welcome.accounts), self._visible_views, id="exchanges")
        self.detail = ExchangeDetail(
            welcome_text(self.started, welcome.tunnel),
            self.store,
            read_record_at,
            self.started.recording_path,
            id="lower",
        )
        self.filter_bar = FilterBar(id="search")
        self.list_cleared = False  # ctrl+l: the list was emptied (display only)
        # Applied to the model, not yet painted: a burst is painted a few times a second, not per slice.
        self._unshown_rows: list[ExchangeView] = []
        self._arrived_since_paint = 0
        self._last_paint = 0.0
        self._paint_pending = False
        self.terminal_watch: TerminalWatch | None = None  # set on a real terminal

    @property
    def state(self) -> HeaderState:
        """What the header shows (the tunnel, the tallies, follow mode)."""
        return self.header.state

    def compose(self) -> ComposeResult:
        yield EngineAlarm(id="engine-alarm")
        yield RecordingAlarm(id="recording-alarm")
        yield self.header
        yield self.exchanges
        yield self.detail
        yield self.filter_bar
        yield Footer(show_command_palette=False)  # ctrl+p still opens it; ? says so

    def on_mount(self) -> None:
        self._refresh_header()
        self.exchanges.focus()
        self._deliver(list(self.client.welcome.state))
        self.feed.start()
        self._listen(self.client, history=True)
        loop = asyncio.get_running_loop()
        with contextlib.suppress(NotImplementedError, RuntimeError):
            loop.add_signal_handler(signal.SIGTERM, self.exit)
            loop.add_signal_handler(signal.SIGHUP, self._hang_up)  # the terminal window was closed
        if not self.is_headless:  # a terminal gone with no SIGHUP to us (`make run` in a closed pane): the same exit
            self.terminal_watch = TerminalWatch(lambda: self._from_watch_thread(loop)).start()

    def _hang_up(self) -> None:
        """SIGHUP: exit; when the terminal is really gone, without writing to it (every write would fail)."""
        let_go_of_dead_terminal()
        self.exit()

    def _from_watch_thread(self, loop: asyncio.AbstractEventLoop) -> None:
        """The terminal hung up: exit as on SIGHUP (from the watch thread; the loop may be closing already)."""
        with contextlib.suppress(RuntimeError):
            loop.call_soon_threadsafe(self.exit)

    def on_unmount(self) -> None:
        """Detach while the loop still runs (the engine goes on, or is stopped by whoever started it)."""
        if self.terminal_watch is not None:
            self.terminal_watch.stop()
        self.client.close()

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

    def _deliver(self, batch: list[FrontEndEvent]) -> None:
        """From the channel (on this loop): queue for the next drain; cheap however big the burst."""
        deliver = self.events.deliver
        for event in batch:
            deliver(event)

    @work(group="engine")
    async def _listen(self, client: EngineClient, history: bool) -> None:
        """Read the engine's stream until it ends (history, then live; catch-up from the recording if behind)."""
        await client.run(self._deliver, history=history)

    def on_engine_events_arrived(self, _: EngineEventsArrived) -> None:
        self.feed.arrived()

    def apply_events(self, events: Iterable[FrontEndEvent]) -> None:
        """Update the model, then the widgets once."""
        new_rows: list[ExchangeView] = []
        for event in events:
            # Usually just the view (a body is read from the recording when shown or searched).
            if event.__class__ is ExchangeView or isinstance(event, ExchangeRecorded):
                view, record = (event, None) if event.__class__ is ExchangeView else (event.view, event.record)
                # Views share one Path per file: identity says "same part" without comparing paths.
                if view.recording is not self.state.recording and view.recording is not None:
                    self.state.recording = view.recording  # the part being written now
                    if view.recording not in self.recording_parts:
                        self.recording_parts.append(view.recording)
                self.store.add(view, record)
                if self.filter.query.text:
                    self.filter.note_arrival(view, record or self._read_record(view))
                if self.filter.shows(view):
                    new_rows.append(view)
                continue
            if isinstance(event, EngineLost):
                self._engine_lost(event)
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
            elif isinstance(event, ReceiverStarted):
                self.started = event
        self._unshown_rows += new_rows
        self._arrived_since_paint += len(new_rows)
        self._schedule_paint()

    def _schedule_paint(self) -> None:
        """A trickle is painted at once; a burst at most every BURST_PAINT_S (each paint redraws the list)."""
        if self._paint_pending:
            return
        interval = BURST_PAINT_S if self._arrived_since_paint >= BURST_EVENTS else 0.0
        wait = self._last_paint + interval - time.monotonic()
        if wait <= 0:
            self._paint()
        else:
            self._paint_pending = True
            self.set_timer(wait, self._paint)

    def _paint(self) -> None:
        """What arrived since the last paint into the list, the detail (when following) and the header."""
        self._paint_pending = False
        burst = self._arrived_since_paint >= BURST_EVENTS
        self._last_paint, self._arrived_since_paint = time.monotonic(), 0
        rows, self._unshown_rows = self._unshown_rows, []
        if rows:
            self.detail.current = "detail"
            if self.exchanges.add(rows):
                # A trickle shows at once; the detail follows 4 times a second, once a second in a burst.
                self.detail.show_exchange(self.exchanges.selected_view, deferred=True, burst=burst)
        self._refresh_header()

    def _engine_lost(self, event: EngineLost) -> None:
        """The channel closed: a banner at once, completed with the exit status once the process has ended."""
        self.engine_lost = event
        self.query_one(EngineAlarm).raise_alarm(event, self.child)
        self.state.tunnel_state, self.state.tunnel_reason = "failed", "engine not running"

    def action_restart_engine(self) -> None:
        """After the engine died: start a new one with the same settings (same port, same verify token)."""
        if self.engine_lost is None:
            self.notify("The engine is running", severity="warning")
            return
        if self.child is None:
            self.notify("This view did not start the engine: start it again where it ran", severity="warning")
            return
        self._restart()

    @work(group="engine-restart", exclusive=True)
    async def _restart(self) -> None:
        old = self.child
        assert old is not None
        await asyncio.to_thread(old.stop)
        environ = dict(old.environ or os.environ)
        # Keep what the developer pasted into Meta. Only a temporary token needs carrying: one kept in the
        # project state file comes back by itself, and labelled as kept, not as set in the environment.
        if self.started.verify_token_source == "generated":
            environ["WHATSAPP_VERIFY_TOKEN"] = self.started.verify_token
        child = EngineChild(old.argv, environ=environ, cwd=old.cwd)
        self.notify("Restarting the engine...")
        try:
            if self.starter is not None:
                client = await asyncio.wrap_future(self.starter.start(child))
            else:
                client = await asyncio.to_thread(child.start)
        except Exception as exc:  # any failure is shown, never raised into the UI
            self.child = child
            self.notify(f"The engine did not start: {exc}", severity="error", timeout=20)
            return
        self.child, self.client, self.engine_lost = child, client, None
        self.query_one(EngineAlarm).clear()
        # The new engine records a new session; search still covers the old one's files too.
        self.recording_parts += [p for p in client.welcome.recording_parts if p not in self.recording_parts]
        self._deliver([client.welcome.started, *client.welcome.state])
        self._listen(client, history=False)
        self.notify(f"Engine restarted: {client.welcome.started.callback_url}")

    def _read_record(self, view: ExchangeView) -> dict[str, Any] | None:
        return read_record_at(view.recording, view.offset) if view.recording is not None else None

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
        self._unshown_rows.clear()  # in the store already: the rebuild takes them from there
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
        view = self.exchanges.selected_view
        if view is not None:
            self.detail.show_exchange(view, deferred)
        elif self.store.views or self.list_cleared:  # before the first exchange the welcome stays
            self.detail.show_empty(self._nothing_selected())

    def _nothing_selected(self) -> Text:
        """Why the detail is empty: the filter matches nothing, or the list was cleared."""
        if self.store.views and self.filter.active:
            return Text.assemble(
                ("No exchange matches the filter", "bold"),
                ": ",
                data(self.filter.describe()),
                "\nx shows every exchange again; / changes the filter",
                "; e turns problems-only off." if self.filter.problems_only else ".",
            )
        return Text.assemble(
            ("List cleared", "bold"),
            ": new exchanges appear here as they arrive.\nThis cleared the display only: the recording keeps "
            "every exchange (wa-devtunnel sessions, replay and export read it).",
        )

    # Actions -----------------------------------------------------------------------------------

    def action_follow(self) -> None:
        """Jump to the newest exchange and keep following."""
        self.exchanges.follow()
        self._show_selected()
        self._refresh_header()

    def check_action(self, action: str, parameters: tuple[object, ...]) -> bool | None:
        """`end` follows from the list and the detail, but moves the cursor in a text field, and does nothing
        under another screen (help, editor, lifecycle): the key goes on to them."""
        if action == "follow_from_anywhere":
            return len(self.screen_stack) == 1 and not isinstance(self.focused, Input | TextArea)
        return True

    def action_follow_from_anywhere(self) -> None:
        """`end`: above the list's and the detail's own binding for it."""
        self.action_follow()

    def action_copy_url(self) -> None:
        """Copy the callback URL (OSC 52 works over SSH); a local one says Meta cannot use it."""
        url = self.state.callback_url
        self.copy_to_clipboard(url)
        if url.startswith("https://"):
            self.notify(f"Copied: {url}")
        elif self.state.tunnel_state == "starting":
            self.notify(f"Copied: {url}\nThe tunnel is still starting: copy again when the header says up.")
        else:
            self.notify(
                f"Copied: {url}\nMeta cannot reach a local URL. For a public HTTPS one: NGROK_AUTHTOKEN in .env, "
                "then restart (or --tunnel cloudflared).",
                severity="warning",
                timeout=10,
            )

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

    def action_lifecycle(self) -> None:
        """Each sent message's statuses (sent -> delivered -> read, or why it failed) and its contact's thread."""
        if not self.is_screen_installed("lifecycle"):
            screen = LifecycleScreen(self._session_files, lambda: self.store.counters.events)
            self.install_screen(screen, "lifecycle")
        if self.screen is not self.get_screen("lifecycle"):
            self.push_screen("lifecycle")

    def action_scroll_detail(self, direction: int) -> None:
        """Scroll the detail half a pane while the focus stays in the list (ctrl+d / ctrl+u)."""
        self.detail.scroll_shown(direction)

    def action_zoom_detail(self) -> None:
        """A taller detail (the list keeps a few rows), or back to the even split."""
        self.screen.toggle_class("-zoom-detail")

    def action_states_in_full(self) -> None:
        """The header's lasting states whole (they are cut at a word to keep the list in view), or cut again."""
        self.header.toggle_expanded()

    def _session_files(self) -> tuple[Path, ...]:
        """The session's files so far: the one announced at start until its first record creates it."""
        path = self.started.recording_path
        return tuple(self.recording_parts) or ((path,) if path is not None else ())

    def action_search(self) -> None:
        """Open the filter bar."""
        self.filter_bar.open()

    def action_clear_filters(self) -> None:
        """Show everything again."""
        self.filter = ListFilter()
        self.filter_bar.clear()
        self.exchanges.focus()
        self._rebuild_list()

    def action_clear_list(self) -> None:
        """Empty the list, as ngrok's "clear requests" does: the recording keeps every exchange."""
        cleared = self.store.clear()
        self.list_cleared = True
        self._rebuild_list()
        self.notify(
            f"List cleared ({cleared} exchange(s)): display only, the recording keeps them all. "
            "The header's tallies count the whole session."
        )

    def action_problems_only(self) -> None:
        """Only what a developer calls an error (model.is_problem): failed handshakes and deliveries, bad
        signatures, error answers, backend failures."""
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
        """Memory holds only a few records: every file of the session is searched (the recording is the truth)."""
        matches = {eid for eid, record in cached if text_in_record(record, text)}
        matches |= search_recordings(tuple(self.recording_parts), text)
        self.call_from_thread(self._text_found, text, matches)

    def _text_found(self, text: str, matches: set[str]) -> None:
        if self.filter.query.text == text:
            self.filter.text_matches |= matches
            self._rebuild_list()
            self.notify(f"{len(self.filter.text_matches)} exchange(s) contain {text!r}")

    # Asking the engine -------------------------------------------------------------------------

    def action_send_sample(self) -> None:
        """POST a signed sample event to our own receiver."""
        self._send_sample()

    @work(group="sample")
    async def _send_sample(self) -> None:
        try:
            status = await self.client.send_sample()
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
            if edited is not None and json_problem(edited) is not None:  # kept: in-app, with the reason shown
                self.push_screen(BodyEditor(edited, original=text), lambda fixed: self._send_edited(record, fixed))
                return
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
            status = await self.client.replay(record, edited_body)
        except (ReplayError, ChannelError) as exc:
            self.notify(f"Not sent: {exc}", severity="error")
            return
        target = self.started.forward_to or "wa-devtunnel's own receiver (no --forward-to)"
        what = "Edited body re-signed and sent" if edited_body is not None else f"Replayed seq {record.get('seq')}"
        self.notify(f"{what} to {target}: HTTP {status}")

    def get_system_commands(self, screen: Screen[Any]) -> Iterable[SystemCommand]:
        """Every action in the command palette (ctrl+p)."""
        yield from super().get_system_commands(screen)
        yield from binding_commands(self.BINDINGS, self.run_action)
