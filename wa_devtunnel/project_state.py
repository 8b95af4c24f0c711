"""The project's private state file: what wa-devtunnel generated once and must find again after a restart.

`<project>/.wa-devtunnel/state.json` (project: the folder of the .env file), or the folder named by
WA_DEVTUNNEL_STATE_DIR. The folder is 0700 with a `*` .gitignore, the file 0600 and written whole (a
temporary file renamed over it), because it holds the verify token Meta's dashboard was given.
Nothing planted there is followed (symbolic links) or trusted (another user's file); a problem is
reported in words and the caller runs on without the state rather than stopping.
"""

from __future__ import annotations

import contextlib
import errno
import json
import os
import secrets
import stat
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

STATE_DIR_VARIABLE = "WA_DEVTUNNEL_STATE_DIR"
STATE_DIR_NAME = ".wa-devtunnel"
STATE_FILE_NAME = "state.json"
FORMAT_KEY = "format_version"
FORMAT_VERSION = 1
GITIGNORE_TEXT = "# wa-devtunnel: private state (the project's verify token); never commit it.\n*\n"
MAX_STATE_BYTES = 64 * 1024  # a few keys; anything bigger is not our file
_PRIVATE_DIR = 0o700
_PRIVATE_FILE = 0o600
_GROUP_AND_OTHERS = 0o077
_NOFOLLOW = getattr(os, "O_NOFOLLOW", 0)
_CLOEXEC = getattr(os, "O_CLOEXEC", 0)


class StateError(Exception):
    """The state cannot be used as it is; the message says why and what was done instead."""


@dataclass(frozen=True, slots=True)
class ProjectState:
    """What one project keeps between runs; `other` carries keys a newer version wrote, unchanged."""

    verify_token: str | None = None
    env_offer_declined: bool = False
    other: Mapping[str, Any] = field(default_factory=dict)

    def to_json(self) -> str:
        data: dict[str, Any] = {**self.other, FORMAT_KEY: FORMAT_VERSION}
        if self.verify_token is not None:
            data["verify_token"] = self.verify_token
        data["env_offer_declined"] = self.env_offer_declined
        return json.dumps(data, indent=2, sort_keys=True) + "\n"


@dataclass(frozen=True, slots=True)
class StateRead:
    """The state found (None: none, or unusable), whether it may be written, and what to tell the user."""

    state: ProjectState | None
    writable: bool
    warning: str = ""


def state_directory(project: Path, environ: Mapping[str, str] | None = None) -> Path:
    """WA_DEVTUNNEL_STATE_DIR (process environment only) when set, else `<project>/.wa-devtunnel`."""
    override = (os.environ if environ is None else environ).get(STATE_DIR_VARIABLE, "").strip()
    return Path(override) if override else project / STATE_DIR_NAME


def state_file(directory: Path) -> Path:
    return directory / STATE_FILE_NAME


def read_state(directory: Path) -> StateRead:
    """Read without creating anything; a missing file is no state, a damaged one is reported."""
    try:
        dir_fd = _open_directory(directory, create=False)
    except FileNotFoundError:
        return StateRead(None, writable=True)
    except StateError as exc:
        return StateRead(None, writable=False, warning=str(exc))
    try:
        return _read_in(dir_fd, directory)
    finally:
        os.close(dir_fd)


def load_or_create(directory: Path, make_token: Callable[[], str]) -> tuple[ProjectState | None, bool, StateRead]:
    """The kept state, else a new one with `make_token()` saved; returns (state, created now, what was read).

    The state is None when it can neither be read nor written (the caller's token is then temporary).
    Two processes starting at once agree: the file is created by a hard link, which fails if it exists.
    """
    try:
        dir_fd = _open_directory(directory, create=True)
    except StateError as exc:
        return None, False, StateRead(None, writable=False, warning=str(exc))
    try:
        found = _read_in(dir_fd, directory)
        if found.state is not None and found.state.verify_token is not None:
            return found.state, False, found
        if not found.writable:
            return None, False, found
        state = replace(found.state or ProjectState(), verify_token=make_token())
        try:
            if found.state is None and not found.warning:
                created = _create_new(dir_fd, state.to_json())
                if not created:  # another run created it first: use its token
                    again = _read_in(dir_fd, directory)
                    if again.state is not None and again.state.verify_token is not None:
                        return again.state, False, again
                    return None, False, again
            else:
                _replace(dir_fd, state.to_json())
        except OSError as exc:
            return None, False, StateRead(None, False, _cannot_write(directory, exc))
        return state, True, found
    finally:
        os.close(dir_fd)


def save_state(directory: Path, state: ProjectState) -> None:
    """Write the whole state (a "no" to a question, say); raises StateError with the reason."""
    dir_fd = _open_directory(directory, create=True)
    try:
        found = _read_in(dir_fd, directory)
        if not found.writable:
            raise StateError(found.warning or f"{state_file(directory)} cannot be written")
        try:
            _replace(dir_fd, state.to_json())
        except OSError as exc:
            raise StateError(_cannot_write(directory, exc)) from exc
    finally:
        os.close(dir_fd)


# --- the directory -------------------------------------------------------------------------


def _open_directory(directory: Path, *, create: bool) -> int:
    """A descriptor of the state folder, made private; `.wa-devtunnel` itself must not be a link."""
    ours = directory.name == STATE_DIR_NAME  # our own folder: made private; a chosen one is left as it is
    created = False
    if create:
        parent = directory.parent
        try:
            if not directory.exists() and not _owner_may_write(parent):
                raise StateError(_cannot_write(directory, PermissionError(errno.EACCES, "the folder is read-only")))
            directory.mkdir(mode=_PRIVATE_DIR, parents=not ours)
            created = True
        except FileExistsError:
            pass
        except OSError as exc:
            raise StateError(_cannot_write(directory, exc)) from exc
    try:
        info = os.lstat(directory)
    except FileNotFoundError:
        raise
    except OSError as exc:
        raise StateError(f"cannot read {directory}: {exc.strerror or exc}") from exc
    if stat.S_ISLNK(info.st_mode) and ours:
        raise StateError(f"{directory} is a symbolic link; wa-devtunnel keeps its state only in a real folder")
    try:
        dir_fd = os.open(directory, os.O_RDONLY | getattr(os, "O_DIRECTORY", 0) | _CLOEXEC)
    except OSError as exc:
        raise StateError(f"cannot open {directory}: {exc.strerror or exc}") from exc
    try:
        info = os.fstat(dir_fd)
        if info.st_uid != os.geteuid():
            raise StateError(
                f"{directory} belongs to another user (uid {info.st_uid}); wa-devtunnel keeps its state only "
                "in a folder you own"
            )
        if (ours or created) and stat.S_IMODE(info.st_mode) & _GROUP_AND_OTHERS:
            with contextlib.suppress(OSError):
                os.fchmod(dir_fd, _PRIVATE_DIR)
        if created or ours:
            _drop_gitignore(dir_fd)
    except BaseException:
        os.close(dir_fd)
        raise
    return dir_fd


def _owner_may_write(folder: Path) -> bool:
    """As recordings do: a folder without its owner's write bit is read-only by intent, even for root."""
    try:
        info = folder.stat()
    except OSError:
        return True  # mkdir reports the real reason
    if not os.access(folder, os.W_OK | os.X_OK):
        return False
    return info.st_uid != os.geteuid() or bool(info.st_mode & stat.S_IWUSR)


def _drop_gitignore(dir_fd: int) -> None:
    """Best effort: a state folder inside a repository is never committed by accident."""
    flags = os.O_WRONLY | os.O_CREAT | os.O_EXCL | _NOFOLLOW | _CLOEXEC
    with contextlib.suppress(OSError):  # an existing one is left as it is
        fd = os.open(".gitignore", flags, 0o644, dir_fd=dir_fd)
        try:
            os.write(fd, GITIGNORE_TEXT.encode("ascii"))
        finally:
            os.close(fd)


# --- the file ------------------------------------------------------------------------------


def _read_in(dir_fd: int, directory: Path) -> StateRead:
    """The state file in an open folder: never through a link, never another user's, never readable by others."""
    path = state_file(directory)
    try:
        fd = os.open(STATE_FILE_NAME, os.O_RDONLY | _NOFOLLOW | _CLOEXEC, dir_fd=dir_fd)
    except FileNotFoundError:
        return StateRead(None, writable=True)
    except OSError as exc:
        if exc.errno == errno.ELOOP or _is_link(dir_fd):
            return StateRead(
                None, False, f"{path} is a symbolic link; wa-devtunnel does not follow it (delete it to start afresh)"
            )
        return StateRead(None, False, f"cannot read {path}: {exc.strerror or exc}; it was left as it is")
    try:
        info = os.fstat(fd)
        if not stat.S_ISREG(info.st_mode):
            return StateRead(None, False, f"{path} is not a regular file; it was left as it is")
        if info.st_uid != os.geteuid():
            return StateRead(
                None, False, f"{path} belongs to another user (uid {info.st_uid}); wa-devtunnel does not use it"
            )
        warning = ""
        mode = stat.S_IMODE(info.st_mode)
        if mode & _GROUP_AND_OTHERS:
            try:
                os.fchmod(fd, _PRIVATE_FILE)
                warning = f"{path} was readable by others (mode {mode:04o}); its mode is now 0600"
            except OSError as exc:
                return StateRead(None, False, f"{path} is readable by others and cannot be made private: {exc}")
        raw = os.read(fd, MAX_STATE_BYTES + 1)
    except OSError as exc:
        return StateRead(None, False, f"cannot read {path}: {exc.strerror or exc}; it was left as it is")
    finally:
        os.close(fd)
    state, problem = _parse(raw)
    if problem:
        return StateRead(None, writable=True, warning=f"{path} is damaged ({problem}); a new one replaces it")
    if state is not None and state.other.get(FORMAT_KEY, FORMAT_VERSION) != FORMAT_VERSION:
        newer = f"{path} was written by a newer wa-devtunnel (format {state.other[FORMAT_KEY]}); it is only read"
        return StateRead(state, writable=False, warning=_joined(warning, newer))
    return StateRead(state, writable=True, warning=warning)


def _is_link(dir_fd: int) -> bool:
    try:
        return stat.S_ISLNK(os.lstat(STATE_FILE_NAME, dir_fd=dir_fd).st_mode)
    except OSError:
        return False


def _parse(raw: bytes) -> tuple[ProjectState | None, str]:
    """Our JSON, or the reason it is not (the caller replaces what is not ours to read)."""
    if len(raw) > MAX_STATE_BYTES:
        return None, f"larger than {MAX_STATE_BYTES} bytes"
    try:
        data = json.loads(raw.decode("utf-8"))
    except (UnicodeDecodeError, ValueError):
        return None, "not JSON"
    if not isinstance(data, dict):
        return None, "not a JSON object"
    version = data.get(FORMAT_KEY)
    if not isinstance(version, int) or isinstance(version, bool) or version < 1:
        return None, f"no {FORMAT_KEY}"
    token = data.get("verify_token")
    if token is not None and not (isinstance(token, str) and token and token == token.strip()):
        return None, "the verify token is not a token"
    declined = data.get("env_offer_declined", False)
    other = {k: v for k, v in data.items() if k not in ("verify_token", "env_offer_declined")}
    if version > FORMAT_VERSION:
        return ProjectState(token, declined is True, other), ""
    other.pop(FORMAT_KEY)
    return ProjectState(token, declined is True, other), ""


def _joined(*parts: str) -> str:
    return "; ".join(p for p in parts if p)


def _write_temporary(dir_fd: int, text: str) -> str:
    """A private temporary file beside the state file, flushed to disk; returns its name."""
    flags = os.O_WRONLY | os.O_CREAT | os.O_EXCL | _NOFOLLOW | _CLOEXEC
    name = f".{STATE_FILE_NAME}.{secrets.token_hex(6)}.tmp"
    fd = os.open(name, flags, _PRIVATE_FILE, dir_fd=dir_fd)
    try:
        os.fchmod(fd, _PRIVATE_FILE)
        os.write(fd, text.encode("utf-8"))
        os.fsync(fd)
    except BaseException:
        os.close(fd)
        with contextlib.suppress(OSError):
            os.unlink(name, dir_fd=dir_fd)
        raise
    os.close(fd)
    return name


def _replace(dir_fd: int, text: str) -> None:
    """Rename a whole new copy over the file: a crash leaves the old state or the new, never half."""
    name = _write_temporary(dir_fd, text)
    try:
        os.replace(name, STATE_FILE_NAME, src_dir_fd=dir_fd, dst_dir_fd=dir_fd)
    except BaseException:
        with contextlib.suppress(OSError):
            os.unlink(name, dir_fd=dir_fd)
        raise
    with contextlib.suppress(OSError):
        os.fsync(dir_fd)


def _create_new(dir_fd: int, text: str) -> bool:
    """Create the file only if it does not exist yet (False: another run was first)."""
    name = _write_temporary(dir_fd, text)
    try:
        os.link(name, STATE_FILE_NAME, src_dir_fd=dir_fd, dst_dir_fd=dir_fd, follow_symlinks=False)
    except FileExistsError:
        return False
    except OSError as exc:
        if exc.errno not in (errno.EPERM, errno.ENOTSUP, errno.EOPNOTSUPP, errno.EXDEV):
            raise
        os.replace(name, STATE_FILE_NAME, src_dir_fd=dir_fd, dst_dir_fd=dir_fd)  # no hard links here
        return True
    finally:
        with contextlib.suppress(OSError):
            os.unlink(name, dir_fd=dir_fd)
    with contextlib.suppress(OSError):
        os.fsync(dir_fd)
    return True


def _cannot_write(directory: Path, exc: OSError) -> str:
    reason = exc.strerror or str(exc)
    return f"cannot keep state in {directory}: {reason}"
