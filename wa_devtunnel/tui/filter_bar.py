"""The / bar: key:value conditions and free text for the list; enter applies, escape goes back to the list."""

from __future__ import annotations

from textual import events
from textual.message import Message
from textual.widgets import Input

from wa_devtunnel.tui.model import FILTER_HELP, ExchangeFilter, parse_filter


class FilterBar(Input):
    """Hidden until / is pressed; stays visible while it holds a filter."""

    class Applied(Message):
        """The developer pressed enter: the list shows what `query` lets through."""

        def __init__(self, query: ExchangeFilter) -> None:
            super().__init__()
            self.query = query

    class Left(Message):
        """Escape: the focus goes back to the list."""

    def __init__(self, *, id: str) -> None:
        super().__init__(placeholder=FILTER_HELP, id=id)

    def on_mount(self) -> None:
        self.display = False

    def open(self) -> None:
        """Show the bar and type into it."""
        self.display = True
        self.focus()

    def clear(self) -> None:
        """Empty and hidden again."""
        self.value = ""
        self.display = False

    def on_input_submitted(self, event: Input.Submitted) -> None:
        """Parse the text; unknown keys are reported, never fatal."""
        event.stop()
        query = parse_filter(event.value)
        for problem in query.problems:
            self.notify(problem, severity="warning")
        self.post_message(self.Applied(query))

    def on_key(self, event: events.Key) -> None:
        if event.key == "escape":
            self.display = bool(self.value)
            self.post_message(self.Left())
