"""`.env` editing and `wa-devtunnel token`: one value changes, every other byte of the file stays."""

from __future__ import annotations

import io
import json
import os
import re
import stat
from collections.abc import Iterator
from pathlib import Path

import pytest
from dotenv import dotenv_values
from hypothesis import given
from hypothesis import strategies as st

from tests.support.cli_process import REPO_ROOT
from wa_devtunnel.cli.env_file import MINIMAL_HEADER, current_value, set_value
from wa_devtunnel.cli.env_offer import offer_verify_token
from wa_devtunnel.cli.init import env_template
from wa_devtunnel.cli.main import main
from wa_devtunnel.settings import Settings, load_settings

KEY = "WHATSAPP_VERIFY_TOKEN"
TOKEN = "wa-NEWtoken0123456789abcdefghijklmnop"
TOKEN_RE = re.compile(r"wa-[A-Za-z0-9]{32}")
SETTING_PREFIXES = ("WHATSAPP_", "WA_DEVTUNNEL_", "NGROK_", "META_", "PYNGROK_")


@pytest.mark.parametrize(
    ("before", "after", "action"),
    [
        # an empty value is filled in place
        ("A=1\nWHATSAPP_VERIFY_TOKEN=\nB=2\n", f"A=1\nWHATSAPP_VERIFY_TOKEN={TOKEN}\nB=2\n", "filled"),
        ('WHATSAPP_VERIFY_TOKEN=""\n', f'WHATSAPP_VERIFY_TOKEN="{TOKEN}"\n', "filled"),
        ("WHATSAPP_VERIFY_TOKEN= # paste it here\n", f"WHATSAPP_VERIFY_TOKEN= {TOKEN} # paste it here\n", "filled"),
        ("WHATSAPP_VERIFY_TOKEN\n", f"WHATSAPP_VERIFY_TOKEN={TOKEN}\n", "filled"),
        # CRLF line endings and a missing final newline are kept
        (
            "# settings\r\n\r\nWHATSAPP_VERIFY_TOKEN=\r\nB='x y'\r\n",
            f"# settings\r\n\r\nWHATSAPP_VERIFY_TOKEN={TOKEN}\r\nB='x y'\r\n",
            "filled",
        ),
        ("A=1\nWHATSAPP_VERIFY_TOKEN=", f"A=1\nWHATSAPP_VERIFY_TOKEN={TOKEN}", "filled"),
        # a byte order mark (some Windows editors write one) stays where it is
        ("\ufeffWHATSAPP_VERIFY_TOKEN=\n", f"\ufeffWHATSAPP_VERIFY_TOKEN={TOKEN}\n", "filled"),
        # an existing value is replaced inside its own syntax: export, quotes, spacing, comment
        (
            "export WHATSAPP_VERIFY_TOKEN=old-token # keep me\n",
            f"export WHATSAPP_VERIFY_TOKEN={TOKEN} # keep me\n",
            "replaced",
        ),
        ("WHATSAPP_VERIFY_TOKEN='old token'\n", f"WHATSAPP_VERIFY_TOKEN='{TOKEN}'\n", "replaced"),
        ('WHATSAPP_VERIFY_TOKEN="old \\" token"  # q\n', f'WHATSAPP_VERIFY_TOKEN="{TOKEN}"  # q\n', "replaced"),
        ("  WHATSAPP_VERIFY_TOKEN = old  \n", f"  WHATSAPP_VERIFY_TOKEN = {TOKEN}  \n", "replaced"),
        # the last assignment is the one dotenv reads, so it is the one edited
        (
            "WHATSAPP_VERIFY_TOKEN=first\nWHATSAPP_VERIFY_TOKEN=second\n",
            f"WHATSAPP_VERIFY_TOKEN=first\nWHATSAPP_VERIFY_TOKEN={TOKEN}\n",
            "replaced",
        ),
        # absent: appended with the file's own line ending
        ("A=1\n", f"A=1\nWHATSAPP_VERIFY_TOKEN={TOKEN}\n", "appended"),
        ("A=1", f"A=1\nWHATSAPP_VERIFY_TOKEN={TOKEN}\n", "appended"),
        ("A=1\r\nB=2\r\n", f"A=1\r\nB=2\r\nWHATSAPP_VERIFY_TOKEN={TOKEN}\r\n", "appended"),
        ("", f"WHATSAPP_VERIFY_TOKEN={TOKEN}\n", "appended"),
        # a commented-out line, and the text inside another variable's quotes, are not assignments
        ("# WHATSAPP_VERIFY_TOKEN=old\n", f"# WHATSAPP_VERIFY_TOKEN=old\nWHATSAPP_VERIFY_TOKEN={TOKEN}\n", "appended"),
        (
            'NOTE="multi\nWHATSAPP_VERIFY_TOKEN=fake\n"\n',
            f'NOTE="multi\nWHATSAPP_VERIFY_TOKEN=fake\n"\nWHATSAPP_VERIFY_TOKEN={TOKEN}\n',
            "appended",
        ),
    ],
)
def test_set_value_changes_only_the_token(before: str, after: str, action: str) -> None:
    edit = set_value(before, KEY, TOKEN)
    assert edit.text == after
    assert edit.action == action
    assert dotenv_values(stream=io.StringIO(edit.text))[KEY] == TOKEN


def test_the_previous_value_is_reported_for_the_question() -> None:
    assert set_value("WHATSAPP_VERIFY_TOKEN='abc'\n", KEY, TOKEN).previous == "abc"
    assert current_value("A=1\n", KEY) is None
    assert current_value("WHATSAPP_VERIFY_TOKEN=\n", KEY) == ""


LINE_VARIANTS = [
    "# a comment",
    "",
    "   ",
    "A=1",
    "export B=two words # comment",
    "C='single # not a comment'",
    'D="double \\" quote"',
    "E=",
    "F = spaced",
    "G=#not-a-comment",
    "# WHATSAPP_VERIFY_TOKEN=commented",
    "WHATSAPP_VERIFY_TOKEN=",
    "WHATSAPP_VERIFY_TOKEN=old",
    "export WHATSAPP_VERIFY_TOKEN='old' # c",
    "ÄÖÜ=ünïcödé",
]
env_texts = st.tuples(
    st.lists(st.tuples(st.sampled_from(LINE_VARIANTS), st.sampled_from(["\n", "\r\n"])), max_size=12),
    st.booleans(),
).map(lambda t: "".join(line + eol for line, eol in t[0]) + ("" if t[1] else "tail=1"))


@given(env_texts)
def test_every_other_line_is_byte_identical(text: str) -> None:
    edit = set_value(text, KEY, TOKEN)
    before, after = text.splitlines(keepends=True), edit.text.splitlines(keepends=True)
    if edit.action == "appended":
        assert edit.text.startswith(text.rstrip("\r\n") if not text.endswith("\n") else text)
        assert after[-1].rstrip("\r\n") == f"{KEY}={TOKEN}"
    else:
        assert len(after) == len(before)
        changed = [i for i, (old, new) in enumerate(zip(before, after, strict=True)) if old != new]
        assert len(changed) == 1
        assert after[changed[0]].endswith(before[changed[0]][len(before[changed[0]].rstrip("\r\n")) :])
    old_values = dotenv_values(stream=io.StringIO(text))
    new_values = dotenv_values(stream=io.StringIO(edit.text))
    assert new_values.pop(KEY) == TOKEN
    old_values.pop(KEY, None)
    assert new_values == old_values


# --- the `wa-devtunnel token` command ------------------------------------------------------


class FakeTerminal(io.StringIO):
    """stdin as a terminal that answers the question with the given line."""

    def isatty(self) -> bool:
        return True


@pytest.fixture
def workdir(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Path]:
    for name in list(os.environ):
        if name.startswith(SETTING_PREFIXES):
            monkeypatch.delenv(name)
    monkeypatch.chdir(tmp_path)
    monkeypatch.setattr("sys.stdin", io.StringIO(""))  # not a terminal unless a test says so
    yield tmp_path


def run(argv: list[str], capsys: pytest.CaptureFixture[str]) -> tuple[int, str, str]:
    code = main(argv)
    out, err = capsys.readouterr()
    return code, out, err


def mode_of(path: Path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


def test_token_prints_a_strong_token(workdir: Path, capsys: pytest.CaptureFixture[str]) -> None:
    code, out, err = run(["token"], capsys)
    again = run(["token"], capsys)[1]
    assert code == 0
    assert TOKEN_RE.fullmatch(out.strip()) and out != again
    assert "--write-env" in err
    assert not (workdir / ".env").exists()


def test_write_env_creates_it_from_the_example(workdir: Path, capsys: pytest.CaptureFixture[str]) -> None:
    example = (REPO_ROOT / ".env.example").read_bytes()
    (workdir / ".env.example").write_bytes(example)
    code, out, err = run(["token", "--write-env"], capsys)
    assert code == 0
    token = out.strip()
    env = workdir / ".env"
    assert env.read_bytes() == example.replace(b"\nWHATSAPP_VERIFY_TOKEN=\n", f"\n{KEY}={token}\n".encode())
    assert mode_of(env) == 0o600
    assert "from" in err and ".env.example" in err and "App Dashboard" in err


def test_write_env_without_an_example_writes_the_packaged_template(
    workdir: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """A pip install has no .env.example: the commented template shipped in the package is used."""
    env = workdir / "config" / "dev.env"
    env.parent.mkdir()
    code, out, err = run(["token", "--write-env", "--env-file", str(env)], capsys)
    assert code == 0
    assert env.read_text(encoding="utf-8") == set_value(env_template(), KEY, out.strip()).text
    assert mode_of(env) == 0o600
    assert "wa-devtunnel's commented template" in err


def test_without_any_template_a_minimal_header_is_written(
    workdir: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    def no_template() -> str:
        raise FileNotFoundError("not in this install")

    monkeypatch.setattr("wa_devtunnel.cli.init.env_template", no_template)
    code, out, err = run(["token", "--write-env"], capsys)
    assert code == 0
    assert (workdir / ".env").read_text(encoding="utf-8") == f"{MINIMAL_HEADER}{KEY}={out.strip()}\n"
    assert "with a minimal header" in err


def test_an_empty_token_line_is_filled_without_asking(workdir: Path, capsys: pytest.CaptureFixture[str]) -> None:
    env = workdir / ".env"
    env.write_bytes(b"# mine\r\nWHATSAPP_APP_SECRET=s3cret\r\nWHATSAPP_VERIFY_TOKEN=\r\nexport X='y'")
    os.chmod(env, 0o640)
    code, out, _ = run(["token", "--write-env"], capsys)
    assert code == 0
    expected = f"# mine\r\nWHATSAPP_APP_SECRET=s3cret\r\nWHATSAPP_VERIFY_TOKEN={out.strip()}\r\nexport X='y'"
    assert env.read_bytes() == expected.encode()
    assert mode_of(env) == 0o600, "it holds secrets: tightened when we write it"


def test_an_existing_token_is_not_replaced_without_a_terminal(
    workdir: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    env = workdir / ".env"
    original = b"WHATSAPP_VERIFY_TOKEN=keep-this-one\n# end\n"
    env.write_bytes(original)
    code, out, err = run(["token", "--write-env"], capsys)
    assert code == 1
    assert out == ""
    assert "--force" in err and "keep-this-one" not in err
    assert env.read_bytes() == original


def test_force_replaces_an_existing_token(workdir: Path, capsys: pytest.CaptureFixture[str]) -> None:
    env = workdir / ".env"
    env.write_bytes(b'A=1\nexport WHATSAPP_VERIFY_TOKEN="old" # dashboard\nB=2')
    code, out, err = run(["token", "--write-env", "--force"], capsys)
    assert code == 0
    assert env.read_bytes() == f'A=1\nexport WHATSAPP_VERIFY_TOKEN="{out.strip()}" # dashboard\nB=2'.encode()
    assert "Replaced" in err


@pytest.mark.parametrize(("answer", "replaced"), [("y\n", True), ("yes\n", True), ("n\n", False), ("\n", False)])
def test_on_a_terminal_it_asks_before_replacing(
    answer: str, replaced: bool, workdir: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    env = workdir / ".env"
    env.write_bytes(b"WHATSAPP_VERIFY_TOKEN=wa-existingtoken123\n")
    monkeypatch.setattr("sys.stdin", FakeTerminal(answer))
    code, out, err = run(["token", "--write-env"], capsys)
    assert "Replace it?" in err and "[y/N]" in err
    assert "wa-existingtoken123" not in err, "the old token is masked in the question"
    assert code == 0, "a no is an answer, not a failure"
    if replaced:
        assert env.read_bytes() == f"WHATSAPP_VERIFY_TOKEN={out.strip()}\n".encode()
    else:
        assert out == ""
        assert "Left .env unchanged." in err
        assert env.read_bytes() == b"WHATSAPP_VERIFY_TOKEN=wa-existingtoken123\n"


def test_token_works_while_the_settings_are_broken(workdir: Path, capsys: pytest.CaptureFixture[str]) -> None:
    env = workdir / ".env"
    env.write_bytes(b"WA_DEVTUNNEL_PORT=eighty\n")
    code, out, _ = run(["token", "--write-env"], capsys)
    assert code == 0
    assert env.read_bytes() == f"WA_DEVTUNNEL_PORT=eighty\nWHATSAPP_VERIFY_TOKEN={out.strip()}\n".encode()


def test_write_options_need_write_env(workdir: Path, capsys: pytest.CaptureFixture[str]) -> None:
    code, _, err = run(["token", "--force"], capsys)
    assert code == 2 and "--write-env" in err


def test_a_file_that_is_not_utf8_is_left_alone(workdir: Path, capsys: pytest.CaptureFixture[str]) -> None:
    env = workdir / ".env"
    env.write_bytes(b"A=\xff\xfe\n")
    code, _, err = run(["token", "--write-env"], capsys)
    assert code == 1 and "not UTF-8" in err
    assert env.read_bytes() == b"A=\xff\xfe\n"


@pytest.mark.parametrize("mode", [0o644, 0o666, 0o604, 0o600, 0o400])
def test_write_env_leaves_an_existing_env_private(
    mode: int, workdir: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    env = workdir / ".env"
    env.write_bytes(b"A=1\n")
    os.chmod(env, mode)
    code, out, err = run(["token", "--write-env"], capsys)
    assert code == 0
    assert env.read_bytes() == f"A=1\n{KEY}={out.strip()}\n".encode()
    assert mode_of(env) == 0o600
    if mode != 0o600:
        assert f"Its mode is now 0600 (was {mode:04o})" in err
    else:
        assert "mode" not in err


def test_write_env_through_a_symlink_tightens_the_real_file(workdir: Path, capsys: pytest.CaptureFixture[str]) -> None:
    real = workdir / "secrets.env"
    real.write_bytes(b"A=1\n")
    os.chmod(real, 0o644)
    (workdir / ".env").symlink_to(real)
    assert run(["token", "--write-env"], capsys)[0] == 0
    assert (workdir / ".env").is_symlink()
    assert mode_of(real) == 0o600


@pytest.mark.skipif(os.geteuid() != 0, reason="only root can write a file that belongs to another user")
def test_root_writing_a_users_env_gives_it_back_to_them(workdir: Path, capsys: pytest.CaptureFixture[str]) -> None:
    env = workdir / ".env"
    env.write_bytes(b"A=1\n")
    os.chmod(env, 0o644)
    os.chown(env, 65534, 65534)
    assert run(["token", "--write-env"], capsys)[0] == 0
    info = env.stat()
    assert (info.st_uid, info.st_gid, stat.S_IMODE(info.st_mode)) == (65534, 65534, 0o600)


# --- the project's kept token: `token` reuses it, and `up` offers it for .env once ----------------------


def kept(workdir: Path) -> str:
    """The token wa-devtunnel keeps for the project (as `up` would, creating it on the first run)."""
    return load_settings({}, environ={}, cwd=workdir).verify_token


def test_write_env_saves_the_projects_kept_token(workdir: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """Meta's dashboard may already have the kept token: writing a different one would break the next handshake."""
    token = kept(workdir)
    (workdir / ".env").write_bytes(b"A=1\n")
    code, out, err = run(["token", "--write-env"], capsys)
    assert code == 0 and out.strip() == token
    assert (workdir / ".env").read_bytes() == f"A=1\n{KEY}={token}\n".encode()
    assert "kept for this project" in err and "nothing changes there" in err
    after = load_settings({}, environ={}, cwd=workdir)
    assert (after.verify_token, after.verify_token_source) == (token, "env-file")


def test_replacing_a_token_in_env_makes_a_new_one(workdir: Path, capsys: pytest.CaptureFixture[str]) -> None:
    token = kept(workdir)
    (workdir / ".env").write_bytes(b"WHATSAPP_VERIFY_TOKEN=wa-old-0123456789abcdef\n")
    code, out, _ = run(["token", "--write-env", "--force"], capsys)
    assert code == 0 and TOKEN_RE.fullmatch(out.strip()) and out.strip() != token


def test_printing_a_token_points_to_the_kept_one(workdir: Path, capsys: pytest.CaptureFixture[str]) -> None:
    token = kept(workdir)
    code, out, err = run(["token"], capsys)
    assert code == 0 and out.strip() != token
    assert f"this project's kept verify token {token[:4]}…{token[-2:]}" in err and token not in err


class Terminal(io.StringIO):
    """A terminal: what the person types is the initial text; what is shown is read back."""

    def isatty(self) -> bool:
        return True


def offer(workdir: Path, typed: str = "", *, terminal: bool = True) -> tuple[str, Settings]:
    settings = load_settings({}, environ={}, cwd=workdir)
    stdin = Terminal(typed) if terminal else io.StringIO(typed)
    stderr = Terminal()
    offer_verify_token(settings, stdin=stdin, stderr=stderr)
    return stderr.getvalue(), settings


@pytest.mark.parametrize("typed", ["\n", "y\n", "Yes\n"])
def test_yes_adds_the_new_token_to_env(workdir: Path, typed: str) -> None:
    (workdir / ".env").write_bytes(b"# mine\r\nA=1\r\n")
    os.chmod(workdir / ".env", 0o600)
    shown, settings = offer(workdir, typed)
    assert f"Verify token {settings.verify_token} was generated for this project" in shown
    assert "Add this verify token to .env so it never changes? [Y/n] " in shown
    assert f"Added {KEY} in .env." in shown
    assert (workdir / ".env").read_bytes() == f"# mine\r\nA=1\r\n{KEY}={settings.verify_token}\r\n".encode()
    after = load_settings({}, environ={}, cwd=workdir)
    assert (after.verify_token, after.verify_token_source) == (settings.verify_token, "env-file")
    assert offer(workdir, "y\n")[0] == "", "nothing to offer once .env has it"


def test_yes_without_env_creates_it_private(workdir: Path) -> None:
    shown, settings = offer(workdir, "\n")
    env = workdir / ".env"
    assert current_value(env.read_text(encoding="utf-8"), KEY) == settings.verify_token
    assert mode_of(env) == 0o600 and "Created .env" in shown


def test_no_is_remembered_and_never_asked_again(workdir: Path) -> None:
    shown, settings = offer(workdir, "n\n")
    assert "not asked again" in shown and "token --write-env" in shown
    assert not (workdir / ".env").exists()
    state = json.loads((workdir / ".wa-devtunnel" / "state.json").read_text(encoding="utf-8"))
    assert state["env_offer_declined"] is True and state["verify_token"] == settings.verify_token
    assert offer(workdir, "y\n")[0] == ""
    assert load_settings({}, environ={}, cwd=workdir).verify_token == settings.verify_token


def test_a_kept_token_not_yet_in_env_is_offered_on_a_later_run(workdir: Path) -> None:
    token = kept(workdir)  # the first run had no terminal (a script): never asked
    shown, _ = offer(workdir, "y\n")
    assert f"Verify token {token} is the one kept for this project" in shown
    assert current_value((workdir / ".env").read_text(encoding="utf-8"), KEY) == token


def test_end_of_input_is_no_answer(workdir: Path) -> None:
    shown, _ = offer(workdir, "")
    assert "[Y/n]" in shown and not (workdir / ".env").exists()
    assert "[Y/n]" in offer(workdir, "")[0], "asked again: nothing was answered"


@pytest.mark.parametrize(("stdin_tty", "stderr_tty"), [(False, True), (True, False), (False, False)])
def test_without_a_person_at_a_terminal_nothing_is_asked(workdir: Path, stdin_tty: bool, stderr_tty: bool) -> None:
    settings = load_settings({}, environ={}, cwd=workdir)
    stdin = Terminal("y\n") if stdin_tty else io.StringIO("y\n")
    stderr = Terminal() if stderr_tty else io.StringIO()
    offer_verify_token(settings, stdin=stdin, stderr=stderr)
    assert stderr.getvalue() == "" and stdin.read() == "y\n"
    assert not (workdir / ".env").exists()


def test_a_token_the_developer_chose_is_never_offered(workdir: Path) -> None:
    settings = load_settings({"verify_token": "wa-chosen-0123456789"}, environ={}, cwd=workdir)
    stderr = Terminal()
    offer_verify_token(settings, stdin=Terminal("y\n"), stderr=stderr)
    assert stderr.getvalue() == ""


def test_a_temporary_token_is_offered_and_a_no_is_not_kept(workdir: Path) -> None:
    os.chmod(workdir, 0o555)
    try:
        shown, settings = offer(workdir, "n\n")
    finally:
        os.chmod(workdir, 0o755)
    assert settings.verify_token_source == "generated"
    assert f"Verify token {settings.verify_token}: cannot keep state in" in shown
    assert "asked again next time" in shown


def test_hostile_paths_and_tokens_are_shown_as_escapes(workdir: Path) -> None:
    settings = load_settings({}, environ={}, cwd=workdir)
    hostile = Settings(
        verify_token="wa-\x1b[2Jtoken",
        verify_token_source="project-state",
        verify_token_new=True,
        state_path=workdir / "evil\x1b]52;c;AAAA\x07" / "state.json",
        env_file=settings.env_file,
    )
    stderr = Terminal()
    offer_verify_token(hostile, stdin=Terminal(""), stderr=stderr)
    shown = stderr.getvalue()
    assert "[Y/n]" in shown and "wa-\\x1b[2Jtoken" in shown
    assert "\x1b" not in shown and "\x07" not in shown


def test_a_skipped_env_line_stops_the_cli_with_file_and_line(workdir: Path, capsys: pytest.CaptureFixture[str]) -> None:
    (workdir / ".env").write_text("WA_DEVTUNNEL_PORT=0\nWHATSAPP_APP_SECRET = 'abc\n", encoding="utf-8")
    code, _, err = run(["sessions"], capsys)
    assert code == 2
    assert f"configuration error: {workdir / '.env'}:2: WHATSAPP_APP_SECRET has a quoted value" in err
    assert "python-dotenv could not parse" not in err, "its own message, without the file, is not repeated"
