"""The live list: one row per exchange the filter lets through, newest last, following the newest until you move."""

from __future__ import annotations

from collections.abc import Callable, Iterable

from rich.text import Text
from textual import on
from textual.message import Message
from textual.widgets import DataTable

from wa_devtunnel.engine.exchange_view import ExchangeView
from wa_devtunnel.tui.rows import NARROW_WIDTH, columns, row_cells

MAX_TABLE_ROWS = 10_000
# DataTable.remove_row costs O(rows): trim rarely, by rebuilding with the newest rows.
TRIM_SLACK_ROWS = 2_500


class ExchangeList(DataTable[Text]):
    """Rows come from the app's store through `visible`; the list owns its columns, cursor and follow mode."""

    class CursorMoved(Message):
        """The highlighted row changed (by a key, or by following): the detail shows `selected_id`."""

    def __init__(self, with_accounts: bool, visible: Callable[[], Iterable[ExchangeView]], *, id: str) -> None:
        super().__init__(id=id, cursor_type="row", zebra_stripes=True)
        self.with_accounts = with_accounts
        self.shown_columns: tuple[str, ...] = ()
        self.following = True
        self._visible = visible

    def on_mount(self) -> None:
        """Columns for the terminal's width, before any row arrives."""
        self.fit_width(self.app.size.width)

    def fit_width(self, width: int) -> bool:
        """Pick the columns for this terminal width; True when they changed and the rows must be rebuilt."""
        shown = columns(self.with_accounts, width < NARROW_WIDTH)
        if shown == self.shown_columns:
            return False
        self.shown_columns = shown
        self.clear(columns=True)
        for column in shown:
            self.add_column(column, key=column.lower())
        return True

    @property
    def selected_id(self) -> str | None:
        """The exchange under the cursor, if there are rows."""
        if self.row_count == 0:
            return None
        row_key, _ = self.coordinate_to_cell_key(self.cursor_coordinate)
        return str(row_key.value)

    def add(self, views: list[ExchangeView]) -> bool:
        """Append rows (trimming by a rebuild past the cap); True when the cursor followed to the newest."""
        for view in views:
            self.add_row(*row_cells(view, self.shown_columns), key=view.id)
        if self.row_count > MAX_TABLE_ROWS + TRIM_SLACK_ROWS:
            self.rebuild()
            return True
        if self.following:
            self.move_cursor(row=self.row_count - 1, animate=False)
        return self.following

    def rebuild(self) -> None:
        """Show the newest `MAX_TABLE_ROWS` of what the filter lets through, the cursor on the newest."""
        self.clear()
        rows = list(self._visible())[-MAX_TABLE_ROWS:]
        for view in rows:
            self.add_row(*row_cells(view, self.shown_columns), key=view.id)
        if rows:
            self.move_cursor(row=self.row_count - 1, animate=False)

    def update(self, view: ExchangeView) -> None:
        """Redraw one exchange's row (a late backend answer), if it is shown."""
        if view.id in self.rows:
            for column, cell in zip(self.columns, row_cells(view, self.shown_columns), strict=True):
                self.update_cell(view.id, column, cell)

    def follow(self) -> None:
        """Jump to the newest row and keep following."""
        self.following = True
        if self.row_count:
            self.move_cursor(row=self.row_count - 1, animate=False)

    @on(DataTable.RowHighlighted)
    def _highlighted(self, event: DataTable.RowHighlighted) -> None:
        """Moving above the newest row pauses follow mode; back on it, following resumes."""
        event.stop()
        self.following = self.cursor_row >= self.row_count - 1
        self.post_message(self.CursorMoved())
