"""The header says DOWN in red with the agent's reason, whole or cut at a word, as text; toasts say it once."""

from __future__ import annotations

from wa_devtunnel.engine.events import Notice, TunnelChanged, tunnel_down_text
from wa_devtunnel.tui.header import HeaderState, at_word, header_text
from wa_devtunnel.tui.toasts import toasts_for

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
