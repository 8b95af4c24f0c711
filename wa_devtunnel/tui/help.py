"""Every key of the inspector, in one place: its bindings, the `?` screen and the command palette."""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Iterable, Iterator
from functools import partial
from typing import Any, NamedTuple

from rich.console import Group
from rich.table import Table
from rich.text import Text
from textual.app import ComposeResult, SystemCommand
from textual.binding import Binding, BindingType
from textual.containers import VerticalScroll
from textual.screen import ModalScreen
from textual.widgets import Static

from wa_devtunnel.tui.model import FILTER_HELP

# The footer fits 80 columns with the keys a developer reaches for first (short words: `description`);
# `?` and the command palette say what each key does in full (`tooltip`).
KEYS = [
    Binding("slash", "search", "Filter", tooltip="Filter the list (the filter syntax is below)"),
    Binding(
        "e",
        "problems_only",
        "Problems",
        tooltip="Problems only: failed handshakes and deliveries, bad "
        "signatures, error answers, backend failures (e again shows all)",
    ),
    Binding("x", "clear_filters", "Show all", tooltip="Clear the filters (/ and e): show every exchange again"),
    Binding("f", "follow", "Follow", tooltip="Follow: jump to the newest exchange and keep following"),
    Binding("s", "send_sample", "Sample", tooltip="Send a signed sample event to this receiver"),
    Binding("p", "replay", "Replay", tooltip="Replay the selected exchange through the receiver to --forward-to"),
    Binding("question_mark", "help", "Help", tooltip="Every key and the filter syntax"),
    Binding("q", "quit", "Quit", tooltip="Quit (the recording is kept)"),
    Binding("ctrl+c", "quit", "Quit", show=False, priority=True),
    # Above the list's and the detail's own end (InspectorApp.check_action leaves it to a text field).
    Binding("end", "follow_from_anywhere", "Follow", show=False, priority=True),
    Binding(
        "ctrl+l",
        "clear_list",
        "Clear list",
        show=False,
        tooltip="Clear the list: display only, the "
        "recording keeps every exchange and the header's tallies still count the whole session",
    ),
    Binding(
        "ctrl+d,shift+pagedown",
        "scroll_detail(1)",
        "Detail down",
        show=False,
        tooltip="Scroll the detail down half a pane, from the list",
    ),
    Binding(
        "ctrl+u,shift+pageup",
        "scroll_detail(-1)",
        "Detail up",
        show=False,
        tooltip="Scroll the detail up half a pane, from the list",
    ),
    Binding(
        "z",
        "zoom_detail",
        "Zoom detail",
        show=False,
        tooltip="A taller detail (the list keeps a few rows); z again for the usual split",
    ),
    Binding(
        "i",
        "states_in_full",
        "States in full",
        show=False,
        tooltip="Header: the lasting states (a failed tunnel and its fix, the registration, no webhook from Meta) "
        "in full; i again cuts them to keep the list in view (a click on the header does the same)",
    ),
    Binding("1", "tab('summary')", "Summary", show=False, tooltip="Detail: Summary tab (every item decoded)"),
    Binding("2", "tab('body')", "Body", show=False, tooltip="Detail: Body tab (pretty JSON)"),
    Binding("3", "tab('headers')", "Headers", show=False, tooltip="Detail: Headers tab"),
    Binding("4", "tab('signature')", "Signature", show=False, tooltip="Detail: Signature / handshake diagnosis"),
    Binding("b", "toggle_raw", "Raw body", show=False, tooltip="Body: pretty JSON or the exact bytes as received"),
    Binding("o", "open_body", "Whole body", show=False, tooltip="Open the whole body in $PAGER"),
    Binding("w", "write_body", "Write body", show=False, tooltip="Write the exact body bytes to a private file"),
    Binding("u", "copy_url", "Copy URL", show=False, tooltip="Copy the callback URL"),
    Binding("t", "copy_token", "Copy token", show=False, tooltip="Copy the verify token (without showing it)"),
    Binding("r", "reveal_token", "Reveal token", show=False, tooltip="Show or mask the verify token"),
    Binding(
        "E",
        "edit_and_send",
        "Edit+send",
        show=False,
        tooltip="Edit the selected event's body ($EDITOR, else in-app), re-sign it and send it",
    ),
    Binding(
        "L", "lifecycle", "Lifecycle", show=False, tooltip="Message lifecycle: statuses of each sent message, threads"
    ),
    Binding("R", "restart_engine", "Restart", show=False, tooltip="Restart the engine (after it stopped)"),
]
# Keys that belong to widgets, not to the app's bindings.
OTHER_KEYS = (
    ("up/down pgup/pgdn", "Move in the list, home to the oldest (moving up pauses follow mode)"),
    ("tab, shift+tab", "Move the focus: the list, the detail's tabs, the detail's text"),
    ("ctrl+p", "Command palette: find any action by name"),
)
KEY_NAMES = {
    "slash": "/",
    "question_mark": "?",
    "pagedown": "pgdn",
    "pageup": "pgup",
}


def key_label(keys: str) -> str:
    """`f, end` / `ctrl+d, shift+pgdn` / `/`: a binding's keys as a person types them."""
    labels = []
    for key in keys.split(","):
        *modifiers, name = key.strip().split("+")
        labels.append("+".join([*modifiers, KEY_NAMES.get(name, name)]))
    return ", ".join(labels)


class Key(NamedTuple):
    """One thing the inspector does, with every key that does it."""

    keys: str
    name: str
    words: str
    action: str


def described(bindings: Iterable[BindingType]) -> list[Key]:
    """Each described binding once per name, keys merged (`q, ctrl+c  Quit`; `f, end  Follow`)."""
    merged: dict[str, tuple[list[str], Binding]] = {}
    for binding in bindings:
        if isinstance(binding, Binding) and binding.description:
            merged.setdefault(binding.description, ([], binding))[0].append(key_label(binding.key))
    return [
        Key(", ".join(keys), name, first.tooltip or first.description, first.action)
        for name, (keys, first) in merged.items()
    ]


class HelpScreen(ModalScreen[None]):
    """Modal key reference; any of escape, q or ? closes it."""

    BINDINGS = [Binding("escape,q,question_mark", "dismiss", "Close")]
    DEFAULT_CSS = """
    HelpScreen { align: center middle; }
    HelpScreen > VerticalScroll { width: 90%; max-width: 110; height: 90%; border: thick $accent; padding: 0 1;
                                  background: $surface; }
    """

    def __init__(self, bindings: Iterable[BindingType]) -> None:
        super().__init__()
        self._keys = described(bindings)

    def compose(self) -> ComposeResult:
        table = Table(title="wa-devtunnel keys", show_edge=False, expand=True)
        table.add_column("Key", style="bold cyan", no_wrap=True)
        table.add_column("Action")
        for key in self._keys:
            table.add_row(Text(key.keys), Text(key.words))  # Text: a str cell would be parsed as markup
        for keys, words in OTHER_KEYS:
            table.add_row(Text(keys), Text(words))
        filters = Text.assemble(("\nFilter syntax (press /):\n", "bold"), FILTER_HELP.replace("  ", "\n"))
        # One Static in one scrolling container: one scrollbar, however small the terminal.
        with VerticalScroll():
            yield Static(Group(table, filters), id="help-text")


def binding_commands(
    bindings: Iterable[BindingType], run_action: Callable[[str], Awaitable[Any]]
) -> Iterator[SystemCommand]:
    """Every described key's action in the command palette (ctrl+p), once, found by its name."""
    for key in described(bindings):
        yield SystemCommand(key.name, f"{key.words} (key {key.keys})", partial(run_action, key.action))
