"""`replay` of a recorded handshake needs the target's verify token: the one kept for this project folder is it.

Only a temporary token (nothing could be kept, so a running wa-devtunnel made up its own) is unknown.
"""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest

from wa_devtunnel.cli.main import main
from wa_devtunnel.engine.exchange import build_record
from wa_devtunnel.engine.recording import SessionRecorder
from wa_devtunnel.project_state import STATE_DIR_VARIABLE
from wa_devtunnel.settings import load_settings

TARGET = "http://127.0.0.1:9/webhook/whatsapp"


@pytest.fixture
def handshake_session(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A session with one recorded handshake, in a project folder with no WHATSAPP_VERIFY_TOKEN anywhere."""
    for name in list(os.environ):
        if name.startswith(("WHATSAPP_", "NGROK_", "META_")) or (
            name.startswith("WA_DEVTUNNEL_") and name != STATE_DIR_VARIABLE
        ):
            monkeypatch.delenv(name)
    monkeypatch.chdir(tmp_path)
    with SessionRecorder(tmp_path / "recordings") as recorder:
        recorder.append(
            build_record(
                seq=1,
                received_at="2026-12-07T07:00:00.000000Z",
                kind="verify",
                method="GET",
                path="/webhook/whatsapp",
                query="hub.mode=subscribe&hub.verify_token=%5Bredacted%5D&hub.challenge=1158201444",
                headers=[],
                body=b"",
                status=200,
                response_body="1158201444",
                signature="unchecked",
                extra={"origin": "meta"},
            )
        )
    return recorder.path


def replay(path: Path, capsys: pytest.CaptureFixture[str]) -> tuple[int | None, str, str]:
    code = main(["replay", str(path), "--kind", "verify", "--to", TARGET, "--dry-run", "--json"])
    out, err = capsys.readouterr()
    return code, out, err


def test_a_handshake_is_replayed_with_the_token_kept_for_this_folder(
    handshake_session: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    kept = load_settings({})
    assert kept.verify_token_source == "project-state"
    code, out, err = replay(handshake_session, capsys)
    assert code == 0, err
    [planned] = json.loads(out)["plan"]
    assert planned["kind"] == "verify"
    assert kept.verify_token not in out, "the token itself is never printed"


def test_a_temporary_token_is_unknown_so_a_handshake_is_not_replayed(
    handshake_session: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    blocked = tmp_path / "state"
    (blocked / "state.json").mkdir(parents=True)  # nothing can be kept here
    monkeypatch.setenv(STATE_DIR_VARIABLE, str(blocked))
    code, out, err = replay(handshake_session, capsys)
    assert (code, out) == (2, "")
    assert "replaying a handshake needs the target's verify token: pass --verify-token T" in err
