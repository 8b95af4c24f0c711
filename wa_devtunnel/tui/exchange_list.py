"""The live list: one row per exchange the filter lets through, newest last, following the newest until you move.

A virtual list (Textual's Line API): the list keeps references to the views it shows, and draws only the
rows on screen, each from its view when it scrolls into sight. An arrival costs a list append; nothing is
measured per row (the columns have fixed widths), so a burst of 50,000 exchanges costs no more to draw
than the last screenful.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from typing import ClassVar

from rich.cells import cell_len
from rich.segment import Segment
from rich.style import Style, StyleType
from rich.text import Text
from textual import events
from textual.binding import Binding, BindingType
from textual.cache import LRUCache
from textual.geometry import Region, Size
from textual.message import Message
from textual.scroll_view import ScrollView
from textual.strip import Strip

from wa_devtunnel.engine.exchange_view import ExchangeView
from wa_devtunnel.tui.model import MAX_VIEWS
from wa_devtunnel.tui.rows import NARROW_WIDTH, columns, line_pieces, line_text, row_cells
from wa_devtunnel.tui.safe import data

# Past the store's own cap the list forgets its oldest rows too, a slice at a time (one list copy).
TRIM_SLACK_ROWS = 5_000
STRIP_CACHE_SIZE = 256  # a few screens of rows, so scrolling back and forth redraws nothing


class ExchangeList(ScrollView, can_focus=True):
    """Rows come from the app's store through `visible`; the list owns its columns, cursor and follow mode."""

    BINDINGS: ClassVar[list[BindingType]] = [
        Binding("up", "cursor_up", "Up", show=False),
        Binding("down", "cursor_down", "Down", show=False),
        Binding("pageup", "page_up", "Page up", show=False),
        Binding("pagedown", "page_down", "Page down", show=False),
        Binding("home", "first", "Oldest", show=False),
        Binding("end", "last", "Newest", show=False),
    ]
    COMPONENT_CLASSES: ClassVar[set[str]] = {
        "exchange-list--header",
        "exchange-list--cursor",
        "exchange-list--even-row",
        "exchange-list--odd-row",
    }
    # The DataTable's look: a header line, zebra stripes, a block cursor that dims when the list loses focus.
    DEFAULT_CSS = """
    ExchangeList {
        background: $surface;
        color: $foreground;
        overflow-x: hidden;
        overflow-y: auto;
        &:focus {
            background-tint: $foreground 5%;
            & > .exchange-list--cursor {
                background: $block-cursor-background;
                color: $block-cursor-foreground;
                text-style: $block-cursor-text-style;
            }
        }
        &:dark > .exchange-list--even-row {
            background: $surface-darken-1 40%;
        }
        & > .exchange-list--header {
            text-style: bold;
            background: $panel;
            color: $foreground;
        }
        &:ansi > .exchange-list--header {
            background: ansi_bright_blue;
            color: ansi_default;
        }
        & > .exchange-list--even-row {
            background: $surface-lighten-1 50%;
        }
        & > .exchange-list--cursor {
            background: $block-cursor-blurred-background;
            color: $block-cursor-blurred-foreground;
            text-style: $block-cursor-blurred-text-style;
        }
    }
    """

    class CursorMoved(Message):
        """The highlighted row changed (a key or a click): the detail shows `selected_id`."""

    def __init__(self, with_accounts: bool, visible: Callable[[], Iterable[ExchangeView]], *, id: str) -> None:
        super().__init__(id=id)
        self.with_accounts = with_accounts
        self.shown_columns: tuple[str, ...] = ()
        self.following = True
        self.max_rows = MAX_VIEWS
        self._visible = visible
        self._rows: list[ExchangeView] = []
        self._cursor = 0
        self._strips: LRUCache[tuple[object, ...], Strip] = LRUCache(STRIP_CACHE_SIZE)
        self._base: Style | None = None
        self._line_width = 0

    def on_mount(self) -> None:
        """Columns for the terminal's width, before any row arrives."""
        self.fit_width(self.app.size.width)
        self._set_height()

    # What app.py uses ---------------------------------------------------------------------------

    def fit_width(self, width: int) -> bool:
        """Pick the columns for this terminal width; True when they changed and the rows must be rebuilt."""
        shown = columns(self.with_accounts, width < NARROW_WIDTH)
        if shown == self.shown_columns:
            return False
        self.shown_columns = shown
        self._redraw_all()
        return True

    @property
    def selected_view(self) -> ExchangeView | None:
        """The exchange under the cursor, if there are rows."""
        return self._rows[self._cursor] if self._rows else None

    @property
    def selected_id(self) -> str | None:
        """The exchange under the cursor, if there are rows."""
        return self._rows[self._cursor].id if self._rows else None

    def add(self, views: list[ExchangeView]) -> bool:
        """Append rows; True when the cursor followed to the newest."""
        if not views:
            return self.following
        selected = self.selected_id
        self._rows.extend(views)
        if len(self._rows) > self.max_rows + TRIM_SLACK_ROWS:
            self._forget_oldest(len(self._rows) - self.max_rows, selected)
        self._set_height()
        if self.following:
            self._cursor = len(self._rows) - 1
            self._scroll_to_cursor()
        self.refresh()
        return self.following

    def rebuild(self) -> None:
        """Show every exchange the filter lets through, the cursor on the newest."""
        self._rows = list(self._visible())[-self.max_rows :]
        self._cursor = max(0, len(self._rows) - 1)
        self.following = True
        self._set_height()
        self._redraw_all()
        self._scroll_to_cursor()

    def update(self, view: ExchangeView) -> None:
        """Redraw one exchange's row (a late backend answer), if it is shown."""
        for index in range(len(self._rows) - 1, -1, -1):  # late answers concern recent exchanges
            if self._rows[index].id == view.id:
                self._rows[index] = view
                self._redraw_all()
                return

    def follow(self) -> None:
        """Jump to the newest row and keep following."""
        self.following = True
        if self._rows:
            self._move_to(len(self._rows) - 1, announce=False)

    # For tests and tools ----------------------------------------------------------------------

    @property
    def row_count(self) -> int:
        """How many rows the list holds (on screen or not)."""
        return len(self._rows)

    @property
    def cursor_row(self) -> int:
        """The index of the highlighted row (0 when there are none)."""
        return self._cursor

    def row_id(self, index: int) -> str:
        """The exchange id of one row."""
        return self._rows[index].id

    def cells(self, index: int) -> tuple[Text, ...]:
        """One row's cells (rich Text, in `shown_columns` order), as they are drawn."""
        return row_cells(self._rows[index], self.shown_columns)

    def row_text(self, index: int) -> str:
        """One row as plain text, laid out at the list's current width."""
        return line_text(self.cells(index), self.shown_columns, self._width()).plain

    # Drawing ----------------------------------------------------------------------------------

    def render_lines(self, crop: Region) -> list[Strip]:
        """Measure the line width once per redraw, not once per line."""
        self._line_width = self._width()
        return super().render_lines(crop)

    def render_line(self, y: int) -> Strip:
        """Line 0 is the column names; below, the rows from the scroll position down."""
        width = self._line_width
        if y == 0:
            return self._strip(("header", width), self._header_strip)
        index = self.scroll_offset.y + y - 1
        if index >= len(self._rows):
            return self._strip(("blank", width), lambda: Strip.blank(width, self._style("odd-row")))
        view = self._rows[index]
        cursor = index == self._cursor
        key = (view.id, width, cursor, index % 2, self.has_focus)
        return self._strip(key, lambda: self._row_strip(view, index, cursor, width))

    def _strip(self, key: tuple[object, ...], render: Callable[[], Strip]) -> Strip:
        strip = self._strips.get(key)
        if strip is None:
            strip = render()
            self._strips[key] = strip
        return strip

    def _header_strip(self) -> Strip:
        names = [data(name) for name in self.shown_columns]
        return self._to_strip(line_pieces(names, self.shown_columns, self._line_width), self._style("header"))

    def _row_strip(self, view: ExchangeView, index: int, cursor: bool, width: int) -> Strip:
        pieces = line_pieces(row_cells(view, self.shown_columns), self.shown_columns, width)
        strip = self._to_strip(pieces, self._style("odd-row" if index % 2 else "even-row"))
        if not cursor:
            return strip
        # The cursor's colours win over the cells' own, as in a DataTable.
        return Strip(Segment.apply_style(strip, post_style=self._style("cursor", alone=True)), width)

    def _style(self, component: str, alone: bool = False) -> Style:
        """A component's style (cached by Textual until the next style update), over the widget's unless `alone`."""
        style = self.get_component_rich_style(f"exchange-list--{component}")
        if alone:
            return style
        if self._base is None:
            self._base = self.rich_style
        return self._base + style

    def _to_strip(self, pieces: list[tuple[str, StyleType]], base: Style) -> Strip:
        get_style = self.app.console.get_style
        segments = [Segment(text, base + get_style(style) if style else base) for text, style in pieces]
        return Strip(segments, sum(cell_len(text) for text, _ in pieces))

    def _width(self) -> int:
        return self.scrollable_content_region.width

    def _redraw_all(self) -> None:
        self._strips.clear()
        self.refresh()

    def notify_style_update(self) -> None:
        """A theme or focus change: every cached line is stale."""
        super().notify_style_update()
        self._base = None
        self._strips.clear()

    def _set_height(self) -> None:
        """The header line plus one line per row, without a layout of the screen.

        Assigning `virtual_size` lays the whole screen out again (and redraws every widget) at each
        batch; the list's own size does not change, so only its scrollbar is updated (a layout happens
        when the scrollbar appears or goes).
        """
        size = Size(0, len(self._rows) + 1)
        if size != self.virtual_size:
            self.set_reactive(ExchangeList.virtual_size, size)
            self._scroll_update(size)

    def _forget_oldest(self, count: int, selected: str | None) -> None:
        """Past the cap: drop the oldest rows, keeping the cursor on the same exchange while it exists."""
        del self._rows[:count]
        self._cursor = max(0, self._cursor - count)
        self.scroll_to(y=max(0, self.scroll_offset.y - count), animate=False, immediate=True, force=True)
        self._redraw_all()
        if not self.following and self.selected_id != selected:
            self.post_message(self.CursorMoved())

    # The cursor -------------------------------------------------------------------------------

    def _page(self) -> int:
        return max(1, self.scrollable_content_region.height - 1)

    def _scroll_to_cursor(self) -> None:
        """Scroll just enough for the cursor's row to be on screen (below the header line)."""
        top, page = self.scroll_offset.y, self._page()
        if self._cursor < top:
            target = self._cursor
        elif self._cursor >= top + page:
            target = self._cursor - page + 1
        else:
            return
        self.scroll_to(y=target, animate=False, immediate=True, force=True)

    def _move_to(self, index: int, announce: bool = True) -> None:
        """Put the cursor on one row; above the newest, follow mode pauses; on it, following resumes."""
        if not self._rows:
            return
        index = max(0, min(index, len(self._rows) - 1))
        moved = index != self._cursor
        self._cursor = index
        self.following = index == len(self._rows) - 1
        self._scroll_to_cursor()
        self.refresh()
        if moved and announce:
            self.post_message(self.CursorMoved())

    def action_cursor_up(self) -> None:
        self._move_to(self._cursor - 1)

    def action_cursor_down(self) -> None:
        self._move_to(self._cursor + 1)

    def action_page_up(self) -> None:
        self._move_to(self._cursor - self._page())

    def action_page_down(self) -> None:
        self._move_to(self._cursor + self._page())

    def action_first(self) -> None:
        self._move_to(0)

    def action_last(self) -> None:
        self._move_to(len(self._rows) - 1)

    def on_click(self, event: events.Click) -> None:
        """A click on a row selects it (the header line does nothing)."""
        offset = event.get_content_offset(self)
        if offset is None or offset.y < 1:
            return
        index = self.scroll_offset.y + offset.y - 1
        if index < len(self._rows):
            self._move_to(index)

    def on_resize(self, _: events.Resize) -> None:
        """Another width redraws every line; another height keeps the cursor's row in sight."""
        self._redraw_all()
        if self.following and self._rows:
            self._cursor = len(self._rows) - 1
        self.call_after_refresh(self._scroll_to_cursor)
