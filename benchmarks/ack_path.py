"""Issue 17's three ratios, with whole processes run the way a user runs them: the acknowledgement path,
replay and forwarding, for this tree and (with --baseline) an older commit in the same run.

    .venv/bin/python benchmarks/ack_path.py [--baseline REF] [--rounds N] [--seconds S]
                                            [--only {receiver,replay,forward}] [--client {auto,wrk,python}]
                                            [--events E] [--requests R] [--forward-requests F]
                                            [--forward-rate RATE] [--forward-closed N]

Every wa-devtunnel process is `python -m wa_devtunnel ...` (what the `wa-devtunnel` console script runs)
with this venv's python, PYTHONPATH=<tree> (this checkout, working tree included; with --baseline also a
`git worktree add --detach /tmp/ack-baseline-<sha> REF`, removed at the end), run from an empty temp
directory (no .env), in its own session, environment = this shell's minus every wa-devtunnel, WhatsApp,
Meta and ngrok variable, plus WHATSAPP_APP_SECRET (every signature is verified) and WHATSAPP_VERIFY_TOKEN.
Each tree's package is byte-compiled first (`compileall`, as `pip install` does), so a process starts as an
installed package does, even where PYTHONDONTWRITEBYTECODE is set (as on these machines).
Its stdout is a pipe that a thread of this script drains continuously, as a terminal would, counting
lines; its stderr goes to a file. Reference processes are tiny scripts (BARE_SERVER, PLAIN_REPLAY below)
run by the same python. Each part alternates its sides round by round (the order rotates every round),
so a shared machine's noise lands on all of them.

1. receiver: `up --headless --port 0 --tunnel none --recordings-dir DIR` against a bare aiohttp app that
   reads the body and answers 200 (BARE_SERVER); both on port 0, the real port read from the
   "Callback URL: http://127.0.0.1:<port>/..." line. Load: `wrk -t1 -c32 -d<S>s` with a Lua script posting
   one signed 535-byte Meta text event (the issue's), after a 1 s warm-up of each server; without wrk
   (or --client python) a Python client sends R requests per round on 32 raw keep-alive sockets
   (tui_burst's _RawConnection: requests encoded beforehand, a few us of CPU each). After each round
   against `up`, the script waits for its stdout to go quiet (the display's lag, printed) so that a
   printer still catching up does not eat the next round's CPU. Ratio = median req/s ours / median bare
   (target >= 0.5, goal 0.7). Checks: no non-2xx answer, no socket error; the recording holds one
   intact line per request (every line a verified event answered 200, seq 1..N) and at least one line
   per 2xx that wrk counted; at most 32 more per load run (wrk stops with requests in flight, which the
   receiver records and answers to a closed socket); `Stopped after N exchange(s)` says the same N.
2. replay: a session of E events in the recording format (benchmarks/replay.py's write_recording,
   ~500-byte signed text events) replayed by `replay FILE --to BACKEND --concurrency 32
   --recordings-dir DIR` (the replay recorded, as by default) against PLAIN_REPLAY: a raw aiohttp loop
   that reads the same file with json, posts the same bodies with the same headers (as plan_replay
   builds them: recorded end-to-end headers plus X-WA-Devtunnel-Origin) from one ClientSession with a
   pooled connector (limit=32) and 32 workers. Timed from spawn to exit, start-up included; events/s =
   E / that. Ratio ours / plain (target >= 0.8, goal 0.9). Checks: exit status 0, the backend saw E more
   valid signatures per run (byte-identical bodies), ours recorded E replay lines.
3. forward: the latency forwarding adds under concurrency 32, i.e. `up --headless --port 0 --tunnel none
   --forward-to BACKEND` in front of the backend vs the backend alone, at the same offered load. The load
   is OPEN-LOOP: F signed POSTs (the event of part 1) at a fixed offered rate (--forward-rate, default
   FORWARD_RATE req/s), Poisson arrivals (exponential gaps from one seed, so every side gets the same
   schedule), on 32 keep-alive raw sockets (_OpenConnection): a request that arrives while all 32 are busy
   waits for one. Latency = the moment the client dispatched it (its arrival) -> answer parsed, so the
   wait for a free connection counts (no coordinated omission), the client's own timer lateness does not.
   p50 / p99 of each side pooled over the rounds, and the differences (target <= +1 ms p50, <= +5 ms p99).
   Why not a closed loop (32 sockets each sending as soon as its answer came): at saturation its latency
   is only 32 / throughput (Little's law), and `up` plus its backend share the cores with the client, so
   it measured how many requests per second the whole chain serves (+20-27 ms whatever the forwarder
   did), not what forwarding adds to a delivery. Meta's deliveries arrive on their own schedule, not when
   the previous answer came, so an open loop at a rate both sides can sustain is what a developer sees.
   The offered rate, the achieved rate, the peak and mean number of requests in flight and the share that
   found all 32 sockets busy are printed per round: a side that cannot keep up with the offered rate (achieved
   < 97%) is marked SATURATED, and its latencies are then a throughput figure again. For information,
   each round also runs a closed loop (--forward-closed requests, 32 sockets) and prints its req/s and
   the ratio through-forwarder / direct (the chain's capacity; not a target). 500 unmeasured closed-loop
   requests warm each side first. Checks: all 200, the backend saw every forwarded body with a valid
   signature, one intact recording line per request.

The backend of parts 2 and 3 is benchmarks/replay.py's backend_main in its own process: an aiohttp app
that checks X-Hub-Signature-256 over the raw body and answers 200.

Exit status: 0 when every target is met by this tree and every check passes, 1 otherwise (the baseline's
figures are for comparison only).
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import multiprocessing as mp
import os
import platform
import re
import shutil
import signal
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from collections import Counter, deque
from collections.abc import Callable
from dataclasses import dataclass, field
from multiprocessing.connection import Connection
from pathlib import Path
from typing import Any

# Standard library only at module level (plus common and tui_burst, which are too): the client and backend
# processes are spawned from this module. Each process imports what it uses.
from common import (  # benchmarks/common.py, which also puts this checkout on sys.path
    HOST,
    ROOT,
    WEBHOOK_PATH,
    Child,
    check_recording,
    quantile,
    signed_headers,
    start_child,
)
from tui_burst import _RawConnection, clock, engine_environment, next_answer

CONCURRENCY = 32
EVENT_BYTES = 535
TARGETS = {"receiver": (0.5, 0.7), "replay": (0.8, 0.9)}
FORWARD_TARGET_MS = {"p50": 1.0, "p99": 5.0}
PARTS = ("receiver", "replay", "forward")
START_TIMEOUT = 60.0
RUN_TIMEOUT = 900.0
QUIET_S = 0.3  # stdout unchanged this long: the display has caught up
FORWARD_WARMUP = 500
# Part 3's offered rate: a busy WhatsApp number's webhook traffic (80 messages/s of Cloud API throughput
# make ~240 status webhooks/s), well below what both sides sustain on a 2-core laptop (~1,000/s through
# the forwarder, ~6,000/s direct, client included).
FORWARD_RATE = 400.0
SATURATED = 0.97  # achieved / offered below this: the side could not keep up

BARE_SERVER = r"""
import asyncio, signal, sys
from aiohttp import web

async def handle(request):
    await request.read()
    return web.Response(text="EVENT_RECEIVED")

async def main(path, host):
    app = web.Application()
    app.router.add_post(path, handle)
    runner = web.AppRunner(app, access_log=None, handle_signals=False)
    await runner.setup()
    await web.TCPSite(runner, host, 0).start()
    print(f"Callback URL: http://{host}:{runner.addresses[0][1]}{path}", flush=True)
    stop = asyncio.Event()
    for signum in (signal.SIGINT, signal.SIGTERM):
        asyncio.get_running_loop().add_signal_handler(signum, stop.set)
    await stop.wait()
    await runner.cleanup()

asyncio.run(main(sys.argv[1], sys.argv[2]))
"""

PLAIN_REPLAY = r"""
import asyncio, base64, json, sys
import aiohttp

path, url, concurrency = sys.argv[1], sys.argv[2], int(sys.argv[3])
drop, extra = set(json.loads(sys.argv[4])), [tuple(pair) for pair in json.loads(sys.argv[5])]
requests = []
with open(path, "rb") as lines:
    for line in lines:
        record = json.loads(line)
        if record.get("kind") != "event":
            continue
        request = record["request"]
        body = request["body"].encode() if "body" in request else base64.b64decode(request["body_b64"])
        headers = [(name, value) for name, value in request["headers"] if name.lower() not in drop]
        requests.append((body, headers + extra))

async def main():
    statuses = {}
    items = iter(requests)
    async with aiohttp.ClientSession(connector=aiohttp.TCPConnector(limit=concurrency)) as session:
        async def worker():
            for body, headers in items:
                try:
                    async with session.post(url, data=body, headers=headers) as response:
                        await response.read()
                        key = str(response.status)
                except (aiohttp.ClientError, OSError) as exc:
                    key = type(exc).__name__
                statuses[key] = statuses.get(key, 0) + 1
        await asyncio.gather(*(worker() for _ in range(concurrency)))
    print(json.dumps({"sent": len(requests), "statuses": statuses}))
    return 0 if statuses == {"200": len(requests)} else 1

sys.exit(asyncio.run(main()))
"""

WRK_SCRIPT = """
wrk.method = "POST"
wrk.body = [==[{body}]==]
{headers}
done = function(summary, latency, requests)
  local e = summary.errors
  io.write(string.format("ACK_PATH_WRK %.0f %.0f %.0f %.0f %.0f %.0f %.0f %.0f %.0f\\n",
    summary.requests, summary.duration, e.connect, e.read, e.write, e.status, e.timeout,
    latency:percentile(50), latency:percentile(99)))
end
"""


# --------------------------------------------------------------------------- processes


class Proc:
    """A whole process of the benchmark, in its own session: stdout drained by a thread (lines counted)."""

    def __init__(self, name: str, argv: list[str], env: dict[str, str], cwd: Path, stderr_path: Path) -> None:
        self.name = name
        self.stderr_path = stderr_path
        self.lines = 0
        self.head = b""  # the first 64 KB: banners, the plain loop's summary
        self.tail = b""  # the last 4 KB
        self.changed = clock()
        self.spawned = time.perf_counter()
        with open(stderr_path, "wb") as stderr:
            self.popen = subprocess.Popen(
                argv,
                cwd=cwd,
                env=env,
                stdin=subprocess.DEVNULL,
                stdout=subprocess.PIPE,
                stderr=stderr,
                start_new_session=True,  # Ctrl+C reaches this script only: it stops them in order
            )
        self.ended: float | None = None
        self._thread = threading.Thread(target=self._drain, name=f"drain-{name}", daemon=True)
        self._thread.start()
        LIVE.append(self)

    def _drain(self) -> None:
        fd = self.popen.stdout.fileno()  # type: ignore[union-attr]
        while chunk := os.read(fd, 65536):
            self.lines += chunk.count(b"\n")
            if len(self.head) < 65536:
                self.head += chunk[: 65536 - len(self.head)]
            self.tail = (self.tail + chunk)[-4096:]
            self.changed = clock()
        self.popen.wait()
        self.ended = time.perf_counter()

    def output(self) -> str:
        return self.head.decode("utf-8", "replace")

    def stderr(self) -> str:
        with contextlib.suppress(OSError):
            return self.stderr_path.read_text("utf-8", "replace")
        return ""

    def failure(self, what: str) -> RuntimeError:
        err = self.stderr().strip().splitlines()[-15:]
        return RuntimeError(f"{self.name} {what}; stderr:\n  " + "\n  ".join(err))

    def wait_for(self, pattern: str, timeout: float = START_TIMEOUT) -> re.Match[str]:
        """The first match of `pattern` in stdout (then stderr); an exit or silence past `timeout` is an error."""
        deadline = clock() + timeout
        while clock() < deadline:
            for text in (self.output(), self.stderr()):
                if match := re.search(pattern, text, re.MULTILINE):
                    return match
            if self.popen.poll() is not None:
                self._thread.join(2)
                raise self.failure(f"exited with {self.popen.returncode} before printing /{pattern}/")
            time.sleep(0.05)
        raise self.failure(f"printed no /{pattern}/ within {timeout:.0f}s")

    def wait_quiet(self, timeout: float = 120.0) -> float:
        """Seconds until stdout has not grown for QUIET_S (the display caught up), counted from now."""
        began = clock()
        while clock() - self.changed < QUIET_S and clock() - began < timeout:
            time.sleep(0.05)
        return max(0.0, self.changed - began)

    def finish(self, timeout: float = RUN_TIMEOUT) -> int:
        """Wait for the exit and the last of stdout."""
        try:
            self.popen.wait(timeout)
        except subprocess.TimeoutExpired as exc:
            raise self.failure(f"still running after {timeout:.0f}s") from exc
        self._thread.join(10)
        with contextlib.suppress(ValueError):
            LIVE.remove(self)
        return self.popen.returncode

    def stop(self) -> int | None:
        """Ctrl+C as a user would; SIGKILL when that is not enough."""
        if self.popen.poll() is None:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(self.popen.pid, signal.SIGINT)
            try:
                self.popen.wait(20)
            except subprocess.TimeoutExpired:
                with contextlib.suppress(ProcessLookupError):
                    os.killpg(self.popen.pid, signal.SIGKILL)
                self.popen.wait(5)
        self._thread.join(10)
        with contextlib.suppress(ValueError):
            LIVE.remove(self)
        return self.popen.returncode


LIVE: list[Proc] = []  # what the finally clauses stop, Ctrl+C included


@dataclass(frozen=True)
class Tree:
    """Code to measure: a label, where it is, which commit."""

    label: str
    path: Path
    commit: str

    def env(self) -> dict[str, str]:
        env = engine_environment()  # this shell's minus wa-devtunnel/WhatsApp/Meta/ngrok, plus the bench secrets
        env["PYTHONPATH"] = str(self.path)
        return env

    def argv(self, *args: str) -> list[str]:
        return [sys.executable, "-m", "wa_devtunnel", *args]


@dataclass
class Context:
    args: argparse.Namespace
    trees: list[Tree]
    tmp: Path
    mp: Any
    body: bytes
    children: dict[str, Child] = field(default_factory=dict)
    runs: Counter[str] = field(default_factory=Counter)
    backend_url: str = ""

    def path(self, *parts: str) -> Path:
        path = self.tmp.joinpath(*parts)
        path.mkdir(parents=True, exist_ok=True)
        return path

    def spawn(self, name: str, argv: list[str], env: dict[str, str]) -> Proc:
        self.runs[name] += 1
        logs = self.path("logs")
        return Proc(name, argv, env, self.path("cwd"), logs / f"{name}-{self.runs[name]}.stderr")

    def up(self, tree: Tree, name: str, *extra: str) -> tuple[Proc, str, Path]:
        """`up --headless` of a tree on port 0: the process, its callback URL, its recording."""
        argv = tree.argv("up", "--headless", "--port", "0", "--tunnel", "none")
        proc = self.spawn(name, [*argv, "--recordings-dir", str(self.path("recordings", name)), *extra], tree.env())
        url = proc.wait_for(r"^Callback URL: (http://\S+)")[1]
        recording = Path(proc.wait_for(r"^Recording to: (\S+)")[1])
        return proc, url, recording

    def bare(self) -> tuple[Proc, str]:
        proc = self.spawn("bare", [sys.executable, "-c", BARE_SERVER, WEBHOOK_PATH, HOST], self.trees[0].env())
        return proc, proc.wait_for(r"^Callback URL: (http://\S+)")[1]

    def child(self, name: str, target: Callable[..., None], *args: Any) -> Child:
        if name not in self.children:
            self.children[name] = start_child(self.mp, name, _shielded, target, *args)
        return self.children[name]

    def backend(self) -> tuple[Child, str]:
        from replay import backend_main  # the signature-checking backend of benchmarks/replay.py

        backend = self.child("backend", backend_main)
        if not self.backend_url:
            self.backend_url = f"http://{HOST}:{backend.receive()[1]}{WEBHOOK_PATH}"
        return backend, self.backend_url

    def backend_valid(self) -> Counter[str]:
        return Counter(self.children["backend"].ask(("stats",))[1])


def _shielded(conn: Connection, target: Callable[..., None], *args: Any) -> None:
    """A child process that leaves Ctrl+C to the parent (which stops it in order)."""
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    target(conn, *args)


def rotated(sides: list[str], number: int) -> list[str]:
    shift = (number - 1) % len(sides)
    return sides[shift:] + sides[:shift]


def stopped_exchanges(proc: Proc) -> int | None:
    match = re.search(r"Stopped after (\d+) exchange", proc.stderr() + proc.tail.decode("utf-8", "replace"))
    return int(match[1]) if match else None


def recording_lines(path: Path) -> int:
    return path.read_bytes().count(b"\n") if path.exists() else 0


def median(values: list[float]) -> float:
    return statistics.median(values) if values else float("nan")


# --------------------------------------------------------------------------- load generators


@dataclass(frozen=True)
class Load:
    """One load run: completed requests, their time, what went wrong, latencies (ms)."""

    requests: int
    seconds: float
    non_2xx: int
    errors: dict[str, int]
    p50_ms: float
    p99_ms: float
    latencies_ms: tuple[float, ...] = ()

    @property
    def rate(self) -> float:
        return self.requests / self.seconds if self.seconds else 0.0

    @property
    def answered_2xx(self) -> int:
        return self.requests - self.non_2xx

    @property
    def failures(self) -> int:
        return self.non_2xx + sum(self.errors.values())


def wrk_lua(ctx: Context) -> Path:
    headers = "\n".join(f'wrk.headers["{name}"] = "{value}"' for name, value in signed_headers(ctx.body).items())
    path = ctx.path("wrk") / "post.lua"
    path.write_text(WRK_SCRIPT.format(body=ctx.body.decode(), headers=headers))
    return path


def run_wrk(ctx: Context, url: str, seconds: float) -> Load:
    argv = ["wrk", "-t1", f"-c{CONCURRENCY}", f"-d{seconds:g}s", "--timeout", "10s", "-s", str(wrk_lua(ctx)), url]
    proc = ctx.spawn("wrk", argv, dict(os.environ))
    code = proc.finish(seconds + 60)
    match = re.search(r"ACK_PATH_WRK" + r" (\d+)" * 9, proc.output())
    if code != 0 or not match:
        raise proc.failure(f"exited with {code}:\n{proc.output()}")
    requests, micros, connect, read, write, status, timeout, p50, p99 = (int(x) for x in match.groups())
    errors = {k: v for k, v in (("connect", connect), ("read", read), ("write", write), ("timeout", timeout)) if v}
    return Load(requests, micros / 1e6, status, errors, p50 / 1000, p99 / 1000)


def raw_request(url: str, body: bytes) -> bytes:
    host_port = url.split("//", 1)[1].split("/", 1)[0]
    path = "/" + url.split("//", 1)[1].split("/", 1)[1]
    lines = [f"POST {path} HTTP/1.1", f"Host: {host_port}", f"Content-Length: {len(body)}"]
    lines += [f"{name}: {value}" for name, value in signed_headers(body).items()]
    return ("\r\n".join(lines) + "\r\n\r\n").encode() + body


def client_main(conn: Connection) -> None:
    """The Python client process: ("run", url, request bytes, count) -> ("done", Load)."""
    import asyncio

    while (message := conn.recv())[0] in ("run", "open"):
        try:
            if message[0] == "run":
                _, url, request, count = message
                conn.send(("done", asyncio.run(_raw_load(url, request, count))))
            else:
                _, url, request, count, rate, seed = message
                conn.send(("done", asyncio.run(_open_load(url, request, count, rate, seed))))
        except Exception as exc:  # report instead of leaving the parent waiting
            conn.send(("error", f"{type(exc).__name__}: {exc}"))


async def _raw_load(url: str, request: bytes, count: int) -> Load:
    """`count` copies of one pre-encoded request on CONCURRENCY keep-alive sockets, one at a time each."""
    import asyncio

    host, port = url.split("//", 1)[1].split("/", 1)[0].rsplit(":", 1)
    pending = deque([request] * count)
    tally: dict[str, Any] = {"statuses": Counter(), "errors": Counter(), "latencies": [], "last": 0.0}
    loop = asyncio.get_running_loop()
    done = []
    first = clock()
    for _ in range(min(CONCURRENCY, count)):
        finished: asyncio.Future[None] = loop.create_future()
        await loop.create_connection(lambda f=finished: _RawConnection(pending, f, tally), host, int(port))
        done.append(finished)
    await asyncio.wait_for(asyncio.gather(*done), RUN_TIMEOUT)
    latencies = sorted(x * 1000 for x in tally["latencies"])
    statuses: Counter[int] = tally["statuses"]
    non_2xx = sum(n for status, n in statuses.items() if not 200 <= status < 300)
    return Load(
        len(latencies),
        tally["last"] - first,
        non_2xx,
        dict(tally["errors"]),
        quantile(latencies, 0.5),
        quantile(latencies, 0.99),
        tuple(latencies),
    )


@dataclass(frozen=True)
class OpenLoad(Load):
    """An open-loop run: also the offered rate and how crowded the 32 sockets were."""

    offered: float = 0.0  # the nominal rate asked for
    scheduled: float = 0.0  # the rate this run's arrivals actually had (requests / span of the arrivals)
    peak_in_flight: int = 0
    mean_in_flight: float = 0.0  # seen by each arrival, itself included
    queued: int = 0  # requests that found all sockets busy and waited for one

    @property
    def saturated(self) -> bool:
        """Answers came slower than requests arrived: the side did not keep up with the offered rate."""
        return self.rate < SATURATED * self.scheduled


class _OpenConnection(asyncio.Protocol):
    """One keep-alive HTTP/1.1 socket of the open loop: sends what the dispatcher gives it, one at a time."""

    def __init__(self, pool: _OpenPool) -> None:
        self.pool = pool
        self.buffer = b""
        self.since = 0.0  # when the request in flight was dispatched (its arrival)
        self.transport: Any = None

    def connection_made(self, transport: Any) -> None:
        self.transport = transport
        self.pool.idle.append(self)

    def send(self, request: bytes, since: float) -> None:
        self.since = since
        self.transport.write(request)

    def data_received(self, data: bytes) -> None:
        self.buffer += data
        while (answer := next_answer(self.buffer)) is not None:
            status, self.buffer = answer
            self.pool.answered(self, status, self.since)

    def connection_lost(self, exc: Exception | None) -> None:
        self.pool.lost(self, exc)


class _OpenPool:
    """The open loop's sockets: idle ones, arrivals waiting for one, and the tally."""

    def __init__(self, request: bytes, count: int) -> None:
        self.request = request
        self.count = count
        # Free sockets, first freed first used: each stays busy enough that no server's idle timeout closes it.
        self.idle: deque[_OpenConnection] = deque()
        self.waiting: deque[float] = deque()  # arrival times of requests with no free socket yet
        self.in_flight = 0
        self.peak = 0
        self.in_flight_sum = 0  # sampled at each arrival
        self.queued = 0
        self.finished = 0
        self.last = 0.0
        self.statuses: Counter[int] = Counter()
        self.errors: Counter[str] = Counter()
        self.latencies: list[float] = []
        self.done: Any = None

    def arrive(self) -> None:
        now = clock()
        self.in_flight += 1
        self.peak = max(self.peak, self.in_flight)
        self.in_flight_sum += self.in_flight
        if self.idle:
            self.idle.popleft().send(self.request, now)
        else:
            self.queued += 1
            self.waiting.append(now)

    def answered(self, connection: _OpenConnection, status: int, since: float) -> None:
        now = clock()
        self.latencies.append(now - since)
        self.statuses[status] += 1
        self.last = now
        self.in_flight -= 1
        self._finish_one()
        if self.waiting:
            connection.send(self.request, self.waiting.popleft())
        else:
            self.idle.append(connection)

    def lost(self, connection: _OpenConnection, exc: Exception | None) -> None:
        if connection in self.idle:
            self.idle.remove(connection)
        if exc is not None or self.finished < self.count:
            self.errors[type(exc).__name__ if exc else "closed"] += 1
        if self.finished < self.count and self.done is not None and not self.done.done():
            self.done.set_exception(RuntimeError(f"a socket closed after {self.finished} answers"))

    def _finish_one(self) -> None:
        self.finished += 1
        if self.finished == self.count and not self.done.done():
            self.done.set_result(None)


async def _open_load(url: str, request: bytes, count: int, rate: float, seed: int) -> OpenLoad:
    """`count` copies of one pre-encoded request, arriving as a Poisson process of `rate` per second."""
    import random

    host, port = url.split("//", 1)[1].split("/", 1)[0].rsplit(":", 1)
    loop = asyncio.get_running_loop()
    pool = _OpenPool(request, count)
    pool.done = loop.create_future()
    connections = []
    for _ in range(CONCURRENCY):
        _, protocol = await loop.create_connection(lambda: _OpenConnection(pool), host, int(port))
        connections.append(protocol)
    gaps = random.Random(seed)
    first = clock()
    due = first
    for _ in range(count):
        due += gaps.expovariate(rate)
        if (wait := due - clock()) > 0:
            await asyncio.sleep(wait)
        pool.arrive()
    try:
        await asyncio.wait_for(pool.done, RUN_TIMEOUT)
    finally:
        for connection in connections:
            connection.transport.close()
    latencies = sorted(x * 1000 for x in pool.latencies)
    non_2xx = sum(n for status, n in pool.statuses.items() if not 200 <= status < 300)
    return OpenLoad(
        len(latencies),
        pool.last - first,
        non_2xx,
        dict(pool.errors),
        quantile(latencies, 0.5),
        quantile(latencies, 0.99),
        tuple(latencies),
        offered=rate,
        scheduled=count / (due - first),
        peak_in_flight=pool.peak,
        mean_in_flight=pool.in_flight_sum / count,
        queued=pool.queued,
    )


def open_load(ctx: Context, url: str, count: int, seed: int) -> OpenLoad:
    client = ctx.child("client", client_main)
    message = ("open", url, raw_request(url, ctx.body), count, ctx.args.forward_rate, seed)
    return client.ask(message, timeout=RUN_TIMEOUT)[1]


def python_load(ctx: Context, url: str, count: int) -> Load:
    client = ctx.child("client", client_main)
    return client.ask(("run", url, raw_request(url, ctx.body), count), timeout=RUN_TIMEOUT)[1]


# --------------------------------------------------------------------------- 1. receiver


@dataclass
class PartResult:
    lines: list[str]
    figures: dict[str, dict[str, float]]  # side -> figure -> value
    ok: bool


def measure_receiver(ctx: Context) -> PartResult:
    args, out = ctx.args, []
    use_wrk = args.client == "wrk" or (args.client == "auto" and shutil.which("wrk"))
    load_name = f"wrk -t1 -c{CONCURRENCY} -d{args.seconds:g}s" if use_wrk else f"python raw x {args.requests}"

    def load(url: str, warm: bool = False) -> Load:
        if use_wrk:
            return run_wrk(ctx, url, 1.0 if warm else args.seconds)
        return python_load(ctx, url, min(2000, args.requests) if warm else args.requests)

    procs: dict[str, Proc] = {}
    urls: dict[str, str] = {}
    recordings: dict[str, Path] = {}
    loads: dict[str, list[Load]] = {}
    lags: dict[str, list[float]] = {}
    try:
        procs["bare"], urls["bare"] = ctx.bare()
        for tree in ctx.trees:
            procs[tree.label], urls[tree.label], recordings[tree.label] = ctx.up(tree, f"up-{tree.label}")
        sides = list(procs)
        out.append(f"1. receiver, headless, server-bound: {load_name}, signed {len(ctx.body)}-byte text event")
        for side in sides:
            out.append(f"   {side:<9} pid {procs[side].popen.pid} on {urls[side]}")
        print("\n".join(out), flush=True)
        for side in sides:
            loads[side] = [load(urls[side], warm=True)]  # warm-up: counted for the recording check only
            lags[side] = []
            if side != "bare":
                procs[side].wait_quiet()
        header = f"   {'round':>5}  {'side':<9} {'requests':>8} {'seconds':>7} {'req/s':>7} {'p50 ms':>7} {'p99 ms':>7}"
        header += f" {'display lag':>11}  failures"
        print(header + "\n   " + "-" * (len(header) - 3), flush=True)
        rows = [header, "   " + "-" * (len(header) - 3)]
        for number in range(1, args.rounds + 1):
            for side in rotated(sides, number):
                result = load(urls[side])
                loads[side].append(result)
                lag = "" if side == "bare" else f"{procs[side].wait_quiet():.2f} s"
                fails = f"non-2xx {result.non_2xx}" + "".join(f", {k} {v}" for k, v in result.errors.items())
                row = (
                    f"   {number:>5}  {side:<9} {result.requests:>8} {result.seconds:>7.2f} {result.rate:>7.0f} "
                    f"{result.p50_ms:>7.2f} {result.p99_ms:>7.2f} {lag:>11}  {fails}"
                )
                rows.append(row)
                print(row, flush=True)
    finally:
        codes = {side: proc.stop() for side, proc in procs.items()}

    rates = {side: median([x.rate for x in loads[side][1:]]) for side in sides}
    figures = {side: {"rate": rates[side], "ratio": rates[side] / rates["bare"]} for side in sides if side != "bare"}
    ok = all(x.failures == 0 for runs in loads.values() for x in runs)
    low, goal = TARGETS["receiver"]
    summary = ["   median req/s: " + ", ".join(f"{side} {rates[side]:.0f}" for side in sides)]
    for side, fig in figures.items():
        per_round = [o.rate / b.rate for b, o in zip(loads["bare"][1:], loads[side][1:], strict=True)]
        summary.append(
            f"   {side}/bare = {fig['ratio']:.3f} (per round {', '.join(f'{x:.3f}' for x in per_round)}); "
            f"target >= {low}, goal {goal}"
        )
    for side in figures:
        path = recordings[side]
        lines = recording_lines(path)
        intact, detail = check_recording(path, lines)
        answered = sum(x.answered_2xx for x in loads[side])
        slack = CONCURRENCY * len(loads[side]) if use_wrk else 0
        said = stopped_exchanges(procs[side])
        counted = answered <= lines <= answered + slack and said == lines
        ok = ok and intact and counted
        summary.append(
            f"   {side} recording: {lines} lines, {'all intact (event, valid, 200, seq 1..N)' if intact else 'BAD'}; "
            f"2xx counted by the client {answered} (+ up to {slack} in flight at wrk's stops); "
            f"'Stopped after {said}'; stdout {procs[side].lines} lines; exit {codes[side]}: "
            f"{'OK' if intact and counted else 'FAILED'}"
        )
        if not intact:
            summary += [f"     {line}" for line in detail]
    print("\n".join(summary) + "\n", flush=True)
    return PartResult(out + rows + summary, figures, ok)


# --------------------------------------------------------------------------- 2. replay


def replay_headers(session: Path, backend_url: str) -> tuple[list[str], list[list[str]]]:
    """What plan_replay drops from the recorded headers and adds, so the plain loop sends the same."""
    from wa_devtunnel.engine.replay.plan import ReplayOptions, plan_replay
    from wa_devtunnel.engine.replay.source import Selection, load_recordings, select

    with open(session, "rb") as lines:
        first = json.loads(next(lines))
    recorded = [(str(name), str(value)) for name, value in first["request"]["headers"]]
    exchange = select(load_recordings([session]).exchanges, Selection())[0]
    planned = plan_replay([exchange], ReplayOptions(backend_url, concurrency=CONCURRENCY))[0].headers
    planned_names = {name.lower() for name, _ in planned}
    recorded_names = {name.lower() for name, _ in recorded}
    drop = sorted(recorded_names - planned_names)
    extra = [[name, value] for name, value in planned if name.lower() not in recorded_names]
    return drop, extra


def measure_replay(ctx: Context) -> PartResult:
    from replay import write_recording

    args = ctx.args
    _, backend_url = ctx.backend()
    began = time.perf_counter()
    session = write_recording(ctx.path("session"), args.events)
    wrote = time.perf_counter() - began
    drop, extra = replay_headers(session, backend_url)
    sides = ["plain", *(tree.label for tree in ctx.trees)]
    out = [
        f"2. replay of {args.events} events ({session.stat().st_size / 1e6:.1f} MB, written in {wrote:.1f} s), "
        f"concurrency {CONCURRENCY}, whole processes timed spawn -> exit, to {backend_url}",
        f"   plain loop: drops {drop}, adds {extra}",
    ]
    header = f"   {'round':>5}  {'side':<9} {'seconds':>7} {'events/s':>8} {'stdout':>6}  checks"
    rows = [header, "   " + "-" * (len(header) - 3)]
    print("\n".join(out + rows), flush=True)
    rates: dict[str, list[float]] = {side: [] for side in sides}
    ok = True
    for number in range(1, args.rounds + 1):
        for side in rotated(sides, number):
            before = ctx.backend_valid()
            if side == "plain":
                argv = [sys.executable, "-c", PLAIN_REPLAY, str(session), backend_url, str(CONCURRENCY)]
                proc = ctx.spawn("plain", [*argv, json.dumps(drop), json.dumps(extra)], ctx.trees[0].env())
                replays = None
            else:
                tree = next(t for t in ctx.trees if t.label == side)
                replays = ctx.tmp / "replays" / f"{side}-{number}"
                argv = tree.argv("replay", str(session), "--to", backend_url, "--concurrency", str(CONCURRENCY))
                proc = ctx.spawn(f"replay-{side}", [*argv, "--recordings-dir", str(replays)], tree.env())
            code = proc.finish()
            seconds = (proc.ended or time.perf_counter()) - proc.spawned
            seen = ctx.backend_valid() - before
            recorded = sum(recording_lines(p) for p in replays.glob("*.jsonl")) if replays else args.events
            good = code == 0 and seen == Counter({"valid": args.events}) and recorded == args.events
            ok = ok and good
            rates[side].append(args.events / seconds)
            checks = f"exit {code}, backend {dict(seen)}" + (f", recorded {recorded}" if replays else "")
            row = f"   {number:>5}  {side:<9} {seconds:>7.2f} {args.events / seconds:>8.0f} {proc.lines:>6}  {checks}"
            row += "" if good else "  FAILED"
            rows.append(row)
            print(row, flush=True)
            if not good:
                print(proc.output()[-2000:] + proc.stderr()[-2000:], flush=True)
    medians = {side: median(values) for side, values in rates.items()}
    figures = {side: {"rate": medians[side], "ratio": medians[side] / medians["plain"]} for side in sides[1:]}
    low, goal = TARGETS["replay"]
    summary = ["   median events/s: " + ", ".join(f"{side} {medians[side]:.0f}" for side in sides)]
    for side, fig in figures.items():
        per_round = [o / p for p, o in zip(rates["plain"], rates[side], strict=True)]
        summary.append(
            f"   {side}/plain = {fig['ratio']:.3f} (per round {', '.join(f'{x:.3f}' for x in per_round)}); "
            f"target >= {low}, goal {goal}"
        )
    print("\n".join(summary) + "\n", flush=True)
    return PartResult(out + rows + summary, figures, ok)


# --------------------------------------------------------------------------- 3. forward


def measure_forward(ctx: Context) -> PartResult:
    args = ctx.args
    _, backend_url = ctx.backend()
    procs: dict[str, Proc] = {}
    urls = {"direct": backend_url}
    recordings: dict[str, Path] = {}
    latencies: dict[str, list[float]] = {}
    closed: dict[str, list[float]] = {}
    saturated: Counter[str] = Counter()
    sent: Counter[str] = Counter()
    failures = 0
    out = [
        f"3. forwarding overhead: {args.forward_requests} signed POSTs per round, open loop at an offered "
        f"{args.forward_rate:g} req/s (Poisson arrivals, one seed per round for every side) on {CONCURRENCY} "
        "keep-alive raw sockets (latency = arrival -> answer parsed, waiting for a free socket included); "
        f"then {args.forward_closed} closed-loop requests for the throughput (information only)"
    ]
    header = (
        f"   {'round':>5}  {'side':<9} {'offered':>7} {'achieved':>8} {'p50 ms':>7} {'p99 ms':>7} "
        f"{'in flight peak/mean':>19} {'waited':>6} {'closed req/s':>12}  failures"
    )
    rows = [header, "   " + "-" * (len(header) - 3)]
    before = ctx.backend_valid()
    try:
        for tree in ctx.trees:
            name = f"fwd-{tree.label}"
            procs[tree.label], urls[tree.label], recordings[tree.label] = ctx.up(
                tree, name, "--forward-to", backend_url
            )
        sides = list(urls)
        for side in sides:
            out.append(f"   {side:<9} {urls[side]}" + (f" (pid {procs[side].popen.pid})" if side in procs else ""))
        print("\n".join(out + rows), flush=True)
        for side in sides:
            warm = python_load(ctx, urls[side], FORWARD_WARMUP)
            sent[side] += warm.requests
            failures += warm.failures
            latencies[side], closed[side] = [], []
            if side in procs:
                procs[side].wait_quiet()
        for number in range(1, args.rounds + 1):
            for side in rotated(sides, number):
                result = open_load(ctx, urls[side], args.forward_requests, seed=number)
                sent[side] += result.requests
                failures += result.failures
                latencies[side] += result.latencies_ms
                saturated[side] += result.saturated
                if side in procs:
                    procs[side].wait_quiet()
                capacity = python_load(ctx, urls[side], args.forward_closed)
                sent[side] += capacity.requests
                failures += capacity.failures
                closed[side].append(capacity.rate)
                if side in procs:
                    procs[side].wait_quiet()
                fails = f"non-2xx {result.non_2xx + capacity.non_2xx}" + "".join(
                    f", {k} {v}" for k, v in (Counter(result.errors) + Counter(capacity.errors)).items()
                )
                row = (
                    f"   {number:>5}  {side:<9} {result.scheduled:>7.0f} {result.rate:>8.0f} "
                    f"{result.p50_ms:>7.2f} {result.p99_ms:>7.2f} "
                    f"{result.peak_in_flight:>13}/{result.mean_in_flight:<5.1f} {result.queued:>6} "
                    f"{capacity.rate:>12.0f}  {fails}" + ("  SATURATED" if result.saturated else "")
                )
                rows.append(row)
                print(row, flush=True)
    finally:
        codes = {side: proc.stop() for side, proc in procs.items()}
    seen = ctx.backend_valid() - before
    saturated = +saturated  # only the sides with a saturated round
    ok = failures == 0 and seen == Counter({"valid": sum(sent.values())}) and not saturated
    q = {
        side: {p: quantile(sorted(values), f) for p, f in (("p50", 0.5), ("p99", 0.99))}
        for side, values in latencies.items()
    }
    throughput = {side: median(values) for side, values in closed.items()}
    figures = {
        side: {
            "p50": q[side]["p50"],
            "p99": q[side]["p99"],
            **{f"+{p}": q[side][p] - q["direct"][p] for p in ("p50", "p99")},
            "closed_ratio": throughput[side] / throughput["direct"],
            "offered": args.forward_rate,
        }
        for side in sides[1:]
    }
    summary = [
        f"   direct    p50 {q['direct']['p50']:.2f} ms, p99 {q['direct']['p99']:.2f} ms at {args.forward_rate:g} req/s "
        f"offered; closed loop {throughput['direct']:.0f} req/s"
    ]
    for side, fig in figures.items():
        summary.append(
            f"   {side:<9} p50 {fig['p50']:.2f} ms ({fig['+p50']:+.2f}), p99 {fig['p99']:.2f} ms ({fig['+p99']:+.2f}); "
            f"target <= +{FORWARD_TARGET_MS['p50']:g} ms p50, <= +{FORWARD_TARGET_MS['p99']:g} ms p99; "
            f"closed loop {throughput[side]:.0f} req/s = {fig['closed_ratio']:.3f} x direct (information)"
        )
    if saturated:
        summary.append(
            f"   SATURATED rounds (achieved < {SATURATED:.0%} of offered): {dict(saturated)}: lower --forward-rate"
        )
    summary.append(f"   backend signature checks: {dict(seen)} (expected valid={sum(sent.values())})")
    for side in figures:
        path = recordings[side]
        lines = recording_lines(path)
        intact, detail = check_recording(path, lines)
        good = intact and lines == sent[side] and stopped_exchanges(procs[side]) == lines
        ok = ok and good
        summary.append(
            f"   {side} recording: {lines} lines for {sent[side]} requests, stdout {procs[side].lines} lines, "
            f"exit {codes[side]}: {'OK' if good else 'FAILED'}"
        )
        if not intact:
            summary += [f"     {line}" for line in detail]
    print("\n".join(summary) + "\n", flush=True)
    return PartResult(out + rows + summary, figures, ok)


# --------------------------------------------------------------------------- orchestration


MEASURES = {"receiver": measure_receiver, "replay": measure_replay, "forward": measure_forward}


def git(*args: str) -> str:
    return subprocess.run(["git", *args], cwd=ROOT, check=True, capture_output=True, text=True).stdout.strip()


@contextlib.contextmanager
def baseline_tree(ref: str | None) -> Any:
    """A detached worktree of `ref` under /tmp, removed at the end (None: no baseline)."""
    if ref is None:
        yield None
        return
    sha = git("rev-parse", "--verify", f"{ref}^{{commit}}")
    path = Path(tempfile.gettempdir()) / f"ack-baseline-{sha[:12]}"
    if path.exists():  # left by an interrupted run
        subprocess.run(["git", "worktree", "remove", "--force", str(path)], cwd=ROOT, capture_output=True)
        shutil.rmtree(path, ignore_errors=True)
    git("worktree", "add", "--detach", str(path), sha)
    try:
        yield Tree("baseline", path, sha)
    finally:
        subprocess.run(["git", "worktree", "remove", "--force", str(path)], cwd=ROOT, capture_output=True)
        shutil.rmtree(path, ignore_errors=True)
        subprocess.run(["git", "worktree", "prune"], cwd=ROOT, capture_output=True)


def byte_compile(tree: Tree) -> None:
    """Each tree's package byte-compiled first, as `pip install` does: start-up (part 2 times it) is then an
    installed package's, whatever this shell's PYTHONDONTWRITEBYTECODE (set on these machines, it would make
    every process recompile each module whose cached bytecode is older than its source)."""
    env = {k: v for k, v in os.environ.items() if k != "PYTHONDONTWRITEBYTECODE"}
    command = [sys.executable, "-m", "compileall", "-q", str(tree.path / "wa_devtunnel")]
    subprocess.run(command, env=env, check=True, stdout=subprocess.DEVNULL)


def event_body() -> bytes:
    """The issue's event: one signed Meta text message of EVENT_BYTES bytes (samples' text, lengthened)."""
    from wa_devtunnel.rules.samples import payloads as samples

    room = EVENT_BYTES - len(samples.text_message_payload(text=""))
    words = "Does it come in another color? I would like the blue one in size M, and a gift box. " * 3
    body = samples.text_message_payload(text=words[:room])
    if len(body) != EVENT_BYTES:
        raise RuntimeError(f"the event is {len(body)} bytes, not {EVENT_BYTES}")
    return body


def machine_lines(trees: list[Tree], use_wrk: bool) -> list[str]:
    import aiohttp

    cores = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count()
    wrk = "no wrk on PATH"
    if path := shutil.which("wrk"):
        wrk = subprocess.run([path, "--version"], capture_output=True, text=True).stdout.splitlines()[0].split(" [")[0]
    lines = [
        f"machine: {platform.machine()} {platform.system()} {platform.release()}, {cores} usable cores "
        f"(of {os.cpu_count()}), load avg {' '.join(f'{x:.2f}' for x in os.getloadavg())}",
        f"python {platform.python_version()} ({sys.executable}), aiohttp {aiohttp.__version__}"
        + f", {wrk}; part 1's load: {'wrk' if use_wrk else 'Python raw-socket client'}",
    ]
    for tree in trees:
        probe = subprocess.run(
            [sys.executable, "-c", "import wa_devtunnel; print(wa_devtunnel.__file__)"],
            env=tree.env(),
            cwd=tempfile.gettempdir(),
            capture_output=True,
            text=True,
        )
        dirty = " + uncommitted changes" if tree.label == "current" and git("status", "--porcelain", "--", ".") else ""
        imports = probe.stdout.strip() or probe.stderr[-200:]
        lines.append(f"{tree.label:<9} {tree.commit[:12]}{dirty}: imports {imports}")
    return lines


def verdicts(results: dict[str, PartResult], trees: list[Tree]) -> tuple[list[str], bool]:
    """The before/after table: one row per ratio or difference, one column per tree."""
    labels = [t.label for t in trees][::-1]  # baseline first, then current
    header = f"{'figure':<34}" + "".join(f"{label:>12}" for label in labels) + f"{'target':>10}{'goal':>8}  verdict"
    lines = [header, "-" * len(header)]
    passed = True
    rows: list[tuple[str, str, str, Callable[[float], bool], str, str]] = []
    if "receiver" in results:
        low, goal = TARGETS["receiver"]
        # Each test binds its own target (a bare `low` would be the last part's by the time it is called).
        test: Callable[[float], bool] = lambda x, low=low: x >= low  # noqa: E731
        rows.append(("1. receiver req/s ours / bare", "receiver", "ratio", test, f">={low}", f"{goal}"))
    if "replay" in results:
        low, goal = TARGETS["replay"]
        test = lambda x, low=low: x >= low  # noqa: E731
        rows.append(("2. replay events/s ours / plain", "replay", "ratio", test, f">={low}", f"{goal}"))
    if "forward" in results:
        for p in ("p50", "p99"):
            limit = FORWARD_TARGET_MS[p]
            title = f"3. forward {p} added (ms, c{CONCURRENCY})"
            rows.append((title, "forward", f"+{p}", lambda x, m=limit: x <= m, f"<=+{limit:g}", "-"))
        rows.append(("   closed-loop req/s fwd / direct", "forward", "closed_ratio", lambda x: True, "-", "-"))
    for title, part, key, test, target, goal in rows:
        values = {label: results[part].figures[label][key] for label in labels}
        met = test(values["current"])
        passed = passed and met
        ratio = key.endswith("ratio")
        cells = "".join(f"{values[label]:>12.3f}" if ratio else f"{values[label]:>+12.2f}" for label in labels)
        verdict = "information" if target == "-" else "met" if met else "MISSED"
        lines.append(f"{title:<34}{cells}{target:>10}{goal:>8}  {verdict}")
    if "forward" in results:
        rate = results["forward"].figures[labels[0]]["offered"]
        lines.append(f"part 3's latencies: open loop at an offered {rate:g} req/s on {CONCURRENCY} sockets")
    for part, result in results.items():
        lines.append(f"checks of part {part}: {'OK' if result.ok else 'FAILED'}")
        passed = passed and result.ok
    return lines, passed


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--baseline", metavar="REF", help="also measure this git ref (a temporary worktree)")
    parser.add_argument("--rounds", type=int, default=3, help="rounds per side in each part (3)")
    parser.add_argument("--seconds", type=float, default=5.0, help="wrk duration per round (5)")
    parser.add_argument("--only", choices=PARTS, help="run one part")
    parser.add_argument(
        "--client", choices=("auto", "wrk", "python"), default="auto", help="part 1's load (auto: wrk if on PATH)"
    )
    parser.add_argument("--events", type=int, default=10_000, help="replayed events (10000)")
    parser.add_argument("--requests", type=int, default=20_000, help="part 1 requests per round without wrk (20000)")
    parser.add_argument(
        "--forward-requests", type=int, default=4000, help="part 3 open-loop requests per round and side (4000)"
    )
    parser.add_argument(
        "--forward-rate", type=float, default=FORWARD_RATE, help=f"part 3 offered req/s, Poisson ({FORWARD_RATE:g})"
    )
    parser.add_argument(
        "--forward-closed", type=int, default=2000, help="part 3 closed-loop requests per round, throughput (2000)"
    )
    args = parser.parse_args(argv)
    for name in ("rounds", "events", "requests", "forward_requests", "forward_closed"):
        if getattr(args, name) < 1:
            parser.error(f"--{name.replace('_', '-')} must be at least 1")
    if args.seconds <= 0:
        parser.error("--seconds must be positive")
    if args.forward_rate <= 0:
        parser.error("--forward-rate must be positive")
    if args.client == "wrk" and not shutil.which("wrk"):
        parser.error("--client wrk: wrk is not on PATH")
    return args


def _interrupted(signum: int, frame: Any) -> None:
    raise KeyboardInterrupt(f"signal {signum}")


def run(args: argparse.Namespace) -> int:
    signal.signal(signal.SIGTERM, _interrupted)  # clean up as on Ctrl+C
    parts = [args.only] if args.only else list(PARTS)
    use_wrk = "receiver" in parts and args.client != "python" and bool(shutil.which("wrk"))
    current = Tree("current", ROOT, git("rev-parse", "HEAD"))
    results: dict[str, PartResult] = {}
    with baseline_tree(args.baseline) as baseline, tempfile.TemporaryDirectory(prefix="wa-ack-path-") as tmp:
        trees = [current] + ([baseline] if baseline else [])
        for tree in trees:
            byte_compile(tree)
        print("wa-devtunnel acknowledgement path, replay and forwarding (issue 17)")
        print("\n".join(machine_lines(trees, use_wrk)))
        print(f"rounds {args.rounds}, concurrency {CONCURRENCY}, parts {', '.join(parts)}\n", flush=True)
        ctx = Context(args, trees, Path(tmp), mp.get_context("spawn"), event_body())
        try:
            for part in parts:
                results[part] = MEASURES[part](ctx)
        finally:
            for proc in list(LIVE):
                proc.stop()
            for child in ctx.children.values():
                child.finish(("stop",))
        table, passed = verdicts(results, trees)
    print("\n".join(table))
    print(f"load avg at the end: {' '.join(f'{x:.2f}' for x in os.getloadavg())}")
    return 0 if passed else 1


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    try:
        return run(args)
    except KeyboardInterrupt:
        print("\ninterrupted: every process, temp directory and worktree of this run is gone", file=sys.stderr)
        return 130


if __name__ == "__main__":
    sys.exit(main())
