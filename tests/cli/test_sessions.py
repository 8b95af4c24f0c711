"""`wa-devtunnel sessions`: the table a developer reads to name a session, plain when piped."""

from __future__ import annotations

import io
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest

from wa_devtunnel.__main__ import main
from wa_devtunnel.cli.output import console_for
from wa_devtunnel.cli.sessions import print_sessions
from wa_devtunnel.engine.recording import RECORDING_VERSION, SessionRecorder
from wa_devtunnel.engine.sessions import SessionInfo, list_sessions

STARTED = datetime(2026, 11, 26, 21, 55, 0, tzinfo=UTC)


def table_text(sessions: list[SessionInfo], directory: Path) -> str:
    stream = io.StringIO()
    print_sessions(console_for(stream), sessions, directory)
    return stream.getvalue()


def record(seq: int, kind: str) -> dict[str, Any]:
    return {
        "v": RECORDING_VERSION,
        "id": f"rec-{seq}",
        "seq": seq,
        "received_at": f"2026-11-26T21:55:{seq:02d}.000000Z",
        "kind": kind,
        "request": {"method": "POST", "path": "/webhook/whatsapp", "query": "", "headers": [], "body": "{}"},
        "response": {"status": 200, "body": ""},
        "signature": "unchecked",
    }


def test_sessions_table() -> None:
    clean = SessionInfo(Path("20261126-215500.jsonl"), STARTED, 12, 10, 1, 1, "a", "b", 3 * 1024 * 1024 + 1, 0)
    damaged = SessionInfo(Path("odd.jsonl"), None, 1, 1, 0, 0, "", "", 512, 1)
    text = table_text([clean, damaged], Path("rec"))
    assert text == (
        "FILE                   STARTED (UTC)        EXCHANGES  EVENTS  VERIFIES  OTHERS     SIZE\n"
        "20261126-215500.jsonl  2026-11-26 21:55:00         12      10         1       1  3.0 MiB\n"
        "odd.jsonl              -                            1       1         0       0    512 B  damaged: 1 line\n"
    ), "the layout of the plain-text table before rich: scripts and the docs read it"


def test_sessions_table_from_real_files(tmp_path: Path) -> None:
    with SessionRecorder(tmp_path, now=lambda: STARTED) as recorder:
        for seq, kind in enumerate(["verify", "event"], start=1):
            recorder.append(record(seq, kind))
    with recorder.path.open("ab") as damaged:
        damaged.write(b"x\ny\n")
    text = table_text(list_sessions(tmp_path), tmp_path)
    assert recorder.path.name in text
    assert text.endswith("damaged: 2 lines\n")
    assert "\x1b" not in text and not any(line.endswith(" ") for line in text.splitlines())


def test_empty_sessions_table_says_what_to_do(tmp_path: Path) -> None:
    assert table_text([], tmp_path) == f"No recordings in {tmp_path} yet. Run `wa-devtunnel` and send a webhook.\n"


def test_a_long_table_is_never_wrapped_when_piped(tmp_path: Path) -> None:
    long_name = "x" * 300 + ".jsonl"
    text = table_text([SessionInfo(Path(long_name), None, 1, 1, 0, 0, "", "", 1, 0)], tmp_path)
    assert len(text.splitlines()) == 2 and long_name in text


def test_colour_on_a_terminal_only_and_never_with_no_color(monkeypatch: pytest.MonkeyPatch) -> None:
    class Terminal(io.StringIO):
        def isatty(self) -> bool:
            return True

    damaged = [SessionInfo(Path("odd.jsonl"), None, 1, 1, 0, 0, "", "", 512, 1)]
    monkeypatch.delenv("NO_COLOR", raising=False)
    coloured = Terminal()
    print_sessions(console_for(coloured), damaged, Path("rec"))
    assert "\x1b[" in coloured.getvalue()
    monkeypatch.setenv("NO_COLOR", "1")
    plain = Terminal()
    print_sessions(console_for(plain), damaged, Path("rec"))
    assert "\x1b[" not in plain.getvalue() and "damaged: 1 line" in plain.getvalue()


def test_the_sessions_command(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    with SessionRecorder(tmp_path, now=lambda: STARTED) as recorder:
        recorder.append(record(1, "event"))
    assert main(["sessions", "--recordings-dir", str(tmp_path)]) == 0
    header, row = capsys.readouterr().out.splitlines()
    assert header.startswith("FILE  ") and row.startswith(recorder.path.name)


def test_late_ack_first_answers_are_not_counted_as_exchanges(tmp_path: Path) -> None:
    """--ack-first appends the backend's late answer as a line of its own (kind forward_update, same ref)."""
    late = {"v": RECORDING_VERSION, "id": "late-1", "seq": 3, "kind": "forward_update", "ref": "rec-2", "forward": {}}
    with SessionRecorder(tmp_path, now=lambda: STARTED) as recorder:
        recorder.append(record(1, "verify"))
        recorder.append(record(2, "event"))
        recorder.append({**late, "received_at": "2026-11-26T21:59:59.000000Z"})
    [info] = list_sessions(tmp_path)
    assert (info.exchanges, info.events, info.verifies, info.others, info.late_answers) == (2, 1, 1, 0, 1)
    assert info.last_at == "2026-11-26T21:55:02.000000Z", "the last exchange, not the late answer"
    row = table_text([info], tmp_path).splitlines()[1]
    assert row.split()[3:7] == ["2", "1", "1", "0"]


def test_empty_session_files_are_named_not_listed(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """Older versions left a 0-byte file per idle run; this one writes none, and `sessions` lists none."""
    (tmp_path / "20261126-215400.jsonl").write_bytes(b"")
    with SessionRecorder(tmp_path, now=lambda: STARTED) as recorder:
        recorder.append(record(1, "event"))
    with SessionRecorder(tmp_path, now=lambda: datetime(2026, 11, 26, 22, 0, tzinfo=UTC)):
        pass  # an idle run: no file at all
    assert main(["sessions", "--recordings-dir", str(tmp_path)]) == 0
    lines = capsys.readouterr().out.splitlines()
    assert [text.split()[0] for text in lines[1:-1]] == [recorder.path.name]
    assert lines[-1] == (
        "Not listed: 1 empty session file left by idle runs of an older wa-devtunnel (safe to delete): "
        "20261126-215400.jsonl"
    )


def test_only_empty_files_still_say_what_to_do(tmp_path: Path) -> None:
    (tmp_path / "20261126-215400.jsonl").write_bytes(b"")
    text = table_text(list_sessions(tmp_path), tmp_path)
    assert text.startswith(f"No recordings in {tmp_path} yet.")
    assert "1 empty session file" in text
