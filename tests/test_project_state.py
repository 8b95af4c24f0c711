"""The project state file: the generated verify token kept between runs, privately, and never through a trap."""

from __future__ import annotations

import json
import os
import re
import stat
from pathlib import Path

import pytest

from tests.support.cli_process import running_cli
from wa_devtunnel import project_state
from wa_devtunnel.project_state import (
    FORMAT_VERSION,
    STATE_DIR_NAME,
    STATE_DIR_VARIABLE,
    ProjectState,
    StateError,
    load_or_create,
    read_state,
    save_state,
)
from wa_devtunnel.settings import load_settings

TOKEN_LINE = re.compile(r"^Verify token: (\S+)$", re.MULTILINE)


@pytest.fixture
def project(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A project folder whose state lives where it would for a developer: `<project>/.wa-devtunnel`."""
    monkeypatch.delenv(STATE_DIR_VARIABLE)
    folder = tmp_path / "bot"
    folder.mkdir()
    return folder


def mode_of(path: Path) -> int:
    return stat.S_IMODE(path.lstat().st_mode)


def state_json(project: Path) -> dict[str, object]:
    return json.loads((project / STATE_DIR_NAME / "state.json").read_text(encoding="utf-8"))


def test_the_first_run_keeps_a_new_token_privately(project: Path) -> None:
    settings = load_settings({}, environ={}, cwd=project)
    folder = project / STATE_DIR_NAME
    assert (settings.verify_token_source, settings.verify_token_new) == ("project-state", True)
    assert settings.state_path == folder / "state.json"
    assert settings.state_warning == ""
    assert mode_of(folder) == 0o700
    assert mode_of(folder / "state.json") == 0o600
    assert (folder / ".gitignore").read_text(encoding="ascii").splitlines()[-1] == "*"
    assert state_json(project) == {
        "format_version": FORMAT_VERSION,
        "verify_token": settings.verify_token,
        "env_offer_declined": False,
    }
    assert sorted(p.name for p in folder.iterdir()) == [".gitignore", "state.json"], "no temporary file left"


def test_a_restart_in_the_same_project_shows_the_same_token(project: Path, tmp_path: Path) -> None:
    first = load_settings({}, environ={}, cwd=project)
    second = load_settings({}, environ={}, cwd=project)
    assert second.verify_token == first.verify_token
    assert (second.verify_token_source, second.verify_token_new, second.verify_token_generated) == (
        "project-state",
        False,
        True,
    )
    elsewhere = tmp_path / "other-bot"
    elsewhere.mkdir()
    assert load_settings({}, environ={}, cwd=elsewhere).verify_token != first.verify_token, "one token per project"


def test_the_project_is_the_folder_of_the_env_file(project: Path, tmp_path: Path) -> None:
    env = project / "config" / "dev.env"
    env.parent.mkdir()
    env.write_text("WA_DEVTUNNEL_PORT=9000\n", encoding="utf-8")
    settings = load_settings({"env_file": env}, environ={}, cwd=tmp_path)
    assert settings.state_path == env.parent / STATE_DIR_NAME / "state.json"


def test_the_state_folder_can_be_chosen(project: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    chosen = tmp_path / "somewhere" / "state"
    monkeypatch.setenv(STATE_DIR_VARIABLE, str(chosen))
    settings = load_settings({}, environ={}, cwd=project)
    assert settings.state_path == chosen / "state.json"
    assert not (project / STATE_DIR_NAME).exists()
    assert mode_of(chosen) == 0o700 and (chosen / ".gitignore").is_file()


def test_a_token_from_any_setting_leaves_the_state_alone(project: Path) -> None:
    settings = load_settings({"verify_token": "wa-from-the-flag-0123456789"}, environ={}, cwd=project)
    assert (settings.verify_token_source, settings.state_path, settings.verify_token_generated) == (
        "flag",
        None,
        False,
    )
    assert not (project / STATE_DIR_NAME).exists()


def test_a_damaged_file_is_reported_and_replaced(project: Path) -> None:
    folder = project / STATE_DIR_NAME
    folder.mkdir(mode=0o700)
    (folder / "state.json").write_text('{"verify_token": "wa-half', encoding="utf-8")
    os.chmod(folder / "state.json", 0o600)
    settings = load_settings({}, environ={}, cwd=project)
    assert "is damaged (not JSON)" in settings.state_warning and "a new one replaces it" in settings.state_warning
    assert (settings.verify_token_source, settings.verify_token_new) == ("project-state", True)
    assert state_json(project)["verify_token"] == settings.verify_token
    again = load_settings({}, environ={}, cwd=project)
    assert (again.verify_token, again.state_warning) == (settings.verify_token, "")


@pytest.mark.parametrize(
    ("text", "problem"),
    [
        ("[1, 2]", "not a JSON object"),
        ('{"verify_token": "wa-abc"}', "no format_version"),
        ('{"format_version": 1, "verify_token": " padded "}', "the verify token is not a token"),
        ("\xff", "not JSON"),
    ],
)
def test_what_is_not_our_json_is_damaged(project: Path, text: str, problem: str) -> None:
    folder = project / STATE_DIR_NAME
    folder.mkdir(mode=0o700)
    (folder / "state.json").write_bytes(text.encode("latin-1"))
    os.chmod(folder / "state.json", 0o600)
    assert f"damaged ({problem})" in read_state(folder).warning


def test_our_json_is_read_as_it_is_and_unknown_keys_survive(project: Path) -> None:
    folder = project / STATE_DIR_NAME
    folder.mkdir(mode=0o700)
    text = '{"format_version": 1, "verify_token": "wa-kept-0123456789abcdef", "later": [1]}'
    (folder / "state.json").write_text(text, encoding="utf-8")
    os.chmod(folder / "state.json", 0o600)
    settings = load_settings({}, environ={}, cwd=project)
    assert (settings.verify_token, settings.verify_token_new, settings.state_warning) == (
        "wa-kept-0123456789abcdef",
        False,
        "",
    )
    found = read_state(folder).state
    assert found is not None
    save_state(folder, ProjectState(found.verify_token, True, found.other))
    assert state_json(project) == {
        "format_version": 1,
        "verify_token": "wa-kept-0123456789abcdef",
        "env_offer_declined": True,
        "later": [1],
    }


def test_a_newer_format_is_used_but_never_rewritten(project: Path) -> None:
    folder = project / STATE_DIR_NAME
    folder.mkdir(mode=0o700)
    text = '{"format_version": 99, "verify_token": "wa-from-the-future-0123"}'
    (folder / "state.json").write_text(text, encoding="utf-8")
    os.chmod(folder / "state.json", 0o600)
    settings = load_settings({}, environ={}, cwd=project)
    assert settings.verify_token == "wa-from-the-future-0123"
    assert "newer wa-devtunnel" in settings.state_warning
    with pytest.raises(StateError):
        save_state(folder, ProjectState("wa-other", True))
    assert (folder / "state.json").read_text(encoding="utf-8") == text


def test_something_else_in_its_place_is_left_alone_and_the_token_is_temporary(project: Path) -> None:
    folder = project / STATE_DIR_NAME
    (folder / "state.json").mkdir(parents=True)
    settings = load_settings({}, environ={}, cwd=project)
    assert (settings.verify_token_source, settings.state_path, settings.verify_token_new) == ("generated", None, True)
    assert "not a regular file" in settings.state_warning
    assert "new for this run only" in settings.state_warning
    assert (folder / "state.json").is_dir()


def test_a_planted_symlink_is_never_followed(project: Path, tmp_path: Path) -> None:
    victim = tmp_path / "victim.json"
    planted = '{"format_version": 1, "verify_token": "wa-planted-by-someone-else"}'
    victim.write_text(planted, encoding="utf-8")
    os.chmod(victim, 0o644)
    folder = project / STATE_DIR_NAME
    folder.mkdir(mode=0o700)
    (folder / "state.json").symlink_to(victim)
    settings = load_settings({}, environ={}, cwd=project)
    assert settings.verify_token != "wa-planted-by-someone-else"
    assert settings.verify_token_source == "generated"
    assert "symbolic link" in settings.state_warning
    assert victim.read_text(encoding="utf-8") == planted and mode_of(victim) == 0o644, "not written, not chmod-ed"
    assert (folder / "state.json").is_symlink()


def test_a_planted_symlink_for_the_folder_is_refused(project: Path, tmp_path: Path) -> None:
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    (project / STATE_DIR_NAME).symlink_to(elsewhere)
    settings = load_settings({}, environ={}, cwd=project)
    assert settings.verify_token_source == "generated"
    assert "symbolic link" in settings.state_warning
    assert list(elsewhere.iterdir()) == []


def test_a_state_file_readable_by_others_is_made_private(project: Path) -> None:
    first = load_settings({}, environ={}, cwd=project)
    state = project / STATE_DIR_NAME / "state.json"
    os.chmod(state, 0o644)
    os.chmod(state.parent, 0o755)
    again = load_settings({}, environ={}, cwd=project)
    assert again.verify_token == first.verify_token
    assert "was readable by others (mode 0644); its mode is now 0600" in again.state_warning
    assert (mode_of(state), mode_of(state.parent)) == (0o600, 0o700)


@pytest.mark.skipif(os.geteuid() != 0, reason="only root can make a file that belongs to another user")
def test_another_users_state_file_is_not_used(project: Path) -> None:
    first = load_settings({}, environ={}, cwd=project)
    state = project / STATE_DIR_NAME / "state.json"
    os.chown(state, 65534, 65534)
    again = load_settings({}, environ={}, cwd=project)
    assert again.verify_token != first.verify_token
    assert again.verify_token_source == "generated"
    assert "belongs to another user (uid 65534)" in again.state_warning


def test_a_read_only_project_gets_a_temporary_token_and_says_so(project: Path) -> None:
    os.chmod(project, 0o555)
    try:
        first = load_settings({}, environ={}, cwd=project)
        second = load_settings({}, environ={}, cwd=project)
    finally:
        os.chmod(project, 0o755)
    assert (first.verify_token_source, first.state_path, first.verify_token_new) == ("generated", None, True)
    assert first.verify_token_generated
    assert f"cannot keep state in {project / STATE_DIR_NAME}" in first.state_warning
    assert "the verify token is new for this run only (set WHATSAPP_VERIFY_TOKEN in .env" in first.state_warning
    assert second.verify_token != first.verify_token
    assert not (project / STATE_DIR_NAME).exists()


def test_a_failed_write_leaves_the_old_state_whole(project: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    first = load_settings({}, environ={}, cwd=project)
    folder = project / STATE_DIR_NAME
    before = (folder / "state.json").read_bytes()

    def crash(*args: object, **kwargs: object) -> None:
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(project_state.os, "replace", crash)
    with pytest.raises(StateError, match="No space left on device"):
        save_state(folder, ProjectState(first.verify_token, env_offer_declined=True))
    assert (folder / "state.json").read_bytes() == before
    assert sorted(p.name for p in folder.iterdir()) == [".gitignore", "state.json"]


def test_two_first_runs_at_once_agree_on_one_token(project: Path) -> None:
    """The second to create the file takes the first one's token instead of overwriting it."""
    folder = project / STATE_DIR_NAME

    def slow_token() -> str:  # meanwhile another run creates the file
        assert load_or_create(folder, lambda: "wa-the-first-run-0123456789")[1]
        return "wa-the-second-run-0123456789"

    state, created, _ = load_or_create(folder, slow_token)
    assert state is not None and (state.verify_token, created) == ("wa-the-first-run-0123456789", False)
    assert state_json(project)["verify_token"] == "wa-the-first-run-0123456789"


def test_headless_restarts_show_the_same_verify_token(tmp_path: Path) -> None:
    """The real CLI twice in one project folder (no token anywhere): the line to paste into Meta is the same."""
    lines = []
    for _ in range(2):
        with running_cli(tmp_path, env_lines=[]) as cli:
            pass
        match = TOKEN_LINE.search(cli.stdout())
        assert match, cli.stdout()
        lines.append(match.group(0))
    assert lines[0] == lines[1]
    kept = json.loads((tmp_path / STATE_DIR_NAME / "state.json").read_text(encoding="utf-8"))["verify_token"]
    assert lines[0] == f"Verify token: {kept}"
