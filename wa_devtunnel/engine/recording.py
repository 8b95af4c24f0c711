"""Session recordings: one JSON line per exchange, written so nothing acknowledged is lost."""

from __future__ import annotations

import base64
import binascii
import contextlib
import errno
import json
import os
import re
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import orjson

from wa_devtunnel.engine.recordings_dir import (
    create_session_file,
    free_session_number,
    prepare_recordings_directory,
    session_file_path,
)
from wa_devtunnel.rules.decode.payload import decode_payload, full_summary, may_hold_a_big_integer
from wa_devtunnel.settings import DEFAULT_MAX_SESSION_BYTES

RECORDING_VERSION = 1
# Above this many characters of body, a line's summary keeps its headline and counts but not its items:
# they would repeat the body about three times over, and readers rebuild them from request.body.
SUMMARY_ITEMS_MAX_BODY = 1024 * 1024

STAMP_FORMAT = "%Y%m%d-%H%M%S"  # a session file name starts with its UTC start time
_SUFFIX_RE = re.compile(r"^[A-Za-z0-9_.-]*$")
_WHY = {
    errno.ENOSPC: "disk full",
    errno.EDQUOT: "disk quota exceeded",
    errno.EFBIG: "file too large",
    errno.EIO: "I/O error",
    errno.EROFS: "file system is read-only",
}


class RecordingFailed(OSError):
    """A line could not be written whole and was taken back: the exchange must not be acknowledged (503)."""

    def __init__(self, code: int, reason: str, path: Path) -> None:
        super().__init__(code, reason)
        self.reason = reason
        self.path = path

    def __str__(self) -> str:
        return self.reason


class SessionRecorder:
    """Appends exchanges to a session's files; each line survives kill -9 once append returns.

    The file is created (0600, O_EXCL) by the first append, so a run that records nothing leaves no
    empty session behind; until then `path` is where the first line will go (another session that
    takes that name first moves it on to `-2`, `-3`...) and `paths` is empty.
    A line is written whole or not at all (a failed write is truncated away and RecordingFailed raised; the
    next append tries again). A file that would grow past `max_bytes` is closed and the session continues
    in `<stamp>-2.jsonl`, `-3`, ...: `path` is the file the last line went to, `paths` all of them.
    """

    def __init__(
        self,
        directory: Path,
        *,
        suffix: str = "",
        now: Callable[[], datetime] | None = None,
        max_bytes: int = DEFAULT_MAX_SESSION_BYTES,
    ) -> None:
        if not _SUFFIX_RE.match(suffix) or suffix.startswith("."):
            raise ValueError(f"recording suffix {suffix!r} may only use letters, digits, '_-.'")
        if max_bytes < 1:
            raise ValueError(f"max_bytes must be at least 1, not {max_bytes}")
        directory = Path(directory)
        # A warning about the directory's own mode, for the front ends (never acted on here).
        self.directory_warning = prepare_recordings_directory(directory)
        started = (now or _utc_now)()
        if started.tzinfo is not None:
            started = started.astimezone(UTC)
        self.started_at = started
        stamp = started.strftime(STAMP_FORMAT)
        self._directory = directory
        self._base = f"{stamp}-{suffix}" if suffix else stamp
        self._number = free_session_number(directory, self._base)
        self.path = session_file_path(directory, self._base, self._number)
        self._fd: int | None = None
        self._closed = False
        self._paths: list[Path] = []
        self.max_bytes = max_bytes
        self._seq = 0
        self._size = 0
        self._dirty = False  # a failed line could not be truncated away yet: do it before the next write
        self.last_error: RecordingFailed | None = None
        self.failed_appends = 0

    def next_seq(self) -> int:
        """Hands out 1, 2, 3 ... so every record in the session has its own sequence number."""
        self._seq += 1
        return self._seq

    def append(self, record: dict[str, Any]) -> int:
        """Writes the record as one whole line (one write(2)) and returns its offset in `self.path`.

        Raises RecordingFailed when the line is not on disk; nothing of it is left in the file.
        """
        return self.append_line(encode_record(record))

    def append_line(self, data: bytes) -> int:
        """`append` for a record already encoded by encode_record (the receiver keeps the bytes it wrote)."""
        if self._closed:
            raise ValueError(f"recording {self.path} is closed")
        if self._fd is None:
            self._create_first_file()
        if self._dirty:
            self._truncate_leftover()
        if self._size and self._size + len(data) > self.max_bytes:
            self._roll_over()
        return self._write(data)

    def append_many(self, records: list[dict[str, Any]]) -> int:
        """Writes the records as whole lines with one write(2) (replay's batch of a loop turn); returns the
        first one's offset.

        All or nothing, like `append` for one: on a failure no line of the batch is left in the file. A batch
        that would cross the session's size limit is appended line by line, so the roll-over happens in between.
        """
        if self._closed:
            raise ValueError(f"recording {self.path} is closed")
        if not records:
            return self._size
        lines = [encode_record(record) for record in records]
        data = b"".join(lines)
        if self._fd is not None and self._size + len(data) > self.max_bytes:
            offsets = [self.append(record) for record in records]
            return offsets[0] if offsets else self._size
        if self._fd is None:
            self._create_first_file()
        if self._dirty:
            self._truncate_leftover()
        return self._write(data)

    def _write(self, data: bytes) -> int:
        """Whole lines at the end of the current file with one write(2), or none of them (taken back)."""
        fd, offset = self._fd, self._size
        try:
            written = os.write(fd, data)  # type: ignore[arg-type]
            if written != len(data):
                _write_rest(fd, data, written)  # type: ignore[arg-type]
        except BaseException as exc:
            failure = self._take_back(offset, exc)
            if failure is None:
                raise
            raise failure from exc
        self._size = offset + len(data)
        if self.last_error is not None:
            self.last_error, self.failed_appends = None, 0
        return offset

    @property
    def healthy(self) -> bool:
        """False from a failed append until the next one succeeds (front ends keep warning meanwhile)."""
        return self.last_error is None

    @property
    def paths(self) -> tuple[Path, ...]:
        """Every file of this session, oldest first (none before the first line, several once it rolled over)."""
        return tuple(self._paths)

    def _create_first_file(self) -> None:
        """The session's first file, at its first line; a failure is this line's failure (503, try again next)."""
        try:
            path, fd, number = create_session_file(self._directory, self._base, self._number)
        except OSError as exc:
            raise self._failed(exc, "creating") from exc
        self.path, self._fd, self._number, self._size = path, fd, number, 0
        self._paths.append(path)

    def _take_back(self, offset: int, exc: BaseException) -> RecordingFailed | None:
        """Truncates the partial line away; returns the failure to raise (None: re-raise a non-OSError)."""
        try:
            os.ftruncate(self._fd, offset)  # type: ignore[arg-type]
            leftover = ""
        except OSError as truncate_exc:
            self._dirty = True
            leftover = f"; the partial line could not be removed yet ({truncate_exc.strerror or truncate_exc})"
        if not isinstance(exc, OSError):
            return None
        return self._failed(exc, "writing", leftover)

    def _truncate_leftover(self) -> None:
        try:
            os.ftruncate(self._fd, self._size)  # type: ignore[arg-type]
        except OSError as exc:
            raise self._failed(exc, "removing a partial line from") from exc
        self._dirty = False

    def _roll_over(self) -> None:
        """The next file of the session; the full one is flushed and closed only once the new one exists."""
        try:
            path, fd, number = create_session_file(self._directory, self._base, self._number + 1)
        except OSError as exc:
            raise self._failed(exc, "starting the next file after") from exc
        old, self._fd = self._fd, fd
        self.path, self._number, self._size = path, number, 0
        self._paths.append(path)
        with contextlib.suppress(OSError):  # its lines were written already; fsync only guards a power cut
            os.fsync(old)  # type: ignore[arg-type]
        with contextlib.suppress(OSError):
            os.close(old)  # type: ignore[arg-type]

    def _failed(self, exc: OSError, doing: str, extra: str = "") -> RecordingFailed:
        code = exc.errno or errno.EIO
        why = _WHY.get(code, "cannot write")
        detail = exc.strerror or str(exc) or "short write"
        failure = RecordingFailed(code, f"{why} ({detail}) {doing} {self.path}{extra}", self.path)
        self.last_error = failure
        self.failed_appends += 1
        return failure

    def close(self) -> None:
        """Flushes the file to disk once at the end; calling it again does nothing.

        A file that holds no line (its first write failed, or a roll-over's new part got none) is removed.
        """
        fd, self._fd = self._fd, None
        self._closed = True
        if fd is None:
            return
        try:
            if self._dirty:
                with contextlib.suppress(OSError):
                    os.ftruncate(fd, self._size)
            os.fsync(fd)
        finally:
            os.close(fd)
            if self._size == 0:
                with contextlib.suppress(OSError):
                    self.path.unlink()
                    self._paths.pop()
                    if self._paths:
                        self.path = self._paths[-1]

    @property
    def closed(self) -> bool:
        return self._closed

    def __enter__(self) -> SessionRecorder:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()


def _utc_now() -> datetime:
    return datetime.now(UTC)


def _write_rest(fd: int, data: bytes, written: int) -> None:
    """A short write (disk almost full, signal): finish the line, or fail so the caller can take it back."""
    view = memoryview(data)[written:]
    while view:
        count = os.write(fd, view)
        if count <= 0:
            raise OSError(errno.ENOSPC, "short write: the file system took no more bytes")
        view = view[count:]


def _for_disk(record: dict[str, Any]) -> dict[str, Any]:
    """A huge body's line leaves summary.items out (derived data, rebuilt by readers) instead of tripling."""
    summary = record.get("summary")
    if not isinstance(summary, dict) or not summary.get("items"):
        return record
    request = record.get("request")
    body = request.get("body") if isinstance(request, dict) else None
    if not isinstance(body, str) or len(body) <= SUMMARY_ITEMS_MAX_BODY:
        return record
    items = summary["items"]
    compact = {key: value for key, value in summary.items() if key != "items"}
    compact["items_omitted"] = len(items) if isinstance(items, list) else 0
    return {**record, "summary": compact}


def with_full_summary(record: dict[str, Any]) -> dict[str, Any]:
    """DESIGN.md's reader rule for the summary the line does not hold whole: a partial one (the receiver's
    flags and accounts, `"partial": true`) is decoded from request.body as the receiver would have written it;
    items that `_for_disk` left out are put back. Any other record is returned as it is."""
    summary = record.get("summary")
    if not isinstance(summary, dict):
        return record
    partial = summary.get("partial") is True
    if not partial and ("items_omitted" not in summary or "items" in summary):
        return record
    try:
        body = request_body(record.get("request") or {})
    except (ValueError, AttributeError):
        return record
    if partial:
        return {**record, "summary": full_summary(summary, body)}
    restored = {key: value for key, value in summary.items() if key != "items_omitted"}
    restored["items"] = decode_payload(body).to_dict()["items"]
    return {**record, "summary": restored}


def summary_is_partial(record: Mapping[str, Any]) -> bool:
    """True when the line's summary holds only what the receiver knew (with_full_summary derives the rest)."""
    summary = record.get("summary")
    return summary.__class__ is dict and summary.get("partial") is True  # type: ignore[union-attr]


def encode_record(record: dict[str, Any]) -> bytes:
    """The record's line as the recording holds it (newline included): what SessionRecorder writes."""
    summary = record.get("summary")
    if summary.__class__ is dict and summary.get("items"):  # type: ignore[union-attr]  # a whole summary (a replay's
        record = _for_disk(record)  # source, a test's): a huge body's line may leave its items out
    return _encode_line(record)


def line_at(path: Path, offset: int, length: int) -> dict[str, Any] | None:
    """The record of the line `append` wrote at `offset` (`length` bytes), as any reader of the file gets it
    (its summary as written); None when it is no longer there whole."""
    try:
        with open(path, "rb", buffering=0) as handle:
            raw = os.pread(handle.fileno(), length, offset)
    except OSError:
        return None
    if len(raw) != length or not raw.endswith(b"\n"):
        return None
    record, _problem = _decode_line(raw)
    return record


def _encode_line(record: Mapping[str, Any]) -> bytes:
    """Raw UTF-8 keeps lines readable; lone surrogates (from odd headers) fall back to escapes."""
    try:
        # orjson writes the same compact raw-UTF-8 JSON in a fraction of the time (this runs per request).
        return orjson.dumps(record, option=orjson.OPT_APPEND_NEWLINE)
    except orjson.JSONEncodeError:
        pass  # lone surrogates, ints beyond 64 bits, non-str keys...: the standard library handles them
    text = json.dumps(record, ensure_ascii=False, separators=(",", ":")) + "\n"
    # Only lone surrogates cannot be UTF-8; backslashreplace writes exactly their JSON escape (\udce9), so
    # the rest of the line (a big non-ASCII body) stays raw instead of tripling as \u00e4 escapes.
    return text.encode("utf-8", "backslashreplace")


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


def records_with_offsets(path: Path) -> Iterator[tuple[int, dict[str, Any]]]:
    """Every intact record of a file with the offset of its line (what a live view keeps), damaged lines skipped."""
    offset = 0
    with open(path, "rb") as handle:
        for raw in handle:
            if raw.endswith(b"\n"):  # an unterminated last line is still being written (or was cut short)
                record, _problem = _decode_line(raw[:-1])
                if record is not None:
                    yield offset, record
            offset += len(raw)


def read_record_at(path: Path, offset: int) -> dict[str, Any] | None:
    """One record by the offset `append` returned: front ends keep offsets, not bodies, in memory."""
    try:
        with open(path, "rb") as handle:
            handle.seek(offset)
            raw = handle.readline()
    except OSError:
        return None
    record, _problem = _decode_line(raw.rstrip(b"\n"))
    return None if record is None else with_full_summary(record)


# orjson reads a line several times faster than json, but turns an integer beyond 64 bits into a float and refuses
# what json accepts (a lone surrogate escape, NaN): such lines, and any that may hold a 19+ digit number, go to json.
def _decode_line(raw: bytes) -> tuple[dict[str, Any] | None, str]:
    if not may_hold_a_big_integer(raw):
        try:
            value = orjson.loads(raw)
        except orjson.JSONDecodeError:
            pass  # json says why, or accepts what orjson does not
        else:
            if isinstance(value, dict):
                return value, ""
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
