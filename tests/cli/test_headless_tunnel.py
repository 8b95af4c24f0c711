"""Headless lines for a tunnel that drops and comes back: plain text, the agent's words shown, never obeyed."""

from __future__ import annotations

import io
import json
from pathlib import Path

from wa_devtunnel.cli.headless import HeadlessPrinter
from wa_devtunnel.engine.events import Notice, ReceiverStarted, TunnelChanged, tunnel_down_text

URL = "https://dev-domain.ngrok-free.app"
CALLBACK = f"{URL}/webhook/whatsapp"
HOSTILE = "[red]x[/red] \x1b[2J\nInjected: line \u202e"


def _started() -> ReceiverStarted:
    return ReceiverStarted(CALLBACK, "http://127.0.0.1:8765/webhook/whatsapp", "tok", False, Path("r.jsonl"), 8765)


def _episode(printer: HeadlessPrinter, reason: str) -> None:
    printer.render(_started())
    printer.render(TunnelChanged("down", "ngrok", URL, CALLBACK, reason))
    printer.render(Notice("error", tunnel_down_text("ngrok", reason), topic="tunnel-down"))
    printer.render(TunnelChanged("up", "ngrok", URL, CALLBACK, "reconnected"))


def test_down_and_back_up_are_one_line_each() -> None:
    out, err = io.StringIO(), io.StringIO()
    _episode(HeadlessPrinter(out, err, json_lines=False), "failed to reconnect session: dial tcp: i/o timeout")
    assert err.getvalue().splitlines()[-2:] == [
        "[error] TUNNEL DOWN: failed to reconnect session: dial tcp: i/o timeout. Meta's deliveries fail "
        "(ERR_NGROK_3200) until it is back; Meta retries for up to 7 days.",
        f"Tunnel back up: {CALLBACK}",
    ]
    assert "Callback URL" not in err.getvalue().split("TUNNEL DOWN")[1]  # same URL: nothing to paste again
    assert out.getvalue().count("Callback URL: ") == 1


def test_the_agents_reason_is_shown_as_text_on_one_line() -> None:
    out, err = io.StringIO(), io.StringIO()
    _episode(HeadlessPrinter(out, err, json_lines=False), HOSTILE)
    down = [text for text in err.getvalue().splitlines() if "TUNNEL DOWN" in text]
    assert down == [
        "[error] TUNNEL DOWN: [red]x[/red] \\x1b[2J\\x0aInjected: line \\u202e. Meta's deliveries fail "
        "(ERR_NGROK_3200) until it is back; Meta retries for up to 7 days."
    ]
    assert "\x1b" not in err.getvalue() and "\u202e" not in err.getvalue()
    assert not any(text.startswith("Injected") for text in err.getvalue().splitlines())


def test_json_lines_carry_both_events_exactly() -> None:
    out, err = io.StringIO(), io.StringIO()
    _episode(HeadlessPrinter(out, err, json_lines=True), HOSTILE)
    lines = [json.loads(text) for text in out.getvalue().splitlines()]
    tunnel = [entry for entry in lines if entry["event"] == "tunnel"]
    assert [(t["state"], t["reason"]) for t in tunnel] == [("down", HOSTILE), ("up", "reconnected")]
    assert [entry["text"] for entry in lines if entry["event"] == "notice"] == [tunnel_down_text("ngrok", HOSTILE)]
    assert "\x1b" not in out.getvalue()


def test_a_new_url_after_a_restart_is_printed_to_paste() -> None:
    out, err = io.StringIO(), io.StringIO()
    printer = HeadlessPrinter(out, err, json_lines=False)
    printer.render(_started())
    printer.render(TunnelChanged("reconnecting", "ngrok", None, CALLBACK, "the agent exited"))
    new = "https://other.ngrok-free.app/webhook/whatsapp"
    printer.render(TunnelChanged("up", "ngrok", "https://other.ngrok-free.app", new, "the public URL changed"))
    assert f"Tunnel back up: {new}" in err.getvalue()
    assert "The public URL changed: paste the new Callback URL into Meta." in err.getvalue()
    assert out.getvalue().splitlines()[-1] == f"Callback URL: {new}"
