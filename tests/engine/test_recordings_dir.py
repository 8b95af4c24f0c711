"""Recordings stay private: a directory we create is 0700 and git-ignored; one we may not use is refused, unchanged."""

from __future__ import annotations

import errno
import os
import stat
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path

import pytest

from wa_devtunnel.cli.main import main
from wa_devtunnel.engine.recording import SessionRecorder
from wa_devtunnel.engine.recordings_dir import GITIGNORE_TEXT, RecordingsDirError

STARTED = datetime(2026, 11, 26, 21, 55, 0, tzinfo=UTC)
NOBODY = 65534


def mode_of(path: Path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


def start(directory: Path) -> SessionRecorder:
    recorder = SessionRecorder(directory, now=lambda: STARTED)
    recorder.close()
    return recorder


def test_a_directory_we_create_is_private_and_git_ignored(tmp_path: Path) -> None:
    directory = tmp_path / "project" / "recordings"
    start(directory)
    assert mode_of(directory) == 0o700
    ignore = directory / ".gitignore"
    assert ignore.read_text() == GITIGNORE_TEXT
    assert "*" in ignore.read_text().splitlines()


def test_an_existing_gitignore_is_left_alone(tmp_path: Path) -> None:
    directory = tmp_path / "recordings"
    directory.mkdir(mode=0o700)
    (directory / ".gitignore").write_text("mine\n")
    start(directory)
    assert (directory / ".gitignore").read_text() == "mine\n"


def test_an_existing_directory_of_recordings_gets_one(tmp_path: Path) -> None:
    directory = tmp_path / "recordings"
    directory.mkdir(mode=0o700)
    (directory / ".gitkeep").touch()
    (directory / "20261125-100000.jsonl").touch()
    start(directory)
    assert (directory / ".gitignore").read_text() == GITIGNORE_TEXT


@pytest.mark.parametrize("other", ["README.md", ".git"])
def test_a_project_folder_or_repository_gets_no_gitignore(tmp_path: Path, other: str) -> None:
    """`--recordings-dir .` must not hide a whole project from git."""
    (tmp_path / other).mkdir()
    tmp_path.chmod(0o700)
    start(tmp_path)
    assert not (tmp_path / ".gitignore").exists()


@pytest.mark.parametrize("before", [0o755, 0o750, 0o777, 0o770, 0o1777])
def test_an_existing_directory_open_to_others_is_left_alone_with_a_warning(tmp_path: Path, before: int) -> None:
    """It may be /tmp (sticky, shared) or a project folder: its mode is the user's; the files are 0600 anyway."""
    directory = tmp_path / "recordings"
    directory.mkdir()
    directory.chmod(before)
    with SessionRecorder(directory) as recorder:
        assert f"chmod 700 {directory}" in recorder.directory_warning
        recorder.append({"v": 1, "id": "a", "seq": 1, "kind": "event"})
        assert stat.S_IMODE(recorder.path.stat().st_mode) == 0o600
    assert stat.S_IMODE(directory.stat().st_mode) == before


def test_a_directory_we_create_is_private_and_quiet(tmp_path: Path) -> None:
    with SessionRecorder(tmp_path / "new" / "recordings") as recorder:
        assert recorder.directory_warning == ""
    assert mode_of(tmp_path / "new" / "recordings") == 0o700


@pytest.mark.parametrize("mode", [0o500, 0o555, 0o400, 0o600])
def test_a_directory_the_owner_made_read_only_is_refused_unchanged(tmp_path: Path, mode: int) -> None:
    """Root could write anyway: the owner's missing write/search bit is respected as the user's intent."""
    directory = tmp_path / "recordings"
    directory.mkdir()
    directory.chmod(mode)
    try:
        with pytest.raises(RecordingsDirError) as refused:
            start(directory)
        assert mode_of(directory) == mode, "never silently chmod-ed back"
        assert list(directory.iterdir()) == []
    finally:
        directory.chmod(0o700)
    message = str(refused.value)
    assert refused.value.errno == errno.EACCES
    assert refused.value.strerror == message, "the CLI prints strerror"
    assert f"{directory} is not writable (mode {mode:04o})" in message
    assert "--recordings-dir" in message and "--no-record" in message
    assert isinstance(refused.value, OSError)


@pytest.mark.skipif(os.geteuid() != 0, reason="only root can give a directory to another user")
def test_a_directory_of_another_user_is_refused_unchanged(tmp_path: Path) -> None:
    directory = tmp_path / "recordings"
    directory.mkdir()
    directory.chmod(0o755)
    os.chown(directory, NOBODY, NOBODY)
    with pytest.raises(RecordingsDirError, match="belongs to another user") as refused:
        start(directory)
    assert refused.value.errno == errno.EPERM
    assert mode_of(directory) == 0o755
    assert list(directory.iterdir()) == []


def test_a_file_in_the_way_is_refused(tmp_path: Path) -> None:
    (tmp_path / "recordings").write_text("")
    with pytest.raises(RecordingsDirError, match="is not a directory"):
        start(tmp_path / "recordings")
    with pytest.raises(RecordingsDirError, match="cannot create recordings directory"):
        start(tmp_path / "recordings" / "inside")


SETTING_PREFIXES = ("WHATSAPP_", "WA_DEVTUNNEL_", "NGROK_", "META_", "PYNGROK_")


@pytest.fixture
def workdir(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Path]:
    for name in list(os.environ):
        if name.startswith(SETTING_PREFIXES):
            monkeypatch.delenv(name)
    monkeypatch.chdir(tmp_path)
    yield tmp_path


def test_up_refuses_a_read_only_recordings_dir_with_exit_2(workdir: Path, capsys: pytest.CaptureFixture[str]) -> None:
    directory = workdir / "rec"
    directory.mkdir()
    directory.chmod(0o500)
    try:
        code = main(["--headless", "--tunnel", "none", "--port", "0", "--recordings-dir", "rec"])
    finally:
        mode = mode_of(directory)
        directory.chmod(0o700)
    err = capsys.readouterr().err
    assert code == 2
    assert mode == 0o500
    assert "Traceback" not in err
    assert "rec is not writable (mode 0500)" in err
