"""A real 64 KiB file system filled through SessionRecorder: every file stays a clean run of whole lines."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from wa_devtunnel.engine.recording import read_recording, request_body

FILL_SCRIPT = textwrap.dedent(
    """
    import itertools, json, shutil, sys
    from pathlib import Path
    from wa_devtunnel.engine.recording import RecordingFailed, SessionRecorder, encode_body

    mount, out = Path(sys.argv[1]), Path(sys.argv[2])
    filler = mount / "filler"
    filler.write_bytes(b"f" * 16384)  # deleted later: "the user freed some space"
    recorder = SessionRecorder(mount / "recordings", max_bytes=24 * 1024)

    def record(seq, size):
        body = json.dumps({"seq": seq, "text": "Grüße " + "x" * size}).encode()
        request = {"method": "POST", "path": "/webhook/whatsapp", "query": "", "headers": [], **encode_body(body)}
        return {"v": 1, "id": str(seq), "seq": seq, "kind": "event", "request": request}

    acknowledged, failures, seqs = [], [], itertools.count(1)
    for size in itertools.cycle([700, 1500, 2900, 333, 64]):
        seq = next(seqs)
        try:
            recorder.append(record(seq, size))
            acknowledged.append(seq)
        except RecordingFailed as exc:
            failures.append([exc.errno, str(exc)])
            if len(failures) == 8:
                break
    healthy_when_full = recorder.healthy
    filler.unlink()
    for size in (700, 1500, 2900):
        seq = next(seqs)
        recorder.append(record(seq, size))
        acknowledged.append(seq)
    recorder.close()
    shutil.copytree(mount / "recordings", out / "recordings")
    result = {"acknowledged": acknowledged, "failures": failures, "paths": [p.name for p in recorder.paths],
              "healthy_when_full": healthy_when_full, "healthy_after": recorder.healthy}
    (out / "result.json").write_text(json.dumps(result))
    """
)
MOUNT_AND_RUN = 'mount -t tmpfs -o size=64k,mode=0700 tmpfs "$1" && exec "$2" "$3" "$1" "$4"'


def run_on_tiny_filesystem(tmp_path: Path) -> tuple[dict[str, object], Path]:
    """Try the ways to get a tiny tmpfs (a private mount namespace first); skip only when none works."""
    script = tmp_path / "fill.py"
    script.write_text(FILL_SCRIPT)
    attempts: list[tuple[str, list[str]]] = []
    unshare = shutil.which("unshare")
    if unshare and os.geteuid() == 0:
        attempts.append(("unshare --mount", [unshare, "--mount", "--propagation", "private"]))
    if unshare:
        attempts.append(("unshare --user --map-root-user --mount", [unshare, "--user", "--map-root-user", "--mount"]))
    if os.geteuid() == 0 and shutil.which("mount"):
        attempts.append(("mount as root", []))
    tried = []
    for index, (name, prefix) in enumerate(attempts):
        mount_dir, out = tmp_path / f"tiny{index}", tmp_path / f"out{index}"
        mount_dir.mkdir()
        out.mkdir()
        args = [str(mount_dir), sys.executable, str(script), str(out)]
        try:
            done = subprocess.run(
                [*prefix, "sh", "-c", MOUNT_AND_RUN, "sh", *args], capture_output=True, text=True, timeout=120
            )
        finally:
            if not prefix:
                subprocess.run(["umount", str(mount_dir)], capture_output=True)
        result_file = out / "result.json"
        if result_file.exists():
            assert done.returncode == 0, done.stderr
            return json.loads(result_file.read_text()), out / "recordings"
        assert "Traceback" not in done.stderr, f"{name}: the script failed on the tiny file system:\n{done.stderr}"
        tried.append(f"{name}: {done.stderr.strip() or f'exit {done.returncode}'}")
    pytest.skip("no way to mount a tiny tmpfs here (" + "; ".join(tried or ["unshare and mount are missing"]) + ")")


def test_filling_a_real_tiny_filesystem_leaves_only_whole_lines(tmp_path: Path) -> None:
    result, recordings = run_on_tiny_filesystem(tmp_path)
    failures = result["failures"]
    assert isinstance(failures, list) and len(failures) == 8
    assert all(text.startswith("disk full (") for _code, text in failures), failures
    assert result["healthy_when_full"] is False and result["healthy_after"] is True

    seen = []
    for name in result["paths"]:  # type: ignore[union-attr]
        path = recordings / name
        data = path.read_bytes()
        assert data.endswith(b"\n"), f"{name} ends inside a line"
        read = read_recording(path)
        assert read.problems == (), f"{name}: {read.problems}"
        for record in read.records:
            body = json.loads(request_body(record["request"]))
            assert body["seq"] == record["seq"]
            seen.append(record["seq"])
    assert seen == result["acknowledged"], "exactly what append acknowledged is on disk, in order"
    assert len(result["paths"]) >= 2, "the 24 KiB limit rolled the session over"  # type: ignore[arg-type]
