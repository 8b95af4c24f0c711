"""Replay throughput and forwarding overhead, each measured against its baseline in the same run.

    .venv/bin/python benchmarks/replay.py [--events N] [--concurrency C] [--rounds R]
                                          [--forward-requests M] [--forward-concurrency F] [--warmup W]

1. Replay: N signed, Meta-shaped events (distinct message ids) are written straight to a session
   file with SessionRecorder + build_record. The replay engine loads, selects and plans them exactly
   as `wa-devtunnel replay` does, then sends them with `--concurrency C` (recording every replay to
   a new session file, as the CLI does by default). The baseline is a plain aiohttp client loop
   posting the same bodies with the same headers at the same concurrency. A third client, the
   engine with --no-record, shows what recording costs. Rounds alternate (plain, ours, ours
   --no-record, plain ...) so the noise of a shared machine lands on all; the ratio of the median
   rates (ours, recording, over plain) is checked against 0.8. Client CPU per request is printed
   too: it is less sensitive to a busy machine than wall time.
2. Forwarding overhead: M requests at concurrency F, posted directly to the backend, and to our
   receiver (WebhookService with forward_to = the backend, in its own process, recording and
   verifying signatures as `wa-devtunnel --forward-to` does). Added latency = ours - direct, at p50
   and p99.

The backend is a separate process: an aiohttp app that reads the body, checks X-Hub-Signature-256
with the App Secret and answers 200. At the end it must have seen every body with a valid
signature: byte-identical bodies are part of what is measured.

Exit status: 0 when the replay ratio meets the target and no request failed, 1 otherwise.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import gc
import hmac
import multiprocessing as mp
import os
import platform
import statistics
import sys
import tempfile
import time
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass, replace
from multiprocessing.connection import Connection
from pathlib import Path
from typing import Any

import aiohttp
from aiohttp import web
from common import APP_SECRET, HOST, Child, event_record, start_child  # also puts this checkout on sys.path

from wa_devtunnel.engine.exchange import utc_timestamp
from wa_devtunnel.engine.recording import SessionRecorder, read_recording
from wa_devtunnel.engine.replay.plan import PlannedRequest, ReplayOptions, plan_replay
from wa_devtunnel.engine.replay.send import percentile, send_plan
from wa_devtunnel.engine.replay.source import Selection, load_recordings, select
from wa_devtunnel.engine.service import WebhookService
from wa_devtunnel.rules.decode.payload import decode_payload
from wa_devtunnel.rules.samples import payloads as samples
from wa_devtunnel.rules.signature import sign_body
from wa_devtunnel.settings import DEFAULT_PATH, load_settings

TARGET_RATIO = 0.8
PLAIN, OURS, OURS_NO_RECORD = "plain aiohttp loop", "wa-devtunnel replay", "replay --no-record"
CLIENTS = (PLAIN, OURS, OURS_NO_RECORD)
ROUND_TIMEOUT = 600.0


# --------------------------------------------------------------------------- child processes


def backend_main(conn: Connection) -> None:
    """The developer's backend: verify the signature over the raw body, answer 200, count."""
    counts: Counter[str] = Counter()

    async def webhook(request: web.Request) -> web.Response:
        body = await request.read()
        given = request.headers.get("X-Hub-Signature-256", "").encode()
        expected = ("sha256=" + hmac.new(APP_SECRET.encode(), body, "sha256").hexdigest()).encode()
        counts["valid" if hmac.compare_digest(given, expected) else "invalid"] += 1
        return web.Response(text="ok")

    async def serve() -> None:
        app = web.Application()
        app.router.add_post(DEFAULT_PATH, webhook)
        runner = web.AppRunner(app, access_log=None, handle_signals=False)
        await runner.setup()
        await web.TCPSite(runner, HOST, 0).start()
        await _answer_until_stopped(conn, ("ready", runner.addresses[0][1]), lambda: dict(counts))
        await runner.cleanup()

    asyncio.run(serve())


def receiver_main(conn: Connection, backend_url: str, recordings_dir: str) -> None:
    """`wa-devtunnel --headless --forward-to BACKEND` minus the printing: record, verify, forward."""

    async def serve() -> None:
        settings = load_settings(
            {
                "host": HOST,
                "port": "0",
                "recordings_dir": recordings_dir,
                "app_secret": APP_SECRET,
                "verify_token": "wa-bench-verify-token",
                "tunnel": "none",
                "forward_to": backend_url,
            },
            environ={},
            cwd=Path(recordings_dir),
        )
        service = WebhookService(settings)
        subscription = service.bus.subscribe()

        async def drain() -> None:
            while True:
                await subscription.get_batch()

        pump = asyncio.create_task(drain())
        started = await service.start()
        await _answer_until_stopped(conn, ("ready", started.port), lambda: {"exchanges": service.exchanges})
        await service.stop()
        pump.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await pump

    asyncio.run(serve())


async def _answer_until_stopped(conn: Connection, ready: tuple[Any, ...], stats: Any) -> None:
    """Report readiness, answer ("stats",) with `stats()`, return on ("stop",)."""
    loop = asyncio.get_running_loop()
    commands: asyncio.Queue[tuple[Any, ...]] = asyncio.Queue()
    loop.add_reader(conn.fileno(), lambda: commands.put_nowait(conn.recv()))
    conn.send(ready)
    while True:
        command = await commands.get()
        if command[0] == "stop":
            break
        conn.send(("stats", stats()))
    loop.remove_reader(conn.fileno())
    conn.send(("stopped", stats()))


# --------------------------------------------------------------------------- the recording and the clients


def write_recording(directory: Path, events: int) -> Path:
    """N signed text events, as the receiver would have recorded them (one summary decoded, reused)."""
    first = samples.text_message_payload(message_id="wamid.BENCH000000")
    summary = decode_payload(first).to_dict()
    with SessionRecorder(directory) as recorder:
        for number in range(events):
            body = first.replace(b"wamid.BENCH000000", f"wamid.BENCH{number:06d}".encode())
            headers = [
                ["Host", "bench.ngrok-free.app"],
                ["User-Agent", "facebookexternalua"],
                ["Content-Length", str(len(body))],
                ["Accept", "*/*"],
                ["Accept-Encoding", "deflate, gzip"],
                ["Content-Type", "application/json"],
                ["X-Hub-Signature-256", sign_body(body, APP_SECRET)],
            ]
            recorder.append(event_record(recorder.next_seq(), body, headers, summary, utc_timestamp()))
    return recorder.path


@dataclass(frozen=True)
class LoadResult:
    requests: int
    seconds: float
    statuses: dict[str, int]
    latencies_ms: list[float]
    fsync_seconds: float = 0.0
    cpu_seconds: float = 0.0

    @property
    def rate(self) -> float:
        return self.requests / self.seconds if self.seconds else 0.0

    @property
    def failures(self) -> int:
        return sum(n for status, n in self.statuses.items() if status != "200")


async def plain_loop(url: str, plan: Sequence[PlannedRequest], concurrency: int) -> LoadResult:
    """The baseline: one pooled aiohttp session, C workers posting the same bodies and headers.

    The loaded recording is in this process for both clients; the baseline gets the same frozen
    garbage collector as the replay engine, so it is not slowed down by our data.
    """
    statuses: Counter[str] = Counter()
    latencies: list[float] = []
    items = iter(plan)
    clock = time.perf_counter
    connector = aiohttp.TCPConnector(limit=concurrency)
    async with aiohttp.ClientSession(connector=connector) as session:

        async def worker() -> None:
            for planned in items:
                began = clock()
                try:
                    async with session.post(url, data=planned.body, headers=list(planned.headers)) as response:
                        await response.read()
                        statuses[str(response.status)] += 1
                except (aiohttp.ClientError, OSError) as exc:
                    statuses[type(exc).__name__] += 1
                latencies.append((clock() - began) * 1000)

        gc.freeze()
        try:
            started = clock()
            await asyncio.gather(*(worker() for _ in range(concurrency)))
            seconds = clock() - started
        finally:
            gc.unfreeze()
    return LoadResult(len(plan), seconds, dict(statuses), latencies)


async def ours(plan: Sequence[PlannedRequest], options: ReplayOptions, recordings: Path | None) -> LoadResult:
    """The replay engine as `wa-devtunnel replay --concurrency C` runs it (recording unless `recordings` is None)."""
    with contextlib.ExitStack() as stack:
        recorder = stack.enter_context(SessionRecorder(recordings, suffix="replay")) if recordings else None
        started = time.perf_counter()
        results = await send_plan(plan, options, recorder)
        seconds = time.perf_counter() - started
        if recorder is not None:
            recorder.close()  # one fsync of the whole file, reported apart: it is disk time, not sending
        closed = time.perf_counter() - started - seconds
    statuses = Counter(str(r.answer.status) if r.answer.status is not None else "error" for r in results)
    return LoadResult(len(results), seconds, dict(statuses), [r.answer.elapsed_ms for r in results], closed)


# --------------------------------------------------------------------------- orchestration


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--events", type=int, default=10_000, help="recorded events to replay (10000)")
    parser.add_argument("--concurrency", type=int, default=32, help="replay concurrency (32)")
    parser.add_argument("--rounds", type=int, default=3, help="replay rounds per side (3)")
    parser.add_argument("--forward-requests", type=int, default=5000, help="requests per overhead round (5000)")
    parser.add_argument("--forward-concurrency", type=int, default=8, help="overhead concurrency (8)")
    parser.add_argument("--warmup", type=int, default=1000, help="unmeasured requests per client first (1000)")
    parser.add_argument("--target", type=float, default=TARGET_RATIO, help="minimum ours/plain (0.8)")
    args = parser.parse_args(argv)
    for name in ("events", "concurrency", "rounds", "forward_requests", "forward_concurrency"):
        if getattr(args, name) < 1:
            parser.error(f"--{name.replace('_', '-')} must be at least 1")
    return args


def stats_of(child: Child) -> dict[str, Any]:
    return child.ask(("stats",))[1]


def run(args: argparse.Namespace) -> int:
    ctx = mp.get_context("spawn")
    print(
        f"wa-devtunnel replay benchmark: python {platform.python_version()}, aiohttp {aiohttp.__version__}, "
        f"{os.cpu_count()} CPUs, load avg {' '.join(f'{x:.2f}' for x in os.getloadavg())}"
    )
    with tempfile.TemporaryDirectory(prefix="wa-devtunnel-replay-bench-") as tmp:
        tmp_path = Path(tmp)
        children: list[Child] = []
        try:
            backend = start_child(ctx, "backend", backend_main)
            children.append(backend)
            backend_url = f"http://{HOST}:{backend.receive()[1]}{DEFAULT_PATH}"
            receiver = start_child(ctx, "receiver", receiver_main, backend_url, str(tmp_path / "live"))
            children.append(receiver)
            receiver_url = f"http://{HOST}:{receiver.receive()[1]}{DEFAULT_PATH}"
            print(f"backend  pid {backend.process.pid} on {backend_url}")
            print(f"receiver pid {receiver.process.pid} on {receiver_url} (forward_to the backend)\n")

            began = time.perf_counter()
            recording = write_recording(tmp_path / "recordings", args.events)
            wrote_s = time.perf_counter() - began
            began = time.perf_counter()
            exchanges = select(load_recordings([recording]).exchanges, Selection())
            options = ReplayOptions(backend_url, concurrency=args.concurrency)
            plan = plan_replay(exchanges, options)
            planned_s = time.perf_counter() - began
            size_mb = recording.stat().st_size / 1e6
            print(f"recording: {args.events} events, {size_mb:.1f} MB, written in {wrote_s:.2f} s")
            print(f"load + select + plan: {len(plan)} requests in {planned_s:.2f} s\n")

            if args.warmup:
                warm = plan[: args.warmup]
                asyncio.run(plain_loop(backend_url, warm, args.concurrency))
                asyncio.run(ours(warm, options, tmp_path / "warm-up"))
                asyncio.run(plain_loop(receiver_url, warm, args.forward_concurrency))
                print(f"warm-up: {len(warm)} requests per client (not counted)\n")
            replay_rows: list[tuple[int, str, LoadResult]] = []
            header = (
                f"{'round':>5}  {'client':<22} {'requests':>8} {'seconds':>8} {'req/s':>8} {'CPU us/req':>10}  statuses"
            )
            print(f"1. replay, concurrency {args.concurrency}\n{header}\n{'-' * len(header)}")
            for number in range(1, args.rounds + 1):
                for name in CLIENTS:
                    cpu_before = time.process_time()
                    if name == PLAIN:
                        result = asyncio.run(plain_loop(backend_url, plan, args.concurrency))
                    else:
                        result = asyncio.run(ours(plan, options, tmp_path / "replays" if name == OURS else None))
                    result = replace(result, cpu_seconds=time.process_time() - cpu_before)
                    replay_rows.append((number, name, result))
                    fsync = f"  (+{result.fsync_seconds:.2f} s fsync at close)" if name == OURS else ""
                    print(
                        f"{number:>5}  {name:<22} {result.requests:>8} {result.seconds:>8.2f} {result.rate:>8.0f} "
                        f"{result.cpu_seconds / result.requests * 1e6:>10.0f}  "
                        f"{result.statuses}{fsync}",
                        flush=True,
                    )
            backend_counts = stats_of(backend)

            print(f"\n2. forwarding overhead, concurrency {args.forward_concurrency}")
            forward_plan = plan[: args.forward_requests]
            latencies: dict[str, list[float]] = {"direct": [], "receiver": []}
            failures = 0
            for _ in range(2):
                for name, url in (("direct", backend_url), ("receiver", receiver_url)):
                    result = asyncio.run(plain_loop(url, forward_plan, args.forward_concurrency))
                    latencies[name] += result.latencies_ms
                    failures += result.failures
            receiver_counts = stats_of(receiver)
        finally:
            for child in children:
                child.finish(("stop",))

        replay_files = sorted((tmp_path / "replays").glob("*.jsonl"))
        replay_lines = [len(read_recording(path).records) for path in replay_files]

    rates = {c: statistics.median(r.rate for _, name, r in replay_rows if name == c) for c in CLIENTS}
    cpu_us = {
        c: statistics.median(r.cpu_seconds / r.requests * 1e6 for _, name, r in replay_rows if name == c)
        for c in CLIENTS
    }
    by_round = {(number, name): r for number, name, r in replay_rows}
    per_round = [by_round[n, OURS].rate / by_round[n, PLAIN].rate for n in range(1, args.rounds + 1)]
    ratio = rates[OURS] / rates[PLAIN]
    failed = sum(r.failures for _, _, r in replay_rows) + failures
    # Each warm-up request reaches the backend three times: plain, ours, and forwarded by the receiver.
    sent = args.events * args.rounds * len(CLIENTS) + 3 * min(args.warmup, args.events)
    direct, via = (sorted(latencies[k]) for k in ("direct", "receiver"))

    def q(values: list[float], fraction: float) -> float:
        return percentile(values, fraction)

    rows = [
        ("", "p50 ms", "p99 ms"),
        ("direct to the backend", f"{q(direct, 0.5):.2f}", f"{q(direct, 0.99):.2f}"),
        ("receiver + forward", f"{q(via, 0.5):.2f}", f"{q(via, 0.99):.2f}"),
        ("added by wa-devtunnel", f"{q(via, 0.5) - q(direct, 0.5):+.2f}", f"{q(via, 0.99) - q(direct, 0.99):+.2f}"),
    ]
    for label, p50, p99 in rows:
        print(f"   {label:<24} {p50:>8} {p99:>8}")
    print(f"   ({len(direct)} requests each way; the receiver recorded {receiver_counts['exchanges']} exchanges)")

    passed = ratio >= args.target and failed == 0
    bytes_ok = backend_counts.get("valid") == sent and not backend_counts.get("invalid")
    records_ok = replay_lines == [args.events] * args.rounds
    print("\nsummary (medians)")
    for client in CLIENTS:
        print(
            f"   {client:<22} {rates[client]:>7.0f} req/s  {rates[client] / rates[PLAIN]:>6.3f}x plain   "
            f"client CPU {cpu_us[client]:>4.0f} us/request"
        )
    print(f"   ratio {OURS} / {PLAIN}: {ratio:.3f} (per round: {', '.join(f'{x:.3f}' for x in per_round)})")
    verdict = "PASS" if passed else "FAIL"
    print(f"   target ours/plain >= {args.target:.2f}: {verdict}" + (f" ({failed} requests failed)" if failed else ""))
    print(f"   backend signature checks after the replay rounds: {backend_counts} (expected valid={sent})")
    print(f"   replay recordings: {len(replay_files)} files with {replay_lines} lines (expected {args.events} each)")
    print(
        f"   byte-identical bodies (signatures verify): {'OK' if bytes_ok else 'FAILED'}; "
        f"replays recorded: {'OK' if records_ok else 'FAILED'}"
    )
    print(f"   load avg at the end: {' '.join(f'{x:.2f}' for x in os.getloadavg())}")
    return 0 if passed and bytes_ok and records_ok else 1


def main(argv: list[str] | None = None) -> int:
    return run(parse_args(argv))


if __name__ == "__main__":
    sys.exit(main())
