"""Arbitrary request text through every place that renders it: no exception, no raw control character out.

Each front end has one helper (tui.safe for widgets, terminal_text for printed lines); these properties
feed markup fragments, terminal escapes, C1, bidi, zero-width characters and lone surrogates through
the TUI's rows, detail tabs, header, banner and toasts, the headless printer (text and --json), and the
replay, export, doctor, trigger and meta output, and read what would reach the terminal.
"""

from __future__ import annotations

import base64
import contextlib
import io
import json
import os
import re
import unicodedata
from collections.abc import Iterator
from pathlib import Path
from typing import Any
from unittest import mock

from hypothesis import HealthCheck, assume, given, settings
from hypothesis import strategies as st
from rich.console import Console, RenderableType
from rich.text import Text
from textual.content import Content

from wa_devtunnel.cli.decode import decode_input, human_lines
from wa_devtunnel.cli.doctor import format_report
from wa_devtunnel.cli.export import report_skipped, summary_text
from wa_devtunnel.cli.headless import HeadlessPrinter
from wa_devtunnel.cli.meta import _status_lines
from wa_devtunnel.cli.output import console_for, echo, error
from wa_devtunnel.cli.replay_output import print_dry_run, print_summary
from wa_devtunnel.cli.sessions import print_sessions
from wa_devtunnel.cli.terminal_text import json_text, say
from wa_devtunnel.cli.trigger import format_result
from wa_devtunnel.engine.doctor.report import CheckResult, Status
from wa_devtunnel.engine.events import (
    ExchangeRecorded,
    ForwardCompleted,
    Notice,
    ReceiverStarted,
    RecordingHealth,
    SelfTestFinished,
    TunnelChanged,
)
from wa_devtunnel.engine.exchange_view import view_from_record
from wa_devtunnel.engine.forwarder import ForwardResult
from wa_devtunnel.engine.replay.plan import PlannedRequest, ReplayOptions
from wa_devtunnel.engine.replay.send import ReplayResult, ReplaySummary
from wa_devtunnel.engine.replay.source import RecordedExchange
from wa_devtunnel.engine.sessions import SessionInfo
from wa_devtunnel.engine.trigger import Delivery, DeliveryResult
from wa_devtunnel.rules.untrusted import visible
from wa_devtunnel.settings import load_settings
from wa_devtunnel.tui.detail import (
    body_renderable,
    headers_renderable,
    signature_renderable,
    summary_renderable,
    whole_body_text,
)
from wa_devtunnel.tui.header import HeaderState, header_text, recording_alarm_text
from wa_devtunnel.tui.rows import COLUMNS, line_text, row_cells
from wa_devtunnel.tui.safe import toast_message
from wa_devtunnel.tui.welcome import welcome_text

HOSTILE_FRAGMENTS = (
    "[/x]",
    "[/quote]",
    "hello [/oops]",
    "[@click=app.screenshot('x.svg','/tmp')]",
    "[@click=app.quit]",
    "[link=http://evil.example]bank[/link]",
    "[bold red]",
    "[",
    "]",
    "\\[",
    ":smile:",
    "\x1b[2J",
    "\x1b]52;c;aGVsbG8=\x07",
    "\x1b]0;title\x1b\\",
    "\x1b[31m",
    "\x1bc",
    "\x9b31m",
    "\x85",
    "\r",
    "\rsig=valid",
    "\n",
    "\t",
    "\x00",
    "\x7f",
    "\u202e",
    "\u2066",
    "\u200b",
    "\u200d",
    "\ufeff",
    "\u2028",
    "\ud800",
    "\udfff",
    "\U000e0041",
    "\U0001f469\u200d\U0001f4bb",
    "\U0001f3f4\U000e0067\U000e0062\U000e0073\U000e0063\U000e0074\U000e007f",
    "Größe 日本",
)
ANY_CHARACTER = st.characters(codec=None) | st.characters(categories=["Cc", "Cf", "Cs", "Zl", "Zp"])
hostile_text = st.lists(
    st.sampled_from(HOSTILE_FRAGMENTS) | st.text(alphabet=ANY_CHARACTER, max_size=8), max_size=6
).map("".join)
PROPERTY = settings(
    max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large]
)
SETTINGS = load_settings(
    {"port": "0", "tunnel": "none", "recordings_dir": "/nonexistent/rec"}, environ={}, cwd=Path("/")
)


# What may reach a terminal ----------------------------------------------------------------------


def _kept_sequence(text: str, at: int) -> bool:
    """A joiner inside an emoji sequence, or a tag inside a subdivision flag: the two things that stay raw."""
    char = text[at]
    if char == "\u200d":
        return 0 < at < len(text) - 1 and ord(text[at - 1]) >= 0x2600 and ord(text[at + 1]) >= 0x2600
    if 0xE0020 <= ord(char) <= 0xE007F:
        start = at
        while start > 0 and 0xE0020 <= ord(text[start - 1]) <= 0xE007F:
            start -= 1
        return start > 0 and text[start - 1] == "\U0001f3f4"
    return False


def raw_controls(output: str) -> list[str]:
    """Characters a terminal would obey or hide: C0 (but line feed and tab), DEL, C1, format, separators."""
    return [
        f"U+{ord(char):04X}"
        for at, char in enumerate(output)
        if char not in "\n\t"
        and unicodedata.category(char) in ("Cc", "Cf", "Cs", "Zl", "Zp")
        and not _kept_sequence(output, at)
    ]


def assert_terminal_safe(output: str) -> None:
    """Nothing a terminal would act on, by an independent check and by the rule's own fixed point."""
    assert raw_controls(output) == []
    assert visible(output, keep_newlines=True) == output


def rendered(renderable: RenderableType) -> str:
    """What Rich writes for it (no colours, so our own styling adds no escape sequences)."""
    console = Console(file=io.StringIO(), width=100, color_system=None, legacy_windows=False, emoji=False)
    for segment in console.render(renderable):  # never an action or a link, whatever the text said
        style = segment.style
        assert style is None or (not style.link and not style.meta), segment
    console.print(renderable)
    return console.file.getvalue()  # type: ignore[attr-defined,no-any-return]


class FakeTerminal(io.StringIO):
    """A stream that says it is a terminal, so the CLI draws in colour."""

    def isatty(self) -> bool:
        return True


SGR = re.compile(r"\x1b\[[0-9;]*m")  # our own colours; anything else from ESC on would be the data's


@contextlib.contextmanager
def colour_allowed() -> Iterator[None]:
    """Whatever the shell running the tests says: NO_COLOR would turn colours off."""
    with mock.patch.dict(os.environ):
        os.environ.pop("NO_COLOR", None)
        yield


@contextlib.contextmanager
def captured() -> Iterator[tuple[io.StringIO, io.StringIO]]:
    out, err = io.StringIO(), io.StringIO()
    with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
        yield out, err


# Hostile records --------------------------------------------------------------------------------


@st.composite
def hostile_records(draw: st.DrawFn) -> dict[str, Any]:
    """A version-1 record whose every string is attacker-chosen, with a body in each of its forms."""

    def text() -> str:
        return draw(hostile_text)

    kind = draw(st.sampled_from(("event", "verify", "other")))
    body_form = draw(st.sampled_from(("raw", "json", "json-unicode", "b64")))
    body_text = text()
    request: dict[str, Any] = {
        "method": text(),
        "path": text(),
        "query": text(),
        "headers": [[text(), text()] for _ in range(draw(st.integers(0, 3)))],
    }
    if body_form == "b64":
        request["body_b64"] = base64.b64encode(body_text.encode("utf-8", "surrogatepass")).decode()
    elif body_form == "json":
        request["body"] = json.dumps({"text": {"body": body_text}, body_text: [1, body_text]})
    elif body_form == "json-unicode":
        request["body"] = json.dumps({"text": body_text}, ensure_ascii=False)
    else:
        request["body"] = body_text
    record: dict[str, Any] = {
        "v": 1,
        "id": text(),
        "seq": draw(st.integers(0, 10**6)),
        "received_at": draw(st.sampled_from(("2026-12-07T05:32:18.459641Z", ""))) + text(),
        "kind": kind,
        "request": request,
        "response": {"status": draw(st.sampled_from((200, 403, 404, 503))), "body": text()},
        "signature": draw(st.sampled_from(("valid", "invalid", "missing", "unchecked")) | hostile_text),
        "signature_detail": text(),
        "origin": text(),
        "remote": text(),
        "elapsed_ms": 1.5,
        "account": text(),
        "summary": {
            "headline": text(),
            "fields": [text()],
            "flags": [text()],
            "problem": text(),
            "items": [
                {
                    "kind": text(),
                    "line": text(),
                    "type": text(),
                    "from": text(),
                    "errors": [{"code": text(), "title": text(), "details": text()}],
                    "values": [[text(), text()], [text(), draw(st.integers())], [text(), None]],
                }
            ],
        },
        "forward": {"url": text(), "status": 502, "elapsed_ms": 3.0, "error": text()},
    }
    if kind == "verify":
        record["verify"] = {"ok": draw(st.booleans()), "reason": text()}
    return record


# The TUI ----------------------------------------------------------------------------------------


@PROPERTY
@given(hostile_records())
def test_tui_rows_and_the_four_detail_tabs(record: dict[str, Any]) -> None:
    view = view_from_record(record)
    cells = row_cells(view, COLUMNS)
    for cell in cells:
        assert isinstance(cell, Text)  # a str cell would be parsed as markup
        assert "\n" not in cell.plain
        assert_terminal_safe(rendered(cell))
    assert_terminal_safe(rendered(line_text(cells, COLUMNS, 200)))  # the line the list draws
    for raw in (False, True):
        assert_terminal_safe(rendered(body_renderable(record, raw)))
    for renderable in (summary_renderable(record), headers_renderable(record), signature_renderable(record)):
        assert_terminal_safe(rendered(renderable))
    with contextlib.suppress(ValueError):  # an unreadable body is reported, not paged
        assert_terminal_safe(whole_body_text(record))


@PROPERTY
@given(hostile_text, hostile_text, hostile_text, hostile_text, hostile_text, st.integers(0, 5))
def test_tui_header_banner_toasts_and_welcome(
    url: str, reason: str, forward: str, typed: str, name: str, refused: int
) -> None:
    state = HeaderState(
        callback_url=url,
        verify_token=typed,
        token_revealed=True,
        tunnel_state="reconnecting",
        tunnel_reason=reason,
        selftest="FAIL 12 ms",
        recording=Path(f"{name}.jsonl"),
        forward_to=forward,
        filter_text=typed,
    )
    for width in (40, 200):
        assert_terminal_safe(rendered(header_text(state, width)))
    assert_terminal_safe(rendered(recording_alarm_text(RecordingHealth(False, Path(name), reason, refused))))
    toast = toast_message(f"Tunnel down: {reason}")
    assert_terminal_safe(toast)
    assert_terminal_safe("".join(segment.text for segment in Content(toast).render_segments()))
    started = ReceiverStarted(url, url, typed, False, None, 8765, public_url=url if refused % 2 else None)
    assert_terminal_safe(rendered(welcome_text(started, "ngrok")))


# wa-devtunnel decode ----------------------------------------------------------------------------


@PROPERTY
@given(hostile_text, hostile_text, hostile_text, hostile_text)
def test_decode_output_human_and_json(text: str, name: str, key: str, value: str) -> None:
    message = {"from": name, "id": text, "type": key or "text", "text": {"body": text}, key: {value: [value, 7]}}
    change = {"field": "messages", "value": {"contacts": [{"profile": {"name": name}}], "messages": [message]}}
    body = json.dumps({"object": "whatsapp_business_account", "entry": [{"id": key, "changes": [change]}]})
    other = json.dumps({"object": "whatsapp_business_account", "entry": [{"changes": [{"field": key, "value": {}}]}]})
    line = json.dumps({"seq": text, "received_at": name, "kind": "event", "id": value, "request": {"body": body}})
    for data in (body, line, f"{line}\n{text}\n{other}\n", text):
        for decoded in decode_input(data.encode("utf-8", "surrogatepass")).decoded:
            for shown in human_lines(decoded):
                assert_terminal_safe(rendered(shown))
            assert_terminal_safe(json_text(decoded.to_json()))


# The headless printer ---------------------------------------------------------------------------


def _events(record: dict[str, Any], text: str) -> list[Any]:
    return [
        ReceiverStarted(text, text, text, True, Path(text or "rec"), 8765, forward_to=text),
        ExchangeRecorded(None, record),
        Notice("warning", text),
        ForwardCompleted(text, 3, {"status": 502, "error": text}),
        TunnelChanged("reconnecting", "ngrok", text, text, text),
        TunnelChanged("up", "ngrok", text, text + "/new", text),
        SelfTestFinished(False, text, 12.0, text),
        RecordingHealth(False, Path(text or "rec"), text, 2),
        RecordingHealth(True, Path(text or "rec")),
    ]


@PROPERTY
@given(hostile_records(), hostile_text)
def test_headless_lines_are_safe_and_one_per_exchange(record: dict[str, Any], text: str) -> None:
    out, err = io.StringIO(), io.StringIO()
    printer = HeadlessPrinter(out, err, json_lines=False)
    for event in _events(record, text):
        printer.render(event)
    assert_terminal_safe(out.getvalue())
    assert_terminal_safe(err.getvalue())
    solo = io.StringIO()
    HeadlessPrinter(solo, io.StringIO(), json_lines=False).render(ExchangeRecorded(None, record))
    assert solo.getvalue().count("\n") == 1  # a \r or line feed in a request cannot forge another line
    coloured_out, coloured_err = FakeTerminal(), FakeTerminal()
    with colour_allowed():
        printer = HeadlessPrinter(coloured_out, coloured_err, json_lines=False)
        for event in _events(record, text):
            printer.render(event)
    assert SGR.search(coloured_out.getvalue())  # on a terminal: colours, and nothing else added
    assert SGR.sub("", coloured_out.getvalue()) == out.getvalue()
    assert SGR.sub("", coloured_err.getvalue()) == err.getvalue()


_SURROGATE_PAIR = re.compile("[\ud800-\udbff][\udc00-\udfff]")


def _strings(value: Any) -> Iterator[str]:
    if isinstance(value, str):
        yield value
    elif isinstance(value, dict):
        for key, item in value.items():
            yield key
            yield from _strings(item)
    elif isinstance(value, list | tuple):
        for item in value:
            yield from _strings(item)


@PROPERTY
@given(hostile_records(), hostile_text)
def test_headless_json_is_exact_and_safe(record: dict[str, Any], text: str) -> None:
    # Two separate surrogates side by side have no JSON spelling distinct from the astral character they
    # pair into, and no request can produce them (JSON parsing and UTF-8 decoding pair them first).
    assume(not any(_SURROGATE_PAIR.search(s) for s in _strings([record, text])))
    out, err = io.StringIO(), io.StringIO()
    printer = HeadlessPrinter(out, err, json_lines=True)
    for event in _events(record, text):
        printer.render(event)
    assert_terminal_safe(out.getvalue())
    assert_terminal_safe(err.getvalue())
    lines = [json.loads(line) for line in out.getvalue().splitlines()]
    by_event = {line["event"]: line for line in lines}
    assert by_event["exchange"] == {"event": "exchange", **record}  # every string exactly as it came
    assert by_event["notice"]["text"] == text
    assert by_event["selftest"]["detail"] == text
    assert by_event["started"]["callback_url"] == text
    recording = [line for line in lines if line["event"] == "recording"]
    assert [(line["ok"], line["reason"]) for line in recording] == [(False, text), (True, "")]


# The command-line reports -----------------------------------------------------------------------


@PROPERTY
@given(hostile_records(), hostile_text, st.booleans())
def test_replay_dry_run_and_summary(record: dict[str, Any], text: str, multi: bool) -> None:
    source = RecordedExchange(Path(f"{text}.jsonl"), record, view_from_record(record), b"")
    planned = PlannedRequest(0, source, "POST", "", (), b"", "original", challenge=text if multi else None)
    options = ReplayOptions(target_url="http://127.0.0.1:8000/hook")
    answer = ForwardResult(options.target_url, 500, text.encode("utf-8", "surrogatepass"), "text/plain", 2.0, text)
    results = [ReplayResult(planned, answer, False, text)]
    summary = ReplaySummary(1, 0, 1, {text: 1}, 2.0, 2.0, 2.0, 0.5)
    dry_run, report = io.StringIO(), io.StringIO()
    print_dry_run(console_for(dry_run), [planned], options, multi)
    print_summary(console_for(report), [Path(f"{text}.jsonl")], options, results, summary, None, multi)
    # a line feed or \r in a headline, answer or status cannot add a line or break a table row
    for output, lines in ((dry_run.getvalue(), 5), (report.getvalue(), 14)):
        assert_terminal_safe(output)
        assert len(output.splitlines()) == lines, output
    coloured = FakeTerminal()
    with colour_allowed():
        print_dry_run(console_for(coloured), [planned], options, multi)
        print_summary(console_for(coloured), [Path(f"{text}.jsonl")], options, results, summary, None, multi)
    assert SGR.search(coloured.getvalue())
    assert_terminal_safe(SGR.sub("", coloured.getvalue()))


@PROPERTY
@given(hostile_text, hostile_text, hostile_text, st.sampled_from(list(Status)))
def test_doctor_trigger_export_and_meta_output(name: str, detail: str, fix: str, status: Status) -> None:
    for line in format_report([CheckResult(name, status, detail, fix)]):
        assert_terminal_safe(line.plain)
    result = DeliveryResult(Delivery(name, b"{}"), 500, 1.0, answer=detail, error=fix or None)
    assert_terminal_safe(format_result(result, 12).plain)
    routing = {
        "graph": name,
        "app": {"app_id": name, "callback_url": detail, "active": False, "fields": [{"name": fix, "version": name}]},
        "waba": {"waba_id": name, "error": detail, "fix": fix},
        "phone": {"phone_number_id": name, "override_callback_uri": detail},
        "effective": {"callback_url": detail, "level": fix},
    }
    info = SessionInfo(Path(f"{name}.jsonl"), None, 1, 1, 0, 0, detail, fix, 10, 1)
    with captured() as (out, err):
        echo(console_for(), summary_text(3, Path(name), False, False))
        report_skipped([detail, fix, name, detail, fix, name])
        say("\n".join(_status_lines(routing, fix)))
        print_sessions(console_for(), [info], Path(name))
        error(f"error: {detail}")
    assert_terminal_safe(out.getvalue())
    assert_terminal_safe(err.getvalue())
