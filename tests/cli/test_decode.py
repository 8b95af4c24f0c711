"""`wa-devtunnel decode`: a body, a recording line or a session file, decoded as the live view does.

The output comes from the same decode_payload the receiver runs; these tests read what a developer
reads (headline, item lines, `path = value` lines, exit codes) and never find the raw body echoed.
"""

from __future__ import annotations

import base64
import io
import json
import re
from pathlib import Path
from typing import Any

import pytest

from wa_devtunnel.__main__ import main
from wa_devtunnel.cli.decode import VALUE_SHOWN, decode_input, value_text
from wa_devtunnel.engine.recording import RECORDING_VERSION, encode_body
from wa_devtunnel.rules.decode.payload import decode_payload
from wa_devtunnel.rules.samples import payloads as samples
from wa_devtunnel.rules.samples.messages import list_reply, text_message

# A Flow submission as Meta delivers it: the answers are a JSON string inside the message.
FLOW_ANSWERS = {"flow_token": "booking-7731", "appointment_date": "2026-12-09", "party_size": "4"}
FLOW_BODY = json.dumps(
    {
        "object": "whatsapp_business_account",
        "entry": [
            {
                "id": "102290129340398",
                "changes": [
                    {
                        "field": "messages",
                        "value": {
                            "messaging_product": "whatsapp",
                            "metadata": {"display_phone_number": "15550783881", "phone_number_id": "106540352242922"},
                            "contacts": [{"profile": {"name": "Ana Lima"}, "wa_id": "5511987654321"}],
                            "messages": [
                                {
                                    "context": {
                                        "from": "15550783881",
                                        "id": "wamid.HBgNNTUxMTk4NzY1NDMyMRUCABEYEkQ3RTQ1",
                                    },
                                    "from": "5511987654321",
                                    "id": "wamid.HBgNNTUxMTk4NzY1NDMyMRUCABIYFDNBRjkwQjI3MkM1NkE0NDE5RTg2AA==",
                                    "timestamp": "1765268400",
                                    "type": "interactive",
                                    "interactive": {
                                        "type": "nfm_reply",
                                        "nfm_reply": {
                                            "name": "flow",
                                            "body": "Sent",
                                            "response_json": json.dumps(FLOW_ANSWERS),
                                        },
                                    },
                                }
                            ],
                        },
                    }
                ],
            }
        ],
    },
    separators=(",", ":"),
).encode()
LIST_BODY = samples.meta_json(samples.envelope([samples.messages_change([list_reply(reply_id="ship-express-24h")])]))
TEXT_BODY = samples.meta_json(samples.envelope([samples.messages_change([text_message("hi there")])]))
READ_BODY = samples.meta_json(samples.envelope([samples.messages_change(statuses=[samples.status("read")])]))


@pytest.fixture(autouse=True)
def no_settings(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """No .env and no account from the shell: decoding never depends on where the test runs."""
    monkeypatch.chdir(tmp_path)
    for name in ("WHATSAPP_PHONE_NUMBER_ID", "WA_DEVTUNNEL_ACCOUNTS_FILE"):
        monkeypatch.delenv(name, raising=False)


def record(seq: int, body: bytes, kind: str = "event", **extra: Any) -> dict[str, Any]:
    return {
        "v": RECORDING_VERSION,
        "id": f"rec-{seq}",
        "seq": seq,
        "received_at": f"2026-12-09T08:20:{seq:02d}.000000Z",
        "kind": kind,
        "request": {"method": "POST", "path": "/webhook/whatsapp", "query": "", "headers": [], **encode_body(body)},
        "response": {"status": 200, "body": "EVENT_RECEIVED"},
        "signature": "unchecked",
        **extra,
    }


def line_of(value: dict[str, Any]) -> bytes:
    return json.dumps(value, ensure_ascii=False).encode() + b"\n"


class Stdin(io.TextIOWrapper):
    """stdin as a pipe (or, with tty=True, as a terminal)."""

    def __init__(self, data: bytes, tty: bool = False) -> None:
        super().__init__(io.BytesIO(data))
        self.tty = tty

    def isatty(self) -> bool:
        return self.tty


def decode(
    capsys: pytest.CaptureFixture[str], *argv: str, stdin: bytes | None = None, monkeypatch: pytest.MonkeyPatch
) -> tuple[int, str, str]:
    if stdin is not None:
        monkeypatch.setattr("sys.stdin", Stdin(stdin))
    code = main(["decode", *argv])
    out, err = capsys.readouterr()
    return code, out, err


def write(tmp_path: Path, name: str, data: bytes) -> str:
    path = tmp_path / name
    path.write_bytes(data)
    return str(path)


# A body ------------------------------------------------------------------------------------------


def test_a_body_shows_the_headline_each_item_and_its_values(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    code, out, err = decode(capsys, write(tmp_path, "list.json", LIST_BODY), monkeypatch=monkeypatch)
    summary = decode_payload(LIST_BODY).to_dict()
    item = summary["items"][0]
    lines = out.splitlines()
    assert (code, err) == (0, "")
    assert lines[0] == summary["headline"]
    assert lines[1] == f"  1. message  {item['line']}"
    assert '      interactive.list_reply.id = "ship-express-24h"' in lines
    assert '      interactive.list_reply.description = "Arrives in 1-2 days"' in lines
    assert LIST_BODY.decode() not in out and '{"object"' not in out  # never the raw body


def test_a_flow_submission_shows_every_answer(
    capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    code, out, _ = decode(capsys, "-", stdin=FLOW_BODY, monkeypatch=monkeypatch)
    assert code == 0
    for answer in FLOW_ANSWERS.values():
        assert f'"{answer}"' in out, answer
    assert "interactive nfm_reply from 5511987654321" in out


def test_json_is_the_summary_of_the_live_view(
    capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    code, out, err = decode(capsys, "--json", stdin=FLOW_BODY, monkeypatch=monkeypatch)
    assert (code, err) == (0, "")
    assert out.count("\n") == 1
    assert json.loads(out) == json.loads(json.dumps(decode_payload(FLOW_BODY).to_dict()))
    assert "values" in json.loads(out)["items"][0]


def test_no_file_and_a_terminal_says_how(capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr("sys.stdin", Stdin(b"", tty=True))
    assert main(["decode"]) == 2
    err = capsys.readouterr().err
    assert "give a FILE, or pipe a payload in" in err and "wa-devtunnel decode - < body.json" in err


def test_dash_reads_a_paste_from_a_terminal(
    capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr("sys.stdin", Stdin(TEXT_BODY, tty=True))
    assert main(["decode", "-"]) == 0
    assert 'text from 16505551234: "hi there"' in capsys.readouterr().out


@pytest.mark.parametrize(
    ("argv", "stdin", "message"),
    [
        (["nowhere.json"], None, "wa-devtunnel decode: cannot read nowhere.json: No such file or directory"),
        (["."], None, "wa-devtunnel decode: . is a directory: name a file"),
        ([], b"  \n", "wa-devtunnel decode: stdin is empty: nothing to decode"),
        (["a", "b"], None, "unrecognized arguments: b"),
    ],
)
def test_unreadable_input_is_a_usage_error(
    capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
    argv: list[str],
    stdin: bytes | None,
    message: str,
) -> None:
    code, out, err = decode(capsys, *argv, stdin=stdin, monkeypatch=monkeypatch)
    assert (code, out) == (2, "")
    assert message in err


@pytest.mark.parametrize(
    ("body", "problem"),
    [
        (b"not json at all", "body is not JSON: Expecting value: line 1 column 1 (char 0)"),
        (b'{"object": "page", "entry": []}', "object is 'page', expected 'whatsapp_business_account'"),
        (b"[1, 2]", "JSON is not an object (list)"),
    ],
)
def test_not_a_whatsapp_payload_exits_1_and_says_why(
    capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch, body: bytes, problem: str
) -> None:
    code, out, _ = decode(capsys, stdin=body, monkeypatch=monkeypatch)
    assert code == 1
    assert out.splitlines()[0] == f"not a WhatsApp webhook: {problem}"
    code, out, _ = decode(capsys, "--json", stdin=body, monkeypatch=monkeypatch)
    assert code == 1 and json.loads(out)["problem"] == problem


def test_request_text_is_shown_never_obeyed(
    capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    hostile = "pay \x1b]52;c;ZXZpbA==\x07 now\u202e\n[bold]x[/bold]"
    body = samples.meta_json(samples.envelope([samples.messages_change([text_message(hostile)])]))
    for argv in ([], ["--json"]):
        code, out, _ = decode(capsys, *argv, stdin=body, monkeypatch=monkeypatch)
        assert code == 0
        assert "\x1b" not in out and "\u202e" not in out and "\x07" not in out
    assert "[bold]x[/bold]" in out or "[bold]x[/bold]" in json.loads(out)["items"][0]["text"]


def test_a_long_value_is_cut_with_a_note() -> None:
    shown = value_text("x" * 5000)
    assert shown.startswith('"xxx') and len(shown) < VALUE_SHOWN + 60
    assert shown.endswith("… (cut: 5,002 characters, --json has all)")
    assert value_text(None) == "null" and value_text(True) == "true" and value_text(12) == "12"
    assert value_text("two\nlines") == '"two\\nlines"'


# Recordings --------------------------------------------------------------------------------------


def test_a_recording_line_decodes_its_body_and_says_which_exchange(
    capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    stale = {"ok": True, "headline": "an older decoder's words", "items": []}
    line = line_of(record(7, LIST_BODY, summary=stale))
    code, out, _ = decode(capsys, stdin=line, monkeypatch=monkeypatch)
    lines = out.splitlines()
    assert code == 0
    assert lines[0] == "seq 7  2026-12-09T08:20:07.000000Z  event  id rec-7"
    assert lines[1] == decode_payload(LIST_BODY).headline  # decoded again: the recorded summary is derived data
    code, out, _ = decode(capsys, "--json", stdin=line, monkeypatch=monkeypatch)
    decoded = json.loads(out)
    assert decoded["exchange"] == {
        "id": "rec-7",
        "seq": 7,
        "received_at": "2026-12-09T08:20:07.000000Z",
        "kind": "event",
    }
    assert decoded["headline"] == decode_payload(LIST_BODY).headline


def test_a_recorded_body_that_is_not_utf8_is_decoded_from_its_exact_bytes(
    capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    body = b'{"object": "whatsapp_business_account", "entry": [\xff]}'
    recorded = record(3, body)
    assert recorded["request"] == {**recorded["request"], "body_b64": base64.b64encode(body).decode()}
    code, out, _ = decode(capsys, stdin=line_of(recorded), monkeypatch=monkeypatch)
    assert code == 1
    assert out.splitlines()[1] == f"not a WhatsApp webhook: {decode_payload(body).problem}"


def test_a_session_file_one_block_per_event_damaged_lines_skipped(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    verify = record(2, b"", kind="verify")
    session = (
        line_of(record(1, TEXT_BODY))
        + line_of(verify)
        + b"{this line is damaged\n"
        + line_of(record(4, READ_BODY))
        + line_of(record(5, READ_BODY))  # Meta delivered the same status again
        + b'{"v": 1, "seq": 6, "kind": "ev'  # cut short by kill -9
    )
    path = write(tmp_path, "20261209-082000.jsonl", session)
    code, out, err = decode(capsys, path, monkeypatch=monkeypatch)
    blocks = out.split("\n\n")
    assert code == 0
    assert [block.splitlines()[0] for block in blocks] == [
        "seq 1  2026-12-09T08:20:01.000000Z  event  id rec-1  (line 1)",
        "seq 4  2026-12-09T08:20:04.000000Z  event  id rec-4  (line 4)",
        "seq 5  2026-12-09T08:20:05.000000Z  event  id rec-5  (line 5)",
    ]
    assert "flags: duplicate" in blocks[2] and "duplicate" not in blocks[1]
    assert err.splitlines() == [
        "wa-devtunnel decode: line 3: not valid JSON, skipped",
        "wa-devtunnel decode: line 6: truncated last line, skipped",
        "wa-devtunnel decode: skipped, not webhook events: 1 verify",
    ]
    code, out, _ = decode(capsys, path, "--json", monkeypatch=monkeypatch)
    rows = [json.loads(text) for text in out.splitlines()]
    assert [row["exchange"]["seq"] for row in rows] == [1, 4, 5]
    assert rows[2]["flags"] == ["duplicate"]


def test_json_lines_of_bodies_decode_one_by_one(
    capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    code, out, _ = decode(capsys, stdin=TEXT_BODY + b"\n" + READ_BODY + b"\n", monkeypatch=monkeypatch)
    assert code == 0
    assert [block.splitlines()[0] for block in out.split("\n\n")] == ["line 1", "line 2"]


def test_a_session_without_events_exits_1(capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch) -> None:
    verify = line_of(record(1, b"", kind="verify"))
    code, out, err = decode(capsys, stdin=verify + verify, monkeypatch=monkeypatch)
    assert (code, out) == (1, "")
    assert "skipped, not webhook events: 2 verify" in err and "no webhook event in the input" in err
    code, out, _ = decode(capsys, stdin=verify, monkeypatch=monkeypatch)  # one line: said on stdout
    assert code == 1 and "a verify exchange, not a webhook event: nothing to decode" in out


def test_decode_input_keeps_file_order() -> None:
    data = line_of(record(1, READ_BODY)) + line_of(record(2, TEXT_BODY))
    assert [d.exchange["seq"] for d in decode_input(data).decoded] == [1, 2]


def test_decode_is_listed_in_the_help(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit):
        main(["--help"])
    assert re.search(r"^    decode +decode a webhook body", capsys.readouterr().out, re.MULTILINE)


class ClosedPipe(io.StringIO):
    """stdout of `decode ... | head` once head has exited."""

    def write(self, text: str) -> int:
        raise BrokenPipeError(32, "Broken pipe")

    def fileno(self) -> int:
        raise io.UnsupportedOperation("fileno")


def test_a_reader_that_stops_early_is_no_error(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr("sys.stdin", Stdin(TEXT_BODY))
    monkeypatch.setattr("sys.stdout", ClosedPipe())
    assert main(["decode"]) == 0
