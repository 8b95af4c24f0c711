"""The live inspector under a burst, with the engine in its own process: does the TUI cost the receiver
throughput, stay responsive, keep up, and at what memory cost?

    .venv/bin/python benchmarks/tui_burst.py [--requests N] [--concurrency C] [--rounds R] [--modes headless,tui]
                                             [--memory-requests M] [--memory-rounds K]
                                             [--profile {auto,always,never}] [--profile-out FILE]
                                             [--trace-memory N] [--verbose]

Every run starts a fresh engine, `python -m wa_devtunnel up --port 0 --tunnel none --recordings-dir DIR
--headless` in a new session, environment = this shell's minus every wa-devtunnel, WhatsApp, Meta and ngrok
variable, plus WHATSAPP_APP_SECRET (so every signature is verified) and WHATSAPP_VERIFY_TOKEN, run from an
empty directory (no .env). The parent of the engine is a "front" process, one per run:

* mode "headless": the engine is `up --headless` as a terminal runs it (TerminalEngine): a line per exchange
  on its stdout (/dev/null), stdin /dev/null; the front attaches through the instance file for the port
  (as `watch` does), detaches at once and only waits, so nobody is attached during the burst;
* mode "tui": the engine is started by EngineChild exactly as `run_tui` (wa_devtunnel/tui/launch.py) does
  (stdin a pipe from the front, stdout /dev/null, so it prints no exchange lines), and the front is the UI
  process of production: the real `InspectorApp(client, child)` under
  Textual's headless driver (`run_test(headless=True, size=(120, 40))`), reading the engine's events
  over its Unix-socket channel (and from the recording if it falls behind, as in production);
* one client process per run: C requests in flight, N signed Meta-shaped POSTs built beforehand
  from wa_devtunnel.rules.samples.payloads (text, image, location, button, list, reaction and status
  deliveries, each with its own wamid), fired as fast as the engine answers. --client raw (default): each
  request encoded beforehand and written on one of C raw keep-alive sockets, the next when the answer is in,
  as wrk does (~25 us of CPU a request); --client aiohttp: an aiohttp ClientSession (~105 us a request).
  Meta's senders do not run on the developer's machine: with the aiohttp client the load generator alone
  takes ~45% of 2 cores, the CPU the UI process would otherwise use, so on a 2-core machine that variant
  measures the machine's CPU share more than the TUI (0.85-0.93x there; 1.03-1.07x with the raw client;
  wrk against real tmux terminals: TUI 7,626-7,667 vs headless 6,992-7,115 req/s).

Rounds alternate the modes (headless, tui, headless, tui, ...) so a shared machine's noise lands on both;
then --memory-rounds tui runs of --memory-requests POSTs (0 skips them). Fronts and clients are forked
from a forkserver started before this script imports anything heavy.

Throughput: the client's 200s / (last response - first request). TUI/headless = median over the tui runs
/ median over the headless runs of the same N (the per-round ratios are printed too).

Key latency (tui): a thread plays the terminal driver's role. Every 100 ms it takes a timestamp and hands
a Key("r") event to the app's loop (call_soon_threadsafe + post_message, which is what Textual's input
thread does), so time the loop spends blocked before the key is even dequeued is counted. "r" toggles
the token reveal in the header: harmless, and it does not touch follow mode. Latency = until
`action_reveal_token` has run ("handled"), and until the screen's next refresh after that ("painted").
`Pilot.press` is not used as the clock because it ends with `wait_for_idle`, which waits for the whole
process to stop using CPU: during a burst the UI never does, so it would time the burst. Presses from
the first request until the UI has caught up count as "during the burst".

Catch-up (tui): from the client's last response (CLOCK_MONOTONIC is shared between processes) until the
store holds N events, the list's row_count is N and the screen has refreshed after that; 0 when the UI
was done before the last response.

Memory: VmRSS of the UI process (front, tui mode) read by this script from /proc just before the burst,
then every 20 ms until the UI has caught up (peak; the UI's VmHWM at that time too, when it grew past
its value before the burst), and once the UI has caught up. The engine's peak RSS is its VmHWM, read
before it is stopped. Once caught up, what the UI's model and list hold is counted with sys.getsizeof
(views, their strings and tuples, the containers, the cached records; each object once): the rest of
the growth is outside the model (freed memory the allocator keeps, fragmentation, Textual's caches,
buffers). With --trace-memory N, one more tui run of N POSTs under tracemalloc lists what was allocated
during the burst and is still held, by source line and the wa_devtunnel frames that led there (slow,
and tracing may make the UI fall behind). As in production, the UI process lowers
its priority once its engine runs (tui/priority.py); --same-priority leaves it at the engine's, to compare.
CPU: the front's process time and the engine's utime+stime, before the burst -> caught up; the client's
process time during its burst; their sum against the machine's cores.

Checks: the client got N x 200; the recording holds exactly N lines, all events with a valid signature
and HTTP 200, seq 1..N; the engine stopped cleanly saying it answered N exchanges; tui: the store holds
seq 1..N in order (nothing lost, nothing twice), the list N unique rows ending with the newest, the
UI's queue is empty and every key press was handled.

Targets (summary over runs; each run's figure is printed too):
  1. throughput with the TUI attached >= 0.9 x headless (ratio of the medians, --requests runs);
  2. keys handled p95 <= 100 ms during the burst (presses pooled over the --requests tui runs);
  3. every exchange on screen <= 3 s after the last response (every --requests tui run);
  4. the UI process grows <= 30 MB (peak VmRSS - VmRSS before the burst) over a --memory-requests burst
     (every memory run).
When target 1, 2 or 3 is missed, or with --profile always, one more tui run (--requests, not counted) is
made under cProfile (the UI process's main thread, from the burst's start to caught up) and the script
prints where its time goes. Exit status: 0 when every check and target passes, 1 otherwise.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import io
import multiprocessing as mp
import os
import platform
import pstats
import signal
import statistics
import subprocess
import sys
import tempfile
import threading
import time
import tracemalloc
from collections import Counter, deque
from dataclasses import dataclass, field
from multiprocessing.connection import Connection
from pathlib import Path
from typing import Any

# Only the standard library at module level: the front and client processes import this module too, and
# anything imported here would inflate the UI's RSS. Each process imports what it uses.
from common import (  # benchmarks/common.py (standard library only), which puts this checkout on sys.path
    APP_SECRET,
    HOST,
    ROOT,
    VERIFY_TOKEN,
    WEBHOOK_PATH,
    check_recording,
    quantile,
    start_child,
)

TERMINAL_SIZE = (120, 40)
KEY = "r"  # reveal/mask the verify token: repaints the header, leaves follow mode alone
KEY_PERIOD_S = 0.1
IDLE_S = 2.0  # key presses before the burst, for a baseline
START_TIMEOUT = 60.0
BURST_TIMEOUT = 600.0
CATCHUP_TIMEOUT = 120.0
RSS_SAMPLE_S = 0.02
TARGET_RATIO = 0.9
TARGET_KEY_P95_MS = 100.0
TARGET_CATCHUP_S = 3.0
TARGET_GROWTH_MB = 30.0
MODES = ("headless", "tui")
# What must not reach the engine from this shell: it would change what is measured (a tunnel, a forward).
FOREIGN_ENV_PREFIXES = ("WA_DEVTUNNEL_", "WHATSAPP_", "META_", "NGROK_", "PYNGROK_")
MB = 1_000_000


def clock() -> float:
    """CLOCK_MONOTONIC: the same clock in every process of this machine."""
    return time.clock_gettime(time.CLOCK_MONOTONIC)


def proc_status_mb(pid: int | str, field_name: str) -> float | None:
    """VmRSS / VmHWM of a process (Linux /proc), in MB; None when it is gone or not Linux."""
    with contextlib.suppress(OSError, ValueError), open(f"/proc/{pid}/status", "rb") as status:
        for line in status:
            if line.startswith(field_name.encode() + b":"):
                return int(line.split()[1]) * 1024 / MB
    return None


def proc_cpu_s(pid: int) -> float | None:
    """utime + stime of a process (Linux /proc), in seconds."""
    with contextlib.suppress(OSError, ValueError, IndexError):
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
        return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")
    return None


def engine_argv(recordings_dir: Path) -> list[str]:
    """What a developer types (`up` first), as run_tui hands it to EngineChild."""
    return ["up", "--port", "0", "--tunnel", "none", "--recordings-dir", str(recordings_dir)]


def engine_environment() -> dict[str, str]:
    """This shell's environment without anything that configures wa-devtunnel, plus the bench's secrets."""
    env = {k: v for k, v in os.environ.items() if not k.startswith(FOREIGN_ENV_PREFIXES)}
    env["WHATSAPP_APP_SECRET"] = APP_SECRET
    env["WHATSAPP_VERIFY_TOKEN"] = VERIFY_TOKEN
    # The engine runs this checkout (the one the UI imports), whatever the venv has installed.
    env["PYTHONPATH"] = os.pathsep.join(p for p in (str(ROOT), env.get("PYTHONPATH", "")) if p)
    return env


# --------------------------------------------------------------------------- payloads (client side)


def build_payloads(count: int) -> list[tuple[bytes, dict[str, str]]]:
    """N different signed deliveries: message types and statuses in rotation, each with its own wamid."""
    import hmac

    from wa_devtunnel.rules.samples import payloads as samples

    def one(i: int) -> dict[str, Any]:
        wamid = f"wamid.HBgLMTY1MDM4Nzk0MzkVAgASGBQzQUJCMDAw-bench-{i:06d}"
        kind = i % 8
        if kind == 0:
            message = samples.text_message(f"Order #{i}: does it come in another color?", message_id=wamid)
        elif kind == 1:
            message = samples.image_message(f"Photo {i}: is this the blue one?", message_id=wamid)
        elif kind == 2:
            message = samples.location_message(message_id=wamid, latitude=37.44 + i / 1e6)
        elif kind == 3:
            message = samples.button_reply(message_id=wamid)
        elif kind == 4:
            message = samples.list_reply(message_id=wamid)
        elif kind == 5:
            message = samples.reaction_message(message_id=wamid)
        else:
            state = "delivered" if kind == 6 else "read"
            change = samples.messages_change(statuses=[samples.status(state, message_id=wamid)])
            return samples.envelope([change])
        return samples.envelope([samples.messages_change([message])])

    payloads = []
    for i in range(count):
        body = samples.meta_json(one(i))
        digest = hmac.new(APP_SECRET.encode(), body, "sha256").hexdigest()
        headers = {
            "Content-Type": "application/json",
            "User-Agent": "facebookexternalua",
            "X-Hub-Signature-256": f"sha256={digest}",
        }
        payloads.append((body, headers))
    return payloads


# --------------------------------------------------------------------------- client process


def client_main(conn: Connection, count: int, concurrency: int, kind: str = "aiohttp") -> None:
    """Build the payloads, say ready, then fire them all when told to."""
    try:
        payloads = build_payloads(count)
        sizes = [len(body) for body, _ in payloads]
        conn.send(("ready", min(sizes), max(sizes)))
        _, url = conn.recv()
        if kind == "raw":
            result = asyncio.run(_raw_burst(url, payloads, concurrency))
        else:
            import aiohttp

            result = asyncio.run(_burst(aiohttp, url, payloads, concurrency))
        conn.send(("done", result))
    except BaseException as exc:  # report instead of leaving the parent waiting
        with contextlib.suppress(OSError):
            conn.send(("error", f"client: {type(exc).__name__}: {exc}"))
        raise


async def _burst(aiohttp: Any, url: str, payloads: list[tuple[bytes, dict[str, str]]], concurrency: int) -> dict:
    statuses: Counter[int] = Counter()
    errors: Counter[str] = Counter()
    latencies: list[float] = []
    pending = deque(payloads)
    last = 0.0

    async def worker(session: Any) -> None:
        nonlocal last
        while pending:
            body, headers = pending.popleft()
            began = clock()
            try:
                async with session.post(url, data=body, headers=headers) as response:
                    await response.read()
                    statuses[response.status] += 1
            except (TimeoutError, aiohttp.ClientError, OSError) as exc:
                errors[type(exc).__name__] += 1
                continue
            last = clock()
            latencies.append(last - began)

    connector = aiohttp.TCPConnector(limit=concurrency, limit_per_host=concurrency)
    timeout = aiohttp.ClientTimeout(total=60)
    async with aiohttp.ClientSession(connector=connector, timeout=timeout) as session:
        first, cpu = clock(), time.process_time()
        await asyncio.gather(*(worker(session) for _ in range(min(concurrency, len(payloads)))))
        cpu = time.process_time() - cpu
    latencies.sort()
    p99 = latencies[min(len(latencies) - 1, int(0.99 * len(latencies)))] * 1000 if latencies else 0.0
    return {
        "first": first,
        "last": last,
        "seconds": last - first,
        "statuses": dict(statuses),
        "errors": dict(errors),
        "p99_ms": p99,
        "cpu_s": cpu,
    }


def next_answer(buffer: bytes) -> tuple[int, bytes] | None:
    """The status of the first whole HTTP/1.1 answer in `buffer` and what follows it; None until one is whole."""
    end = buffer.find(b"\r\n\r\n")
    if end < 0:
        return None
    head = buffer[:end]
    length = 0
    for line in head.split(b"\r\n")[1:]:
        name, _, value = line.partition(b":")
        if name.strip().lower() == b"content-length":
            length = int(value)
    if len(buffer) < end + 4 + length:
        return None
    return int(head[9:12]), buffer[end + 4 + length :]


class _RawConnection(asyncio.Protocol):
    """One keep-alive HTTP/1.1 connection sending pre-encoded requests, one at a time, as wrk does."""

    def __init__(self, pending: deque[bytes], done: asyncio.Future[None], tally: dict[str, Any]) -> None:
        self.pending = pending
        self.done = done
        self.tally = tally
        self.buffer = b""
        self.began = 0.0
        self.transport: asyncio.Transport | None = None

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = transport  # type: ignore[assignment]
        self._next()

    def _next(self) -> None:
        if not self.pending:
            if self.transport is not None:
                self.transport.close()
            return
        self.began = clock()
        self.transport.write(self.pending.popleft())  # type: ignore[union-attr]

    def data_received(self, data: bytes) -> None:
        self.buffer += data
        while (answer := next_answer(self.buffer)) is not None:
            status, self.buffer = answer
            now = clock()
            self.tally["statuses"][status] += 1
            self.tally["latencies"].append(now - self.began)
            self.tally["last"] = now
            self._next()

    def connection_lost(self, exc: Exception | None) -> None:
        if exc is not None:
            self.tally["errors"][type(exc).__name__] += 1
        if not self.done.done():
            self.done.set_result(None)


async def _raw_burst(url: str, payloads: list[tuple[bytes, dict[str, str]]], concurrency: int) -> dict:
    """--client raw: requests encoded beforehand and written on raw keep-alive sockets (a few us of CPU each,
    like wrk), so the load generator leaves the machine's CPU to the processes measured; Meta's senders do
    not run on the developer's laptop. Same N, same bodies, same checks as the aiohttp client."""
    host_port = url.split("//", 1)[1].split("/", 1)[0]
    host, port = host_port.rsplit(":", 1)
    pending: deque[bytes] = deque()
    for body, headers in payloads:
        lines = [f"POST {WEBHOOK_PATH} HTTP/1.1", f"Host: {host_port}", f"Content-Length: {len(body)}"]
        lines += [f"{name}: {value}" for name, value in headers.items()]
        pending.append(("\r\n".join(lines) + "\r\n\r\n").encode() + body)
    tally: dict[str, Any] = {"statuses": Counter(), "errors": Counter(), "latencies": [], "last": 0.0}
    loop = asyncio.get_running_loop()
    first, cpu = clock(), time.process_time()
    done = []
    for _ in range(min(concurrency, len(payloads))):
        finished: asyncio.Future[None] = loop.create_future()
        await loop.create_connection(lambda f=finished: _RawConnection(pending, f, tally), host, int(port))
        done.append(finished)
    await asyncio.gather(*done)
    cpu = time.process_time() - cpu
    latencies = sorted(tally["latencies"])
    p99 = latencies[min(len(latencies) - 1, int(0.99 * len(latencies)))] * 1000 if latencies else 0.0
    return {
        "first": first,
        "last": tally["last"],
        "seconds": tally["last"] - first,
        "statuses": dict(tally["statuses"]),
        "errors": dict(tally["errors"]),
        "p99_ms": p99,
        "cpu_s": cpu,
    }


# --------------------------------------------------------------------------- UI probes


class KeyProbe:
    """Plays the terminal's input thread: a key every period, timed until the app has handled it."""

    def __init__(self, app: Any, loop: asyncio.AbstractEventLoop, key: str, period: float) -> None:
        from textual import events

        self._events = events
        self.app = app
        self.loop = loop
        self.key = key
        self.period = period
        self.sent: deque[float] = deque()  # presses not yet handled, oldest first
        self.samples: list[tuple[float, float, float]] = []  # (pressed, handled, painted)
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="key-probe", daemon=True)
        self.presses = 0
        self.all_painted = asyncio.Event()
        # The action the key is bound to, timed on the instance (the product code is untouched).
        original = app.action_reveal_token

        def timed_action() -> None:
            original()
            handled = clock()
            if self.sent:
                pressed = self.sent.popleft()
                app.call_after_refresh(self._painted, pressed, handled)

        app.action_reveal_token = timed_action

    def _painted(self, pressed: float, handled: float) -> None:
        self.samples.append((pressed, handled, clock()))
        if self._stop.is_set() and len(self.samples) >= self.presses:
            self.all_painted.set()

    def _post(self) -> None:
        event = self._events.Key(self.key, self.key)
        event.set_sender(self.app)
        self.app.post_message(event)

    def _run(self) -> None:
        deadline = clock()
        while True:
            deadline += self.period
            if self._stop.wait(max(0.0, deadline - clock())):
                return
            self.sent.append(clock())
            self.presses += 1
            self.loop.call_soon_threadsafe(self._post)

    def start(self) -> None:
        self._thread.start()

    async def stop(self, timeout: float = 30.0) -> None:
        """Stop pressing; wait until every press made so far has been handled and painted."""
        self._stop.set()
        self._thread.join()
        if len(self.samples) < self.presses:
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self.all_painted.wait(), timeout)


# --------------------------------------------------------------------------- front process (engine's parent)


def front_main(
    conn: Connection, mode: str, run_dir: str, count: int, profile_path: str, trace_memory: bool, same_priority: bool
) -> None:
    """Start the engine as run_tui does, then be its UI (tui) or detach and wait (headless)."""
    try:
        from wa_devtunnel.engine.channel.child import EngineChild

        if mode == "tui":  # loaded before the engine starts, as run_tui does
            import wa_devtunnel.tui.app  # noqa: F401

        directory = Path(run_dir)
        directory.mkdir(parents=True, exist_ok=True)
        argv, environ = engine_argv(directory / "recordings"), engine_environment()
        if mode == "tui":
            child: Any = EngineChild(argv, environ=environ, cwd=directory)
        else:
            child = TerminalEngine(argv, environ=environ, cwd=directory)
        progress = io.StringIO()
        began = clock()
        client = child.start(progress=progress)
        result: dict[str, Any] = {"engine_start_s": clock() - began}
        if mode == "tui":  # as run_tui: the screen below its engine, collecting less often
            from wa_devtunnel.tui.priority import collect_less_often, yield_to_engine

            if not same_priority:
                yield_to_engine()
            collect_less_often()
        try:
            target = _tui_front if mode == "tui" else _headless_front
            asyncio.run(target(conn, child, client, count, profile_path or None, trace_memory, result))
        finally:
            result["engine_exit"] = child.stop(keep_log=True)
            stopped = [line for line in child.log_tail(40).splitlines() if line.startswith("Stopped after")]
            result["engine_said"] = stopped[-1] if stopped else child.log_tail(5)
            child.forget()
        conn.send(("result", result))
    except BaseException as exc:  # report instead of leaving the parent waiting
        with contextlib.suppress(OSError):
            conn.send(("error", f"{mode}: {type(exc).__name__}: {exc}"))
        raise


class TerminalEngine:
    """`wa-devtunnel up --headless` as a terminal runs it, not as a TUI's child: it prints a line per exchange
    (to /dev/null here, the cheapest terminal there is) and nobody holds its stdin. Same interface as the
    EngineChild the tui mode uses; the front attaches through the instance file, as `watch` does, for the
    welcome (the port), then detaches."""

    def __init__(self, argv: list[str], environ: dict[str, str], cwd: Path) -> None:
        from wa_devtunnel.engine.channel.child import engine_command

        self.recordings = Path(argv[argv.index("--recordings-dir") + 1])
        self.log_path = cwd / "engine.stderr"
        with open(self.log_path, "wb") as log:
            self.process = subprocess.Popen(
                engine_command(argv),
                stdin=subprocess.DEVNULL,
                stdout=subprocess.DEVNULL,
                stderr=log,
                env=environ,
                cwd=cwd,
                start_new_session=True,
            )

    def start(self, progress: Any = None) -> Any:
        from wa_devtunnel.engine.channel.address import ChannelAddress
        from wa_devtunnel.engine.channel.client import EngineClient
        from wa_devtunnel.engine.instance import read_instance

        deadline = clock() + START_TIMEOUT
        while clock() < deadline:
            if self.process.poll() is not None:
                raise RuntimeError(f"the engine exited: {self.log_tail()}")
            instance = read_instance(self.recordings)
            if instance is not None and instance.channel and instance.channel_secret:
                with contextlib.suppress(OSError):
                    return EngineClient.attach(ChannelAddress(Path(instance.channel), instance.channel_secret))
            time.sleep(0.05)
        raise RuntimeError("the engine did not start")

    def stop(self, keep_log: bool = True) -> int | None:
        self.process.send_signal(signal.SIGTERM)  # as Ctrl+C / closing the terminal would
        try:
            return self.process.wait(20)
        except subprocess.TimeoutExpired:
            self.process.kill()
            return self.process.wait(5)

    def log_tail(self, lines: int = 12) -> str:
        text = self.log_path.read_text(encoding="utf-8", errors="replace")
        return "\n".join(text.rstrip("\n").splitlines()[-lines:])

    def forget(self) -> None:
        pass


def _command_queue(conn: Connection) -> asyncio.Queue[tuple[Any, ...]]:
    loop = asyncio.get_running_loop()
    commands: asyncio.Queue[tuple[Any, ...]] = asyncio.Queue()
    loop.add_reader(conn.fileno(), lambda: commands.put_nowait(conn.recv()))
    return commands


async def _expect(commands: asyncio.Queue[tuple[Any, ...]], name: str, timeout: float) -> tuple[Any, ...]:
    message = await asyncio.wait_for(commands.get(), timeout)
    if message[0] != name:
        raise RuntimeError(f"expected {name!r} from the parent, got {message[0]!r}")
    return message


def _ready(conn: Connection, client: Any, child: Any) -> None:
    started = client.welcome.started
    conn.send(("ready", started.port, str(started.recording_path), child.process.pid))


@dataclass
class CpuMark:
    """The front's process time and the engine's CPU time at one moment."""

    engine_pid: int
    wall: float = field(default_factory=clock)
    front: float = field(default_factory=time.process_time)
    engine: float | None = None

    def __post_init__(self) -> None:
        self.engine = proc_cpu_s(self.engine_pid)


def cpu_between(before: CpuMark, after: CpuMark) -> dict[str, float | None]:
    engine = None if before.engine is None or after.engine is None else after.engine - before.engine
    return {"wall_s": after.wall - before.wall, "front_cpu_s": after.front - before.front, "engine_cpu_s": engine}


async def _headless_front(
    conn: Connection,
    child: Any,
    client: Any,
    count: int,
    profile_path: str | None,
    trace_memory: bool,
    result: dict[str, Any],
) -> None:
    """Nobody attached: the engine is `up --headless` alone."""
    client.close()
    commands = _command_queue(conn)
    pid = child.process.pid
    _ready(conn, client, child)
    await _expect(commands, "burst_starts", START_TIMEOUT)
    before = CpuMark(pid)
    _, first, last = await _expect(commands, "burst_done", BURST_TIMEOUT + START_TIMEOUT)
    after = CpuMark(pid)
    conn.send(("caught_up",))
    result.update(
        cpu=cpu_between(before, after),
        engine_hwm_mb=proc_status_mb(pid, "VmHWM"),
        front_now_mb=proc_status_mb("self", "VmRSS"),
        first=first,
        last=last,
    )


class ListWatch:
    """Notes when the UI holds all `expected` exchanges (store and list), then the next screen refresh."""

    def __init__(self, app: Any, expected: int, expected_rows: int) -> None:
        self.app = app
        self.expected = expected
        self.expected_rows = expected_rows
        self.full_at: float | None = None
        self.painted_at: float | None = None
        self.painted = asyncio.Event()
        self.batches: list[tuple[float, float, int]] = []  # (started, seconds, events)
        apply_events = app.apply_events

        paint = app._paint

        def timed_apply(events: Any) -> None:
            events = list(events)
            began = clock()
            apply_events(events)
            done = clock()
            self.batches.append((began, done - began, len(events)))
            self._check(done)

        def watched_paint() -> None:
            paint()  # the rows the slices brought go into the list (a few times a second in a burst)
            self._check(clock())

        app.apply_events = timed_apply  # the feed calls it through a lambda: this wrapper is what runs
        app._paint = watched_paint  # looked up on the instance when scheduled: this wrapper is what runs

    def _check(self, now: float) -> None:
        app = self.app
        if (
            self.full_at is None
            and app.store.counters.events >= self.expected
            and app.exchanges.row_count >= self.expected_rows
        ):
            self.full_at = now
            app.call_after_refresh(self._painted)

    def _painted(self) -> None:
        self.painted_at = clock()
        self.painted.set()


def deep_size(value: Any, seen: set[int]) -> int:
    """sys.getsizeof of a decoded JSON value and everything in it, each object once."""
    if id(value) in seen:
        return 0
    seen.add(id(value))
    size = sys.getsizeof(value)
    if isinstance(value, dict):
        size += sum(deep_size(k, seen) + deep_size(v, seen) for k, v in value.items())
    elif isinstance(value, list | tuple):
        size += sum(deep_size(item, seen) for item in value)
    return size


def ui_holdings(app: Any) -> dict[str, tuple[float, int]]:
    """What the UI's model and list hold once caught up: (bytes, objects) per kind, each object counted once
    (sys.getsizeof; a string or tuple shared by many views counts once)."""
    store = app.store
    seen: set[int] = set()
    out: dict[str, list[int]] = {"views": [0, 0], "their strings": [0, 0], "their tuples/paths": [0, 0]}

    def count(kind: str, value: Any) -> None:
        if id(value) in seen:
            return
        seen.add(id(value))
        out[kind][0] += sys.getsizeof(value)
        out[kind][1] += 1

    for view in store.views:
        count("views", view)
        for name in view.__slots__:
            value = getattr(view, name)
            if isinstance(value, str):
                count("their strings", value)
            elif isinstance(value, tuple | Path):
                count("their tuples/paths", value)
    rows = getattr(app.exchanges, "_rows", None)
    containers = [store.views, store.records] + ([rows] if isinstance(rows, list) else [])
    out["containers (deque, list rows)"] = [sum(sys.getsizeof(c) for c in containers), len(containers)]
    out["cached records"] = [sum(deep_size(record, seen) for record in store.records.values()), len(store.records)]
    return {kind: (size, objects) for kind, (size, objects) in out.items()}


def list_row_ids(exchanges: Any) -> list[str]:
    """Every row's exchange id: the virtual list's row_id, or a DataTable's row keys (the list before it)."""
    if hasattr(exchanges, "row_id"):
        return [exchanges.row_id(i) for i in range(exchanges.row_count)]
    return [str(key.value) for key in exchanges.rows]


def list_cap(exchanges: Any) -> int:
    """How many rows the list keeps at most."""
    cap = getattr(exchanges, "max_rows", None)
    if cap is None:
        from wa_devtunnel.tui import exchange_list

        cap = getattr(exchange_list, "MAX_TABLE_ROWS", sys.maxsize)
    return int(cap)


class GcClock:
    """Time the UI process spends in the cyclic garbage collector (gc.callbacks), per generation."""

    def __init__(self) -> None:
        import gc

        self.seconds = [0.0, 0.0, 0.0]
        self.counts = [0, 0, 0]
        self._began = 0.0
        gc.callbacks.append(self._callback)

    def _callback(self, phase: str, info: dict[str, int]) -> None:
        if phase == "start":
            self._began = time.perf_counter()
        else:
            generation = info.get("generation", 2)
            self.seconds[generation] += time.perf_counter() - self._began
            self.counts[generation] += 1

    def stop(self) -> dict[str, list[Any]]:
        import gc

        gc.callbacks.remove(self._callback)
        return {"seconds": self.seconds, "counts": self.counts}


async def _tui_front(
    conn: Connection,
    child: Any,
    client: Any,
    count: int,
    profile_path: str | None,
    trace_memory: bool,
    result: dict[str, Any],
) -> None:
    """The UI process of production: InspectorApp(client, child) on the engine's channel."""
    from wa_devtunnel.tui.app import InspectorApp

    commands = _command_queue(conn)
    loop = asyncio.get_running_loop()
    pid = child.process.pid
    app = InspectorApp(client, child)
    expected_rows = min(count, list_cap(app.exchanges))
    probe = KeyProbe(app, loop, KEY, KEY_PERIOD_S)
    watch = ListWatch(app, count, expected_rows)
    profiler = None
    async with app.run_test(headless=True, size=TERMINAL_SIZE) as pilot:
        await pilot.pause()
        _ready(conn, client, child)
        probe.start()
        await _expect(commands, "burst_starts", START_TIMEOUT)
        if profile_path:
            import cProfile

            profiler = cProfile.Profile()
            profiler.enable()
        if trace_memory:
            tracemalloc.start(TRACE_FRAMES)  # from now on: what is still allocated at the end is the burst's growth
        gc_clock = GcClock()
        before = CpuMark(pid)
        _, first, last = await _expect(commands, "burst_done", BURST_TIMEOUT + START_TIMEOUT)
        # The burst is over on the wire; the UI may still be working through its queue.
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(watch.painted.wait(), max(1.0, last + CATCHUP_TIMEOUT - clock()))
        after = CpuMark(pid)
        result["gc"] = gc_clock.stop()
        if profiler is not None:
            profiler.disable()
            profiler.dump_stats(profile_path)
        snapshot = tracemalloc.take_snapshot() if trace_memory else None
        tracemalloc.stop()
        conn.send(("caught_up",))
        if snapshot is not None:
            began = clock()
            result["memory_growth"] = memory_growth(snapshot, count)
            result["memory_growth"].append(f"(analysed in {clock() - began:.1f} s)")
        result.update(
            front_now_mb=proc_status_mb("self", "VmRSS"),
            front_hwm_mb=proc_status_mb("self", "VmHWM"),
            engine_hwm_mb=proc_status_mb(pid, "VmHWM"),
        )
        await probe.stop()
        result["holdings"] = ui_holdings(app)
        rows = list_row_ids(app.exchanges)
        views = app.store.views
        seqs = [view.seq for view in views]
        result.update(
            rows=len(rows),
            expected_rows=expected_rows,
            unique_rows=len(set(rows)),
            newest_row_is_last=bool(rows) and bool(views) and rows[-1] == views[-1].id,
            store_events=app.store.counters.events,
            store_in_order=seqs == list(range(1, count + 1)),
            store_views=len(views),
            store_unique=len(set(seqs)),
            inbox_left=app.events.pending,
            engine_lost=None if app.engine_lost is None else app.engine_lost.reason,
            gaps=client.gaps,
            from_recording=client.caught_up,
            following=app.state.following,
            full_at=watch.full_at,
            painted_at=watch.painted_at,
            batches=watch.batches,
            presses=probe.presses,
            key_samples=probe.samples,
            cpu=cpu_between(before, after),
            first=first,
            last=last,
        )


# --------------------------------------------------------------------------- orchestration


TRACE_FRAMES = 24
VIA_FRAMES = 3  # wa_devtunnel frames shown per allocation site, innermost first


def _where(frame: Any) -> str:
    parts = Path(frame.filename).parts
    anchor = next((a for a in ("wa_devtunnel", "textual", "rich", "asyncio") if a in parts), None)
    return f"{'/'.join(parts[parts.index(anchor) :]) if anchor else Path(frame.filename).name}:{frame.lineno}"


def memory_growth(snapshot: Any, count: int, top: int = 15) -> list[str]:
    """What the UI allocated during the burst and still holds: by allocating line, and the wa_devtunnel line
    that led there (tracemalloc, TRACE_FRAMES deep)."""
    groups: dict[tuple[str, str], list[int]] = {}
    for trace in snapshot.traces:
        frames = trace.traceback  # oldest first
        ours = [_where(f) for f in reversed(frames) if "wa_devtunnel" in Path(f.filename).parts][:VIA_FRAMES]
        key = (_where(frames[-1]), " < ".join(ours) or "-")
        group = groups.setdefault(key, [0, 0])
        group[0] += trace.size
        group[1] += 1
    total = sum(size for size, _ in groups.values())
    lines = [
        f"still allocated from the burst's start: {total / MB:.1f} MB in {sum(n for _, n in groups.values())} "
        f"blocks = {total / count:.0f} bytes/exchange (tracemalloc's own overhead not counted)",
        f"  {'MB':>6} {'B/exch':>7} {'blocks':>8}  allocated at  <-  via (innermost wa_devtunnel frames)",
    ]
    for (where, via), (size, blocks) in sorted(groups.items(), key=lambda kv: kv[1][0], reverse=True)[:top]:
        lines.append(f"  {size / MB:>6.1f} {size / count:>7.0f} {blocks:>8}  {where}  <-  {via}")
    return lines


class RssSampler:
    """From this process: VmRSS of the UI and the engine every RSS_SAMPLE_S, from just before the burst."""

    def __init__(self, pids: dict[str, int]) -> None:
        self.pids = pids
        self.before = {name: proc_status_mb(pid, "VmRSS") for name, pid in pids.items()}
        self.hwm_before = {name: proc_status_mb(pid, "VmHWM") for name, pid in pids.items()}
        self.peak = {name: value or 0.0 for name, value in self.before.items()}
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="rss-sampler", daemon=True)
        self._thread.start()

    def _run(self) -> None:
        while not self._stop.wait(RSS_SAMPLE_S):
            self._sample()

    def _sample(self) -> None:
        for name, pid in self.pids.items():
            value = proc_status_mb(pid, "VmRSS")
            if value is not None and value > self.peak[name]:
                self.peak[name] = value

    def stop(self) -> dict[str, dict[str, float | None]]:
        """Before/peak per process (a VmHWM above its value before the burst is a peak the samples missed)."""
        self._stop.set()
        self._thread.join()
        self._sample()
        out: dict[str, dict[str, float | None]] = {}
        for name, pid in self.pids.items():
            peak = self.peak[name]
            hwm, hwm_before = proc_status_mb(pid, "VmHWM"), self.hwm_before[name]
            if hwm is not None and hwm_before is not None and hwm > hwm_before:
                peak = max(peak, hwm)
            out[name] = {"before": self.before[name], "peak": peak}
        return out


@dataclass
class RunResult:
    mode: str
    label: str
    n: int
    client: dict[str, Any]
    front: dict[str, Any]
    rss: dict[str, dict[str, float | None]]
    recording: Path
    checks: list[tuple[str, bool, str]] = field(default_factory=list)

    @property
    def rps(self) -> float:
        seconds = self.client["seconds"]
        return self.client["statuses"].get(200, 0) / seconds if seconds > 0 else 0.0

    def catchup(self, key: str = "painted_at") -> float | None:
        """From the client's last response; 0 when the UI was done before that response arrived."""
        at = self.front.get(key)
        return None if at is None else max(0.0, at - self.client["last"])

    def key_latencies_ms(self, phase: str = "burst", which: int = 1) -> list[float]:
        """phase idle (before the burst) or burst (burst + catch-up); which 1: -> handled, 2: -> painted."""
        first = self.client["first"]
        end = self.front.get("painted_at") or float("inf")
        out = []
        for sample in self.front.get("key_samples", []):
            pressed = sample[0]
            if (pressed < first) if phase == "idle" else (first <= pressed <= end):
                out.append((sample[which] - pressed) * 1000)
        return sorted(out)

    def growth_mb(self, which: str = "peak") -> float | None:
        """UI RSS growth over the burst: peak (sampled) or once caught up, minus just before the burst."""
        before = self.rss["front"]["before"]
        now = self.rss["front"]["peak"] if which == "peak" else self.front.get("front_now_mb")
        return None if before is None or now is None else now - before


def run_mode(
    ctx: Any,
    mode: str,
    n: int,
    args: argparse.Namespace,
    tmp: Path,
    label: str,
    profile_path: str = "",
    trace_memory: bool = False,
) -> RunResult:
    run_dir = tmp / f"{mode}-{label}"
    front = start_child(ctx, mode, front_main, mode, str(run_dir), n, profile_path, trace_memory, args.same_priority)
    client = start_child(ctx, f"client-{mode}", client_main, n, args.concurrency, args.client)
    try:
        _, port, recording, engine_pid = front.receive(START_TIMEOUT)
        _, smallest, largest = client.receive(START_TIMEOUT + n / 1000)
        print(
            f"  run {label} {mode}: front pid {front.process.pid}, engine pid {engine_pid} on port {port}, "
            f"client pid {client.process.pid} ({n} bodies, {smallest}-{largest} bytes)",
            flush=True,
        )
        time.sleep(IDLE_S)  # baseline key presses (tui) before the burst
        sampler = RssSampler({"front": front.process.pid, "engine": engine_pid})
        front.send(("burst_starts",))
        client.send(("run", f"http://{HOST}:{port}{WEBHOOK_PATH}"))
        _, burst = client.receive(BURST_TIMEOUT)
        front.send(("burst_done", burst["first"], burst["last"]))
        front.receive(CATCHUP_TIMEOUT + 60)  # caught up
        rss = sampler.stop()
        _, result = front.receive(600 if trace_memory else 60)
    finally:
        client.close()
        front.close()
    outcome = RunResult(mode, label, n, burst, result, rss, Path(recording))
    answered = burst["statuses"].get(200, 0)
    outcome.checks.append(
        ("client", answered == n and not burst["errors"], f"HTTP {burst['statuses']} errors {burst['errors']}")
    )
    ok, lines = check_recording(outcome.recording, n)
    detail = ", ".join(" ".join(line.split()[1:]) for line in lines[1:])
    outcome.checks.append(("recording", ok, detail))
    said = result.get("engine_said", "")
    engine_ok = result.get("engine_exit") == 0 and said.startswith(f"Stopped after {n} exchange(s).")
    outcome.checks.append(("engine", engine_ok, f"exit {result.get('engine_exit')}: {said!r}"))
    if mode == "tui":
        rows = result["expected_rows"]
        rows_ok = result["rows"] == rows and result["unique_rows"] == rows and result["newest_row_is_last"]
        outcome.checks.append(
            (
                "store",
                result["store_in_order"] and result["store_events"] == n and result["inbox_left"] == 0,
                f"{result['store_views']} views ({result['store_unique']} unique seqs, seq 1..N in order "
                f"{result['store_in_order']}), {result['store_events']} events, queue left {result['inbox_left']}, "
                f"gaps {result['gaps']} ({result['from_recording']} read from the recording), "
                f"engine lost {result['engine_lost']!r}",
            )
        )
        outcome.checks.append(
            (
                "list",
                rows_ok,
                f"{result['rows']} rows of {rows} expected ({result['unique_rows']} unique, newest last "
                f"{result['newest_row_is_last']}), following {result['following']}",
            )
        )
        lost = result["presses"] - len(result["key_samples"])
        outcome.checks.append(("keys", lost == 0, f"{result['presses']} pressed, {lost} not handled"))
    return outcome


# --------------------------------------------------------------------------- report


def fmt(value: float | None, spec: str = ".2f", unit: str = "") -> str:
    if value is None or value != value:  # None or NaN
        return "n/a"
    return f"{value:{spec}}{unit}"


def worst(values: list[float]) -> float | None:
    return values[-1] if values else None


def pair(values: list[float]) -> str:
    """`p95/worst` of sorted latencies in ms."""
    return f"{fmt(quantile(values, 0.95), '.0f')}/{fmt(worst(values), '.0f')}" if values else "n/a"


def per_us(seconds: float | None, n: int) -> str:
    return fmt(None if seconds is None else seconds / n * 1e6, ".0f")


TABLE_HEADER = (
    f"{'run':<6} {'mode':<8} {'N':>6} {'req/s':>6} {'burst s':>7} {'catch-up s':>10} {'key p95/worst ms':>16} "
    f"{'UI RSS MB':>9} {'+peak':>6} {'+after':>6} {'engine peak MB':>14} {'CPU us/req UI/eng':>17}  checks"
)


def table_row(r: RunResult) -> str:
    cpu = r.front["cpu"]
    tui = r.mode == "tui"
    failed = [name for name, ok, _ in r.checks if not ok]
    ui_cpu = per_us(cpu["front_cpu_s"], r.n) if tui else "-"
    return (
        f"{r.label:<6} {r.mode:<8} {r.n:>6} {r.rps:>6.0f} {r.client['seconds']:>7.2f} "
        f"{fmt(r.catchup(), '.2f') if tui else '-':>10} {pair(r.key_latencies_ms()) if tui else '-':>16} "
        f"{fmt(r.rss['front']['before'], '.1f') if tui else '-':>9} {fmt(r.growth_mb(), '+.1f') if tui else '-':>6} "
        f"{fmt(r.growth_mb('after'), '+.1f') if tui else '-':>6} {fmt(r.front.get('engine_hwm_mb'), '.1f'):>14} "
        f"{ui_cpu + '/' + per_us(cpu['engine_cpu_s'], r.n):>17}  {'FAILED ' + ','.join(failed) if failed else 'OK'}"
    )


def run_details(r: RunResult) -> list[str]:
    s = r.front
    lines = [f"run {r.label} {r.mode} (N={r.n}):"]
    if r.mode == "tui":
        for phase, title in (("idle", "idle, before"), ("burst", "burst+catch-up")):
            handled, painted = r.key_latencies_ms(phase, 1), r.key_latencies_ms(phase, 2)
            lines.append(
                f"  keys {title:<14} n={len(handled):>3}  handled p50 {fmt(quantile(handled, 0.5), '.1f')} "
                f"p95 {fmt(quantile(handled, 0.95), '.1f')} worst {fmt(worst(handled), '.1f')} ms | painted "
                f"p50 {fmt(quantile(painted, 0.5), '.1f')} p95 {fmt(quantile(painted, 0.95), '.1f')} "
                f"worst {fmt(worst(painted), '.1f')} ms"
            )
        during = [b for b in s["batches"] if b[2]]
        if during:
            ms = sorted(b[1] * 1000 for b in during)
            sizes = [b[2] for b in during]
            lines.append(
                f"  UI batches (apply_events): {len(during)}, events/batch median {statistics.median(sizes):.0f} "
                f"max {max(sizes)}; ms/batch median {statistics.median(ms):.1f} p95 {quantile(ms, 0.95):.1f} "
                f"max {ms[-1]:.1f}; total {sum(ms) / 1000:.2f} s wall = {sum(ms) / sum(sizes) * 1000:.0f} us/event"
            )
        collected = s.get("gc")
        if collected:
            seconds, counts = collected["seconds"], collected["counts"]
            lines.append(
                f"  UI garbage collector: {sum(seconds):.3f} s ({sum(seconds) / r.n * 1e6:.0f} us/event); "
                f"by generation {' / '.join(f'{n} in {t * 1000:.0f} ms' for n, t in zip(counts, seconds, strict=True))}"
            )
        lines.append(
            f"  caught up: every exchange applied {fmt(r.catchup('full_at'), '.2f', ' s')}, screen refreshed "
            f"{fmt(r.catchup('painted_at'), '.2f', ' s')} after the last response"
        )
        front = r.rss["front"]
        lines.append(
            f"  UI process RSS: {fmt(front['before'], '.1f')} MB before the burst, peak {fmt(front['peak'], '.1f')} "
            f"({fmt(r.growth_mb(), '+.1f')}), {fmt(s.get('front_now_mb'), '.1f')} once caught up "
            f"({fmt(r.growth_mb('after'), '+.1f')}); VmHWM then {fmt(s.get('front_hwm_mb'), '.1f')} MB"
        )
        held = s.get("holdings") or {}
        total = sum(size for size, _ in held.values())
        growth = r.growth_mb("after")
        lines.append(
            f"  UI holds (getsizeof) {total / MB:.1f} MB = {total / r.n:.0f} B/exchange: "
            + ", ".join(f"{kind} {size / MB:.1f} MB ({objects})" for kind, (size, objects) in held.items())
            + (
                f"; the rest of the growth, {growth - total / MB:+.1f} MB, is outside the model (memory the allocator "
                "keeps, Textual's caches, buffers)"
                if growth
                else ""
            )
        )
    engine = r.rss["engine"]
    lines.append(
        f"  engine RSS: {fmt(engine['before'], '.1f')} MB before the burst, peak {fmt(engine['peak'], '.1f')} "
        f"(sampled), VmHWM {fmt(s.get('engine_hwm_mb'), '.1f')} MB; started in {s['engine_start_s']:.2f} s"
    )
    cpu = s["cpu"]
    lines.append(
        f"  CPU burst -> caught up ({cpu['wall_s']:.2f} s wall): engine {fmt(cpu['engine_cpu_s'], '.2f')} s = "
        f"{per_us(cpu['engine_cpu_s'], r.n)} us/request"
        + (
            f", UI process {cpu['front_cpu_s']:.2f} s = {per_us(cpu['front_cpu_s'], r.n)} us/request"
            if r.mode == "tui"
            else ""
        )
        + f"; client {per_us(r.client['cpu_s'], r.n)} us/request (p99 latency {r.client['p99_ms']:.1f} ms)"
    )
    used = r.client["cpu_s"] + (cpu["engine_cpu_s"] or 0.0) + (cpu["front_cpu_s"] if r.mode == "tui" else 0.0)
    cores = os.cpu_count() or 1
    lines.append(
        f"  the machine: client + engine{' + UI' if r.mode == 'tui' else ''} used {used:.2f} CPU s of "
        f"{cores} x {cpu['wall_s']:.2f} s = {100 * used / (cores * cpu['wall_s']):.0f}% of its {cores} cores"
    )
    for name, ok, detail in r.checks:
        lines.append(f"  check {name:<9} {'OK' if ok else 'FAILED'}  {detail}")
    return lines


def verdict(ok: bool) -> str:
    return "PASS" if ok else "FAIL"


def targets(
    runs: list[RunResult], memory_runs: list[RunResult], args: argparse.Namespace
) -> tuple[list[str], dict[int, bool]]:
    """Each target: every run's figure, the summary, PASS/FAIL. Targets not measured are left out."""
    headless = [r for r in runs if r.mode == "headless"]
    tui = [r for r in runs if r.mode == "tui"]
    lines: list[str] = []
    verdicts: dict[int, bool] = {}

    def add(text: str, ok: bool) -> None:
        verdicts[int(text.split(".", 1)[0])] = ok  # the target's number
        lines.append(f"  {verdict(ok)}  {text}")

    if headless and tui:
        rps_t, rps_h = statistics.median(r.rps for r in tui), statistics.median(r.rps for r in headless)
        rounds = " ".join(f"{t.rps / h.rps:.2f}" for t, h in zip(tui, headless, strict=False) if h.rps)
        ratio = rps_t / rps_h if rps_h else 0.0
        add(
            f"1. throughput, TUI attached >= {TARGET_RATIO:.1f}x headless ({args.requests} POSTs, concurrency "
            f"{args.concurrency}): "
            f"{rps_t:.0f} vs {rps_h:.0f} req/s (medians) = {ratio:.2f}x; per round {rounds}",
            ratio >= TARGET_RATIO,
        )
    if tui:
        keys = sorted(x for r in tui for x in r.key_latencies_ms())
        p95 = quantile(keys, 0.95)
        each = " ".join(fmt(quantile(r.key_latencies_ms(), 0.95), ".0f") for r in tui)
        add(
            f"2. keys handled p95 <= {TARGET_KEY_P95_MS:.0f} ms during the burst: {fmt(p95, '.0f')} ms over "
            f"{len(keys)} presses (worst {fmt(worst(keys), '.0f')}); per run {each}",
            bool(keys) and p95 <= TARGET_KEY_P95_MS,
        )
        catchups = [r.catchup() for r in tui]
        add(
            f"3. every exchange on screen <= {TARGET_CATCHUP_S:.0f} s after the last response: worst "
            f"{fmt(max((c for c in catchups if c is not None), default=None), '.2f')} s; per run "
            f"{' '.join(fmt(c, '.2f') for c in catchups)}",
            all(c is not None and c <= TARGET_CATCHUP_S for c in catchups),
        )
    if memory_runs:
        growth = [r.growth_mb() for r in memory_runs]
        after = [r.growth_mb("after") for r in memory_runs]
        engine = [r.front.get("engine_hwm_mb") for r in memory_runs]
        add(
            f"4. UI process grows <= {TARGET_GROWTH_MB:.0f} MB over {args.memory_requests} events: worst "
            f"{fmt(max((g for g in growth if g is not None), default=None), '+.1f')} MB at peak; per run peak "
            f"{' '.join(fmt(g, '+.1f') for g in growth)}, once caught up {' '.join(fmt(g, '+.1f') for g in after)} "
            f"MB (engine child's peak RSS {' '.join(fmt(e, '.1f') for e in engine)} MB)",
            all(g is not None and g <= TARGET_GROWTH_MB for g in growth),
        )
    return lines, verdicts


def profile_report(stats_path: Path, top: int) -> list[str]:
    """Where the UI thread's time goes: our functions, then Textual/Rich by cumulative and self time."""
    stats = pstats.Stats(str(stats_path))
    raw: dict[tuple[str, int, str], tuple[int, int, float, float, Any]] = stats.stats  # type: ignore[attr-defined]
    idle_keys = {k for k in raw if k[0] == "~" and ("select." in k[2] or "poll" in k[2])}
    idle = sum(raw[k][2] for k in idle_keys)
    raw = {k: v for k, v in raw.items() if k not in idle_keys}
    total = sum(v[2] for v in raw.values())

    def label(key: tuple[str, int, str]) -> str:
        filename, line, name = key
        if filename == "~":
            return name
        parts = Path(filename).parts
        for anchor in ("wa_devtunnel", "textual", "rich", "asyncio", "benchmarks"):
            if anchor in parts:
                return f"{'/'.join(parts[parts.index(anchor) :])}:{line}:{name}"
        return f"{Path(filename).name}:{line}:{name}"

    out = [
        f"UI thread CPU under cProfile: {total:.2f} s (+{idle:.2f} s waiting in epoll); shares, not absolutes",
        "",
        "wa_devtunnel (cumulative):",
        f"  {'cum s':>7} {'self s':>7} {'cum %':>6} {'calls':>8}  function",
    ]
    ours = sorted(
        ((k, v) for k, v in raw.items() if "wa_devtunnel" in Path(k[0]).parts), key=lambda kv: kv[1][3], reverse=True
    )
    for key, (_, calls, tt, ct, _) in ours[:top]:
        out.append(f"  {ct:>7.2f} {tt:>7.2f} {100 * ct / total:>5.1f}% {calls:>8}  {label(key)}")
    out += ["", "textual / rich (cumulative):", f"  {'cum s':>7} {'self s':>7} {'cum %':>6} {'calls':>8}  function"]
    lib = sorted(
        ((k, v) for k, v in raw.items() if {"textual", "rich"} & set(Path(k[0]).parts)),
        key=lambda kv: kv[1][3],
        reverse=True,
    )
    for key, (_, calls, tt, ct, _) in lib[:top]:
        out.append(f"  {ct:>7.2f} {tt:>7.2f} {100 * ct / total:>5.1f}% {calls:>8}  {label(key)}")
    out += ["", "hottest overall (self time):", f"  {'self s':>7} {'self %':>6} {'calls':>8}  function"]
    for key, (_, calls, tt, _, _) in sorted(raw.items(), key=lambda kv: kv[1][2], reverse=True)[:top]:
        out.append(f"  {tt:>7.2f} {100 * tt / total:>5.1f}% {calls:>8}  {label(key)}")
    return out


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--requests", type=int, default=5000, help="POSTs per throughput/keys/catch-up run (5000)")
    parser.add_argument("--concurrency", type=int, default=32, help="requests in flight (32)")
    parser.add_argument(
        "--client",
        choices=("raw", "aiohttp"),
        default="raw",
        help="load generator: raw pre-encoded keep-alive sockets (~25 us of CPU a request, like wrk; default) or "
        "aiohttp (~105 us: on 2 cores it takes the CPU the UI would use, which Meta's senders never do)",
    )
    parser.add_argument("--rounds", type=int, default=3, help="runs per mode, modes alternating (3)")
    parser.add_argument("--modes", default=",".join(MODES), help="comma-separated, run in this order each round")
    parser.add_argument("--memory-requests", type=int, default=50_000, help="POSTs per memory run (50000)")
    parser.add_argument("--memory-rounds", type=int, default=3, help="tui runs of --memory-requests (3; 0: none)")
    parser.add_argument(
        "--profile",
        choices=("auto", "always", "never"),
        default="auto",
        help="profile the UI process when a target is missed (auto), always, or never",
    )
    parser.add_argument("--profile-out", type=Path, help="also save the raw cProfile stats here")
    parser.add_argument(
        "--trace-memory",
        type=int,
        default=0,
        metavar="N",
        help="one more tui run of N POSTs under tracemalloc: what the UI still holds, by source line (0: none)",
    )
    parser.add_argument(
        "--same-priority",
        action="store_true",
        help="the UI at its engine's priority (production lowers it: wa_devtunnel/tui/priority.py), to compare",
    )
    parser.add_argument("--top", type=int, default=15, help="rows per profile table (15)")
    parser.add_argument("--verbose", action="store_true", help="details of every run, not only the last per kind")
    args = parser.parse_args(argv)
    args.modes = [m.strip() for m in args.modes.split(",") if m.strip()]
    if set(args.modes) - set(MODES):
        parser.error(f"--modes takes a comma-separated subset of {','.join(MODES)}")
    if (
        min(args.requests, args.concurrency, args.memory_requests) < 1
        or min(args.rounds, args.memory_rounds, args.trace_memory) < 0
    ):
        parser.error("--requests, --concurrency and --memory-requests must be at least 1, the rounds at least 0")
    return args


def small_process_context() -> Any:
    """Children forked from a forkserver started while this process is still small (nothing heavy imported)."""
    if "forkserver" not in mp.get_all_start_methods():
        return mp.get_context("spawn")
    from multiprocessing import forkserver

    ctx = mp.get_context("forkserver")
    ctx.set_forkserver_preload([])
    forkserver.ensure_running()  # now, before this process imports Textual or reads recordings
    return ctx


def run(args: argparse.Namespace) -> int:
    ctx = small_process_context()
    import aiohttp
    import textual

    import wa_devtunnel

    print(
        f"wa-devtunnel TUI burst benchmark: python {platform.python_version()}, textual {textual.__version__}, "
        f"aiohttp {aiohttp.__version__}, {os.cpu_count()} CPUs, load avg "
        f"{' '.join(f'{x:.2f}' for x in os.getloadavg())}"
    )
    print(f"measuring wa_devtunnel from {Path(wa_devtunnel.__file__).parent}")
    print(
        f"engine: python -m wa_devtunnel {' '.join(engine_argv(Path('DIR')))} --headless (EngineChild); "
        f"{args.requests} signed POSTs x {args.rounds} round(s) of {','.join(args.modes) or 'nothing'}, then "
        f"{args.memory_requests} x {args.memory_rounds} tui; concurrency {args.concurrency}, terminal "
        f"{TERMINAL_SIZE[0]}x{TERMINAL_SIZE[1]}, key {KEY!r} every {KEY_PERIOD_S * 1000:.0f} ms"
    )
    runs: list[RunResult] = []
    memory_runs: list[RunResult] = []
    profile_lines: list[str] = []
    memory_lines: list[str] = []
    with tempfile.TemporaryDirectory(prefix="wa-devtunnel-tui-bench-") as tmp:
        tmp_path = Path(tmp)
        for number in range(1, args.rounds + 1):
            for mode in args.modes:
                runs.append(run_mode(ctx, mode, args.requests, args, tmp_path, str(number)))
        for number in range(1, args.memory_rounds + 1):
            memory_runs.append(run_mode(ctx, "tui", args.memory_requests, args, tmp_path, f"mem{number}"))
        target_lines, verdicts = targets(runs, memory_runs, args)
        targets_ok = all(verdicts.values())
        everything = runs + memory_runs
        checks_ok = all(ok for r in everything for _, ok, _ in r.checks)
        missed = {number for number, ok in verdicts.items() if not ok}
        if args.profile == "always" or (args.profile == "auto" and missed & {1, 2, 3}):
            stats_path = tmp_path / "tui.prof"
            print("  profiling: one more tui run under cProfile (not counted)", flush=True)
            profiled = run_mode(ctx, "tui", args.requests, args, tmp_path, "prof", str(stats_path))
            keys = profiled.key_latencies_ms()
            profile_lines = [
                f"profiled run: {profiled.rps:.0f} req/s, catch-up {fmt(profiled.catchup(), '.2f', ' s')}, "
                f"key p95 {fmt(quantile(keys, 0.95), '.0f', ' ms')} (cProfile slows the UI process)",
                *profile_report(stats_path, args.top),
            ]
            if args.profile_out:
                args.profile_out.write_bytes(stats_path.read_bytes())
                profile_lines.append(f"raw stats saved to {args.profile_out}")
        if args.trace_memory:
            print("  profiling: one more tui run under tracemalloc (not counted)", flush=True)
            traced = run_mode(ctx, "tui", args.trace_memory, args, tmp_path, "trace", trace_memory=True)
            memory_lines = [
                f"traced run: {args.trace_memory} events, UI RSS {fmt(traced.growth_mb(), '+.1f')} MB at peak "
                f"(tracemalloc's tables included); {traced.front['gaps']} gap(s), "
                f"{traced.front['from_recording']} exchanges read from the recording (tracing slows the UI: when it "
                "falls behind, what it holds is the catch-up path's, not the stream's)",
                *traced.front.get("memory_growth", []),
            ]
    out = ["", TABLE_HEADER, "-" * len(TABLE_HEADER), *(table_row(r) for r in everything)]
    out.append(
        "req/s: client's 200s / (last response - first request); catch-up: last response -> store and list hold "
        "all N and the screen refreshed; key: press -> action handled, pooled over burst and catch-up; UI RSS: "
        "VmRSS just before the burst, +peak/+after: growth to the sampled peak / once caught up; engine peak: "
        "VmHWM; CPU: burst -> caught up, per request"
    )
    shown = (
        everything
        if args.verbose
        else [r for r in everything if r is next(x for x in reversed(everything) if (x.mode, x.n) == (r.mode, r.n))]
    )
    for r in shown:
        out += ["", *run_details(r)]
    out += ["", "targets (summary over runs):", *target_lines]
    out.append(f"  {verdict(checks_ok)}  checks (client, recording, engine, store, list, keys) in every run")
    if profile_lines:
        out += [
            "",
            "profile of the UI process's main thread (cProfile):",
            *(f"  {x}" if x else "" for x in profile_lines),
        ]
    if memory_lines:
        out += ["", "what the UI process holds after the burst (tracemalloc):", *(f"  {x}" for x in memory_lines)]
    out.append(f"\nload avg at the end: {' '.join(f'{x:.2f}' for x in os.getloadavg())}")
    print("\n".join(out))
    return 0 if targets_ok and checks_ok else 1


def main(argv: list[str] | None = None) -> int:
    return run(parse_args(argv))


if __name__ == "__main__":
    sys.exit(main())
