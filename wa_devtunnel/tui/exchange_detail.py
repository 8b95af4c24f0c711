"""The lower half: a welcome panel until the first exchange, then the selected one in four tabs."""

from __future__ import annotations

import os
import shlex
import subprocess
import tempfile
import time
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

from rich.text import Text
from textual import work
from textual.app import ComposeResult, SuspendNotSupported
from textual.containers import VerticalScroll
from textual.widgets import ContentSwitcher, Static, TabbedContent, TabPane

from wa_devtunnel.engine.exchange_view import ExchangeView
from wa_devtunnel.engine.recording import request_body
from wa_devtunnel.tui.detail import (
    body_renderable,
    headers_renderable,
    human_size,
    signature_renderable,
    summary_renderable,
    whole_body_text,
)
from wa_devtunnel.tui.model import ExchangeStore
from wa_devtunnel.tui.safe import shown

TABS = ("summary", "body", "headers", "signature")
# Following arrivals, the detail is drawn at most every REDRAW_INTERVAL_S (each draw lays the screen out
# again, and nobody reads four panes changing faster); in a burst every BURST_REDRAW_INTERVAL_S, its visible tab.
REDRAW_INTERVAL_S = 0.25
BURST_REDRAW_INTERVAL_S = 1.0
PANES = {
    "headers": headers_renderable,
    "signature": signature_renderable,
}
ReadRecord = Callable[[Path, int], Mapping[str, Any] | None]


class ExchangeDetail(ContentSwitcher):
    """Its own state: which exchange it shows, and how (pretty or raw body); records come from the store or disk.

    Three panes: the welcome until the first exchange, the exchange's tabs, and `empty` when no exchange is
    selected any more (a filter matching nothing, a cleared list): never an exchange the list no longer shows.
    """

    def __init__(
        self, welcome: Text, store: ExchangeStore, read_record: ReadRecord, recording: Path | None, *, id: str
    ) -> None:
        super().__init__(initial="welcome", id=id)
        self._welcome = welcome
        self._store = store
        self._read_record = read_record
        self._recording = recording
        self.raw_body = False
        self._shown: ExchangeView | None = None
        self._wanted: ExchangeView | None = None
        self.redraw_pending = False
        self._last_draw = 0.0
        # Tabs not redrawn during a burst: drawn when they come forward.
        self._stale: set[str] = set()
        # The exchange each tab shows: another one starts at its top, not where the last one was scrolled to.
        self._drawn: dict[str, str] = {}

    def compose(self) -> ComposeResult:
        yield VerticalScroll(Static(self._welcome, id="welcome-text"), id="welcome")
        yield VerticalScroll(Static(id="empty-text"), id="empty")
        with TabbedContent(id="detail"):
            for name in TABS:
                with TabPane(name.capitalize(), id=name):
                    yield VerticalScroll(Static(id=f"{name}-text"))

    def show_exchange(self, view: ExchangeView | None, deferred: bool = False, burst: bool = False) -> None:
        """Draw one exchange now (a key), or, following arrivals (`deferred`), at most every REDRAW_INTERVAL_S
        (BURST_REDRAW_INTERVAL_S in a `burst`): at once after a quiet spell, else the latest one asked for when
        the interval is up (visible tab only)."""
        self._wanted = view
        if deferred:
            interval = BURST_REDRAW_INTERVAL_S if burst else REDRAW_INTERVAL_S
            wait = self._last_draw + interval - time.monotonic()
            if self.redraw_pending:
                return
            if wait > 0:
                self.redraw_pending = True
                self.set_timer(wait, self._redraw)
                return
        if view is not None:
            self._shown = view
            if self.current == "empty":
                self.current = "detail"
            self._draw(view, self._record_for(view))

    def show_empty(self, why: Text) -> None:
        """No exchange selected: say why, and forget the one shown (p, E, o and w then have nothing to act on)."""
        self._shown = self._wanted = None
        self.query_one("#empty-text", Static).update(why)
        self.current = "empty"

    def scroll_shown(self, direction: int) -> None:
        """Half a pane down (1) or up (-1) in whatever the detail shows, while the focus stays in the list."""
        pane = self._visible_pane()
        pane.scroll_relative(y=direction * max(1, pane.scrollable_content_region.height // 2), animate=False)

    def _visible_pane(self) -> VerticalScroll:
        if self.current == "detail":
            tab = self.query_one(TabbedContent).active or "summary"
            return self.query_one(f"#{tab}", TabPane).query_one(VerticalScroll)
        return self.query_one(f"#{self.current or 'welcome'}", VerticalScroll)

    @property
    def shown_id(self) -> str | None:
        """The exchange on screen."""
        return self._shown.id if self._shown is not None else None

    def _redraw(self) -> None:
        """A burst's redraw: the visible tab only (the others when they come forward)."""
        self.redraw_pending = False
        view = self._wanted
        if view is not None:
            self._shown = view
            self._draw(view, self._record_for(view), only=self.query_one(TabbedContent).active or "summary")

    def on_tabbed_content_tab_activated(self, event: TabbedContent.TabActivated) -> None:
        """A tab skipped during a burst is drawn as it comes forward."""
        name = event.pane.id or ""
        if name in self._stale and self._shown is not None:
            self._draw(self._shown, self._record_for(self._shown), only=name)

    def shown_record(self) -> Mapping[str, Any] | None:
        """The whole record of the exchange on screen (read back from its file if it left the cache)."""
        return self._record_for(self._shown) if self._shown is not None else None

    def _record_for(self, view: ExchangeView) -> Mapping[str, Any] | None:
        record = self._store.cached(view.id)
        path = view.recording or self._recording  # the offset is into the part it was written to
        if record is None and view.offset >= 0 and path is not None:
            record = self._read_record(path, view.offset)
            if record is not None:
                self._store.remember(view.id, record)
        return record

    def _draw(self, view: ExchangeView, record: Mapping[str, Any] | None, only: str | None = None) -> None:
        """Every tab for one exchange (or `only` one, the rest marked stale); a record no longer on disk
        leaves its headline and says so."""
        if record is None:
            unavailable = Text.assemble(shown(view.headline), "\n(full record no longer available)")
            self.query_one("#summary-text", Static).update(unavailable)
            return
        self._last_draw = time.monotonic()
        names = TABS if only is None else (only,)
        for name in names:
            if name == "body":
                renderable = body_renderable(record, self.raw_body)
            elif name == "summary":  # the sender's address: the view's (the tunnel's header) when it has one
                renderable = summary_renderable(record, getattr(view, "client", ""))
            else:
                renderable = PANES[name](record)
            self.query_one(f"#{name}-text", Static).update(renderable)
            if self._drawn.get(name) != view.id:
                self._drawn[name] = view.id
                self.query_one(f"#{name}", TabPane).query_one(VerticalScroll).scroll_home(animate=False)
        self._stale = set(TABS) - set(names)

    def tab(self, name: str) -> None:
        """Switch to a tab (and away from the welcome panel)."""
        self.current = "detail"
        self.query_one(TabbedContent).active = name

    def toggle_raw(self) -> None:
        """Pretty JSON or the exact bytes; the Body tab comes forward (the app redraws the selection)."""
        self.raw_body = not self.raw_body
        self.query_one(TabbedContent).active = "body"

    def open_whole_body(self) -> None:
        """The whole body in $PAGER (less): the Body tab shows only the first 64 KiB of a big one."""
        record = self.shown_record()
        if record is None:
            self.notify("Select an exchange first", severity="warning")
        else:
            self._prepare_whole_body(record)

    @work(thread=True, exclusive=True, group="whole-body")
    def _prepare_whole_body(self, record: Mapping[str, Any]) -> None:
        """Pretty-printing megabytes takes a while: a thread does it, never the UI loop."""
        try:
            text = whole_body_text(record)
        except ValueError as exc:
            self.notify(f"Body unreadable: {exc}", severity="error")
            return
        self.app.call_from_thread(self._page, text, record)

    def _page(self, text: str, record: Mapping[str, Any]) -> None:
        """Hand the terminal to the pager; without a terminal (or a pager) write the body to a file instead."""
        try:
            command = shlex.split(os.environ.get("PAGER", "")) or ["less"]
            with self.app.suspend():
                subprocess.run(command, input=text.encode("utf-8"), check=False)
        except (SuspendNotSupported, OSError, ValueError) as exc:
            self.notify(f"No pager ({exc.__class__.__name__}: {exc}); writing the body to a file.", severity="warning")
            self._write_body(record)

    def write_body(self) -> None:
        """The exact body bytes to a private temp file, for an editor, jq or `wa-devtunnel decode`."""
        record = self.shown_record()
        if record is None:
            self.notify("Select an exchange first", severity="warning")
        else:
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
