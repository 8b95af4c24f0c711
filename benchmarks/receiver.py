"""Receiver throughput: our receiver against a bare aiohttp app, on the same machine, same run.

    .venv/bin/python benchmarks/receiver.py [--requests N] [--concurrency C] [--rounds R]
                                            [--payload {text,batch}] [--profile {auto,always,never}]

Three kinds of process, so that no side steals the other's event loop:

* server "bare": an aiohttp app whose only handler reads the body and answers 200;
* server "ours": WebhookService exactly as `wa-devtunnel up --headless` builds it (settings from
  load_settings, a real SessionRecorder in a temp dir, an App Secret so every signature is
  verified, the payload decoded, a bus subscriber draining the events) minus the printing;
* one client: aiohttp with a pooled connector, C requests in flight, N requests per round.

Both servers bind port 0 and report the real port. The client sends the same Meta-shaped signed
body to both, after a warm-up, in alternating rounds (bare, ours, bare, ours, ...) so that the
noise of a shared machine lands on both. It prints requests/s per round, the medians, the ratio
ours/bare against the target (0.8), and the server CPU time per request (less sensitive to noise
than wall time). At the end the recording must hold exactly one valid line per request sent to
"ours", each with a valid signature, which proves durability and verification were on.

When the ratio misses the target (or with --profile always), one more unmeasured round is run
against "ours" under cProfile, in the server process, and the script prints where the time goes.

Exit status: 0 when the ratio meets the target and the recording check passes, 1 otherwise.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import cProfile
import multiprocessing as mp
import os
import platform
import pstats
import statistics
import sys
import tempfile
import time
from collections import Counter
from dataclasses import dataclass
from multiprocessing.connection import Connection
from pathlib import Path
from typing import Any

import aiohttp
from aiohttp import web
from common import (  # benchmarks/common.py, which also puts this checkout on sys.path
    APP_SECRET,
    HOST,
    VERIFY_TOKEN,
    Child,
    check_recording,
    signed_headers,
    start_child,
)

import wa_devtunnel
from wa_devtunnel.engine.service import WebhookService
from wa_devtunnel.rules.samples import payloads as samples
from wa_devtunnel.settings import DEFAULT_PATH, load_settings

TARGET_RATIO = 0.8
ROUND_TIMEOUT = 600.0
KINDS = ("bare", "ours")
PROFILE_REQUESTS = 5000  # enough for stable shares; cProfile halves the throughput


# --------------------------------------------------------------------------- payloads


def text_payload() -> bytes:
    """One text message, byte-for-byte as Meta sends it (the common case)."""
    return samples.text_message_payload()


def batch_payload() -> bytes:
    """A busy delivery: five messages of different types and four statuses in one POST."""
    messages = [
        samples.text_message(message_id="wamid.bench-text"),
        samples.image_message(message_id="wamid.bench-image"),
        samples.location_message(message_id="wamid.bench-location"),
        samples.button_reply(message_id="wamid.bench-button"),
        samples.reaction_message(message_id="wamid.bench-reaction"),
    ]
    statuses = [samples.status(s) for s in ("sent", "delivered", "read", "failed")]
    changes = [samples.messages_change(messages), samples.messages_change(statuses=statuses)]
    return samples.meta_json(samples.envelope(changes))


PAYLOADS = {"text": text_payload, "batch": batch_payload}


# --------------------------------------------------------------------------- server processes


def bare_app() -> web.Application:
    """The floor: read the body, answer 200, nothing else."""

    async def handle(request: web.Request) -> web.Response:
        await request.read()
        return web.Response(text="EVENT_RECEIVED")

    app = web.Application()
    app.router.add_post(DEFAULT_PATH, handle)
    return app


def server_main(kind: str, conn: Connection, recordings_dir: str) -> None:
    """Entry point of a server process: serve until told to stop on `conn`."""
    try:
        asyncio.run(_serve(kind, conn, Path(recordings_dir)))
    except BaseException as exc:  # report instead of leaving the parent waiting
        with contextlib.suppress(OSError):
            conn.send(("error", f"{type(exc).__name__}: {exc}"))
        raise


@dataclass
class Serving:
    """A started server of either kind: its port, its recording, and how to stop it."""

    port: int
    recording: str | None
    service: WebhookService | None = None
    runner: web.AppRunner | None = None
    pump: asyncio.Task[None] | None = None

    async def stop(self) -> int:
        """Stop serving; returns the exchanges our receiver counted (0 for bare)."""
        exchanges = 0
        if self.service is not None:
            exchanges = self.service.exchanges
            await self.service.stop()  # closes (and fsyncs) the recording
        if self.runner is not None:
            await self.runner.cleanup()
        if self.pump is not None:
            self.pump.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self.pump
        return exchanges


async def start_serving(kind: str, recordings_dir: Path) -> Serving:
    """Bind port 0 and serve `kind`: the bare app, or our receiver as the headless CLI builds it."""
    if kind == "bare":
        runner = web.AppRunner(bare_app(), access_log=None, handle_signals=False)
        await runner.setup()
        await web.TCPSite(runner, HOST, 0).start()
        return Serving(port=runner.addresses[0][1], recording=None, runner=runner)
    settings = load_settings(
        {
            "host": HOST,
            "port": "0",
            "recordings_dir": str(recordings_dir),
            "app_secret": APP_SECRET,
            "verify_token": VERIFY_TOKEN,
            "tunnel": "none",
        },
        environ={},  # nothing from the developer's shell or .env changes what is measured
        cwd=recordings_dir,
    )
    service = WebhookService(settings)
    subscription = service.bus.subscribe()

    async def drain() -> None:  # run_headless's pump, minus printer.render
        while True:
            await subscription.get_batch()

    pump = asyncio.create_task(drain())
    started = await service.start()
    recording = str(started.recording_path) if started.recording_path else None
    return Serving(port=started.port, recording=recording, service=service, pump=pump)


async def _serve(kind: str, conn: Connection, recordings_dir: Path) -> None:
    loop = asyncio.get_running_loop()
    commands: asyncio.Queue[tuple[str, Any]] = asyncio.Queue()
    loop.add_reader(conn.fileno(), lambda: commands.put_nowait(conn.recv()))
    serving = await start_serving(kind, recordings_dir)
    port, recording = serving.port, serving.recording
    conn.send(("ready", port, recording))

    profiler: cProfile.Profile | None = None
    while True:
        command, argument = await commands.get()
        if command == "cpu":
            conn.send(("cpu", time.process_time()))
        elif command == "profile_start":
            profiler = cProfile.Profile()
            profiler.enable()
            conn.send(("ok",))
        elif command == "profile_stop":
            if profiler is not None:
                profiler.disable()
                profiler.dump_stats(argument)
            conn.send(("ok",))
        elif command == "stop":
            break
    loop.remove_reader(conn.fileno())
    exchanges = await serving.stop()
    conn.send(("stopped", exchanges))


# --------------------------------------------------------------------------- client process


@dataclass(frozen=True)
class LoadResult:
    requests: int
    seconds: float
    statuses: dict[int, int]
    errors: dict[str, int]
    p50_ms: float
    p99_ms: float

    @property
    def ok(self) -> int:
        return self.statuses.get(200, 0)

    @property
    def rps(self) -> float:
        return self.requests / self.seconds if self.seconds else 0.0


def client_main(conn: Connection, body: bytes, headers: dict[str, str], concurrency: int) -> None:
    """Entry point of the client process: one loop, one pooled session per target URL."""
    loop = asyncio.new_event_loop()
    sessions: dict[str, aiohttp.ClientSession] = {}

    async def session_for(url: str) -> aiohttp.ClientSession:
        if url not in sessions:
            connector = aiohttp.TCPConnector(limit=concurrency, limit_per_host=concurrency)
            sessions[url] = aiohttp.ClientSession(connector=connector)
        return sessions[url]

    try:
        while True:
            message = conn.recv()
            if message[0] == "stop":
                break
            _, url, count = message
            session = loop.run_until_complete(session_for(url))
            result = loop.run_until_complete(_load(session, url, count, concurrency, body, headers))
            conn.send(("done", result))
    finally:
        for session in sessions.values():
            loop.run_until_complete(session.close())
        loop.close()


async def _load(
    session: aiohttp.ClientSession,
    url: str,
    count: int,
    concurrency: int,
    body: bytes,
    headers: dict[str, str],
) -> LoadResult:
    remaining = count
    statuses: Counter[int] = Counter()
    errors: Counter[str] = Counter()
    latencies: list[float] = []
    clock = time.perf_counter

    async def worker() -> None:
        nonlocal remaining
        while remaining > 0:
            remaining -= 1
            began = clock()
            try:
                async with session.post(url, data=body, headers=headers) as response:
                    await response.read()
                    statuses[response.status] += 1
            except (TimeoutError, aiohttp.ClientError, OSError) as exc:
                errors[type(exc).__name__] += 1
                continue
            latencies.append(clock() - began)

    started = clock()
    await asyncio.gather(*(worker() for _ in range(min(concurrency, count))))
    seconds = clock() - started
    latencies.sort()

    def quantile(q: float) -> float:
        return latencies[min(len(latencies) - 1, int(q * len(latencies)))] * 1000 if latencies else 0.0

    return LoadResult(count, seconds, dict(statuses), dict(errors), quantile(0.5), quantile(0.99))


# --------------------------------------------------------------------------- orchestration


def start_server(ctx: Any, kind: str, recordings_dir: Path) -> tuple[Child, int, str | None]:
    parent_end, child_end = ctx.Pipe()
    process = ctx.Process(
        target=server_main, args=(kind, child_end, str(recordings_dir)), name=kind, daemon=True
    )
    process.start()
    child_end.close()
    child = Child(kind, process, parent_end)
    _, port, recording = child.receive()
    return child, port, recording


@dataclass(frozen=True)
class Round:
    number: int
    kind: str
    result: LoadResult
    cpu_seconds: float

    @property
    def cpu_us_per_request(self) -> float:
        return self.cpu_seconds / self.result.requests * 1e6


def measure(client: Child, server: Child, url: str, count: int) -> tuple[LoadResult, float]:
    (_, cpu_before) = server.ask(("cpu", None))
    (_, result) = client.ask(("run", url, count), timeout=ROUND_TIMEOUT)
    (_, cpu_after) = server.ask(("cpu", None))
    return result, cpu_after - cpu_before


def profile_report(stats_path: Path, requests: int, top: int) -> list[str]:
    """Where the server's time went: our functions, then the hottest functions overall."""
    stats = pstats.Stats(str(stats_path))
    raw: dict[tuple[str, int, str], tuple[int, int, float, float, Any]] = stats.stats  # type: ignore[attr-defined]
    idle_keys = {key for key in raw if key[0] == "~" and "select." in key[2]}  # waiting in epoll
    idle = sum(raw[key][2] for key in idle_keys)
    raw = {key: value for key, value in raw.items() if key not in idle_keys}
    total = sum(tt for (_, _, tt, _, _) in raw.values())

    def label(key: tuple[str, int, str]) -> str:
        filename, line, name = key
        if filename == "~":
            return name
        parts = Path(filename).parts
        for anchor in ("wa_devtunnel", "aiohttp", "asyncio", "json", "multidict", "yarl"):
            if anchor in parts:
                short = "/".join(parts[parts.index(anchor) :])
                return f"{short}:{line}:{name}"
        return f"{Path(filename).name}:{line}:{name}"

    per = 1e6 / requests
    out = [
        f"profiled server CPU: {total:.3f}s for {requests} requests = {total * per:.0f} us/request"
        f" (+{idle:.3f}s idle in epoll; profiler overhead included: compare shares, not absolutes)",
        "",
        "our code (cumulative = the function and everything it calls):",
        f"  {'cum us/req':>10} {'self us/req':>11} {'cum %':>6} {'calls/req':>9}  function",
    ]
    ours = [(k, v) for k, v in raw.items() if "wa_devtunnel" in Path(k[0]).parts]
    ours.sort(key=lambda item: item[1][3], reverse=True)
    for key, (_, calls, tt, ct, _) in ours[:top]:
        out.append(
            f"  {ct * per:>10.1f} {tt * per:>11.1f} {100 * ct / total:>5.1f}% "
            f"{calls / requests:>9.2f}  {label(key)}"
        )
    out += ["", "hottest functions overall (self time):"]
    out.append(f"  {'self us/req':>11} {'self %':>6} {'calls/req':>9}  function")
    hottest = sorted(raw.items(), key=lambda item: item[1][2], reverse=True)
    for key, (_, calls, tt, _, _) in hottest[:top]:
        out.append(f"  {tt * per:>11.1f} {100 * tt / total:>5.1f}% {calls / requests:>9.2f}  {label(key)}")
    return out


def format_table(rounds: list[Round]) -> list[str]:
    header = (
        f"{'round':>5}  {'server':<6} {'requests':>8} {'seconds':>8} {'req/s':>8} "
        f"{'p50 ms':>7} {'p99 ms':>7} {'srv CPU us/req':>14}  status"
    )
    lines = [header, "-" * len(header)]
    for r in rounds:
        res = r.result
        status = ", ".join(f"{code}x{n}" for code, n in sorted(res.statuses.items()))
        if res.errors:
            status += "; errors " + ", ".join(f"{k}x{n}" for k, n in res.errors.items())
        lines.append(
            f"{r.number:>5}  {r.kind:<6} {res.requests:>8} {res.seconds:>8.2f} {res.rps:>8.0f} "
            f"{res.p50_ms:>7.2f} {res.p99_ms:>7.2f} {r.cpu_us_per_request:>14.0f}  {status}"
        )
    return lines


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--requests", type=int, default=20000, help="requests per round (20000)")
    parser.add_argument("--concurrency", type=int, default=32, help="requests in flight (32)")
    parser.add_argument("--rounds", type=int, default=3, help="rounds per server (3)")
    parser.add_argument("--payload", choices=sorted(PAYLOADS), default="text")
    parser.add_argument(
        "--warmup", type=int, default=2000, help="unmeasured requests per server first (2000)"
    )
    parser.add_argument("--target", type=float, default=TARGET_RATIO, help="minimum ours/bare (0.8)")
    parser.add_argument(
        "--profile",
        choices=("auto", "always", "never"),
        default="auto",
        help="profile our receiver when the ratio misses the target (auto), always, or never",
    )
    parser.add_argument("--profile-out", type=Path, help="also save the raw cProfile stats here")
    parser.add_argument("--top", type=int, default=20, help="rows per profile table (20)")
    args = parser.parse_args(argv)
    for name in ("requests", "concurrency", "rounds"):
        if getattr(args, name) < 1:
            parser.error(f"--{name} must be at least 1")
    if args.warmup < 0:
        parser.error("--warmup must be 0 or more")
    return args


def run(args: argparse.Namespace) -> int:
    body = PAYLOADS[args.payload]()
    headers = signed_headers(body)
    ctx = mp.get_context("spawn")
    print(
        f"wa-devtunnel receiver benchmark: python {platform.python_version()}, "
        f"aiohttp {aiohttp.__version__}, {os.cpu_count()} CPUs, load avg "
        f"{' '.join(f'{x:.2f}' for x in os.getloadavg())}"
    )
    print(f"measuring wa_devtunnel from {Path(wa_devtunnel.__file__).parent}")
    print(
        f"payload {args.payload} ({len(body)} bytes, signed), {args.requests} requests x "
        f"{args.rounds} rounds per server, concurrency {args.concurrency}, warm-up {args.warmup}"
    )
    with tempfile.TemporaryDirectory(prefix="wa-devtunnel-bench-") as tmp:
        tmp_path = Path(tmp)
        servers: dict[str, Child] = {}
        client: Child | None = None
        sent_to_ours = 0
        recording: str | None = None
        rounds: list[Round] = []
        profile_lines: list[str] = []
        try:
            urls: dict[str, str] = {}
            for kind in KINDS:
                child, port, path = start_server(ctx, kind, tmp_path / "recordings")
                servers[kind] = child
                urls[kind] = f"http://{HOST}:{port}{DEFAULT_PATH}"
                if kind == "ours":
                    recording = path
                print(f"server {kind:<4} pid {child.process.pid} on {urls[kind]}")
            if recording is None:
                raise RuntimeError("our receiver did not open a recording")
            client = start_child(ctx, "client", client_main, body, headers, args.concurrency)
            print(f"client      pid {client.process.pid}")

            if args.warmup:
                for kind in KINDS:
                    result, _ = measure(client, servers[kind], urls[kind], args.warmup)
                    if kind == "ours":
                        sent_to_ours += result.requests
                    print(f"warm-up {kind:<4} {result.rps:>8.0f} req/s (not counted)")

            print("\n" + "\n".join(format_table([])), flush=True)
            for number in range(1, args.rounds + 1):
                for kind in KINDS:
                    result, cpu = measure(client, servers[kind], urls[kind], args.requests)
                    if kind == "ours":
                        sent_to_ours += result.requests
                    rounds.append(Round(number, kind, result, cpu))
                    print(format_table([rounds[-1]])[-1], flush=True)

            rps = {k: [r.result.rps for r in rounds if r.kind == k] for k in KINDS}
            cpu = {k: [r.cpu_us_per_request for r in rounds if r.kind == k] for k in KINDS}
            median_rps = {k: statistics.median(v) for k, v in rps.items()}
            median_cpu = {k: statistics.median(v) for k, v in cpu.items()}
            ratio = median_rps["ours"] / median_rps["bare"]
            per_round = [
                o.result.rps / b.result.rps
                for b, o in zip(rounds[0::2], rounds[1::2], strict=True)
            ]
            failures = sum(sum(r.result.errors.values()) for r in rounds) + sum(
                n for r in rounds for code, n in r.result.statuses.items() if code != 200
            )
            passed = ratio >= args.target and failures == 0

            if args.profile == "always" or (args.profile == "auto" and not passed):
                stats_path = tmp_path / "ours.prof"
                servers["ours"].ask(("profile_start", None))
                count = min(args.requests, PROFILE_REQUESTS)
                result, _ = measure(client, servers["ours"], urls["ours"], count)
                servers["ours"].ask(("profile_stop", str(stats_path)))
                sent_to_ours += result.requests
                profile_lines = [
                    f"profiled round: {result.rps:.0f} req/s under cProfile (not counted)",
                    *profile_report(stats_path, result.requests, args.top),
                ]
                if args.profile_out:
                    args.profile_out.write_bytes(stats_path.read_bytes())
                    profile_lines.append(f"raw stats saved to {args.profile_out}")
        finally:
            if client is not None:
                client.finish(("stop",))
            stopped: dict[str, Any] = {}
            for kind, child in servers.items():
                stopped[kind] = child.finish(("stop", None))

        exchanges = stopped["ours"][1] if stopped.get("ours") else None
        recording_ok, recording_lines = check_recording(Path(recording), sent_to_ours)
        if exchanges is not None and exchanges != sent_to_ours:
            recording_ok = False
            recording_lines.append(f"exchanges     the receiver counted {exchanges}")

    out = [""]
    out.append(
        f"median req/s   bare {median_rps['bare']:>8.0f}   ours {median_rps['ours']:>8.0f}   "
        f"ratio ours/bare {ratio:.3f}  (per round: {', '.join(f'{x:.3f}' for x in per_round)})"
    )
    out.append(
        f"median server CPU per request   bare {median_cpu['bare']:>5.0f} us   "
        f"ours {median_cpu['ours']:>5.0f} us   ours costs {median_cpu['ours'] / median_cpu['bare']:.2f}x bare"
        f"  (server-bound ratio would be ~{median_cpu['bare'] / median_cpu['ours']:.3f})"
    )
    verdict = "PASS" if passed else "FAIL"
    reason = "" if failures == 0 else f"; {failures} requests failed"
    out.append(f"target ours/bare >= {args.target:.2f}: {verdict} ({ratio:.3f}{reason})")
    out += ["", "durability check:", *(f"  {line}" for line in recording_lines)]
    out.append(f"  result        {'OK' if recording_ok else 'FAILED'}")
    if profile_lines:
        out += ["", "profile of our receiver (cProfile in the server process):"]
        out += [f"  {line}" if line else "" for line in profile_lines]
    out.append(f"\nload avg at the end: {' '.join(f'{x:.2f}' for x in os.getloadavg())}")
    print("\n".join(out))
    return 0 if passed and recording_ok else 1


def main(argv: list[str] | None = None) -> int:
    return run(parse_args(argv))


if __name__ == "__main__":
    sys.exit(main())
