"""The lower half: a welcome panel until the first exchange, then the selected one in four tabs."""

from __future__ import annotations

import os
import shlex
import subprocess
import tempfile
from collections.abc import Mapping
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
from wa_devtunnel.tui.safe import shown

TABS = ("summary", "body", "headers", "signature")


class ExchangeDetail(ContentSwitcher):
    """Its own state is the body view (pretty or raw); the app tells it what to show."""

    def __init__(self, welcome: Text, *, id: str) -> None:
        super().__init__(initial="welcome", id=id)
        self._welcome = welcome
        self.raw_body = False

    def compose(self) -> ComposeResult:
        yield VerticalScroll(Static(self._welcome, id="welcome-text"), id="welcome")
        with TabbedContent(id="detail"):
            for name in TABS:
                with TabPane(name.capitalize(), id=name):
                    yield VerticalScroll(Static(id=f"{name}-text"))

    def show(self, view: ExchangeView, record: Mapping[str, Any] | None) -> None:
        """Every tab for one exchange; a record no longer on disk leaves its headline and says so."""
        if record is None:
            unavailable = Text.assemble(shown(view.headline), "\n(full record no longer available)")
            self.query_one("#summary-text", Static).update(unavailable)
            return
        self.query_one("#summary-text", Static).update(summary_renderable(record))
        self.query_one("#body-text", Static).update(body_renderable(record, self.raw_body))
        self.query_one("#headers-text", Static).update(headers_renderable(record))
        self.query_one("#signature-text", Static).update(signature_renderable(record))

    def tab(self, name: str) -> None:
        """Switch to a tab (and away from the welcome panel)."""
        self.current = "detail"
        self.query_one(TabbedContent).active = name

    def toggle_raw(self) -> None:
        """Pretty JSON or the exact bytes; the Body tab comes forward (the app redraws the selection)."""
        self.raw_body = not self.raw_body
        self.query_one(TabbedContent).active = "body"

    def open_whole_body(self, record: Mapping[str, Any]) -> None:
        """The whole body in $PAGER (less): the Body tab shows only the first 64 KiB of a big one."""
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
            self.write_body(record)

    def write_body(self, record: Mapping[str, Any]) -> None:
        """The exact body bytes to a private temp file, named by us (never by the record), created 0600."""
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
