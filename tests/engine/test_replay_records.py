"""Replay's records, made cheaply (issue 17), are the very lines the build_record-based replay_record wrote.

The reference below is replay_record as it was before issue 17 (build_record + ForwardResult.to_record, the
body encoded from the bytes sent); the lines of both, written by a SessionRecorder, must be byte-identical
(the random exchange id aside): text, base64 and edited bodies, handshakes, every signature mode, answers
with and without a body, failures, long and non-UTF-8 answers. The sender's batch writer (append_many when
the recorder has it, append otherwise) writes the same lines in the same order.
"""

from __future__ import annotations

import asyncio
import itertools
from pathlib import Path
from typing import Any
from unittest import mock
from urllib.parse import urlsplit

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from wa_devtunnel.engine import exchange as exchange_module
from wa_devtunnel.engine.exchange import build_record
from wa_devtunnel.engine.forwarder import ForwardResult
from wa_devtunnel.engine.recording import SessionRecorder
from wa_devtunnel.engine.replay import send as send_module
from wa_devtunnel.engine.replay.plan import (
    REPLAY_ORIGIN,
    PlannedRequest,
    ReplayOptions,
    SignatureMode,
    header_value,
    plan_replay,
)
from wa_devtunnel.engine.replay.send import ReplayResult, _RecordWriter, judge, replay_record
from wa_devtunnel.engine.replay.source import load_recordings
from wa_devtunnel.rules.decode.payload import decode_payload, full_summary, partial_of
from wa_devtunnel.rules.handshake import redact_verify_token
from wa_devtunnel.rules.samples import payloads as samples
from wa_devtunnel.rules.signature import SIGNATURE_HEADER, check_signature, sign_body

SECRET = "records-test-secret"
TOKEN = "records-verify-token"
TARGET = "http://127.0.0.1:9/webhook/whatsapp?x=1"


def reference_record(result: ReplayResult, options: ReplayOptions, sent_at: str, seq: int) -> dict[str, Any]:
    """replay_record before issue 17's rewrite, verbatim but for the precomputed path and keys."""
    planned, answer = result.planned, result.answer
    source = planned.source
    extra: dict[str, Any] = {
        "origin": REPLAY_ORIGIN,
        "replay_of": {"session": source.session.name, "id": source.id, "seq": source.seq},
        "forward": answer.to_record(),
        "elapsed_ms": round(answer.elapsed_ms, 3),
    }
    signature = "unchecked"
    if planned.challenge is not None:
        extra["verify"] = {"ok": result.ok, "reason": result.detail}
    else:
        secrets = [("default", options.app_secret)] if options.app_secret else []
        check = check_signature(planned.body, header_value(planned.headers, SIGNATURE_HEADER), secrets)
        signature = check.verdict.value
        extra["signature_detail"] = check.detail
        if "summary" in source.record:  # derived data: a replay keeps what only the receiver knew
            extra["summary"] = partial_of(source.record["summary"])
        if "account" in source.record:
            extra["account"] = source.record["account"]
    return build_record(
        seq=seq,
        received_at=sent_at,
        kind=source.kind,
        method=planned.method,
        path=urlsplit(options.target_url).path or "/",
        query=redact_verify_token(planned.query),
        headers=[[name, value] for name, value in planned.headers],
        body=planned.body,
        status=answer.status or 0,
        response_body=result.body_text if answer.error is None else answer.error,
        signature=signature,
        extra=extra,
    )


def source_record(seq: int, kind: str, body: bytes, query: str, extra: dict[str, Any]) -> dict[str, Any]:
    headers = [["Content-Type", "application/json"], ["X-Hub-Signature-256", sign_body(body, SECRET)]]
    return build_record(
        seq=seq,
        received_at="2026-12-07T07:00:00.000000Z",
        kind=kind,
        method="POST" if kind == "event" else "GET",
        path="/webhook/whatsapp",
        query=query,
        headers=headers if kind == "event" else [["Accept", "*/*"]],
        body=body,
        status=200,
        response_body="EVENT_RECEIVED",
        signature="valid" if kind == "event" else "unchecked",
        extra={"origin": "meta", **extra},
    )


def write_sources(directory: Path, texts: list[str]) -> Path:
    """Events with the given texts (non-ASCII, quotes, escapes), one non-UTF-8 body, one handshake."""
    with SessionRecorder(directory) as recorder:
        seq = itertools.count(1)
        for number, text in enumerate(texts):
            body = samples.text_message_payload(text, message_id=f"wamid.REC{number}")
            extra: dict[str, Any] = {"account": {"waba_id": "1"}} if number % 2 else {}
            if number % 3 == 0:
                extra["summary"] = {"partial": True, "flags": ["duplicate"] if number % 2 else []}
            elif number % 3 == 1:  # an older receiver's whole summary
                extra["summary"] = {**decode_payload(body, values=False).to_dict(), "flags": ["duplicate"]}
            recorder.append(source_record(next(seq), "event", body, "a=1&hub.verify_token=leak" * (number % 2), extra))
        recorder.append(source_record(next(seq), "event", b"\xff\xfe not UTF-8 \x00", "", {}))
        query = f"hub.mode=subscribe&hub.challenge=1&hub.verify_token={TOKEN}"
        recorder.append(source_record(next(seq), "verify", b"", query, {}))
    return recorder.path


ANSWERS = st.one_of(
    st.builds(
        lambda status, body, ms: ForwardResult(TARGET, status, body, "text/plain", ms),
        st.sampled_from([200, 204, 301, 401, 500]),
        st.one_of(st.just(b""), st.binary(max_size=64), st.text(max_size=64).map(str.encode)),
        st.floats(min_value=0, max_value=10_000, allow_nan=False),
    ),
    st.builds(lambda body: ForwardResult(TARGET, 200, body, "text/plain", 1.5), st.just(("é" + "a" * 4200).encode())),
    st.builds(
        lambda ms: ForwardResult(TARGET, None, b"", "", ms, "the backend did not answer in time", True),
        st.floats(min_value=0, max_value=100, allow_nan=False),
    ),
)


def results_for(plan: list[PlannedRequest], answers: list[ForwardResult]) -> list[ReplayResult]:
    results = []
    for planned, answer in zip(plan, itertools.cycle(answers), strict=False):
        if planned.challenge is not None and answer.status == 200:  # sometimes the exact challenge
            answer = ForwardResult(answer.url, 200, planned.challenge.encode(), "text/plain", answer.elapsed_ms)
        results.append(ReplayResult(planned, answer, *judge(planned, answer)))
    return results


def lines(directory: Path, records: list[dict[str, Any]]) -> bytes:
    with SessionRecorder(directory) as recorder:
        for record in records:
            recorder.append({**record, "id": "0" * 32})  # the id is random: the same for both sides
    return recorder.path.read_bytes()


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(
    texts=st.lists(st.text(min_size=0, max_size=40), min_size=1, max_size=6),
    answers=st.lists(ANSWERS, min_size=1, max_size=5),
    mode=st.sampled_from(list(SignatureMode)),
    secret=st.sampled_from([SECRET, "another-secret", None]),
    edit=st.booleans(),
)
def test_replay_records_are_byte_identical_to_the_build_record_ones(
    tmp_path_factory: Any,
    texts: list[str],
    answers: list[ForwardResult],
    mode: SignatureMode,
    secret: str | None,
    edit: bool,
) -> None:
    root = tmp_path_factory.mktemp("records")
    exchanges = list(load_recordings([write_sources(root / "sources", texts)]).exchanges)
    if (mode is not SignatureMode.ORIGINAL or edit) and secret is None:
        secret = SECRET  # re-signing needs one
    options = ReplayOptions(TARGET, signature=mode, app_secret=secret, verify_token=TOKEN)
    edited = {exchanges[0].id: b'{"edited": "\xc3\xa9"}'} if edit else None
    plan = plan_replay(exchanges, options, edited)
    results = results_for(plan, answers)

    ours = [replay_record(r, options, "2026-12-07T08:00:00.000000Z", n) for n, r in enumerate(results, 1)]
    theirs = [reference_record(r, options, "2026-12-07T08:00:00.000000Z", n) for n, r in enumerate(results, 1)]
    assert [{**o, "id": ""} for o in ours] == [{**t, "id": ""} for t in theirs]
    assert [list(o) for o in ours] == [list(t) for t in theirs]  # the same keys in the same order
    assert lines(root / "ours", ours) == lines(root / "theirs", theirs)


class _Recorder(SessionRecorder):
    """A recorder with append_many (one call per batch), as the lead was asked for."""

    batches: list[int]

    def append_many(self, records: list[dict[str, Any]]) -> list[int]:
        self.batches.append(len(records))
        return [self.append(record) for record in records]


def test_the_batch_writer_writes_the_same_lines_with_or_without_append_many(tmp_path: Path) -> None:
    exchanges = list(load_recordings([write_sources(tmp_path / "sources", ["a", "é", "\U0001f600"])]).exchanges)
    options = ReplayOptions(TARGET, app_secret=SECRET, verify_token=TOKEN)
    answers = [ForwardResult(TARGET, 200, b"ok", "text/plain", 2.25), ForwardResult(TARGET, 500, b"\xff", "", 1)]
    results = results_for(plan_replay(exchanges, options), answers)
    sent_at = "2026-12-07T08:00:00.000000Z"

    def numbered() -> Any:  # the random exchange ids, made the same on every side
        ids = itertools.count()
        return lambda: f"{next(ids):032x}"

    async def write(recorder: SessionRecorder) -> bytes:
        writer = _RecordWriter(recorder, options)
        for result in results:  # one loop turn: one batch
            writer.put(result, sent_at)
        await asyncio.sleep(0)
        writer.finish()
        recorder.close()
        return recorder.path.read_bytes()

    with mock.patch.object(send_module, "new_exchange_id", numbered()):
        plain = asyncio.run(write(SessionRecorder(tmp_path / "plain")))
    batching = _Recorder(tmp_path / "batch")
    batching.batches = []
    with mock.patch.object(send_module, "new_exchange_id", numbered()):
        batched = asyncio.run(write(batching))
    with mock.patch.object(exchange_module, "new_exchange_id", numbered()), SessionRecorder(tmp_path / "ref") as ref:
        for seq, result in enumerate(results, 1):
            ref.append(reference_record(result, options, sent_at, seq))
    assert batching.batches == [len(results)]
    assert plain == batched == ref.path.read_bytes()


def test_a_replay_keeps_what_only_the_receiver_knew_and_readers_derive_the_rest(tmp_path: Path) -> None:
    """The source's summary (whole from an older receiver, or partial) becomes partial in the replay's line:
    a reader derives the whole one from the body the replay sent, the receiver's flags kept."""
    loaded = load_recordings([write_sources(tmp_path / "src", ["one", "two", "three", "four"])])
    options = ReplayOptions(TARGET, app_secret=SECRET, verify_token=TOKEN)
    for planned in plan_replay(loaded.exchanges, options):
        answer = ForwardResult(TARGET, 200, b"EVENT_RECEIVED", "text/plain", 1.0)
        ok, detail = judge(planned, answer)
        record = replay_record(ReplayResult(planned, answer, ok, detail), options, "2026-12-07T08:00:00.000000Z", 1)
        source = planned.source.record.get("summary")
        if planned.challenge is not None or source is None:
            assert "summary" not in record
            continue
        assert record["summary"]["partial"] is True and "items" not in record["summary"]
        derived = full_summary(record["summary"], planned.body)
        if source.get("partial") is True:
            assert derived == full_summary(source, planned.body)
        else:
            assert derived == source and derived["flags"] == ["duplicate"]
