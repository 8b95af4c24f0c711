"""The command-line contract of DESIGN.md: names, exit codes, one clear line per mistake, output formats."""

from __future__ import annotations

import asyncio
import json
import os
import re
import signal
import socket
import subprocess
import sys
from collections.abc import Iterator
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

import aiohttp
import pytest

from tests.support.cli_process import APP_SECRET, VERIFY_TOKEN, CliProcess, run_cli, running_cli
from tests.support.meta_client import MetaLikeSender
from wa_devtunnel import __version__
from wa_devtunnel.__main__ import main
from wa_devtunnel.cli.main import main as cli_main
from wa_devtunnel.engine.recording import SessionRecorder, read_recording, request_body
from wa_devtunnel.rules.samples import payloads as samples
from wa_devtunnel.settings import Settings

CLOCK = r"(\d\d:\d\d:\d\d)"
SETTING_PREFIXES = ("WHATSAPP_", "WA_DEVTUNNEL_", "NGROK_", "META_", "PYNGROK_")


@pytest.fixture
def workdir(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Path]:
    """An empty current directory and no WhatsApp/ngrok settings from the developer's shell."""
    for name in list(os.environ):
        if name.startswith(SETTING_PREFIXES):
            monkeypatch.delenv(name)
    monkeypatch.chdir(tmp_path)
    yield tmp_path


@pytest.fixture
def terminal(monkeypatch: pytest.MonkeyPatch) -> None:
    """As in a developer's terminal (under pytest stdout is captured, so `up` would run headless)."""
    monkeypatch.setattr("wa_devtunnel.cli.front_end.missing_terminal", lambda: None)


@pytest.fixture
def never_serve(monkeypatch: pytest.MonkeyPatch) -> None:
    """A test of a refused configuration fails fast, instead of hanging, if the CLI starts serving."""

    def refuse(*args: object, **kwargs: object) -> int:
        raise AssertionError("the configuration was accepted and the CLI started serving")

    async def refuse_async(*args: object, **kwargs: object) -> int:
        return refuse()

    monkeypatch.setattr("wa_devtunnel.cli.up.run_headless", refuse_async)
    monkeypatch.setattr("wa_devtunnel.__main__.run_tui", refuse)


def run_main(argv: list[str], capsys: pytest.CaptureFixture[str]) -> tuple[int, str, str]:
    code = main(argv)
    captured = capsys.readouterr()
    return code, captured.out, captured.err


def help_text(argv: list[str], capsys: pytest.CaptureFixture[str]) -> str:
    with pytest.raises(SystemExit) as exit_info:
        main(argv)
    assert exit_info.value.code == 0
    return capsys.readouterr().out


def test_help_lists_the_commands(workdir: Path, capsys: pytest.CaptureFixture[str]) -> None:
    text = help_text(["--help"], capsys)
    assert re.search(r"^\s+up\b", text, re.MULTILINE), text
    assert re.search(r"^\s+sessions\b", text, re.MULTILINE), text


def test_up_help_lists_the_contract_flags(workdir: Path, capsys: pytest.CaptureFixture[str]) -> None:
    text = help_text(["up", "--help"], capsys)
    for flag in (
        "--port",
        "--host",
        "--path",
        "--tunnel",
        "--forward-to",
        "--headless",
        "--json",
        "--recordings-dir",
        "--no-record",
        "--env-file",
    ):
        assert flag in text


def test_version_with_python_dash_m(tmp_path: Path) -> None:
    result = run_cli(tmp_path, "--version")
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == f"wa-devtunnel {__version__}"


ACCOUNTS_MISSING_TOKEN = '[[account]]\nname = "shop"\nphone_number_id = "106540352242922"\n'

# (id, .env lines, extra argv, the setting the one error line must name)
BAD_SETTINGS: list[tuple[str, list[str], list[str], str]] = [
    ("port-in-env", ["WA_DEVTUNNEL_PORT=abc"], [], "WA_DEVTUNNEL_PORT"),
    ("port-flag-range", [], ["--port", "99999"], "--port"),
    ("port-flag-text", [], ["--port", "eighty"], "--port"),
    ("accounts-missing-key", [], ["--accounts", "ACCOUNTS"], "--accounts"),
    ("accounts-absent", [], ["--accounts", "nowhere.toml"], "--accounts"),
    ("token-whitespace", ["WHATSAPP_VERIFY_TOKEN=' tok '"], [], "WHATSAPP_VERIFY_TOKEN"),
    ("forward-to", [], ["--forward-to", "ftp://backend"], "--forward-to"),
    ("max-body", [], ["--max-body-bytes", "0"], "--max-body-bytes"),
    ("path", [], ["--path", "webhook"], "--path"),
    ("require-signature", [], ["--require-signature"], "--require-signature"),
]


@pytest.mark.parametrize(
    ("env_lines", "argv", "setting"),
    [case[1:] for case in BAD_SETTINGS],
    ids=[case[0] for case in BAD_SETTINGS],
)
def test_malformed_setting_exits_2_with_one_line_naming_it(
    workdir: Path,
    never_serve: None,
    capsys: pytest.CaptureFixture[str],
    env_lines: list[str],
    argv: list[str],
    setting: str,
) -> None:
    env_file = workdir / ".env"
    env_file.write_text("\n".join(env_lines) + "\n", encoding="utf-8")
    accounts = workdir / "accounts.toml"
    accounts.write_text(ACCOUNTS_MISSING_TOKEN, encoding="utf-8")
    argv = [str(accounts) if arg == "ACCOUNTS" else arg for arg in argv]
    args = ["--headless", "--env-file", str(env_file), "--recordings-dir", "rec", *argv]

    code, out, err = run_main(args, capsys)

    assert code == 2
    assert out == ""
    lines = err.strip().splitlines()
    assert len(lines) == 1, err
    assert setting in lines[0]
    assert "Traceback" not in err
    assert not (workdir / "rec").exists(), "nothing may be recorded for a bad configuration"


def test_missing_env_file_is_named(workdir: Path, never_serve: None, capsys: pytest.CaptureFixture[str]) -> None:
    code, out, err = run_main(["--headless", "--env-file", "absent.env"], capsys)
    assert code == 2
    assert (out, len(err.strip().splitlines())) == ("", 1)
    assert "--env-file" in err and "absent.env" in err


def test_unknown_flag_is_a_usage_error(workdir: Path, never_serve: None, capsys: pytest.CaptureFixture[str]) -> None:
    code, _, err = run_main(["--no-such-flag"], capsys)
    assert code == 2
    assert "--no-such-flag" in err
    assert "Traceback" not in err


def test_sessions_on_an_empty_directory(workdir: Path, capsys: pytest.CaptureFixture[str]) -> None:
    code, out, _ = run_main(["sessions", "--recordings-dir", str(workdir / "rec")], capsys)
    assert code == 0
    assert out.startswith("No recordings in ")
    assert "wa-devtunnel" in out


def fake_record(seq: int, kind: str) -> dict[str, Any]:
    return {
        "v": 1,
        "id": f"id{seq}",
        "seq": seq,
        "received_at": f"2026-11-26T21:55:0{seq}.000000Z",
        "kind": kind,
        "request": {"method": "POST", "path": "/webhook/whatsapp", "query": "", "headers": []},
        "response": {"status": 200, "body": "EVENT_RECEIVED"},
        "signature": "unchecked",
    }


def test_sessions_lists_a_recording_with_its_counts(workdir: Path, capsys: pytest.CaptureFixture[str]) -> None:
    directory = workdir / "rec"
    with SessionRecorder(directory) as recorder:
        for seq, kind in enumerate(["verify", "event", "event", "other", "event"], start=1):
            recorder.append(fake_record(seq, kind))
    code, out, err = run_main(["sessions", "--recordings-dir", str(directory)], capsys)
    assert code == 0, err
    header, row = out.strip().splitlines()
    assert header.split()[:2] == ["FILE", "STARTED"]
    assert row.startswith(recorder.path.name)
    # exchanges, events, verifies, others
    assert re.search(r"\s5\s+3\s+1\s+1\s", row), row


def busy_port() -> socket.socket:
    holder = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    holder.bind(("127.0.0.1", 0))
    holder.listen()
    return holder


def test_port_in_use_exits_2_with_a_clear_message(workdir: Path, capsys: pytest.CaptureFixture[str]) -> None:
    with busy_port() as holder:
        port = holder.getsockname()[1]
        argv = ["--headless", "--tunnel", "none", "--port", str(port), "--recordings-dir", "rec"]
        code, _, err = run_main(argv, capsys)
    assert code == 2
    assert "Traceback" not in err
    (line,) = [line for line in err.splitlines() if f"127.0.0.1:{port}" in line]
    assert "in use" in line.lower()
    assert "--port 0" in line


def test_port_in_use_leaves_no_empty_recording(workdir: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """An empty session file would be listed by `sessions` and picked by replay/export as latest."""
    with busy_port() as holder:
        port = holder.getsockname()[1]
        argv = ["--headless", "--tunnel", "none", "--port", str(port), "--recordings-dir", "rec"]
        assert run_main(argv, capsys)[0] == 2
    assert list((workdir / "rec").glob("*.jsonl")) == []


def handshake_and_event(cli: CliProcess, token: str) -> tuple[bool, bytes]:
    """One handshake with `token`, then one signed text event, in that order."""
    body = samples.text_message_payload()

    async def talk() -> tuple[bool, list[int]]:
        async with aiohttp.ClientSession() as session:
            sender = MetaLikeSender(session, cli.callback_url, APP_SECRET)
            handshake = await sender.handshake(token)
            return handshake.accepted, await sender.deliver(body, attempts=1)

    accepted, statuses = asyncio.run(talk())
    assert statuses == [200]
    return accepted, body


def test_headless_json_lines(tmp_path: Path) -> None:
    with running_cli(tmp_path, "--json") as cli:
        accepted, body = handshake_and_event(cli, VERIFY_TOKEN)
        assert accepted
        assert cli.stop(signal.SIGTERM) == 0
        stdout, stderr = cli.stdout(), cli.stderr()
        recording = cli.recording()

    objects = [json.loads(line) for line in stdout.splitlines()]
    assert objects[0]["event"] == "started"
    assert objects[0]["callback_url"] == cli.callback_url
    exchanges = [obj for obj in objects if obj["event"] == "exchange"]
    assert [(obj["kind"], obj["response"]["status"]) for obj in exchanges] == [
        ("verify", 200),
        ("event", 200),
    ]
    assert exchanges[1]["signature"] == "valid"
    assert request_body(exchanges[1]["request"]) == body
    assert [obj["id"] for obj in exchanges] == [r["id"] for r in read_recording(recording).records]
    assert objects[0]["verify_token"] == VERIFY_TOKEN
    assert all(VERIFY_TOKEN not in json.dumps(obj) for obj in exchanges)
    assert APP_SECRET not in stdout + stderr
    assert "Callback URL: " + cli.callback_url in stderr
    assert "Verify token: " in stderr
    assert "Traceback" not in stderr


# A POSIX TZ string needs no tz database: local time is UTC+05:45 in the child.
CHILD_TZ = "XYZ-5:45"
CHILD_UTC_OFFSET = timedelta(hours=5, minutes=45)


def expected_clock(received_at: str) -> str:
    moment = datetime.strptime(received_at, "%Y-%m-%dT%H:%M:%S.%fZ") + CHILD_UTC_OFFSET
    return moment.strftime("%H:%M:%S")


def test_headless_text_lines(tmp_path: Path) -> None:
    with running_cli(tmp_path, env={"TZ": CHILD_TZ}) as cli:
        accepted, _ = handshake_and_event(cli, VERIFY_TOKEN + " ")
        assert not accepted
        assert cli.stop(signal.SIGTERM) == 0
        lines = cli.stdout().splitlines()
        verify_record, event_record = read_recording(cli.recording()).records

    assert lines[0] == f"Callback URL: {cli.callback_url}"
    assert lines[1] == f"Verify token: {VERIFY_TOKEN}"
    # Sent straight to 127.0.0.1, not through a tunnel: labelled local (with the client's address).
    verify_re = re.compile(
        rf"^{CLOCK}  GET +403  verify +FAILED: token mismatch: leading/trailing whitespace  \(local[^)]*\)$"
    )
    event_re = re.compile(
        rf"^{CLOCK}  POST +200  event +sig=valid  messages: text from 16505551234: "
        r'"Does it come in another color\?"  \(local[^)]*\)$'
    )
    verify_lines = [m for m in map(verify_re.match, lines) if m]
    event_lines = [m for m in map(event_re.match, lines) if m]
    assert len(verify_lines) == 1, lines
    assert len(event_lines) == 1, lines
    assert verify_lines[0].group(1) == expected_clock(verify_record["received_at"])
    assert event_lines[0].group(1) == expected_clock(event_record["received_at"])


def test_up_opens_the_tui_that_main_hands_in(
    workdir: Path, terminal: None, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    opened: list[tuple[int, tuple[str, ...]]] = []

    def launcher(settings: Settings, argv: tuple[str, ...]) -> int:
        opened.append((settings.port, argv))
        return 0

    monkeypatch.setattr("wa_devtunnel.__main__.run_tui", launcher)
    assert run_main(["--port", "0", "--recordings-dir", "rec"], capsys)[0] == 0
    # The engine child runs the same command line (with --headless): `up` first, as main completed it.
    assert opened == [(0, ("up", "--port", "0", "--recordings-dir", "rec"))]


def test_the_cli_on_its_own_has_no_tui(workdir: Path, terminal: None, capsys: pytest.CaptureFixture[str]) -> None:
    assert cli_main(["up", "--port", "0", "--recordings-dir", "rec"]) == 2
    assert "--headless" in capsys.readouterr().err


def test_the_cli_never_imports_the_tui() -> None:
    """The two front ends meet only in __main__: importing every CLI module loads no TUI module."""
    code = (
        "import pkgutil, importlib, sys, wa_devtunnel.cli as cli\n"
        "for m in pkgutil.iter_modules(cli.__path__): importlib.import_module('wa_devtunnel.cli.' + m.name)\n"
        "print(sorted(n for n in sys.modules if n.startswith(('wa_devtunnel.tui', 'textual'))))"
    )
    loaded = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert loaded.stdout.strip() == "[]"


def test_doctor_names_an_unparseable_env_line(workdir: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """Through the command line too: the CLI quiets python-dotenv's logger, the check must still see its warnings."""
    (workdir / ".env").write_text("WHATSAPP_VERIFY_TOKEN=wa-reviewtoken-1234567890abcdef\nBROKEN LINE\n")
    code, out, err = run_main(["doctor", "--json"], capsys)
    assert code == 1  # a FAIL
    (settings_check,) = [c for c in json.loads(out)["checks"] if c["name"].startswith("settings")]
    assert settings_check["status"] == "FAIL" and "line 2" in settings_check["detail"], settings_check
    assert "python-dotenv could not parse" not in err
