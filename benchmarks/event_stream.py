"""The channel's wire format: JSON Lines (orjson, what engine/channel/protocol.py writes) against msgpack.

    .venv/bin/python benchmarks/event_stream.py [--events N] [--repeat R]

Both encode the same messages (5,000 realistic exchange events by default: signed Meta-shaped
deliveries of every common message type, with the receiver's decoded summary) and decode them back
into the typed events a front end uses. Engine side = encode (it runs on the receiver's loop, once
per event whatever the number of watchers); front-end side = decode. msgpack is not a dependency:
without it installed (`pip install msgpack`) only JSON is measured.
"""

from __future__ import annotations

import argparse
import statistics
import time
from typing import Any

from common import WEBHOOK_PATH, event_record  # benchmarks/common.py puts this checkout on sys.path
from tui_burst import build_payloads  # the same signed deliveries the live view's benchmark sends

from wa_devtunnel.engine.channel.protocol import decode, encode_event, event_from_message, event_message
from wa_devtunnel.engine.events import ExchangeRecorded
from wa_devtunnel.rules.decode.payload import decode_payload


def build_events(count: int) -> list[ExchangeRecorded]:
    """Exchange events as the receiver publishes them, for tui_burst.py's signed deliveries."""
    from pathlib import Path

    part = Path("/tmp/recordings/20261207-080000.jsonl")
    events = []
    for i, (body, headers) in enumerate(build_payloads(count)):
        pairs = [[name, value] for name, value in headers.items()] + [["Host", "x.ngrok.app"]]
        summary = decode_payload(body).to_dict()
        record = event_record(i + 1, body, pairs, summary, "2026-12-07T08:00:00.000000Z")
        events.append(ExchangeRecorded(None, record, i * 2000, part))
    return events


def best_of(repeat: int, run: Any) -> float:
    """Seconds of the fastest run (the least disturbed by a shared machine)."""
    times = []
    for _ in range(repeat):
        began = time.perf_counter()
        run()
        times.append(time.perf_counter() - began)
    return min(times)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--events", type=int, default=5000)
    parser.add_argument("--repeat", type=int, default=7)
    args = parser.parse_args()
    events = build_events(args.events)
    n = len(events)

    lines = [encode_event(event) for event in events]
    json_encode = best_of(args.repeat, lambda: [encode_event(event) for event in events])
    json_decode = best_of(args.repeat, lambda: [event_from_message(decode(line)) for line in lines])
    assert all(
        event_from_message(decode(line)).record == event.record for line, event in zip(lines, events, strict=True)
    )
    rows = [("JSON Lines (orjson)", json_encode, json_decode, statistics.mean(len(line) for line in lines))]
    # What a TUI asks for: the view only (its body is read from the recording when shown).
    views = [encode_event(event, with_record=False) for event in events]
    view_encode = best_of(args.repeat, lambda: [encode_event(event, with_record=False) for event in events])
    view_decode = best_of(args.repeat, lambda: [event_from_message(decode(line)) for line in views])
    rows.append(("JSON, view only (TUI)", view_encode, view_decode, statistics.mean(len(line) for line in views)))

    try:
        import msgpack  # type: ignore[import-not-found]
    except ImportError:
        msgpack = None
    if msgpack is not None:

        def pack(event: ExchangeRecorded) -> bytes:
            return msgpack.packb(event_message(event), default=str)

        packed = [pack(event) for event in events]
        mp_encode = best_of(args.repeat, lambda: [pack(event) for event in events])
        mp_decode = best_of(args.repeat, lambda: [event_from_message(msgpack.unpackb(raw)) for raw in packed])
        rows.append(("msgpack", mp_encode, mp_decode, statistics.mean(len(raw) for raw in packed)))

    print(f"{n} exchange events, {WEBHOOK_PATH}, best of {args.repeat}")
    print(f"{'format':<22}{'encode us/event':>17}{'decode us/event':>17}{'bytes/event':>13}")
    for name, encode_s, decode_s, size in rows:
        print(f"{name:<22}{encode_s / n * 1e6:>17.2f}{decode_s / n * 1e6:>17.2f}{size:>13.0f}")
    if len(rows) == 3:
        (_, je, jd, js), _, (_, me, md, ms) = rows
        print(f"msgpack / JSON: encode {me / je:.2f}x, decode {md / jd:.2f}x, size {ms / js:.2f}x")
    else:
        print("msgpack not installed (pip install msgpack) : JSON only")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
