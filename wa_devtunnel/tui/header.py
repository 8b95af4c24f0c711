"""The header: what goes into Meta, whether the tunnel works, and the session's tallies."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

from rich.text import Text
from textual.widgets import Static

from wa_devtunnel.tui.model import Counters

TUNNEL_STYLES = {
    "up": "bold green",
    "local-only": "yellow",
    "starting": "cyan",
    "reconnecting": "bold yellow",
    "failed": "bold red",
}


def mask_token(token: str) -> str:
    """Enough to recognise the token, not enough to copy it from a screen share."""
    if len(token) <= 8:
        return "•" * len(token)
    return f"{token[:4]}{'•' * 8}{token[-2:]}"


@dataclass(slots=True)
class HeaderState:
    """Everything the header shows; the app updates it from engine events."""

    callback_url: str = ""
    verify_token: str = ""
    token_revealed: bool = False
    tunnel_state: str = "local-only"
    tunnel_reason: str = ""
    selftest: str = ""
    selftest_ok: bool | None = None
    recording: Path | None = None
    forward_to: str | None = None
    counters: Counters = field(default_factory=Counters)
    following: bool = True
    filter_text: str = ""


class StatusHeader(Static):
    """Three dense lines, always visible, ready to copy from."""

    DEFAULT_CSS = """
    StatusHeader { height: auto; max-height: 6; padding: 0 1; }
    """

    def show(self, state: HeaderState) -> None:
        """Re-render from the state."""
        token = state.verify_token if state.token_revealed else mask_token(state.verify_token)
        first = Text.assemble(("Callback URL: ", "bold"), (state.callback_url, "bold underline"), ("  u copy", "dim"))
        second = Text.assemble(("Verify token: ", "bold"), token, ("  t copy r reveal", "dim"), ("  Tunnel: ", "bold"))
        second.append(state.tunnel_state, TUNNEL_STYLES.get(state.tunnel_state, ""))
        if state.tunnel_reason:
            second.append(f" ({state.tunnel_reason.splitlines()[0][:60]})", "dim")
        if state.selftest:
            second.append("  Self-test: ", "bold")
            second.append(state.selftest, "green" if state.selftest_ok else "bold red")
        c = state.counters
        third = Text.assemble(
            ("Verify ", "bold"),
            (f"{c.handshakes_ok} ok", "green"),
            "/",
            (f"{c.handshakes_failed} failed", "bold red" if c.handshakes_failed else ""),
            ("  Events ", "bold"),
            str(c.events),
            ("  Bad sig ", "bold"),
            (str(c.signature_failures), "bold red" if c.signature_failures else ""),
            ("  Errors ", "bold"),
            (str(c.errors), "bold red" if c.errors else ""),
            ("  ", ""),
            ("FOLLOW" if state.following else "PAUSED f=follow", "reverse" if state.following else "bold yellow"),
        )
        if state.filter_text:
            third.append(f"  Filter: {state.filter_text}", "bold magenta")
        third.append("  Rec: ", "bold")
        third.append(state.recording.name if state.recording else "off")
        if state.forward_to:
            third.append("  Forward: ", "bold")
            third.append(state.forward_to)
        self.update(Text("\n").join([first, second, third]))
