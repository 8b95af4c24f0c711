"""What every benchmark shares: this checkout on sys.path, the secrets, signed headers, child processes, checks.

Only the standard library at module level: tui_burst's server processes import this module too, and
anything imported here would inflate the RSS it measures. wa_devtunnel is imported where it is used.
"""

from __future__ import annotations

import contextlib
import hashlib
import hmac
import sys
import time
from collections import Counter
from multiprocessing.connection import Connection
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:  # run as a script from anywhere, without installing the package
    sys.path.insert(0, str(ROOT))

APP_SECRET = "bench-app-secret-0123456789abcdef"
VERIFY_TOKEN = "wa-bench-verify-token"
HOST = "127.0.0.1"
WEBHOOK_PATH = "/webhook/whatsapp"
START_TIMEOUT = 30.0


def signature(body: bytes, secret: str = APP_SECRET) -> str:
    """X-Hub-Signature-256 exactly as Meta computes it (HMAC-SHA256 of the raw body)."""
    return "sha256=" + hmac.new(secret.encode(), body, hashlib.sha256).hexdigest()


def signed_headers(body: bytes, secret: str = APP_SECRET) -> dict[str, str]:
    """What Meta's webhook delivery carries: JSON, its user agent, and the signature of the raw body."""
    return {
        "Content-Type": "application/json",
        "User-Agent": "facebookexternalua",
        "X-Hub-Signature-256": signature(body, secret),
    }


def quantile(values: list[float], q: float) -> float:
    """The q-quantile of already sorted values (nan when there are none)."""
    if not values:
        return float("nan")
    return values[min(len(values) - 1, int(q * len(values)))]


class Child:
    """A child process and its end of the control pipe: ask, wait for the answer, finish."""

    def __init__(self, name: str, process: Any, conn: Connection) -> None:
        self.name = name
        self.process = process
        self.conn = conn

    def send(self, message: tuple[Any, ...]) -> None:
        self.conn.send(message)

    def ask(self, message: tuple[Any, ...], timeout: float = START_TIMEOUT) -> tuple[Any, ...]:
        self.conn.send(message)
        return self.receive(timeout)

    def receive(self, timeout: float = START_TIMEOUT) -> tuple[Any, ...]:
        """The next reply; a child that died or stays silent past `timeout` is an error, not a hang."""
        deadline = time.monotonic() + timeout
        while not self.conn.poll(0.2):
            if not self.process.is_alive():
                raise RuntimeError(f"{self.name} exited with {self.process.exitcode}")
            if time.monotonic() > deadline:
                raise RuntimeError(f"{self.name}: no answer within {timeout:.0f}s")
        reply = self.conn.recv()
        if reply[0] == "error":
            raise RuntimeError(f"{self.name} failed: {reply[1]}")
        return reply

    def finish(self, message: tuple[Any, ...] | None = None) -> tuple[Any, ...] | None:
        """Send a last message (when alive), then make sure the process is gone."""
        reply = None
        if message is not None and self.process.is_alive():
            with contextlib.suppress(OSError, RuntimeError, EOFError):
                reply = self.ask(message)
        self.process.join(15)
        if self.process.is_alive():
            self.process.terminate()
            self.process.join(5)
        return reply

    def close(self) -> None:
        self.finish()


def start_child(ctx: Any, name: str, target: Any, *args: Any) -> Child:
    """target(conn, *args) in a new process of the given multiprocessing context."""
    parent_end, child_end = ctx.Pipe()
    process = ctx.Process(target=target, args=(child_end, *args), name=name, daemon=True)
    process.start()
    child_end.close()
    return Child(name, process, parent_end)


def check_recording(path: Path, expected: int) -> tuple[bool, list[str]]:
    """One intact line per request: each a verified (valid signature), answered (200) event, seq 1..N."""
    from wa_devtunnel.engine.recording import read_recording  # here: see the module docstring

    read = read_recording(path)
    records = read.records
    kinds = Counter(r.get("kind") for r in records)
    signatures = Counter(r.get("signature") for r in records)
    statuses = Counter((r.get("response") or {}).get("status") for r in records)
    contiguous = [r.get("seq") for r in records] == list(range(1, expected + 1))
    ok = (
        len(records) == expected
        and not read.problems
        and kinds == Counter({"event": expected})
        and signatures == Counter({"valid": expected})
        and statuses == Counter({200: expected})
        and contiguous
    )
    lines = [
        f"recording     {path}",
        f"lines         {len(records)} (expected {expected}), damaged {len(read.problems)}",
        f"kinds         {dict(kinds)}",
        f"signatures    {dict(signatures)}",
        f"statuses      {dict(statuses)}",
        f"seq 1..N      {'contiguous' if contiguous else 'GAPS'}",
    ]
    return ok, lines


def event_record(
    seq: int, body: bytes, headers: list[list[str]], summary: dict[str, Any], received_at: str
) -> dict[str, Any]:
    """A version-1 record of one signed event answered 200, as the receiver writes it (for sessions built offline)."""
    from wa_devtunnel.engine.exchange import build_record  # here: see the module docstring

    return build_record(
        seq=seq,
        received_at=received_at,
        kind="event",
        method="POST",
        path=WEBHOOK_PATH,
        query="",
        headers=headers,
        body=body,
        status=200,
        response_body="EVENT_RECEIVED",
        signature="valid",
        extra={"summary": summary, "origin": "meta"},
    )
