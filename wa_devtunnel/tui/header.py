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

    _state: HeaderState | None = None

    def show(self, state: HeaderState) -> None:
        """Re-render from the state, flowing the items onto as few lines as the width allows."""
        self._state = state
        token = state.verify_token if state.token_revealed else mask_token(state.verify_token)
        items: list[Text] = [
            Text.assemble(("Verify token: ", "bold"), token, (" (t copy, r show)", "dim")),
        ]
        tunnel = Text.assemble(("Tunnel: ", "bold"), (state.tunnel_state, TUNNEL_STYLES.get(state.tunnel_state, "")))
        if state.tunnel_reason:
            tunnel.append(f" ({state.tunnel_reason.splitlines()[0][:60]})", "dim")
        items.append(tunnel)
        if state.selftest:
            items.append(
                Text.assemble(("Self-test: ", "bold"), (state.selftest, "green" if state.selftest_ok else "bold red"))
            )
        c = state.counters
        items += [
            Text.assemble(
                ("Verify ", "bold"),
                (f"{c.handshakes_ok} ok", "green"),
                "/",
                (f"{c.handshakes_failed} failed", "bold red" if c.handshakes_failed else ""),
            ),
            Text.assemble(("Events ", "bold"), str(c.events)),
            Text.assemble(
                ("Bad sig ", "bold"), (str(c.signature_failures), "bold red" if c.signature_failures else "")
            ),
            Text.assemble(("Errors ", "bold"), (str(c.errors), "bold red" if c.errors else "")),
            Text("FOLLOW", "reverse") if state.following else Text("PAUSED f=follow", "bold yellow"),
        ]
        if state.filter_text:
            items.append(Text(f"Filter: {state.filter_text}", "bold magenta"))
        if state.forward_to:
            items.append(Text.assemble(("Forward: ", "bold"), state.forward_to))
        items.append(Text.assemble(("Rec: ", "bold"), state.recording.name if state.recording else "off"))
        first = Text.assemble(("Callback URL: ", "bold"), (state.callback_url, "bold underline"), (" (u copy)", "dim"))
        self.update(Text("\n").join([first, *flow(items, max(self.size.width - 2, 40))]))

    def on_resize(self) -> None:
        """Re-flow for the new width."""
        if self._state is not None:
            self.show(self._state)


def flow(items: list[Text], width: int) -> list[Text]:
    """Greedy line filling: a narrow terminal gets more lines, a wide one fewer."""
    lines: list[Text] = []
    current = Text()
    for item in items:
        if current.cell_len and current.cell_len + 2 + item.cell_len > width:
            lines.append(current)
            current = Text()
        if current.cell_len:
            current.append("  ")
        current.append_text(item)
    if current.cell_len:
        lines.append(current)
    return lines
