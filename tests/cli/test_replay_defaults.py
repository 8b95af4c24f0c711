"""Defaults that pick the right thing, with a real `wa-devtunnel up --port 0` running (issue 16, items 2 and 4).

`trigger` and `replay` without --to find the running instance through its instance file and say so;
`replay` and `export` without a session take the latest one with events, never the live one, and say
which; an idle run leaves no session file behind.
"""

from __future__ import annotations

import json
import re
import socket
from datetime import UTC, datetime
from pathlib import Path

from tests.support.cli_process import run_cli, running_cli
from wa_devtunnel.engine.recording import RECORDING_VERSION, SessionRecorder, encode_body
from wa_devtunnel.rules.decode.payload import decode_payload
from wa_devtunnel.rules.samples import payloads as samples

OLD = datetime(2026, 11, 26, 21, 55, 0, tzinfo=UTC)


def old_session(recordings: Path) -> Path:
    """A session recorded earlier (one text message), older than anything `up` writes now."""
    body = samples.text_message_payload("from an earlier run")
    record = {
        "v": RECORDING_VERSION,
        "id": "0123456789abcdef0123456789abcdef",
        "seq": 1,
        "received_at": "2026-11-26T21:55:01.000000Z",
        "kind": "event",
        "request": {"method": "POST", "path": "/webhook/whatsapp", "query": "", "headers": [], **encode_body(body)},
        "response": {"status": 200, "body": "EVENT_RECEIVED"},
        "signature": "unchecked",
        "summary": decode_payload(body).to_dict(),
    }
    with SessionRecorder(recordings, now=lambda: OLD) as recorder:
        recorder.append(record)
    return recorder.path


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def test_an_idle_run_leaves_no_session_file(tmp_path: Path) -> None:
    with running_cli(tmp_path) as cli:
        assert list(cli.recordings_dir.glob("*.jsonl")) == []
        code = cli.stop()
    assert code == 0
    assert list(cli.recordings_dir.glob("*.jsonl")) == [], "nothing was received: no empty session"
    assert run_cli(tmp_path, "sessions").stdout.startswith(f"No recordings in {cli.recordings_dir} yet.")


def test_trigger_and_replay_find_the_running_instance_on_port_0(tmp_path: Path) -> None:
    earlier = old_session(tmp_path / "recordings")
    with running_cli(tmp_path) as cli:
        found = f"Sending to the running wa-devtunnel at {cli.callback_url} (pid {cli.proc.pid}; --to for another URL)"
        sent = run_cli(tmp_path, "trigger", "text", "--text", "hello")
        assert sent.returncode == 0, sent.stderr
        assert sent.stderr.splitlines()[0] == found
        assert sent.stdout.startswith(f"POST {cli.callback_url}  (signed with WHATSAPP_APP_SECRET)")
        live = next(path for path in cli.recordings_dir.glob("*.jsonl") if path != earlier)

        replayed = run_cli(tmp_path, "replay", "--dry-run", "--json")
        assert replayed.returncode == 0, replayed.stderr
        assert replayed.stderr.splitlines() == [
            f"Replaying recordings/{earlier.name} (latest session with events; 1 event; "
            f"the running wa-devtunnel's {live.name} left out, name it to use it)",
            found,
        ]
        report = json.loads(replayed.stdout)
        assert report["target"] == cli.callback_url and report["sources"] == [str(earlier)]

        named = run_cli(tmp_path, "replay", live.stem, "--dry-run", "--json")
        assert named.returncode == 0, named.stderr
        assert json.loads(named.stdout)["sources"] == [str(live)], "named, the live one is fine"

        exported = run_cli(tmp_path, "export", "--out", "fixtures")
        assert exported.returncode == 0, exported.stderr
        assert exported.stderr.splitlines()[0].startswith(f"Exporting from recordings/{earlier.name} (latest")
        cli.stop()
    assert re.search(r"\(sample\)", cli.stdout()), "the instance labelled the trigger as ours"


def test_only_the_live_session_has_events(tmp_path: Path) -> None:
    with running_cli(tmp_path) as cli:
        assert run_cli(tmp_path, "trigger", "text").returncode == 0
        [live] = cli.recordings_dir.glob("*.jsonl")
        refused = run_cli(tmp_path, "replay")
        assert refused.returncode == 2
        assert refused.stderr.strip() == (
            f"wa-devtunnel replay: no session in {cli.recordings_dir} has events; the running wa-devtunnel's "
            f"{live.name} is left out: name it to use it ({live.stem}); `wa-devtunnel sessions` lists them all"
        )


def test_without_a_running_instance_the_clear_message_stays(tmp_path: Path) -> None:
    port = free_port()
    sent = run_cli(tmp_path, "trigger", "text", env={"WA_DEVTUNNEL_PORT": str(port)})
    url = f"http://127.0.0.1:{port}/webhook/whatsapp"
    assert sent.returncode == 1
    recordings = tmp_path / "recordings"
    assert sent.stderr.splitlines()[0] == f"Sending to {url} (no running wa-devtunnel found in {recordings})"
    assert f"error: cannot connect to {url}" in sent.stderr and "start `wa-devtunnel` first" in sent.stderr
    old_session(tmp_path / "recordings")
    refused = run_cli(tmp_path, "replay")
    assert refused.returncode == 2
    assert f"where to? no running wa-devtunnel found in {recordings}: pass --to URL" in refused.stderr


def test_a_stale_instance_file_is_not_a_running_instance(tmp_path: Path) -> None:
    """A killed `up` leaves its instance file: its pid is gone, so nothing is sent there."""
    with running_cli(tmp_path) as cli:
        cli.kill9()
        cli.proc.wait(timeout=10)
        port = free_port()
        sent = run_cli(tmp_path, "trigger", "text", env={"WA_DEVTUNNEL_PORT": str(port)})
        assert sent.stderr.splitlines()[0].startswith(f"Sending to http://127.0.0.1:{port}/webhook/whatsapp (no ")
