"""The ngrok agent is started with only the environment it needs: none of our secrets."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.support.constants import APP_SECRET, VERIFY_TOKEN
from tests.support.fake_ngrok import DEFAULT_AUTHTOKEN, MakeFakeNgrok
from wa_devtunnel.engine.service import WebhookService
from wa_devtunnel.engine.tunnel.agent_env import agent_env_names
from wa_devtunnel.engine.tunnel.ngrok import NgrokTunnel
from wa_devtunnel.settings import load_settings

ACCESS_TOKEN = "EAAGm0PX4ZCpsBAaccess0123456789token"
PROXY = "http://proxy-user:proxy-pass@proxy.invalid:3128"
SECRETS = {
    "WHATSAPP_APP_SECRET": APP_SECRET,
    "WHATSAPP_ACCESS_TOKEN": ACCESS_TOKEN,
    "WHATSAPP_VERIFY_TOKEN": VERIFY_TOKEN,
    "NGROK_AUTHTOKEN": DEFAULT_AUTHTOKEN,
    "AWS_SECRET_ACCESS_KEY": "unrelated-secret-of-the-developer",
}
NEEDED = {
    "HTTPS_PROXY": PROXY,
    "https_proxy": PROXY,
    "NO_PROXY": "localhost,127.0.0.1",
    "ALL_PROXY": PROXY,
    "LC_ALL": "C.UTF-8",
    "LANG": "C.UTF-8",
}


def test_the_allowlist_keeps_network_and_locale_settings_only() -> None:
    names = [*SECRETS, *NEEDED, "PATH", "HOME", "TMPDIR", "SSL_CERT_FILE", "LC_TIME", "not-a-shell-name"]
    assert agent_env_names(names) == sorted([*NEEDED, "PATH", "HOME", "TMPDIR", "SSL_CERT_FILE", "LC_TIME"])


async def test_the_agent_never_sees_our_secrets(
    tmp_path: Path, make_fake_ngrok: MakeFakeNgrok, monkeypatch: pytest.MonkeyPatch
) -> None:
    fake = make_fake_ngrok()
    fake.record_environments()
    for name, value in {**SECRETS, **NEEDED, "SSL_CERT_FILE": str(fake.ca_path)}.items():
        monkeypatch.setenv(name, value)
    settings = load_settings({"port": "0", "recordings_dir": str(tmp_path / "rec"), "tunnel": "ngrok"}, cwd=tmp_path)
    tunnel = NgrokTunnel(DEFAULT_AUTHTOKEN, ngrok_path=str(fake.ngrok_path), start_deadline_s=10)
    service = WebhookService(settings, tunnel=tunnel, selftest_ssl=fake.ssl_context())
    started = await service.start()
    try:
        assert started.tunnel_state == "up"
        launcher = Path(tunnel.config.ngrok_path).read_text()
    finally:
        await service.stop()

    environments = fake.environments()
    # Both runs: the version probe (`--version`, run directly) and the agent itself (through the launcher).
    assert [argv[:1] for argv in fake.invocations()] == [["--version"], ["start"]]
    assert len(environments) == 2
    for env in environments:
        assert not set(SECRETS) & set(env)
        assert not set(SECRETS.values()) & set(env.values())
        assert {name: env.get(name) for name in NEEDED} == NEEDED
        assert env["SSL_CERT_FILE"] == str(fake.ca_path)
        assert env["PATH"] and env["HOME"]
    # The launcher names what to pass on; no value (a proxy password) is ever written to disk.
    assert "proxy-pass" not in launcher and APP_SECRET not in launcher
