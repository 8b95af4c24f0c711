"""The header's lasting states: where the verify token comes from, every account's token (masked), the
registration from `--register` to its undo, and "no webhook from Meta"; a toast only draws the eye."""

from __future__ import annotations

import io
from pathlib import Path

import pytest
from rich.console import Console
from textual.widgets import Static

from tests.support.inspector import open_inspector, wait_until
from wa_devtunnel.engine.events import (
    Notice,
    ReceiverStarted,
    RegistrationChanged,
    TunnelChanged,
    WebhookQuiet,
)
from wa_devtunnel.tui.header import HeaderState, header_text, mask_token
from wa_devtunnel.tui.help import HelpScreen
from wa_devtunnel.tui.toasts import toasts_for
from wa_devtunnel.tui.welcome import welcome_text

LOCAL = "http://127.0.0.1:8765/webhook/whatsapp"
PUBLIC = "https://dev-domain.ngrok-free.app/webhook/whatsapp"
TOKEN = "wa-abcdefghijklmnopqrstuvwxyz0123Yz"
NUMBER = "106540352242922"
WIDTHS = [78, 158]  # an 80- and a 160-column terminal (the header has padding)


def started(source: str = "project-state", **fields: object) -> ReceiverStarted:
    return ReceiverStarted(PUBLIC, LOCAL, TOKEN, False, None, 8765, verify_token_source=source, **fields)  # type: ignore[arg-type]


def text(state: HeaderState, width: int) -> str:
    lines = header_text(state, width).plain.splitlines()
    assert all(len(line) <= width for line in lines), lines
    return "\n".join(lines)


def flat(state: HeaderState, width: int) -> str:
    """The header's words with its line breaks undone (an item may flow onto the next line)."""
    return " ".join(text(state, width).split())


@pytest.mark.parametrize("width", WIDTHS)
@pytest.mark.parametrize(
    ("source", "words"),
    [
        ("project-state", "kept in .wa-devtunnel/state.json"),
        ("env-file", "from .env"),
        ("environment", "from WHATSAPP_VERIFY_TOKEN in the environment"),
        ("flag", "from --verify-token"),
        ("accounts", "from the accounts file"),
        ("generated", "temporary: this run only; wa-devtunnel token --write-env keeps one"),
    ],
)
def test_the_header_says_where_the_token_comes_from(source: str, words: str, width: int) -> None:
    state = HeaderState.at_start(started(source), None)
    shown = flat(state, width)
    assert f"Verify token: {mask_token(TOKEN)}" in shown
    assert words in shown
    assert TOKEN not in shown, "masked until r"


def test_a_temporary_token_is_loud_and_a_kept_one_is_quiet() -> None:
    temporary = header_text(HeaderState.at_start(started("generated"), None), 158)
    start = temporary.plain.index("temporary:")
    assert any("yellow" in str(span.style) for span in temporary.spans if span.start <= start < span.end)


@pytest.mark.parametrize("width", WIDTHS)
def test_every_accounts_token_is_listed_masked_and_shown_with_r(width: int) -> None:
    accounts = (("shop", "shop-verify-token-0001"), ("support", "support-verify-token-02"))
    state = HeaderState.at_start(started("accounts", accounts=accounts), None)
    shown = flat(state, width)
    for name, token in accounts:
        assert f"Account {name}: {mask_token(token)}" in shown
        assert token not in shown
    masked_lines = len(text(state, width).splitlines())
    state.token_revealed = True
    revealed = text(state, width)
    assert all(f"Account {name}: {token}" in revealed for name, token in accounts)
    assert len(revealed.splitlines()) == masked_lines, "showing the tokens lays nothing out again"


@pytest.mark.parametrize("width", WIDTHS)
def test_the_registration_is_a_lasting_state_from_registered_to_undone(width: int) -> None:
    state = HeaderState.at_start(started(), None)
    state.note(RegistrationChanged("registering", "phone", PUBLIC, target=NUMBER))
    assert "Registering with Meta: pointing phone number" in flat(state, width)
    state.note(RegistrationChanged("registered", "phone", PUBLIC, "Meta verified it", "", NUMBER))
    shown = flat(state, width)
    assert f"Registered with Meta: phone number {NUMBER}'s webhook now points here (was: none); undone on exit" in (
        shown
    )
    state.note(RegistrationChanged("registered", "phone", PUBLIC, "Meta verified it", "https://old.example/w", NUMBER))
    assert "(was: https://old.example/w)" in flat(state, width)
    state.note(RegistrationChanged("undone", "phone", PUBLIC, f"removed the phone number override of {NUMBER}"))
    assert f"Registration undone: removed the phone number override of {NUMBER}" in flat(state, width)


@pytest.mark.parametrize("width", WIDTHS)
def test_a_failed_registration_keeps_metas_reason_cut_only_at_words(width: int) -> None:
    reason = (
        "Meta refused it: (#100) Before override the current callback uri, your app must be subscribed to the "
        "WhatsApp Business Account: POST /102290129340398/subscribed_apps (wa-devtunnel meta subscribe --scope waba)"
    )
    state = HeaderState.at_start(started(), None)
    state.note(RegistrationChanged("failed", "waba", PUBLIC, reason))
    lines = text(state, width).splitlines()
    first = next(i for i, line in enumerate(lines) if line.startswith("Registration FAILED: "))
    said = " ".join(line.strip() for line in lines[first : first + 2])[len("Registration FAILED: ") :]
    words = said.replace("…", " ").split()
    assert reason.split()[: len(words)] == words
    assert said == reason or said.endswith("…")


@pytest.mark.parametrize("width", WIDTHS)
def test_no_webhook_from_meta_stays_until_an_event_clears_it(width: int) -> None:
    state = HeaderState.at_start(started(), None)
    hint = f"No webhook from Meta in 120 s since its handshake on {PUBLIC}. Check: is the field `messages` subscribed?"
    state.note(WebhookQuiet(True, 120.0, PUBLIC, "handshake", hint))
    assert "Meta: No webhook from Meta in 120 s since its handshake" in flat(state, width)
    state.note(WebhookQuiet(False, 120.0, PUBLIC, "handshake"))
    assert "No webhook" not in flat(state, width)


def test_request_and_meta_text_in_the_states_is_shown_never_obeyed() -> None:
    hostile = "[@click=app.quit]q[/] \x1b[2J \u202e"
    state = HeaderState.at_start(started(accounts=(("[b]x", hostile),)), None)
    state.token_revealed = True
    state.note(RegistrationChanged("failed", "phone", PUBLIC, hostile))
    state.note(WebhookQuiet(True, 1.0, PUBLIC, "handshake", hostile))
    shown = header_text(state, 400).plain
    assert shown.count("[@click=app.quit]q[/]") == 3 and "\x1b" not in shown and "\u202e" not in shown


def test_toasts_draw_the_eye_the_header_keeps_the_words() -> None:
    assert toasts_for(Notice("info", "Meta verified ... (undone on exit)", topic="register"), False) == []
    assert toasts_for(Notice("warning", "No webhook from Meta in 120 s", topic="quiet"), False) == []
    [failed] = toasts_for(RegistrationChanged("failed", "phone", PUBLIC, "Meta refused it: (#190) bad token"), False)
    assert failed.severity == "error" and "(#190) bad token" in failed.text
    [quiet] = toasts_for(WebhookQuiet(True, 120.0, PUBLIC), False)
    assert quiet.severity == "warning"
    assert toasts_for(WebhookQuiet(False, 120.0, PUBLIC), False) == []


def test_a_restarted_engine_starts_with_no_old_registration_or_quiet_state() -> None:
    state = HeaderState.at_start(started(), None)
    state.note(RegistrationChanged("registered", "phone", PUBLIC, target=NUMBER))
    state.note(WebhookQuiet(True, 120.0, PUBLIC))
    state.note(started())
    assert state.registration is None and state.quiet is None


def test_the_start_panel_says_a_temporary_token_plainly_and_names_the_accounts_file() -> None:
    accounts = (("shop", "shop-verify-token-0001"),)
    panel = welcome_text(started("generated", accounts=accounts, accounts_file="/p/wa-devtunnel.toml"), "ngrok").plain
    assert "The verify token is temporary: this run only" in panel
    assert "wa-devtunnel token --write-env keeps one in .env" in panel
    assert f"Accounts from /p/wa-devtunnel.toml: shop ({mask_token('shop-verify-token-0001')})" in panel
    assert "temporary" not in welcome_text(started("project-state"), "ngrok").plain


async def test_the_app_keeps_registration_and_quiet_in_the_header_long_after_the_toasts(tmp_path: Path) -> None:
    """Through the real channel: the states the engine publishes land in the header and stay."""
    async with open_inspector(tmp_path, size=(80, 24)) as inspector:
        app, pilot = inspector.app, inspector.pilot
        registered = RegistrationChanged("registered", "phone", PUBLIC, "Meta verified it", "", NUMBER)
        quiet = WebhookQuiet(True, 120.0, PUBLIC, "handshake", "No webhook from Meta in 120 s since its handshake.")

        async def publish() -> None:
            inspector.engine.service.bus.publish(registered)
            inspector.engine.service.bus.publish(quiet)

        inspector.engine.submit(publish()).result(5)
        await wait_until(pilot, lambda: app.state.quiet is not None, "the quiet state")
        await pilot.pause(0.2)
        shown = " ".join(str(app.header.render()).split())
        assert "Registered with Meta: phone number" in shown and "No webhook from Meta in 120 s" in shown
        app.clear_notifications()  # the toasts are gone; the header is not
        await pilot.pause()
        assert app.state.registration == registered
        assert "Registered with Meta" in " ".join(str(app.header.render()).split())


async def test_i_shows_a_failed_tunnels_reason_and_fix_in_full_at_80x24(tmp_path: Path) -> None:
    """The header cuts lasting states at a word at 80x24; `i` (listed in `?`) shows them whole, `i` again cuts."""
    reason = (
        "could not download the ngrok agent: An error occurred while downloading ngrok from "
        "https://bin.ngrok.com/c/bNyj1mQVY4c/ngrok-v3-stable-linux-amd64.tgz: <urlopen error [Errno -2] Name or "
        "service not known>"
    )
    fix = (
        "Offline or behind a proxy? Install ngrok yourself (https://ngrok.com/download) and set "
        "PYNGROK_NGROK_PATH=/path/to/ngrok in .env."
    )
    async with open_inspector(tmp_path, size=(80, 24)) as inspector:
        app, pilot = inspector.app, inspector.pilot
        failed = TunnelChanged("failed", "ngrok", None, LOCAL, f"{reason}\n  {fix}", fix)

        async def publish() -> None:
            inspector.engine.service.bus.publish(failed)

        inspector.engine.submit(publish()).result(5)
        await wait_until(pilot, lambda: app.state.tunnel_state == "failed", "the failed tunnel")
        await pilot.pause()

        def shown() -> str:
            return " ".join(str(app.header.render()).split())

        assert "Tunnel failed:" in shown() and "…" in shown() and reason not in shown()
        await pilot.press("i")
        assert reason in shown() and fix in shown(), "the whole reason and its fix"
        assert app.header.size.height > 10, "the header grew to show them"
        await pilot.press("i")
        assert reason not in shown() and "…" in shown()
        assert app.header.size.height <= 10
        await pilot.press("question_mark")
        assert isinstance(app.screen, HelpScreen)
        console = Console(file=io.StringIO(), width=200, record=True, color_system=None)
        console.print(app.screen.query_one("#help-text", Static).content)
        keys = {line.split("│")[0].strip(): line for line in console.export_text().splitlines() if "│" in line}
        assert "Header: the lasting states" in keys["i"], "listed in ?"
