"""Export of a 10,000-event session: scrubbed, unscrubbed, and a naive copy loop as the baseline.

    .venv/bin/python benchmarks/export_10k.py [--events N] [--customers C]

Writes one recording of N events (texts, media, replies, reactions, statuses, failures, batches,
template updates; C distinct customers so the pseudonym tables grow as in real traffic) with the
real SessionRecorder and the records the receiver would write. Then, in the same run:

* "scrubbed": what `wa-devtunnel export --out DIR` does (load, select, scrub, name, write, manifest),
  with the progress bar drawn on stderr;
* "no-scrub": the same with --no-scrub (exact recorded bytes);
* "baseline": a naive loop that json.loads each line and writes each body to a numbered file.

It prints the seconds of each and the ratios to the baseline, and checks that the scrubbed
export holds one fixture per event and none of the customers' numbers.
Exit status: 0 when the checks pass.
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from common import event_record  # benchmarks/common.py

from wa_devtunnel.cli.export import summary_line
from wa_devtunnel.cli.output import ProgressBar
from wa_devtunnel.engine.export.writer import export_fixtures, prepare_out_dir
from wa_devtunnel.engine.recording import SessionRecorder
from wa_devtunnel.engine.replay.source import Selection, load_recordings, select
from wa_devtunnel.rules.decode.payload import decode_payload
from wa_devtunnel.rules.samples import payloads as samples
from wa_devtunnel.rules.signature import sign_body

SECRET = "benchmark-app-secret"


def _customer(index: int) -> str:
    return f"4917{index:09d}"


def _payload(n: int, customers: int) -> dict[str, Any]:
    """The n-th event of a busy shop's traffic: mostly messages and statuses, some of everything else."""
    phone = _customer(n % customers)
    common: dict[str, Any] = {"sender": phone, "message_id": f"wamid.bench{n:08d}"}
    contact = [samples.contact(f"Customer Näme {n % customers}", phone)]
    kind = n % 10
    if kind in (0, 1):
        message = samples.text_message(f"Order #{n}: is the größe M still there? /help 😮", **common)
    elif kind == 2:
        message = samples.image_message(f"photo {n}", media_id=str(10**15 + n), **common)
    elif kind == 3:
        message = samples.button_reply(**common)
    elif kind == 4:
        message = samples.reaction_message(**common)
    elif kind in (5, 6, 7):
        status = ("sent", "delivered", "read")[kind - 5]
        item = samples.status(status, message_id=f"wamid.out{n // 3:08d}", recipient_id=phone)
        return samples.envelope([samples.messages_change(statuses=[item])])
    elif kind == 8:
        failed = samples.status("failed", recipient_id=phone, error_code=131049)
        batch = [samples.text_message(f"batch {n}", **common)]
        return samples.envelope([samples.messages_change(batch, [failed], contacts=contact)])
    else:
        return samples.envelope([samples.template_status_update(f"template_{n % 7}", "APPROVED")])
    return samples.envelope([samples.messages_change([message], contacts=contact)])


def write_recording(directory: Path, events: int, customers: int) -> Path:
    """A session file exactly as the receiver writes it (signed bodies, decoded summaries)."""
    with SessionRecorder(directory) as recorder:
        for n in range(events):
            body = samples.meta_json(_payload(n, customers))
            headers = [
                ["Content-Type", "application/json"],
                ["X-Hub-Signature-256", sign_body(body, SECRET)],
                ["User-Agent", "facebookexternalua"],
            ]
            summary = decode_payload(body).to_dict()
            recorder.append(event_record(recorder.next_seq(), body, headers, summary, "2026-11-26T21:55:00.123456Z"))
        return recorder.path


def export_like_the_cli(recording: Path, out: Path, *, scrub: bool, progress: bool) -> int:
    """The same calls `wa-devtunnel export` makes, minus argument parsing (the bar only on a terminal)."""
    events = select(load_recordings([recording]).exchanges, Selection(kind="event"))
    prepare_out_dir(out)
    with ProgressBar("Exporting", len(events)) as bar:
        result = export_fixtures(events, out, scrub=scrub, progress=bar.update if progress else None)
    print(summary_line(len(result.fixtures), out, result.scrubbed, result.keep_text))
    return len(result.fixtures)


def baseline(recording: Path, out: Path) -> int:
    """The least an exporter must do: parse each line, write each body."""
    out.mkdir(parents=True, exist_ok=True)
    count = 0
    with open(recording, "rb") as lines:
        for count, line in enumerate(lines, start=1):
            record = json.loads(line)
            (out / f"{count}.json").write_bytes(record["request"]["body"].encode("utf-8"))
    return count


def _timed(action: Callable[[], int]) -> tuple[float, int]:
    started = time.perf_counter()
    count = action()
    return time.perf_counter() - started, count


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--events", type=int, default=10_000)
    parser.add_argument("--customers", type=int, default=500)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as temp:
        root = Path(temp)
        started = time.perf_counter()
        recording = write_recording(root / "recordings", args.events, args.customers)
        size = recording.stat().st_size / 1024 / 1024
        print(f"recording: {args.events:,} events, {size:.1f} MiB, written in {time.perf_counter() - started:.2f} s")
        scrubbed_s, scrubbed_n = _timed(
            lambda: export_like_the_cli(recording, root / "scrubbed", scrub=True, progress=True)
        )
        raw_s, raw_n = _timed(lambda: export_like_the_cli(recording, root / "raw", scrub=False, progress=False))
        base_s, base_n = _timed(lambda: baseline(recording, root / "baseline"))
        print(f"scrubbed export: {scrubbed_s:.2f} s ({scrubbed_n / scrubbed_s:,.0f} events/s)")
        print(f"no-scrub export: {raw_s:.2f} s ({raw_n / raw_s:,.0f} events/s)")
        print(f"baseline (parse + write): {base_s:.2f} s ({base_n / base_s:,.0f} events/s)")
        print(f"ratio scrubbed/baseline: {scrubbed_s / base_s:.1f}x, no-scrub/baseline: {raw_s / base_s:.1f}x")
        everything = b"".join(p.read_bytes() for p in (root / "scrubbed").iterdir())
        leaked = [c for c in map(_customer, range(args.customers)) if c.encode() in everything]
        ok = scrubbed_n == raw_n == base_n == args.events and not leaked
        print("checks:", "PASS" if ok else f"FAIL (fixtures {scrubbed_n}/{raw_n}/{base_n}, leaked {leaked[:3]})")
        return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
