"""The decoder's cost on the acknowledgement path, against an older decoder, in the same run.

    .venv/bin/python benchmarks/decode_cost.py [--old PATH] [--rounds R] [--number N] [--payload {text,batch}]
                                               [--instructions]

Times what the receiver does with a body before it answers: `decode_payload(body, ...)` as
engine/verdicts.py calls it (the receiver's SeenIds and no accounts, values=False when the decoder
accepts it), then `.to_dict()`, then orjson.dumps of that dict (the recording writes it). The bodies are
exactly those of benchmarks/receiver.py (`--payload text` and `--payload batch`).

`--old PATH` is a checkout of an older commit (`git worktree add /tmp/wt-old fd0f481`): each side runs
in its own subprocess with its checkout first on sys.path, so both import their own wa_devtunnel.
Best of R rounds of N calls, in microseconds per request; the rounds alternate old, new, old, new...
so that the noise of a shared machine lands on both. Prints new/old per payload.

--instructions counts CPU instructions instead (valgrind cachegrind, as receiver_instructions.py does):
each side runs N and 5N calls of decode + to_dict + dumps, and the difference over 4N is one request's
count, deterministic to a few instructions, where times move with the machine's caches and its load.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import subprocess
import sys
from pathlib import Path

import receiver as bench  # benchmarks/receiver.py: the payloads (also puts this checkout on sys.path)

ROOT = Path(__file__).resolve().parent.parent

# Runs in a subprocess: argv = checkout, body file, number of calls. Prints microseconds per call.
_CHILD = r"""
import sys, time
sys.path.insert(0, sys.argv[1])
import orjson
from wa_devtunnel.rules.decode import payload as p
assert p.__file__.startswith(sys.argv[1]), p.__file__
body = open(sys.argv[2], "rb").read()
number = int(sys.argv[3])
seen = p.SeenIds()
try:
    p.decode_payload(body, seen=seen, values=False)
    kwargs = {"accounts_by_phone_number_id": {}, "seen": seen, "values": False}
except TypeError:  # a decoder from before values=False
    kwargs = {"accounts_by_phone_number_id": {}, "seen": seen}
decode, dumps, clock = p.decode_payload, orjson.dumps, time.perf_counter
for _ in range(number // 10):  # warm-up
    dumps(decode(body, **kwargs).to_dict())
best_decode = best_dict = best_dump = float("inf")
for _ in range(5):
    start = clock()
    for _ in range(number):
        summary = decode(body, **kwargs)
    decoded = clock()
    for _ in range(number):
        document = summary.to_dict()
    dicted = clock()
    for _ in range(number):
        dumps(document)
    dumped = clock()
    best_decode = min(best_decode, decoded - start)
    best_dict = min(best_dict, dicted - decoded)
    best_dump = min(best_dump, dumped - dicted)
print(best_decode / number * 1e6, best_dict / number * 1e6, best_dump / number * 1e6)
"""


# Runs under valgrind: argv = checkout, body file, number of calls (decode + to_dict + dumps).
_COUNTED = r"""
import sys
sys.path.insert(0, sys.argv[1])
import orjson
from wa_devtunnel.rules.decode import payload as p
body = open(sys.argv[2], "rb").read()
seen = p.SeenIds()
try:
    p.decode_payload(body, seen=seen, values=False)
    kwargs = {"accounts_by_phone_number_id": {}, "seen": seen, "values": False}
except TypeError:
    kwargs = {"accounts_by_phone_number_id": {}, "seen": seen}
decode, dumps = p.decode_payload, orjson.dumps
for _ in range(20):
    dumps(decode(body, **kwargs).to_dict())
for _ in range(int(sys.argv[3])):
    dumps(decode(body, **kwargs).to_dict())
"""
_VALGRIND = ("valgrind", "--tool=cachegrind", "--cache-sim=no", "--cachegrind-out-file=/dev/null")
_I_REFS = re.compile(r"I\s+refs:\s+([\d,]+)")


def instructions(checkout: Path, body_file: Path, number: int) -> int:
    """Instructions per request: runs of `number` and 5 x `number` calls under cachegrind, differenced."""
    counts = []
    for calls in (number, 5 * number):
        done = subprocess.run(
            [*_VALGRIND, sys.executable, "-c", _COUNTED, str(checkout), str(body_file), str(calls)],
            capture_output=True,
            text=True,
            check=True,
            env={**os.environ, "PYTHONHASHSEED": "0"},
        )
        match = _I_REFS.search(done.stderr)
        if match is None:
            raise RuntimeError(done.stderr[-2000:])
        counts.append(int(match.group(1).replace(",", "")))
    return round((counts[1] - counts[0]) / (4 * number))


def measure(checkout: Path, body_file: Path, number: int) -> tuple[float, float, float]:
    done = subprocess.run(
        [sys.executable, "-c", _CHILD, str(checkout), str(body_file), str(number)],
        capture_output=True,
        text=True,
        check=True,
    )
    decode, to_dict, dump = map(float, done.stdout.split())
    return decode, to_dict, dump


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--old", type=Path, help="checkout of an older commit (git worktree add ...)")
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--number", type=int, default=2000)
    parser.add_argument("--payload", choices=[*bench.PAYLOADS, "both"], default="both")
    parser.add_argument("--instructions", action="store_true", help="count instructions under valgrind")
    args = parser.parse_args()
    sides = {"new": ROOT} | ({"old": args.old.resolve()} if args.old else {})
    payloads = list(bench.PAYLOADS) if args.payload == "both" else [args.payload]
    import tempfile

    with tempfile.TemporaryDirectory() as tmp:
        for name in payloads:
            body_file = Path(tmp) / f"{name}.json"
            body_file.write_bytes(bench.PAYLOADS[name]())
            if args.instructions:
                counted = {side: instructions(checkout, body_file, 200) for side, checkout in sides.items()}
                for side, count in counted.items():
                    print(f"{name:5} {side}: {count:,} instructions per request (decode + to_dict + dumps)")
                if "old" in counted:
                    delta = counted["new"] - counted["old"]
                    print(f"{name:5} new - old: {delta:+,} instructions ({delta / counted['old'] * 100:+.1f}%)")
                continue
            best: dict[str, list[float]] = {}
            for _ in range(args.rounds):
                for side in reversed(sides):
                    result = measure(sides[side], body_file, args.number)
                    best[side] = [min(a, b) for a, b in zip(best.get(side, result), result, strict=True)]
            for side in sides:
                decode, to_dict, dump = best[side]
                total = decode + to_dict + dump
                print(
                    f"{name:5} {side}: decode {decode:7.2f} us  to_dict {to_dict:6.2f} us  "
                    f"dumps {dump:5.2f} us  total {total:7.2f} us"
                )
            if "old" in best:
                ratio = sum(best["new"]) / sum(best["old"])
                print(f"{name:5} new/old: {ratio:.3f}  ({json.dumps(round((ratio - 1) * 100, 1))}%)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
