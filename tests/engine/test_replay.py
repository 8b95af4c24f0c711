"""`wa-devtunnel replay` (issue 5, part 2) against a real backend app that checks signatures with its own secret.

Recordings are made by the real receiver (Meta-like deliveries through aiohttp), or written with
SessionRecorder + build_record where a test needs exact timestamps. The backend (tests/backend_app.py)
runs on port 0; the CLI runs in a worker thread (it owns its own event loop) or as a child process.
"""

from __future__ import annotations

import asyncio
import json
import os
import re
import signal
import socket
import sys
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from aiohttp import web

from tests.support.backend_app import BackendBehaviour, create_backend_app
from tests.support.cli_process import minimal_env
from tests.support.constants import APP_SECRET, VERIFY_TOKEN
from tests.support.meta_client import MetaLikeSender
from tests.support.receiver_harness import ReceiverTestServer
from wa_devtunnel.cli.main import main
from wa_devtunnel.engine.events import EventBus
from wa_devtunnel.engine.exchange import build_record
from wa_devtunnel.engine.exchange_view import view_from_record
from wa_devtunnel.engine.forwarder import Forwarder
from wa_devtunnel.engine.origin import ORIGIN_HEADER
from wa_devtunnel.engine.receiver import ReceiverConfig, create_receiver_app
from wa_devtunnel.engine.recording import SessionRecorder, read_recording, request_body
from wa_devtunnel.engine.replay.plan import ReplayOptions, SignatureMode, plan_replay
from wa_devtunnel.engine.replay.send import ReplayNotRecorded, TokenBucket, send_plan
from wa_devtunnel.engine.replay.source import ReplayError, Selection, load_recordings, select
from wa_devtunnel.project_state import STATE_DIR_VARIABLE
from wa_devtunnel.rules.decode.payload import decode_payload
from wa_devtunnel.rules.samples import payloads as samples

WEBHOOK = "/webhook/whatsapp"
BACKEND_TOKEN = "backend-verify-token"
OTHER_SECRET = "the-backends-own-secret"
SETTING_PREFIXES = ("WHATSAPP_", "WA_DEVTUNNEL_", "NGROK_", "META_", "PYNGROK_")
TRICKY_TEXT = "Größe? ä 😮 https://shop.example/a/b"
EVENT_SEQS = [2, 3, 4, 5, 6, 7]


def status_body(status: str) -> bytes:
    return samples.meta_json(samples.envelope([samples.messages_change(statuses=[samples.status(status)])]))


# seq 1 is the handshake; these are seq 2..7 in this order.
EVENTS: list[tuple[str, bytes]] = [
    (APP_SECRET, samples.text_message_payload(TRICKY_TEXT, message_id="wamid.TEXT1")),
    (APP_SECRET, samples.meta_json(samples.envelope([samples.messages_change([samples.image_message()])]))),
    (APP_SECRET, status_body("delivered")),
    (APP_SECRET, status_body("failed")),
    ("not-the-app-secret", samples.text_message_payload("wrong key", message_id="wamid.TEXT2")),
    (APP_SECRET, samples.meta_json(samples.envelope([samples.template_status_update()]))),
]


@pytest.fixture(autouse=True)
def workdir(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """No WhatsApp settings from the developer's shell; an empty current directory."""
    for name in list(os.environ):
        if name.startswith(SETTING_PREFIXES):
            monkeypatch.delenv(name)
    monkeypatch.chdir(tmp_path)
    return tmp_path


@pytest.fixture
def recordings(tmp_path: Path) -> Path:
    return tmp_path / "recordings"


@pytest.fixture
async def meta_session(make_receiver: Callable[..., Awaitable[Any]]) -> Path:
    """A session recorded by the real receiver: a handshake, six events, and noise that is never replayed."""
    harness = await make_receiver()
    client = harness.client
    url = str(client.make_url(WEBHOOK))
    assert (await MetaLikeSender(client.session, url, APP_SECRET).handshake(VERIFY_TOKEN)).accepted
    for secret, body in EVENTS:
        assert await MetaLikeSender(client.session, url, secret).deliver(body, attempts=1) == [200]
    async with client.get("/.env") as response:  # seq 8: a scanner, kind "other"
        assert response.status == 404
    selftest = {"Content-Type": "application/json", **harness.origin("selftest")}
    async with client.post(WEBHOOK, data=EVENTS[0][1], headers=selftest) as response:  # seq 9
        assert response.status == 200
    harness.recorder.append({"v": 1, "id": "late", "seq": 10, "kind": "forward_update", "ref": "x", "forward": {}})
    return harness.recorder.path


@dataclass
class Backend:
    """The developer's backend on a real port, plus how many requests it handled at once."""

    behaviour: BackendBehaviour
    url: str
    in_flight: int = 0
    max_in_flight: int = 0
    arrivals: int = 0
    slow_first_s: float = 0.0


@pytest.fixture
async def start_backend(aiohttp_server: Callable[..., Awaitable[Any]]) -> Callable[..., Awaitable[Backend]]:
    async def start(slow_first_s: float = 0.0, **knobs: Any) -> Backend:
        behaviour = BackendBehaviour(**knobs)
        app = create_backend_app(behaviour)
        backend = Backend(behaviour, "", slow_first_s=slow_first_s)

        @web.middleware
        async def track(request: web.Request, handler: Any) -> web.StreamResponse:
            backend.arrivals += 1
            backend.in_flight += 1
            backend.max_in_flight = max(backend.max_in_flight, backend.in_flight)
            try:
                if backend.arrivals == 1 and backend.slow_first_s:
                    await asyncio.sleep(backend.slow_first_s)
                return await handler(request)
            finally:
                backend.in_flight -= 1

        app.middlewares.append(track)
        server = await aiohttp_server(app)
        backend.url = str(server.make_url(WEBHOOK))
        return backend

    return start


async def replay(capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[int, str, str]:
    """The CLI in a worker thread (it runs its own event loop) while the backend serves on ours."""
    code = await asyncio.to_thread(main, ["replay", *argv])
    captured = capsys.readouterr()
    return code, captured.out, captured.err


def recorded_bodies(path: Path) -> dict[int, bytes]:
    return {r["seq"]: request_body(r["request"]) for r in read_recording(path).records if "request" in r}


def replay_files(recordings: Path) -> list[Path]:
    return sorted(recordings.glob("*-replay*.jsonl"))


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


# --------------------------------------------------------------------------- bytes and signatures


async def test_bodies_arrive_byte_identical_and_meta_signatures_verify(
    meta_session: Path, recordings: Path, start_backend: Any, capsys: pytest.CaptureFixture[str]
) -> None:
    backend = await start_backend(app_secret=APP_SECRET)
    code, out, err = await replay(
        capsys, "--to", backend.url, "--signature", "valid", "--recordings-dir", str(recordings)
    )
    assert code == 0, out + err
    bodies = recorded_bodies(meta_session)
    received = backend.behaviour.received
    assert [r.body for r in received] == [bodies[seq] for seq in (2, 3, 4, 5, 7)]
    assert b"\\u00f6" in received[0].body and b"\\ud83d\\ude2e" in received[0].body and b"\\/" in received[0].body
    assert all(r.signature_ok for r in received)
    assert all(r.headers["User-Agent"] == "facebookexternalua" for r in received)
    assert all(r.headers[ORIGIN_HEADER] == "replay" for r in received)
    assert re.search(r"^200\s+5$", out, re.MULTILINE), out
    assert "Result:  5 ok, 0 failed" in out


async def test_an_invalid_recorded_signature_is_rejected_and_listed(
    meta_session: Path, recordings: Path, start_backend: Any, capsys: pytest.CaptureFixture[str]
) -> None:
    backend = await start_backend(app_secret=APP_SECRET)
    code, out, _ = await replay(capsys, "--to", backend.url, "--recordings-dir", str(recordings))
    assert code == 1
    assert [r.signature_ok for r in backend.behaviour.received] == [True, True, True, True, False, True]
    failed = out.split("Failed:")[1]
    six = read_recording(meta_session).records[5]["id"][:12]
    assert re.search(rf"^\s+6\s+{six}\s+event\s+403\s+backend: invalid signature$", failed, re.MULTILINE), out


async def test_resign_with_the_backends_secret_verifies(
    meta_session: Path, recordings: Path, start_backend: Any, capsys: pytest.CaptureFixture[str]
) -> None:
    backend = await start_backend(app_secret=OTHER_SECRET)
    code, _, _ = await replay(capsys, "--to", backend.url, "--recordings-dir", str(recordings), "--no-record")
    assert code == 1, "Meta's signature was made with another secret"
    assert not any(r.signature_ok for r in backend.behaviour.received)
    backend.behaviour.received.clear()

    args = ["--to", backend.url, "--recordings-dir", str(recordings), "--resign", "--app-secret", OTHER_SECRET]
    code, out, err = await replay(capsys, *args)
    assert code == 0, out + err
    received = backend.behaviour.received
    assert len(received) == 6 and all(r.signature_ok for r in received)
    assert [r.body for r in received] == [recorded_bodies(meta_session)[s] for s in EVENT_SEQS]
    assert all("X-Hub-Signature" not in r.headers for r in received), "the stale sha1 must not be sent"
    assert "re-signed" in out


async def test_resign_reads_the_app_secret_from_the_environment(
    meta_session: Path,
    recordings: Path,
    start_backend: Any,
    capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    backend = await start_backend(app_secret=OTHER_SECRET)
    monkeypatch.setenv("WHATSAPP_APP_SECRET", OTHER_SECRET)
    code, out, err = await replay(capsys, "--to", backend.url, "--recordings-dir", str(recordings), "--resign")
    assert code == 0, out + err
    assert all(r.signature_ok for r in backend.behaviour.received)


async def test_resign_without_a_secret_is_a_usage_error(
    meta_session: Path, recordings: Path, start_backend: Any, capsys: pytest.CaptureFixture[str]
) -> None:
    backend = await start_backend()
    code, out, err = await replay(capsys, "--to", backend.url, "--recordings-dir", str(recordings), "--resign")
    assert code == 2 and out == ""
    assert "--app-secret" in err and "WHATSAPP_APP_SECRET" in err
    assert backend.behaviour.received == []
    assert replay_files(recordings) == []


async def test_bad_signature_is_rejected_by_the_backend(
    meta_session: Path, recordings: Path, start_backend: Any, capsys: pytest.CaptureFixture[str]
) -> None:
    backend = await start_backend(app_secret=APP_SECRET)
    args = ["--to", backend.url, "--recordings-dir", str(recordings), "--bad-signature", "--signature", "valid"]
    code, out, _ = await replay(capsys, *args)
    assert code == 0, "a backend that refuses every forged signature passes: usable as a CI check"
    received = backend.behaviour.received
    assert len(received) == 5 and not any(r.signature_ok for r in received)
    assert all(re.fullmatch(r"sha256=[0-9a-f]{64}", r.headers["X-Hub-Signature-256"]) for r in received)
    assert re.search(r"^403\s+5$", out, re.MULTILINE), out
    assert "deliberately wrong" in out
    assert "Result:  5 forged requests, all rejected (403)" in out
    assert "Failed:" not in out and "Not rejected" not in out


@pytest.mark.parametrize(
    ("status", "code", "result"),
    [
        (401, 0, "Result:  5 forged requests, all rejected (401)"),
        (400, 0, "Result:  5 forged requests, all rejected (400)"),
        (200, 1, "Result:  5 forged requests, 5 NOT rejected"),
        (204, 1, "Result:  5 forged requests, 5 NOT rejected"),
        (500, 1, "Result:  5 forged requests, 5 NOT rejected"),
    ],
)
async def test_bad_signature_passes_only_when_every_forgery_gets_a_4xx(
    meta_session: Path,
    recordings: Path,
    start_backend: Any,
    capsys: pytest.CaptureFixture[str],
    status: int,
    code: int,
    result: str,
) -> None:
    """Meta: a backend must refuse a request whose signature does not match. 2xx took it; 5xx did not say no."""
    backend = await start_backend(status=status, reject_bad_signature=False)
    args = ["--to", backend.url, "--recordings-dir", str(recordings), "--bad-signature", "--signature", "valid"]
    exit_code, out, _ = await replay(capsys, *args, "--no-record")
    assert exit_code == code, out
    assert result in out
    if code:
        table = out.split("Not rejected (a wrong signature must be refused):")[1]
        ids = {r["seq"]: r["id"][:12] for r in read_recording(meta_session).records}
        for seq in (2, 3, 4, 5, 7):  # each named by seq and id, with the status it got
            assert re.search(rf"^\s+{seq}\s+{ids[seq]}\s+event\s+{status}\s", table, re.MULTILINE), out
        reason = "accepted a wrong signature" if status < 300 else "a server error, not a rejection"
        assert reason in table


async def test_bad_signature_mixed_answers_and_json(
    meta_session: Path, recordings: Path, start_backend: Any, capsys: pytest.CaptureFixture[str]
) -> None:
    """The forged text message reaches a backend that skips the check for it: only that one is named."""
    backend = await start_backend(app_secret=APP_SECRET)
    args = ["--to", backend.url, "--recordings-dir", str(recordings), "--bad-signature", "--signature", "valid"]
    leaky = await start_backend(reject_bad_signature=False)
    code, out, _ = await replay(capsys, *args, "--json", "--no-record")
    assert code == 0
    assert json.loads(out)["summary"]["forged"] == {"sent": 5, "rejected": {"403": 5}, "not_rejected": 0}
    args[1] = leaky.url
    code, out, _ = await replay(capsys, *args, "--json", "--no-record", "--type", "text")
    assert code == 1
    report = json.loads(out)
    assert report["summary"]["forged"] == {"sent": 1, "rejected": {}, "not_rejected": 1}
    [accepted] = report["results"]
    assert (accepted["seq"], accepted["status"], accepted["ok"]) == (2, 200, False)
    assert accepted["detail"].startswith("accepted a wrong signature (HTTP 200)")


async def test_resign_and_bad_signature_together_is_a_usage_error(
    meta_session: Path, recordings: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    args = ["--to", "http://127.0.0.1:9/", "--recordings-dir", str(recordings), "--resign", "--bad-signature"]
    code, _, err = await replay(capsys, *args)
    assert code == 2 and "--bad-signature" in err


async def test_an_edited_body_is_always_resigned(meta_session: Path, start_backend: Any) -> None:
    backend = await start_backend(app_secret=OTHER_SECRET)
    exchange = select(load_recordings([meta_session]).exchanges, Selection(seqs=((2, 2),)))[0]
    edited = {exchange.view.id: exchange.body.replace(b"wamid.TEXT1", b"wamid.EDITED")}
    with pytest.raises(ReplayError, match="App Secret"):
        plan_replay([exchange], ReplayOptions(backend.url), edited)
    options = ReplayOptions(backend.url, app_secret=OTHER_SECRET)
    plan = plan_replay([exchange], options, edited)
    assert plan[0].signature == "resigned"
    [result] = await send_plan(plan, options)
    assert result.ok
    assert backend.behaviour.received[0].body == edited[exchange.view.id]
    assert backend.behaviour.received[0].signature_ok


# --------------------------------------------------------------------------- what the backend answers


@pytest.mark.parametrize(("status", "expected_code"), [(500, 1), (404, 1), (202, 0)])
async def test_backend_status_is_reported(
    meta_session: Path,
    recordings: Path,
    start_backend: Any,
    capsys: pytest.CaptureFixture[str],
    status: int,
    expected_code: int,
) -> None:
    backend = await start_backend(status=status, reject_bad_signature=False)
    code, out, _ = await replay(capsys, "--to", backend.url, "--recordings-dir", str(recordings), "--json")
    assert code == expected_code
    report = json.loads(out)
    assert [r["status"] for r in report["results"]] == [status] * 6
    assert report["summary"]["statuses"] == {str(status): 6}
    assert all(r["body"] == f"backend says {status}" for r in report["results"])

    code, out, _ = await replay(capsys, "--to", backend.url, "--recordings-dir", str(recordings), "--no-record")
    if expected_code:
        rows = re.findall(rf"^\s+(\d+)\s+[0-9a-f]{{12}}\s+event\s+{status}\s+backend says {status}$", out, re.MULTILINE)
        assert [int(seq) for seq in rows] == EVENT_SEQS, out
    else:
        assert "Failed:" not in out


async def test_backend_down_is_a_recorded_failure(
    meta_session: Path, recordings: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    url = f"http://127.0.0.1:{free_port()}{WEBHOOK}"
    code, out, _ = await replay(capsys, "--to", url, "--recordings-dir", str(recordings), "--last", "2")
    assert code == 1
    assert re.search(r"^error\s+2$", out, re.MULTILINE), out
    assert out.count("backend unreachable") == 2
    [path] = replay_files(recordings)
    records = read_recording(path).records
    assert [r["response"]["status"] for r in records] == [0, 0]
    assert all(r["forward"]["error"].startswith("backend unreachable") for r in records)


async def test_slow_backend_times_out(
    meta_session: Path, recordings: Path, start_backend: Any, capsys: pytest.CaptureFixture[str]
) -> None:
    backend = await start_backend(app_secret=APP_SECRET, delay_s=3.0)
    args = ["--to", backend.url, "--recordings-dir", str(recordings), "--last", "1", "--timeout", "0.3"]
    code, out, _ = await replay(capsys, *args)
    assert code == 1
    assert "did not answer within 0.3 s" in out
    [record] = read_recording(replay_files(recordings)[0]).records
    assert record["forward"]["error"] == "backend did not answer within 0.3 s"


# --------------------------------------------------------------------------- selection


async def dry_run_seqs(capsys: pytest.CaptureFixture[str], recordings: Path, *argv: str) -> list[int]:
    code, out, err = await replay(
        capsys, "--to", "http://127.0.0.1:9/", "--recordings-dir", str(recordings), "--dry-run", "--json", *argv
    )
    assert code == 0, err
    return [item["seq"] for item in json.loads(out)["plan"]]


@pytest.mark.parametrize(
    ("argv", "seqs"),
    [
        ([], EVENT_SEQS),
        (["--kind", "verify", "--verify-token", "t"], [1]),
        (["--kind", "all", "--verify-token", "t"], [1, *EVENT_SEQS]),
        (["--type", "text"], [2, 6]),
        (["--type", "IMAGE"], [3]),
        (["--status", "failed"], [5]),
        (["--status", "delivered,failed"], [4, 5]),
        (["--status", "delivered", "--status", "failed"], [4, 5]),
        (["--field", "message_template_status_update"], [7]),
        (["--field", "messages", "--type", "text", "--signature", "valid"], [2]),
        (["--signature", "invalid"], [6]),
        (["--seq", "3-4"], [3, 4]),
        (["--seq", "1", "--verify-token", "t"], [1]),
        (["--seq", "1", "--kind", "event"], []),
        (["--seq", "2,5-6,9-10"], [2, 5, 6]),
        (["--last", "2"], [6, 7]),
        (["--type", "text", "--last", "1"], [6]),
        (["--origin", "meta,local"], EVENT_SEQS),  # Meta's requests, straight to the receiver (no tunnel here)
    ],
)
async def test_selection_filters(
    meta_session: Path, recordings: Path, capsys: pytest.CaptureFixture[str], argv: list[str], seqs: list[int]
) -> None:
    if not seqs:
        code, _, err = await replay(capsys, "--to", "http://127.0.0.1:9/", "--recordings-dir", str(recordings), *argv)
        assert code == 2 and "no exchanges match" in err
        return
    assert await dry_run_seqs(capsys, recordings, *argv) == seqs


async def test_selection_by_id_prefix(meta_session: Path, recordings: Path, capsys: pytest.CaptureFixture[str]) -> None:
    records = {r["seq"]: r for r in read_recording(meta_session).records}
    prefix = records[5]["id"][:10]
    assert await dry_run_seqs(capsys, recordings, "--id", prefix) == [5]
    assert await dry_run_seqs(capsys, recordings, "--id", f"{records[3]['id']},{prefix}") == [3, 5]


async def test_since_and_until(recordings: Path, capsys: pytest.CaptureFixture[str]) -> None:
    with SessionRecorder(recordings) as recorder:
        for minute in range(5):
            body = samples.text_message_payload(f"minute {minute}", message_id=f"wamid.M{minute}")
            recorder.append(
                build_record(
                    seq=recorder.next_seq(),
                    received_at=f"2026-11-26T21:0{minute}:00.000000Z",
                    kind="event",
                    method="POST",
                    path=WEBHOOK,
                    query="",
                    headers=[["Content-Type", "application/json"]],
                    body=body,
                    status=200,
                    response_body="EVENT_RECEIVED",
                    signature="unchecked",
                    extra={"summary": decode_payload(body).to_dict(), "origin": "meta"},
                )
            )
    assert await dry_run_seqs(capsys, recordings, "--since", "2026-11-26T21:02:00Z") == [3, 4, 5]
    assert await dry_run_seqs(capsys, recordings, "--until", "2026-11-26 21:01") == [1, 2]
    since_until = ["--since", "2026-11-26T22:01:00+01:00", "--until", "2026-11-26T21:03:00"]
    assert await dry_run_seqs(capsys, recordings, *since_until) == [2, 3, 4]
    code, _, err = await replay(capsys, "--to", "http://a/", "--recordings-dir", str(recordings), "--since", "noon")
    assert code == 2 and "--since" in err and "ISO" in err


# --------------------------------------------------------------------------- order, concurrency, rate


async def test_order_is_preserved_one_at_a_time(
    meta_session: Path, recordings: Path, start_backend: Any, capsys: pytest.CaptureFixture[str]
) -> None:
    backend = await start_backend(app_secret=APP_SECRET, delay_s=0.02, reject_bad_signature=False)
    code, _, _ = await replay(capsys, "--to", backend.url, "--recordings-dir", str(recordings))
    assert code == 0
    bodies = recorded_bodies(meta_session)
    assert [r.body for r in backend.behaviour.received] == [bodies[seq] for seq in EVENT_SEQS]
    assert backend.max_in_flight == 1


async def test_concurrency_reports_results_in_recording_order(
    meta_session: Path, recordings: Path, start_backend: Any, capsys: pytest.CaptureFixture[str]
) -> None:
    backend = await start_backend(slow_first_s=0.5, delay_s=0.02, reject_bad_signature=False)
    args = ["--to", backend.url, "--recordings-dir", str(recordings), "--concurrency", "4", "--json"]
    code, out, _ = await replay(capsys, *args)
    assert code == 0
    assert backend.max_in_flight >= 2
    assert [r["seq"] for r in json.loads(out)["results"]] == EVENT_SEQS
    # The file holds them as they completed: the slow first one is not first.
    written = [r["replay_of"]["seq"] for r in read_recording(replay_files(recordings)[0]).records]
    assert sorted(written) == EVENT_SEQS and written[0] != 2


async def test_rate_limited_replay_sends_everything_in_order(
    meta_session: Path, recordings: Path, start_backend: Any, capsys: pytest.CaptureFixture[str]
) -> None:
    backend = await start_backend(reject_bad_signature=False)
    code, out, _ = await replay(capsys, "--to", backend.url, "--recordings-dir", str(recordings), "--rate", "40")
    assert code == 0, out
    bodies = recorded_bodies(meta_session)
    assert [r.body for r in backend.behaviour.received] == [bodies[seq] for seq in EVENT_SEQS]


async def test_token_bucket_paces_to_the_rate() -> None:
    now = [100.0]
    sleeps: list[float] = []

    async def fake_sleep(seconds: float) -> None:
        sleeps.append(round(seconds, 6))
        now[0] += seconds

    bucket = TokenBucket(4.0, burst=2, clock=lambda: now[0], sleep=fake_sleep)
    for _ in range(5):
        await bucket.take()
    assert sleeps == [0.25, 0.25, 0.25], "two at once (the burst), then one every 1/4 s"
    now[0] += 10  # idle: the bucket refills only up to the burst
    await bucket.take()
    await bucket.take()
    await bucket.take()
    assert sleeps[3:] == [0.25]


@pytest.mark.parametrize("value", ["0", "-1", "x"])
async def test_bad_pacing_values_are_usage_errors(
    meta_session: Path, recordings: Path, capsys: pytest.CaptureFixture[str], value: str
) -> None:
    for flag in ("--concurrency", "--rate", "--timeout", "--last"):
        code, out, err = await replay(
            capsys, "--to", "http://127.0.0.1:9/", "--recordings-dir", str(recordings), flag, value
        )
        assert (code, out) == (2, ""), flag
        assert flag in err and "Traceback" not in err


# --------------------------------------------------------------------------- dry run, handshakes


async def test_dry_run_sends_nothing_and_records_nothing(
    meta_session: Path, recordings: Path, start_backend: Any, capsys: pytest.CaptureFixture[str]
) -> None:
    backend = await start_backend()
    code, out, _ = await replay(capsys, "--to", backend.url, "--recordings-dir", str(recordings), "--dry-run")
    assert code == 0
    assert backend.behaviour.received == [] and backend.arrivals == 0
    assert replay_files(recordings) == []
    assert out.startswith(f"Dry run: 6 requests would be sent to {backend.url} (nothing sent)")
    rows = [line.split() for line in out.splitlines() if re.match(r"^\s*\d+\s+POST", line)]
    assert [(int(r[0]), r[1], r[2], r[3], r[4]) for r in rows] == [
        (seq, "POST", "event", "original", backend.url) for seq in EVENT_SEQS
    ]
    assert TRICKY_TEXT in out, "the headline says what each event is"


async def test_handshake_replay_uses_the_targets_token_and_a_fresh_challenge(
    meta_session: Path, recordings: Path, start_backend: Any, capsys: pytest.CaptureFixture[str]
) -> None:
    backend = await start_backend()
    args = ["--to", backend.url, "--recordings-dir", str(recordings), "--kind", "verify"]
    code, out, err = await replay(capsys, *args, "--verify-token", BACKEND_TOKEN)
    assert code == 0, out + err
    code, _, _ = await replay(capsys, *args, "--verify-token", BACKEND_TOKEN)
    assert code == 0
    first, second = backend.behaviour.received
    assert first.method == "GET" and first.body == b""
    challenges = [re.search(r"hub\.challenge=(\d+)", r.path_qs).group(1) for r in (first, second)]  # type: ignore[union-attr]
    assert challenges[0] != challenges[1]
    assert f"hub.verify_token={BACKEND_TOKEN}" in first.path_qs and "hub.mode=subscribe" in first.path_qs
    records = [read_recording(path).records[0] for path in replay_files(recordings)]
    assert sorted(r["response"]["body"] for r in records) == sorted(challenges)
    for record in records:
        assert record["kind"] == "verify" and record["verify"] == {"ok": True, "reason": "challenge echoed"}
        assert BACKEND_TOKEN not in json.dumps(record), "the verify token is redacted in recordings"

    code, out, _ = await replay(capsys, *args, "--verify-token", "not-the-token", "--no-record")
    assert code == 1
    assert re.search(r"^\s+1\s+[0-9a-f]{12}\s+verify\s+403\s+backend: bad verify token$", out, re.MULTILINE), out


async def test_handshake_replay_without_a_token_is_a_usage_error(
    meta_session: Path,
    recordings: Path,
    start_backend: Any,
    capsys: pytest.CaptureFixture[str],
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    blocked = tmp_path / "state"
    (blocked / "state.json").mkdir(parents=True)  # no token can be kept: only a temporary one, which is unknown
    monkeypatch.setenv(STATE_DIR_VARIABLE, str(blocked))
    backend = await start_backend()
    code, out, err = await replay(capsys, "--to", backend.url, "--recordings-dir", str(recordings), "--kind", "all")
    assert (code, out) == (2, "")
    assert "--verify-token" in err and "--kind event" in err
    assert backend.arrivals == 0


async def test_a_handshake_answer_that_is_not_the_challenge_fails(
    meta_session: Path, recordings: Path, aiohttp_server: Any, capsys: pytest.CaptureFixture[str]
) -> None:
    async def json_challenge(request: web.Request) -> web.Response:
        return web.json_response(request.query["hub.challenge"])

    app = web.Application()
    app.router.add_get(WEBHOOK, json_challenge)
    server = await aiohttp_server(app)
    args = ["--to", str(server.make_url(WEBHOOK)), "--recordings-dir", str(recordings), "--seq", "1"]
    code, out, _ = await replay(capsys, *args, "--verify-token", "t", "--json")
    assert code == 1
    [result] = json.loads(out)["results"]
    assert result["status"] == 200 and not result["ok"]
    assert "JSON-encoded" in result["detail"]


# --------------------------------------------------------------------------- sources, usage, recording


async def test_target_defaults_to_the_forward_target(
    meta_session: Path,
    recordings: Path,
    start_backend: Any,
    capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    code, out, err = await replay(capsys, "--recordings-dir", str(recordings))
    assert (code, out) == (2, "")
    assert "--to URL" in err and "WA_DEVTUNNEL_FORWARD_TO" in err
    backend = await start_backend(reject_bad_signature=False)
    monkeypatch.setenv("WA_DEVTUNNEL_FORWARD_TO", backend.url)
    code, _, _ = await replay(capsys, "--recordings-dir", str(recordings))
    assert code == 0 and len(backend.behaviour.received) == 6


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (["--to", "ftp://backend"], "--to"),
        (["missing.jsonl"], "no recording missing.jsonl"),
        (["."], "no .jsonl session in ."),
        (["--seq", "9-3"], "ends before it starts"),
        (["--seq", "x"], "is not a sequence number"),
        (["--kind", "other"], "--kind"),
        (["--type", "video"], "no exchanges match --type video: this session ("),
    ],
)
async def test_usage_errors_exit_2_with_a_clear_message(
    meta_session: Path, recordings: Path, capsys: pytest.CaptureFixture[str], argv: list[str], message: str
) -> None:
    if "--to" not in argv:
        argv = ["--to", "http://127.0.0.1:9/", *argv]
    code, out, err = await replay(capsys, "--recordings-dir", str(recordings), *argv)
    assert (code, out) == (2, "")
    assert message in err and "Traceback" not in err


async def test_no_recordings_at_all(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    code, _, err = await replay(capsys, "--to", "http://127.0.0.1:9/", "--recordings-dir", str(tmp_path / "none"))
    assert code == 2 and "no recordings in" in err and "wa-devtunnel sessions" in err


async def test_replay_session_is_a_v1_recording_marked_as_replay(
    meta_session: Path, recordings: Path, start_backend: Any, capsys: pytest.CaptureFixture[str]
) -> None:
    backend = await start_backend(app_secret=APP_SECRET)
    code, out, _ = await replay(capsys, "--to", backend.url, "--recordings-dir", str(recordings), "--type", "text")
    assert code == 1  # seq 6 carries a bad signature
    [path] = replay_files(recordings)
    assert re.fullmatch(r"\d{8}-\d{6}-replay\.jsonl", path.name)
    assert f"Recorded to recordings/{path.name}" in out, "shown relative to the current directory"
    assert oct(path.stat().st_mode & 0o777) == "0o600"
    read = read_recording(path)
    assert read.problems == ()
    originals = {r["seq"]: r for r in read_recording(meta_session).records}
    for record, seq, status in zip(read.records, (2, 6), (200, 403), strict=True):
        assert record["v"] == 1 and record["kind"] == "event" and record["origin"] == "replay"
        assert record["replay_of"] == {"session": meta_session.name, "id": originals[seq]["id"], "seq": seq}
        assert request_body(record["request"]) == request_body(originals[seq]["request"])
        assert record["request"]["path"] == WEBHOOK
        assert [ORIGIN_HEADER, "replay"] in record["request"]["headers"]
        assert record["response"] == {
            "status": status,
            "body": f"backend says {status}" if status == 200 else "backend: invalid signature",
        }
        assert record["summary"] == originals[seq]["summary"]
        view = view_from_record(record)
        assert (view.origin, view.forward_status) == ("replay", status)
    assert [r["seq"] for r in read.records] == [1, 2]


async def test_default_source_is_the_latest_session_not_a_replay(
    meta_session: Path, recordings: Path, start_backend: Any, capsys: pytest.CaptureFixture[str]
) -> None:
    backend = await start_backend(reject_bad_signature=False)
    for _ in range(2):
        code, out, _ = await replay(capsys, "--to", backend.url, "--recordings-dir", str(recordings))
        assert code == 0 and f"from {meta_session.name} " in out
    assert len(replay_files(recordings)) == 2
    assert len(backend.behaviour.received) == 12


async def test_a_session_named_as_sessions_lists_it(
    meta_session: Path, recordings: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert await dry_run_seqs(capsys, recordings, meta_session.name, "--type", "image") == [3]


async def test_several_recordings_and_a_damaged_line(
    meta_session: Path, recordings: Path, start_backend: Any, capsys: pytest.CaptureFixture[str]
) -> None:
    backend = await start_backend(reject_bad_signature=False)
    damaged = recordings / "copy.jsonl"
    damaged.write_bytes(meta_session.read_bytes() + b'{"v":1,"id":"cut')
    argv = [str(meta_session), str(damaged), "--to", backend.url, "--recordings-dir", str(recordings), "--no-record"]
    code, out, err = await replay(capsys, *argv, "--type", "image")
    assert code == 0, out + err
    assert "warning: copy.jsonl: line 11: truncated last line skipped" in err
    assert len(backend.behaviour.received) == 2
    assert "Replayed 2 exchanges from " in out and "copy.jsonl" in out
    assert replay_files(recordings) == []


async def test_replay_through_a_running_receiver_reaches_the_backend(
    meta_session: Path, start_backend: Any, aiohttp_client: Any, tmp_path: Path
) -> None:
    """The README tip: --to our own receiver, which records it as a replay and forwards it on."""
    backend = await start_backend(app_secret=APP_SECRET)
    config = ReceiverConfig(
        path=WEBHOOK, handshake_tokens=(("default", VERIFY_TOKEN),), signature_secrets=(("default", APP_SECRET),)
    )
    recorder = SessionRecorder(tmp_path / "live")
    forwarder = Forwarder(backend.url)
    bus = EventBus()
    app = create_receiver_app(config, bus, recorder, forwarder)
    server = (await aiohttp_client(ReceiverTestServer(app, bus, forwarding=True))).server
    try:
        exchanges = select(load_recordings([meta_session]).exchanges, Selection(signatures=("valid",)))
        options = ReplayOptions(
            str(server.make_url(WEBHOOK)), signature=SignatureMode.ORIGINAL, origin_key=config.origin_key
        )
        results = await send_plan(plan_replay(exchanges, options), options)
    finally:
        await forwarder.close()
        recorder.close()
    assert [r.ok for r in results] == [True] * 5
    assert [r.body for r in backend.behaviour.received] == [e.body for e in exchanges]
    assert all(r.signature_ok for r in backend.behaviour.received)
    live = read_recording(recorder.path).records
    assert {r["origin"] for r in live} == {"replay"}
    assert {r["signature"] for r in live} == {"valid"}


async def test_hop_by_hop_and_redacted_headers_are_not_replayed(recordings: Path, start_backend: Any) -> None:
    body = samples.text_message_payload("headers")
    headers = [
        ["Host", "abc.ngrok-free.app"],
        ["User-Agent", "facebookexternalua"],
        ["Connection", "keep-alive"],
        ["Content-Length", "999"],
        ["Authorization", "REDACTED"],
        ["X-Custom", "kept"],
        ["Content-Type", "application/json"],
    ]
    with SessionRecorder(recordings) as recorder:
        recorder.append(
            build_record(
                seq=1,
                received_at="2026-11-26T21:00:00.000000Z",
                kind="event",
                method="POST",
                path=WEBHOOK,
                query="",
                headers=headers,
                body=body,
                status=200,
                response_body="EVENT_RECEIVED",
                signature="unchecked",
                extra={},
            )
        )
    backend = await start_backend(reject_bad_signature=False)
    options = ReplayOptions(backend.url)
    plan = plan_replay(load_recordings([recorder.path]).exchanges, options)
    assert [name for name, _ in plan[0].headers] == ["User-Agent", "X-Custom", "Content-Type", ORIGIN_HEADER]
    assert plan[0].signature == "absent"
    [result] = await send_plan(plan, options)
    assert result.ok
    seen = backend.behaviour.received[0].headers
    assert seen["X-Custom"] == "kept" and "Authorization" not in seen
    assert seen["Content-Length"] == str(len(body)) and seen["Host"] != "abc.ngrok-free.app"


async def test_python_dash_m_replay_end_to_end(
    meta_session: Path, recordings: Path, start_backend: Any, tmp_path: Path
) -> None:
    backend = await start_backend(app_secret=APP_SECRET)
    process = await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "wa_devtunnel",
        "replay",
        "--to",
        backend.url,
        "--recordings-dir",
        str(recordings),
        "--signature",
        "valid",
        "--concurrency",
        "2",
        cwd=tmp_path,
        env=minimal_env(tmp_path),
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
    )
    stdout, stderr = await asyncio.wait_for(process.communicate(), timeout=30)
    assert process.returncode == 0, stderr.decode()
    picked = f"Replaying recordings/{meta_session.name} (latest session with events; 6 events)"
    assert stderr.decode().splitlines() == [picked], "which session, and no progress bar (not a terminal)"
    assert "Result:  5 ok, 0 failed" in stdout.decode()
    assert len(backend.behaviour.received) == 5


class FullDisk(SessionRecorder):
    """A recorder whose disk fills up after the first line."""

    appended = 0

    def append(self, record: dict[str, Any]) -> int:
        self.appended += 1
        if self.appended > 1:
            raise OSError(28, "No space left on device")
        return super().append(record)

    def append_many(self, records: list[dict[str, Any]]) -> int:
        offsets = [self.append(record) for record in records]  # the disk fills up inside a batch too
        return offsets[0] if offsets else 0


async def test_every_replay_is_on_disk_when_send_plan_returns_or_the_failure_is_said(
    meta_session: Path, recordings: Path, start_backend: Any
) -> None:
    backend = await start_backend(reject_bad_signature=False)
    options = ReplayOptions(backend.url, concurrency=3)
    plan = plan_replay(load_recordings([meta_session]).exchanges[1:], options)
    with SessionRecorder(recordings, suffix="replay") as recorder:
        results = await send_plan(plan, options, recorder)
        written = read_recording(recorder.path).records  # before close: the writer thread has finished
        assert sorted(r["replay_of"]["seq"] for r in written) == EVENT_SEQS
        assert len(results) == 6

    with FullDisk(recordings, suffix="replay") as full, pytest.raises(ReplayNotRecorded) as failure:
        await send_plan(plan, options, full)
    assert "No space left on device" in str(failure.value) and str(full.path) in str(failure.value)
    assert [r.ok for r in failure.value.results] == [True] * 6, "everything was still sent"
    assert len(read_recording(full.path).records) == 1


async def test_an_unwritable_recordings_dir_is_a_clear_error(
    meta_session: Path, tmp_path: Path, start_backend: Any, capsys: pytest.CaptureFixture[str]
) -> None:
    backend = await start_backend()
    not_a_dir = tmp_path / "file"
    not_a_dir.write_text("x")
    code, out, err = await replay(capsys, str(meta_session), "--to", backend.url, "--recordings-dir", str(not_a_dir))
    assert (code, out) == (2, "")
    assert "cannot record the replay" in err and "Traceback" not in err
    assert backend.arrivals == 0


async def test_a_replay_session_that_cannot_be_written_leaves_no_file_and_says_why(
    meta_session: Path,
    recordings: Path,
    start_backend: Any,
    capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """The replay's own session is created at its first line: a disk that refuses it leaves no empty file."""
    backend = await start_backend(reject_bad_signature=False)

    def no_space(*_args: Any) -> Any:
        raise OSError(28, "No space left on device")

    monkeypatch.setattr("wa_devtunnel.engine.recording.create_session_file", no_space)
    code, out, err = await replay(capsys, "--to", backend.url, "--recordings-dir", str(recordings), "--type", "image")
    assert code == 1 and backend.arrivals == 1, "sent, answered, but not recorded"
    assert "Not recorded (the replay session could not be written)" in out
    assert "could not record the replay to" in err and "No space left on device" in err
    assert replay_files(recordings) == []


async def test_ctrl_c_stops_the_replay_and_keeps_what_was_answered(
    meta_session: Path, recordings: Path, start_backend: Any, tmp_path: Path
) -> None:
    backend = await start_backend(delay_s=0.4, reject_bad_signature=False)
    process = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "wa_devtunnel", "replay", "--to", backend.url, "--recordings-dir", str(recordings),
        cwd=tmp_path, env=minimal_env(tmp_path), stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE,
    )  # fmt: skip
    for _ in range(300):
        if len(backend.behaviour.received) >= 2:
            break
        await asyncio.sleep(0.02)
    process.send_signal(signal.SIGINT)
    _, stderr = await asyncio.wait_for(process.communicate(), timeout=30)
    assert process.returncode == 1
    match = re.search(r"interrupted: (\d) of 6 requests answered", stderr.decode())
    assert match, stderr.decode()
    [path] = replay_files(recordings)
    assert len(read_recording(path).records) == int(match.group(1)) >= 1, "every answered replay is on disk"
