"""Editing a body before re-sending: $EDITOR when set, else an in-app editor."""

from __future__ import annotations

import json
import os
import shlex
import subprocess
import tempfile
from pathlib import Path
from typing import NamedTuple

from rich.text import Text
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Vertical
from textual.notifications import SeverityLevel
from textual.screen import ModalScreen
from textual.widgets import Footer, Static, TextArea

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


class JsonProblem(NamedTuple):
    """Why an edit is not JSON (`line 3, column 5: Expecting ',' delimiter`) and where, as the editor's
    (row, column) from 0 (None when the parser gave no place)."""

    why: str
    at: tuple[int, int] | None


def json_problem(text: str) -> JsonProblem | None:
    """What keeps `text` from being JSON; None when it is JSON."""
    try:
        json.loads(text)
    except json.JSONDecodeError as exc:
        return JsonProblem(f"line {exc.lineno}, column {exc.colno}: {exc.msg}", (exc.lineno - 1, exc.colno - 1))
    except RecursionError:
        return JsonProblem("nested too deeply to parse", None)
    return None


def edited_body(original: bytes, edited: str | None) -> bytes:
    """The edited JSON in Meta's compact style, ready to re-sign; EditRejected when unchanged or not JSON."""
    if edited is None or edited == editable_text(original):
        raise EditRejected("Nothing changed: not sent", "information")
    problem = json_problem(edited)
    if problem is not None:
        raise EditRejected(f"Not sent: the body is not valid JSON ({problem.why})", "error")
    return meta_json(json.loads(edited))


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
    """In-app editor: ctrl+s re-signs and sends, escape cancels. An edit that is not JSON (or not an edit)
    stays open with the reason above it and the cursor where the parser stopped: nothing typed is lost."""

    BINDINGS = [Binding("ctrl+s", "send", "Re-sign and send"), Binding("escape", "cancel", "Cancel")]
    DEFAULT_CSS = """
    BodyEditor { align: center middle; }
    BodyEditor > Vertical { width: 95%; height: 1fr; border: thick $accent; background: $surface; }
    BodyEditor TextArea { height: 1fr; }
    BodyEditor #editor-problem { display: none; color: $error; text-style: bold; }
    """

    def __init__(self, text: str, original: str | None = None) -> None:
        """`text` to edit; `original` is the body as recorded when `text` is already an edit ($EDITOR's)."""
        super().__init__()
        self._text = text
        self._original = text if original is None else original

    def compose(self) -> ComposeResult:
        with Vertical():
            yield Static(Text("Edit the body, then ctrl+s to re-sign with your App Secret and send; escape cancels."))
            yield Static(id="editor-problem")
            yield TextArea(self._text, language="json", id="body-editor")
        yield Footer()  # this screen's keys, not the inspector's

    def on_mount(self) -> None:
        if self._text != self._original:  # $EDITOR's edit that did not parse: say why at once
            self._refuse(self._text)

    def action_send(self) -> None:
        """Hand the edited text back to the app, once it is JSON and differs from the recorded body."""
        text = self.query_one(TextArea).text
        if not self._refuse(text):
            self.dismiss(text)

    def _refuse(self, text: str) -> bool:
        """Show why `text` cannot be sent, in place (the cursor to the parser's stop); False when it can."""
        problem = self.query_one("#editor-problem", Static)
        if text == self._original:
            why = "Nothing changed yet: edit the body, or escape to cancel."
        else:
            found = json_problem(text)
            if found is None:
                problem.display = False
                return False
            why = f"Not valid JSON, {found.why}. Fix it and press ctrl+s again (escape cancels)."
            if found.at is not None:
                self.query_one(TextArea).cursor_location = found.at
        problem.update(Text(why))
        problem.display = True
        self.query_one(TextArea).focus()
        return True

    def action_cancel(self) -> None:
        """Nothing is sent."""
        self.dismiss(None)
