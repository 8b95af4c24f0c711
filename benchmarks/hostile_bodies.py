"""Strangers' megabytes vs Meta's small events: does a flood of big bad-signature bodies slow real deliveries?

    .venv/bin/python benchmarks/hostile_bodies.py [--attackers 16] [--body-mb 3.25] [--events 300]
                                                   [--source DIR] [--require-signature/--no-require-signature]

Two servers, each a child process, measured the same way one after the other:

* ours: the real command line (`python -m wa_devtunnel --headless --tunnel none --port 0`, with an
  App Secret and --require-signature);
* bare: a minimal aiohttp app that reads each body whole and answers 200 (the floor: what receiving
  the same bytes costs any Python server on this machine, with no verification at all).

For each: the latency of signed ~600-byte text events sent one after the other, alone (quiet) and
while `--attackers` clients each post `--body-mb` MB bodies with a wrong signature in a loop (valid
JSON, a batch of many messages: the most work a decoder can get). It prints p50/p99/max and the
ratio p99(ours under attack) / p99(bare under attack). `--source DIR` runs another checkout of the
package (e.g. `git worktree add /tmp/before <commit>`) for a before/after.
Exit status 0 always (a measurement, not a gate): compare the printed figures.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import aiohttp
from common import APP_SECRET, ROOT
from common import signature as sign


def text_event(index: int) -> bytes:
    message = {
        "from": "16505551234",
        "id": f"wamid.BENCH{index:08d}",
        "timestamp": "1765000000",
        "type": "text",
        "text": {"body": f"Does it come in another color? #{index}"},
    }
    return _envelope([message])


def big_event(megabytes: float) -> bytes:
    message = {"from": "16505551234", "timestamp": "1", "type": "text", "text": {"body": "y" * 400}}
    one = len(json.dumps(message)) + 40
    count = int(megabytes * 1024 * 1024 / one)
    return _envelope([dict(message, id=f"wamid.BIG{i:09d}") for i in range(count)])


def _envelope(messages: list[dict[str, object]]) -> bytes:
    value = {
        "messaging_product": "whatsapp",
        "metadata": {"display_phone_number": "15550001111", "phone_number_id": "106540352242922"},
        "contacts": [{"profile": {"name": "Kerry"}, "wa_id": "16505551234"}],
        "messages": messages,
    }
    document = {
        "object": "whatsapp_business_account",
        "entry": [{"id": "102290129340398", "changes": [{"value": value, "field": "messages"}]}],
    }
    return json.dumps(document, separators=(",", ":")).encode()


BARE_SERVER = """
import socket, sys
from aiohttp import web
async def handle(request):
    await request.read()
    return web.Response(text="EVENT_RECEIVED")
app = web.Application(client_max_size=8 * 1024 * 1024)
app.router.add_post("/webhook/whatsapp", handle)
sock = socket.socket(); sock.bind(("127.0.0.1", 0)); sock.listen(512)
print(f"Callback URL: http://127.0.0.1:{sock.getsockname()[1]}/webhook/whatsapp", flush=True)
web.run_app(app, sock=sock, print=None, access_log=None)
"""


def start_receiver(
    source: Path, workdir: Path, require_signature: bool, bare: bool
) -> tuple[subprocess.Popen[str], str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("WHATSAPP_", "NGROK_", "WA_DEVTUNNEL_"))}
    env.update(PYTHONPATH=str(source), WHATSAPP_APP_SECRET=APP_SECRET, WHATSAPP_VERIFY_TOKEN="bench-token")
    argv = [sys.executable, "-m", "wa_devtunnel", "--headless", "--tunnel", "none", "--port", "0"]
    argv += ["--recordings-dir", str(workdir / "recordings")]
    if require_signature:
        argv.append("--require-signature")
    if bare:
        argv = [sys.executable, "-c", BARE_SERVER]
    process = subprocess.Popen(
        argv, cwd=workdir, env=env, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True
    )
    assert process.stdout is not None
    for line in process.stdout:
        if line.startswith("Callback URL: "):
            url = line.removeprefix("Callback URL: ").strip()
            break
    else:
        raise SystemExit("the receiver exited before printing its callback URL")

    def drain() -> None:
        assert process.stdout is not None
        for _ in process.stdout:
            pass

    import threading

    threading.Thread(target=drain, daemon=True).start()
    return process, url


async def timed_events(session: aiohttp.ClientSession, url: str, count: int, offset: int) -> list[float]:
    latencies = []
    for index in range(count):
        body = text_event(offset + index)
        headers = {"Content-Type": "application/json", "X-Hub-Signature-256": sign(body)}
        started = time.perf_counter()
        async with session.post(url, data=body, headers=headers) as response:
            await response.read()
            assert response.status == 200, response.status
        latencies.append((time.perf_counter() - started) * 1000)
        await asyncio.sleep(0.005)
    return latencies


async def attacker(url: str, body: bytes, stop: asyncio.Event, sent: list[int]) -> None:
    headers = {"Content-Type": "application/json", "X-Hub-Signature-256": sign(body, "a-guess")}
    async with aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=120)) as session:
        while not stop.is_set():
            try:
                async with session.post(url, data=body, headers=headers) as response:
                    await response.read()
                    sent.append(response.status)
            except aiohttp.ClientError:
                await asyncio.sleep(0.05)


def describe(name: str, latencies: list[float]) -> tuple[float, str]:
    ordered = sorted(latencies)
    p99 = ordered[min(len(ordered) - 1, int(len(ordered) * 0.99))]
    text = (
        f"{name:<14} p50 {statistics.median(ordered):8.1f} ms   p99 {p99:8.1f} ms   max {ordered[-1]:8.1f} ms"
        f"   ({len(ordered)} events)"
    )
    return p99, text


async def measure(url: str, args: argparse.Namespace) -> tuple[float, float]:
    """(p99 quiet, p99 under attack) for one server, printing the detail."""
    big = big_event(args.body_mb)
    async with aiohttp.ClientSession() as session:
        await timed_events(session, url, 20, 0)  # warm-up
        baseline = await timed_events(session, url, args.events, 1000)
        stop = asyncio.Event()
        statuses: list[int] = []
        attackers = [asyncio.create_task(attacker(url, big, stop, statuses)) for _ in range(args.attackers)]
        await asyncio.sleep(1.0)  # let the flood build up
        attacked = await timed_events(session, url, args.events, 100_000)
        stop.set()
        await asyncio.gather(*attackers)
    base_p99, base_text = describe("  quiet", baseline)
    attack_p99, attack_text = describe("  under attack", attacked)
    size = f"{len(big) / 1e6:.2f} MB"
    print(f"  attack: {args.attackers} clients x {size} bad-signature bodies, {len(statuses)} answered")
    print(f"  answers: {sorted(set(statuses))}")
    print(base_text)
    print(attack_text)
    return base_p99, attack_p99


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--attackers", type=int, default=16)
    parser.add_argument("--body-mb", type=float, default=3.25)
    parser.add_argument("--events", type=int, default=300)
    parser.add_argument("--source", type=Path, default=ROOT, help="checkout whose wa_devtunnel package to run")
    parser.add_argument("--require-signature", action=argparse.BooleanOptionalAction, default=True)
    args = parser.parse_args()
    results = {}
    for name in ("ours", "bare"):
        with tempfile.TemporaryDirectory() as temp:
            process, url = start_receiver(args.source.resolve(), Path(temp), args.require_signature, name == "bare")
            try:
                where = args.source.resolve() if name == "ours" else "a minimal aiohttp app"
                print(f"{name}: {where} (require signature: {args.require_signature and name == 'ours'})")
                results[name] = asyncio.run(measure(url, args))
            finally:
                process.terminate()
                process.wait(timeout=30)
    ours, bare = results["ours"][1], results["bare"][1]
    print(f"ratio p99 under attack, ours / bare = {ours / bare:.2f}x  ({ours:.1f} ms vs {bare:.1f} ms)")


if __name__ == "__main__":
    main()
