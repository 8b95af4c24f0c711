"""The header: what goes into Meta, whether the tunnel works, and the session's tallies."""

from __future__ import annotations

import asyncio
import contextlib
import subprocess
import textwrap
from dataclasses import dataclass, field
from pathlib import Path

from rich.text import Text
from textual import work
from textual.widgets import Static

from wa_devtunnel.engine.channel.child import EngineChild
from wa_devtunnel.engine.channel.client import EngineLost
from wa_devtunnel.engine.events import (
    EngineEvent,
    ReceiverStarted,
    RecordingHealth,
    RegistrationChanged,
    SelfTestFinished,
    TunnelChanged,
    WebhookQuiet,
    routing_words,
    token_source_text,
)
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
# How many lines a lasting state takes in the header before it is cut (at a word; a click shows it all).
TUNNEL_REASON_LINES = 2
TUNNEL_FIX_LINES = 3
REGISTRATION_LINES = 2
QUIET_LINES = 2


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
    verify_token_source: str = ""
    state_path: str = ""
    # (account name, its verify token) of every configured account.
    accounts: tuple[tuple[str, str], ...] = ()
    # What to do about the tunnel's failure, and the reason it answers (a later reason makes it stale).
    tunnel_advice: str = ""
    tunnel_advice_for: str = ""
    registration: RegistrationChanged | None = None
    quiet: WebhookQuiet | None = None
    # Lasting states in full rather than cut at a word (a click on the header).
    expanded: bool = False

    @classmethod
    def at_start(cls, started: ReceiverStarted, forward_to: str | None) -> HeaderState:
        """What the receiver announced when it started."""
        state = cls(forward_to=forward_to)
        state.note(started)
        return state

    def note(self, event: EngineEvent) -> None:
        """What an engine event changes in the header (exchanges are counted by the store)."""
        if isinstance(event, TunnelChanged):
            self.tunnel_state, self.tunnel_reason = event.state, event.reason
            self._advise(event.reason, event.advice)
            if event.state in ("up", "failed"):
                self.callback_url = event.callback_url
        elif isinstance(event, SelfTestFinished):
            self.selftest, self.selftest_ok = f"{'PASS' if event.ok else 'FAIL'} {event.elapsed_ms:.0f} ms", event.ok
        elif isinstance(event, ReceiverStarted):  # at start, or a restarted engine: its URL, token and recording
            self.callback_url, self.verify_token = event.callback_url, event.verify_token
            self.tunnel_state, self.tunnel_reason = event.tunnel_state, event.tunnel_reason
            self._advise(event.tunnel_reason, event.tunnel_advice)
            self.recording = event.recording_path
            self.verify_token_source, self.accounts = event.verify_token_source, tuple(event.accounts)
            self.state_path = event.state_path
            self.registration = self.quiet = None
        elif isinstance(event, RecordingHealth):
            self.recording_failed = not event.ok
        elif isinstance(event, RegistrationChanged):
            self.registration = event
        elif isinstance(event, WebhookQuiet):
            self.quiet = event if event.quiet else None

    def _advise(self, reason: str, advice: str) -> None:
        """The fix for this reason: the event's own, or (an engine that sends none) the lines after the first."""
        if not advice and "\n" in reason:
            advice = " ".join(reason.split("\n", 1)[1].split())
        self.tunnel_advice, self.tunnel_advice_for = advice, reason


class StatusHeader(Static):
    """A few dense lines, always visible, ready to copy from; the app updates `state`, then calls `show`.

    Lasting states (a failed tunnel and its fix, the registration, no webhook from Meta) are cut at a word
    to keep the list in view at 80x24; a click on the header (or the app's key) shows them whole.
    """

    DEFAULT_CSS = """
    StatusHeader { height: auto; max-height: 10; padding: 0 1; }
    StatusHeader.-expanded { max-height: 40; }
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

    def toggle_expanded(self) -> None:
        """Lasting states whole, or cut at a word again."""
        self.state.expanded = not self.state.expanded
        self.set_class(self.state.expanded, "-expanded")
        self.show()

    def on_click(self) -> None:
        """A click shows the lasting states whole (a second one cuts them again)."""
        self.toggle_expanded()


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
    """The header as Text; the URL, tunnel reason and forward target may carry agent or request text.

    The callback URL, then the tallies flowed onto as few lines as fit, then each lasting state (a failed
    tunnel and its fix, the registration, no webhook from Meta) on lines of its own, cut at a word.
    """
    items = token_items(state, width)
    label = TUNNEL_LABELS.get(state.tunnel_state, state.tunnel_state)
    tunnel = Text.assemble(("Tunnel: ", "bold"), (shown(label), TUNNEL_STYLES.get(state.tunnel_state, "")))
    if state.tunnel_reason and state.tunnel_state != "failed":  # a failure has lines of its own, below
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
    return Text("\n").join([first, *flow(items, width), *state_lines(state, width)])


def token_items(state: HeaderState, width: int) -> list[Text]:
    """The verify token (masked unless shown), where it comes from, and every account's token."""
    token = state.verify_token if state.token_revealed else mask_token(state.verify_token)
    source = token_source_text(state.verify_token_source, state.state_path)
    temporary = state.verify_token_source == "generated"
    item = Text.assemble(("Verify token: ", "bold"), shown(token))
    keys = Text(" (t copy, r show)", "dim")
    said = Text(f" ({source})", "bold yellow" if temporary else "dim") if source else None
    if said is not None and item.cell_len + said.cell_len + keys.cell_len <= width:
        items = [Text.assemble(item, said, keys)]
    else:  # too long for one line: where it comes from goes on as the next item
        items = [Text.assemble(item, keys)]
        if said is not None:
            items.append(Text.assemble(("Token: ", "bold"), (source, said.style)))
    for name, account_token in state.accounts:
        masked = account_token if state.token_revealed else mask_token(account_token)
        items.append(Text.assemble(("Account ", "bold"), (shown(name), "bold"), ": ", shown(masked)))
    return items


REGISTRATION_WORDS = {
    "registering": ("Registering with Meta: ", "cyan"),
    "registered": ("Registered with Meta: ", "bold green"),
    "failed": ("Registration FAILED: ", "bold red"),
    "undoing": ("Undoing the registration: ", "cyan"),
    "undone": ("Registration undone: ", "green"),
    "undo-failed": ("Registration NOT undone: ", "bold red"),
}


def registration_text(event: RegistrationChanged) -> str:
    """The words after the label: what --register did to Meta's routing, and what it was before."""
    where = routing_words(event.scope, event.target)
    if event.state == "registering":
        return f"pointing {where} at {event.url}"
    if event.state == "registered":
        was = event.previous or "none"
        return f"{where} now points here (was: {was}); undone on exit"
    if event.state == "undoing":
        return f"{where} back from {event.url}"
    return event.detail or event.state


def state_lines(state: HeaderState, width: int) -> list[Text]:
    """The lasting states, each on lines of its own with the whole reason and the right fix."""
    lines: list[Text] = []
    full = state.expanded
    if state.tunnel_state == "failed" and state.tunnel_reason:
        summary = (state.tunnel_reason.splitlines() or [""])[0]
        lines += wrapped("Tunnel failed: ", summary, "bold red", width, TUNNEL_REASON_LINES, full)
        if state.tunnel_advice and state.tunnel_advice_for == state.tunnel_reason:
            lines += wrapped("  Fix: ", state.tunnel_advice, "bold", width, TUNNEL_FIX_LINES, full)
    registration = state.registration
    if registration is not None:
        label, style = REGISTRATION_WORDS.get(registration.state, ("Registration: ", "bold"))
        text = registration_text(registration)
        lines += wrapped(label, text, style, width, REGISTRATION_LINES, full)
    if state.quiet is not None:
        quiet = state.quiet
        hint = quiet.hint or f"No webhook from Meta in {quiet.seconds:g} s since its {quiet.since}."
        lines += wrapped("Meta: ", hint, "bold yellow", width, QUIET_LINES, full)
    return lines


def wrapped(label: str, text: str, style: str, width: int, budget: int, full: bool = False) -> list[Text]:
    """`label` + `text` over lines of `width`, broken at words; beyond `budget` lines (unless `full`) the
    last kept line is cut at a word with an ellipsis (a click on the header shows the rest)."""
    first, indent = " " * len(label), " " * 4
    pieces = textwrap.wrap(
        shown(text), width, initial_indent=first, subsequent_indent=indent, break_on_hyphens=False
    ) or [first]
    if not full and len(pieces) > budget:
        lead = first if budget == 1 else indent
        rest = " ".join(piece.strip() for piece in pieces[budget - 1 :])
        pieces = [*pieces[: budget - 1], lead + at_word(rest, width - len(lead))]
    return [Text.assemble((label, style), pieces[0][len(label) :]), *(Text(piece) for piece in pieces[1:])]


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
