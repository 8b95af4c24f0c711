"""The header: what goes into Meta, whether the tunnel works, and the session's tallies."""

from __future__ import annotations

import asyncio
import contextlib
import subprocess
from dataclasses import dataclass, field
from pathlib import Path

from rich.text import Text
from textual import work
from textual.widgets import Static

from wa_devtunnel.engine.channel.child import EngineChild
from wa_devtunnel.engine.channel.client import EngineLost
from wa_devtunnel.engine.events import EngineEvent, ReceiverStarted, RecordingHealth, SelfTestFinished, TunnelChanged
from wa_devtunnel.tui.model import Counters
from wa_devtunnel.tui.safe import data_block, shown

TUNNEL_STYLES = {
    "up": "bold green",
    "local-only": "yellow",
    "starting": "cyan",
    "reconnecting": "bold yellow",
    "failed": "bold red",
    "down": "bold red",
}
# How a state reads in the header when its name alone would not be loud enough.
TUNNEL_LABELS = {"down": "DOWN"}
REASON_LIMIT = 60
# After the channel closes, how long to wait for the engine's exit status before the banner says less.
ENGINE_EXIT_WAIT_S = 3.0


def mask_token(token: str) -> str:
    """Enough to recognise the token, not enough to copy it from a screen share.

    As long as the token: showing it (r) changes no line of the header, so the screen is not laid out again.
    """
    if len(token) <= 8:
        return "•" * len(token)
    return f"{token[:4]}{'•' * (len(token) - 6)}{token[-2:]}"


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
    recording_failed: bool = False

    @classmethod
    def at_start(cls, started: ReceiverStarted, forward_to: str | None) -> HeaderState:
        """What the receiver announced when it started."""
        return cls(
            callback_url=started.callback_url,
            verify_token=started.verify_token,
            tunnel_state=started.tunnel_state,
            recording=started.recording_path,
            forward_to=forward_to,
        )

    def note(self, event: EngineEvent) -> None:
        """What an engine event changes in the header (exchanges are counted by the store)."""
        if isinstance(event, TunnelChanged):
            self.tunnel_state, self.tunnel_reason = event.state, event.reason
            if event.state in ("up", "failed"):
                self.callback_url = event.callback_url
        elif isinstance(event, SelfTestFinished):
            self.selftest, self.selftest_ok = f"{'PASS' if event.ok else 'FAIL'} {event.elapsed_ms:.0f} ms", event.ok
        elif isinstance(event, ReceiverStarted):  # a restarted engine: its URL, token and recording
            self.callback_url, self.verify_token = event.callback_url, event.verify_token
            self.tunnel_state, self.tunnel_reason = event.tunnel_state, ""
            self.recording = event.recording_path
        elif isinstance(event, RecordingHealth):
            self.recording_failed = not event.ok


class StatusHeader(Static):
    """Three dense lines, always visible, ready to copy from; the app updates `state`, then calls `show`."""

    DEFAULT_CSS = """
    StatusHeader { height: auto; max-height: 6; padding: 0 1; }
    """

    def __init__(self, state: HeaderState, *, id: str) -> None:
        super().__init__(id=id)
        self.state = state
        self._shown = False

    def show(self) -> None:
        """Re-render from the state, flowing the items onto as few lines as the width allows.

        The screen is laid out again only when the header's height changes: a burst updates the tallies
        several times a second, and a layout redraws every widget.
        """
        text = header_text(self.state, max(self.size.width - 2, 40))
        self.update(text, layout=self.size.height != text.plain.count("\n") + 1)
        self._shown = True

    def on_resize(self) -> None:
        """Re-flow for the new width."""
        if self._shown:
            self.show()


class Banner(Static):
    """A loud line on top, hidden until something is wrong, until it is right again."""

    def raise_text(self, text: Text) -> None:
        """Show (or update) what is wrong and what to do."""
        self.update(text)
        self.display = True

    def clear(self) -> None:
        """It works again."""
        self.display = False


class RecordingAlarm(Banner):
    """A recorder that cannot write: its reason and what Meta sees meanwhile, until writes work again."""

    def raise_alarm(self, event: RecordingHealth) -> None:
        self.raise_text(recording_alarm_text(event))


def engine_lost_text(event: EngineLost, child: EngineChild | None) -> str:
    """What the banner says when the channel closed: how the engine ended, and what to do about it."""
    if child is None:  # a watcher: the engine is not ours to restart
        if event.clean:
            return "The engine stopped (its terminal ended it). This view is detached: press q to quit."
        return f"LOST THE ENGINE: {event.reason}. This view is detached: press q to quit."
    code = child.exit_code
    if code is None:
        how = "STOPPED" if event.clean else "STOPPED ANSWERING"
    elif code < 0:
        how = f"DIED (killed by signal {-code})"
    elif code > 0:
        how = f"DIED (exit status {code})"
    else:
        how = "STOPPED"
    text = f"ENGINE {how}: Meta's deliveries fail until it runs again. "
    text += "Press R to restart it (the recording so far is kept)."
    why = child.log_tail(3) if code is not None and code > 0 else ""
    return f"{text}\nIts last words: {why}" if why else text


class EngineAlarm(Banner):
    """An engine that stopped or died: how, and what to do (restart it, when this UI started it)."""

    def raise_alarm(self, event: EngineLost, child: EngineChild | None) -> None:
        self.raise_text(data_block(engine_lost_text(event, child)))
        if child is not None and child.exit_code is None:
            self._when_it_exits(event, child)

    @work(group="engine-exit", exclusive=True)
    async def _when_it_exits(self, event: EngineLost, child: EngineChild) -> None:
        """The socket closes a moment before the exit status can be read: say how it ended once it can."""
        if child.process is not None:
            with contextlib.suppress(subprocess.TimeoutExpired):
                await asyncio.to_thread(child.process.wait, ENGINE_EXIT_WAIT_S)
        if self.display:  # not restarted meanwhile
            self.raise_text(data_block(engine_lost_text(event, child)))


def header_text(state: HeaderState, width: int) -> Text:
    """The header as Text; the URL, tunnel reason and forward target may carry agent or request text."""
    token = state.verify_token if state.token_revealed else mask_token(state.verify_token)
    items: list[Text] = [
        Text.assemble(("Verify token: ", "bold"), shown(token), (" (t copy, r show)", "dim")),
    ]
    label = TUNNEL_LABELS.get(state.tunnel_state, state.tunnel_state)
    tunnel = Text.assemble(("Tunnel: ", "bold"), (shown(label), TUNNEL_STYLES.get(state.tunnel_state, "")))
    if state.tunnel_reason:
        down = state.tunnel_state == "down"
        first_line = (state.tunnel_reason.splitlines() or [""])[0]
        # A dropped session's reason is the agent's own: the whole line gets it, cut (if at all) at a word.
        limit = max(width - tunnel.cell_len - 3, REASON_LIMIT) if down else REASON_LIMIT
        tunnel.append(f" ({at_word(shown(first_line), limit)})", "red" if down else "dim")
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
        Text.assemble(("Bad sig ", "bold"), (str(c.signature_failures), "bold red" if c.signature_failures else "")),
        Text.assemble(("Errors ", "bold"), (str(c.errors), "bold red" if c.errors else "")),
        Text("FOLLOW", "reverse") if state.following else Text("PAUSED f=follow", "bold yellow"),
    ]
    if state.filter_text:
        items.append(Text(f"Filter: {shown(state.filter_text, REASON_LIMIT)}", "bold magenta"))
    if state.forward_to:
        items.append(Text.assemble(("Forward: ", "bold"), shown(state.forward_to)))
    if state.recording_failed:
        items.append(Text.assemble(("Rec: ", "bold"), ("FAILING (Meta gets 503)", "bold reverse red")))
    else:
        items.append(Text.assemble(("Rec: ", "bold"), shown(state.recording.name) if state.recording else "off"))
    first = Text.assemble(
        ("Callback URL: ", "bold"), (shown(state.callback_url), "bold underline"), (" (u copy)", "dim")
    )
    return Text("\n").join([first, *flow(items, width)])


def at_word(text: str, limit: int) -> str:
    """`text` within `limit` characters, cut after a whole word with an ellipsis: never half a word."""
    if len(text) <= limit:
        return text
    cut = text[: max(limit - 1, 0)]
    space = cut.rfind(" ")
    if space > 0:
        cut = cut[:space]
    return cut.rstrip(" ,;:.") + "…"


def recording_alarm_text(event: RecordingHealth) -> Text:
    """The banner for a recorder that cannot write: loud, with the reason and what Meta sees meanwhile."""
    text = Text.assemble(("RECORDING FAILED: ", "bold"), shown(event.reason or "write failed", 200))
    if event.path is not None and str(event.path) not in event.reason:  # the recorder's reason may name it
        text.append(f" ({shown(event.path)})")
    text.append("\nMeta gets 503 and will retry; nothing is acknowledged until writes work again.")
    if event.refused:
        text.append(f" {event.refused} delivery(ies) refused so far.")
    return text


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
