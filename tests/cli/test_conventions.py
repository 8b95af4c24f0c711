"""Start-up that fits where it runs, and the command line's conventions (issue 16, items 6 and 7)."""

from __future__ import annotations

import os
import re
import selectors
import signal
import stat
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.support.cli_process import REPO_ROOT, minimal_env
from wa_devtunnel.__main__ import main
from wa_devtunnel.cli import front_end
from wa_devtunnel.cli.init import FILL_IN_NEXT, env_template
from wa_devtunnel.cli.main import BY_NAME, COMMANDS
from wa_devtunnel.settings import TUNNEL_PROVIDERS

SETTING_PREFIXES = ("WHATSAPP_", "WA_DEVTUNNEL_", "NGROK_", "META_", "PYNGROK_")
NOTE = "running --headless (run it in a terminal for the live view)"
CONSOLE_SCRIPT = Path(sys.executable).with_name("wa-devtunnel")


@pytest.fixture
def workdir(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Path]:
    """An empty current directory and no WhatsApp/ngrok settings from the developer's shell."""
    for name in list(os.environ):
        if name.startswith(SETTING_PREFIXES) and name != "WA_DEVTUNNEL_STATE_DIR":
            monkeypatch.delenv(name)
    monkeypatch.chdir(tmp_path)
    yield tmp_path


class FrontEnds:
    """Which front end `up`/`watch` started, and what was offered before it, in order."""

    def __init__(self) -> None:
        self.calls: list[tuple[str, Any]] = []


@pytest.fixture
def front_ends(monkeypatch: pytest.MonkeyPatch) -> FrontEnds:
    """Neither front end really starts: the TUI launchers and the headless loops only say they were called."""
    seen = FrontEnds()

    async def headless(settings: object, *, json_lines: bool = False) -> int:
        seen.calls.append(("headless", json_lines))
        return 0

    def tui(settings: object, argv: tuple[str, ...]) -> int:
        seen.calls.append(("tui", argv))
        return 0

    def watch_tui(address: object) -> int:
        seen.calls.append(("watch-tui", address))
        return 0

    async def watch_headless(client: object, *, json_lines: bool = False) -> int:
        seen.calls.append(("watch-headless", json_lines))
        return 0

    class Client:
        @staticmethod
        def attach(address: object, records: bool = True) -> object:
            return object()

    monkeypatch.setattr("wa_devtunnel.cli.up.run_headless", headless)
    monkeypatch.setattr("wa_devtunnel.__main__.run_tui", tui)
    monkeypatch.setattr("wa_devtunnel.__main__.run_watch", watch_tui)
    monkeypatch.setattr("wa_devtunnel.cli.watch.find_engine", lambda settings, address: "the engine")
    monkeypatch.setattr("wa_devtunnel.cli.watch.EngineClient", Client)
    monkeypatch.setattr("wa_devtunnel.cli.watch.watch_headless", watch_headless)
    monkeypatch.setattr(
        "wa_devtunnel.cli.up.offer_verify_token", lambda settings: seen.calls.append(("offer", settings.verify_token))
    )
    return seen


@pytest.fixture
def terminal(monkeypatch: pytest.MonkeyPatch) -> None:
    """As in a developer's terminal: stdin, stdout and stderr are all ttys."""
    monkeypatch.setattr("wa_devtunnel.cli.front_end.missing_terminal", lambda: None)


def run_main(argv: list[str], capsys: pytest.CaptureFixture[str]) -> tuple[int, str, str]:
    code = main(argv)
    captured = capsys.readouterr()
    return code, captured.out, captured.err


def help_text(argv: list[str], capsys: pytest.CaptureFixture[str]) -> str:
    with pytest.raises(SystemExit) as exit_info:
        main(argv)
    assert exit_info.value.code == 0
    return capsys.readouterr().out


UP = ["--port", "0", "--tunnel", "none", "--recordings-dir", "rec", "--verify-token", "wa-conventions-token"]

# --- start-up that fits where it runs ----------------------------------------------------------------


def test_up_without_a_terminal_runs_headless_and_says_why(
    workdir: Path, front_ends: FrontEnds, capsys: pytest.CaptureFixture[str]
) -> None:
    code, out, err = run_main(UP, capsys)  # under pytest, stdout is captured: not a terminal
    assert code == 0
    assert [call[0] for call in front_ends.calls] == ["offer", "headless"]
    assert front_ends.calls[1] == ("headless", False)
    assert err == f"wa-devtunnel: stdout is not a terminal, {NOTE}\n"
    assert out == ""


def test_up_on_a_terminal_opens_the_tui_without_a_note(
    workdir: Path, front_ends: FrontEnds, terminal: None, capsys: pytest.CaptureFixture[str]
) -> None:
    code, _, err = run_main(UP, capsys)
    assert code == 0
    assert [call[0] for call in front_ends.calls] == ["offer", "tui"]
    assert NOTE not in err


def test_headless_asked_for_needs_no_note(
    workdir: Path, front_ends: FrontEnds, capsys: pytest.CaptureFixture[str]
) -> None:
    code, _, err = run_main(["--headless", *UP], capsys)
    assert code == 0 and front_ends.calls[-1] == ("headless", False)
    assert NOTE not in err


def test_json_implies_headless(
    workdir: Path, front_ends: FrontEnds, terminal: None, capsys: pytest.CaptureFixture[str]
) -> None:
    code, _, err = run_main(["--json", *UP], capsys)
    assert code == 0, err
    assert [call[0] for call in front_ends.calls] == ["offer", "headless"]
    assert front_ends.calls[1] == ("headless", True)
    assert NOTE not in err


def test_the_verify_token_is_offered_before_either_front_end_with_the_settings_in_use(
    workdir: Path, front_ends: FrontEnds, terminal: None, capsys: pytest.CaptureFixture[str]
) -> None:
    assert run_main(UP, capsys)[0] == 0
    assert run_main(["--headless", *UP], capsys)[0] == 0
    assert front_ends.calls[0] == ("offer", "wa-conventions-token")
    assert front_ends.calls[2] == ("offer", "wa-conventions-token")
    assert [call[0] for call in front_ends.calls] == ["offer", "tui", "offer", "headless"]


def test_watch_without_a_terminal_runs_headless_and_says_why(
    workdir: Path, front_ends: FrontEnds, capsys: pytest.CaptureFixture[str]
) -> None:
    code, _, err = run_main(["watch"], capsys)
    assert code == 0
    assert front_ends.calls == [("watch-headless", False)]
    assert err == f"wa-devtunnel: stdout is not a terminal, {NOTE}\n"


def test_watch_on_a_terminal_opens_the_tui(
    workdir: Path, front_ends: FrontEnds, terminal: None, capsys: pytest.CaptureFixture[str]
) -> None:
    code, _, err = run_main(["watch"], capsys)
    assert code == 0
    assert front_ends.calls == [("watch-tui", "the engine")]
    assert NOTE not in err


class Stream:
    """A standard stream that is, or is not, a terminal."""

    def __init__(self, tty: bool) -> None:
        self.tty = tty

    def isatty(self) -> bool:
        return self.tty


@pytest.mark.parametrize(
    ("ttys", "missing"),
    [
        ({"stdin": True, "stdout": True, "stderr": True}, None),
        ({"stdin": True, "stdout": False, "stderr": True}, "stdout"),  # `| tee`, a Procfile, docker without -t
        ({"stdin": False, "stdout": True, "stderr": True}, "stdin"),  # `< /dev/null`, cron
        ({"stdin": True, "stdout": True, "stderr": False}, "stderr"),  # `2>log`: Textual would draw into the file
        ({"stdin": False, "stdout": False, "stderr": False}, "stdout"),
    ],
)
def test_the_note_names_the_stream_that_is_not_a_terminal(
    monkeypatch: pytest.MonkeyPatch, ttys: dict[str, bool], missing: str | None
) -> None:
    for name, tty in ttys.items():
        monkeypatch.setattr(sys, name, Stream(tty))
    assert front_end.missing_terminal() == missing


def test_a_closed_stream_is_not_a_terminal(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in ("stdout", "stderr"):
        monkeypatch.setattr(sys, name, Stream(True))
    monkeypatch.setattr(sys, "stdin", None)  # `<&-`: Python leaves sys.stdin None
    assert front_end.missing_terminal() == "stdin"


def read_until(proc: subprocess.Popen[bytes], marker: bytes, timeout: float = 20.0) -> bytes:
    """stdout read from the pipe until `marker` shows (the child may print more lines after it)."""
    assert proc.stdout is not None
    seen = b""
    deadline = time.monotonic() + timeout
    with selectors.DefaultSelector() as selector:
        selector.register(proc.stdout, selectors.EVENT_READ)
        while marker not in seen:
            left = deadline - time.monotonic()
            if left <= 0:
                raise AssertionError(f"no {marker!r} on stdout within {timeout} s; got {seen!r}")
            if selector.select(left):
                chunk = os.read(proc.stdout.fileno(), 65536)
                if not chunk:  # the child exited
                    raise AssertionError(f"stdout closed before {marker!r} (exit {proc.wait(10)}); got {seen!r}")
                seen += chunk
    return seen


def test_the_console_script_with_stdout_to_a_pipe_runs_headless_without_escape_codes(tmp_path: Path) -> None:
    """The real `wa-devtunnel`, as docker compose without -t, a Procfile or `| tee` runs it."""
    assert CONSOLE_SCRIPT.is_file(), CONSOLE_SCRIPT
    proc = subprocess.Popen(
        [str(CONSOLE_SCRIPT), "--port", "0", "--tunnel", "none"],
        cwd=tmp_path,
        env=minimal_env(tmp_path, {"TERM": "xterm-256color"}),
        stdin=subprocess.DEVNULL,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        start_new_session=True,
    )
    try:
        first = read_until(proc, b"Callback URL: http://127.0.0.1:")
        proc.send_signal(signal.SIGTERM)
        rest, err = proc.communicate(timeout=10)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.communicate(timeout=10)
    assert proc.returncode == 0, err
    out = first + rest
    assert re.search(rb"^Callback URL: http://127\.0\.0\.1:\d+/webhook/whatsapp$", out, re.MULTILINE), out
    assert b"\x1b" not in out + err
    assert f"wa-devtunnel: stdout is not a terminal, {NOTE}".encode() in err
    assert b"Stopped after 0 exchange(s)" in err


# --- errors point to the right help --------------------------------------------------------------


@pytest.mark.parametrize(
    ("argv", "hint"),
    [
        (["replay", "--bogus"], "Try 'wa-devtunnel replay --help'."),
        (["replay", "--kind", "nope"], "Try 'wa-devtunnel replay --help'."),
        (["sessions", "extra", "words"], "Try 'wa-devtunnel sessions --help'."),
        (["init", "--forse"], "Try 'wa-devtunnel init --help'."),
        (["up", "--tunnel"], "Try 'wa-devtunnel up --help'."),
        (["--no-such-flag"], "Try 'wa-devtunnel up --help'."),  # flags alone are `up`'s
        (["sesions"], "Try 'wa-devtunnel --help'."),
    ],
)
def test_a_usage_error_points_to_the_help_of_where_it_was_made(
    workdir: Path, front_ends: FrontEnds, capsys: pytest.CaptureFixture[str], argv: list[str], hint: str
) -> None:
    code, out, err = run_main(argv, capsys)
    assert code == 2
    assert out == "" and front_ends.calls == []
    assert err.splitlines()[-1] == hint
    assert len(err.splitlines()) == 2, err


def test_unrecognized_arguments_are_named_by_their_command(workdir: Path, capsys: pytest.CaptureFixture[str]) -> None:
    _, _, err = run_main(["replay", "--bogus"], capsys)
    assert err.splitlines()[0] == "wa-devtunnel replay: unrecognized arguments: --bogus"


# --- a misspelled command is not `up` ----------------------------------------------------------------


@pytest.mark.parametrize(("typed", "meant"), [("sesions", "sessions"), ("replya", "replay"), ("inti", "init")])
def test_a_misspelled_command_gets_did_you_mean(
    workdir: Path, front_ends: FrontEnds, capsys: pytest.CaptureFixture[str], typed: str, meant: str
) -> None:
    code, out, err = run_main([typed, "--port", "0"], capsys)
    assert code == 2
    assert (out, front_ends.calls) == ("", [])
    assert err.splitlines()[0] == f"wa-devtunnel: unknown command '{typed}'; did you mean '{meant}'?"


def test_a_word_like_no_command_lists_the_commands(
    workdir: Path, front_ends: FrontEnds, capsys: pytest.CaptureFixture[str]
) -> None:
    code, _, err = run_main(["xyzzy"], capsys)
    assert code == 2 and front_ends.calls == []
    assert err.splitlines()[0] == f"wa-devtunnel: unknown command 'xyzzy'; the commands are {', '.join(BY_NAME)}"


def test_an_unknown_command_is_shown_escaped(workdir: Path, capsys: pytest.CaptureFixture[str]) -> None:
    code, _, err = run_main(["ses\x1b]52;c;aGk=\x07sions\nforged line"], capsys)
    assert code == 2
    assert "\x1b" not in err and "\x07" not in err
    assert err.splitlines()[0].startswith(r"wa-devtunnel: unknown command 'ses\x1b]52;c;aGk=\x07sions\x0aforged line'")


def test_flags_alone_still_mean_up(workdir: Path, front_ends: FrontEnds, capsys: pytest.CaptureFixture[str]) -> None:
    code, _, err = run_main(["--headless", *UP], capsys)
    assert code == 0, err
    assert front_ends.calls[-1] == ("headless", False)


def test_up_takes_no_positional_argument(workdir: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """So refusing a bare first word takes nothing from `up`: after `up` a word is still an error."""
    code, _, err = run_main(["up", "sessions"], capsys)
    assert code == 2
    assert err.splitlines() == ["wa-devtunnel up: unrecognized arguments: sessions", "Try 'wa-devtunnel up --help'."]


# --- choices shown ------------------------------------------------------------------------------


def test_tunnel_shows_its_choices_in_help_and_errors(
    workdir: Path, front_ends: FrontEnds, capsys: pytest.CaptureFixture[str]
) -> None:
    assert "--tunnel {ngrok,cloudflared,none}" in help_text(["up", "--help"], capsys)
    code, _, err = run_main(["--tunnel", "ngrokk"], capsys)
    assert code == 2 and front_ends.calls == []
    first = err.splitlines()[0]
    assert "--tunnel" in first and "ngrokk" in first
    assert all(f"'{choice}'" in first for choice in TUNNEL_PROVIDERS), first


# --- every command listed, with its one-line help ---------------------------------------------------


def listed_commands(text: str) -> dict[str, str]:
    return dict(re.findall(r"^    (\w+) +(\S.*)$", text, re.MULTILINE))


def test_help_lists_every_command_with_a_one_line_help(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setenv("COLUMNS", "400")  # argparse wraps at the terminal's width
    text = help_text(["--help"], capsys)
    assert "usage: wa-devtunnel [-h] [--version] COMMAND ..." in text
    listed = listed_commands(text)
    assert list(listed) == [command.NAME for command in COMMANDS]
    assert "init" in listed
    for name, one_line in listed.items():
        assert one_line.strip(), name
        own = help_text([name, "--help"], capsys).split("\n\n")
        # After its usage, a command's help says what it is for: its own description, else its one-line help.
        assert own[1].splitlines()[0] not in ("options:", "positional arguments:"), f"`{name} --help`: {own}"
    assert listed["sessions"] in help_text(["sessions", "--help"], capsys)  # no description of its own: the one line
    assert "Without a command, wa-devtunnel runs `up`." in text


# --- init ---------------------------------------------------------------------------------------------


def test_the_shipped_template_is_the_repositorys_env_example() -> None:
    assert env_template() == (REPO_ROOT / ".env.example").read_text(encoding="utf-8")
    assert (REPO_ROOT / "wa_devtunnel" / "data" / "env.example").read_bytes() == (
        REPO_ROOT / ".env.example"
    ).read_bytes()


def test_init_writes_a_private_commented_env_and_says_what_to_fill_in(
    workdir: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    code, out, err = run_main(["init"], capsys)
    assert code == 0, err
    env = workdir / ".env"
    assert env.read_text(encoding="utf-8") == env_template()
    assert stat.S_IMODE(env.stat().st_mode) == 0o600
    assert out.splitlines()[0] == "Wrote .env (mode 0600): every setting, commented. Keep it out of git."
    for name, where in FILL_IN_NEXT:
        assert re.search(rf"^  {name} +{re.escape(where)}$", out, re.MULTILINE), out
        assert f"\n{name}=\n" in env_template(), f"{name} is not in the template"
    assert "wa-devtunnel" in out.splitlines()[-2]


def test_init_refuses_to_overwrite_without_force(workdir: Path, capsys: pytest.CaptureFixture[str]) -> None:
    env = workdir / ".env"
    env.write_text("WHATSAPP_APP_SECRET=mine\n", encoding="utf-8")
    code, out, err = run_main(["init"], capsys)
    assert code == 2 and out == ""
    assert env.read_text(encoding="utf-8") == "WHATSAPP_APP_SECRET=mine\n"
    assert "already exists" in err and "--force" in err and ".env" in err
    assert "mine" not in err


def test_init_force_replaces_a_broken_env_without_reading_it(workdir: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """It never reads settings: a .env too broken to load is what --force replaces."""
    env = workdir / "settings.env"
    env.write_text("WA_DEVTUNNEL_PORT=abc\nBROKEN LINE\n", encoding="utf-8")
    env.chmod(0o644)
    code, out, err = run_main(["init", "--env-file", str(env), "--force"], capsys)
    assert code == 0, err
    assert env.read_text(encoding="utf-8") == env_template()
    assert stat.S_IMODE(env.stat().st_mode) == 0o600
    assert out.startswith(f"Replaced {env} (mode 0600)")


def test_init_into_a_missing_folder_says_so(workdir: Path, capsys: pytest.CaptureFixture[str]) -> None:
    code, out, err = run_main(["init", "--env-file", "nowhere/.env"], capsys)
    assert code == 1 and out == ""
    assert err.strip() == "wa-devtunnel init: cannot write nowhere/.env: No such file or directory"


def test_init_shows_a_path_with_controls_escaped(workdir: Path, capsys: pytest.CaptureFixture[str]) -> None:
    code, out, err = run_main(["init", "--env-file", "no\x1b[2Jwhere\n/.env"], capsys)
    assert code == 1 and out == ""
    assert err.strip() == r"wa-devtunnel init: cannot write no\x1b[2Jwhere\x0a/.env: No such file or directory"
