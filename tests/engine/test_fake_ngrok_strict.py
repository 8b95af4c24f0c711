"""The fake agent is as strict as a real v3 agent: API bodies, config keys, versions, the free plan's one domain."""

from __future__ import annotations

import json
import subprocess
import threading
from urllib.parse import urlsplit

import pytest
from pyngrok import ngrok
from pyngrok.exception import PyngrokNgrokError, PyngrokNgrokHTTPError

from tests.support.fake_ngrok import FakeNgrok, MakeFakeNgrok
from tests.support.fake_ngrok._ngrok_errors import already_online
from tests.support.fake_ngrok.agent_log import AgentLog

UNUSED_PORT = "9"


def _error(caught: pytest.ExceptionInfo[PyngrokNgrokHTTPError]) -> dict[str, object]:
    return json.loads(caught.value.body)


def test_the_request_of_pyngrok_9_is_accepted_and_recorded(fake_ngrok: FakeNgrok) -> None:
    """What the provider sends (v3 config): name, url, an explicit upstream and inspection off."""
    config = fake_ngrok.pyngrok_config()
    tunnel = ngrok.connect(
        UNUSED_PORT,
        "http",
        pyngrok_config=config,
        url="https://wa-dev.ngrok-free.app",
        inspect=False,
        upstream={"url": "http://127.0.0.1:9"},
    )

    (sent,) = fake_ngrok.api_requests("/api/endpoints")
    assert (sent["method"], sent["status"]) == ("POST", 201)
    assert sent["body"] == {
        "url": "https://wa-dev.ngrok-free.app",
        "inspect": False,
        "upstream": {"url": "http://127.0.0.1:9"},
        "name": tunnel.name,
    }
    assert fake_ngrok.endpoint_bodies() == [sent["body"]]
    (listed,) = ngrok.get_tunnels(config)
    assert listed.data["inspect"] is False
    assert listed.data["upstream"]["url"] == "http://127.0.0.1:9"


def test_the_v2_request_of_pyngrok_before_9_with_a_url_is_refused_as_ngrok_refuses_it(fake_ngrok: FakeNgrok) -> None:
    """pyngrok 7.2-8.x: POST /api/tunnels with `url`, an unknown field for a v3 agent (NGROK_DOMAIN broke)."""
    log = AgentLog()
    config = fake_ngrok.pyngrok_config(config_version="2", log_event_callback=log)

    with pytest.raises(PyngrokNgrokHTTPError) as caught:
        ngrok.connect(UNUSED_PORT, "http", pyngrok_config=config, url="https://wa-dev.ngrok-free.app")

    assert caught.value.status_code == 400
    assert _error(caught) == {
        "error_code": 102,
        "status_code": 400,
        "msg": "invalid tunnel configuration",
        "details": {"err": "yaml: unmarshal errors:\n  line 1: field url not found in type config.HTTPv2Tunnel"},
    }
    (warned,) = log.wait_for("invalid tunnel configuration")  # pyngrok reads the log on its own thread
    assert (warned.lvl, warned.pg) == ("WARNING", "/api/tunnels")  # type: ignore[attr-defined]
    assert "field url not found" in (warned.err or "")
    assert ngrok.connect(UNUSED_PORT, "http", pyngrok_config=config).public_url  # addr/proto alone are fine


def test_every_unknown_endpoint_field_is_named_in_the_400(fake_ngrok: FakeNgrok) -> None:
    api_url = ngrok.get_ngrok_process(fake_ngrok.pyngrok_config()).api_url
    body = {"name": "x", "url": "https://", "bind_tls": True, "upstream": {"url": "http://localhost:9", "tls": True}}

    with pytest.raises(PyngrokNgrokHTTPError) as caught:
        ngrok.api_request(f"{api_url}/api/endpoints", method="POST", data=body)

    assert caught.value.status_code == 400
    assert _error(caught)["details"] == {
        "err": "yaml: unmarshal errors:\n"
        "  line 1: field bind_tls not found in type config.v3Endpoint\n"
        "  line 1: field tls not found in type config.v3Upstream"
    }
    assert fake_ngrok.api_requests("/api/endpoints")[-1]["status"] == 400


def _config_check(fake: FakeNgrok) -> subprocess.CompletedProcess[str]:
    command = [str(fake.ngrok_path), "config", "check", "--config", str(fake.config_path)]
    return subprocess.run(command, capture_output=True, text=True, timeout=30)


def test_unknown_config_keys_stop_the_agent_with_its_yaml_error(make_fake_ngrok: MakeFakeNgrok) -> None:
    fake = make_fake_ngrok(config={"region": "eu"})
    fake.write_config(root_cas="host")  # a v2 key, `connect_cas` in v3

    checked = _config_check(fake)

    assert checked.returncode == 1
    assert checked.stderr.splitlines() == [
        f"ERROR:  Error reading configuration file '{fake.config_path}': YAML parsing error: yaml: unmarshal errors:",
        "ERROR:    line 3: field root_cas not found in type config.Agent",
        "ERROR:    line 5: field region not found in type config.v3yamlConfig",
    ]
    with pytest.raises(PyngrokNgrokError, match="unable to start"):
        ngrok.connect(UNUSED_PORT, "http", pyngrok_config=fake.pyngrok_config())
    assert fake.agent_pids() == []


def test_known_config_keys_pass(make_fake_ngrok: MakeFakeNgrok) -> None:
    fake = make_fake_ngrok(config={"endpoints": [{"name": "hook", "url": "https://", "upstream": {"url": 8080}}]})
    fake.write_config(remote_management=False, log_level="info", console_ui=False, inspect_db_size=-1)

    checked = _config_check(fake)

    assert (checked.returncode, checked.stdout.strip()) == (0, f"Valid configuration file at {fake.config_path}")


def test_an_agent_before_3_30_has_no_endpoints_api(make_fake_ngrok: MakeFakeNgrok) -> None:
    """pyngrok 9's health probe (GET /api/endpoints) never passes: the agent logs "Not Found" for each one.

    As with the real agent, pyngrok reads one line per probe while each probe adds three, so the agent's stdout
    pipe fills and both block: only killing the agent (the provider's own deadline) ends pyngrok's start.
    """
    fake = make_fake_ngrok(mode="version=3.29.1")
    log = AgentLog()
    config = fake.pyngrok_config(log_event_callback=log, startup_timeout=1)
    assert ngrok.get_version(config)[0] == "3.29.1"
    errors: list[Exception] = []

    def start() -> None:
        try:
            ngrok.connect(UNUSED_PORT, "http", pyngrok_config=config)
        except PyngrokNgrokError as exc:
            errors.append(exc)

    starter = threading.Thread(target=start, daemon=True)
    starter.start()
    (missing, *_) = log.wait_for("Not Found")
    fake.kill()
    starter.join(10)

    assert not starter.is_alive()
    assert "unable to start" in str(errors[0])
    assert (missing.lvl, missing.pg) == ("WARNING", "/api/endpoints")  # type: ignore[attr-defined]
    v2 = fake.pyngrok_config(config_version="2")
    assert ngrok.connect(UNUSED_PORT, "http", pyngrok_config=v2).public_url


def test_an_agent_before_3_16_cannot_read_a_v3_config(make_fake_ngrok: MakeFakeNgrok) -> None:
    fake = make_fake_ngrok(mode="version=3.3.1")

    checked = _config_check(fake)

    assert checked.returncode == 1
    assert checked.stderr.splitlines() == [
        f"ERROR:  Error reading configuration file '{fake.config_path}': unknown version '3'. valid versions are: [1 2]"
    ]


def test_too_old_speaks_v3_but_is_below_the_account_minimum(make_fake_ngrok: MakeFakeNgrok) -> None:
    fake = make_fake_ngrok(mode="too-old")
    config = fake.pyngrok_config()
    assert ngrok.get_version(config)[0] == "3.19.1"
    with pytest.raises(PyngrokNgrokError) as caught:
        ngrok.connect(UNUSED_PORT, "http", pyngrok_config=config)
    assert caught.value.ngrok_error_code == "ERR_NGROK_121"
    assert 'Your ngrok-agent version "3.19.1" is too old' in (caught.value.ngrok_error or "")


def test_no_url_means_the_accounts_dev_domain_and_a_second_endpoint_on_it_is_err_ngrok_334(
    make_fake_ngrok: MakeFakeNgrok,
) -> None:
    first, second = make_fake_ngrok(public_host=None), make_fake_ngrok(public_host=None)
    dev_url = f"https://{first.dev_domain}"
    tunnel = ngrok.connect(UNUSED_PORT, "http", pyngrok_config=first.pyngrok_config())
    holder = ngrok.get_ngrok_process(first.pyngrok_config()).proc.pid

    with pytest.raises(PyngrokNgrokHTTPError) as in_another_agent:
        ngrok.connect(UNUSED_PORT, "http", pyngrok_config=second.pyngrok_config())
    with pytest.raises(PyngrokNgrokHTTPError) as in_the_same_agent:
        ngrok.connect("10", "http", pyngrok_config=first.pyngrok_config())

    assert urlsplit(tunnel.public_url or "").hostname == first.dev_domain == second.dev_domain
    assert first.online_urls() == {dev_url: holder}
    for caught in (in_another_agent, in_the_same_agent):
        assert caught.value.status_code == 502
        assert _error(caught) == {
            "error_code": 103,
            "status_code": 502,
            "msg": "failed to start tunnel",
            "details": {"err": already_online(dev_url)},
        }
    assert already_online(dev_url).startswith(f"failed to start tunnel: The endpoint '{dev_url}' is already online.")
    ngrok.kill(first.pyngrok_config())
    assert ngrok.connect(UNUSED_PORT, "http", pyngrok_config=second.pyngrok_config()).public_url == tunnel.public_url


def test_pooled_endpoints_may_share_a_url(fake_ngrok: FakeNgrok) -> None:
    config = fake_ngrok.pyngrok_config()
    ngrok.connect(UNUSED_PORT, "http", pyngrok_config=config, pooling_enabled=True)
    ngrok.connect("10", "http", pyngrok_config=config, pooling_enabled=True)
    assert [body["pooling_enabled"] for body in fake_ngrok.endpoint_bodies()] == [True, True]


def test_the_dev_domain_url_is_the_same_after_the_agent_restarts(fake_ngrok: FakeNgrok) -> None:
    config = fake_ngrok.pyngrok_config()
    before = ngrok.connect(UNUSED_PORT, "http", pyngrok_config=config).public_url
    ngrok.kill(config)
    assert ngrok.connect(UNUSED_PORT, "http", pyngrok_config=config).public_url == before
    assert fake_ngrok.online_urls() == {f"https://{fake_ngrok.dev_domain}": fake_ngrok.agent_pids()[0]}
