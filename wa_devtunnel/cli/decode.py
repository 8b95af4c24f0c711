"""`wa-devtunnel decode`: what Meta sent, decoded by the live view's decoder, from a file or a paste.

The input is a webhook body, one recording line, or a whole session file (JSON Lines); recording
lines are decoded from `request.body` (the recorded `summary` is derived data and may be older).
The raw body is never printed: the decoded items and every value under them are.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import logging
import os
import sys
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from rich.text import Text

from wa_devtunnel.cli.options import ExitCode, Subparsers, UsageError
from wa_devtunnel.cli.output import console_for, echo, error
from wa_devtunnel.cli.terminal_text import json_text, line
from wa_devtunnel.engine.recording import request_body
from wa_devtunnel.rules.decode.payload import SeenIds, decode_payload
from wa_devtunnel.settings import ConfigError, Settings, load_settings

NAME = "decode"
READS_SETTINGS = False  # decoding needs no configuration; accounts, when configured, only label numbers
PROG = "wa-devtunnel decode"
VALUE_SHOWN = 200  # characters of one value in the human output (--json has them all)
PATH_SHOWN = 120
EXCHANGE_KEYS = ("id", "seq", "received_at", "kind")
STDIN_HINT = (
    "nothing to read: give a FILE, or pipe a payload in "
    "(`pbpaste | wa-devtunnel decode`, `wa-devtunnel decode - < body.json`; `-` reads a paste until Ctrl-D)"
)


def register(subparsers: Subparsers) -> None:
    """`decode [FILE|-] [--json] [--env-file PATH]`."""
    decode = subparsers.add_parser(
        NAME,
        help="decode a webhook body, a recording line or a session file as the live view does",
        description="Decode what Meta sent, exactly as the live view does, without printing the raw body. "
        "Exit 0: decoded; 1: something in it is not a WhatsApp webhook; 2: bad usage or unreadable input.",
    )
    decode.add_argument(
        "source",
        nargs="?",
        metavar="FILE",
        help="a webhook body (JSON), one recording line, or a session file (.jsonl); `-` or nothing: stdin",
    )
    decode.add_argument("--json", action="store_true", help="the decoded view as JSON (JSON Lines for several)")
    decode.add_argument("--env-file", type=Path, help="settings whose accounts label phone numbers (default ./.env)")


@dataclass(frozen=True, slots=True)
class Decoded:
    """One decoded payload: the summary's dict, and which exchange or line it came from (if any)."""

    summary: dict[str, Any]
    exchange: dict[str, Any] = field(default_factory=dict)
    where: str = ""

    @property
    def ok(self) -> bool:
        return bool(self.summary.get("ok"))

    def to_json(self) -> dict[str, Any]:
        """The summary's shape; a recording line's adds which exchange it was, first."""
        return {"exchange": self.exchange, **self.summary} if self.exchange else dict(self.summary)


@dataclass(slots=True)
class DecodeRun:
    """Everything decoded from one input, plus the lines that could not be (said on stderr)."""

    decoded: list[Decoded] = field(default_factory=list)
    problems: list[str] = field(default_factory=list)
    skipped: dict[str, int] = field(default_factory=dict)


def _not_decoded(problem: str) -> dict[str, Any]:
    """A summary-shaped dict for a recorded exchange that has no payload to decode."""
    return {"ok": False, "problem": problem, "object": "", "fields": [], "flags": [], "headline": problem, "items": []}


def read_input(source: str | None) -> bytes:
    """The bytes of FILE, or of stdin for `-` (or no FILE when stdin is not a terminal); UsageError otherwise."""
    if source is None or source == "-":
        if source is None and sys.stdin.isatty():
            raise UsageError(f"{PROG}: {STDIN_HINT}", try_help=False)
        data = sys.stdin.buffer.read()
        name = "stdin"
    else:
        try:
            data = Path(source).read_bytes()
        except IsADirectoryError:
            raise UsageError(f"{PROG}: {source} is a directory: name a file", try_help=False) from None
        except OSError as exc:
            raise UsageError(f"{PROG}: cannot read {source}: {exc.strerror or exc}", try_help=False) from None
        name = source
    if not data.strip():
        raise UsageError(f"{PROG}: {name} is empty: nothing to decode", try_help=False)
    return data


def _json(raw: bytes) -> tuple[bool, Any]:
    """(parsed, value): whether `raw` is JSON at all, and what it holds."""
    try:
        return True, json.loads(raw)
    except (ValueError, RecursionError):
        return False, None


def _is_recording_line(value: Any) -> bool:
    request = value.get("request") if isinstance(value, dict) else None
    return isinstance(request, Mapping) and ("body" in request or "body_b64" in request)


def decode_input(data: bytes, accounts: Mapping[str, str] | None = None) -> DecodeRun:
    """A body, a recording line or JSON Lines (recording lines or bodies): decoded in file order."""
    run = DecodeRun()
    seen = SeenIds()  # one session's memory, as the receiver keeps it: a redelivery is flagged `duplicate`
    parsed, value = _json(data)
    if parsed:
        if _is_recording_line(value):
            run.decoded.extend(_record(value, accounts, seen, run))
        else:
            run.decoded.append(Decoded(decode_payload(data, accounts_by_phone_number_id=accounts).to_dict()))
        return run
    lines = [(number, raw) for number, raw in enumerate(data.split(b"\n"), 1) if raw.strip()]
    values = [(number, raw, *_json(raw)) for number, raw in lines] if len(lines) > 1 else []
    if not any(isinstance(value, dict) for _, _, _, value in values):
        run.decoded.append(Decoded(decode_payload(data, accounts_by_phone_number_id=accounts).to_dict()))
        return run
    for number, raw, parsed, value in values:
        if not isinstance(value, dict):
            reason = "not a JSON object" if parsed else "not valid JSON"
            last = number == lines[-1][0] and not data.endswith(b"\n")
            run.problems.append(f"line {number}: {'truncated last line' if last else reason}, skipped")
        elif _is_recording_line(value):
            run.decoded.extend(_record(value, accounts, seen, run, f"line {number}"))
        elif "request" in value:
            run.problems.append(f"line {number}: a record without request.body, skipped")
        else:
            summary = decode_payload(raw, accounts_by_phone_number_id=accounts, seen=seen)
            run.decoded.append(Decoded(summary.to_dict(), where=f"line {number}"))
    return run


def _record(
    record: dict[str, Any], accounts: Mapping[str, str] | None, seen: SeenIds, run: DecodeRun, where: str = ""
) -> Iterator[Decoded]:
    """A recording line's body, decoded; in a session file, exchanges other than events are only counted."""
    exchange = {key: record[key] for key in EXCHANGE_KEYS if key in record}
    kind = record.get("kind")
    if kind not in (None, "event"):
        if where:  # a line of a session file: handshakes and stray requests are counted, not shown
            run.skipped[str(kind)] = run.skipped.get(str(kind), 0) + 1
        else:
            yield Decoded(_not_decoded(f"a {line(kind)} exchange, not a webhook event: nothing to decode"), exchange)
        return
    if record.get("request_body_truncated"):
        yield Decoded(
            _not_decoded("only the start of this oversized body was recorded: it cannot be decoded"), exchange
        )
        return
    try:
        body = request_body(record["request"])
    except ValueError as exc:
        yield Decoded(_not_decoded(f"the recorded body is unreadable: {exc}"), exchange, where)
        return
    yield Decoded(decode_payload(body, accounts_by_phone_number_id=accounts, seen=seen).to_dict(), exchange, where)


def value_text(value: Any, limit: int = VALUE_SHOWN) -> str:
    """A value as JSON spells it (strings quoted, `\\n` and controls escaped), cut to `limit` with a note."""
    try:
        text = json_text(value)
    except (TypeError, ValueError):
        text = line(repr(value))
    if len(text) > limit:
        return f"{text[: limit - 1]}… (cut: {len(text):,} characters, --json has all)"
    return text


def exchange_line(decoded: Decoded) -> str:
    """`seq 3  2026-12-07T06:58:43.120000Z  event  id 08593a50...`: which recorded exchange this is."""
    exchange = decoded.exchange
    words = [f"seq {exchange.get('seq', '?')}", str(exchange.get("received_at", "")), str(exchange.get("kind", ""))]
    if exchange.get("id"):
        words.append(f"id {exchange['id']}")
    if decoded.where:
        words.append(f"({decoded.where})")
    return line("  ".join(word for word in words if word))


def human_lines(decoded: Decoded) -> Iterator[Text]:
    """Which exchange, the headline, flags, then each item's line with its values indented under it."""
    summary = decoded.summary
    if decoded.exchange:
        yield Text(exchange_line(decoded), style="dim")
    elif decoded.where:
        yield Text(line(decoded.where), style="dim")
    if summary.get("ok"):
        yield Text(line(summary.get("headline", "")), style="bold")
    else:
        yield Text(line(f"not a WhatsApp webhook: {summary.get('problem', '')}"), style="bold red")
    flags = summary.get("flags") or []
    if flags:
        yield Text(line(f"flags: {', '.join(map(str, flags))}"), style="yellow")
    items = summary.get("items") or []
    for index, item in enumerate(items, 1):
        if not isinstance(item, Mapping):
            continue
        yield Text.assemble(
            (line(f"  {index}. {item.get('kind', '?')}  "), "dim"), (line(item.get("line", "")), "bold")
        )
        for pair in item.get("values") or ():
            if isinstance(pair, list | tuple) and len(pair) == 2:
                path = line(str(pair[0]))
                path = path if len(path) <= PATH_SHOWN else path[: PATH_SHOWN - 1] + "…"
                yield Text.assemble(("      ", ""), (path, "cyan"), (" = ", "dim"), value_text(pair[1]))
    if not items and summary.get("ok"):
        yield Text("  (no items)", style="dim")


def accounts_from(args: argparse.Namespace) -> dict[str, str]:
    """The configured phone_number_id -> account labels, as the receiver would use; none when settings are broken."""
    logging.getLogger("dotenv.main").setLevel(logging.ERROR)
    flags = {"env_file": args.env_file} if args.env_file else {}
    try:
        return load_settings(flags).accounts_by_phone_number_id()
    except ConfigError as exc:
        error(f"{PROG}: note: accounts not labelled: configuration error: {exc}")
        return {}


def run(args: argparse.Namespace, settings: Settings | None) -> ExitCode:
    """0 when every payload decoded as a WhatsApp webhook, 1 when one is not, 2 for unreadable input."""
    try:
        return _decode(args)
    except BrokenPipeError:  # `decode session.jsonl | head`: the reader has what it wanted
        with contextlib.suppress(OSError):
            os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return ExitCode.OK


def _decode(args: argparse.Namespace) -> ExitCode:
    data = read_input(args.source)
    result = decode_input(data, accounts_from(args))
    for problem in result.problems:
        error(f"{PROG}: {problem}")
    if result.skipped:
        counted = ", ".join(f"{count} {kind}" for kind, count in result.skipped.items())
        error(f"{PROG}: skipped, not webhook events: {counted}")
    if not result.decoded:
        error(f"{PROG}: no webhook event in the input")
        return ExitCode.FAILED
    if args.json:
        for decoded in result.decoded:
            sys.stdout.write(json_text(decoded.to_json()) + "\n")
        sys.stdout.flush()
    else:
        console = console_for()
        for index, decoded in enumerate(result.decoded):
            if index:
                echo(console)
            for text in human_lines(decoded):
                echo(console, text)
    return ExitCode.OK if all(decoded.ok for decoded in result.decoded) else ExitCode.FAILED
