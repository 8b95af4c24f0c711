"""Every key does what `?` says, at 80x24 and at 160x45: real exchanges through the engine, the screen read back."""

from __future__ import annotations

import io
from collections.abc import AsyncIterator
from pathlib import Path

import aiohttp
import pytest
from rich.console import Console
from textual.containers import VerticalScroll
from textual.widgets import ContentSwitcher, Footer, Input, Static, TabbedContent, TabPane

from tests.support.constants import APP_SECRET
from tests.support.inspector import Inspector, open_inspector, wait_until
from tests.support.meta_client import MetaLikeSender
from wa_devtunnel.rules.samples import payloads as samples
from wa_devtunnel.tui.app import InspectorApp
from wa_devtunnel.tui.exchange_list import ExchangeList
from wa_devtunnel.tui.help import KEYS, HelpScreen, binding_commands, described

SIZES = {"80x24": (80, 24), "160x45": (160, 45)}
FOOTER_KEYS = ("/ Filter", "e Problems", "x Show all", "f Follow", "s Sample", "p Replay", "? Help", "q Quit")


@pytest.fixture(params=list(SIZES.values()), ids=list(SIZES))
async def inspector(request: pytest.FixtureRequest, tmp_path: Path) -> AsyncIterator[Inspector]:
    async with open_inspector(tmp_path, size=request.param) as opened:
        yield opened


@pytest.fixture
async def meta(inspector: Inspector) -> AsyncIterator[MetaLikeSender]:
    async with aiohttp.ClientSession() as session:
        yield MetaLikeSender(session, inspector.started.callback_url, APP_SECRET)


def screen_lines(app: InspectorApp) -> list[str]:
    """The whole terminal as text, line by line, as the developer sees it."""
    return ["".join(segment.text for segment in strip) for strip in app.screen._compositor.render_strips()]


def rendered(widget: Static) -> str:
    """The text a Static shows, whatever it was given (str, rich Text, Group, Table)."""
    console = Console(file=io.StringIO(), width=200, record=True, color_system=None, legacy_windows=False)
    console.print(widget.content)
    return console.export_text()


def exchanges(app: InspectorApp) -> ExchangeList:
    return app.query_one("#exchanges", ExchangeList)


def header(app: InspectorApp) -> str:
    return rendered(app.query_one("#status", Static))


async def deliver(inspector: Inspector, meta: MetaLikeSender, *bodies: bytes) -> None:
    """Each body as Meta would send it; wait until the list and the detail show the last."""
    count = exchanges(inspector.app).row_count + len(bodies)
    for body in bodies:
        assert await meta.deliver(body) == [200]
    await wait_until(inspector.pilot, lambda: exchanges(inspector.app).row_count == count, f"{count} rows")
    app = inspector.app
    await wait_until(inspector.pilot, lambda: app.detail.shown_id == exchanges(app).selected_id, "the detail")


def texts(count: int) -> list[bytes]:
    return [samples.text_message_payload(f"message {n}", message_id=f"wamid.K{n}") for n in range(count)]


def status_payload(status: str, **fields: object) -> bytes:
    change = samples.messages_change(statuses=[samples.status(status, **fields)])  # type: ignore[arg-type]
    return samples.meta_json(samples.envelope([change]))


def big_batch() -> bytes:
    """Twelve statuses: a Summary far taller than the detail pane at either size."""
    statuses = [samples.status("delivered", message_id=f"wamid.BIG{n}") for n in range(12)]
    return samples.meta_json(samples.envelope([samples.messages_change(statuses=statuses)]))


# The footer ----------------------------------------------------------------------------------------


async def test_the_footer_fits_and_shows_the_main_keys(inspector: Inspector) -> None:
    app, pilot = inspector.app, inspector.pilot
    for _ in range(100):  # the footer draws its keys a few refreshes after mount (later on a busy machine)
        footer = screen_lines(app)[-1]
        if footer.strip():
            break
        await pilot.pause(0.02)
    for key in FOOTER_KEYS:
        assert key in footer, (key, footer)
    assert footer.rstrip().endswith("q Quit")  # nothing cut at the right edge
    shown = [binding for binding in KEYS if binding.show]
    assert [f"{binding.key} {binding.description}" for binding in shown] == [
        key.replace("/", "slash").replace("?", "question_mark") for key in FOOTER_KEYS
    ]
    assert app.query_one(Footer).show_command_palette is False  # ctrl+p is in `?`, not in the way


# Follow: f and End ---------------------------------------------------------------------------------


async def test_end_resumes_follow_from_the_list_and_from_the_detail(inspector: Inspector, meta: MetaLikeSender) -> None:
    app, pilot = inspector.app, inspector.pilot
    await deliver(inspector, meta, *texts(3))
    await pilot.press("up", "up")
    assert exchanges(app).cursor_row == 0 and "PAUSED" in header(app)

    await pilot.press("end")
    assert exchanges(app).cursor_row == 2 and "FOLLOW" in header(app)
    assert "message 2" in rendered(app.query_one("#summary-text", Static))

    await pilot.press("up", "tab", "tab")  # the focus leaves the list for the detail's text (its own `end`)
    assert isinstance(app.focused, VerticalScroll) and "PAUSED" in header(app)
    await pilot.press("end")
    assert exchanges(app).cursor_row == 2 and "FOLLOW" in header(app)


async def test_end_in_the_filter_bar_moves_its_cursor(inspector: Inspector, meta: MetaLikeSender) -> None:
    app, pilot = inspector.app, inspector.pilot
    await deliver(inspector, meta, *texts(2))
    await pilot.press("up", "slash", "a", "b", "c", "home", "end", "Z")
    assert app.query_one("#search", Input).value == "abcZ"
    assert "PAUSED" in header(app)


# Scrolling and zooming the detail ------------------------------------------------------------------


async def test_the_detail_scrolls_from_the_list(inspector: Inspector, meta: MetaLikeSender) -> None:
    app, pilot = inspector.app, inspector.pilot
    await deliver(inspector, meta, big_batch())
    pane = app.query_one("#summary", TabPane).query_one(VerticalScroll)
    assert pane.max_scroll_y > 0 and pane.scroll_y == 0
    for down, up in (("ctrl+d", "ctrl+u"), ("shift+pagedown", "shift+pageup")):
        await pilot.press(down)
        await pilot.pause()
        assert pane.scroll_y > 0 and exchanges(app).has_focus
        await pilot.press(up)
        await pilot.pause()
        assert pane.scroll_y == 0

    await pilot.press("ctrl+d")  # another exchange starts at its top
    await deliver(inspector, meta, *texts(1))
    await pilot.press("up")
    await pilot.pause()
    assert pane.scroll_y == 0


async def test_z_gives_the_detail_the_room(inspector: Inspector, meta: MetaLikeSender) -> None:
    app, pilot = inspector.app, inspector.pilot
    await deliver(inspector, meta, *texts(3))
    detail, listed = app.query_one("#lower"), exchanges(app)
    before = detail.size.height
    await pilot.press("z")
    await pilot.pause()
    assert detail.size.height > before
    assert listed.size.height >= 4  # the column names and a few rows around the cursor
    assert listed.cursor_row == 2 and listed.scroll_offset.y + listed.size.height - 1 > 2
    await pilot.press("z")
    await pilot.pause()
    assert detail.size.height == before


# Problems, filters and clearing --------------------------------------------------------------------


async def test_problems_include_failed_deliveries_and_errors_skip_scanners(
    inspector: Inspector, meta: MetaLikeSender
) -> None:
    app, pilot = inspector.app, inspector.pilot
    async with aiohttp.ClientSession() as session:
        base = inspector.started.callback_url.split("/webhook")[0]
        async with session.get(f"{base}/.env") as scanner:
            assert scanner.status == 404
    await wait_until(pilot, lambda: exchanges(app).row_count == 1, "the scanner's row")
    await deliver(
        inspector,
        meta,
        samples.text_message_payload(),
        status_payload("failed", error_code=131026),
        status_payload("read"),
    )
    assert exchanges(app).row_count == 4
    assert "Errors 1" in header(app)  # the failed delivery; not the scanner's 404
    await pilot.press("e")
    listed = exchanges(app)
    assert listed.row_count == 1 and "failed wamid." in listed.row_text(0)
    assert "131026" in rendered(app.query_one("#summary-text", Static))


async def test_x_shows_all_and_ctrl_l_clears_the_list(inspector: Inspector, meta: MetaLikeSender) -> None:
    app, pilot = inspector.app, inspector.pilot
    await deliver(inspector, meta, *texts(3))
    await pilot.press("slash", *"kind:verify", "enter")
    assert exchanges(app).row_count == 0
    # The filter matches nothing: the detail says so instead of keeping the old exchange.
    switcher = app.query_one(ContentSwitcher)
    assert switcher.current == "empty"
    assert "No exchange matches the filter: kind:verify" in rendered(app.query_one("#empty-text", Static))
    assert app.detail.shown_record() is None
    await pilot.press("p")  # nothing selected: nothing replayed
    assert any("Select an event" in n.message for n in app._notifications)

    await pilot.press("x")
    assert exchanges(app).row_count == 3 and switcher.current == "detail"
    assert "Filter:" not in header(app)

    await pilot.press("ctrl+l")
    assert exchanges(app).row_count == 0
    assert "List cleared" in rendered(app.query_one("#empty-text", Static))
    assert any(
        "List cleared (3 exchange(s)): display only, the recording keeps them all" in n.message
        for n in app._notifications
    )
    assert "Events 3" in header(app)  # the session's tallies go on
    await deliver(inspector, meta, *texts(1))
    assert exchanges(app).row_count == 1 and switcher.current == "detail"
    await pilot.press("slash", *"message", "enter")  # a body search finds only what the list still holds
    await wait_until(pilot, lambda: any("contain 'message'" in n.message for n in app._notifications), "search")
    assert exchanges(app).row_count == 1


# Copying the URL -----------------------------------------------------------------------------------


async def test_copying_a_local_url_says_meta_cannot_reach_it(inspector: Inspector) -> None:
    app = inspector.app
    await inspector.pilot.press("u")
    assert app.clipboard == inspector.started.callback_url
    (notice,) = [n for n in app._notifications if n.message.startswith("Copied")]
    assert notice.message.startswith(f"Copied: {inspector.started.callback_url}\n")
    assert "Meta cannot reach a local URL" in notice.message and "NGROK_AUTHTOKEN" in notice.message
    assert notice.severity == "warning"


async def test_copying_a_public_url_is_just_copied(inspector: Inspector) -> None:
    app = inspector.app
    app.state.callback_url = "https://your-name.ngrok-free.dev/webhook/whatsapp"
    app.state.tunnel_state = "up"
    await inspector.pilot.press("u")
    assert [n.message for n in app._notifications] == ["Copied: https://your-name.ngrok-free.dev/webhook/whatsapp"]


# Help and the command palette ----------------------------------------------------------------------


async def test_help_lists_every_key_once_in_one_scrolling_pane(inspector: Inspector) -> None:
    app, pilot = inspector.app, inspector.pilot
    await pilot.press("question_mark")
    screen = app.screen
    assert isinstance(screen, HelpScreen)
    text = rendered(screen.query_one("#help-text", Static))
    keys = [line.split("│")[0].strip() for line in text.splitlines() if "│" in line]
    for key in ("f, end", "q, ctrl+c", "ctrl+d, shift+pgdn", "ctrl+u, shift+pgup", "ctrl+l", "z", "x", "/", "?"):
        assert keys.count(key) == 1, key
    assert "Clear the list: display only" in text and "Clear the filters" in text
    assert "slash" not in text and "question_mark" not in text
    assert "ctrl+p" in text and "sig:invalid" in text
    await pilot.pause()
    scrolling = [w for w in screen.query("*") if w.show_vertical_scrollbar or w.show_horizontal_scrollbar]
    assert all(isinstance(w, VerticalScroll) and not w.show_horizontal_scrollbar for w in scrolling)
    assert len(scrolling) <= 1  # one scrollbar, when the terminal is too small for the whole list
    await pilot.press("escape")
    assert not isinstance(app.screen, HelpScreen)


def test_the_palette_lists_each_action_once_by_name() -> None:
    commands = list(binding_commands(KEYS, lambda action: None))  # type: ignore[arg-type, return-value]
    titles = [command.title for command in commands]
    assert len(titles) == len(set(titles)) and titles.count("Follow") == 1
    follow = next(command for command in commands if command.title == "Follow")
    assert follow.help.endswith("(key f, end)")
    assert all("slash" not in c.help and "question_mark" not in c.help and "key:" not in c.help for c in commands)
    assert {key.action for key in described(KEYS)} >= {"clear_list", "scroll_detail(1)", "zoom_detail"}


async def test_every_documented_key_is_in_the_docs() -> None:
    docs = (Path(__file__).parents[2] / "docs" / "inspector.md").read_text(encoding="utf-8")
    for key in described(KEYS):
        for label in key.keys.split(", "):
            assert f"`{label}`" in docs, label


async def test_the_tabs_keys_and_tab_focus(inspector: Inspector, meta: MetaLikeSender) -> None:
    app, pilot = inspector.app, inspector.pilot
    await deliver(inspector, meta, *texts(1))
    for key, tab in (("2", "body"), ("3", "headers"), ("4", "signature"), ("1", "summary")):
        await pilot.press(key)
        assert app.query_one(TabbedContent).active == tab


async def test_every_other_key_does_what_help_says(
    inspector: Inspector, meta: MetaLikeSender, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    """s p b o w t r L R f q, each at both sizes (E: test_tui_replay.py; the rest above)."""
    app, pilot = inspector.app, inspector.pilot
    monkeypatch.setattr("tempfile.tempdir", str(tmp_path))  # w and o write their files here

    def noticed(text: str) -> bool:
        return any(text in n.message for n in app._notifications)

    await pilot.press("s")
    await wait_until(pilot, lambda: exchanges(app).row_count == 1, "the sample")
    assert "(sample) text from" in exchanges(app).row_text(0)
    await wait_until(pilot, lambda: app.detail.shown_id == exchanges(app).selected_id, "the detail")
    await pilot.press("p")
    await wait_until(pilot, lambda: exchanges(app).row_count == 2, "the replay")
    assert "(replay) text from" in exchanges(app).row_text(1)

    await pilot.press("b")
    assert app.query_one(TabbedContent).active == "body"
    assert "exactly as received" in rendered(app.query_one("#body-text", Static))
    await pilot.press("b")
    assert "pretty-printed" in rendered(app.query_one("#body-text", Static))

    await pilot.press("w")
    await wait_until(pilot, lambda: noticed("(mode 0600)"), "the written body")
    await pilot.press("o")  # no terminal to hand to a pager here: the body goes to a file instead
    await wait_until(pilot, lambda: noticed("No pager"), "the pager's fallback")
    assert len(list(tmp_path.glob("wa-devtunnel-seq*.json"))) == 2

    await pilot.press("t")
    assert app.clipboard == inspector.started.verify_token
    await pilot.press("r")
    assert inspector.started.verify_token in header(app)
    await pilot.press("r")
    assert inspector.started.verify_token not in header(app)

    await pilot.press("up", "f")
    assert exchanges(app).cursor_row == 1 and "FOLLOW" in header(app)

    await pilot.press("L")
    assert type(app.screen).__name__ == "LifecycleScreen"
    await pilot.press("escape")
    assert app.screen is app.screen_stack[0]

    await pilot.press("R")
    assert noticed("The engine is running")

    await pilot.press("q")
    await pilot.pause()
    assert not app.is_running
