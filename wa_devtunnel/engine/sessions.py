"""Recorded sessions as a developer names them: listing a recordings directory and finding a session by name."""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from wa_devtunnel.engine.recording import STAMP_FORMAT, read_recording

SESSION_SUFFIX = ".jsonl"
LATE_ANSWER_KIND = "forward_update"  # the line --ack-first appends when the backend answers (not an exchange)
_STAMP_RE = re.compile(r"^(\d{8}-\d{6})")


class SessionNotFound(LookupError):
    """A typed session name matches no file, or a directory holds no session: bad usage, not a crash."""


@dataclass(frozen=True, slots=True)
class SessionInfo:
    """One line of `wa-devtunnel sessions`: what a recording holds, without opening it by hand."""

    path: Path
    started_at: datetime | None
    exchanges: int
    events: int
    verifies: int
    others: int
    first_at: str
    last_at: str
    size_bytes: int
    problems: int
    # --ack-first: the backend's late answer to an exchange, a line of its own (not an exchange).
    late_answers: int = 0

    @property
    def empty(self) -> bool:
        """Nothing in it at all (an idle run of a version that created the file at start)."""
        return not self.exchanges and not self.late_answers and not self.problems


def _natural_key(path: Path) -> list[Any]:
    """Orders ...-2 before ...-10 and a base name before its collision suffixes."""
    parts = re.split(r"(\d+)", path.stem)
    return [int(part) if index % 2 else part for index, part in enumerate(parts)]


def session_paths(directory: Path) -> list[Path]:
    """Session files in the order they were started; a rolled-over session's `-2`, `-3`... follow it."""
    directory = Path(directory)
    if not directory.is_dir():
        return []
    return sorted((p for p in directory.glob(f"*{SESSION_SUFFIX}") if p.is_file()), key=_natural_key)


def _started_at(path: Path) -> datetime | None:
    match = _STAMP_RE.match(path.name)
    if not match:
        return None
    try:
        return datetime.strptime(match.group(1), STAMP_FORMAT).replace(tzinfo=UTC)
    except ValueError:
        return None


def _session_info(path: Path) -> SessionInfo:
    read = read_recording(path)
    exchanges = [record for record in read.records if record.get("kind") != LATE_ANSWER_KIND]
    kinds = [record.get("kind") for record in exchanges]
    stamps = [r["received_at"] for r in exchanges if isinstance(r.get("received_at"), str)]
    events = kinds.count("event")
    verifies = kinds.count("verify")
    return SessionInfo(
        path=path,
        started_at=_started_at(path),
        exchanges=len(kinds),
        events=events,
        verifies=verifies,
        others=len(kinds) - events - verifies,
        first_at=stamps[0] if stamps else "",
        last_at=stamps[-1] if stamps else "",
        size_bytes=path.stat().st_size,
        problems=len(read.problems),
        late_answers=len(read.records) - len(exchanges),
    )


def list_sessions(directory: Path) -> list[SessionInfo]:
    """Every recording in the directory, oldest first (file names start with the UTC time)."""
    sessions = []
    for path in session_paths(directory):
        try:
            sessions.append(_session_info(path))
        except FileNotFoundError:
            continue
    return sessions


def latest_session(directory: Path) -> Path | None:
    """The most recent recording, which `replay` and `export` use when none is named."""
    paths = session_paths(directory)
    return paths[-1] if paths else None


def find_session(name: str, recordings_dir: Path) -> list[Path]:
    """The session files `name` means, as `replay` and `export` both read it.

    In order: a path (a file, or a directory whose sessions are taken in order), then in the
    recordings directory a file name as `wa-devtunnel sessions` lists it, that name without
    `.jsonl`, or the start of exactly one session's name (`20261126-2231`).
    """
    if not name:
        raise SessionNotFound("an empty name is no session")
    candidates = (Path(name), recordings_dir / name, recordings_dir / f"{name}{SESSION_SUFFIX}")
    found = next((c for c in candidates if c.exists()), None)
    if found is None:
        found = _by_prefix(name, recordings_dir)
    if not found.is_dir():
        return [found]
    sessions = session_paths(found)
    if not sessions:
        raise SessionNotFound(f"no {SESSION_SUFFIX} session in {found}")
    return sessions


def _by_prefix(name: str, recordings_dir: Path) -> Path:
    """The one session whose name starts with `name`; none or several is an error that says which."""
    matches = [p for p in session_paths(recordings_dir) if "/" not in name and p.name.startswith(name)]
    if len(matches) == 1:
        return matches[0]
    if matches:
        shown = ", ".join(p.name for p in matches[:5]) + (", ..." if len(matches) > 5 else "")
        raise SessionNotFound(f"{name} matches {len(matches)} sessions in {recordings_dir} ({shown}): name one")
    raise SessionNotFound(f"no recording {name} (not a file, nor a session in {recordings_dir})")


def find_sessions(names: Sequence[str], recordings_dir: Path) -> list[Path]:
    """Every session file the typed names mean, in the order typed."""
    return [path for name in names for path in find_session(name, recordings_dir)]
