"""The message lifecycle screen (key L): each message the business sent with what Meta reported about it
(`sent 10:00:01 -> delivered +2s -> read +40s`, pricing, callback data, or why it failed), and the selected
contact's thread in and out.

Built from the session's recording, the source of truth (the live list holds only small views): read in
a worker thread, from where the last read stopped, whenever the inspector has applied new exchanges.
"""

from __future__ import annotations

import contextlib
import json
import threading
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any, NamedTuple

from rich.text import Text
from textual import on, work
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import VerticalScroll
from textual.screen import Screen
from textual.widgets import DataTable, Footer, Static
from textual.widgets.data_table import RowDoesNotExist

from wa_devtunnel.rules.decode.items import short_id
from wa_devtunnel.rules.lifecycle import (
    MESSAGE_LIMIT,
    LifecycleBook,
    TrackedMessage,
    chain_text,
    clock,
    failure_text,
    moment,
    party_text,
    pricing_text,
    thread_line,
)
from wa_devtunnel.tui.safe import data

SHOWN_LIMIT = 1000  # newest sent messages in the table (the book keeps up to MESSAGE_LIMIT)
THREAD_LIMIT = 200  # newest messages of a thread shown
CHECK_INTERVAL_S = 0.5  # how often an open screen looks whether the inspector applied new exchanges
_EVENT_MARK = b'"kind":"event"'  # the recorder writes compact JSON: other lines are skipped unparsed
COLUMNS = (("Sent", 8), ("Id", 20), ("To", 16), ("Callback data", 16), ("Status", 44), ("Pricing / failure", 40))


class MessageRow(NamedTuple):
    """One table row, made in the worker: the wamid (its key) and its cells as Text (never markup)."""

    wamid: str
    cells: tuple[Text, ...]


def message_row(message: TrackedMessage) -> MessageRow:
    """The cells of one sent message: when, short id, to, callback data, status chain, pricing or failure."""
    failure = failure_text(message)
    status_style = "red" if message.current == "failed" else "green" if message.current in ("read", "played") else ""
    cells = (
        Text(clock(message.when) if message.when else "--:--:--"),
        data(short_id(message.wamid)),
        data(party_text(message)),
        data(message.biz_opaque_callback_data, limit=30),
        data(chain_text(message), status_style),
        data(failure, "bold red") if failure else data(pricing_text(message), "dim"),
    )
    return MessageRow(message.wamid, cells)


def _message_detail(message: TrackedMessage) -> Text:
    """Everything known about the selected message: full id, callback data, pricing, conversation, each status."""
    text = Text()
    text.append("Message ", "bold")
    text.append_text(data(message.wamid))
    direction = {"echo": "echo (WhatsApp Business app) to", "from": "from"}.get(message.direction, "to")
    text.append(f"\n  {direction} ")
    text.append_text(data(party_text(message)))
    if message.business:
        text.append(" (business number ")
        text.append_text(data(message.business, limit=40))
        text.append(")")
    for label, value in (
        ("callback data", message.biz_opaque_callback_data),
        ("pricing", pricing_text(message)),
        ("conversation", message.conversation_id),
        ("conversation category", message.conversation_category),
    ):
        if value:
            text.append(f"\n  {label}: ")
            text.append_text(data(value, limit=200))
    expiry = message.conversation_expiration
    if expiry.isdigit() and len(expiry) <= 12:
        text.append(f"\n  conversation expires: {moment(int(expiry))}")
    for seen in message.statuses:
        when = moment(seen.when) if seen.when is not None else "(no time)"
        got = f", received {clock(seen.received)}" if seen.received is not None else ""
        text.append(f"\n  {when}  ")
        text.append_text(data(seen.status, "bold", limit=30))
        if seen.participant:
            text.append(" by ")
            text.append_text(data(seen.participant, limit=40))
        text.append(f"  (exchange seq {seen.seq}{got})", "dim")
        for problem in seen.problems:
            text.append("\n      ")
            text.append_text(data(problem.text(), "bold red"))
    if message.statuses_cut:
        text.append(f"\n  ... {message.statuses_cut} more status(es) not kept")
    if message.copies:
        text.append(f"\n  {message.copies} repeated delivery(ies) of what was already known (Meta's retries)", "dim")
    return text


def thread_text(book: LifecycleBook, wamid: str) -> Text:
    """The selected message's detail, then its contact's (or group's) thread, oldest first."""
    message = book.message(wamid)
    if message is None:
        return Text("This message is no longer in memory (the recording keeps it).")
    text = _message_detail(message)
    thread = book.thread(message.thread_key)
    text.append("\n\nThread with ", "bold")
    text.append_text(data(party_text(message), "bold"))
    text.append(f" ({len(thread)} message(s) in and out)\n", "bold")
    if len(thread) > THREAD_LIMIT:
        text.append(f"... {len(thread) - THREAD_LIMIT} older message(s)\n", "dim")
    for other in thread[-THREAD_LIMIT:]:
        style = "reverse" if other.wamid == wamid else "cyan" if not other.outgoing else ""
        text.append_text(data(thread_line(other), style))
        text.append("\n")
    return text


def read_new_records(path: Path, offset: int) -> tuple[list[dict[str, Any]], int]:
    """Whole event lines of `path` from `offset` on, and where the next read starts (never a half-written line)."""
    records: list[dict[str, Any]] = []
    try:
        with open(path, "rb") as handle:
            handle.seek(offset)
            for raw in handle:
                if not raw.endswith(b"\n"):
                    break  # still being written: read next time
                offset += len(raw)
                if _EVENT_MARK not in raw:
                    continue
                try:
                    record = json.loads(raw)
                except (ValueError, RecursionError):
                    continue  # a damaged line: readers skip it
                if isinstance(record, dict):
                    records.append(record)
                    if len(records) % 200 == 0:
                        time.sleep(0)  # let the UI thread have the GIL during a long read
    except OSError:
        pass
    return records, offset


class LifecycleSource:
    """The book and where each recording file was read up to; fed by one worker at a time."""

    def __init__(self, limit: int = MESSAGE_LIMIT) -> None:
        self.book = LifecycleBook(limit)
        self.lock = threading.Lock()
        self.offsets: dict[Path, int] = {}
        self.exchanges = 0

    def read(self, parts: Sequence[Path]) -> list[MessageRow]:
        """Feed what the files gained since the last read; the newest SHOWN_LIMIT sent messages as rows."""
        for path in parts:
            records, offset = read_new_records(path, self.offsets.get(path, 0))
            with self.lock:
                for record in records:
                    self.book.add_record(record)
                self.exchanges += len(records)
                self.offsets[path] = offset
        with self.lock:
            return [message_row(m) for m in self.book.outgoing(SHOWN_LIMIT)]

    def thread(self, wamid: str) -> Text:
        with self.lock:
            return thread_text(self.book, wamid)

    def title(self, parts: Sequence[Path]) -> Text:
        with self.lock:
            book, exchanges = self.book, self.exchanges
            sent, threads, dropped = book.outgoing_count, book.threads(), book.dropped
        if not parts:
            return Text("Message lifecycle: the recording is off (--no-record), and this view reads the recording.")
        text = Text("Message lifecycle", "bold")
        text.append(f"  {sent} sent message(s), {threads} contact(s) and group(s), from {exchanges} event(s)")
        if sent > SHOWN_LIMIT:
            text.append(f"; the newest {SHOWN_LIMIT} shown")
        if dropped:
            text.append(f"; {dropped} oldest message(s) forgotten (the recording keeps them)")
        text.append("\nNewest first. Select a message for its statuses and its contact's thread. Esc closes.", "dim")
        return text


class LifecycleScreen(Screen[None]):
    """Sent messages with their statuses, and the selected one's thread; kept installed, so reopening is instant."""

    BINDINGS = [Binding("escape", "app.pop_screen", "Close")]

    def __init__(self, parts: Callable[[], Sequence[Path]], arrivals: Callable[[], int]) -> None:
        """`parts`: the session's recording files so far; `arrivals`: a count that grows as exchanges are applied."""
        super().__init__()
        self._parts = parts
        self._arrivals = arrivals
        self.source = LifecycleSource()
        self._seen_arrivals = -1
        self._reading = False
        self._again = False

    def compose(self) -> ComposeResult:
        yield Static(id="lifecycle-title")
        table: DataTable[Text] = DataTable(id="lifecycle-messages", cursor_type="row", zebra_stripes=True)
        for label, width in COLUMNS:
            table.add_column(label, width=width, key=label)
        yield table
        yield VerticalScroll(Static(id="lifecycle-thread"), id="lifecycle-thread-pane")
        yield Footer()

    def on_mount(self) -> None:
        self.set_interval(CHECK_INTERVAL_S, self._check)

    def on_screen_resume(self) -> None:
        self.query_one(DataTable).focus()
        self._check()

    def _check(self) -> None:
        """Shown and the inspector applied exchanges since the last read: read the recording from there."""
        if not self.is_current:
            return
        arrivals = self._arrivals()
        if arrivals == self._seen_arrivals:
            return
        self._seen_arrivals = arrivals
        if self._reading:
            self._again = True
            return
        self._reading = True
        self._read(tuple(self._parts()))

    @work(thread=True, group="lifecycle")
    def _read(self, parts: tuple[Path, ...]) -> None:
        rows: list[MessageRow] | None
        try:
            rows, title = self.source.read(parts), self.source.title(parts)
        except Exception as exc:  # never take the inspector down: say it, keep what was shown
            rows, title = None, data(f"Message lifecycle: reading the recording failed: {type(exc).__name__}: {exc}")
        with contextlib.suppress(RuntimeError):  # the app is closing
            self.app.call_from_thread(self._show, rows, title)

    def _show(self, rows: list[MessageRow] | None, title: Text) -> None:
        self._reading = False
        self.query_one("#lifecycle-title", Static).update(title)
        if rows is None:
            return
        table = self.query_one(DataTable)
        selected = self.selected_wamid()
        table.clear()
        for row in rows:
            table.add_row(*row.cells, key=row.wamid)
        if selected is not None:
            with contextlib.suppress(RowDoesNotExist):
                table.move_cursor(row=table.get_row_index(selected))
        self._show_thread()
        if self._again:
            self._again = False
            self._seen_arrivals = -1
            self._check()

    def selected_wamid(self) -> str | None:
        table = self.query_one(DataTable)
        if not table.row_count:
            return None
        key = table.coordinate_to_cell_key(table.cursor_coordinate).row_key
        return key.value

    def _show_thread(self) -> None:
        wamid = self.selected_wamid()
        pane = self.query_one("#lifecycle-thread", Static)
        if wamid is None:
            pane.update(Text("No message sent by the business yet: its statuses appear here as Meta reports them."))
        else:
            pane.update(self.source.thread(wamid))

    @on(DataTable.RowHighlighted)
    def _row_highlighted(self) -> None:
        self._show_thread()
