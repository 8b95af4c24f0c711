"""Secrets never leave the engine or the CLI in a message, whatever printed them first."""

from __future__ import annotations

import json
import signal
from pathlib import Path
from urllib.parse import quote

import pytest

from tests.support.cli_process import running_cli
from tests.support.constants import APP_SECRET, VERIFY_TOKEN
from tests.support.fake_ngrok import MakeFakeNgrok
from wa_devtunnel.cli.main import main
from wa_devtunnel.engine.events import EventBus, ExchangeRecorded, Notice, SelfTestFinished, TunnelChanged
from wa_devtunnel.engine.redaction import Redactor
from wa_devtunnel.engine.service import WebhookService
from wa_devtunnel.engine.tunnel.ngrok import NgrokTunnel
from wa_devtunnel.settings import load_settings

# Shaped like the real ones: an ngrok authtoken, a Graph access token with URL-unsafe characters.
AUTHTOKEN = "2bogusTokenVWXyz0123456789_abcdefghijklmnopqrs"
ACCESS_TOKEN = "EAAGm0PX4ZCpsBA+token/with=odd&chars0123456789"
ENVIRON = {"NGROK_AUTHTOKEN": AUTHTOKEN, "WHATSAPP_VERIFY_TOKEN": VERIFY_TOKEN, "WHATSAPP_APP_SECRET": APP_SECRET}
SECRETS = Redactor([("NGROK_AUTHTOKEN", AUTHTOKEN), ("WHATSAPP_ACCESS_TOKEN", ACCESS_TOKEN)])


@pytest.mark.parametrize(
    "shown",
    [
        f"authentication failed: Your authtoken: {AUTHTOKEN}\r\n\r\nERR_NGROK_105",
        f"GET https://graph.facebook.com/v23.0/me?access_token={quote(ACCESS_TOKEN, safe='')}&fields=id",
        f"GET /me?access_token={quote(ACCESS_TOKEN, safe='').lower()}",
        json.dumps({"err": f"bad token {ACCESS_TOKEN}"}),
        repr(f"token:\n{AUTHTOKEN}\n"),
        f'err="authentication failed: {AUTHTOKEN[:30]}"',
        f"...{AUTHTOKEN[-20:]} was refused",
    ],
    ids=["raw", "url-encoded", "url-encoded-lower", "json", "repr", "cut-off-start", "cut-off-end"],
)
def test_every_form_of_a_secret_is_masked(shown: str) -> None:
    clean = SECRETS.text(shown)
    assert "<redacted " in clean
    for secret in (AUTHTOKEN, ACCESS_TOKEN):
        assert secret[:12] not in clean and secret[-12:] not in clean


def test_ordinary_text_and_short_values_are_left_alone() -> None:
    text = "Tunnel failed: ERR_NGROK_108 https://dashboard.ngrok.com/agents 0123456789"
    assert SECRETS.text(text) == text
    assert not Redactor([("WHATSAPP_APP_SECRET", "abc"), ("NGROK_AUTHTOKEN", None)])
    assert Redactor([("WHATSAPP_APP_SECRET", "abc")]).text("abc") == "abc"


def test_the_bus_redacts_engine_text_but_passes_exchanges_untouched() -> None:
    bus = EventBus()
    bus.set_redactor(SECRETS.event)
    seen = bus.subscribe()
    exchange = ExchangeRecorded(None, {"request": {"body": AUTHTOKEN}})
    bus.publish(Notice("error", f"Tunnel failed: {AUTHTOKEN}"))
    bus.publish(TunnelChanged("failed", "ngrok", None, "http://127.0.0.1:1/w", f"token {AUTHTOKEN}"))
    bus.publish(SelfTestFinished(False, "https://x.ngrok.app/w", 1.0, f"?access_token={ACCESS_TOKEN}"))
    bus.publish(exchange)
    notice, tunnel, selftest, recorded = seen.drain()
    assert notice.text == "Tunnel failed: <redacted NGROK_AUTHTOKEN>"
    assert tunnel.reason == "token <redacted NGROK_AUTHTOKEN>"
    assert selftest.detail == "?access_token=<redacted WHATSAPP_ACCESS_TOKEN>"
    assert recorded is exchange  # request data: recorded exactly, never rewritten on the hot path


async def test_err_ngrok_105_never_shows_the_authtoken(tmp_path: Path, make_fake_ngrok: MakeFakeNgrok) -> None:
    fake = make_fake_ngrok(mode="bad-authtoken")
    settings = load_settings(
        {"port": "0", "recordings_dir": str(tmp_path / "rec"), "tunnel": "ngrok"},
        environ=ENVIRON,
        cwd=tmp_path,
    )
    tunnel = NgrokTunnel(AUTHTOKEN, ngrok_path=str(fake.ngrok_path), start_deadline_s=10)
    service = WebhookService(settings, tunnel=tunnel)
    events = service.bus.subscribe()
    started = await service.start()
    await service.stop()
    assert started.tunnel_state == "failed"
    shown = [event for event in events.drain() if isinstance(event, Notice | TunnelChanged)]
    text = "\n".join(repr(event) for event in shown)
    assert "ERR_NGROK_105" in text
    assert AUTHTOKEN[:12] not in text and AUTHTOKEN[-12:] not in text


def test_err_ngrok_105_in_json_mode_prints_no_authtoken(tmp_path: Path, make_fake_ngrok: MakeFakeNgrok) -> None:
    fake = make_fake_ngrok(mode="bad-authtoken")
    env = {"NGROK_AUTHTOKEN": AUTHTOKEN, "PYNGROK_NGROK_PATH": str(fake.ngrok_path)}
    with running_cli(tmp_path, "--tunnel", "ngrok", "--json", env=env) as cli:
        assert cli.stop(signal.SIGTERM) == 0
        printed = cli.stdout() + cli.stderr()
    assert "ERR_NGROK_105" in printed
    assert "<redacted NGROK_AUTHTOKEN>" in printed
    assert AUTHTOKEN[:12] not in printed


def test_a_configuration_error_never_echoes_a_secret(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("WHATSAPP_ACCESS_TOKEN", ACCESS_TOKEN)
    monkeypatch.setenv("WA_DEVTUNNEL_FORWARD_TO", ACCESS_TOKEN)  # pasted into the wrong setting
    assert main(["--headless", "--port", "0", "--tunnel", "none"]) == 2
    err = capsys.readouterr().err
    assert "WA_DEVTUNNEL_FORWARD_TO" in err and "<redacted WHATSAPP_ACCESS_TOKEN>" in err
    assert ACCESS_TOKEN[:12] not in err


def test_a_usage_error_never_echoes_the_app_secret_flag(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["replay", "--app-secret", APP_SECRET, "--no-such-flag", APP_SECRET]) == 2
    err = capsys.readouterr().err
    assert "--no-such-flag" in err and APP_SECRET not in err
