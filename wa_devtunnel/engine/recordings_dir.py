"""Where recordings live: a private directory we may write to, and session files nobody else can read."""

from __future__ import annotations

import contextlib
import errno
import os
import stat
from pathlib import Path

MAX_NAME_ATTEMPTS = 1000
GITIGNORE_TEXT = "# wa-devtunnel: recordings hold customers' messages and phone numbers; never commit them.\n*\n"
_OWNER_WRITE_AND_SEARCH = stat.S_IWUSR | stat.S_IXUSR
_GROUP_AND_OTHERS = 0o077


class RecordingsDirError(OSError):
    """The recordings directory cannot be used as it is; start is refused (exit 2) rather than changing it."""

    def __init__(self, code: int, message: str, directory: Path) -> None:
        super().__init__(code, message)
        self.directory = directory
        self.message = message

    def __str__(self) -> str:
        return self.message


def prepare_recordings_directory(directory: Path) -> str:
    """Create it private (0700, with a `*` .gitignore), or check an existing one without changing it.

    Returns a warning for an existing directory others can enter (the session files themselves are
    0600 either way): its mode is the user's to change, never ours (it may be /tmp or a project folder).
    """
    try:
        directory.mkdir(mode=0o700, parents=True)
        created = True
    except FileExistsError:
        created = False
    except OSError as exc:
        raise _cannot_use(directory, exc, "cannot create") from exc
    try:
        info = directory.stat()
    except OSError as exc:
        raise _cannot_use(directory, exc, "cannot read") from exc
    if not stat.S_ISDIR(info.st_mode):
        raise RecordingsDirError(
            errno.ENOTDIR,
            f"recordings directory {directory} is not a directory; choose one with --recordings-dir",
            directory,
        )
    mode = stat.S_IMODE(info.st_mode)
    if info.st_uid != os.geteuid():
        raise RecordingsDirError(
            errno.EPERM,
            f"recordings directory {directory} belongs to another user (uid {info.st_uid}); recordings hold "
            "customers' messages, so wa-devtunnel only writes them to a directory you own. Choose one with "
            "--recordings-dir (or WA_DEVTUNNEL_RECORDINGS_DIR), or --no-record",
            directory,
        )
    if mode & _OWNER_WRITE_AND_SEARCH != _OWNER_WRITE_AND_SEARCH:
        # As root the kernel would let us write anyway; the missing owner bit is the user's "read-only" intent.
        raise RecordingsDirError(
            errno.EACCES,
            f"recordings directory {directory} is not writable (mode {mode:04o}); wa-devtunnel does not change "
            f"its permissions. Make it writable (chmod 700 {directory}), choose another with --recordings-dir, "
            "or use --no-record",
            directory,
        )
    if created or _holds_only_recordings(directory):
        _drop_gitignore(directory)
    if mode & _GROUP_AND_OTHERS:
        return (
            f"Recordings directory {directory} is open to other users (mode {mode:04o}); the session files are "
            f"private (0600), but their names show. To close it: chmod 700 {directory}"
        )
    return ""


def _cannot_use(directory: Path, exc: OSError, what: str) -> RecordingsDirError:
    reason = exc.strerror or str(exc)
    return RecordingsDirError(
        exc.errno or errno.EIO,
        f"{what} recordings directory {directory}: {reason}; choose another with --recordings-dir, or --no-record",
        directory,
    )


def _holds_only_recordings(directory: Path) -> bool:
    """A .gitignore of `*` is dropped only where it hides recordings, never in a project folder or repository."""
    try:
        names = [entry.name for entry in os.scandir(directory)]
    except OSError:
        return False
    if ".gitignore" in names or ".git" in names:
        return False
    return all(name.endswith(".jsonl") or name.startswith(".") for name in names)


def _drop_gitignore(directory: Path) -> None:
    """Best effort: a recordings directory inside a repository is never committed by accident."""
    flags = os.O_WRONLY | os.O_CREAT | os.O_EXCL | getattr(os, "O_CLOEXEC", 0)
    with contextlib.suppress(OSError):  # an existing one is the user's; a failure here shows when recording
        fd = os.open(directory / ".gitignore", flags, 0o644)
        try:
            os.write(fd, GITIGNORE_TEXT.encode("ascii"))
        finally:
            os.close(fd)


def session_file_path(directory: Path, base: str, number: int) -> Path:
    """`<base>.jsonl` for the first file, `<base>-<number>.jsonl` after it."""
    return directory / (f"{base}.jsonl" if number == 1 else f"{base}-{number}.jsonl")


def free_session_number(directory: Path, base: str, first: int = 1) -> int:
    """The first number whose file does not exist yet: where a session's first line will go."""
    number = first
    while number < first + MAX_NAME_ATTEMPTS and session_file_path(directory, base, number).exists():
        number += 1
    return number


def create_session_file(directory: Path, base: str, first: int = 1) -> tuple[Path, int, int]:
    """O_EXCL guarantees two sessions never share a file; returns (path, fd, number), number 1 = no `-N`."""
    flags = os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_APPEND | getattr(os, "O_CLOEXEC", 0)
    for number in range(first, first + MAX_NAME_ATTEMPTS):
        path = session_file_path(directory, base, number)
        try:
            fd = os.open(path, flags, 0o600)
        except FileExistsError:
            continue
        os.fchmod(fd, 0o600)
        return path, fd, number
    raise FileExistsError(errno.EEXIST, f"no free recording name for {base} in {directory}")
