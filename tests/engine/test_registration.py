"""`up --register`: Meta pointed at the tunnel, re-pointed when the URL changes, restored on exit; live hints."""

from __future__ import annotations

import asyncio
import signal
import socket
import subprocess
import sys
from pathlib import Path
from typing import Any

import aiohttp
import pytest

from tests.support.cli_process import registering_env, running_cli, wait_for
from tests.support.constants import VERIFY_TOKEN
from tests.support.fake_graph import APP_SECRET, PHONE_NUMBER_ID, FakeGraph
from tests.support.fake_ngrok import FakeNgrok, MakeFakeNgrok, pid_alive
from tests.support.meta_client import MetaLikeSender
from wa_devtunnel.engine.events import Notice, RegistrationChanged, Subscription
from wa_devtunnel.engine.service import WebhookService
from wa_devtunnel.engine.tunnel.ngrok import NgrokTunnel
from wa_devtunnel.rules.samples import payloads as samples
from wa_devtunnel.settings import ConfigError, load_settings

UNKNOWN_HINT = "phone_number_id {} matches no configured account: set WHATSAPP_PHONE_NUMBER_ID={} or add it to"


def registering(tmp_path: Path, fake: FakeNgrok, graph: FakeGraph, scope: str = "phone", **env: str) -> WebhookService:
    settings = load_settings(
        {"port": "0", "recordings_dir": str(tmp_path / "rec"), "tunnel": "ngrok", "register": scope},
        environ=graph.env(WHATSAPP_VERIFY_TOKEN=VERIFY_TOKEN, **env),
        cwd=tmp_path,
    )
    tunnel = NgrokTunnel("fake-authtoken", ngrok_path=str(fake.ngrok_path))
    return WebhookService(settings, tunnel=tunnel, selftest_ssl=fake.ssl_context())


async def notice(events: Subscription, topic: str, timeout: float = 15.0) -> Notice:
    async def wait() -> Notice:
        while True:
            event = await events.get()
            if isinstance(event, Notice) and event.topic == topic:
                return event

    return await asyncio.wait_for(wait(), timeout)


async def test_register_follows_a_new_tunnel_url_and_removes_the_override_on_exit(
    tmp_path: Path, make_fake_ngrok: MakeFakeNgrok, fake_graph: FakeGraph
) -> None:
    fake = make_fake_ngrok(mode="die-after=2")
    service = registering(tmp_path, fake, fake_graph)
    events = service.bus.subscribe()
    await service.start()
    # The agent started next (the reconnect) stays up, on another domain: a URL that changed, as a random
    # (paid) URL does (the free plan's dev domain would come back the same).
    fake.set_mode("ok", FAKE_NGROK_DEV_DOMAIN="another-dev-domain.ngrok-free.dev")
    first_url = service.callback_url
    try:
        first = await notice(events, "register")
        assert first.level == "info", first.text
        assert first.text.startswith(f"Meta verified {first_url} and now sends webhooks for phone number")
        assert fake_graph.state.phone_overrides == {PHONE_NUMBER_ID: first_url}
        again = await notice(events, "register", timeout=25)
        assert "re-registered: the tunnel URL changed" in again.text, again.text
        assert service.callback_url != first_url
        assert fake_graph.state.phone_overrides == {PHONE_NUMBER_ID: service.callback_url}
        assert [h.ok for h in fake_graph.handshakes] == [True, True]
    finally:
        await service.stop()
    assert fake_graph.state.phone_overrides == {}
    undone = await notice(events, "register")
    assert undone.text == f"--register phone: removed the phone number override of {PHONE_NUMBER_ID}"
    assert not any(pid_alive(e["pid"]) for e in fake._log_entries() if e["argv"][:1] == ["start"])


async def test_register_app_restores_the_previous_callback(
    tmp_path: Path, fake_ngrok: FakeNgrok, fake_graph: FakeGraph, aiohttp_server: Any
) -> None:
    from aiohttp import web

    async def production(request: web.Request) -> web.Response:
        ok = request.query.get("hub.verify_token") == "prod-token"
        return web.Response(text=request.query["hub.challenge"]) if ok else web.Response(status=403)

    app = web.Application()
    app.router.add_get("/hook", production)
    prod_url = str((await aiohttp_server(app)).make_url("/hook"))
    fake_graph.state.app_subscription = {
        "object": "whatsapp_business_account",
        "callback_url": prod_url,
        "active": True,
        "fields": [{"name": "messages", "version": "v23.0"}],
    }
    service = registering(tmp_path, fake_ngrok, fake_graph, "app", WA_DEVTUNNEL_RESTORE_VERIFY_TOKEN="prod-token")
    events = service.bus.subscribe()
    await service.start()
    try:
        assert "(app callback)" in (await notice(events, "register")).text
        assert fake_graph.state.app_subscription["callback_url"] == service.callback_url
    finally:
        await service.stop()
    assert fake_graph.state.app_subscription["callback_url"] == prod_url
    assert (await notice(events, "register")).text.endswith(
        f"restored the app callback of 1234567890123456 to {prod_url}"
    )


async def test_refused_registration_says_metas_error_and_undoes_nothing(
    tmp_path: Path, fake_ngrok: FakeNgrok, fake_graph: FakeGraph
) -> None:
    fake_graph.state.app_subscribed_to_waba = False
    service = registering(tmp_path, fake_ngrok, fake_graph, "waba")
    events = service.bus.subscribe()
    await service.start()
    try:
        refused = await notice(events, "register")
    finally:
        await service.stop()
    assert refused.level == "error"
    assert "(#100) Before override the current callback uri, your app must be subscribed" in refused.text
    assert "/subscribed_apps" in refused.text
    # GET: where the WABA routed before (for the "was:" of the line); POST: refused; nothing to undo on exit
    assert [m for m, _ in fake_graph.requests] == ["GET", "POST"]


async def test_quiet_after_registering_says_what_to_check(
    tmp_path: Path, fake_ngrok: FakeNgrok, fake_graph: FakeGraph
) -> None:
    service = registering(tmp_path, fake_ngrok, fake_graph, WA_DEVTUNNEL_QUIET_AFTER_REGISTER="0.5")
    events = service.bus.subscribe()
    await service.start()
    try:
        await notice(events, "register")
        quiet = await notice(events, "quiet", timeout=5)
    finally:
        await service.stop()
    assert quiet.level == "warning"
    assert quiet.text.startswith("No webhook from Meta in 0.5 s since registering https://")
    for check in ("field `messages` subscribed", "app subscribed to the WABA", "test number"):
        assert check in quiet.text


async def test_an_event_from_meta_keeps_the_quiet_hint_away(
    tmp_path: Path, fake_ngrok: FakeNgrok, fake_graph: FakeGraph
) -> None:
    service = registering(tmp_path, fake_ngrok, fake_graph, WA_DEVTUNNEL_QUIET_AFTER_REGISTER="1.5")
    events = service.bus.subscribe()
    await service.start()
    try:
        await notice(events, "register")
        async with fake_ngrok.client_session() as session:
            sender = MetaLikeSender(session, service.callback_url, APP_SECRET)
            assert await sender.deliver(samples.text_message_payload(phone_number_id=PHONE_NUMBER_ID)) == [200]
        with pytest.raises(TimeoutError):
            await notice(events, "quiet", timeout=2.5)
    finally:
        await service.stop()


async def test_register_without_a_tunnel_is_refused_at_start_with_no_graph_call(
    tmp_path: Path, fake_graph: FakeGraph
) -> None:
    settings = load_settings(
        {"port": "0", "recordings_dir": str(tmp_path / "rec"), "tunnel": "none", "register": "phone"},
        environ=fake_graph.env(WHATSAPP_VERIFY_TOKEN=VERIFY_TOKEN),
        cwd=tmp_path,
    )
    service = WebhookService(settings)
    with pytest.raises(ConfigError) as refused:
        await service.start()
    assert refused.value.setting == "--register"
    assert f"Meta only calls public HTTPS URLs and --tunnel none serves {service.local_url} (local only)" in str(
        refused.value
    )
    assert "nothing was sent to Meta" in str(refused.value)
    assert fake_graph.requests == []
    assert list((tmp_path / "rec").glob("*.jsonl")) == [], "no empty session is left behind"
    probe = socket.socket()
    try:  # the port it had bound is free again
        probe.bind(("127.0.0.1", service.port))
    finally:
        probe.close()


async def test_a_failed_tunnel_makes_register_a_failed_state_without_a_graph_call(
    tmp_path: Path, make_fake_ngrok: MakeFakeNgrok, fake_graph: FakeGraph
) -> None:
    service = registering(tmp_path, make_fake_ngrok(mode="no-authtoken"), fake_graph)
    events = service.bus.subscribe()
    await service.start()
    await service.stop()
    [state] = [e for e in events.drain() if isinstance(e, RegistrationChanged)]
    assert (state.state, state.scope, state.target) == ("failed", "phone", PHONE_NUMBER_ID)
    assert state.detail == (
        "not registered, Meta needs a public HTTPS URL and the tunnel is failed (see why above; fix it and start again)"
    )
    assert fake_graph.requests == []


async def test_register_states_say_what_it_replaced_and_that_it_was_undone(
    tmp_path: Path, fake_ngrok: FakeNgrok, fake_graph: FakeGraph
) -> None:
    colleague = "https://colleague.example/webhook"
    fake_graph.state.phone_overrides[PHONE_NUMBER_ID] = colleague
    service = registering(tmp_path, fake_ngrok, fake_graph)
    states: list[RegistrationChanged] = []
    service.bus.add_listener(lambda e: states.append(e) if isinstance(e, RegistrationChanged) else None)
    events = service.bus.subscribe()
    await service.start()
    try:
        await notice(events, "register")
    finally:
        await service.stop()
    assert [s.state for s in states] == ["registering", "registered", "undoing", "undone"]
    registered, undone = states[1], states[3]
    assert (registered.url, registered.previous, registered.target) == (
        service.callback_url,
        colleague,
        PHONE_NUMBER_ID,
    )
    assert undone.url == service.callback_url
    assert undone.detail == f"removed the phone number override of {PHONE_NUMBER_ID}"
    assert fake_graph.state.phone_overrides == {}


async def test_a_refused_registration_is_a_failed_state_with_metas_words(
    tmp_path: Path, fake_ngrok: FakeNgrok, fake_graph: FakeGraph
) -> None:
    fake_graph.state.app_subscribed_to_waba = False
    service = registering(tmp_path, fake_ngrok, fake_graph, "waba")
    states: list[RegistrationChanged] = []
    service.bus.add_listener(lambda e: states.append(e) if isinstance(e, RegistrationChanged) else None)
    events = service.bus.subscribe()
    await service.start()
    try:
        await notice(events, "register")
    finally:
        await service.stop()
    assert [s.state for s in states] == ["registering", "failed"]  # nothing registered: nothing to undo
    assert states[1].detail.startswith("Meta refused it: (#100) Before override the current callback uri")


def test_sighup_to_a_headless_register_undoes_it_and_says_so(
    tmp_path: Path, fake_ngrok: FakeNgrok, threaded_fake_graph: FakeGraph
) -> None:
    """Closing the terminal (SIGHUP) must not leave Meta's override on a dead URL."""
    env = registering_env(tmp_path, fake_ngrok, threaded_fake_graph)
    argv = [sys.executable, "-m", "wa_devtunnel", "up", "--headless", "--port", "0", "--register", "phone"]
    out_path, err_path = tmp_path / "up.stdout", tmp_path / "up.stderr"
    overrides = threaded_fake_graph.state.phone_overrides
    with open(out_path, "wb") as out, open(err_path, "wb") as err:
        proc = subprocess.Popen(argv, cwd=tmp_path, env=env, stdout=out, stderr=err, start_new_session=True)
    try:
        wait_for(lambda: overrides.get(PHONE_NUMBER_ID, "").startswith("https://"), "Meta pointed at the tunnel", 30)
        url = overrides[PHONE_NUMBER_ID]
        wait_for(lambda: "Registered " in out_path.read_text(), "the Registered line", 10)
        proc.send_signal(signal.SIGHUP)
        assert proc.wait(timeout=20) == 0
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait(timeout=10)
    stdout, stderr = out_path.read_text(), err_path.read_text()
    assert overrides == {}, stderr
    assert f"Registered {url} as phone number {PHONE_NUMBER_ID}'s webhook (was: none); undone on exit" in stdout
    assert f"Registration undone: removed the phone number override of {PHONE_NUMBER_ID}" in stderr
    # the undo comes before the last line, so a TUI can repeat both once its screen is gone
    assert stderr.index("Registration undone") < stderr.index("Stopped after")
    assert "[info] --register phone" not in stderr, "the state line says it: the notice is not repeated"


def test_register_needs_its_credentials(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="phone needs WHATSAPP_ACCESS_TOKEN and WHATSAPP_PHONE_NUMBER_ID"):
        load_settings({"register": "phone"}, environ={}, cwd=tmp_path)
    with pytest.raises(ConfigError, match="app needs META_APP_ID"):
        load_settings({"register": "app"}, environ={"WHATSAPP_APP_SECRET": APP_SECRET}, cwd=tmp_path)


async def test_unknown_phone_number_id_hint_once_per_number(tmp_path: Path) -> None:
    settings = load_settings(
        {"port": "0", "recordings_dir": str(tmp_path / "rec"), "tunnel": "none"},
        environ={"WHATSAPP_VERIFY_TOKEN": VERIFY_TOKEN, "WHATSAPP_PHONE_NUMBER_ID": "111"},
        cwd=tmp_path,
    )
    service = WebhookService(settings)
    events = service.bus.subscribe()
    await service.start()
    async with aiohttp.ClientSession() as session:
        sender = MetaLikeSender(session, service.local_url)
        for number in ("222", "222", "333", "111"):
            assert await sender.deliver(samples.text_message_payload(phone_number_id=number)) == [200]
    await service.stop()
    hints = [e for e in events.drain() if isinstance(e, Notice) and e.topic == "unknown-phone-number-id"]
    assert [h.text for h in hints] == [
        UNKNOWN_HINT.format("222", "222") + " wa-devtunnel.toml",
        UNKNOWN_HINT.format("333", "333") + " wa-devtunnel.toml",
    ]
    assert {h.level for h in hints} == {"hint"}


def test_headless_prints_the_unknown_number_hint_once(tmp_path: Path) -> None:
    lines = ["WHATSAPP_VERIFY_TOKEN=wa-cli-verify-token", "WHATSAPP_PHONE_NUMBER_ID=111"]
    with running_cli(tmp_path, env_lines=lines) as cli:

        async def send() -> None:
            async with aiohttp.ClientSession() as session:
                sender = MetaLikeSender(session, cli.callback_url)
                for _ in range(3):
                    await sender.deliver(samples.text_message_payload(phone_number_id=PHONE_NUMBER_ID))

        asyncio.run(send())
        cli.stop()
    hint = "[hint] " + UNKNOWN_HINT.format(PHONE_NUMBER_ID, PHONE_NUMBER_ID)
    assert cli.stderr().count(hint) == 1, cli.stderr()
    assert cli.stdout().count("unknown-phone-number-id") == 3
