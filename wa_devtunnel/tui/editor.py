"""Editing a body before re-sending: $EDITOR when set, else an in-app editor."""

from __future__ import annotations

import json
import os
import shlex
import subprocess
import tempfile
from pathlib import Path

from rich.text import Text
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Vertical
from textual.notifications import SeverityLevel
from textual.screen import ModalScreen
from textual.widgets import Static, TextArea

from wa_devtunnel.rules.samples.payloads import meta_json
from wa_devtunnel.rules.untrusted import json_visible, visible


def editable_text(body: bytes) -> str:
    """Pretty JSON is easier to edit; what is sent is re-serialised in Meta's compact style.

    Controls, bidi and lone surrogates inside strings stay `\\u` escapes (the same JSON value), so the
    editor shows them and the temp file for $EDITOR can be written as UTF-8.
    """
    try:
        return json_visible(json.dumps(json.loads(body), indent=2, ensure_ascii=False))
    except (ValueError, RecursionError):
        return visible(body.decode("utf-8", "replace"), keep_newlines=True)


class EditRejected(Exception):
    """Why an edited body is not sent; the message is the developer's toast."""

    def __init__(self, message: str, severity: SeverityLevel) -> None:
        super().__init__(message)
        self.severity = severity


def edited_body(original: bytes, edited: str | None) -> bytes:
    """The edited JSON in Meta's compact style, ready to re-sign; EditRejected when unchanged or not JSON."""
    if edited is None or edited == editable_text(original):
        raise EditRejected("Nothing changed: not sent", "information")
    try:
        return meta_json(json.loads(edited))
    except ValueError as exc:
        raise EditRejected(f"Not sent: the body is not valid JSON ({exc})", "error") from exc


def edit_with_external_editor(text: str) -> str | None:
    """Run $VISUAL/$EDITOR on a temp file (the caller suspends the UI); None if unchanged or failed."""
    command = os.environ.get("VISUAL") or os.environ.get("EDITOR")
    if not command:
        return None
    with tempfile.NamedTemporaryFile("w", suffix=".json", delete=False, encoding="utf-8") as handle:
        handle.write(text)
        path = Path(handle.name)
    try:
        if subprocess.call([*shlex.split(command), str(path)]) != 0:
            return None
        edited = path.read_text(encoding="utf-8")
    finally:
        path.unlink(missing_ok=True)
    return edited if edited != text else None


class BodyEditor(ModalScreen[str | None]):
    """In-app editor: ctrl+s re-signs and sends, escape cancels."""

    BINDINGS = [Binding("ctrl+s", "send", "Re-sign and send"), Binding("escape", "cancel", "Cancel")]
    DEFAULT_CSS = """
    BodyEditor { align: center middle; }
    BodyEditor > Vertical { width: 95%; height: 90%; border: thick $accent; background: $surface; }
    BodyEditor TextArea { height: 1fr; }
    """

    def __init__(self, text: str) -> None:
        super().__init__()
        self._text = text

    def compose(self) -> ComposeResult:
        with Vertical():
            yield Static(Text("Edit the body, then ctrl+s to re-sign with your App Secret and send; escape cancels."))
            yield TextArea(self._text, language="json", id="body-editor")

    def action_send(self) -> None:
        """Hand the edited text back to the app."""
        self.dismiss(self.query_one(TextArea).text)

    def action_cancel(self) -> None:
        """Nothing is sent."""
        self.dismiss(None)
