"""Receiver cost in CPU instructions per request: ours against the bare aiohttp app, without noise.

    .venv/bin/python benchmarks/receiver_instructions.py [--requests N] [--payload {text,batch}]

benchmarks/receiver.py measures requests/s, which on a shared 2-core machine moves by 20% from one
run to the next (and depends on how fast the Python client is). Counted instructions do not move:
each server here runs under valgrind (cachegrind, no cache simulation), the same two servers as in
receiver.py (start_serving), loaded by an aiohttp client in this process with the same signed body.

Every server runs twice, with W+N and W+3N requests; the difference of the two counts divided by 2N
is the cost of one request, start-up and shutdown cancelled out. The run prints instructions per
request for both servers, ours/bare, and the throughput ratio it implies when the server is the
bottleneck (bare/ours). PYTHONHASHSEED is fixed so two runs of the same code agree to about 0.1%.

Exit status: 0 when the implied ratio meets the target (0.8), 1 when it does not, 2 when valgrind
is missing or a server fails.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import re
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

import aiohttp

sys.path.insert(0, str(Path(__file__).resolve().parent))
import receiver as bench  # benchmarks/receiver.py: the two servers, the payloads, the client loop

_I_REFS = re.compile(r"I\s+refs:\s+([\d,]+)")
_START_TIMEOUT = 300.0  # python + aiohttp + our package, started under valgrind


def serve_until_stdin_closes(kind: str, recordings_dir: Path) -> None:
    """The process valgrind watches: serve `kind` on port 0, print it, stop when stdin closes."""

    async def main() -> None:
        serving = await bench.start_serving(kind, recordings_dir)
        print(f"ready {serving.port}", flush=True)
        loop = asyncio.get_running_loop()
        closed = asyncio.Event()
        loop.add_reader(0, lambda: None if os.read(0, 4096) else closed.set())
        await closed.wait()
        loop.remove_reader(0)
        await serving.stop()

    asyncio.run(main())


async def _send(port: int, count: int, concurrency: int, body: bytes, headers: dict[str, str]) -> dict[int, int]:
    url = f"http://{bench.HOST}:{port}{bench.DEFAULT_PATH}"
    connector = aiohttp.TCPConnector(limit=concurrency)
    async with aiohttp.ClientSession(connector=connector) as session:
        result = await bench._load(session, url, count, concurrency, body, headers)
    return result.statuses


def count_instructions(kind: str, requests: int, args: argparse.Namespace, body: bytes) -> int:
    """Instructions the server executed from start to exit, having answered warm-up + `requests`."""
    headers = bench.signed_headers(body)
    with tempfile.TemporaryDirectory(prefix="wa-devtunnel-instr-") as tmp:
        command = [
            "valgrind",
            "--tool=cachegrind",
            "--cache-sim=no",
            "--cachegrind-out-file=/dev/null",
            sys.executable,
            __file__,
            "--serve",
            kind,
            tmp,
        ]
        env = {**os.environ, "PYTHONHASHSEED": "0"}
        server = subprocess.Popen(
            command, stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.PIPE, env=env
        )
        try:
            assert server.stdout is not None and server.stdin is not None
            ready = server.stdout.readline().decode().split()
            if len(ready) != 2 or ready[0] != "ready":
                raise RuntimeError(f"{kind} server did not start: {server.communicate(timeout=30)[1].decode()[-2000:]}")
            port = int(ready[1])
            for count in (args.warmup, requests):
                statuses = asyncio.run(_send(port, count, args.concurrency, body, headers))
                if statuses != {200: count}:
                    raise RuntimeError(f"{kind} answered {statuses}, expected 200 x {count}")
            _, stderr = server.communicate(input=b"", timeout=_START_TIMEOUT)
        finally:
            if server.poll() is None:
                server.kill()
                server.wait()
    match = _I_REFS.search(stderr.decode(errors="replace"))
    if match is None:
        raise RuntimeError(f"no instruction count from valgrind for {kind}: {stderr.decode()[-2000:]}")
    return int(match.group(1).replace(",", ""))


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--requests", type=int, default=1000, help="N: the two runs send N and 3N (1000)")
    parser.add_argument("--warmup", type=int, default=200, help="W: requests before the counted ones (200)")
    parser.add_argument("--concurrency", type=int, default=16, help="requests in flight (16)")
    parser.add_argument("--payload", choices=sorted(bench.PAYLOADS), default="text")
    parser.add_argument("--target", type=float, default=bench.TARGET_RATIO, help="minimum bare/ours (0.8)")
    parser.add_argument("--serve", nargs=2, metavar=("KIND", "DIR"), help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.requests < 1 or args.warmup < 1 or args.concurrency < 1:
        parser.error("--requests, --warmup and --concurrency must be at least 1")
    return args


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    if args.serve:
        kind, directory = args.serve
        serve_until_stdin_closes(kind, Path(directory))
        return 0
    if shutil.which("valgrind") is None:
        print("valgrind is not installed (apt install valgrind); benchmarks/receiver.py needs no valgrind")
        return 2
    body = bench.PAYLOADS[args.payload]()
    n = args.requests
    print(f"wa-devtunnel receiver cost in instructions: python {sys.version.split()[0]}, aiohttp {aiohttp.__version__}")
    runs = f"{args.warmup}+{n} and {args.warmup}+{3 * n}"
    print(f"payload {args.payload} ({len(body)} bytes, signed), runs of {runs} requests per server")
    per_request: dict[str, float] = {}
    try:
        for kind in bench.KINDS:
            low = count_instructions(kind, n, args, body)
            high = count_instructions(kind, 3 * n, args, body)
            per_request[kind] = (high - low) / (2 * n)
            print(f"  {kind:<5} {per_request[kind]:>10,.0f} instructions/request")
    except (RuntimeError, subprocess.TimeoutExpired) as exc:
        print(f"failed: {exc}")
        return 2
    cost = per_request["ours"] / per_request["bare"]
    implied = 1 / cost
    verdict = "PASS" if implied >= args.target else "FAIL"
    print(f"ours costs {cost:.2f}x bare: server-bound ratio ours/bare ~{implied:.3f}")
    print(f"target ours/bare >= {args.target:.2f} when the server is the bottleneck: {verdict}")
    return 0 if verdict == "PASS" else 1


if __name__ == "__main__":
    sys.exit(main())
