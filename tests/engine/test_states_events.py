"""What the engine announces for the front ends' lasting states: the token's source, the accounts, a failed
tunnel's own fix, and the start-up refusals (a --forward-to that is the receiver itself)."""

from __future__ import annotations

import asyncio
import dataclasses
import socket
from pathlib import Path
from typing import TextIO

import pytest

from tests.support.constants import APP_SECRET, VERIFY_TOKEN
from wa_devtunnel.engine.events import (
    EventBus,
    Notice,
    ReceiverStarted,
    RegistrationChanged,
    TunnelChanged,
    WebhookQuiet,
    token_source_text,
)
from wa_devtunnel.engine.redaction import Redactor
from wa_devtunnel.engine.service import WebhookService, forward_loop_error
from wa_devtunnel.engine.tunnel.provider import AgentFootprint, TunnelError, TunnelHealth
from wa_devtunnel.settings import ConfigError, load_settings

AUTHTOKEN = "2abcdefghijklmnopqrstuvwxyz_0123456789ABCDEFG"
DOWNLOAD_FAILED = (
    "could not download the ngrok agent: An error occurred while downloading ngrok from "
    "https://bin.ngrok.com/c/x/ngrok-v3-stable-linux-amd64.tgz: <urlopen error [Errno -2] Name or service not known>"
)
DOWNLOAD_ADVICE = (
    "Offline or behind a proxy? Install ngrok yourself (https://ngrok.com/download) and set "
    "PYNGROK_NGROK_PATH=/path/to/ngrok in .env."
)


class UndownloadableTunnel:
    """ngrok whose agent cannot be downloaded: prepare fails, and must not be tried (downloaded) twice."""

    name = "ngrok"
    settle_s = 0.0

    def __init__(self) -> None:
        self.prepared = 0

    async def prepare(self, progress: TextIO) -> None:
        self.prepared += 1
        raise TunnelError(DOWNLOAD_FAILED, DOWNLOAD_ADVICE)

    async def start(self, local_port: int) -> str:
        raise AssertionError("never started without its agent")

    def health(self) -> TunnelHealth:
        return TunnelHealth(False, None)

    async def check(self) -> TunnelHealth:
        return self.health()

    async def stop(self) -> None:
        """Nothing runs."""

    def footprint(self) -> AgentFootprint | None:
        return None


def _settings(tmp_path: Path, flags: dict[str, str] | None = None, **environ: str):  # type: ignore[no-untyped-def]
    return load_settings(
        {"port": "0", "recordings_dir": str(tmp_path / "rec"), "tunnel": "none", **(flags or {})},
        environ={"WHATSAPP_VERIFY_TOKEN": VERIFY_TOKEN, "WHATSAPP_APP_SECRET": APP_SECRET, **environ},
        cwd=tmp_path,
    )


async def test_a_failed_tunnel_says_its_reason_and_its_own_fix_once_prepared_once(tmp_path: Path) -> None:
    tunnel = UndownloadableTunnel()
    service = WebhookService(_settings(tmp_path), tunnel=tunnel)  # type: ignore[arg-type]
    events = service.bus.subscribe()
    await service.prepare()
    started = await service.start()
    await service.stop()
    assert tunnel.prepared == 1, "the download is not tried a second time at start"
    assert (started.tunnel_state, started.tunnel_reason, started.tunnel_advice) == (
        "failed",
        DOWNLOAD_FAILED,
        DOWNLOAD_ADVICE,
    )
    [failed] = [e for e in events.drain() if isinstance(e, TunnelChanged) and e.state == "failed"]
    assert failed.advice == DOWNLOAD_ADVICE
    assert failed.reason == f"{DOWNLOAD_FAILED}\n  {DOWNLOAD_ADVICE}"  # older readers still get both


async def test_started_says_where_the_token_comes_from_and_lists_every_account(tmp_path: Path) -> None:
    accounts = tmp_path / "wa-devtunnel.toml"
    accounts.write_text(
        '[[account]]\nname = "shop"\nphone_number_id = "111"\nverify_token = "shop-verify-token"\n'
        '[[account]]\nname = "support"\nphone_number_id = "222"\nverify_token = "support-verify-token"\n',
        encoding="utf-8",
    )
    service = WebhookService(_settings(tmp_path, {"accounts_file": str(accounts), "verify_token": "flag-token"}))
    started = await service.start()
    await service.stop()
    assert started.accounts == (("shop", "shop-verify-token"), ("support", "support-verify-token"))
    assert started.accounts_file == str(accounts)
    expected = getattr(service.settings, "verify_token_source", "")  # H2's Settings field, once it is there
    assert started.verify_token_source == expected


def test_the_token_source_in_words() -> None:
    assert token_source_text("env-file") == "from .env"
    assert token_source_text("project-state") == "kept in .wa-devtunnel/state.json"
    assert token_source_text("project-state", new=True) == (
        "new, kept in .wa-devtunnel/state.json: the same at every start in this folder"
    )
    assert token_source_text("generated") == "temporary: this run only; wa-devtunnel token --write-env keeps one"
    assert token_source_text("") == ""


@pytest.mark.parametrize(
    "target",
    [
        "http://127.0.0.1:{port}/webhook/whatsapp",
        "http://localhost:{port}/webhook/whatsapp/",
        "http://0.0.0.0:{port}/webhook/whatsapp",
    ],
)
def test_a_forward_to_the_receiver_itself_is_a_configuration_error(target: str) -> None:
    for bound in ("127.0.0.1", "0.0.0.0", "localhost"):
        error = forward_loop_error(target.format(port=43113), bound, 43113, "/webhook/whatsapp")
        assert isinstance(error, ConfigError) and error.setting == "--forward-to", bound
        assert "is this receiver itself (port 43113, path /webhook/whatsapp)" in str(error)


@pytest.mark.parametrize(
    "target",
    [
        "http://127.0.0.1:8000/webhook/whatsapp",  # the backend: another port
        "http://127.0.0.1:43113/api/webhook",  # another path (the receiver would answer 404, no loop)
        "http://192.0.2.7:43113/webhook/whatsapp",  # another machine
        "http://[::1]:43113/webhook/whatsapp",  # IPv6 loopback: a receiver bound to 127.0.0.1 is not there
        "not a url",
    ],
)
def test_a_forward_to_a_backend_is_not_a_loop(target: str) -> None:
    assert forward_loop_error(target, "127.0.0.1", 43113, "/webhook/whatsapp") is None


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


async def test_the_service_refuses_to_forward_to_itself_after_binding_and_leaves_nothing(tmp_path: Path) -> None:
    port = _free_port()
    target = f"http://localhost:{port}/webhook/whatsapp"
    service = WebhookService(_settings(tmp_path, {"port": str(port), "forward_to": target}))
    with pytest.raises(ConfigError, match="is this receiver itself"):
        await service.start()
    assert list((tmp_path / "rec").glob("*.jsonl")) == []
    with socket.socket() as probe:  # the port is free again
        probe.bind(("127.0.0.1", port))
    await asyncio.sleep(0)


def test_new_text_fields_are_redacted() -> None:
    """Agent and Meta words in the new fields pass the same redactor as the old ones."""
    bus = EventBus()
    bus.set_redactor(Redactor([("NGROK_AUTHTOKEN", AUTHTOKEN)]).event)
    events = bus.subscribe()
    said = f"authtoken {AUTHTOKEN} refused"
    bus.publish(TunnelChanged("failed", "ngrok", None, "http://x", said, said))
    bus.publish(RegistrationChanged("failed", "phone", "https://x", said, said))
    bus.publish(WebhookQuiet(True, 1.0, "https://x", "handshake", said))
    bus.publish(ReceiverStarted("u", "u", "t", False, None, 1, tunnel_reason=said, tunnel_advice=said))
    shown = repr(events.drain())
    assert AUTHTOKEN[:12] not in shown and AUTHTOKEN[-12:] not in shown


async def test_a_state_file_problem_is_said_at_start(tmp_path: Path) -> None:
    why = "~/p/.wa-devtunnel/state.json is a symbolic link; the verify token is new for this run only"
    settings = dataclasses.replace(_settings(tmp_path), state_warning=why)
    service = WebhookService(settings)
    events = service.bus.subscribe()
    await service.start()
    await service.stop()
    said = [e for e in events.drain() if isinstance(e, Notice) and e.topic == "state"]
    assert [(n.level, n.text) for n in said] == [("warning", why)]
