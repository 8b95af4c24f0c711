"""Session recordings: one JSON line per exchange, written so nothing acknowledged is lost."""

from __future__ import annotations

import base64
import binascii
import json
import os
import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import orjson

RECORDING_VERSION = 1

_STAMP_FORMAT = "%Y%m%d-%H%M%S"
_STAMP_RE = re.compile(r"^(\d{8}-\d{6})")
_SUFFIX_RE = re.compile(r"^[A-Za-z0-9_.-]*$")
_MAX_NAME_ATTEMPTS = 1000


class SessionRecorder:
    """Appends exchanges to one session file; each line survives kill -9 once append returns."""

    def __init__(
        self,
        directory: Path,
        *,
        suffix: str = "",
        now: Callable[[], datetime] | None = None,
    ) -> None:
        if not _SUFFIX_RE.match(suffix) or suffix.startswith("."):
            raise ValueError(f"recording suffix {suffix!r} may only use letters, digits, '_-.'")
        directory = Path(directory)
        _make_private_directory(directory)
        started = (now or _utc_now)()
        if started.tzinfo is not None:
            started = started.astimezone(UTC)
        self.started_at = started
        stamp = started.strftime(_STAMP_FORMAT)
        self.path, self._fd = _create_session_file(directory, stamp, suffix)
        self._seq = 0
        self._size = 0

    def next_seq(self) -> int:
        """Hands out 1, 2, 3 ... so every record in the file has its own sequence number."""
        self._seq += 1
        return self._seq

    def append(self, record: dict[str, Any]) -> int:
        """Writes the record as one line with one write(2); returns its byte offset for later lookup."""
        if self._fd is None:
            raise ValueError(f"recording {self.path} is closed")
        data = _encode_line(record)
        offset = self._size
        written = os.write(self._fd, data)
        if written < len(data):  # a short write (disk full, signal): finish the line
            view = memoryview(data)[written:]
            while view:
                view = view[os.write(self._fd, view) :]
        self._size += len(data)
        return offset

    def close(self) -> None:
        """Flushes the file to disk once at the end; calling it again does nothing."""
        fd, self._fd = self._fd, None
        if fd is None:
            return
        try:
            os.fsync(fd)
        finally:
            os.close(fd)

    @property
    def closed(self) -> bool:
        return self._fd is None

    def __enter__(self) -> SessionRecorder:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()


def _utc_now() -> datetime:
    return datetime.now(UTC)


def _make_private_directory(directory: Path) -> None:
    """Recordings hold customers' messages, so only the owner may list or read them."""
    directory.mkdir(mode=0o700, parents=True, exist_ok=True)
    info = directory.stat()
    if info.st_uid == os.geteuid() and info.st_mode & 0o777 != 0o700:
        directory.chmod(0o700)


def _create_session_file(directory: Path, stamp: str, suffix: str) -> tuple[Path, int]:
    """O_EXCL guarantees two sessions started in the same second never share a file."""
    base = f"{stamp}-{suffix}" if suffix else stamp
    flags = os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_APPEND | getattr(os, "O_CLOEXEC", 0)
    for attempt in range(1, _MAX_NAME_ATTEMPTS + 1):
        path = directory / (f"{base}.jsonl" if attempt == 1 else f"{base}-{attempt}.jsonl")
        try:
            fd = os.open(path, flags, 0o600)
        except FileExistsError:
            continue
        os.fchmod(fd, 0o600)
        return path, fd
    raise FileExistsError(f"no free recording name for {base} in {directory}")


def _encode_line(record: Mapping[str, Any]) -> bytes:
    """Raw UTF-8 keeps lines readable; lone surrogates (from odd headers) fall back to escapes."""
    try:
        # orjson writes the same compact raw-UTF-8 JSON in a fraction of the time (this runs per request).
        return orjson.dumps(record, option=orjson.OPT_APPEND_NEWLINE)
    except orjson.JSONEncodeError:
        pass  # lone surrogates, ints beyond 64 bits, non-str keys...: the standard library handles them
    try:
        text = json.dumps(record, ensure_ascii=False, separators=(",", ":"))
        return (text + "\n").encode("utf-8")
    except UnicodeEncodeError:
        text = json.dumps(record, ensure_ascii=True, separators=(",", ":"))
        return (text + "\n").encode("ascii")


def encode_body(body: bytes) -> dict[str, str]:
    """Keeps the exact bytes: text when it is valid UTF-8 (readable), base64 otherwise."""
    try:
        return {"body": body.decode("utf-8")}
    except UnicodeDecodeError:
        return {"body_b64": base64.b64encode(body).decode("ascii")}


def request_body(request: Mapping[str, Any]) -> bytes:
    """Gives back the bytes Meta sent, so a recorded signature still verifies over them."""
    if "body" in request:
        text = request["body"]
        if not isinstance(text, str):
            raise ValueError(f"request.body is {type(text).__name__}, expected a string")
        try:
            return text.encode("utf-8")
        except UnicodeEncodeError as exc:
            raise ValueError(f"request.body is not encodable as UTF-8: {exc}") from exc
    if "body_b64" in request:
        encoded = request["body_b64"]
        if not isinstance(encoded, str):
            raise ValueError(f"request.body_b64 is {type(encoded).__name__}, expected a string")
        try:
            return base64.b64decode(encoded, validate=True)
        except (binascii.Error, ValueError) as exc:
            raise ValueError(f"request.body_b64 is not valid base64: {exc}") from exc
    return b""


@dataclass(frozen=True, slots=True)
class RecordingRead:
    """What could be salvaged from a file, plus what was skipped and why."""

    path: Path
    records: tuple[dict[str, Any], ...]
    problems: tuple[str, ...]


def read_recording(path: Path) -> RecordingRead:
    """Reads every intact line; a damaged file yields what it can instead of an exception."""
    path = Path(path)
    data = path.read_bytes()
    lines = data.split(b"\n")
    last_complete = data.endswith(b"\n") or not data
    if last_complete:
        lines.pop()
    records: list[dict[str, Any]] = []
    problems: list[str] = []
    for index, raw in enumerate(lines):
        number = index + 1
        if not raw.strip():
            continue
        is_unterminated = not last_complete and index == len(lines) - 1
        record, problem = _decode_line(raw)
        if problem and is_unterminated:
            problems.append(f"line {number}: truncated last line skipped")
        elif problem:
            problems.append(f"line {number}: {problem}, skipped")
        elif record is not None:
            records.append(record)
    return RecordingRead(path=path, records=tuple(records), problems=tuple(problems))


def read_record_at(path: Path, offset: int) -> dict[str, Any] | None:
    """One record by the offset `append` returned: front ends keep offsets, not bodies, in memory."""
    try:
        with open(path, "rb") as handle:
            handle.seek(offset)
            raw = handle.readline()
    except OSError:
        return None
    record, _problem = _decode_line(raw.rstrip(b"\n"))
    return record


def _decode_line(raw: bytes) -> tuple[dict[str, Any] | None, str]:
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError:
        return None, "not valid UTF-8"
    try:
        value = json.loads(text)
    except RecursionError:
        return None, "not valid JSON (nested too deeply)"
    except ValueError as exc:
        reason = exc.msg if isinstance(exc, json.JSONDecodeError) else str(exc)
        return None, f"not valid JSON ({reason})"
    if not isinstance(value, dict):
        return None, f"not a JSON object ({_json_type(value)})"
    return value, ""


def _json_type(value: Any) -> str:
    names = {list: "array", str: "string", bool: "boolean", int: "number", float: "number"}
    return "null" if value is None else names.get(type(value), type(value).__name__)


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


def _natural_key(path: Path) -> list[Any]:
    """Orders ...-2 before ...-10 and a base name before its collision suffixes."""
    parts = re.split(r"(\d+)", path.stem)
    return [int(part) if index % 2 else part for index, part in enumerate(parts)]


def session_paths(directory: Path) -> list[Path]:
    directory = Path(directory)
    if not directory.is_dir():
        return []
    return sorted((p for p in directory.glob("*.jsonl") if p.is_file()), key=_natural_key)


def _started_at(path: Path) -> datetime | None:
    match = _STAMP_RE.match(path.name)
    if not match:
        return None
    try:
        return datetime.strptime(match.group(1), _STAMP_FORMAT).replace(tzinfo=UTC)
    except ValueError:
        return None


def _session_info(path: Path) -> SessionInfo:
    read = read_recording(path)
    kinds = [record.get("kind") for record in read.records]
    stamps = [r["received_at"] for r in read.records if isinstance(r.get("received_at"), str)]
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


def _human_size(size: int) -> str:
    if size < 1024:
        return f"{size} B"
    value = float(size)
    for unit in ("KiB", "MiB", "GiB"):
        value /= 1024
        if value < 1024 or unit == "GiB":
            break
    return f"{value:.1f} {unit}"


def format_sessions_table(sessions: list[SessionInfo], directory: Path) -> str:
    """Renders what `wa-devtunnel sessions` prints, oldest session first."""
    if not sessions:
        return f"No recordings in {directory} yet. Run `wa-devtunnel` and send a webhook."
    header = ("FILE", "STARTED (UTC)", "EXCHANGES", "EVENTS", "VERIFIES", "OTHERS", "SIZE")
    rows = [
        (
            info.path.name,
            info.started_at.strftime("%Y-%m-%d %H:%M:%S") if info.started_at else "-",
            str(info.exchanges),
            str(info.events),
            str(info.verifies),
            str(info.others),
            _human_size(info.size_bytes),
        )
        for info in sessions
    ]
    widths = [max(len(row[col]) for row in (header, *rows)) for col in range(len(header))]
    lines = [_format_row(header, widths)]
    for info, row in zip(sessions, rows, strict=True):
        line = _format_row(row, widths)
        if info.problems:
            plural = "line" if info.problems == 1 else "lines"
            line += f"  damaged: {info.problems} {plural}"
        lines.append(line.rstrip())
    return "\n".join(lines)


def _format_row(cells: tuple[str, ...], widths: list[int]) -> str:
    """Names and dates read left to right; counts and sizes line up on the right."""
    parts = [
        cell.ljust(width) if col < 2 else cell.rjust(width)
        for col, (cell, width) in enumerate(zip(cells, widths, strict=True))
    ]
    return "  ".join(parts).rstrip()
