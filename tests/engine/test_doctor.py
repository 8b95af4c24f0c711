"""`wa-devtunnel doctor`: every check can fail, and says in one line how to fix it."""

from __future__ import annotations

import asyncio
import json
import os
import socket
import stat
import sys
from collections.abc import Iterator
from dataclasses import replace
from pathlib import Path
from typing import Any

import pytest
from pyngrok import conf

from tests.support.constants import VERIFY_TOKEN
from tests.support.fake_graph import (
    APP_ID,
    APP_SECRET,
    EXPIRED_TOKEN,
    PHONE_NUMBER_ID,
    SYSTEM_USER_TOKEN,
    WABA_ID,
    FakeGraph,
)
from tests.support.fake_ngrok import DEFAULT_AUTHTOKEN, FakeNgrok
from wa_devtunnel.cli.main import main
from wa_devtunnel.engine.doctor.checks import check_ngrok_binary, gather
from wa_devtunnel.engine.doctor.meta import ERROR_GUIDE, _failed
from wa_devtunnel.engine.doctor.reach import PUBLIC_URL_FIX
from wa_devtunnel.engine.doctor.report import CheckResult, DoctorInput, Status
from wa_devtunnel.engine.doctor.run import run_doctor
from wa_devtunnel.engine.instance import RunningInstance
from wa_devtunnel.engine.meta.errors import NETWORK_FIX
from wa_devtunnel.engine.meta.graph import GraphClient, GraphError
from wa_devtunnel.engine.meta.registration import register
from wa_devtunnel.engine.recording import read_recording
from wa_devtunnel.engine.service import WebhookService
from wa_devtunnel.engine.tunnel.selftest import judge_handshake_answer, meta_cannot_reach
from wa_devtunnel.project_state import STATE_DIR_VARIABLE
from wa_devtunnel.settings import mask

SETTING_PREFIXES = ("WHATSAPP_", "WA_DEVTUNNEL_", "NGROK_", "META_", "PYNGROK_")


@pytest.fixture
def healthy(tmp_path: Path, fake_ngrok: FakeNgrok) -> dict[str, str]:
    """The local half of a correct setup: token, secret, ngrok authtoken and binary, any free port."""
    env = {
        "WHATSAPP_VERIFY_TOKEN": VERIFY_TOKEN,
        "WHATSAPP_APP_SECRET": APP_SECRET,
        "NGROK_AUTHTOKEN": DEFAULT_AUTHTOKEN,
        "PYNGROK_NGROK_PATH": str(fake_ngrok.ngrok_path),
        "WA_DEVTUNNEL_PORT": "0",
    }
    (tmp_path / ".env").write_text("".join(f"{k}={v}\n" for k, v in env.items()), encoding="utf-8")
    return env


def doctor_input(
    tmp_path: Path,
    environ: dict[str, str],
    url: str | None = None,
    instance: RunningInstance | None = None,
    **kwargs: Any,
) -> DoctorInput:
    return gather({}, url, instance, environ=environ, cwd=tmp_path, **kwargs)


async def check(inp: DoctorInput, name: str, *, graph: bool = False) -> CheckResult:
    results = {r.name: r for r in await run_doctor(inp, graph=graph)}
    return results[name]


# --- settings (.env) ---------------------------------------------------------------------------


async def test_unparsable_env_line_fails(tmp_path: Path, healthy: dict[str, str]) -> None:
    with (tmp_path / ".env").open("a") as env:
        env.write("WHATSAPP VERIFY TOKEN = oops\n")
    result = await check(doctor_input(tmp_path, {}), "settings (.env)")
    assert result.status is Status.FAIL
    assert "line 6" in result.detail
    assert result.fix == "write each line as NAME=value; quote values containing spaces or #"


async def test_a_bad_line_is_named_without_its_text_and_the_other_lines_are_still_checked(
    tmp_path: Path, healthy: dict[str, str]
) -> None:
    secret = "0123456789abcdef0123456789abcdef"
    with (tmp_path / ".env").open("a") as env:
        env.write(f'WHATSAPP_APP_SECRET="{secret}\nWA_DEVTUNNEL_PORT=18123\n')  # an unclosed quote, then a port
    inp = doctor_input(tmp_path, {})
    assert inp.config_errors == ()
    assert inp.settings.port == 18123, "the lines after the bad one are read, as python-dotenv does"
    assert inp.settings.verify_token == VERIFY_TOKEN and inp.settings.verify_token_source == "env-file"
    result = await check(inp, "settings (.env)")
    assert result.status is Status.FAIL
    assert result.detail == (
        f"{tmp_path / '.env'} line 6: WHATSAPP_APP_SECRET has a quoted value that is not closed, or text after its "
        "closing quote; python-dotenv skips the whole line, so WHATSAPP_APP_SECRET is not set"
    )
    assert secret not in result.detail and secret[:8] not in result.detail, "a line's text may be a secret"
    assert (await check(inp, "verify token")).status is Status.PASS


async def test_invalid_value_fails_and_names_the_setting(tmp_path: Path, healthy: dict[str, str]) -> None:
    result = await check(doctor_input(tmp_path, {"WA_DEVTUNNEL_PORT": "eighty"}), "settings (.env)")
    assert result.status is Status.FAIL
    assert "WA_DEVTUNNEL_PORT: 'eighty' is not a port number" in result.detail
    assert result.fix == (
        "correct the value(s) named above (each setting is explained in the .env `wa-devtunnel init` writes)"
    )


async def test_missing_env_file_warns(tmp_path: Path) -> None:
    result = await check(doctor_input(tmp_path, {}), "settings (.env)")
    assert result.status is Status.WARN
    assert result.fix == "`wa-devtunnel init` writes a commented .env"


# --- verify token ------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("token", "status", "fix"),
    [
        (" wa-token-with-a-space-0123 ", Status.FAIL, "remove the spaces around the value in .env (check the quotes)"),
        ("short", Status.WARN, "use 16+: `wa-devtunnel token --write-env` writes a strong one to .env"),
        ("my&token#with+odd/chars", Status.WARN, "use only letters, digits, '-', '_', '.', '~': `wa-devtunnel token"),
    ],
)
async def test_verify_token_problems(tmp_path: Path, token: str, status: Status, fix: str) -> None:
    result = await check(doctor_input(tmp_path, {"WHATSAPP_VERIFY_TOKEN": token}), "verify token")
    assert result.status is status
    assert result.fix.startswith(fix)
    if token.strip():
        assert token.strip() not in result.detail


async def test_an_unset_token_kept_for_this_folder_passes_and_says_where(tmp_path: Path) -> None:
    inp = doctor_input(tmp_path, {})
    assert inp.settings.verify_token_source == "project-state" and inp.settings.state_path is not None
    result = await check(inp, "verify token")
    assert result.status is Status.PASS
    assert result.detail == (
        f"WHATSAPP_VERIFY_TOKEN is not set: the token kept in {inp.settings.state_path} "
        f"({mask(inp.settings.verify_token)}) is used, the same at every start here "
        "(`wa-devtunnel token --write-env` puts it in .env)"
    )
    assert inp.settings.verify_token not in result.detail
    again = doctor_input(tmp_path, {})
    assert again.settings.verify_token == inp.settings.verify_token, "the same token at the next run"


async def test_an_unset_token_that_cannot_be_kept_warns_it_is_temporary(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    blocked = tmp_path / "state"
    (blocked / "state.json").mkdir(parents=True)  # something else where the state file goes
    monkeypatch.setenv(STATE_DIR_VARIABLE, str(blocked))
    inp = doctor_input(tmp_path, {})
    assert inp.settings.verify_token_source == "generated"
    result = await check(inp, "verify token")
    assert result.status is Status.WARN
    assert result.detail == f"WHATSAPP_VERIFY_TOKEN is not set and none is kept here: {inp.settings.state_warning}"
    assert "is not a regular file" in result.detail and "new for this run only" in result.detail
    assert result.fix == "`wa-devtunnel token --write-env` writes a strong one to .env"


async def test_good_verify_token_is_masked(tmp_path: Path) -> None:
    result = await check(doctor_input(tmp_path, {"WHATSAPP_VERIFY_TOKEN": VERIFY_TOKEN}), "verify token")
    assert result.status is Status.PASS
    assert VERIFY_TOKEN not in result.detail and mask(VERIFY_TOKEN) in result.detail


# --- app secret --------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("secret", "status", "detail", "fix"),
    [
        ("EAAGm0PX4ZCpsBAKZCZ", Status.FAIL, "is an access token, not the App Secret", "copy the secret from App"),
        ("not-a-secret-at-all", Status.FAIL, "not shaped like an App Secret", "copy it again from App Dashboard"),
        ("", Status.WARN, "X-Hub-Signature-256 is not checked", "copy it from App Dashboard > App settings > Basic"),
    ],
)
async def test_app_secret_problems(tmp_path: Path, secret: str, status: Status, detail: str, fix: str) -> None:
    result = await check(doctor_input(tmp_path, {"WHATSAPP_APP_SECRET": secret}), "app secret")
    assert (result.status, detail in result.detail, result.fix.startswith(fix)) == (status, True, True), result
    if secret:
        assert secret not in result.detail


# --- ngrok -------------------------------------------------------------------------------------


async def test_missing_ngrok_authtoken_warns(tmp_path: Path) -> None:
    result = await check(doctor_input(tmp_path, {}), "ngrok authtoken")
    assert result.status is Status.WARN
    assert result.fix == (
        "get one at https://dashboard.ngrok.com/get-started/your-authtoken and add NGROK_AUTHTOKEN=... to .env"
    )


async def test_ngrok_binary_missing_or_broken_fails(tmp_path: Path) -> None:
    missing = await check_ngrok_binary(doctor_input(tmp_path, {"PYNGROK_NGROK_PATH": str(tmp_path / "nope")}))
    assert missing.status is Status.FAIL
    assert missing.fix == (
        f"point it at the ngrok agent binary (pyngrok downloads it to {conf.DEFAULT_NGROK_PATH}; or get ngrok "
        "from https://ngrok.com/download), or remove it so pyngrok downloads one"
    )
    assert "which ngrok" not in missing.fix  # in a venv with pyngrok that finds pyngrok's Python wrapper
    broken = tmp_path / "ngrok"
    broken.write_text("#!/bin/sh\necho 'segmentation fault' >&2\nexit 139\n")
    broken.chmod(stat.S_IRWXU)
    result = await check_ngrok_binary(doctor_input(tmp_path, {"PYNGROK_NGROK_PATH": str(broken)}))
    assert result.status is Status.FAIL and "segmentation fault" in result.detail
    assert result.fix == "Reinstall ngrok (https://ngrok.com/download) or fix PYNGROK_NGROK_PATH."


async def test_fake_ngrok_binary_passes_and_shows_its_version(tmp_path: Path, fake_ngrok: FakeNgrok) -> None:
    inp = doctor_input(tmp_path, {"PYNGROK_NGROK_PATH": str(fake_ngrok.ngrok_path)})
    result = await check_ngrok_binary(inp)
    assert result.status is Status.PASS, result
    assert result.detail.startswith("ngrok version 3.") and str(fake_ngrok.ngrok_path) in result.detail


async def test_an_agent_older_than_3_30_fails_with_the_binary_to_update(tmp_path: Path) -> None:
    old = tmp_path / "ngrok"
    old.write_text("#!/bin/sh\necho 'ngrok version 2.3.41'\n")
    old.chmod(stat.S_IRWXU)
    result = await check_ngrok_binary(doctor_input(tmp_path, {"PYNGROK_NGROK_PATH": str(old)}))
    assert result.status is Status.FAIL
    assert result.detail == f"the ngrok agent at {old} is version 2.3.41; wa-devtunnel needs 3.30 or newer"
    assert f"run `{old} update`" in result.fix and "PYNGROK_NGROK_PATH" in result.fix


async def test_pyngrok_s_wrapper_as_the_binary_fails_with_the_real_one_named(tmp_path: Path) -> None:
    wrapper = tmp_path / "ngrok"
    wrapper.write_text(f"#!{sys.executable}\nimport sys\nfrom pyngrok.ngrok import main\nsys.exit(main())\n")
    wrapper.chmod(stat.S_IRWXU)
    result = await check_ngrok_binary(doctor_input(tmp_path, {"PYNGROK_NGROK_PATH": str(wrapper)}))
    assert result.status is Status.FAIL
    assert "pyngrok's Python wrapper script" in result.detail
    assert conf.DEFAULT_NGROK_PATH in result.fix


# --- receiver port -----------------------------------------------------------------------------


async def test_busy_port_fails(tmp_path: Path) -> None:
    with socket.socket() as busy:
        busy.bind(("127.0.0.1", 0))
        busy.listen()
        port = busy.getsockname()[1]
        result = await check(doctor_input(tmp_path, {"WA_DEVTUNNEL_PORT": str(port)}), "receiver port")
        assert result.status is Status.FAIL
        assert result.fix == "stop the program using it, or use --port 0 (any free port) / WA_DEVTUNNEL_PORT"
        ours = RunningInstance(os.getpid(), f"http://127.0.0.1:{port}/webhook/whatsapp", "", None, None, None)
        inp = doctor_input(tmp_path, {"WA_DEVTUNNEL_PORT": str(port)}, instance=ours)
        assert (await check(inp, "receiver port")).status is Status.PASS


# --- public URL handshake ----------------------------------------------------------------------


async def test_handshake_with_another_token_fails(
    tmp_path: Path, tunnelled_service: WebhookService, fake_ngrok: FakeNgrok
) -> None:
    env = {"WHATSAPP_VERIFY_TOKEN": "a-different-token-0123456789"}
    inp = doctor_input(tmp_path, env, url=tunnelled_service.callback_url, ssl_context=fake_ngrok.ssl_context())
    result = await check(inp, "public URL handshake")
    assert result.status is Status.FAIL and "HTTP 403" in result.detail
    assert result.fix == "the URL answers with another verify token: use the same WHATSAPP_VERIFY_TOKEN for both"
    url = tunnelled_service.callback_url
    ours = RunningInstance(os.getpid(), tunnelled_service.local_url, url, url.rsplit("/webhook", 1)[0], None, None)
    good = doctor_input(
        tmp_path, {"WHATSAPP_VERIFY_TOKEN": VERIFY_TOKEN}, url=url, instance=ours, ssl_context=fake_ngrok.ssl_context()
    )
    passed = await check(good, "public URL handshake")
    assert passed.status is Status.PASS
    assert passed.detail.startswith(f"{url}: Meta's handshake answered through the tunnel: challenge echoed as text/")
    # The fake tunnel's URL is https://localhost:...: without the instance that owns it, it is judged as local.
    unowned = await check(replace(good, instance=None), "public URL handshake")
    assert unowned.status is Status.WARN and "Meta cannot reach localhost, this machine)" in unowned.detail


async def test_doctors_handshake_to_the_running_instance_is_logged_as_ours_not_as_metas(
    tmp_path: Path, tunnelled_service: WebhookService, fake_ngrok: FakeNgrok
) -> None:
    """The instance's key marks it (selftest): its log never says Meta's handshake arrived when doctor sent it."""
    url = tunnelled_service.callback_url
    public = url.rsplit("/webhook", 1)[0]
    key = tunnelled_service.origin_key
    ours = RunningInstance(os.getpid(), tunnelled_service.local_url, url, public, None, None, origin_key=key)
    env = {"WHATSAPP_VERIFY_TOKEN": VERIFY_TOKEN}
    for target in (url, tunnelled_service.local_url):
        inp = doctor_input(tmp_path, env, url=target, instance=ours, ssl_context=fake_ngrok.ssl_context())
        assert (await check(inp, "public URL handshake")).status in (Status.PASS, Status.WARN)
    assert tunnelled_service.recorder is not None
    records = read_recording(tunnelled_service.recorder.path).records
    assert [r["origin"] for r in records if r["kind"] == "verify"] == ["selftest"] * 3  # the service's own, then ours


async def test_a_local_plain_http_url_is_judged_as_local_never_as_the_tunnel(
    tmp_path: Path, tunnelled_service: WebhookService
) -> None:
    """The receiver answers, but Meta could never call this URL: a WARN that says so."""
    url = tunnelled_service.local_url
    assert url.startswith("http://127.0.0.1:")
    inp = doctor_input(tmp_path, {"WHATSAPP_VERIFY_TOKEN": VERIFY_TOKEN}, url=url)
    result = await check(inp, "public URL handshake")
    assert result.status is Status.WARN
    assert result.detail.startswith(
        f"{url}: Meta's handshake answered locally (not through a tunnel: Meta cannot reach 127.0.0.1, this machine, "
        "and calls only https URLs): challenge echoed as text/plain ("
    )
    assert "through the tunnel" not in result.detail
    assert result.fix == PUBLIC_URL_FIX


@pytest.mark.parametrize(
    ("url", "why"),
    [
        ("https://abc.ngrok-free.app/webhook/whatsapp", ""),
        ("https://localhost:8443/webhook", "Meta cannot reach localhost, this machine"),
        ("https://192.168.1.20/webhook", "Meta cannot reach 192.168.1.20, a private address"),
        ("http://[::1]:8765/webhook", "Meta cannot reach ::1, this machine, and calls only https URLs"),
        ("http://example.com/webhook", "Meta calls only https URLs"),
    ],
)
def test_what_meta_cannot_reach_is_read_from_the_url(url: str, why: str) -> None:
    assert meta_cannot_reach(url) == why


def test_a_good_answer_from_a_url_not_known_as_a_tunnel_is_just_answered() -> None:
    """A public https URL that is not the running instance's (the production webhook): no tunnel claimed."""
    assert judge_handshake_answer(200, "text/plain", "42", "42", route="") == (
        True,
        "Meta's handshake answered: challenge echoed as text/plain",
    )
    assert judge_handshake_answer(200, "application/json", "42", "42", route="") == (
        True,
        "Meta's handshake answered: challenge echoed, but as application/json (text/plain is safest)",
    )


async def test_handshake_to_nothing_fails(tmp_path: Path, unused_tcp_port: int) -> None:
    url = f"http://127.0.0.1:{unused_tcp_port}/webhook/whatsapp"
    result = await check(
        doctor_input(tmp_path, {"WHATSAPP_VERIFY_TOKEN": VERIFY_TOKEN}, url=url), "public URL handshake"
    )
    assert result.status is Status.FAIL and "callback URL unreachable: connection refused" in result.detail
    assert result.fix == "nothing answers at that URL: start `wa-devtunnel` and use the Callback URL it prints"


async def test_handshake_skipped_without_a_url_or_a_token_it_can_know(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    nothing = await check(doctor_input(tmp_path, {}), "public URL handshake")
    assert nothing.status is Status.SKIP and nothing.fix == "start `wa-devtunnel`, or pass --url https://..."
    blocked = tmp_path / "state"
    (blocked / "state.json").mkdir(parents=True)  # no token kept: a running instance made up its own
    monkeypatch.setenv(STATE_DIR_VARIABLE, str(blocked))
    unknown = await check(doctor_input(tmp_path, {}, url="https://x.ngrok-free.app/webhook"), "public URL handshake")
    assert unknown.status is Status.SKIP
    assert unknown.detail == (
        "WHATSAPP_VERIFY_TOKEN is not set and none is kept for this folder, so the running instance's token is unknown"
    )
    assert (
        unknown.fix == "set WHATSAPP_VERIFY_TOKEN in .env (`wa-devtunnel token --write-env`) and restart wa-devtunnel"
    )


async def test_the_token_kept_for_this_folder_is_the_running_instances_so_the_handshake_is_sent(
    tmp_path: Path, unused_tcp_port: int
) -> None:
    url = f"http://127.0.0.1:{unused_tcp_port}/webhook/whatsapp"
    inp = doctor_input(tmp_path, {}, url=url)
    assert inp.settings.verify_token_source == "project-state"
    result = await check(inp, "public URL handshake")
    assert result.status is Status.FAIL and "callback URL unreachable: connection refused" in result.detail


# --- Graph API checks --------------------------------------------------------------------------


async def graph_check(tmp_path: Path, graph: FakeGraph, name: str, url: str | None = None, **env: str) -> CheckResult:
    inp = doctor_input(tmp_path, graph.env(WHATSAPP_VERIFY_TOKEN=VERIFY_TOKEN, **env), url=url)
    return await check(inp, name, graph=True)


async def test_expired_access_token_fails_with_metas_message(tmp_path: Path, fake_graph: FakeGraph) -> None:
    result = await graph_check(tmp_path, fake_graph, "access token", WHATSAPP_ACCESS_TOKEN=EXPIRED_TOKEN)
    assert result.status is Status.FAIL
    assert "Session has expired on" in result.detail and EXPIRED_TOKEN not in result.detail
    assert "(code 190, subcode 463)" in result.detail
    assert result.fix.startswith("the access token is invalid or expired: generate a system-user token")
    invalid = await graph_check(tmp_path, fake_graph, "access token", WHATSAPP_ACCESS_TOKEN="EAAGnotATokenAtAll0123")
    assert invalid.status is Status.FAIL and invalid.detail.startswith("Invalid OAuth access token")


async def test_wrong_app_secret_points_at_the_app_settings(tmp_path: Path, fake_graph: FakeGraph) -> None:
    result = await graph_check(tmp_path, fake_graph, "app subscription", WHATSAPP_APP_SECRET="f" * 32)
    assert result.status is Status.FAIL and "Invalid OAuth access token signature." in result.detail
    assert result.fix.startswith("META_APP_ID / WHATSAPP_APP_SECRET are not this app's ID and secret")
    assert (await graph_check(tmp_path, fake_graph, "access token", WHATSAPP_APP_SECRET="f" * 32)).status is Status.PASS


async def test_valid_token_reports_its_expiry(tmp_path: Path, fake_graph: FakeGraph) -> None:
    result = await graph_check(tmp_path, fake_graph, "access token")
    assert result.status is Status.PASS
    assert (
        result.detail
        == f"{mask(SYSTEM_USER_TOKEN)}: SYSTEM_USER token of wa-devtunnel test app ({APP_ID}), never expires"
    )


async def test_no_app_subscription_fails(tmp_path: Path, fake_graph: FakeGraph) -> None:
    result = await graph_check(tmp_path, fake_graph, "app subscription")
    assert result.status is Status.FAIL
    assert result.fix == "`wa-devtunnel meta subscribe --scope app`, or App Dashboard > WhatsApp > Configuration > Edit"


def subscribe_app(graph: FakeGraph, url: str, *fields: str) -> None:
    graph.state.app_subscription = {
        "object": "whatsapp_business_account",
        "callback_url": url,
        "active": True,
        "fields": [{"name": f, "version": "v23.0"} for f in fields],
    }


async def test_messages_field_not_subscribed_fails(tmp_path: Path, fake_graph: FakeGraph) -> None:
    subscribe_app(fake_graph, "https://prod.example/webhook", "message_template_status_update")
    result = await graph_check(tmp_path, fake_graph, "messages field")
    assert result.status is Status.FAIL
    assert result.fix.startswith("App Dashboard > WhatsApp > Configuration > Webhook fields > messages > Subscribe")


async def test_callback_elsewhere_fails(tmp_path: Path, fake_graph: FakeGraph) -> None:
    ours = "https://kind-otter.ngrok-free.app/webhook/whatsapp"
    subscribe_app(fake_graph, "https://prod.example/webhook", "messages")
    result = await graph_check(tmp_path, fake_graph, "callback URL", url=ours)
    assert result.status is Status.FAIL
    assert result.detail == (
        f"Meta sends `messages` for phone number {PHONE_NUMBER_ID} to https://prod.example/webhook (app callback), "
        f"not {ours}"
    )
    assert result.fix == "`wa-devtunnel meta subscribe` (a phone number override diverts only this number)"
    subscribe_app(fake_graph, ours, "messages")
    fake_graph.state.phone_overrides[PHONE_NUMBER_ID] = "https://colleague.example/webhook"
    shadowed = await graph_check(tmp_path, fake_graph, "callback URL", url=ours)
    assert shadowed.status is Status.FAIL
    assert "is the app callback, but the phone number override https://colleague.example/webhook" in shadowed.detail


async def test_callback_is_ours_through_the_phone_override(
    tmp_path: Path, fake_graph: FakeGraph, tunnelled_service: WebhookService
) -> None:
    async with GraphClient.from_settings(tunnelled_service.settings) as graph:
        await register(graph, tunnelled_service.settings, "phone", tunnelled_service.callback_url, VERIFY_TOKEN)
    result = await graph_check(tmp_path, fake_graph, "callback URL", url=tunnelled_service.callback_url)
    assert result.status is Status.PASS and "(phone number override)" in result.detail


async def test_app_not_subscribed_to_the_waba_fails(tmp_path: Path, fake_graph: FakeGraph) -> None:
    fake_graph.state.app_subscribed_to_waba = False
    result = await graph_check(tmp_path, fake_graph, "app subscribed to WABA")
    assert result.status is Status.FAIL
    assert result.fix.startswith("subscribe the app to the WABA first: curl -X POST")
    assert result.fix.endswith(f"{fake_graph.url}/v23.0/{WABA_ID}/subscribed_apps")


async def test_phone_number_of_another_waba_fails(tmp_path: Path, fake_graph: FakeGraph) -> None:
    result = await graph_check(tmp_path, fake_graph, "phone number in WABA", WHATSAPP_PHONE_NUMBER_ID="999")
    assert result.status is Status.FAIL
    assert result.detail == f"999 is not a number of WABA {WABA_ID} (it has: {PHONE_NUMBER_ID} (+15550783881))"
    assert result.fix == "set WHATSAPP_PHONE_NUMBER_ID to one of them (WhatsApp > API Setup)"


async def test_meta_not_reached_is_a_network_failure_and_stops_the_graph_checks(
    tmp_path: Path, fake_graph: FakeGraph, unused_tcp_port: int
) -> None:
    """No answer is not Meta's answer: named as the network's, with the network's fix; the rest is not asked."""
    closed = f"http://127.0.0.1:{unused_tcp_port}"
    inp = doctor_input(tmp_path, fake_graph.env(WHATSAPP_VERIFY_TOKEN=VERIFY_TOKEN, META_GRAPH_URL=closed))
    graph = (await run_doctor(inp))[-6:]
    assert (graph[0].name, graph[0].status) == ("access token", Status.FAIL)
    assert graph[0].detail == (
        f"could not reach 127.0.0.1:{unused_tcp_port}: connection refused "
        "(no answer from Meta; check your network/proxy)"
    )
    assert graph[0].fix == NETWORK_FIX and "Meta's message" not in graph[0].fix
    assert [r.status for r in graph[1:]] == [Status.SKIP] * 5
    assert graph[1].detail == f"not checked: 127.0.0.1:{unused_tcp_port} did not answer (see access token)"


async def test_after_meta_is_not_reached_no_further_graph_call_is_made(tmp_path: Path, fake_graph: FakeGraph) -> None:
    """Each call would wait as long for the same silence (20 s each on a dead network): one try, then SKIP."""
    connections = 0

    async def hang_up(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        nonlocal connections
        connections += 1
        await reader.read(100)
        writer.close()

    server = await asyncio.start_server(hang_up, "127.0.0.1", 0)
    graph_url = f"http://127.0.0.1:{server.sockets[0].getsockname()[1]}"
    try:
        inp = doctor_input(tmp_path, fake_graph.env(WHATSAPP_VERIFY_TOKEN=VERIFY_TOKEN, META_GRAPH_URL=graph_url))
        graph = (await run_doctor(inp))[-6:]
    finally:
        server.close()
        await server.wait_closed()
    assert connections <= 2  # one call: aiohttp itself retries an idempotent GET once after a disconnect
    assert graph[0].status is Status.FAIL and "protocol error: Server disconnected" in graph[0].detail
    assert [r.status for r in graph[1:]] == [Status.SKIP] * 5


def test_metas_error_without_known_advice_points_at_its_error_codes(tmp_path: Path) -> None:
    inp = doctor_input(tmp_path, {})
    result = _failed("access token", GraphError("(#4) Application request limit reached", code=4), inp.settings)
    assert (result.status, result.detail) == (Status.FAIL, "(#4) Application request limit reached")
    assert result.fix == f"look up Meta's error code above in {ERROR_GUIDE}"


async def test_graph_checks_skip_without_credentials(tmp_path: Path) -> None:
    results = await run_doctor(doctor_input(tmp_path, {}))
    graph = results[7:]
    assert [r.status for r in graph] == [Status.SKIP] * 6
    assert graph[0].fix.startswith("set WHATSAPP_ACCESS_TOKEN")


# --- the command -------------------------------------------------------------------------------


@pytest.fixture
def clean_env(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Path]:
    for name in list(os.environ):
        if name.startswith(SETTING_PREFIXES):
            monkeypatch.delenv(name)
    monkeypatch.chdir(tmp_path)
    yield tmp_path


def test_cli_exit_code_and_json(
    clean_env: Path,
    healthy: dict[str, str],
    threaded_fake_graph: FakeGraph,
    capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    for key, value in threaded_fake_graph.env().items():
        monkeypatch.setenv(key, value)
    assert main(["doctor"]) == 1  # no app subscription: FAIL
    text = capsys.readouterr().out
    assert "FAIL  app subscription" in text
    assert "fix: `wa-devtunnel meta subscribe --scope app`" in text
    for secret in (APP_SECRET, SYSTEM_USER_TOKEN, DEFAULT_AUTHTOKEN):
        assert secret not in text

    subscribe_app(threaded_fake_graph, "https://prod.example/webhook", "messages")
    assert main(["doctor", "--json"]) == 0  # no --url and nothing running: routing is SKIP, not FAIL
    report = json.loads(capsys.readouterr().out)
    assert report["ok"] is True
    assert {c["name"]: c["status"] for c in report["checks"]}["callback URL"] == "SKIP"
    assert all(set(c) == {"name", "status", "detail", "fix"} for c in report["checks"])


def test_cli_tunnel_cloudflared_checks_its_binary(clean_env: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """`doctor --tunnel cloudflared` checks cloudflared (here: not installed, with where to get it)."""
    (clean_env / ".env").write_text(f"CLOUDFLARED_PATH={clean_env / 'no-cloudflared'}\n")
    assert main(["doctor", "--tunnel", "cloudflared", "--json"]) == 1
    checks = {c["name"]: c for c in json.loads(capsys.readouterr().out)["checks"]}
    cloudflared = [c for name, c in checks.items() if "cloudflared" in name]
    assert cloudflared and cloudflared[0]["status"] == "FAIL", checks
    assert "no-cloudflared" in cloudflared[0]["detail"]
    assert main(["doctor", "--json"]) in (0, 1)  # without it: no cloudflared line
    assert not [c for c in json.loads(capsys.readouterr().out)["checks"] if "cloudflared" in c["name"]]
