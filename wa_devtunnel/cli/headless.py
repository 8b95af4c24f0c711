"""Headless front end: one line (or one JSON object) per exchange, for terminals, logs and scripts."""

from __future__ import annotations

import asyncio
import gc
import re
import signal
import sys
from collections.abc import Mapping
from pathlib import Path
from typing import Any, TextIO

from wa_devtunnel.cli.headless_display import (
    BATCH_SECONDS,
    SKIPPED_REPORT_SECONDS,
    DisplayBudget,
    LineWriter,
    Runs,
    joined_runs,
)
from wa_devtunnel.cli.output import Paint, no_paint, painter, status_style
from wa_devtunnel.cli.terminal_text import block, json_text, line
from wa_devtunnel.engine.channel.attach import EngineChannel
from wa_devtunnel.engine.events import (
    EngineEvent,
    ExchangeRecorded,
    ExchangeView,
    ForwardCompleted,
    Notice,
    ReceiverStarted,
    ReceiverStopped,
    RecordingHealth,
    RegistrationChanged,
    SelfTestFinished,
    Subscription,
    TunnelChanged,
    WebhookQuiet,
    routing_words,
    token_source_text,
    tunnel_down_text,
)
from wa_devtunnel.engine.exchange_view import forward_note, local_clock
from wa_devtunnel.engine.recording import read_record_at
from wa_devtunnel.engine.service import WebhookService
from wa_devtunnel.rules.lifecycle import LifecycleBook, item_line, record_items, status_note
from wa_devtunnel.settings import Settings

NOTICE_STYLES = {"error": "bold red", "warning": "yellow"}
# Said by a state's own line in text (TunnelChanged, RegistrationChanged, WebhookQuiet): the notice would
# repeat it word for word.
SAID_BY_THE_TUNNEL_LINE = frozenset({"tunnel-down"})
SAID_BY_A_STATE_LINE = SAID_BY_THE_TUNNEL_LINE | {"register", "quiet"}
# Our own requests are named by what sent them; anyone else's by where it came from too.
OURS = frozenset({"selftest", "replay", "sample"})
# A late backend answer (--ack-first), under its exchange's line: `↳ #12 forwarded: 200 in 35 ms`.
FOLLOW_UP = "↳"
_OVERSIZED = re.compile(r"body of (\d+) bytes exceeds (\d+)")
SIGNATURE_STYLES = {"valid": "green", "invalid": "bold red", "missing": "yellow"}
# The items of a batch, one line each under their exchange's line (aligned under its method).
ITEM_INDENT = " " * 10
ITEM_LINES_LIMIT = 1000  # Meta batches up to 1000 updates; a bigger (hand-made) body is cut, with a count


def format_exchange_line(view: ExchangeView, paint: Paint = no_paint, note: str = "") -> str:
    """`21:55:03  POST  200  event  sig=valid  messages: text from ...` with the diagnosis inline.

    Always exactly one line: a `\r` or line feed from the request is shown escaped, never obeyed.
    Each part is escaped before `paint` colours it (status, signature verdict, a failed handshake).
    `note` follows the headline: what a lone status joins to (its message's earlier statuses).
    """
    parts = [
        line(local_clock(view.received_at)),
        line(f"{view.method:<5}"),
        paint(f"{view.status:>3}", status_style(view.status)),
        line(f"{view.kind:<6}"),
    ]
    if view.kind == "event":
        parts.append(paint(line(f"sig={view.signature}"), SIGNATURE_STYLES.get(view.signature, "")))
    headline = oversized_headline(view) if view.status == 413 else view.headline
    text = f"{headline} {note}" if note else headline
    if view.kind == "event" and view.signature == "invalid" and view.signature_detail:
        text += f"  [signature: {view.signature_detail}]"
    if view.kind == "event" and view.flags:
        text += "  [" + ", ".join(view.flags) + "]"
    if view.account and view.account != "default":
        # An unknown number's account is the one whose App Secret signed it: say so, not "account shop".
        signed = "unknown-phone-number-id" in view.flags and view.signature == "valid"
        text += f"  (signed by account {view.account})" if signed else f"  (account {view.account})"
    text += origin_note(view)
    if view.forward_pending:  # the late answer's line refers to this number
        text += f"  -> backend pending (#{view.seq}, acknowledged first)"
    else:
        text += forward_note(view.forward_status, view.forward_error, view.forward_pending)
    parts.append(paint(line(text), "red" if view.kind == "verify" and view.verify_ok is False else ""))
    return "  ".join(parts)


def origin_note(view: ExchangeView) -> str:
    """`  (sample)` for our own requests; `  (local from 127.0.0.1)` / `  (other from 203.0.113.9)` for
    anyone's but Meta's; Meta's own say nothing (most lines are Meta's)."""
    if view.origin in OURS:
        return f"  ({view.origin})"
    client = getattr(view, "client", "") or ""  # the real client address (the tunnel's forwarded header)
    if view.origin == "meta":
        return ""
    return f"  ({view.origin} from {client})" if client else f"  ({view.origin})"


def oversized_headline(view: ExchangeView) -> str:
    """A 413's summary with its numbers readable: `body too large: 4,000,000 bytes > 3,670,016 limit`."""
    found = _OVERSIZED.search(view.headline)
    if found is None:
        return view.headline or "body too large for --max-body-bytes (413, not read)"
    size, limit = int(found.group(1)), int(found.group(2))
    return f"body too large: {size:,} bytes > {limit:,} limit (not read; --max-body-bytes raises it)"


def follow_up_line(event: ForwardCompleted) -> str:
    """--ack-first: the backend's late answer, under the exchange it answers (`#12` was on that line)."""
    forward = event.forward
    error, status, elapsed = forward.get("error"), forward.get("status"), forward.get("elapsed_ms")
    took = f" in {elapsed:.0f} ms" if isinstance(elapsed, int | float) and not isinstance(elapsed, bool) else ""
    if error:
        return f"{FOLLOW_UP} #{event.seq} forward failed{took}: {error}"
    return f"{FOLLOW_UP} #{event.seq} forwarded: {status}{took}"


def joined_lines(book: LifecycleBook, record: Mapping[str, Any], headline: str) -> tuple[str, list[str]]:
    """Feed one exchange's items to the book: the note for a lone item's line, or a batch's item lines.

    Each status says what it joins to (its message's statuses so far, its callback data); an item the
    headline already shows is not printed again. Lines are not escaped yet.
    """
    if record.get("kind") != "event":
        return "", []
    seq = record.get("seq")
    seq = seq if isinstance(seq, int) and not isinstance(seq, bool) else 0
    received_at = record.get("received_at")
    received_at = received_at if isinstance(received_at, str) else ""
    items = record_items(record)
    lines: list[str] = []
    for index, item in enumerate(items):
        joined = book.add([item], received_at, seq)[0]
        message = joined.message
        note = status_note(message) if message is not None and message.outgoing else ""
        if len(items) == 1:
            return note, []
        if index >= ITEM_LINES_LIMIT:
            continue  # still joined, not printed
        text = item_line(item)
        if text and text in headline and not headline.startswith("batch:"):
            continue
        lines.append(f"{text} {note}" if note and text else text or note)
    if len(items) > ITEM_LINES_LIMIT:
        lines.append(f"... and {len(items) - ITEM_LINES_LIMIT} more item(s): the recording has them all")
    return "", [line for line in lines if line]


def recording_failure_text(event: RecordingHealth) -> str:
    """The loud words for a recorder that cannot write: why, where, and what Meta sees meanwhile."""
    where = f" ({event.path})" if event.path is not None and str(event.path) not in event.reason else ""
    refused = f"; {event.refused} delivery(ies) refused so far" if event.refused else ""
    reason = event.reason or "write failed"
    return f"RECORDING FAILED: {reason}{where}. Meta gets 503 and will retry until writes work again{refused}."


def startup_lines(started: ReceiverStarted) -> list[str]:
    """What goes into Meta's dashboard, ready to copy, where the token and the accounts come from, and
    where the recording is."""
    lines = [f"Callback URL: {started.callback_url}", f"Verify token: {started.verify_token}"]
    source = token_source_text(started.verify_token_source, started.state_path, started.verify_token_new)
    if source:
        lines.append(f"  ({source})")
    elif started.verify_token_generated:  # an engine that does not say where it came from
        lines.append("  (generated for this session; wa-devtunnel token --write-env keeps one)")
    if started.public_url:
        lines.append(f"  (public URL through the tunnel; local receiver at {started.local_url})")
    if started.accounts:
        where = f" from {started.accounts_file}" if started.accounts_file else ""
        lines.append(f"Accounts{where}: {len(started.accounts)}, each answering Meta's handshake with its own token")
        lines += [f"  {name}: verify token {mask(token)}" for name, token in started.accounts]
    if started.forward_to:
        lines.append(f"Forwarding to: {started.forward_to}")
    if started.signatures_checked:
        lines.append("Signatures: X-Hub-Signature-256 checked with your App Secret")
    else:
        lines.append("Signatures: not checked (set WHATSAPP_APP_SECRET to verify X-Hub-Signature-256)")
    if started.recording_path is not None:
        lines.append(f"Recording to: {started.recording_path}")
    else:
        lines.append("Recording: off (--no-record)")
    return lines


def mask(token: str) -> str:
    """An account's token, recognisable but not copyable from a log (the primary one is printed whole)."""
    return "*" * len(token) if len(token) <= 8 else f"{token[:4]}...{token[-2:]}"


def registration_line(event: RegistrationChanged, again: bool = False) -> tuple[str, str] | None:
    """(stream, text) for a registration step: `out` for what to know, `err` for the steps and the exit.

    `again`: a registration after one that succeeded (the tunnel's URL changed).
    """
    where = routing_words(event.scope, event.target)
    if event.state == "registering":
        return "err", f"Registering {event.url} with Meta as {where}..."
    if event.state == "registered":
        was = event.previous or "none"
        if again:
            return "out", f"Re-registered {event.url} as {where} (the tunnel URL changed; was: {was}); undone on exit"
        return "out", f"Registered {event.url} as {where} (was: {was}); undone on exit"
    if event.state == "failed":
        return "err", f"[error] Registration FAILED: {event.detail}"
    if event.state == "undoing":
        return "err", f"Undoing the registration of {event.url}..."
    if event.state == "undone":
        return "err", f"Registration undone: {event.detail}"
    if event.state == "undo-failed":
        return "err", f"Registration NOT undone: {event.detail}"
    return None


# What the display budget counts (and may leave unshown): exchanges and --ack-first late answers.
_COUNTED = (ExchangeRecorded, ForwardCompleted)


class HeadlessPrinter:
    """Renders engine events as text or JSON Lines; never touches the receiver."""

    def __init__(self, out: TextIO, err: TextIO, json_lines: bool, exchanges: bool = True) -> None:
        self.out = out
        self.err = err
        self.json_lines = json_lines
        # False for an engine a TUI started: its stdout is /dev/null and the TUI shows the exchanges.
        self.exchanges = exchanges
        self.started = False
        self.callback_url = ""
        self.tunnel_state = ""
        self.recording_failure: str | None = None
        self.registered = False  # a --register that succeeded once: the next one is a re-registration
        self.paint_out, self.paint_err = painter(out), painter(err)
        # Statuses joined to their messages across exchanges, for the text lines (bounded).
        self.book = LifecycleBook()
        # While render_batch runs: the text it makes, in order, instead of a write per line.
        self._chunks: list[tuple[TextIO, str]] | None = None
        # Exchanges (and --ack-first late answers) not shown since the last report, under overload.
        self.skipped = 0
        self.skipped_forwards = 0
        self._skipped_seqs = [0, 0]  # the first and last seq of the run not shown
        self._skipped_path: Path | None = None
        self._reported_at = 0.0

    def _emit(self, stream: TextIO, text: str, style: str = "") -> None:
        """Every human line passes here: controls from a request or an agent are shown, never obeyed."""
        paint = self.paint_err if stream is self.err else self.paint_out
        self._write(stream, paint(block(text), style))

    def _write(self, stream: TextIO, text: str) -> None:
        """A line already escaped (and coloured on a terminal)."""
        if self._chunks is not None:
            self._chunks.append((stream, text + "\n"))
            return
        stream.write(text + "\n")
        stream.flush()

    def _json(self, payload: dict[str, Any]) -> None:
        self._write(self.out, json_text(payload))

    def render_batch(
        self, events: list[EngineEvent], budget: DisplayBudget | None = None, *, final: bool = False
    ) -> Runs:
        """Render a batch as text runs (one per stream change) for one write each, instead of writing.

        Past `budget`, an exchange (or a late backend answer) is counted, not decoded or formatted; the
        count is reported when exchanges are shown again, else every SKIPPED_REPORT_SECONDS (a batch may
        be empty, to say it), and (`final`) at the end. Every other event is always rendered.
        """
        self._chunks = chunks = []
        counted = budget is not None and self.exchanges
        now = budget.clock() if budget is not None else 0.0  # one reading per batch: it arrived at once
        try:
            for event in events:
                if counted and event.__class__ in _COUNTED:
                    if not budget.take(now):  # type: ignore[union-attr]  # counted only with a budget
                        self._skip(event)
                        continue
                    if self.skipped or self.skipped_forwards:
                        self._report_skipped(budget.clock())
                self.render(event)
            if self.skipped or self.skipped_forwards:
                now = budget.clock() if budget is not None else 0.0
                if final or budget is None or now - self._reported_at >= SKIPPED_REPORT_SECONDS:
                    self._report_skipped(now)
        finally:
            self._chunks = None
        return joined_runs(chunks)

    def _skip(self, event: ExchangeRecorded | ForwardCompleted) -> None:
        if event.__class__ is ForwardCompleted:
            self.skipped_forwards += 1
            return
        self.count_unshown(1, event.seq, event.seq, event.path)  # a skipped exchange is never decoded

    def count_unshown(self, count: int, first_seq: int, last_seq: int, path: Path | None) -> None:
        """`count` exchanges (seq first_seq..last_seq) join the run not shown (path: their recording, if any)."""
        seqs = self._skipped_seqs
        if not self.skipped:
            seqs[0] = first_seq
        seqs[1] = last_seq
        self.skipped += count
        if path is not None:  # the recording to see (None: not recorded, by --no-record or a full disk)
            self._skipped_path = path

    def _report_skipped(self, now: float) -> None:
        """`N exchange(s) not shown (#a-#b)`: answered and recorded, only the display skipped them."""
        self._reported_at = now
        count, forwards = self.skipped, self.skipped_forwards
        first, last = self._skipped_seqs if count else (0, 0)
        recording = str(self._skipped_path) if self._skipped_path is not None else None
        self.skipped = self.skipped_forwards = 0
        self._skipped_path = None
        if self.json_lines:
            payload: dict[str, Any] = {"event": "skipped", "count": count, "first_seq": first, "last_seq": last}
            self._json(payload | {"forward_updates": forwards, "recording": recording})
            return
        text = f"[overload] {count} exchange(s) not shown"
        if count:
            text += f" (#{first}-#{last})" if first != last else f" (#{first})"
        if forwards:
            text += f", {forwards} late backend answer(s) not shown"
        text += f"; answered and recorded, see {recording}" if recording else "; answered (not recorded: --no-record)"
        self._emit(self.out, line(text), "yellow")

    def render(self, event: EngineEvent | ExchangeView) -> None:
        """Print one event."""
        if isinstance(event, ReceiverStarted):
            self.started = True
            self.callback_url = event.callback_url
            for text in startup_lines(event):
                self._emit(self.err if self.json_lines else self.out, line(text))
            if self.json_lines:
                recording = str(event.recording_path) if event.recording_path else None
                self._json(
                    {
                        "event": "started",
                        "callback_url": event.callback_url,
                        "verify_token": event.verify_token,
                        "verify_token_source": event.verify_token_source,
                        "recording": recording,
                        "accounts": [{"name": name, "verify_token": token} for name, token in event.accounts],
                        "accounts_file": event.accounts_file or None,
                    }
                )
        elif not self.exchanges and isinstance(event, ExchangeRecorded | ForwardCompleted):
            return
        elif isinstance(event, ExchangeRecorded):
            if self.json_lines:
                self._json({"event": "exchange", **event.record})  # the summary derived here, off the ack path
            else:
                self._exchange(event.view, event.record)
        elif isinstance(event, ExchangeView):  # `watch` without records: the items are read from the recording
            record = None
            if event.kind == "event" and event.recording is not None and event.offset >= 0:
                record = read_record_at(event.recording, event.offset)
            self._exchange(event, record)
        elif isinstance(event, Notice):
            if self.json_lines:
                self._json({"event": "notice", "level": event.level, "text": event.text})
            elif event.topic not in SAID_BY_A_STATE_LINE:
                self._emit(self.err, f"[{event.level}] {event.text}", NOTICE_STYLES.get(event.level, ""))
        elif isinstance(event, RegistrationChanged):
            self._render_registration(event)
        elif isinstance(event, WebhookQuiet):
            self._render_quiet(event)
        elif isinstance(event, ForwardCompleted):
            if self.json_lines:
                self._json(
                    {
                        "event": "forward",
                        "exchange_id": event.exchange_id,
                        "seq": event.seq,
                        "forward": dict(event.forward),
                    }
                )
            else:
                self._emit(self.out, ITEM_INDENT + line(follow_up_line(event)))
        elif isinstance(event, TunnelChanged):
            self._render_tunnel(event)
        elif isinstance(event, RecordingHealth):
            self._render_recording(event)
        elif isinstance(event, SelfTestFinished):
            verdict = self.paint_out("PASS" if event.ok else "FAIL", "green" if event.ok else "bold red")
            text = f"Self-test: {verdict}{line(f' {event.detail} ({event.elapsed_ms:.0f} ms)')}"
            if self.json_lines:
                self._json(
                    {
                        "event": "selftest",
                        "ok": event.ok,
                        "callback_url": event.callback_url,
                        "elapsed_ms": round(event.elapsed_ms, 1),
                        "detail": event.detail,
                    }
                )
            else:
                self._write(self.out, text)
        elif isinstance(event, ReceiverStopped):
            text = f"Stopped after {event.exchanges} exchange(s)."
            if len(event.recording_parts) > 1:
                first, *rest = event.recording_parts
                text += f" Recording: {first} and {len(rest)} more part(s) up to {rest[-1].name}"
            elif event.recording_parts:
                text += f" Recording: {event.recording_parts[0]}"
            elif event.recording_path is not None:  # a recorder that never wrote a line made no file
                text += " Nothing recorded (no session file written)."
            self._emit(self.err, line(text))

    def _exchange(self, view: ExchangeView, record: Mapping[str, Any] | None) -> None:
        """The exchange's line; a batch's items each on a line under it."""
        note, items = joined_lines(self.book, record, view.headline) if record is not None else ("", [])
        self._write(self.out, format_exchange_line(view, self.paint_out, note))
        for text in items:
            self._write(self.out, ITEM_INDENT + line(text))

    def _render_recording(self, event: RecordingHealth) -> None:
        """A failing recorder is loud once per failure (not per refused delivery), and so is its recovery."""
        path = str(event.path) if event.path is not None else None
        if self.json_lines:
            payload = {"event": "recording", "ok": event.ok, "reason": event.reason, "path": path}
            self._json(payload | {"refused": event.refused})
            return
        if not event.ok:
            if self.recording_failure != event.reason:
                self._emit(self.err, f"[error] {recording_failure_text(event)}", "bold red")
            self.recording_failure = event.reason
        elif self.recording_failure is not None:
            self.recording_failure = None
            where = f" ({path})" if path else ""
            self._emit(self.err, f"[info] Recording works again{where}: deliveries are recorded and answered again.")

    def _render_registration(self, event: RegistrationChanged) -> None:
        """--register's steps: registered on stdout (with what it replaced), the undo on stderr at exit."""
        if self.json_lines:
            fields = ("state", "scope", "url", "detail", "previous", "target")
            self._json({"event": "registration"} | {name: getattr(event, name) for name in fields})
            return
        said = registration_line(event, again=self.registered)
        self.registered = self.registered or event.state == "registered"
        if said is None:
            return
        stream, text = said
        failed = event.state in ("failed", "undo-failed")
        self._emit(self.out if stream == "out" else self.err, line(text), "bold red" if failed else "")

    def _render_quiet(self, event: WebhookQuiet) -> None:
        """No webhook from Meta since its handshake (what to check), and the event that ends it."""
        if self.json_lines:
            fields = ("quiet", "seconds", "callback_url", "since", "hint")
            self._json({"event": "quiet"} | {name: getattr(event, name) for name in fields})
        elif event.quiet:
            self._emit(self.err, line(f"[warning] {event.hint}"), "yellow")
        else:
            self._emit(self.err, line("[info] A webhook from Meta arrived: the routing works."))

    def _render_tunnel(self, event: TunnelChanged) -> None:
        if self.json_lines:
            self._json(
                {
                    "event": "tunnel",
                    "state": event.state,
                    "provider": event.provider,
                    "public_url": event.public_url,
                    "callback_url": event.callback_url,
                    "reason": event.reason,
                    "advice": event.advice,
                }
            )
            return
        previous, self.tunnel_state = self.tunnel_state, event.state
        reason = line(event.reason)  # the agent's words: one line, whatever they hold
        if event.state == "starting":
            self._emit(self.err, f"Starting the {event.provider} tunnel...")
        elif event.state == "reconnecting":
            self._emit(self.err, f"[error] TUNNEL DOWN ({event.provider}): {reason}; reconnecting", "bold red")
        elif event.state == "down":
            self._emit(self.err, f"[error] {tunnel_down_text(event.provider, reason)}", "bold red")
        elif event.state == "up" and self.started:
            changed = event.callback_url != self.callback_url
            self.callback_url = event.callback_url
            if previous in ("down", "reconnecting"):
                self._emit(self.err, line(f"Tunnel back up: {event.callback_url}"))
            if changed:
                warning = "[warning] The public URL changed: paste the new Callback URL into Meta."
                self._emit(self.err, warning, "yellow")
                self._emit(self.out, line(f"Callback URL: {event.callback_url}"))


# Allocations (minus deallocations) between two young-generation collections, once the engine serves: each
# request allocates ~100 short-lived containers, and the default 700 collected every ~5 requests, ~5% of the
# receiver's CPU under load (gen0 + the full collections of a start-up heap that freeze_start_up skips).
SERVING_GC_THRESHOLD = 20_000


def freeze_start_up() -> None:
    """The engine is up: what start-up made lives until exit, so the collector stops scanning it (gc.freeze),
    and collects the young generation every SERVING_GC_THRESHOLD allocations instead of 700. Cyclic garbage
    is still collected (a few MB at most wait for it); reference counting frees the rest as before."""
    gc.collect()
    gc.freeze()
    _, middle, old = gc.get_threshold()
    gc.set_threshold(SERVING_GC_THRESHOLD, middle, old)


class HeadlessDisplay:
    """The printer's pump: what arrived since its last turn is rendered at once and written by the writer thread.

    While the display coalesces (a flood past its budget), the receiver's exchanges are not delivered to it
    one by one: each turn counts those answered meanwhile from the receiver's own counters (how many, their
    seqs), spends their tokens, and delivery resumes when the budget would show exchanges again. A flood then
    costs the receiver no event queued and no per-exchange work here; the count said is the same.
    """

    def __init__(
        self,
        printer: HeadlessPrinter,
        service: WebhookService,
        subscription: Subscription,
        writer: LineWriter,
        budget: DisplayBudget,
    ) -> None:
        self.printer, self.service, self.subscription = printer, service, subscription
        self.writer, self.budget = writer, budget
        self.counting = False
        self._exchanges = self._seq = 0  # the receiver's counters when last looked at, while counting

    async def run(self) -> None:
        while True:
            self.render(await self.next_batch())
            await asyncio.sleep(BATCH_SECONDS)

    async def next_batch(self) -> list[EngineEvent]:
        """What arrived since the last turn (while counting: the exchanges counted, the other events taken)."""
        printer, subscription = self.printer, self.subscription
        if self.counting:
            self._count_arrivals()
            return subscription.take(1_000_000)  # notices and late answers still come one by one
        if printer.skipped or printer.skipped_forwards:  # the count is said even if nothing else comes
            try:
                return await asyncio.wait_for(subscription.get_batch(1_000_000), SKIPPED_REPORT_SECONDS)
            except TimeoutError:
                return []
        return await subscription.get_batch(1_000_000)

    def render(self, batch: list[EngineEvent]) -> None:
        """The batch to the writer; once the budget coalesces, exchanges are counted instead of delivered."""
        printer = self.printer
        self.writer.put(printer.render_batch(batch, self.budget))
        if not self.counting and printer.exchanges and self.budget.coalescing:
            self._start_counting()

    def finish(self) -> None:
        """The last turn at the end of the run: what is left, and the count not said yet."""
        if self.counting:
            self._count_arrivals()
        self.writer.put(self.printer.render_batch(self.subscription.drain(), self.budget, final=True))

    def _start_counting(self) -> None:
        self.counting = True
        self._exchanges, self._seq = self.service.exchanges, self.service.last_seq
        self.service.bus.want_exchanges(self.subscription, False)

    def _count_arrivals(self) -> None:
        """The exchanges answered since the last look: not shown, their tokens spent; delivery back if due."""
        service, budget = self.service, self.budget
        arrived = service.exchanges - self._exchanges
        if arrived <= 0:
            return
        first, last = self._seq + 1, service.last_seq
        self._exchanges, self._seq = service.exchanges, last
        shows = budget.take(budget.clock())
        if not shows and arrived > 1:  # still coalescing: each used its token (once showing, the budget is theirs)
            budget.spend(arrived - 1)
        recorder = service.recorder
        self.printer.count_unshown(arrived, first, last, recorder.path if recorder is not None else None)
        if shows:  # the flood is over: exchanges are delivered (and shown) again
            self.counting = False
            service.bus.want_exchanges(self.subscription, True)


async def run_headless(
    settings: Settings,
    *,
    json_lines: bool = False,
    out: TextIO | None = None,
    err: TextIO | None = None,
) -> int:
    """Run until Ctrl+C, SIGTERM or SIGHUP (terminal closed), printing as exchanges happen; 0 on a clean stop."""
    printer = HeadlessPrinter(out or sys.stdout, err or sys.stderr, json_lines)
    service = WebhookService(settings)
    subscription = service.bus.subscribe()
    stop = asyncio.Event()
    # Front ends attach here (`wa-devtunnel watch`, or the TUI that started this engine).
    channel = EngineChannel(service, stop.set)
    if channel.owned:  # a TUI's engine: nobody reads its stdout, so no line is made per exchange
        printer.exchanges = False
        service.bus.want_exchanges(subscription, False)
    loop = asyncio.get_running_loop()
    for signum in (signal.SIGINT, signal.SIGTERM, signal.SIGHUP):
        loop.add_signal_handler(signum, stop.set)

    writer = LineWriter()
    display = HeadlessDisplay(printer, service, subscription, writer, DisplayBudget(behind=writer.behind))

    try:
        await service.prepare(printer.err)
        await service.start()
    except BaseException:
        await channel.stop()  # nothing listened yet: only its private directory to remove
        raise
    printer_task = asyncio.create_task(display.run())
    freeze_start_up()
    try:
        await channel.start()
        await stop.wait()
    finally:
        for signum in (signal.SIGINT, signal.SIGTERM, signal.SIGHUP):
            loop.remove_signal_handler(signum)
        await service.stop()
        await channel.stop()
        await asyncio.sleep(0)
        printer_task.cancel()
        display.finish()
        subscription.close()
        await asyncio.to_thread(writer.close)
    return 0
