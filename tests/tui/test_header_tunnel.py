"""The header says DOWN in red with the agent's reason, whole or cut at a word, as text; toasts say it once.

A tunnel that failed to start keeps its reason and its own fix in the header (not only in a toast), at 80
and at 160 columns, cut only at words.
"""

from __future__ import annotations

import re

import pytest

from wa_devtunnel.engine.events import Notice, ReceiverStarted, TunnelChanged, tunnel_down_text
from wa_devtunnel.tui.header import HeaderState, at_word, header_text
from wa_devtunnel.tui.toasts import toasts_for
from wa_devtunnel.tui.welcome import welcome_text

URL = "https://dev-domain.ngrok-free.app"
CALLBACK = f"{URL}/webhook/whatsapp"
REASON = 'failed to reconnect session: failed to dial ngrok server with address "connect.ngrok-agent.com:443"'


def _down(reason: str) -> HeaderState:
    state = HeaderState(callback_url=CALLBACK, verify_token="tok", tunnel_state="up")
    state.note(TunnelChanged("down", "ngrok", URL, CALLBACK, reason))
    return state


def _tunnel_line(state: HeaderState, width: int) -> str:
    return next(text for text in header_text(state, width).plain.splitlines() if "Tunnel: " in text)


def test_down_is_loud_and_carries_the_whole_reason_when_it_fits() -> None:
    state = _down(REASON)
    text = header_text(state, 160)
    assert f"Tunnel: DOWN ({REASON})" in text.plain
    start = text.plain.index("DOWN")
    styles = [str(span.style) for span in text.spans if span.start <= start < span.end]
    assert "bold red" in styles
    assert state.callback_url == CALLBACK  # the URL stays: the same one comes back


def test_a_long_reason_is_cut_at_a_word_never_mid_word() -> None:
    for width in (50, 70, 90):
        line = _tunnel_line(_down(REASON), width)
        shown = line.split("Tunnel: DOWN (", 1)[1]
        assert shown.endswith("…)"), line
        kept = shown[: -len("…)")]
        assert REASON.startswith(kept) and REASON[len(kept)] in " ,:", (width, kept)
        assert len(line) <= max(width, 60 + len("Tunnel: DOWN ()")), line


def test_at_word() -> None:
    assert at_word("short", 10) == "short"
    assert at_word("dial tcp: lookup connect.ngrok-agent.com", 20) == "dial tcp: lookup…"
    assert at_word("averyveryverylongwordwithoutspaces", 10) == "averyvery…"


def test_the_reason_is_text_never_markup_or_a_terminal_control() -> None:
    hostile = "[red]x[/red] \x1b[2J [@click=app.quit]q[/]"
    text = header_text(_down(hostile), 200)
    assert "Tunnel: DOWN ([red]x[/red] \\x1b[2J [@click=app.quit]q[/])" in text.plain
    assert "\x1b" not in text.plain  # markup parsed would have eaten the tags; a raw ESC would clear the screen


def test_down_raises_no_toast_of_its_own_its_notice_does_and_back_up_says_where() -> None:
    down = TunnelChanged("down", "ngrok", URL, CALLBACK, REASON)
    assert toasts_for(down, False) == []
    notice = Notice("error", tunnel_down_text("ngrok", REASON), topic="tunnel-down")
    [toast] = toasts_for(notice, False)
    assert toast.severity == "error" and toast.text.startswith(f"TUNNEL DOWN: {REASON}. Meta's deliveries fail")
    [back] = toasts_for(TunnelChanged("up", "ngrok", URL, CALLBACK, "reconnected"), False)
    assert back.text == f"Tunnel back up: {CALLBACK}"


# The case: the agent could not be downloaded, NGROK_AUTHTOKEN is set, the fix is PYNGROK_NGROK_PATH.
LOCAL = "http://127.0.0.1:8765/webhook/whatsapp"
DOWNLOAD_FAILED = (
    "could not download the ngrok agent: An error occurred while downloading ngrok from "
    "https://bin.ngrok.com/c/bNyj1mQVY4c/ngrok-v3-stable-linux-amd64.tgz: <urlopen error [Errno -2] Name or "
    "service not known>"
)
DOWNLOAD_FIX = (
    "Offline or behind a proxy? Install ngrok yourself (https://ngrok.com/download) and set "
    "PYNGROK_NGROK_PATH=/path/to/ngrok in .env."
)


def _failed(reason: str = DOWNLOAD_FAILED, advice: str = DOWNLOAD_FIX) -> HeaderState:
    state = HeaderState(callback_url=LOCAL, verify_token="wa-token-0123456789")
    # What the engine publishes: the summary, then its advice, in `reason`; the advice alone in `advice`.
    state.note(TunnelChanged("failed", "ngrok", None, LOCAL, f"{reason}\n  {advice}", advice))
    return state


def _words(text: str) -> list[str]:
    return text.replace("…", " ").split()


@pytest.mark.parametrize("width", [78, 158])  # an 80- and a 160-column terminal (the header has padding)
def test_a_failed_tunnel_keeps_its_reason_and_its_own_fix_in_the_header(width: int) -> None:
    lines = header_text(_failed(), width).plain.splitlines()
    assert all(len(line) <= width for line in lines), lines
    start = next(i for i, line in enumerate(lines) if line.startswith("Tunnel failed: "))
    fix = next(i for i, line in enumerate(lines) if line.startswith("  Fix: "))
    reason = " ".join(line.strip() for line in lines[start:fix])[len("Tunnel failed: ") :]
    advice = " ".join(line.strip() for line in lines[fix:])[len("Fix: ") :]
    assert advice == DOWNLOAD_FIX, "the right fix, whole: PYNGROK_NGROK_PATH, not an authtoken"
    assert "NGROK_AUTHTOKEN" not in "\n".join(lines)
    # The reason is whole, or cut after a whole word with an ellipsis: never mid-word.
    shown_words = _words(reason)
    assert DOWNLOAD_FAILED.split()[: len(shown_words)] == shown_words, reason
    assert reason == DOWNLOAD_FAILED or reason.endswith("…")
    assert "Tunnel: failed" in "\n".join(lines)


def test_at_80_columns_the_header_stays_within_ten_lines_and_a_click_shows_it_all() -> None:
    state = _failed()
    assert len(header_text(state, 78).plain.splitlines()) <= 10
    state.expanded = True
    whole = " ".join(header_text(state, 78).plain.split())
    assert DOWNLOAD_FAILED in whole and DOWNLOAD_FIX in whole


def test_a_reason_set_after_the_failure_does_not_keep_a_stale_fix() -> None:
    state = _failed()
    state.tunnel_state, state.tunnel_reason = "failed", "engine not running"  # what the app sets when it dies
    text = header_text(state, 158).plain
    assert "Tunnel failed: engine not running" in text and "Fix:" not in text


def test_an_older_engine_without_advice_still_gets_its_fix_from_the_reason() -> None:
    state = HeaderState(callback_url=LOCAL, verify_token="tok")
    state.note(TunnelChanged("failed", "ngrok", None, LOCAL, f"{DOWNLOAD_FAILED}\n  {DOWNLOAD_FIX}"))
    assert f"Fix: {DOWNLOAD_FIX}" in header_text(state, 400).plain


def test_a_hostile_reason_and_fix_are_text_never_markup_or_controls() -> None:
    hostile = "[red]x[/red] \x1b[2J [@click=app.quit]q[/]"
    text = header_text(_failed(hostile, hostile), 200).plain
    assert "Tunnel failed: [red]x[/red] \\x1b[2J [@click=app.quit]q[/]" in text
    assert "Fix: [red]x[/red]" in text and "\x1b" not in text


def _started(reason: str, advice: str) -> ReceiverStarted:
    return ReceiverStarted(
        LOCAL, LOCAL, "tok", False, None, 8765, tunnel_state="failed", tunnel_reason=reason, tunnel_advice=advice
    )


def test_the_start_panel_gives_this_failures_fix_not_the_authtoken_steps() -> None:
    panel = welcome_text(_started(DOWNLOAD_FAILED, DOWNLOAD_FIX), "ngrok").plain
    assert f"The ngrok tunnel did not start: {DOWNLOAD_FAILED}" in panel, "the whole reason, uncut"
    assert f"What to do: {DOWNLOAD_FIX}" in panel
    assert "NGROK_AUTHTOKEN" not in panel and "Get a free authtoken" not in panel


def test_the_start_panel_gives_the_authtoken_steps_when_the_authtoken_is_the_fix() -> None:
    reason = "no ngrok authtoken: NGROK_AUTHTOKEN is not set (ERR_NGROK_4018)"
    panel = welcome_text(_started(reason, "ngrok needs an authtoken: get one at ..."), "ngrok").plain
    assert "Get a free authtoken" in panel and "NGROK_AUTHTOKEN=<token>" in panel
    local = welcome_text(ReceiverStarted(LOCAL, LOCAL, "tok", False, None, 8765), "none").plain
    assert "Get a free authtoken" in local and "did not start" not in local


def test_the_start_panel_shows_a_hostile_reason_as_text() -> None:
    hostile = "[bold]x[/bold] \x1b]52;c;AAAA\x07 done"
    panel = welcome_text(_started(hostile, hostile), "ngrok").plain
    assert "[bold]x[/bold]" in panel and "\x1b" not in panel and "\x07" not in panel
    assert re.search(r"\\x1b\]52", panel)
