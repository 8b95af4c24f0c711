"""A line is on disk whole or not at all (disk full, I/O errors), and a session rolls over at its size limit."""

from __future__ import annotations

import errno
import json
import os
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import pytest

from wa_devtunnel.engine import recording
from wa_devtunnel.engine.recording import (
    RECORDING_VERSION,
    RecordingFailed,
    SessionRecorder,
    encode_body,
    read_record_at,
    read_recording,
)
from wa_devtunnel.engine.sessions import latest_session, list_sessions, session_paths

STARTED = datetime(2026, 11, 26, 21, 55, 0, tzinfo=UTC)


def make_record(seq: int, body: bytes = b"{}") -> dict[str, Any]:
    return {
        "v": RECORDING_VERSION,
        "id": f"rec-{seq}",
        "seq": seq,
        "received_at": "2026-11-26T21:55:00.000000Z",
        "kind": "event",
        "request": {"method": "POST", "path": "/webhook/whatsapp", "query": "", "headers": [], **encode_body(body)},
        "response": {"status": 200, "body": "EVENT_RECEIVED"},
        "signature": "unchecked",
    }


def line_length(record: dict[str, Any]) -> int:
    return len(recording._encode_line(record))


class FakeDisk:
    """Stands in for the `os` module of recording.py: writes and truncations fail the way a full disk does."""

    def __init__(self) -> None:
        self.capacity: int | None = None  # bytes the session file may reach before ENOSPC
        self.fail_with: int | None = None  # errno raised by every write while set
        self.short_then: int | None = None  # first write takes half the line, the next raises this errno
        self.truncate_failures = 0  # how many ftruncate calls fail with EIO
        self.interrupt_after_half = False
        self.full_returns_zero = False  # a full disk that answers 0 bytes written instead of ENOSPC
        self._short_done = False

    def write(self, fd: int, data: bytes | memoryview) -> int:
        if self.fail_with is not None:
            raise OSError(self.fail_with, os.strerror(self.fail_with))
        if self.short_then is not None:
            if self._short_done:
                raise OSError(self.short_then, os.strerror(self.short_then))
            self._short_done = True
            return os.write(fd, bytes(data[: len(data) // 2]))
        if self.interrupt_after_half:
            os.write(fd, bytes(data[: len(data) // 2]))
            raise KeyboardInterrupt
        if self.capacity is not None:
            room = self.capacity - os.fstat(fd).st_size
            if room <= 0 and self.full_returns_zero:
                return 0
            if room <= 0:
                raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))
            return os.write(fd, bytes(data[:room]))
        return os.write(fd, data)

    def ftruncate(self, fd: int, length: int) -> None:
        if self.truncate_failures:
            self.truncate_failures -= 1
            raise OSError(errno.EIO, os.strerror(errno.EIO))
        os.ftruncate(fd, length)

    def heal(self) -> None:
        self.capacity = self.fail_with = self.short_then = None
        self.interrupt_after_half = False


@pytest.fixture
def disk(monkeypatch: pytest.MonkeyPatch) -> FakeDisk:
    fake = FakeDisk()
    namespace = SimpleNamespace(**{name: getattr(os, name) for name in dir(os) if not name.startswith("__")})
    namespace.write, namespace.ftruncate = fake.write, fake.ftruncate
    monkeypatch.setattr(recording, "os", namespace)
    return fake


@pytest.fixture
def recorder(tmp_path: Path) -> SessionRecorder:
    with SessionRecorder(tmp_path / "rec", now=lambda: STARTED) as session:
        yield session


def assert_clean_lines(path: Path, seqs: list[int]) -> None:
    """Every line whole and newline-terminated, holding exactly the acknowledged records."""
    data = path.read_bytes()
    assert data == b"" or data.endswith(b"\n")
    assert [json.loads(line)["seq"] for line in data.splitlines()] == seqs
    read = read_recording(path)
    assert read.problems == ()
    assert [r["seq"] for r in read.records] == seqs


def test_disk_full_mid_line_leaves_no_partial_line_and_recovers(disk: FakeDisk, recorder: SessionRecorder) -> None:
    recorder.append(make_record(1))
    recorder.append(make_record(2))
    before = recorder.path.read_bytes()
    disk.capacity = len(before) + 10  # ten bytes of the next line fit, then the disk is full
    with pytest.raises(RecordingFailed) as failed:
        recorder.append(make_record(3))
    assert recorder.path.read_bytes() == before
    assert failed.value.errno == errno.ENOSPC
    assert isinstance(failed.value, OSError)
    assert str(failed.value) == f"disk full ({os.strerror(errno.ENOSPC)}) writing {recorder.path}"
    assert failed.value.path == recorder.path
    assert not recorder.healthy and recorder.last_error is failed.value and recorder.failed_appends == 1

    with pytest.raises(RecordingFailed):  # still full: refused again, still nothing left behind
        recorder.append(make_record(3))
    assert recorder.failed_appends == 2
    assert recorder.path.read_bytes() == before

    disk.heal()  # space was freed
    offset = recorder.append(make_record(4))
    assert recorder.healthy and recorder.last_error is None and recorder.failed_appends == 0
    assert offset == len(before)
    assert read_record_at(recorder.path, offset) == make_record(4)
    assert_clean_lines(recorder.path, [1, 2, 4])


@pytest.mark.parametrize(
    ("code", "why"),
    [(errno.EIO, "I/O error"), (errno.EFBIG, "file too large"), (errno.ENOSPC, "disk full")],
)
def test_short_write_then_error_is_taken_back(disk: FakeDisk, recorder: SessionRecorder, code: int, why: str) -> None:
    recorder.append(make_record(1))
    disk.short_then = code
    with pytest.raises(RecordingFailed, match=rf"^{why} ") as failed:
        recorder.append(make_record(2, b'{"big":"' + b"x" * 5000 + b'"}'))
    assert failed.value.errno == code
    disk.heal()
    recorder.append(make_record(3))
    assert_clean_lines(recorder.path, [1, 3])


def test_failure_before_any_byte_changes_nothing(disk: FakeDisk, recorder: SessionRecorder) -> None:
    disk.fail_with = errno.ENOSPC
    with pytest.raises(RecordingFailed):
        recorder.append(make_record(1))
    assert recorder.path.read_bytes() == b""
    disk.heal()
    recorder.append(make_record(2))
    assert_clean_lines(recorder.path, [2])


def test_a_write_that_takes_no_bytes_counts_as_disk_full(disk: FakeDisk, recorder: SessionRecorder) -> None:
    recorder.append(make_record(1))
    size = recorder.path.stat().st_size
    disk.capacity = size + 1
    disk.full_returns_zero = True
    with pytest.raises(RecordingFailed, match=r"^disk full"):
        recorder.append(make_record(2))
    assert recorder.path.stat().st_size == size


def test_a_partial_line_that_cannot_be_truncated_is_removed_before_the_next_write(
    disk: FakeDisk, recorder: SessionRecorder
) -> None:
    recorder.append(make_record(1))
    disk.short_then = errno.EIO
    disk.truncate_failures = 1
    with pytest.raises(RecordingFailed, match="partial line could not be removed yet"):
        recorder.append(make_record(2))
    assert not recorder.path.read_bytes().endswith(b"\n"), "the leftover is still there for now"
    disk.heal()
    recorder.append(make_record(3))
    assert_clean_lines(recorder.path, [1, 3])


def test_nothing_is_glued_onto_a_leftover_that_still_cannot_be_removed(
    disk: FakeDisk, recorder: SessionRecorder
) -> None:
    recorder.append(make_record(1))
    disk.short_then = errno.EIO
    disk.truncate_failures = 2
    with pytest.raises(RecordingFailed):
        recorder.append(make_record(2))
    stuck = recorder.path.read_bytes()
    disk.heal()
    with pytest.raises(RecordingFailed, match=r"^I/O error .* removing a partial line from"):
        recorder.append(make_record(3))
    assert recorder.path.read_bytes() == stuck, "refused without writing after the leftover"
    recorder.close()  # close tries once more
    assert_clean_lines(recorder.path, [1])


def test_an_interrupt_mid_line_removes_the_part_written(disk: FakeDisk, recorder: SessionRecorder) -> None:
    recorder.append(make_record(1))
    disk.interrupt_after_half = True
    with pytest.raises(KeyboardInterrupt):
        recorder.append(make_record(2))
    assert recorder.healthy, "not a disk problem"
    assert_clean_lines(recorder.path, [1])


# --- rolling over at max_bytes ---------------------------------------------------------------


def record_many(recorder: SessionRecorder, count: int, body: Callable[[int], bytes] = lambda _: b"{}") -> list[Any]:
    """Append records 1..count; keep (path, offset) as a front end would, to look each one up again."""
    found = []
    for seq in range(1, count + 1):
        offset = recorder.append(make_record(seq, body(seq)))
        found.append((recorder.path, offset, seq))
    return found


def test_a_full_file_rolls_over_to_the_next_name(tmp_path: Path) -> None:
    per_line = line_length(make_record(1))
    with SessionRecorder(tmp_path, now=lambda: STARTED, max_bytes=3 * per_line) as recorder:
        found = record_many(recorder, 10)
    names = [path.name for path in recorder.paths]
    assert names == ["20261126-215500.jsonl", "20261126-215500-2.jsonl", "20261126-215500-3.jsonl",
                     "20261126-215500-4.jsonl"]  # fmt: skip
    assert recorder.path == recorder.paths[-1]
    assert all(path.stat().st_size <= 3 * per_line for path in recorder.paths)
    for path, offset, seq in found:
        assert read_record_at(path, offset) == make_record(seq)
    seqs = [record["seq"] for path in recorder.paths for record in read_recording(path).records]
    assert seqs == list(range(1, 11))
    assert session_paths(tmp_path) == list(recorder.paths)
    sessions = list_sessions(tmp_path)
    assert [s.path for s in sessions] == list(recorder.paths)
    assert sum(s.exchanges for s in sessions) == 10 and all(s.problems == 0 for s in sessions)
    assert latest_session(tmp_path) == recorder.paths[-1]


def test_parts_beyond_nine_stay_in_order(tmp_path: Path) -> None:
    with SessionRecorder(tmp_path, now=lambda: STARTED, max_bytes=1) as recorder:
        record_many(recorder, 12)  # every line is over the limit: one file each
    assert len(recorder.paths) == 12
    assert session_paths(tmp_path) == list(recorder.paths)
    assert [read_recording(p).records[0]["seq"] for p in session_paths(tmp_path)] == list(range(1, 13))


def test_a_line_bigger_than_the_limit_gets_a_file_of_its_own(tmp_path: Path) -> None:
    small = line_length(make_record(1))
    with SessionRecorder(tmp_path, now=lambda: STARTED, max_bytes=4 * small) as recorder:
        record_many(recorder, 4, lambda seq: b'{"x":"' + b"y" * 20 * small + b'"}' if seq in (1, 3) else b"{}")
    # 1 is too big but the first file was empty: it stays there; 2 rolls over; 3 alone; 4 rolls again
    per_file = [[r["seq"] for r in read_recording(p).records] for p in recorder.paths]
    assert per_file == [[1], [2], [3], [4]]


def test_roll_over_skips_a_name_another_session_took(tmp_path: Path) -> None:
    per_line = line_length(make_record(1))
    with SessionRecorder(tmp_path, now=lambda: STARTED, max_bytes=per_line) as first:
        first.append(make_record(1))
        with SessionRecorder(tmp_path, now=lambda: STARTED) as second:  # started in the same second: -2
            second.append(make_record(1))
        first.append(make_record(2))
    assert [p.name for p in first.paths] == ["20261126-215500.jsonl", "20261126-215500-3.jsonl"]
    assert session_paths(tmp_path) == [first.paths[0], second.path, first.paths[1]]


def test_replay_sessions_roll_over_with_their_suffix(tmp_path: Path) -> None:
    with SessionRecorder(tmp_path, suffix="replay", now=lambda: STARTED, max_bytes=1) as recorder:
        record_many(recorder, 2)
    assert [p.name for p in recorder.paths] == ["20261126-215500-replay.jsonl", "20261126-215500-replay-2.jsonl"]


def test_a_failed_roll_over_keeps_the_old_file_and_retries(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    recorder = SessionRecorder(tmp_path, now=lambda: STARTED, max_bytes=line_length(make_record(1)))
    recorder.append(make_record(1))

    def no_inodes(*_args: Any) -> Any:
        raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))

    real = recording.create_session_file
    monkeypatch.setattr(recording, "create_session_file", no_inodes)
    with pytest.raises(RecordingFailed, match=r"^disk full .* starting the next file after"):
        recorder.append(make_record(2))
    assert recorder.paths == (recorder.path,)
    monkeypatch.setattr(recording, "create_session_file", real)
    recorder.append(make_record(3))
    recorder.close()
    assert [[r["seq"] for r in read_recording(p).records] for p in recorder.paths] == [[1], [3]]


def test_a_part_left_empty_by_a_failure_is_removed_at_close(tmp_path: Path, disk: FakeDisk) -> None:
    recorder = SessionRecorder(tmp_path, now=lambda: STARTED, max_bytes=1)
    recorder.append(make_record(1))
    disk.fail_with = errno.ENOSPC
    with pytest.raises(RecordingFailed):
        recorder.append(make_record(2))  # rolled over, then the write failed
    assert len(recorder.paths) == 2
    recorder.close()
    assert recorder.paths == (tmp_path / "20261126-215500.jsonl",)
    assert recorder.path == recorder.paths[0]
    assert session_paths(tmp_path) == list(recorder.paths)


def test_max_bytes_must_be_positive(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="max_bytes"):
        SessionRecorder(tmp_path, max_bytes=0)


def test_a_first_line_that_cannot_be_written_leaves_no_file_at_close(tmp_path: Path, disk: FakeDisk) -> None:
    """The file is made for the first line; if that line never lands, a clean stop leaves nothing behind."""
    recorder = SessionRecorder(tmp_path, now=lambda: STARTED)
    disk.fail_with = errno.ENOSPC
    with pytest.raises(RecordingFailed, match=r"^disk full"):
        recorder.append(make_record(1))
    recorder.close()
    assert recorder.paths == () and session_paths(tmp_path) == []


def test_a_session_file_that_cannot_be_created_fails_that_line_and_retries(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Created lazily, a file the directory refuses is the line's failure (503 upstream), not a crash."""
    recorder = SessionRecorder(tmp_path, now=lambda: STARTED)

    def no_inodes(*_args: Any) -> Any:
        raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))

    real = recording.create_session_file
    monkeypatch.setattr(recording, "create_session_file", no_inodes)
    with pytest.raises(RecordingFailed, match=r"^disk full .* creating "):
        recorder.append(make_record(1))
    assert recorder.paths == () and not recorder.healthy
    monkeypatch.setattr(recording, "create_session_file", real)
    recorder.append(make_record(2))
    recorder.close()
    assert recorder.healthy
    assert_clean_lines(recorder.path, [2])


# --- a batch in one write (replay's records of a loop turn) ----------------------------------


def test_a_batch_is_one_write_of_whole_lines_read_back_as_appended_one_by_one(tmp_path: Path) -> None:
    one_by_one, batched = tmp_path / "one", tmp_path / "batch"
    with SessionRecorder(one_by_one, now=lambda: STARTED) as single:
        for seq in range(1, 6):
            single.append(make_record(seq, b'{"n": %d}' % seq))
    with SessionRecorder(batched, now=lambda: STARTED) as recorder:
        assert recorder.append_many([]) == 0 and recorder.paths == (), "an empty batch creates no file"
        first = recorder.append_many([make_record(seq, b'{"n": %d}' % seq) for seq in range(1, 4)])
        second = recorder.append_many([make_record(seq, b'{"n": %d}' % seq) for seq in range(4, 6)])
    assert first == 0 and second == 3 * line_length(make_record(1, b'{"n": 1}'))
    assert recorder.path.read_bytes() == single.path.read_bytes()


def test_a_batch_that_fails_leaves_none_of_its_lines(tmp_path: Path, disk: FakeDisk) -> None:
    with SessionRecorder(tmp_path, now=lambda: STARTED) as recorder:
        recorder.append_many([make_record(1)])
        disk.short_then = errno.ENOSPC  # half the batch reaches the disk, then the disk is full
        with pytest.raises(RecordingFailed):
            recorder.append_many([make_record(seq) for seq in (2, 3, 4)])
        disk.short_then = None
        recorder.append_many([make_record(5)])
    assert [r["seq"] for r in read_recording(recorder.path).records] == [1, 5]
    assert read_recording(recorder.path).problems == ()


def test_a_batch_crossing_the_size_limit_rolls_over_between_its_lines(tmp_path: Path) -> None:
    per_line = line_length(make_record(1))
    with SessionRecorder(tmp_path, now=lambda: STARTED, max_bytes=3 * per_line) as recorder:
        recorder.append_many([make_record(1), make_record(2)])
        recorder.append_many([make_record(seq) for seq in (3, 4, 5)])
    per_file = [[r["seq"] for r in read_recording(p).records] for p in recorder.paths]
    assert per_file == [[1, 2, 3], [4, 5]]
