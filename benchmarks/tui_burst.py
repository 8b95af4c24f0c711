"""The live inspector under a burst: does the TUI keep up, stay responsive, and at what memory cost?

    .venv/bin/python benchmarks/tui_burst.py [--requests N] [--concurrency C] [--rounds R]
                                             [--modes headless,tui] [--profile {auto,always,never}]
                                             [--profile-out FILE] [--switch-interval S] [--verbose]

Every run of every mode is a fresh server process, so that peak RSS (getrusage ru_maxrss) is
comparable; modes alternate (headless, tui, headless, tui, ...) so a shared machine's noise lands
on both:

* mode "tui": the real InspectorApp under Textual's headless driver (`run_test(headless=True,
  size=(120, 40))`), fed by the real EngineThread exactly as `run_tui` wires it (port 0, a
  SessionRecorder in a temp dir, an App Secret so every signature is verified);
* mode "headless": `run_headless` (what `wa-devtunnel up --headless` runs) with its output going
  to /dev/null through a thin wrapper that only reads the port and counts the exchange lines;
* one client process per run: aiohttp, C requests in flight, N signed Meta-shaped POSTs built
  beforehand from wa_devtunnel.rules.samples.payloads (text, image, location, button, list, reaction and
  status deliveries, each with its own wamid), fired as fast as the server answers.

Processes are forked from a forkserver started before this script imports anything heavy: Linux
keeps ru_maxrss across execve, so a "spawn"ed or subprocess child would report at least this
parent's peak RSS. VmHWM (/proc) is printed next to it as a cross-check.

Key latency (tui mode): a thread plays the terminal driver's role. Every 100 ms it takes a
timestamp and hands a Key("r") event to the app's loop (call_soon_threadsafe + post_message,
which is what Textual's input thread does), so time the loop spends blocked before the key is
even dequeued is counted. "r" toggles the token reveal in the header: harmless, and it does not
touch follow mode. Latency = until `action_reveal_token` has run ("key", the app has processed
it), and until the screen's next refresh after that ("paint"). `Pilot.press` is not used as the
clock because it ends with `wait_for_idle`, which waits (up to 1 s, twice) for the whole process
to stop using CPU: during a burst the engine thread never does, so it would time the burst.

Catch-up time: from the client's last response (CLOCK_MONOTONIC is shared between processes) to
the moment every exchange is in the DataTable and the screen has refreshed; 0 when the UI was done
before the last response arrived. For headless, to the moment the N-th line has been written.

Checks: the client got N x 200; the recording holds exactly N lines, all events with a valid
signature and HTTP 200, seq 1..N; tui: the DataTable holds min(N, MAX_TABLE_ROWS) unique rows
ending with the newest, the store saw N events, the inbox is empty and every key was handled.

Targets (tui, every run): catch-up <= 10 s and worst key latency <= 500 ms. When one is missed, or
with --profile always, one more unmeasured tui run is made under cProfile (the UI thread, from
ready to caught up) and the script prints where the UI thread's time goes.

Exit status: 0 when every check and target passes, 1 otherwise.
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
import resource
import signal
import statistics
import sys
import tempfile
import threading
import time
from collections import Counter, deque
from dataclasses import dataclass, field
from multiprocessing.connection import Connection
from pathlib import Path
from typing import Any

# Only the standard library at module level: the server processes import this module too (spawn),
# and anything imported here would inflate both modes' RSS. Each mode imports what it uses.
from common import (  # benchmarks/common.py (standard library only), which puts this checkout on sys.path
    APP_SECRET,
    HOST,
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
BURST_TIMEOUT = 300.0
CATCHUP_TIMEOUT = 120.0
TARGET_CATCHUP_S = 10.0
TARGET_KEY_WORST_MS = 500.0
MODES = ("headless", "tui")


def clock() -> float:
    """CLOCK_MONOTONIC: the same clock in every process of this machine."""
    return time.clock_gettime(time.CLOCK_MONOTONIC)


def rss_mib() -> float:
    """Peak resident set size of this process so far (ru_maxrss is KiB on Linux, bytes on macOS)."""
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    return peak / (1024 * 1024) if sys.platform == "darwin" else peak / 1024


def _proc_status_mib(field_name: str) -> float | None:
    with contextlib.suppress(OSError, ValueError):
        for line in Path("/proc/self/status").read_text().splitlines():
            if line.startswith(f"{field_name}:"):
                return int(line.split()[1]) / 1024
    return None


def rss_now_mib() -> float | None:
    """Current resident set size (Linux /proc), to tell a startup peak from growth under load."""
    return _proc_status_mib("VmRSS")


def rss_hwm_mib() -> float | None:
    """Peak RSS of this process image (Linux VmHWM): a cross-check of ru_maxrss, reset by exec."""
    return _proc_status_mib("VmHWM")


def bench_settings(recordings_dir: Path) -> Any:
    """Settings as `wa-devtunnel up --port 0` builds them, isolated from the developer's shell."""
    from wa_devtunnel.settings import load_settings

    return load_settings(
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


def client_main(conn: Connection, count: int, concurrency: int) -> None:
    """Build the payloads, say ready, then fire them all when told to."""
    try:
        import aiohttp

        payloads = build_payloads(count)
        sizes = [len(body) for body, _ in payloads]
        conn.send(("ready", min(sizes), max(sizes)))
        _, url = conn.recv()
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
        first = clock()
        await asyncio.gather(*(worker(session) for _ in range(min(concurrency, len(payloads)))))
    latencies.sort()
    p99 = latencies[min(len(latencies) - 1, int(0.99 * len(latencies)))] * 1000 if latencies else 0.0
    return {
        "first": first,
        "last": last,
        "seconds": last - first,
        "statuses": dict(statuses),
        "errors": dict(errors),
        "p99_ms": p99,
    }


# --------------------------------------------------------------------------- server process: common


def server_main(
    conn: Connection, mode: str, recordings_dir: str, count: int, profile_path: str, switch_interval: float
) -> None:
    """Entry point of a server process (one mode, one fresh interpreter)."""
    try:
        if switch_interval > 0:  # an experiment knob: how long a thread may hold the GIL when another waits
            sys.setswitchinterval(switch_interval)
        target = _tui_server if mode == "tui" else _headless_server
        asyncio.run(target(conn, Path(recordings_dir), count, profile_path or None))
    except BaseException as exc:
        with contextlib.suppress(OSError):
            conn.send(("error", f"{mode}: {type(exc).__name__}: {exc}"))
        raise


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


@dataclass
class CpuMark:
    wall: float = field(default_factory=clock)
    process: float = field(default_factory=time.process_time)
    main_thread: float = field(default_factory=time.thread_time)


def cpu_between(before: CpuMark, after: CpuMark) -> dict[str, float]:
    return {
        "wall_s": after.wall - before.wall,
        "process_cpu_s": after.process - before.process,
        "main_thread_cpu_s": after.main_thread - before.main_thread,
    }


# --------------------------------------------------------------------------- server process: tui


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


class TableWatch:
    """Notes when the UI has applied all `expected` exchanges, and how long each UI batch took."""

    def __init__(self, app: Any, expected: int) -> None:
        self.app = app
        self.expected = expected
        self.full_at: float | None = None
        self.painted_at: float | None = None
        self.painted = asyncio.Event()
        self.batches: list[tuple[float, float, int]] = []  # (started, seconds, events)
        apply_events = app.apply_events

        def timed_apply(events: Any) -> None:
            events = list(events)
            began = clock()
            apply_events(events)
            done = clock()
            self.batches.append((began, done - began, len(events)))
            if self.full_at is None and len(app.store.views) + app.store.dropped >= expected:
                self.full_at = done  # every exchange is in the model and (up to its cap) in the DataTable
                app.call_after_refresh(self._painted)

        app.apply_events = timed_apply

    def _painted(self) -> None:
        self.painted_at = clock()
        self.painted.set()


async def _tui_server(conn: Connection, recordings_dir: Path, count: int, profile_path: str | None) -> None:
    from textual.widgets import DataTable

    from wa_devtunnel.tui.app import InspectorApp
    from wa_devtunnel.tui.exchange_list import MAX_TABLE_ROWS
    from wa_devtunnel.tui.launch import start_engine

    commands = _command_queue(conn)
    loop = asyncio.get_running_loop()
    engine, inbox, started = start_engine(bench_settings(recordings_dir), progress=io.StringIO())  # as run_tui does
    app = InspectorApp(engine, inbox, started)
    probe = KeyProbe(app, loop, KEY, KEY_PERIOD_S)
    watch = TableWatch(app, count)
    profiler = None
    result: dict[str, Any] = {}
    try:
        async with app.run_test(headless=True, size=TERMINAL_SIZE) as pilot:
            await pilot.pause()
            result["rss_ready_mib"], result["rss_now_ready_mib"] = rss_mib(), rss_now_mib()
            conn.send(("ready", started.port, str(started.recording_path)))
            probe.start()
            if profile_path:
                import cProfile

                profiler = cProfile.Profile()
                profiler.enable()
            before = CpuMark()
            _, first, last = await _expect(commands, "burst_done", BURST_TIMEOUT + START_TIMEOUT)
            # The burst is over on the wire; the UI may still be working through the inbox.
            remaining = max(1.0, last + CATCHUP_TIMEOUT - clock())
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(watch.painted.wait(), remaining)
            after = CpuMark()
            result["rss_now_caught_up_mib"] = rss_now_mib()
            if profiler is not None:
                profiler.disable()
                profiler.dump_stats(profile_path)
            await probe.stop()
            table = app.query_one(DataTable)
            keys = [str(k.value) for k in table.rows]
            result.update(
                rows=table.row_count,
                expected_rows=min(count, MAX_TABLE_ROWS),
                unique_rows=len(set(keys)),
                newest_row_is_last=bool(keys) and keys[-1] == app.store.views[-1].id,
                store_events=app.store.counters.events,
                inbox_left=inbox.pending,
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
    finally:
        engine.stop()
    result["exchanges"] = engine.service.exchanges
    result["rss_peak_mib"], result["rss_hwm_mib"] = rss_mib(), rss_hwm_mib()  # nothing big is loaded after this
    conn.send(("result", result))


# --------------------------------------------------------------------------- server process: headless


class SniffingDevNull(io.TextIOBase):
    """run_headless's stdout: every write goes to /dev/null; we only read the port and count lines."""

    def __init__(self, on_port: Any, on_exchange: Any) -> None:
        self._sink = open(os.devnull, "w", encoding="utf-8")  # noqa: SIM115 - closed in close()
        self._on_port = on_port
        self._on_exchange = on_exchange

    def writable(self) -> bool:
        return True

    def write(self, text: str) -> int:
        self._sink.write(text)
        if "sig=" in text:
            self._on_exchange()
        elif text.startswith("Callback URL: "):
            self._on_port(int(text.split()[2].rsplit(":", 1)[1].split("/", 1)[0]))
        return len(text)

    def flush(self) -> None:
        self._sink.flush()

    def close(self) -> None:
        super().close()  # flushes
        self._sink.close()


async def _headless_server(conn: Connection, recordings_dir: Path, count: int, profile_path: str | None) -> None:
    from wa_devtunnel.cli.headless import run_headless

    commands = _command_queue(conn)
    loop = asyncio.get_running_loop()
    port: asyncio.Future[int] = loop.create_future()
    printed = 0
    full_at: float | None = None
    full = asyncio.Event()

    def on_exchange() -> None:
        nonlocal printed, full_at
        printed += 1
        if printed == count:
            full_at = clock()
            full.set()

    out = SniffingDevNull(lambda p: port.done() or port.set_result(p), on_exchange)
    err = open(os.devnull, "w", encoding="utf-8")  # noqa: SIM115 - closed below
    result: dict[str, Any] = {}
    task = asyncio.create_task(run_headless(bench_settings(recordings_dir), out=out, err=err))
    try:
        bound = await asyncio.wait_for(asyncio.shield(port), START_TIMEOUT)
        result["rss_ready_mib"], result["rss_now_ready_mib"] = rss_mib(), rss_now_mib()
        recordings = sorted(recordings_dir.glob("*.jsonl"))
        conn.send(("ready", bound, str(recordings[-1]) if recordings else ""))
        before = CpuMark()
        _, first, last = await _expect(commands, "burst_done", BURST_TIMEOUT + START_TIMEOUT)
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(full.wait(), max(1.0, last + CATCHUP_TIMEOUT - clock()))
        after = CpuMark()
        result["rss_now_caught_up_mib"] = rss_now_mib()
        result.update(
            rows=printed, full_at=full_at, painted_at=full_at, cpu=cpu_between(before, after), first=first, last=last
        )
    finally:
        os.kill(os.getpid(), signal.SIGTERM)  # run_headless's own way out: stop, close the recording
        await asyncio.wait_for(task, 30)
        out.close()
        err.close()
    result["rss_peak_mib"], result["rss_hwm_mib"] = rss_mib(), rss_hwm_mib()
    conn.send(("result", result))


# --------------------------------------------------------------------------- orchestration


@dataclass
class ModeResult:
    mode: str
    label: str
    client: dict[str, Any]
    server: dict[str, Any]
    recording: Path
    checks: list[tuple[str, bool, str]] = field(default_factory=list)

    @property
    def rps(self) -> float:
        seconds = self.client["seconds"]
        return sum(self.client["statuses"].values()) / seconds if seconds > 0 else 0.0

    def catchup(self, key: str = "painted_at") -> float | None:
        """From the client's last response; 0 when the UI was done before that response arrived."""
        at = self.server.get(key)
        return None if at is None else max(0.0, at - self.client["last"])

    def key_latencies_ms(self, phase: str = "burst", which: int = 1) -> list[float]:
        """phase idle (before the burst) or burst (burst + catch-up); which 1: -> handled, 2: -> painted."""
        first = self.client["first"]
        end = self.server.get("painted_at") or float("inf")  # the burst, then the UI's catch-up
        out = []
        for sample in self.server.get("key_samples", []):
            pressed = sample[0]
            if (pressed < first) if phase == "idle" else (first <= pressed <= end):
                out.append((sample[which] - pressed) * 1000)
        return sorted(out)


def run_mode(
    ctx: Any, mode: str, args: argparse.Namespace, tmp: Path, label: str, profile_path: str = ""
) -> ModeResult:
    recordings_dir = tmp / f"{mode}-{label}"
    server = start_child(
        ctx, mode, server_main, mode, str(recordings_dir), args.requests, profile_path, args.switch_interval
    )
    client = start_child(ctx, f"client-{mode}", client_main, args.requests, args.concurrency)
    try:
        _, port, recording = server.receive(START_TIMEOUT)
        _, smallest, largest = client.receive(START_TIMEOUT)
        print(
            f"  run {label} {mode}: server pid {server.process.pid} on port {port}, client pid {client.process.pid} "
            f"({args.requests} bodies, {smallest}-{largest} bytes)",
            flush=True,
        )
        time.sleep(IDLE_S)  # baseline key presses (tui) before the burst
        client.send(("run", f"http://{HOST}:{port}{WEBHOOK_PATH}"))
        _, burst = client.receive(BURST_TIMEOUT)
        server.send(("burst_done", burst["first"], burst["last"]))
        _, result = server.receive(CATCHUP_TIMEOUT + 60)
    finally:
        client.close()
        server.close()
    outcome = ModeResult(mode, label, burst, result, Path(recording))
    n = args.requests
    answered = burst["statuses"].get(200, 0)
    outcome.checks.append(
        ("client", answered == n and not burst["errors"], f"HTTP {burst['statuses']} errors {burst['errors']}")
    )
    ok, lines = check_recording(outcome.recording, n)
    detail = ", ".join(line.split(None, 1)[1] if " " in line else line for line in lines[1:])
    outcome.checks.append(("recording", ok, detail))
    if mode == "tui":
        outcome.checks.append(("exchanges", result["exchanges"] == n, f"{result['exchanges']} answered by the engine"))
    else:
        outcome.checks.append(("printed", result["rows"] == n, f"{result['rows']} exchange lines written"))
    if mode == "tui":
        rows = result["expected_rows"]
        rows_ok = result["rows"] == rows and result["unique_rows"] == rows and result["newest_row_is_last"]
        outcome.checks.append(
            (
                "datatable",
                rows_ok and result["store_events"] == n and result["inbox_left"] == 0,
                f"{result['rows']} rows of {rows} expected ({result['unique_rows']} unique, newest last "
                f"{result['newest_row_is_last']}), store {result['store_events']} events, "
                f"inbox left {result['inbox_left']}, following {result['following']}",
            )
        )
        lost = result["presses"] - len(result["key_samples"])
        outcome.checks.append(("keys", lost == 0, f"{result['presses']} pressed, {lost} not handled"))
    return outcome


def fmt(value: float | None, spec: str = ".2f", unit: str = "") -> str:
    if value is None or value != value:  # None or NaN
        return "n/a"
    return f"{value:{spec}}{unit}"


def worst(values: list[float]) -> float | None:
    return values[-1] if values else None


def pair(values: list[float]) -> str:
    """`p95/worst` of sorted latencies in ms."""
    return f"{fmt(quantile(values, 0.95), '.0f')}/{fmt(worst(values), '.0f')}" if values else "n/a"


TABLE_HEADER = (
    f"{'run':<7} {'mode':<9} {'req/s':>6} {'burst s':>7} {'catch-up s':>10} {'key p95/worst ms':>16} "
    f"{'paint p95/worst ms':>18} {'RSS ready MiB':>13} {'RSS peak MiB':>12} {'CPU s':>6}  checks"
)


def table_row(label: str, mode: str, runs: list[ModeResult]) -> str:
    """One run, or the median of several (key latencies pooled over all their presses)."""
    rps = statistics.median(r.rps for r in runs)
    seconds = statistics.median(r.client["seconds"] for r in runs)
    catchups = [c for c in (r.catchup() for r in runs) if c is not None]
    catchup = statistics.median(catchups) if len(catchups) == len(runs) else None
    keys = sorted(x for r in runs for x in r.key_latencies_ms("burst", 1))
    paints = sorted(x for r in runs for x in r.key_latencies_ms("burst", 2))
    ready = statistics.median(r.server["rss_ready_mib"] for r in runs)
    peak = statistics.median(r.server["rss_peak_mib"] for r in runs)
    cpu = statistics.median(r.server["cpu"]["process_cpu_s"] for r in runs)
    failed = [name for r in runs for name, ok, _ in r.checks if not ok]
    return (
        f"{label:<7} {mode:<9} {rps:>6.0f} {seconds:>7.2f} {fmt(catchup, '>10.2f'):>10} "
        f"{pair(keys) if mode == 'tui' else '-':>16} {pair(paints) if mode == 'tui' else '-':>18} "
        f"{ready:>13.1f} {peak:>12.1f} {cpu:>6.2f}  {'FAILED ' + ','.join(failed) if failed else 'OK'}"
    )


def run_details(r: ModeResult, n: int) -> list[str]:
    s = r.server
    lines = [f"run {r.label} {r.mode}:"]
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
        lines.append(
            f"  caught up: every exchange applied {fmt(r.catchup('full_at'), '.2f', ' s')}, screen refreshed "
            f"{fmt(r.catchup('painted_at'), '.2f', ' s')} after the last response"
        )
    lines.append(
        f"  RSS: peak {s['rss_peak_mib']:.1f} MiB (VmHWM {fmt(s.get('rss_hwm_mib'), '.1f')}, peak when ready "
        f"{s['rss_ready_mib']:.1f}); current when ready {fmt(s.get('rss_now_ready_mib'), '.1f')}, "
        f"when caught up {fmt(s.get('rss_now_caught_up_mib'), '.1f')} MiB"
    )
    cpu = s["cpu"]
    lines.append(
        f"  server CPU ready -> caught up: {cpu['process_cpu_s']:.2f} s in {cpu['wall_s']:.2f} s wall "
        f"(main thread {cpu['main_thread_cpu_s']:.2f} s, other threads "
        f"{max(0.0, cpu['process_cpu_s'] - cpu['main_thread_cpu_s']):.2f} s) = "
        f"{cpu['process_cpu_s'] / n * 1e6:.0f} us/request; client p99 {r.client['p99_ms']:.1f} ms"
    )
    for name, ok, detail in r.checks:
        lines.append(f"  check {name:<10} {'OK' if ok else 'FAILED'}  {detail}")
    return lines


def report(runs: list[ModeResult], n: int, verbose: bool) -> tuple[list[str], bool]:
    """The table (every run, then the median per mode), the TUI/headless ratio, details; targets met?"""
    lines = [TABLE_HEADER, "-" * len(TABLE_HEADER)]
    lines += [table_row(r.label, r.mode, [r]) for r in runs]
    modes = [m for m in MODES if any(r.mode == m for r in runs)]
    by_mode = {m: [r for r in runs if r.mode == m] for m in modes}
    if any(len(v) > 1 for v in by_mode.values()):
        lines.append("-" * len(TABLE_HEADER))
        lines += [table_row("median", m, by_mode[m]) for m in modes]
    if "tui" in by_mode and "headless" in by_mode:
        peak = {m: statistics.median(r.server["rss_peak_mib"] for r in by_mode[m]) for m in by_mode}
        ready = {m: statistics.median(r.server["rss_ready_mib"] for r in by_mode[m]) for m in by_mode}
        rps = {m: statistics.median(r.rps for r in by_mode[m]) for m in by_mode}
        lines.append("")
        lines.append(
            f"RSS ratio TUI/headless (peak): {peak['tui'] / peak['headless']:.2f}x "
            f"({peak['tui']:.1f} vs {peak['headless']:.1f} MiB, +{peak['tui'] - peak['headless']:.1f} MiB); "
            f"when ready {ready['tui'] / ready['headless']:.2f}x; grown during the burst: TUI "
            f"+{peak['tui'] - ready['tui']:.1f} MiB, headless +{peak['headless'] - ready['headless']:.1f} MiB"
        )
        lines.append(f"throughput ratio TUI/headless: {rps['tui'] / rps['headless']:.2f}x")
    lines.append("")
    lines.append(
        "req/s: client's 200s / (last response - first request); catch-up: last response -> every exchange in the "
        "DataTable and the screen refreshed (headless: last line written); key: press -> action handled, paint: "
        "-> next screen refresh, pooled over the burst and catch-up; RSS: ru_maxrss; CPU: server process, "
        "ready -> caught up"
    )
    tui = by_mode.get("tui", [])
    catchups = [r.catchup() for r in tui]
    keys = sorted(x for r in tui for x in r.key_latencies_ms("burst", 1))
    targets_ok = all(c is not None and c <= TARGET_CATCHUP_S for c in catchups) and (
        not tui or (bool(keys) and keys[-1] <= TARGET_KEY_WORST_MS)
    )
    for r in runs if verbose else [next(r for r in reversed(runs) if r.mode == m) for m in modes]:
        lines += ["", *run_details(r, n)]
    return lines, targets_ok


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
    parser.add_argument("--requests", type=int, default=5000, help="POSTs in the burst (5000)")
    parser.add_argument("--concurrency", type=int, default=32, help="requests in flight (32)")
    parser.add_argument("--rounds", type=int, default=3, help="runs per mode, modes alternating (3)")
    parser.add_argument("--modes", default=",".join(MODES), help="comma-separated, run in this order each round")
    parser.add_argument(
        "--profile",
        choices=("auto", "always", "never"),
        default="auto",
        help="profile the TUI's UI thread when a target is missed (auto), always, or never",
    )
    parser.add_argument("--profile-out", type=Path, help="also save the raw cProfile stats here")
    parser.add_argument("--top", type=int, default=15, help="rows per profile table (15)")
    parser.add_argument(
        "--switch-interval",
        type=float,
        default=0.0,
        help="sys.setswitchinterval in the server processes, an experiment (default: Python's, 0.005 s)",
    )
    parser.add_argument("--verbose", action="store_true", help="details of every run, not only the last per mode")
    args = parser.parse_args(argv)
    args.modes = [m.strip() for m in args.modes.split(",") if m.strip()]
    if not args.modes or set(args.modes) - set(MODES):
        parser.error(f"--modes takes a comma-separated subset of {','.join(MODES)}")
    if min(args.requests, args.concurrency, args.rounds) < 1:
        parser.error("--requests, --concurrency and --rounds must be at least 1")
    return args


def small_process_context() -> Any:
    """Children forked from a forkserver started while this process is still small.

    Linux keeps ru_maxrss across execve and counts the pre-exec image's peak: a child started with
    "spawn" or subprocess reports at least this parent's peak RSS, whatever it uses itself. A child
    forked from a fresh forkserver starts from the forkserver's few MiB, the same for every mode.
    """
    if "forkserver" not in mp.get_all_start_methods():
        return mp.get_context("spawn")  # ru_maxrss then includes this parent's peak (VmHWM does not)
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
        f"{args.requests} signed POSTs, concurrency {args.concurrency}, "
        f"terminal {TERMINAL_SIZE[0]}x{TERMINAL_SIZE[1]}, key {KEY!r} every {KEY_PERIOD_S * 1000:.0f} ms; "
        f"one fresh process per mode ({ctx.get_start_method()}), GIL switch interval "
        f"{args.switch_interval or sys.getswitchinterval()} s"
    )
    runs: list[ModeResult] = []
    profile_lines: list[str] = []
    with tempfile.TemporaryDirectory(prefix="wa-devtunnel-tui-bench-") as tmp:
        tmp_path = Path(tmp)
        for number in range(1, args.rounds + 1):
            for mode in args.modes:
                runs.append(run_mode(ctx, mode, args, tmp_path, str(number)))
        lines, targets_ok = report(runs, args.requests, args.verbose)
        checks_ok = all(ok for r in runs for _, ok, _ in r.checks)
        if "tui" in args.modes and (args.profile == "always" or (args.profile == "auto" and not targets_ok)):
            stats_path = tmp_path / "tui.prof"
            print("  profiling: one more tui run under cProfile (not counted)", flush=True)
            profiled = run_mode(ctx, "tui", args, tmp_path, "prof", str(stats_path))
            keys = profiled.key_latencies_ms()
            profile_lines = [
                f"profiled run: {profiled.rps:.0f} req/s, catch-up {fmt(profiled.catchup(), '.2f', ' s')}, "
                f"key worst {fmt(worst(keys), '.0f', ' ms')} (cProfile slows the UI thread)",
                *profile_report(stats_path, args.top),
            ]
            if args.profile_out:
                args.profile_out.write_bytes(stats_path.read_bytes())
                profile_lines.append(f"raw stats saved to {args.profile_out}")
    out = ["", *lines, ""]
    out.append(
        f"targets (TUI, every run): catch-up <= {TARGET_CATCHUP_S:.0f} s and worst key latency <= "
        f"{TARGET_KEY_WORST_MS:.0f} ms: {'PASS' if targets_ok else 'FAIL'}; checks: {'PASS' if checks_ok else 'FAIL'}"
    )
    if profile_lines:
        out += ["", "profile of the TUI's UI thread (cProfile):", *(f"  {x}" if x else "" for x in profile_lines)]
    out.append(f"\nload avg at the end: {' '.join(f'{x:.2f}' for x in os.getloadavg())}")
    print("\n".join(out))
    return 0 if targets_ok and checks_ok else 1


def main(argv: list[str] | None = None) -> int:
    return run(parse_args(argv))


if __name__ == "__main__":
    sys.exit(main())
