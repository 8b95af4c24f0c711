"""The real CLI under SIGKILL mid-burst: every acknowledged webhook is on disk, byte for byte.

DESIGN.md: each exchange is "appended and flushed before the HTTP response is sent (nothing
acknowledged is ever lost, even on kill -9)". Here a child `python -m wa_devtunnel` receives a
concurrent burst of signed deliveries and is SIGKILLed halfway; the file must still hold every
request that was answered, with a signature that verifies over the bytes read back.
"""

from __future__ import annotations

import asyncio
import hashlib
import hmac
import json
import signal
from pathlib import Path
from typing import Any

import aiohttp
import pytest

from tests.support.cli_process import APP_SECRET, CliProcess, running_cli
from wa_devtunnel.engine.instance import instance_path
from wa_devtunnel.engine.recording import read_recording, request_body
from wa_devtunnel.rules.samples import payloads as samples

BURST = 300
CONCURRENCY = 20
KILL_AFTER = 150


def independent_signature(body: bytes) -> str:
    """What Meta puts in X-Hub-Signature-256, computed without the code under test."""
    return "sha256=" + hmac.new(APP_SECRET.encode(), body, hashlib.sha256).hexdigest()


def burst_body(n: int) -> bytes:
    """Unique, varied, Meta-shaped bodies: escaped unicode, emoji pairs, \\/, statuses, batches."""
    wamid = f"wamid.burst{n:05d}"
    variant = n % 6
    if variant == 0:
        text = f'#{n} Größe? 😮 https://shop.example/a/b \\ "quoted" \u2028 end'
        return samples.text_message_payload(text=text, message_id=wamid)
    if variant == 1:
        state = ("sent", "delivered", "read", "failed")[n % 4]
        change = samples.messages_change(statuses=[samples.status(state, message_id=wamid)])
        return samples.meta_json(samples.envelope([change]))
    if variant == 2:
        batch = samples.envelope(
            [
                samples.messages_change(
                    messages=[
                        samples.text_message(f"batch {n} ✅ / ok", message_id=wamid),
                        samples.reaction_message("\U0001f44d", message_id=wamid + "r"),
                    ]
                ),
                samples.messages_change(statuses=[samples.status("read", message_id=wamid + "s")]),
            ]
        )
        return samples.meta_json(batch)
    if variant == 3:
        # Not Meta's escaping: raw UTF-8 with unescaped slashes must survive just as well.
        message = samples.text_message(f"raw {n} 日本語 🎉 a/b", message_id=wamid)
        document = samples.envelope([samples.messages_change(messages=[message])])
        return json.dumps(document, ensure_ascii=False, separators=(",", ":")).encode("utf-8")
    if variant == 4:
        image = samples.image_message(f"caption {n} \\/ é", message_id=wamid)
        return samples.meta_json(samples.envelope([samples.messages_change(messages=[image])]))
    update = samples.template_status_update(name=f"order_{n}", event="REJECTED", reason="ABUSIVE")
    return samples.meta_json(samples.envelope([update]))


def headers_for(body: bytes) -> dict[str, str]:
    return {
        "Content-Type": "application/json",
        "User-Agent": "facebookexternalua",
        "X-Hub-Signature-256": independent_signature(body),
    }


async def fire_burst_and_kill(cli: CliProcess, bodies: list[bytes]) -> dict[bytes, int]:
    """POST everything with bounded concurrency; SIGKILL the CLI once KILL_AFTER answers arrived."""
    answered: dict[bytes, int] = {}
    gate = asyncio.Semaphore(CONCURRENCY)
    timeout = aiohttp.ClientTimeout(total=15)

    async def post(session: aiohttp.ClientSession, body: bytes) -> None:
        async with gate:
            try:
                async with session.post(cli.callback_url, data=body, headers=headers_for(body)) as response:
                    await response.read()
                    status = response.status
            except (TimeoutError, aiohttp.ClientError, ConnectionError):
                return
            answered[body] = status
            if len(answered) == KILL_AFTER:
                cli.kill9()

    connector = aiohttp.TCPConnector(limit=CONCURRENCY, force_close=False)
    async with aiohttp.ClientSession(connector=connector, timeout=timeout) as session:
        await asyncio.gather(*(post(session, body) for body in bodies))
    return answered


def header(record: dict[str, Any], name: str) -> str | None:
    for key, value in record["request"]["headers"]:
        if key.lower() == name.lower():
            return value
    return None


async def test_sigkill_mid_burst_loses_nothing_that_was_acknowledged(tmp_path: Path) -> None:
    bodies = [burst_body(n) for n in range(BURST)]
    assert len(set(bodies)) == BURST
    assert any(b"\\ud83d\\ude2e" in b and b"\\/" in b and b"\\u00f6" in b for b in bodies)

    with running_cli(tmp_path) as cli:
        answered = await fire_burst_and_kill(cli, bodies)
        returncode = cli.proc.wait(timeout=10)
        recording = cli.recording()

    assert returncode == -signal.SIGKILL
    assert KILL_AFTER <= len(answered) < BURST, "the kill must land in the middle of the burst"
    assert set(answered.values()) == {200}

    read = read_recording(recording)
    assert len(read.problems) <= 1, read.problems
    if read.problems:
        assert read.problems[0].endswith("truncated last line skipped"), read.problems

    seqs = [record["seq"] for record in read.records]
    assert len(seqs) == len(set(seqs)), "seq numbers must be unique"
    assert len({record["id"] for record in read.records}) == len(read.records)

    by_body = {request_body(record["request"]): record for record in read.records}
    missing = [body for body in answered if body not in by_body]
    assert not missing, f"{len(missing)} acknowledged deliveries are not in the recording"
    for body, status in answered.items():
        record = by_body[body]
        stored = request_body(record["request"])
        assert stored == body
        assert header(record, "X-Hub-Signature-256") == independent_signature(stored)
        assert record["signature"] == "valid"
        assert record["response"]["status"] == status
        assert record["kind"] == "event"
    assert recording.stat().st_mode & 0o777 == 0o600


def send_one_event(cli: CliProcess) -> bytes:
    body = samples.text_message_payload(text="clean stop ✓ a/b")

    async def deliver() -> int:
        async with (
            aiohttp.ClientSession() as session,
            session.post(cli.callback_url, data=body, headers=headers_for(body)) as response,
        ):
            await response.read()
            return response.status

    assert asyncio.run(deliver()) == 200
    return body


@pytest.mark.parametrize(
    "signum", [signal.SIGTERM, signal.SIGINT, signal.SIGHUP], ids=["SIGTERM", "SIGINT", "SIGHUP"]
)
def test_signal_stops_cleanly_and_keeps_the_recording(tmp_path: Path, signum: int) -> None:
    """SIGHUP (the terminal closed) is a clean stop too: recording closed, instance file removed."""
    with running_cli(tmp_path) as cli:
        assert instance_path(cli.recordings_dir).exists()
        body = send_one_event(cli)
        assert cli.stop(signum, timeout=5) == 0
        recording = cli.recording()
        stderr = cli.stderr()

    assert not instance_path(cli.recordings_dir).exists()

    assert "Traceback" not in stderr
    assert str(recording.name) in stderr
    assert "Recording" in stderr
    read = read_recording(recording)
    assert read.problems == ()
    (record,) = read.records
    assert request_body(record["request"]) == body
    assert record["signature"] == "valid"
    assert record["response"]["status"] == 200
