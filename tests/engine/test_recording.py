"""Recordings keep Meta's exact bytes and survive damage; the sessions listing reads them back."""

from __future__ import annotations

import hashlib
import hmac
import json
import os
import stat
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from wa_devtunnel.engine import recording
from wa_devtunnel.engine.recording import (
    RECORDING_VERSION,
    SessionRecorder,
    encode_body,
    read_record_at,
    read_recording,
    request_body,
)
from wa_devtunnel.engine.sessions import latest_session, list_sessions
from wa_devtunnel.rules.decode.payload import decode_payload
from wa_devtunnel.rules.samples.messages import text_message
from wa_devtunnel.rules.samples.payloads import envelope, messages_change, meta_json

APP_SECRET = "0123456789abcdef0123456789abcdef"
STARTED = datetime(2026, 11, 26, 21, 55, 0, tzinfo=UTC)

# Meta's style: compact, ensure_ascii escapes (ä, an emoji as a surrogate pair) and "\/".
META_BODY = (
    b'{"object":"whatsapp_business_account","entry":[{"changes":[{"value":{"messages":'
    b'[{"text":{"body":"Gr\\u00e4t \\ud83d\\ude2e https:\\/\\/example.com\\/x"}}]},'
    b'"field":"messages"}]}]}'
)


def fixed_clock(moment: datetime = STARTED) -> Any:
    return lambda: moment


def make_record(seq: int, body: bytes, *, kind: str = "event", second: int = 0) -> dict[str, Any]:
    return {
        "v": RECORDING_VERSION,
        "id": f"rec-{seq}",
        "seq": seq,
        "received_at": f"2026-11-26T21:55:{second:02d}.000000Z",
        "kind": kind,
        "request": {
            "method": "POST",
            "path": "/webhook/whatsapp",
            "query": "",
            "headers": [["Content-Type", "application/json"]],
            **encode_body(body),
        },
        "response": {"status": 200, "body": ""},
        "signature": "unchecked",
    }


def meta_signature(body: bytes) -> str:
    return "sha256=" + hmac.new(APP_SECRET.encode(), body, hashlib.sha256).hexdigest()


def write_and_read_back(tmp_path: Path, body: bytes) -> tuple[dict[str, Any], bytes]:
    with SessionRecorder(tmp_path / "rec", now=fixed_clock()) as recorder:
        recorder.append(make_record(recorder.next_seq(), body))
    read = read_recording(recorder.path)
    assert read.problems == ()
    assert len(read.records) == 1
    return read.records[0], recorder.path.read_bytes()


@pytest.mark.parametrize(
    "body",
    [
        META_BODY,
        "Grät 😮 ünïcödé raw".encode(),
        "line\u2028separator\u2029paragraph\x85next".encode(),
        b"",
        b"{}\n",
        b"\xef\xbb\xbf{}",
    ],
    ids=["meta-escaped", "raw-utf8", "unicode-line-separators", "empty", "newline", "bom"],
)
def test_text_bodies_round_trip_exactly(tmp_path: Path, body: bytes) -> None:
    record, _ = write_and_read_back(tmp_path, body)
    assert "body_b64" not in record["request"]
    assert request_body(record["request"]) == body


def test_escapes_stay_escaped_in_the_file(tmp_path: Path) -> None:
    record, raw = write_and_read_back(tmp_path, META_BODY)
    assert record["request"]["body"] == META_BODY.decode()
    assert b"\\\\ud83d\\\\ude2e" in raw
    assert b"\\\\/" in raw


def test_raw_line_separator_is_written_raw_and_does_not_split_lines(tmp_path: Path) -> None:
    body = '{"text":"a\u2028b"}'.encode()
    record, raw = write_and_read_back(tmp_path, body)
    assert "\u2028".encode() in raw
    assert raw.count(b"\n") == 1
    assert request_body(record["request"]) == body


def test_invalid_utf8_is_stored_as_base64(tmp_path: Path) -> None:
    body = b'{"text":"\xff\xfe caf\xe9"}'
    record, _ = write_and_read_back(tmp_path, body)
    assert "body" not in record["request"]
    assert request_body(record["request"]) == body


def test_encoded_surrogates_are_not_valid_utf8() -> None:
    assert "body_b64" in encode_body(b"\xed\xa0\xbd")


def test_signature_computed_before_writing_verifies_after_reading(tmp_path: Path) -> None:
    for body in (META_BODY, "raw ä 😮 \u2028".encode(), b"\x00\xff\x80"):
        header = meta_signature(body)
        record, _ = write_and_read_back(tmp_path / str(len(body)), body)
        assert hmac.compare_digest(meta_signature(request_body(record["request"])), header)


def test_request_body_without_body_is_empty() -> None:
    assert request_body({"method": "GET"}) == b""


@pytest.mark.parametrize("request_dict", [{"body": 12}, {"body_b64": "%%%"}, {"body": "\udcff"}])
def test_request_body_rejects_malformed_bodies(request_dict: dict[str, Any]) -> None:
    with pytest.raises(ValueError):
        request_body(request_dict)


@settings(max_examples=200, deadline=None)
@given(body=st.binary(max_size=512))
def test_any_bytes_round_trip(tmp_path_factory: pytest.TempPathFactory, body: bytes) -> None:
    directory = tmp_path_factory.mktemp("any")
    record, _ = write_and_read_back(directory, body)
    assert request_body(record["request"]) == body


def test_surrogate_escaped_header_still_records(tmp_path: Path) -> None:
    record = make_record(1, b"{}")
    record["request"]["headers"].append(["X-Odd", "caf\udce9"])
    with SessionRecorder(tmp_path, now=fixed_clock()) as recorder:
        recorder.append(record)
    assert read_recording(recorder.path).records == (record,)


def test_permissions_are_private(tmp_path: Path) -> None:
    directory = tmp_path / "nested" / "recordings"
    with SessionRecorder(directory, now=fixed_clock()) as recorder:
        recorder.append(make_record(1, b"{}"))
    assert stat.S_IMODE(directory.stat().st_mode) == 0o700
    assert stat.S_IMODE(recorder.path.stat().st_mode) == 0o600


def test_existing_open_directory_is_never_changed(tmp_path: Path) -> None:
    """Its mode is the user's (it may be /tmp): a warning says how to close it."""
    directory = tmp_path / "recordings"
    directory.mkdir()
    directory.chmod(0o755)
    with SessionRecorder(directory, now=fixed_clock()) as recorder:
        assert "mode 0755" in recorder.directory_warning
    assert stat.S_IMODE(directory.stat().st_mode) == 0o755


def test_file_is_named_after_the_start_time_and_never_reused(tmp_path: Path) -> None:
    recorders = [SessionRecorder(tmp_path, now=fixed_clock()) for _ in range(3)]
    replay = SessionRecorder(tmp_path, suffix="replay", now=fixed_clock())
    for recorder in [*recorders, replay]:
        recorder.append(make_record(1, b"{}"))
        recorder.close()
    assert [r.path.name for r in recorders] == [
        "20261126-215500.jsonl",
        "20261126-215500-2.jsonl",
        "20261126-215500-3.jsonl",
    ]
    assert replay.path.name == "20261126-215500-replay.jsonl"


def test_aware_clock_in_another_zone_names_the_file_in_utc(tmp_path: Path) -> None:
    local = datetime.fromisoformat("2026-11-27T00:55:00+03:00")
    with SessionRecorder(tmp_path, now=fixed_clock(local)) as recorder:
        pass
    assert recorder.path.name == "20261126-215500.jsonl"


@pytest.mark.parametrize("suffix", ["../x", "a/b", ".hidden"])
def test_suffix_cannot_escape_the_directory(tmp_path: Path, suffix: str) -> None:
    with pytest.raises(ValueError):
        SessionRecorder(tmp_path, suffix=suffix, now=fixed_clock())


def test_seq_counts_and_close_is_idempotent(tmp_path: Path) -> None:
    recorder = SessionRecorder(tmp_path, now=fixed_clock())
    assert [recorder.next_seq() for _ in range(3)] == [1, 2, 3]
    recorder.close()
    recorder.close()
    assert recorder.closed
    with pytest.raises(ValueError):
        recorder.append(make_record(4, b""))


def test_each_append_is_one_complete_line(tmp_path: Path) -> None:
    recorder = SessionRecorder(tmp_path, now=fixed_clock())
    for seq in (1, 2):
        recorder.append(make_record(seq, b"{}"))
        assert recorder.path.read_bytes().endswith(b"\n")
    recorder.close()
    lines = recorder.path.read_bytes().split(b"\n")
    assert lines[-1] == b""
    assert [json.loads(line)["seq"] for line in lines[:-1]] == [1, 2]


def write_lines(path: Path, *chunks: bytes) -> Path:
    path.write_bytes(b"".join(chunks))
    return path


def line_of(record: dict[str, Any]) -> bytes:
    return json.dumps(record, ensure_ascii=False, separators=(",", ":")).encode() + b"\n"


def test_truncated_last_line_is_skipped_and_reported(tmp_path: Path) -> None:
    first, second = make_record(1, b"{}"), make_record(2, "ä".encode())
    cut = line_of(make_record(3, "😮".encode()))[:-9]
    path = write_lines(tmp_path / "s.jsonl", line_of(first), line_of(second), cut)
    read = read_recording(path)
    assert read.records == (first, second)
    assert read.problems == ("line 3: truncated last line skipped",)


def test_last_line_cut_inside_a_multibyte_character(tmp_path: Path) -> None:
    whole = line_of(make_record(1, "😮".encode()))
    cut = whole[: whole.index("😮".encode()) + 2]
    read = read_recording(write_lines(tmp_path / "s.jsonl", cut))
    assert read.records == ()
    assert read.problems == ("line 1: truncated last line skipped",)


def test_complete_last_line_without_newline_is_kept(tmp_path: Path) -> None:
    record = make_record(1, b"{}")
    read = read_recording(write_lines(tmp_path / "s.jsonl", line_of(record)[:-1]))
    assert read.records == (record,)
    assert read.problems == ()


def test_garbage_in_the_middle_is_reported_and_skipped(tmp_path: Path) -> None:
    first, last = make_record(1, b"{}"), make_record(5, b"{}")
    path = write_lines(
        tmp_path / "s.jsonl",
        line_of(first),
        b'{"v":1,"seq":\n',
        b"\xff\xfe\x00garbage\n",
        b"[1,2,3]\n",
        b"\n",
        b"[" * 100_000 + b"\n",
        line_of(last),
    )
    read = read_recording(path)
    assert read.records == (first, last)
    assert len(read.problems) == 4
    assert read.problems[0].startswith("line 2: not valid JSON")
    assert read.problems[1] == "line 3: not valid UTF-8, skipped"
    assert read.problems[2] == "line 4: not a JSON object (array), skipped"
    assert read.problems[3] == "line 6: not valid JSON (nested too deeply), skipped"


def test_empty_file(tmp_path: Path) -> None:
    read = read_recording(write_lines(tmp_path / "s.jsonl", b""))
    assert read.records == ()
    assert read.problems == ()


def test_missing_file_raises(tmp_path: Path) -> None:
    with pytest.raises(FileNotFoundError):
        read_recording(tmp_path / "nope.jsonl")


@settings(max_examples=200, deadline=None)
@given(data=st.binary(max_size=256))
def test_reader_never_raises_on_content(
    tmp_path_factory: pytest.TempPathFactory, data: bytes
) -> None:
    path = tmp_path_factory.mktemp("junk") / "s.jsonl"
    path.write_bytes(data)
    read = read_recording(path)
    assert all(isinstance(record, dict) for record in read.records)


def record_session(directory: Path, moment: datetime, kinds: list[str], **kw: str) -> Path:
    with SessionRecorder(directory, now=fixed_clock(moment), **kw) as recorder:
        for second, kind in enumerate(kinds):
            recorder.append(make_record(recorder.next_seq(), b"{}", kind=kind, second=second))
    return recorder.path


def test_sessions_are_listed_oldest_first_with_counts(tmp_path: Path) -> None:
    later = datetime(2026, 11, 27, 8, 0, 0, tzinfo=UTC)
    newest = record_session(tmp_path, later, ["verify", "event", "event", "other"])
    oldest = record_session(tmp_path, STARTED, ["event"])
    with newest.open("ab") as damaged:
        damaged.write(b'garbage\n{"v":1')
    (tmp_path / "notes.txt").write_text("not a recording")

    sessions = list_sessions(tmp_path)
    assert [s.path for s in sessions] == [oldest, newest]
    first, second = sessions
    assert (first.exchanges, first.events, first.verifies, first.others) == (1, 1, 0, 0)
    assert first.started_at == STARTED
    assert first.problems == 0
    assert (second.exchanges, second.events, second.verifies, second.others) == (4, 2, 1, 1)
    assert second.first_at == "2026-11-26T21:55:00.000000Z"
    assert second.last_at == "2026-11-26T21:55:03.000000Z"
    assert second.problems == 2
    assert second.size_bytes == newest.stat().st_size
    assert latest_session(tmp_path) == newest


def test_collision_names_sort_numerically(tmp_path: Path) -> None:
    paths = [record_session(tmp_path, STARTED, ["event"]) for _ in range(11)]
    assert [s.path for s in list_sessions(tmp_path)] == paths
    assert latest_session(tmp_path) == paths[-1]


def test_no_sessions(tmp_path: Path) -> None:
    assert list_sessions(tmp_path / "missing") == []
    assert latest_session(tmp_path / "missing") is None
    assert latest_session(tmp_path) is None


def test_recording_file_is_not_world_readable_even_with_open_umask(tmp_path: Path) -> None:
    previous = os.umask(0)
    try:
        with SessionRecorder(tmp_path / "r", now=fixed_clock()) as recorder:
            recorder.append(make_record(1, b"{}"))
    finally:
        os.umask(previous)
    assert stat.S_IMODE(recorder.path.stat().st_mode) == 0o600
    assert stat.S_IMODE(recorder.path.parent.stat().st_mode) == 0o700


def test_an_odd_header_does_not_escape_a_non_ascii_body(tmp_path: Path) -> None:
    """The lone-surrogate fallback escapes only the surrogate; the body stays raw UTF-8 (not 3x as \\u00e4)."""
    body = ("Grüße " * 1000).encode()
    record = make_record(1, body)
    record["request"]["headers"].append(["X-Odd", "caf\udce9"])
    with SessionRecorder(tmp_path, now=fixed_clock()) as recorder:
        recorder.append(record)
    raw = recorder.path.read_bytes()
    assert body in raw
    assert b"caf\\udce9" in raw
    assert len(raw) < len(body) + 400
    assert read_recording(recorder.path).records == (record,)


def summarized(body: bytes) -> dict[str, Any]:
    record = make_record(1, body)
    record["summary"] = decode_payload(body).to_dict()
    return record


def batch_body(count: int) -> bytes:
    messages = [text_message("Does it come in another color?", message_id=f"wamid.{i}") for i in range(count)]
    return meta_json(envelope([messages_change(messages)]))


def test_a_huge_body_is_not_tripled_by_its_summary(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """summary.items repeat the body about 3x; above the limit the file leaves them to the reader."""
    body = batch_body(200)
    monkeypatch.setattr(recording, "SUMMARY_ITEMS_MAX_BODY", len(body) - 1)
    record = summarized(body)
    assert len(json.dumps(record["summary"])) > 2 * len(body)
    with SessionRecorder(tmp_path, now=fixed_clock()) as recorder:
        offset = recorder.append(record)
    raw = recorder.path.read_bytes()
    assert len(raw) < 1.25 * len(body)
    stored = read_recording(recorder.path).records[0]
    assert stored["summary"]["items_omitted"] == 200
    assert "items" not in stored["summary"]
    assert stored["summary"]["headline"] == record["summary"]["headline"]
    assert request_body(stored["request"]) == body
    assert read_record_at(recorder.path, offset) == record, "the detail view gets the items back"
    assert "items" in record["summary"], "the caller's record is not changed"


def test_a_normal_body_keeps_its_summary_items(tmp_path: Path) -> None:
    record = summarized(batch_body(3))
    with SessionRecorder(tmp_path, now=fixed_clock()) as recorder:
        recorder.append(record)
    assert read_recording(recorder.path).records == (record,)


def test_a_session_that_records_nothing_leaves_no_file(tmp_path: Path) -> None:
    """Idle runs used to leave 0-byte sessions that `sessions` listed and `replay` picked by default."""
    directory = tmp_path / "rec"
    with SessionRecorder(directory, now=fixed_clock()) as recorder:
        planned = recorder.path
        assert recorder.paths == () and not planned.exists(), "no file before the first line"
        assert stat.S_IMODE(directory.stat().st_mode) == 0o700, "the directory is checked and made at start"
    assert list(directory.glob("*.jsonl")) == [] and recorder.paths == ()
    assert planned.name == "20261126-215500.jsonl"


def test_the_first_line_creates_the_file_where_path_said(tmp_path: Path) -> None:
    with SessionRecorder(tmp_path, now=fixed_clock()) as recorder:
        planned = recorder.path
        assert recorder.append(make_record(1, b"{}")) == 0
        assert recorder.path == planned and recorder.paths == (planned,)
        assert stat.S_IMODE(planned.stat().st_mode) == 0o600
        assert read_recording(planned).records[0]["seq"] == 1, "on disk before append returns"


def test_a_name_taken_before_the_first_line_moves_the_session_on(tmp_path: Path) -> None:
    """Two sessions started in the same second: whichever records first gets the plain name (O_EXCL)."""
    early = SessionRecorder(tmp_path, now=fixed_clock())
    late = SessionRecorder(tmp_path, now=fixed_clock())
    assert early.path == late.path, "both planned the free name"
    late.append(make_record(1, b"{}"))
    early.append(make_record(1, b"{}"))
    early.close()
    late.close()
    assert (late.path.name, early.path.name) == ("20261126-215500.jsonl", "20261126-215500-2.jsonl")
    assert early.paths == (early.path,)


_JSON_VALUES = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False, allow_infinity=False) | st.text(),
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=8), inner, max_size=4),
    max_leaves=20,
)


@settings(max_examples=300, deadline=None)
@given(st.dictionaries(st.text(max_size=8), _JSON_VALUES, max_size=6), st.booleans())
def test_a_line_reads_back_exactly_as_json_reads_it(value: dict[str, Any], ascii_only: bool) -> None:
    """The fast line reader (orjson) never changes a value: big integers, lone surrogates (escaped, as the
    recorder writes them) and all."""
    try:
        raw = json.dumps(value, ensure_ascii=ascii_only).encode("utf-8")
    except UnicodeEncodeError:  # a lone surrogate: the recorder escapes it
        raw = json.dumps(value).encode("utf-8")
    got, problem = recording._decode_line(raw)
    assert (repr(got), problem) == (repr(json.loads(raw)), "")


def test_integers_beyond_64_bits_are_read_exactly() -> None:
    for number in (2**63, 2**64, -(2**63) - 1, 10**30):
        for value in ({"n": number}, {"a": "x", "n": [1, number]}, {"n": {"m": number}}):
            for separators in ((", ", ": "), (",", ":")):  # the recorder's lines are compact
                line = json.dumps(value, separators=separators).encode()
                assert recording._decode_line(line)[0] == value, line
