"""The live list on its own: a tiny host app feeds it views, no engine, no receiver."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

from rich.text import Text
from textual.app import App, ComposeResult

from wa_devtunnel.engine.exchange_view import ExchangeView, view_from_record
from wa_devtunnel.tui import exchange_list as exchange_list_module
from wa_devtunnel.tui.exchange_list import ExchangeList
from wa_devtunnel.tui.rows import COLUMNS

SIZE = (120, 24)  # the list gets the whole screen: a header line and 23 rows
PAGE = 23
SUMMARY = COLUMNS.index("Summary") - 1  # no Account column with one account
HOSTILE = "\x1b[31m[link=x]boom[/x] \u202e"


def view(seq: int, headline: str = "", **fields: Any) -> ExchangeView:
    record: dict[str, Any] = {
        "id": f"ex{seq}",
        "seq": seq,
        "received_at": "2026-12-07T10:10:10.000000Z",
        "kind": "event",
        "request": {"method": "POST", "path": "/webhook/whatsapp"},
        "response": {"status": 200},
        "signature": "valid",
        "summary": {"headline": headline or f"messages: text from 1650555: message {seq}", "fields": ["messages"]},
        "elapsed_ms": 1.5,
        "origin": "meta",
    }
    record.update(fields)
    return view_from_record(record)


class Host(App[None]):
    """The list and a filter, as the inspector composes them."""

    def __init__(self) -> None:
        super().__init__()
        self.views: list[ExchangeView] = []
        self.shows = lambda v: True
        self.moves = 0
        self.exchanges = ExchangeList(False, self.visible, id="exchanges")

    def visible(self) -> Iterator[ExchangeView]:
        return (v for v in self.views if self.shows(v))

    def compose(self) -> ComposeResult:
        yield self.exchanges

    def on_mount(self) -> None:
        self.exchanges.focus()

    def on_exchange_list_cursor_moved(self, _: ExchangeList.CursorMoved) -> None:
        self.moves += 1

    def arrive(self, *views: ExchangeView) -> bool:
        self.views.extend(views)
        return self.exchanges.add([v for v in views if self.shows(v)])


def screen_lines(app: Host) -> list[str]:
    """What the list draws, line by line (the header first)."""
    widget = app.exchanges
    return [widget.render_line(y).text for y in range(widget.scrollable_content_region.height)]


def summaries(widget: ExchangeList) -> list[str]:
    return [str(widget.cells(index)[SUMMARY]) for index in range(widget.row_count)]


async def test_rows_arrive_under_a_header_line_and_the_cursor_follows_the_newest() -> None:
    app = Host()
    async with app.run_test(size=SIZE) as pilot:
        widget = app.exchanges
        assert widget.row_count == 0 and widget.selected_id is None
        assert screen_lines(app)[0].split() == ["Time", "Kind", "HTTP", "Sig", "Field", "ms", "Summary"]

        assert app.arrive(view(1), view(2)) is True
        assert app.arrive(view(3)) is True
        await pilot.pause()
        assert widget.row_count == 3 and widget.cursor_row == 2 and widget.selected_id == "ex3"
        assert widget.following and app.moves == 0  # the caller is told by add's answer, not by a message
        assert summaries(widget) == [f"text from 1650555: message {n}" for n in (1, 2, 3)]
        lines = screen_lines(app)
        assert "message 1" in lines[1] and "message 3" in lines[3] and lines[4].strip() == ""
        assert widget.row_text(1) == lines[2]
        assert lines[1].split()[1:5] == ["event", "200", "✓", "ok"]
        assert all(len(line) == SIZE[0] for line in lines)


async def test_moving_up_pauses_follow_mode_and_the_newest_resumes_it() -> None:
    app = Host()
    async with app.run_test(size=SIZE) as pilot:
        widget = app.exchanges
        app.arrive(*(view(n) for n in range(1, 4)))
        await pilot.press("up")
        assert widget.cursor_row == 1 and widget.selected_id == "ex2"
        assert not widget.following and app.moves == 1

        assert app.arrive(view(4)) is False  # paused: the cursor stays on what the developer reads
        await pilot.pause()
        assert widget.cursor_row == 1 and widget.selected_id == "ex2" and app.moves == 1

        await pilot.press("down")
        assert widget.cursor_row == 2 and not widget.following
        await pilot.press("down")
        assert widget.cursor_row == 3 and widget.following and app.moves == 3
        await pilot.press("down")  # already on the newest: nothing moves, nothing is said
        assert widget.cursor_row == 3 and app.moves == 3
        assert app.arrive(view(5)) is True
        assert widget.selected_id == "ex5"

        await pilot.press("up", "up")
        widget.follow()
        assert widget.following and widget.selected_id == "ex5"


async def test_page_keys_home_end_and_a_click() -> None:
    app = Host()
    async with app.run_test(size=SIZE) as pilot:
        widget = app.exchanges
        app.arrive(*(view(n) for n in range(100)))
        await pilot.pause()
        lines = screen_lines(app)
        assert "message 99" in lines[-1] and "message 77" in lines[1]  # the newest at the bottom

        await pilot.press("pageup")
        assert widget.cursor_row == 99 - PAGE and not widget.following
        await pilot.press("home")
        assert widget.cursor_row == 0
        await pilot.pause()
        assert "message 0" in screen_lines(app)[1]
        await pilot.press("pagedown")
        assert widget.cursor_row == PAGE
        await pilot.pause()
        assert "message 23" in screen_lines(app)[-1]  # scrolled just enough to show the cursor's row

        await pilot.click(ExchangeList, offset=(30, 5))  # the fifth row on screen
        assert widget.cursor_row == 5 and widget.selected_id == "ex5"
        await pilot.click(ExchangeList, offset=(30, 0))  # the header line selects nothing
        assert widget.cursor_row == 5

        await pilot.press("end")
        assert widget.cursor_row == 99 and widget.following
        await pilot.pause()
        assert "message 99" in screen_lines(app)[-1]


async def test_rebuild_shows_what_the_filter_lets_through() -> None:
    app = Host()
    async with app.run_test(size=SIZE) as pilot:
        widget = app.exchanges
        app.arrive(*(view(n) for n in range(10)))
        await pilot.press("up", "up")
        app.shows = lambda v: v.seq % 2 == 0
        widget.rebuild()
        assert [widget.row_id(i) for i in range(widget.row_count)] == ["ex0", "ex2", "ex4", "ex6", "ex8"]
        assert widget.selected_id == "ex8" and widget.following
        assert app.arrive(view(10), view(11)) is True
        assert widget.row_count == 6 and widget.selected_id == "ex10"

        app.shows = lambda v: False
        widget.rebuild()
        await pilot.pause()
        assert widget.row_count == 0 and widget.selected_id is None
        await pilot.press("up", "home", "end")  # no rows: the keys do nothing
        assert app.moves == 2


async def test_update_redraws_one_row() -> None:
    app = Host()
    async with app.run_test(size=SIZE) as pilot:
        widget = app.exchanges
        pending = view(2, forward={"pending": True})
        app.arrive(view(1), pending, view(3))
        await pilot.pause()
        assert "backend pending" in screen_lines(app)[2]
        widget.update(view(2, forward={"status": 502}))
        await pilot.pause()
        assert "-> backend 502" in screen_lines(app)[2] and "pending" not in screen_lines(app)[2]
        widget.update(view(99))  # not shown: nothing happens
        assert widget.row_count == 3


async def test_a_narrow_terminal_drops_columns() -> None:
    app = Host()
    async with app.run_test(size=(80, 12)) as pilot:
        widget = app.exchanges
        assert widget.shown_columns == ("Time", "HTTP", "Sig", "Summary")
        assert widget.fit_width(80) is False
        app.arrive(view(1))
        await pilot.pause()
        assert screen_lines(app)[0].split() == ["Time", "HTTP", "Sig", "Summary"]
        assert widget.fit_width(150) is True
        assert widget.shown_columns == ("Time", "Kind", "HTTP", "Sig", "Field", "ms", "Summary")


async def test_zebra_stripes_and_the_cursor_row_stand_out() -> None:
    app = Host()
    async with app.run_test(size=SIZE) as pilot:
        app.arrive(*(view(n) for n in range(4)))
        await pilot.pause()

        def background(y: int) -> object:
            return app.exchanges.render_line(y)._segments[0].style.bgcolor  # type: ignore[union-attr]

        header, even, odd, even_again, cursor = (background(y) for y in range(5))
        assert even == even_again and even != odd
        assert cursor not in (even, odd) and header not in (even, odd, cursor)
        app.set_focus(None)  # the cursor dims when the list loses focus
        await pilot.pause()
        assert background(4) not in (cursor, even, odd)


async def test_twenty_thousand_rows_are_all_indexed() -> None:
    app = Host()
    async with app.run_test(size=SIZE) as pilot:
        widget = app.exchanges
        for start in range(0, 20_000, 500):
            assert app.arrive(*(view(n) for n in range(start, start + 500))) is True
        await pilot.pause()
        assert widget.row_count == 20_000 and widget.selected_id == "ex19999"
        lines = screen_lines(app)
        assert "message 19999" in lines[-1] and "message 19977" in lines[1]
        await pilot.press("home")
        await pilot.pause()
        assert "message 0" in screen_lines(app)[1]


async def test_past_the_cap_the_oldest_rows_go_and_the_cursor_keeps_its_exchange(monkeypatch: Any) -> None:
    monkeypatch.setattr(exchange_list_module, "TRIM_SLACK_ROWS", 10)
    app = Host()
    async with app.run_test(size=SIZE) as pilot:
        widget = app.exchanges
        widget.max_rows = 100
        app.arrive(*(view(n) for n in range(100)))
        await pilot.press("up")
        assert widget.selected_id == "ex98"
        for n in range(100, 120):
            app.arrive(view(n))
        assert widget.row_count <= 110 and widget.row_id(widget.row_count - 1) == "ex119"
        assert widget.selected_id == "ex98" and not widget.following


async def test_request_text_is_never_markup_and_controls_show_as_escapes() -> None:
    app = Host()
    async with app.run_test(size=SIZE) as pilot:
        widget = app.exchanges
        app.arrive(view(1, HOSTILE, account="[b]acct\x07", signature="\x1b[2J"))
        await pilot.pause()
        cell = widget.cells(0)[SUMMARY]
        assert isinstance(cell, Text) and cell.plain.startswith("\\x1b[31m[link=x]boom[/x] \\u202e")
        line = screen_lines(app)[1]
        assert "\\x1b[31m[link=x]boom[/x] \\u202e" in line and "\\x1b[…" in line  # Sig: cut to its column
        assert "\x1b" not in line and "\u202e" not in line
        for segment in widget.render_line(1):
            assert segment.style is None or not segment.style.link
