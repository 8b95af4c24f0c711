"""Replay: send a plan (in order, or N at a time, paced), judge each answer as Meta would, record it."""

from __future__ import annotations

import asyncio
import gc
import math
import time
from collections import Counter
from collections.abc import Awaitable, Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import urlsplit

from yarl import URL

from wa_devtunnel.engine.exchange import new_exchange_id, utc_timestamp
from wa_devtunnel.engine.forwarder import Forwarder, ForwardResult
from wa_devtunnel.engine.http_client import REQUEST_ERRORS, Failure, client_session, request_failure
from wa_devtunnel.engine.recording import RECORDING_VERSION, SessionRecorder, encode_body
from wa_devtunnel.engine.replay.plan import FORGED, REPLAY_ORIGIN, PlannedRequest, ReplayOptions, header_value
from wa_devtunnel.engine.tunnel.selftest import judge_handshake_answer
from wa_devtunnel.rules.decode.payload import partial_of
from wa_devtunnel.rules.handshake import redact_verify_token
from wa_devtunnel.rules.signature import SIGNATURE_HEADER, SigningKey, check_signature, signing_keys


@dataclass(frozen=True, slots=True)
class ReplayResult:
    """What the target answered; `ok` is 2xx for events, 200 + the exact challenge for handshakes."""

    planned: PlannedRequest
    answer: ForwardResult
    ok: bool
    detail: str

    @property
    def body_text(self) -> str:
        return self.answer.body.decode("utf-8", "replace")


class TokenBucket:
    """Paces sends to `rate` per second, allowing bursts of `burst`, across all workers."""

    def __init__(
        self,
        rate: float,
        burst: int = 1,
        clock: Callable[[], float] = time.monotonic,
        sleep: Callable[[float], Awaitable[Any]] = asyncio.sleep,
    ) -> None:
        if rate <= 0 or burst < 1:
            raise ValueError("rate must be positive and burst at least 1")
        self.rate, self.capacity = rate, float(burst)
        self._tokens, self._clock, self._sleep = float(burst), clock, sleep
        self._updated = clock()

    async def take(self) -> None:
        """Wait until one token is available, then spend it."""
        while True:
            now = self._clock()
            self._tokens = min(self.capacity, self._tokens + (now - self._updated) * self.rate)
            self._updated = now
            if self._tokens >= 1:
                self._tokens -= 1
                return
            await self._sleep((1 - self._tokens) / self.rate)


class ReplayNotRecorded(Exception):
    """Everything was sent, but the replay session could not be written (disk full...): exit 1, say so."""

    def __init__(self, results: list[ReplayResult], message: str) -> None:
        super().__init__(message)
        self.results = results


class _RecordWriter:
    """Records replayed exchanges on the event loop, a batch per loop turn, in the order the answers came.

    An answer costs a list append; the records of every answer of one loop turn are built and appended by
    one callback right after it, with one write(2) for the whole batch when the recorder has append_many
    (else one per record). No thread: a writer thread contends with the loop for the GIL and stalls the
    sends far more than the writes cost (page-cache writes do not block).
    """

    def __init__(self, recorder: SessionRecorder, options: ReplayOptions) -> None:
        self.recorder = recorder
        self.error: Exception | None = None
        self._bug: BaseException | None = None  # anything else stops recording and is raised by finish()
        self._make = _RecordMaker(options).make
        self._append_many: Callable[[list[dict[str, Any]]], object] | None = getattr(recorder, "append_many", None)
        self._pending: list[tuple[ReplayResult, str]] = []
        self._loop = asyncio.get_running_loop()

    def put(self, result: ReplayResult, sent_at: str) -> None:
        """Queues the result; the first of a loop turn schedules the turn's flush."""
        if not self._pending:
            self._loop.call_soon(self.flush)
        self._pending.append((result, sent_at))

    def flush(self) -> None:
        """Writes every queued record; a failure (disk full, recorder closed) is kept and reported at the end."""
        pending, self._pending = self._pending, []
        if not pending or self.error is not None or self._bug is not None:
            return
        recorder, make = self.recorder, self._make
        try:
            if self._append_many is not None:
                self._append_many([make(result, sent_at, recorder.next_seq()) for result, sent_at in pending])
            else:
                for result, sent_at in pending:
                    recorder.append(make(result, sent_at, recorder.next_seq()))
        except (OSError, ValueError) as exc:  # keep sending, report at the end
            self.error = exc
        except Exception as exc:  # a bug: not swallowed by the loop's callback handler, raised at the end
            self._bug = exc

    def finish(self) -> None:
        """Every record put so far is written when this returns."""
        self.flush()
        if self._bug is not None:
            raise self._bug


class _Sender:
    """Replay's client: one session with a keep-alive pool sized to the concurrency, bytes and headers as planned.

    What Forwarder.forward does for one request, minus its per-request work: the URL of each distinct query is
    built and parsed once, the planned headers are passed as they are.
    """

    def __init__(self, options: ReplayOptions) -> None:
        self._target = options.target_url
        self._timeout_s = options.timeout_s
        # No cookie jar, like the forwarder: a backend's Set-Cookie is never sent back with a later replay.
        self._session = client_session(
            options.timeout_s,
            decompress=False,
            auto_headers=False,
            max_connections=max(options.concurrency, 1),
            cookies=False,
        )
        self._urls: dict[str, URL] = {}

    async def send(self, planned: PlannedRequest) -> ForwardResult:
        """The answer, or why there is none (never raises for a target's problem)."""
        url = self._urls.get(planned.query)
        if url is None:
            url = self._urls[planned.query] = URL(Forwarder(self._target).url_for(planned.query), encoded=True)
        started = time.perf_counter()
        try:
            async with self._session.request(
                planned.method, url, data=planned.body or None, headers=planned.headers, allow_redirects=False
            ) as response:
                payload = await response.read()
                content_type = response.headers.get("Content-Type", "")
                elapsed_ms = (time.perf_counter() - started) * 1000
                return ForwardResult(self._target, response.status, payload, content_type, elapsed_ms)
        except REQUEST_ERRORS as exc:
            elapsed_ms = (time.perf_counter() - started) * 1000
            failure = request_failure(exc, self._timeout_s)
            timed_out = failure.kind is Failure.TIMED_OUT
            return ForwardResult(self._target, None, b"", "", elapsed_ms, failure.about("backend"), timed_out)

    async def close(self) -> None:
        await self._session.close()


def judge(planned: PlannedRequest, answer: ForwardResult) -> tuple[bool, str]:
    """Meta's own criteria: 2xx acknowledges an event, 200 + the exact challenge passes a handshake.

    A deliberately wrong signature (--bad-signature) passes the other way round: a correct backend
    rejects it with a 4xx (Meta: verify the signature, refuse the request when it does not match).
    """
    if answer.error is not None:
        return False, answer.error
    if planned.challenge is not None:
        body = answer.body.decode("utf-8", "replace")
        ok, detail = judge_handshake_answer(answer.status or 0, answer.content_type, body, planned.challenge)
        return ok, "challenge echoed" if ok else detail
    status = answer.status or 0
    if planned.signature == FORGED:
        return judge_forged(status)
    ok = 200 <= status < 300
    return ok, "acknowledged" if ok else f"HTTP {status}"


def judge_forged(status: int) -> tuple[bool, str]:
    """A forged signature must be refused: any 4xx is a rejection; 2xx took it, 3xx/5xx did not say no."""
    if 400 <= status < 500:
        return True, f"rejected ({status})"
    if 200 <= status < 300:
        return False, f"accepted a wrong signature (HTTP {status})"
    if status >= 500:
        return False, f"HTTP {status}: a server error, not a rejection (answer 401 or 403)"
    return False, f"HTTP {status}: not a rejection (answer 401 or 403)"


async def send_plan(
    plan: Sequence[PlannedRequest],
    options: ReplayOptions,
    recorder: SessionRecorder | None = None,
    on_result: Callable[[ReplayResult], None] | None = None,
) -> list[ReplayResult]:
    """Send in recording order (N at a time with concurrency); results come back in plan order."""
    sender = _Sender(options)
    bucket = TokenBucket(options.rate) if options.rate else None
    results: list[ReplayResult | None] = [None] * len(plan)
    pending = iter(plan)
    writer = _RecordWriter(recorder, options) if recorder is not None and not recorder.closed else None

    async def worker() -> None:
        for planned in pending:
            if bucket is not None:
                await bucket.take()
            sent_at = utc_timestamp()
            answer = await sender.send(planned)
            ok, detail = judge(planned, answer)
            result = ReplayResult(planned, answer, ok, detail)
            results[planned.index] = result
            if writer is not None:
                writer.put(result, sent_at)
            if on_result is not None:
                on_result(result)

    # The plan and the recording behind it live through the whole replay; without this, the
    # collections that recording each reply triggers keep re-scanning them (10,000 loaded events
    # cost the client more time in the collector than in recording).
    gc.freeze()
    try:
        await asyncio.gather(*(worker() for _ in range(min(max(options.concurrency, 1), len(plan)))))
    finally:
        gc.unfreeze()
        await sender.close()
        if writer is not None:
            writer.finish()
    done = [result for result in results if result is not None]
    if writer is not None and writer.error is not None:
        raise ReplayNotRecorded(done, f"could not record the replay to {writer.recorder.path}: {writer.error}")
    return done


def replay_record(
    result: ReplayResult,
    options: ReplayOptions,
    sent_at: str,
    seq: int,
    path: str | None = None,
    keys: tuple[SigningKey, ...] | None = None,
) -> dict[str, Any]:
    """A normal version-1 record of the request as sent and the answer as received, marked as a replay.

    `path` (the target URL's path) and `keys` (signing_keys of the App Secret) can be computed once per replay;
    a whole replay makes its records with one _RecordMaker (the same dict, its constants computed once).
    """
    return _RecordMaker(options, path, keys).make(result, sent_at, seq)


class _RecordMaker:
    """replay_record for every answer of one replay: what build_record(...) with the replay's `extra` makes,
    key for key in the same order (so the same line), with what is the same for every record computed once:
    the target's path, the signing keys, each distinct query's redaction, each source session's name; the
    answer's text is decoded once (for the response and the forward object).
    """

    def __init__(self, options: ReplayOptions, path: str | None = None, keys: tuple[SigningKey, ...] | None = None):
        self._secrets = [("default", options.app_secret)] if options.app_secret else []
        self._keys = keys if keys is not None else signing_keys(self._secrets)
        self._path = path if path is not None else urlsplit(options.target_url).path or "/"
        self._queries: dict[str, str] = {}
        self._sessions: dict[Any, str] = {}

    def make(self, result: ReplayResult, sent_at: str, seq: int) -> dict[str, Any]:
        planned, answer = result.planned, result.answer
        source = planned.source
        query = self._queries.get(planned.query)
        if query is None:
            query = self._queries[planned.query] = redact_verify_token(planned.query)
        request: dict[str, Any] = {
            "method": planned.method,
            "path": self._path,
            "query": query,
            "headers": [[name, value] for name, value in planned.headers],
        }
        request.update(encode_body(planned.body))
        session = self._sessions.get(source.session)
        if session is None:
            session = self._sessions[source.session] = source.session.name
        if answer.error is None:
            response_body = answer.body.decode("utf-8", "replace")
            forward_body = response_body[:4096]
        else:
            response_body, forward_body = answer.error, answer.body.decode("utf-8", "replace")[:4096]
        record: dict[str, Any] = {
            "v": RECORDING_VERSION,
            "id": new_exchange_id(),
            "seq": seq,
            "received_at": sent_at,
            "kind": source.kind,
            "request": request,
            "response": {"status": answer.status or 0, "body": response_body},
            "signature": "unchecked",
            "origin": REPLAY_ORIGIN,
            "replay_of": {"session": session, "id": source.id, "seq": source.seq},
            # ForwardResult.to_record, with the answer's text decoded once
            "forward": {
                "url": answer.url,
                "status": answer.status,
                "elapsed_ms": round(answer.elapsed_ms, 3),
                "error": answer.error,
                "body": forward_body,
            },
            "elapsed_ms": round(answer.elapsed_ms, 3),
        }
        if planned.challenge is not None:
            record["verify"] = {"ok": result.ok, "reason": result.detail}
            return record
        header = header_value(planned.headers, SIGNATURE_HEADER)
        check = check_signature(planned.body, header, self._secrets, keys=self._keys)
        record["signature"] = check.verdict.value
        record["signature_detail"] = check.detail
        recorded = source.record
        summary = recorded.get("summary")
        if isinstance(summary, Mapping):  # derived data: what only the receiver knew, the rest from the body sent
            record["summary"] = partial_of(summary)
        if "account" in recorded:
            record["account"] = recorded["account"]
        return record


@dataclass(frozen=True, slots=True)
class ReplaySummary:
    """Counts per status and latency percentiles: what the summary table and --json print."""

    total: int
    ok: int
    failed: int
    statuses: Mapping[str, int]
    p50_ms: float
    p95_ms: float
    max_ms: float
    seconds: float
    forged: int = 0  # requests sent with a deliberately wrong signature (--bad-signature)
    rejected: Mapping[str, int] = field(default_factory=dict)  # their 4xx answers: status -> count

    @property
    def rate(self) -> float:
        return self.total / self.seconds if self.seconds > 0 else 0.0

    @property
    def not_rejected(self) -> int:
        """Forged requests the target took (2xx) or did not clearly refuse (3xx, 5xx, no answer)."""
        return self.forged - sum(self.rejected.values())


def summarize(results: Sequence[ReplayResult], seconds: float) -> ReplaySummary:
    """Errors count under 'error' so the table shows refused and timed-out requests next to statuses."""
    statuses = Counter(str(r.answer.status) if r.answer.status is not None else "error" for r in results)
    latencies = sorted(r.answer.elapsed_ms for r in results)
    ok = sum(1 for r in results if r.ok)
    forged = [r for r in results if r.planned.signature == FORGED and r.planned.challenge is None]
    rejected = Counter(str(r.answer.status) for r in forged if r.ok)
    return ReplaySummary(
        total=len(results),
        ok=ok,
        failed=len(results) - ok,
        statuses=dict(sorted(statuses.items())),
        p50_ms=percentile(latencies, 0.50),
        p95_ms=percentile(latencies, 0.95),
        max_ms=latencies[-1] if latencies else 0.0,
        seconds=seconds,
        forged=len(forged),
        rejected=dict(sorted(rejected.items())),
    )


def percentile(sorted_values: Sequence[float], q: float) -> float:
    """Nearest-rank percentile of already sorted values (0.0 for none)."""
    if not sorted_values:
        return 0.0
    rank = max(1, math.ceil(q * len(sorted_values)))
    return sorted_values[min(rank, len(sorted_values)) - 1]
