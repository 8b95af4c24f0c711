"""`wa-devtunnel replay ... | head`: a reader that stops early is not an error, like for any Unix tool."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

from wa_devtunnel.engine.exchange import build_record
from wa_devtunnel.engine.recording import SessionRecorder
from wa_devtunnel.rules.samples import payloads as samples


def test_a_dry_run_piped_into_head_ends_quietly(tmp_path: Path) -> None:
    recorder = SessionRecorder(tmp_path / "rec")
    for seq in range(1, 3001):
        body = samples.text_message_payload(f"event {seq}", message_id=f"wamid.PIPE{seq}")
        recorder.append(
            build_record(
                seq=seq,
                received_at="2026-12-07T07:00:00.000000Z",
                kind="event",
                method="POST",
                path="/webhook/whatsapp",
                query="",
                headers=[["Content-Type", "application/json"]],
                body=body,
                status=200,
                response_body="EVENT_RECEIVED",
                signature="unchecked",
                extra={"origin": "meta"},
            )
        )
    recorder.close()
    argv = [sys.executable, "-m", "wa_devtunnel", "replay", str(recorder.path), "--to", "http://127.0.0.1:9/w"]
    process = subprocess.Popen(
        [*argv, "--dry-run", "--recordings-dir", str(tmp_path / "rec")],
        cwd=tmp_path,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
    )
    assert process.stdout is not None and process.stderr is not None
    process.stdout.readline()
    process.stdout.close()  # what `head -1` does once it has its line
    stderr = process.stderr.read().decode()
    assert process.wait(timeout=30) == 0, stderr
    assert "Broken pipe" not in stderr and "Traceback" not in stderr
