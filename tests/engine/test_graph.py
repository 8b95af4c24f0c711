"""The Graph API client against a fake Meta that really performs the handshake through the fake ngrok agent."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from aiohttp import web

from tests.support.constants import VERIFY_TOKEN
from tests.support.fake_graph import (
    APP_ID,
    EXPIRED_TOKEN,
    PHONE_NUMBER_ID,
    VERSION,
    WABA_ID,
    FakeGraph,
    FakeToken,
    graph_settings,
)
from wa_devtunnel.engine.http_client import Failure
from wa_devtunnel.engine.meta.errors import NETWORK_FIX
from wa_devtunnel.engine.meta.graph import (
    GraphClient,
    GraphError,
    GraphUnreachable,
    TokenInfo,
    advice_for,
    check_callback_url,
)
from wa_devtunnel.engine.meta.registration import Registration, register, unregister
from wa_devtunnel.engine.recording import read_recording
from wa_devtunnel.engine.service import WebhookService
from wa_devtunnel.settings import load_settings

PROD_TOKEN = "prod-verify-token-0123456789"
WRONG_2200 = "(#2200) Callback verification failed with the following errors: HTTP Status Code = 403"


@pytest.fixture
async def production(aiohttp_server: Any) -> str:
    """The developer's deployed webhook: answers the handshake for its own token only."""

    async def verify(request: web.Request) -> web.Response:
        if request.query.get("hub.verify_token") != PROD_TOKEN:
            return web.Response(status=403, text="forbidden")
        return web.Response(text=request.query["hub.challenge"])

    app = web.Application()
    app.router.add_get("/prod/webhook", verify)
    server = await aiohttp_server(app)
    return str(server.make_url("/prod/webhook"))


async def test_phone_subscribe_handshakes_through_the_tunnel_to_our_receiver(
    tunnelled_service: WebhookService, fake_graph: FakeGraph
) -> None:
    settings = tunnelled_service.settings
    async with GraphClient.from_settings(settings) as graph:
        registration = await register(graph, settings, "phone", tunnelled_service.callback_url, VERIFY_TOKEN)
        config = await graph.phone_webhook_configuration(PHONE_NUMBER_ID)
    assert registration == Registration("phone", tunnelled_service.callback_url, PHONE_NUMBER_ID)
    assert config.effective() == (tunnelled_service.callback_url, "phone number override")
    assert fake_graph.handshakes[-1].ok and fake_graph.handshakes[-1].url == tunnelled_service.callback_url
    assert tunnelled_service.callback_url.startswith("https://")
    assert tunnelled_service.recorder is not None
    verifies = [r for r in read_recording(tunnelled_service.recorder.path).records if r["kind"] == "verify"]
    assert [(r["origin"], r["verify"]["ok"]) for r in verifies] == [("selftest", True), ("meta", True)]


async def test_wrong_verify_token_is_meta_error_2200_verbatim(
    tunnelled_service: WebhookService, fake_graph: FakeGraph
) -> None:
    settings = tunnelled_service.settings
    async with GraphClient.from_settings(settings) as graph:
        with pytest.raises(GraphError) as caught:
            await graph.set_phone_override(PHONE_NUMBER_ID, tunnelled_service.callback_url, "not-our-token")
    error = caught.value
    assert (error.code, error.type) == (2200, "OAuthException")
    assert str(error).startswith(WRONG_2200), str(error)
    assert error.fbtrace_id
    assert "verify token" in advice_for(error)
    assert fake_graph.state.phone_overrides == {}
    assert tunnelled_service.recorder is not None
    last = read_recording(tunnelled_service.recorder.path).records[-1]
    assert last["verify"]["ok"] is False and "token mismatch" in last["verify"]["reason"]


async def test_waba_override_before_the_app_is_subscribed_is_error_100(
    tunnelled_service: WebhookService, fake_graph: FakeGraph
) -> None:
    fake_graph.state.app_subscribed_to_waba = False
    settings = tunnelled_service.settings
    async with GraphClient.from_settings(settings) as graph:
        with pytest.raises(GraphError) as caught:
            await register(graph, settings, "waba", tunnelled_service.callback_url, VERIFY_TOKEN)
        assert caught.value.code == 100
        assert str(caught.value) == "(#100) Before override the current callback uri, your app must be subscribed"
        assert f"/{WABA_ID}/subscribed_apps" in advice_for(caught.value, WABA_ID)
        assert fake_graph.handshakes == []
        await graph.subscribe_app_to_waba(WABA_ID)  # the fix the advice gives
        await register(graph, settings, "waba", tunnelled_service.callback_url, VERIFY_TOKEN)
    assert fake_graph.state.waba_override == tunnelled_service.callback_url


async def test_expired_token_is_error_190_with_metas_message(tmp_path: Path, fake_graph: FakeGraph) -> None:
    settings = graph_settings(tmp_path, fake_graph, WHATSAPP_ACCESS_TOKEN=EXPIRED_TOKEN, META_APP_ID="")
    async with GraphClient.from_settings(settings) as graph:
        with pytest.raises(GraphError) as caught:
            await graph.set_phone_override(PHONE_NUMBER_ID, "https://example.test/webhook", VERIFY_TOKEN)
        with pytest.raises(GraphError) as inspected:
            await graph.debug_token()
    for error in (caught.value, inspected.value):
        assert (error.code, error.error_subcode) == (190, 463)
        assert error.message.startswith("Error validating access token: Session has expired on ")
        assert "WHATSAPP_ACCESS_TOKEN" in advice_for(error)
    assert "(code 190, subcode 463)" in str(caught.value)
    assert fake_graph.handshakes == []


async def test_debug_token_reports_validity_and_expiry(tmp_path: Path, fake_graph: FakeGraph) -> None:
    async with GraphClient.from_settings(graph_settings(tmp_path, fake_graph)) as graph:
        info = await graph.debug_token()
    assert info.valid and info.app_id == APP_ID and info.type == "SYSTEM_USER"
    assert info.expiry_text() == "never expires"
    soon = int((datetime.now(UTC) + timedelta(days=3, hours=1)).timestamp())
    fake_graph.tokens["EAAGshortLivedUserToken0123456789abcdef"] = FakeToken(type="USER", expires_at=soon)
    short = graph_settings(tmp_path, fake_graph, WHATSAPP_ACCESS_TOKEN="EAAGshortLivedUserToken0123456789abcdef")
    async with GraphClient.from_settings(short) as graph:
        info = await graph.debug_token()
    assert info.valid and info.type == "USER" and info.expiry_text().endswith("(in 3 days)")


async def test_debug_token_falls_back_to_the_app_token_then_me(tmp_path: Path, fake_graph: FakeGraph) -> None:
    fake_graph.debug_token_needs_a_developer = True
    async with GraphClient.from_settings(graph_settings(tmp_path, fake_graph)) as graph:
        info = await graph.debug_token()
    assert info.valid and info.expiry_text() == "never expires"
    without_app = graph_settings(tmp_path, fake_graph, META_APP_ID="")
    async with GraphClient.from_settings(without_app) as graph:
        info = await graph.debug_token()
    assert info.valid and info.expiry_text() == "expiry unknown (/debug_token refused, /me answered)"
    assert ("GET", f"/{VERSION}/me") in fake_graph.requests


def test_expiry_text_counts_down() -> None:
    now = datetime(2026, 11, 26, 12, tzinfo=UTC)
    soon = TokenInfo(True, APP_ID, "app", "USER", now + timedelta(hours=5), ())
    later = TokenInfo(True, APP_ID, "app", "USER", now + timedelta(days=59, hours=1), ())
    assert soon.expiry_text(now) == "expires 2026-11-26 17:00 UTC (in 5 hours)"
    assert later.expiry_text(now) == "expires 2027-01-24 13:00 UTC (in 59 days)"


async def test_unsubscribe_restores_the_previous_routing(
    tunnelled_service: WebhookService, fake_graph: FakeGraph, production: str
) -> None:
    fake_graph.state.app_subscription = {
        "object": "whatsapp_business_account",
        "callback_url": production,
        "active": True,
        "fields": [
            {"name": "messages", "version": VERSION},
            {"name": "message_template_status_update", "version": VERSION},
        ],
    }
    settings = tunnelled_service.settings
    async with GraphClient.from_settings(settings) as graph:
        phone = await register(graph, settings, "phone", tunnelled_service.callback_url, VERIFY_TOKEN)
        assert "removed the phone number override" in await unregister(graph, settings, phone)
        assert (await graph.phone_webhook_configuration(PHONE_NUMBER_ID)).effective() == (production, "app callback")

        app = await register(graph, settings, "app", tunnelled_service.callback_url, VERIFY_TOKEN)
        assert app.previous is not None and app.previous.callback_url == production
        assert (await graph.waba_app_subscription()).callback_url == tunnelled_service.callback_url  # type: ignore[union-attr]
        with pytest.raises(GraphError) as refused:  # production's handshake needs production's token
            await unregister(graph, settings, app)
        assert refused.value.code == 2200
        restoring = load_settings(
            {"recordings_dir": str(settings.recordings_dir)},
            environ=fake_graph.env(WHATSAPP_VERIFY_TOKEN=VERIFY_TOKEN, WA_DEVTUNNEL_RESTORE_VERIFY_TOKEN=PROD_TOKEN),
        )
        assert "restored the app callback" in await unregister(graph, restoring, app)
        restored = await graph.waba_app_subscription()
    assert restored is not None and restored.callback_url == production
    assert restored.field_names == ("messages", "message_template_status_update")


async def test_unregister_leaves_an_override_someone_else_set(
    tunnelled_service: WebhookService, fake_graph: FakeGraph
) -> None:
    settings = tunnelled_service.settings
    async with GraphClient.from_settings(settings) as graph:
        ours = await register(graph, settings, "phone", tunnelled_service.callback_url, VERIFY_TOKEN)
        fake_graph.state.phone_overrides[PHONE_NUMBER_ID] = "https://colleague.example/webhook"
        said = await unregister(graph, settings, ours)
    assert said.startswith("left the phone routing alone")
    assert fake_graph.state.phone_overrides[PHONE_NUMBER_ID] == "https://colleague.example/webhook"


async def test_an_override_url_over_200_characters_is_refused_before_calling_meta(
    tmp_path: Path, fake_graph: FakeGraph
) -> None:
    long_url = "https://x.ngrok-free.app/" + "w" * 190
    async with GraphClient.from_settings(graph_settings(tmp_path, fake_graph)) as graph:
        with pytest.raises(ValueError, match="at most 200"):
            await graph.set_phone_override(PHONE_NUMBER_ID, long_url, VERIFY_TOKEN)
        with pytest.raises(ValueError, match="at most 200"):
            await graph.subscribe_app_to_waba(WABA_ID, long_url, VERIFY_TOKEN)
    assert fake_graph.requests == []


def test_errors_that_are_not_metas_json_stay_readable() -> None:
    error = GraphError.from_response(502, "<html><body>Bad gateway</body></html>")
    assert str(error) == "HTTP 502 from the Graph API: <html><body>Bad gateway</body></html>"
    assert error.code is None
    parsed = GraphError.from_response(
        400,
        '{"error":{"message":"Invalid OAuth access token - Cannot parse access token","type":"OAuthException",'
        '"code":190,"fbtrace_id":"AbC"}}',
    )
    assert str(parsed) == "Invalid OAuth access token - Cannot parse access token (code 190)"
    assert parsed.details() == "OAuthException, code 190, fbtrace_id AbC"


async def test_no_answer_is_a_network_error_never_metas_words(unused_tcp_port: int) -> None:
    """A closed port: could not reach, the cause, and that Meta said nothing (no code, no fbtrace_id)."""
    async with GraphClient(f"http://127.0.0.1:{unused_tcp_port}", "v23.0", "token") as graph:
        with pytest.raises(GraphUnreachable) as caught:
            await graph.waba_phone_numbers(WABA_ID)
    error = caught.value
    assert isinstance(error, GraphError) and error.unreachable  # callers catching GraphError still catch it
    assert str(error) == (
        f"could not reach 127.0.0.1:{unused_tcp_port}: connection refused "
        "(no answer from Meta; check your network/proxy)"
    )
    assert (error.code, error.fbtrace_id, error.details()) == (None, "", "")
    assert error.failure.kind is Failure.REFUSED
    assert advice_for(error) == NETWORK_FIX and "HTTPS_PROXY" in NETWORK_FIX


async def test_graph_facebook_com_is_named_without_its_usual_port() -> None:
    assert GraphClient("https://graph.facebook.com", "v23.0").host == "graph.facebook.com"
    assert GraphClient("http://127.0.0.1:8080/", "v23.0").host == "127.0.0.1:8080"


async def test_debug_token_does_not_retry_other_tokens_when_meta_is_not_reached(unused_tcp_port: int) -> None:
    """Each fallback would wait as long for the same silence: the first network failure is the answer."""
    async with GraphClient(f"http://127.0.0.1:{unused_tcp_port}", "v23.0", "token", APP_ID, "secret") as graph:
        with pytest.raises(GraphUnreachable):
            await graph.debug_token()


async def test_the_proxy_this_machine_uses_is_named_when_it_fails(
    unused_tcp_port: int, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Graph calls follow HTTPS_PROXY/HTTP_PROXY like the machine's other clients; a dead proxy is named as such."""
    monkeypatch.setenv("HTTP_PROXY", f"http://127.0.0.1:{unused_tcp_port}")
    monkeypatch.delenv("NO_PROXY", raising=False)
    monkeypatch.delenv("no_proxy", raising=False)
    async with GraphClient("http://graph.invalid", "v23.0", "token") as graph:
        with pytest.raises(GraphUnreachable) as caught:
            await graph.waba_phone_numbers(WABA_ID)
    assert str(caught.value) == (
        f"could not reach graph.invalid: proxy 127.0.0.1:{unused_tcp_port} unreachable: connection refused "
        "(no answer from Meta; check your network/proxy)"
    )
    assert caught.value.failure.kind is Failure.PROXY


async def test_a_proxy_that_refuses_the_tunnel_is_named_with_its_answer(monkeypatch: pytest.MonkeyPatch) -> None:
    """HTTPS through a proxy starts with CONNECT: a 407 there is the proxy's answer, not Meta's."""

    async def proxy(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await reader.readuntil(b"\r\n\r\n")
        writer.write(b"HTTP/1.1 407 Proxy Authentication Required\r\nContent-Length: 0\r\n\r\n")
        await writer.drain()
        writer.close()

    server = await asyncio.start_server(proxy, "127.0.0.1", 0)
    port = server.sockets[0].getsockname()[1]
    monkeypatch.setenv("HTTPS_PROXY", f"http://127.0.0.1:{port}")
    try:
        async with GraphClient("https://graph.facebook.com", "v23.0", "token") as graph:
            with pytest.raises(GraphUnreachable) as caught:
                await graph.waba_phone_numbers(WABA_ID)
    finally:
        server.close()
        await server.wait_closed()
    assert str(caught.value) == (
        f"could not reach graph.facebook.com: proxy 127.0.0.1:{port} answered 407 Proxy Authentication Required "
        "(no answer from Meta; check your network/proxy)"
    )


def test_only_https_callback_urls_go_to_meta() -> None:
    check_callback_url("https://abc.ngrok-free.app/webhook/whatsapp")
    for url in ("http://127.0.0.1:8765/webhook/whatsapp", "http://abc.ngrok-free.app/webhook", "abc.ngrok-free.app"):
        with pytest.raises(ValueError, match="is not an https URL: Meta calls only https callback URLs"):
            check_callback_url(url)
