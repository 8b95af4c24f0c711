"""The inspector app: composition of header, live list, detail and search; state lives in tui.model."""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import shlex
import signal
import subprocess
import tempfile
from collections.abc import Iterable, Mapping
from dataclasses import replace
from pathlib import Path
from typing import Any

from rich.text import Text
from textual import on, work
from textual.app import App, ComposeResult, SuspendNotSupported, SystemCommand
from textual.binding import Binding
from textual.containers import VerticalScroll
from textual.notifications import SeverityLevel
from textual.screen import Screen
from textual.widgets import ContentSwitcher, DataTable, Footer, Input, Static, TabbedContent, TabPane

from wa_devtunnel.engine.events import (
    EngineEvent,
    EventInbox,
    ExchangeRecorded,
    ExchangeView,
    ForwardCompleted,
    Notice,
    ReceiverStarted,
    RecordingHealth,
    SelfTestFinished,
    TunnelChanged,
)
from wa_devtunnel.engine.recording import read_record_at, read_recording, request_body
from wa_devtunnel.engine.replay.live import replay_through_receiver
from wa_devtunnel.engine.replay.source import ReplayError
from wa_devtunnel.engine.sample import send_sample_event
from wa_devtunnel.engine.thread import EngineThread
from wa_devtunnel.rules.samples.payloads import meta_json
from wa_devtunnel.tui.detail import (
    body_renderable,
    headers_renderable,
    human_size,
    signature_renderable,
    summary_renderable,
    whole_body_text,
)
from wa_devtunnel.tui.editor import BodyEditor, edit_with_external_editor, editable_text
from wa_devtunnel.tui.header import HeaderState, StatusHeader, recording_alarm_text
from wa_devtunnel.tui.help import HelpScreen
from wa_devtunnel.tui.model import FILTER_HELP, ExchangeStore, ListFilter, parse_filter, text_in_record
from wa_devtunnel.tui.rows import NARROW_WIDTH, columns, row_cells
from wa_devtunnel.tui.safe import shown, toast_message
from wa_devtunnel.tui.welcome import welcome_text

DRAIN_INTERVAL_S = 0.05
DRAIN_BATCH = 500
MAX_TABLE_ROWS = 10_000
# DataTable.remove_row costs O(rows): trim rarely, by rebuilding with the newest rows.
TRIM_SLACK_ROWS = 2_500
DETAIL_REFRESH_S = 0.25
BURST_ROWS = 3


class InspectorApp(App[None]):
    """wa-devtunnel's live view: keyboard first, never in the receiver's way."""

    CSS_PATH = "app.tcss"
    TITLE = "wa-devtunnel"
    BINDINGS = [
        Binding("q", "quit", "Quit"),
        Binding("ctrl+c", "quit", "Quit", show=False, priority=True),
        Binding("slash", "search", "Filter"),
        Binding("x", "clear_filters", "Clear"),
        Binding("e", "problems_only", "Problems"),
        Binding("f", "follow", "Follow"),
        Binding("u", "copy_url", "Copy URL"),
        Binding("t", "copy_token", "Copy token"),
        Binding("s", "send_sample", "Sample"),
        Binding("p", "replay", "Replay"),
        Binding("E", "edit_and_send", "Edit+send", show=False),
        Binding("question_mark", "help", "Help"),
        Binding("r", "reveal_token", "Reveal token", show=False),
        Binding("b", "toggle_raw", "Raw body", show=False),
        Binding("o", "open_body", "Whole body in $PAGER", show=False),
        Binding("w", "write_body", "Write body to a file", show=False),
        Binding("end", "follow", "Follow", show=False),
        Binding("1", "tab('summary')", "Summary", show=False),
        Binding("2", "tab('body')", "Body", show=False),
        Binding("3", "tab('headers')", "Headers", show=False),
        Binding("4", "tab('signature')", "Signature", show=False),
    ]

    def __init__(self, engine: EngineThread, inbox: EventInbox, started: ReceiverStarted) -> None:
        super().__init__()
        self.engine = engine
        self.inbox = inbox
        self.store = ExchangeStore()
        self.filter = ListFilter()
        self.state = HeaderState(
            callback_url=started.callback_url,
            verify_token=started.verify_token,
            tunnel_state=started.tunnel_state,
            recording=started.recording_path,
            forward_to=engine.service.settings.forward_to,
        )
        self.started = started
        self.raw_body = False
        self.with_accounts = bool(engine.service.settings.accounts)
        self.shown_columns = columns(self.with_accounts)
        self.selected_id: str | None = None
        self._moving_cursor = False
        self._detail_pending = False
        # Every file of this session (it rolls over into -2, -3... at the size limit), oldest first.
        self.session_parts: dict[Path, None] = dict.fromkeys([started.recording_path] if started.recording_path else [])

    def compose(self) -> ComposeResult:
        yield Static(id="recording-alarm")
        yield StatusHeader(id="status")
        yield DataTable(id="exchanges", cursor_type="row", zebra_stripes=True)
        with ContentSwitcher(initial="welcome", id="lower"):
            yield VerticalScroll(Static(id="welcome-text"), id="welcome")
            with TabbedContent(id="detail"):
                for name in ("summary", "body", "headers", "signature"):
                    with TabPane(name.capitalize(), id=name):
                        yield VerticalScroll(Static(id=f"{name}-text"))
        yield Input(placeholder=FILTER_HELP, id="search")
        yield Footer()

    def on_mount(self) -> None:
        table = self.query_one(DataTable)
        self._set_columns(self.size.width < NARROW_WIDTH)
        self.query_one("#search").display = False
        self.query_one("#welcome-text", Static).update(welcome_text(self.started, self.engine.service.settings))
        self._refresh_header()
        table.focus()
        self.set_interval(DRAIN_INTERVAL_S, self.drain)
        with contextlib.suppress(NotImplementedError, RuntimeError):
            for signum in (signal.SIGTERM, signal.SIGHUP):  # SIGHUP: the terminal window was closed
                asyncio.get_running_loop().add_signal_handler(signum, self.exit)

    def _set_columns(self, narrow: bool) -> None:
        """Pick the columns for this width; a narrow terminal keeps time, status, signature, summary."""
        self.shown_columns = columns(self.with_accounts, narrow)
        table = self.query_one(DataTable)
        table.clear(columns=True)
        for column in self.shown_columns:
            table.add_column(column, key=column.lower())

    def on_resize(self, event: Any) -> None:
        narrow = event.size.width < NARROW_WIDTH
        if narrow != (self.shown_columns != columns(self.with_accounts, False)):
            self._set_columns(narrow)
            self._rebuild_table()

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

    def drain(self) -> None:
        """Apply everything the engine published since the last tick, as one batch."""
        events = self.inbox.take(DRAIN_BATCH)
        if events:
            self.apply_events(events)

    def apply_events(self, events: Iterable[EngineEvent]) -> None:
        """Update the model, then the widgets once."""
        new_rows: list[ExchangeView] = []
        for event in events:
            if isinstance(event, ExchangeRecorded):
                if event.view.recording is not None:
                    self.session_parts.setdefault(event.view.recording, None)
                    self.state.recording = event.view.recording  # the part being written now
                self.store.add(event.view, event.record)
                self.filter.note_arrival(event.view, event.record)
                if self.filter.shows(event.view):
                    new_rows.append(event.view)
            elif isinstance(event, TunnelChanged):
                self.state.tunnel_state, self.state.tunnel_reason = event.state, event.reason
                if event.state == "up" and "changed" in event.reason:
                    self.notify(f"New Callback URL: {event.callback_url}. Paste it into Meta.", severity="warning")
                if event.state in ("up", "failed"):
                    self.state.callback_url = event.callback_url
                if event.state == "reconnecting":
                    self.notify(f"Tunnel down: {event.reason}", severity="error", timeout=8)
            elif isinstance(event, SelfTestFinished):
                verdict = "PASS" if event.ok else "FAIL"
                self.state.selftest, self.state.selftest_ok = f"{verdict} {event.elapsed_ms:.0f} ms", event.ok
                if not event.ok:
                    self.notify(f"Self-test failed: {event.detail}", severity="error", timeout=10)
            elif isinstance(event, Notice) and event.topic != "local-only":  # the welcome panel says it
                severity = {"error": "error", "warning": "warning"}.get(event.level, "information")
                self.notify(event.text, severity=severity, timeout=8)  # type: ignore[arg-type]
            elif isinstance(event, ReceiverStarted):
                self.state.callback_url = event.callback_url
            elif isinstance(event, ForwardCompleted):
                self._forward_completed(event)
            elif isinstance(event, RecordingHealth):
                self._recording_health(event)
        if new_rows:
            self._append_rows(new_rows)
        self._refresh_header()

    def _recording_health(self, event: RecordingHealth) -> None:
        """A failing recorder raises a banner that stays until writes work again; the recovery is a toast."""
        alarm = self.query_one("#recording-alarm", Static)
        if not event.ok:
            self.state.recording_failed = True
            alarm.update(recording_alarm_text(event))
            alarm.display = True
        elif self.state.recording_failed:
            self.state.recording_failed = False
            alarm.display = False
            where = f" to {event.path}" if event.path is not None else ""
            self.notify(f"Recording works again: writes{where} succeed, deliveries are answered 200 again.", timeout=10)

    def _forward_completed(self, event: ForwardCompleted) -> None:
        """--ack-first: the backend's late answer updates the row and the detail."""
        view = self.store.by_id.get(event.exchange_id)
        if view is None:
            return
        updated = replace(
            view,
            forward_status=event.forward.get("status"),
            forward_error=str(event.forward.get("error") or ""),
            forward_pending=False,
        )
        self.store.replace(updated)
        record = self.store.cached(view.id)
        if record is not None:
            self.store.remember(view.id, {**record, "forward": dict(event.forward)})
        table = self.query_one(DataTable)
        if view.id in table.rows:
            for column, cell in zip(table.columns, row_cells(updated, self.shown_columns), strict=True):
                table.update_cell(view.id, column, cell)
        if self.selected_id == view.id:
            self._show_selected()
        if event.forward.get("error"):
            self.notify(f"Backend: {event.forward['error']}", severity="error")

    def _append_rows(self, views: list[ExchangeView]) -> None:
        table = self.query_one(DataTable)
        for view in views:
            table.add_row(*row_cells(view, self.shown_columns), key=view.id)
        if table.row_count > MAX_TABLE_ROWS + TRIM_SLACK_ROWS:
            self._rebuild_table()
            return
        self.query_one(ContentSwitcher).current = "detail"
        if self.state.following:
            # A trickle shows at once; under a burst the detail is redrawn a few times a second.
            burst = len(views) > BURST_ROWS or self._detail_pending
            self._move_cursor(table.row_count - 1, deferred_detail=burst)

    def _move_cursor(self, row: int, deferred_detail: bool = False) -> None:
        table = self.query_one(DataTable)
        self._moving_cursor = True
        try:
            table.move_cursor(row=row, animate=False)
        finally:
            self._moving_cursor = False
        if not deferred_detail:
            self._show_selected()
        elif not self._detail_pending:
            # Under a burst, redraw the four detail panes a few times a second, not for every batch.
            self._detail_pending = True
            self.set_timer(DETAIL_REFRESH_S, self._deferred_detail)

    def _deferred_detail(self) -> None:
        self._detail_pending = False
        self._show_selected()

    def _rebuild_table(self) -> None:
        table = self.query_one(DataTable)
        table.clear()
        visible = [view for view in self.store.views if self.filter.shows(view)][-MAX_TABLE_ROWS:]
        for view in visible:
            table.add_row(*row_cells(view, self.shown_columns), key=view.id)
        if visible:
            self._move_cursor(table.row_count - 1)
        self._refresh_header()

    def _refresh_header(self) -> None:
        self.state.counters = self.store.counters
        self.state.filter_text = self.filter.describe()
        self.query_one(StatusHeader).show(self.state)

    # Selection and detail ----------------------------------------------------------------------

    @on(DataTable.RowHighlighted)
    def _row_highlighted(self, event: DataTable.RowHighlighted) -> None:
        if self._moving_cursor:
            return
        table = self.query_one(DataTable)
        self.state.following = table.cursor_row >= table.row_count - 1
        self._refresh_header()
        self._show_selected()

    def _record_for(self, view: ExchangeView) -> Mapping[str, Any] | None:
        record = self.store.cached(view.id)
        path = view.recording or self.started.recording_path  # the offset is into the part it was written to
        if record is None and view.offset >= 0 and path is not None:
            record = read_record_at(path, view.offset)
            if record is not None:
                self.store.remember(view.id, record)
        return record

    def _show_selected(self) -> None:
        table = self.query_one(DataTable)
        if table.row_count == 0:
            return
        row_key, _ = table.coordinate_to_cell_key(table.cursor_coordinate)
        view = self.store.by_id.get(str(row_key.value))
        if view is None:
            return
        self.selected_id = view.id
        record = self._record_for(view)
        if record is None:
            unavailable = Text.assemble(shown(view.headline), "\n(full record no longer available)")
            self.query_one("#summary-text", Static).update(unavailable)
            return
        self.query_one("#summary-text", Static).update(summary_renderable(record))
        self.query_one("#body-text", Static).update(body_renderable(record, self.raw_body))
        self.query_one("#headers-text", Static).update(headers_renderable(record))
        self.query_one("#signature-text", Static).update(signature_renderable(record))

    # Actions -----------------------------------------------------------------------------------

    def action_follow(self) -> None:
        """Jump to the newest exchange and keep following."""
        self.state.following = True
        table = self.query_one(DataTable)
        if table.row_count:
            self._move_cursor(table.row_count - 1)
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
        self.raw_body = not self.raw_body
        self._show_selected()
        self.query_one(TabbedContent).active = "body"

    def action_open_body(self) -> None:
        """The whole body in $PAGER (less): the Body tab shows only the first 64 KiB of a big one."""
        record = self._selected_record()
        if record is None:
            self.notify("Select an exchange first", severity="warning")
            return
        self._prepare_whole_body(record)

    @work(thread=True, exclusive=True, group="whole-body")
    def _prepare_whole_body(self, record: Mapping[str, Any]) -> None:
        """Pretty-printing megabytes takes a while: a thread does it, never the UI loop."""
        try:
            text = whole_body_text(record)
        except ValueError as exc:
            self.notify(f"Body unreadable: {exc}", severity="error")
            return
        self.call_from_thread(self._page, text, record)

    def _page(self, text: str, record: Mapping[str, Any]) -> None:
        """Hand the terminal to the pager; without a terminal (or a pager) write the body to a file instead."""
        try:
            command = shlex.split(os.environ.get("PAGER", "")) or ["less"]
            with self.suspend():
                subprocess.run(command, input=text.encode("utf-8"), check=False)
        except (SuspendNotSupported, OSError, ValueError) as exc:
            self.notify(f"No pager ({exc.__class__.__name__}: {exc}); writing the body to a file.", severity="warning")
            self._write_body(record)

    def action_write_body(self) -> None:
        """The exact body bytes to a private temp file, for an editor, jq or `wa-devtunnel decode`."""
        record = self._selected_record()
        if record is None:
            self.notify("Select an exchange first", severity="warning")
            return
        self._write_body(record)

    def _write_body(self, record: Mapping[str, Any]) -> None:
        """A name of our own making (never one from the record), created 0600 by mkstemp."""
        request = record.get("request") or {}
        try:
            body = request_body(request)
        except ValueError as exc:
            self.notify(f"Body unreadable: {exc}", severity="error")
            return
        suffix = ".bin" if "body_b64" in request else ".json"
        seq = record.get("seq")
        prefix = f"wa-devtunnel-seq{seq}-" if isinstance(seq, int) else "wa-devtunnel-body-"
        try:
            handle, name = tempfile.mkstemp(prefix=prefix, suffix=suffix)
            with os.fdopen(handle, "wb") as out:  # mkstemp creates it 0600: only you can read it
                out.write(body)
        except OSError as exc:
            self.notify(f"Could not write the body: {exc.strerror or exc}", severity="error")
            return
        self.notify(f"Whole body ({human_size(len(body))}, exact bytes) written to {name} (mode 0600)", timeout=15)

    def action_tab(self, name: str) -> None:
        """Switch the detail tab."""
        self.query_one(ContentSwitcher).current = "detail"
        self.query_one(TabbedContent).active = name

    def action_help(self) -> None:
        """Every key and the filter syntax."""
        self.push_screen(HelpScreen(self.BINDINGS))

    def action_search(self) -> None:
        """Open the filter bar."""
        search = self.query_one("#search", Input)
        search.display = True
        search.focus()

    def action_clear_filters(self) -> None:
        """Show everything again."""
        self.filter = ListFilter()
        search = self.query_one("#search", Input)
        search.value = ""
        search.display = False
        self.query_one(DataTable).focus()
        self._rebuild_table()

    def action_problems_only(self) -> None:
        """Only failed handshakes, bad signatures and non-2xx answers."""
        self.filter.problems_only = not self.filter.problems_only
        self._rebuild_table()

    @on(Input.Submitted, "#search")
    def _search_submitted(self, event: Input.Submitted) -> None:
        query = parse_filter(event.value)
        for problem in query.problems:
            self.notify(problem, severity="warning")
        self.filter = ListFilter(query=query, problems_only=self.filter.problems_only)
        self.query_one(DataTable).focus()
        if query.text:
            self._find_text(query.text, list(self.store.records.items()), list(self.session_parts))
        else:
            self._rebuild_table()

    def on_key(self, event: Any) -> None:
        search = self.query_one("#search", Input)
        if event.key == "escape" and search.has_focus:
            search.display = bool(search.value)
            self.query_one(DataTable).focus()

    @work(thread=True, exclusive=True, group="search")
    def _find_text(self, text: str, cached: list[tuple[str, Mapping[str, Any]]], parts: list[Path]) -> None:
        """Search bodies in every file of the session (memory holds only summaries); the UI hands over copies."""
        matches = {eid for eid, record in cached if text_in_record(record, text)}
        for path in parts:
            if path.exists():
                matches |= {str(r.get("id")) for r in read_recording(path).records if text_in_record(r, text)}
        self.call_from_thread(self._text_found, text, matches)

    def _text_found(self, text: str, matches: set[str]) -> None:
        if self.filter.query.text == text:
            self.filter.text_matches |= matches
            self._rebuild_table()
            self.notify(f"{len(self.filter.text_matches)} exchange(s) contain {text!r}")

    def action_send_sample(self) -> None:
        """POST a signed sample event to our own receiver."""
        self._send_sample()

    @work(group="sample")
    async def _send_sample(self) -> None:
        """The POST runs on the engine loop; awaiting its future here never makes the engine wait on the UI."""
        service = self.engine.service
        # The session's origin key makes our own receiver label it (sample); a stranger's header cannot.
        future = self.engine.submit(
            send_sample_event(service.local_url, service.settings.app_secret, origin_key=service.origin_key)
        )
        try:
            status = await asyncio.wrap_future(future)
        except Exception as exc:  # any failure is shown, never raised into the UI
            self.notify(f"Sample failed: {exc}", severity="error")
            return
        self.notify(f"Sample event sent: HTTP {status}")

    def _selected_record(self) -> Mapping[str, Any] | None:
        view = self.store.by_id.get(self.selected_id or "")
        return self._record_for(view) if view is not None else None

    def action_replay(self) -> None:
        """Send the selected exchange again, through our receiver to the forward target."""
        record = self._selected_record()
        if record is None or record.get("kind") not in ("event", "verify"):
            self.notify("Select an event or a handshake to replay", severity="warning")
            return
        self._replay(record, None)

    async def action_edit_and_send(self) -> None:
        """Edit the selected event's body ($EDITOR, else in-app), then re-sign and send it."""
        record = self._selected_record()
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
        if edited is None or edited == editable_text(request_body(record.get("request") or {})):
            self.notify("Nothing changed: not sent")
            return
        try:
            body = meta_json(json.loads(edited))
        except ValueError as exc:
            self.notify(f"Not sent: the body is not valid JSON ({exc})", severity="error")
            return
        self._replay(record, body)

    @work(group="replay")
    async def _replay(self, record: Mapping[str, Any], edited_body: bytes | None) -> None:
        service = self.engine.service
        try:
            result = await asyncio.wrap_future(
                self.engine.submit(
                    replay_through_receiver(
                        record, service.settings, service.local_url, edited_body, origin_key=service.origin_key
                    )
                )
            )
        except ReplayError as exc:
            self.notify(f"Not sent: {exc}", severity="error")
            return
        target = service.settings.forward_to or "wa-devtunnel's own receiver (no --forward-to)"
        what = "Edited body re-signed and sent" if edited_body is not None else f"Replayed seq {record.get('seq')}"
        self.notify(f"{what} to {target}: HTTP {result.relay_status}")

    def get_system_commands(self, screen: Screen[Any]) -> Iterable[SystemCommand]:
        """Every action in the command palette (ctrl+p)."""
        yield from super().get_system_commands(screen)
        for binding in self.BINDINGS:
            if isinstance(binding, Binding) and binding.description and "(" not in binding.action:
                yield SystemCommand(binding.description, f"key: {binding.key}", self._runner(binding.action))

    def _runner(self, action: str) -> Any:
        async def run() -> None:
            await self.run_action(action)

        return run
