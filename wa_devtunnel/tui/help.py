"""Every key of the inspector, in one place: its bindings, the `?` screen and the command palette."""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Iterable, Iterator
from functools import partial
from typing import Any

from rich.table import Table
from rich.text import Text
from textual.app import ComposeResult, SystemCommand
from textual.binding import Binding, BindingType
from textual.containers import VerticalScroll
from textual.screen import ModalScreen
from textual.widgets import Static

from wa_devtunnel.tui.model import FILTER_HELP

KEYS = [
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
    Binding("R", "restart_engine", "Restart the engine (after it stopped)", show=False),
    Binding("question_mark", "help", "Help"),
    Binding("L", "lifecycle", "Message lifecycle: statuses of each sent message, threads", show=False),
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


class HelpScreen(ModalScreen[None]):
    """Modal key reference; any of escape, q or ? closes it."""

    BINDINGS = [Binding("escape,q,question_mark", "dismiss", "Close")]
    DEFAULT_CSS = """
    HelpScreen { align: center middle; }
    HelpScreen > VerticalScroll { width: 90%; max-width: 100; height: 80%; border: thick $accent; padding: 1 2;
                                  background: $surface; }
    """

    def __init__(self, bindings: Iterable[BindingType]) -> None:
        super().__init__()
        self._keys = [b for b in bindings if isinstance(b, Binding)]

    def compose(self) -> ComposeResult:
        table = Table(title="wa-devtunnel keys", show_edge=False, expand=True)
        table.add_column("Key", style="bold cyan", no_wrap=True)
        table.add_column("Action")
        for binding in self._keys:
            key = binding.key.replace("slash", "/").replace("question_mark", "?")
            table.add_row(Text(key), Text(binding.description))  # Text: a str cell would be parsed as markup
        table.add_row(Text("up/down, pgup/pgdn"), Text("move in the list (moving up pauses follow mode)"))
        table.add_row(Text("ctrl+p"), Text("command palette: find any action by name"))
        filters = Text.assemble(("\nFilter syntax (press /):\n", "bold"), FILTER_HELP.replace("  ", "\n"))
        with VerticalScroll():
            yield Static(table)
            yield Static(filters)


def binding_commands(
    bindings: Iterable[BindingType], run_action: Callable[[str], Awaitable[Any]]
) -> Iterator[SystemCommand]:
    """Every described key's action in the command palette (ctrl+p), found by its name."""
    for binding in bindings:
        if isinstance(binding, Binding) and binding.description and "(" not in binding.action:
            yield SystemCommand(binding.description, f"key: {binding.key}", partial(run_action, binding.action))
