"""Did Meta's handshake arrive? Said when it does (Verify and save, --register), and when a registration saw none."""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Any, TextIO

import aiohttp
import pytest
from aiohttp import web

from tests.support.constants import VERIFY_TOKEN
from tests.support.fake_graph import PHONE_NUMBER_ID, FakeGraph
from wa_devtunnel.engine.events import EventBus, ExchangeRecorded, Notice, SelfTestFinished, Subscription
from wa_devtunnel.engine.meta.errors import GraphError
from wa_devtunnel.engine.meta.handshake_watch import HandshakeWatch
from wa_devtunnel.engine.meta.registration import Registrar
from wa_devtunnel.engine.service import WebhookService
from wa_devtunnel.engine.tunnel.provider import AgentFootprint, TunnelHealth
from wa_devtunnel.settings import Settings, load_settings

URL = "https://dev-domain.ngrok-free.app/webhook/whatsapp"
WAIT_S = 0.2
CAVEAT = '"because Meta validates your ngrok domain and certificate" (community reports are mixed)'


def verify(ok: bool = True, origin: str = "meta", reason: str = "") -> ExchangeRecorded:
    record = {"id": "x", "seq": 1, "kind": "verify", "origin": origin, "verify": {"ok": ok, "reason": reason}}
    return ExchangeRecorded(None, record)


def handshake_notices(events: Subscription) -> list[Notice]:
    return [e for e in events.drain() if isinstance(e, Notice) and e.topic == "handshake"]


def test_each_new_outcome_of_metas_handshake_is_said_once_per_url() -> None:
    bus = EventBus()
    watch = HandshakeWatch(bus, "ngrok")
    bus.add_listener(watch.observe)
    events = bus.subscribe()
    bus.publish(verify())  # local-only so far: no public URL, nothing to say
    watch.expect(URL)
    for event in (verify(), verify(), verify(origin="selftest"), verify(False, reason="token mismatch"), verify()):
        bus.publish(event)
    said = handshake_notices(events)
    assert [(n.level, n.text.split(":")[0]) for n in said] == [
        ("info", "Meta's handshake arrived and was answered with the challenge"),
        ("warning", "Meta's handshake arrived but failed"),
        ("info", "Meta's handshake arrived and was answered with the challenge"),
    ]
    assert said[0].text.endswith(f"Meta accepts {URL} and your verify token.")
    assert said[1].text.startswith("Meta's handshake arrived but failed: token mismatch.")
    assert 'click "Verify and save" again' in said[1].text
    assert watch.arrived == 4  # each of Meta's once a public URL exists; ours (selftest) never
    watch.expect(URL)  # the same URL announced again: nothing new
    bus.publish(verify())
    assert handshake_notices(events) == []
    watch.expect(URL.replace("dev-domain", "other"))
    bus.publish(verify())
    assert len(handshake_notices(events)) == 1


class StubGraph:
    """The Graph API calls a phone-scope registration makes; `on_register` plays Meta's side."""

    def __init__(self, on_register: Any) -> None:
        self.on_register = on_register
        self.override: str | None = None

    async def __aenter__(self) -> StubGraph:
        return self

    async def __aexit__(self, *exc: object) -> None:
        return None

    async def set_phone_override(self, target: str, url: str, token: str) -> None:
        self.on_register()
        self.override = url


def _settings(tmp_path: Path) -> Settings:
    return load_settings(
        {"recordings_dir": str(tmp_path / "rec"), "register": "phone"},
        environ={
            "WHATSAPP_VERIFY_TOKEN": VERIFY_TOKEN,
            "WHATSAPP_ACCESS_TOKEN": "EAAGstubToken0123456789",
            "WHATSAPP_PHONE_NUMBER_ID": PHONE_NUMBER_ID,
        },
        cwd=tmp_path,
    )


async def _register(tmp_path: Path, on_register: Any, quiet_after_s: float = 0.0) -> tuple[Registrar, Subscription]:
    bus = EventBus()
    watch = HandshakeWatch(bus, "ngrok")
    bus.add_listener(watch.observe)
    watch.expect(URL)
    registrar = Registrar(
        _settings(tmp_path),
        "phone",
        graph_factory=lambda: StubGraph(lambda: on_register(bus)),  # type: ignore[arg-type,return-value]
        quiet_after_s=quiet_after_s,
        handshake_wait_s=WAIT_S,
    )
    registrar.attach(bus, watch)
    events = bus.subscribe()
    await registrar.ensure(URL)
    return registrar, events


async def _settle(registrar: Registrar) -> None:
    """Let the registrar's watch run to its end."""
    if registrar._quiet is not None:
        await asyncio.wait_for(registrar._quiet, 5)


async def test_a_registration_whose_handshake_arrived_says_so_and_keeps_the_quiet_hint(tmp_path: Path) -> None:
    registrar, events = await _register(tmp_path, lambda bus: bus.publish(verify()), quiet_after_s=WAIT_S)
    await _settle(registrar)
    notices = [e for e in events.drain() if isinstance(e, Notice)]
    assert [n.topic for n in notices] == ["handshake", "register", "quiet"]
    assert notices[0].text.startswith("Meta's handshake arrived and was answered with the challenge")


async def test_a_registration_meta_accepted_without_a_handshake_here_says_what_that_means(tmp_path: Path) -> None:
    registrar, events = await _register(tmp_path, lambda bus: None, quiet_after_s=WAIT_S)
    await _settle(registrar)
    notices = [e for e in events.drain() if isinstance(e, Notice)]
    assert [n.topic for n in notices] == ["register", "handshake"]  # no quiet hint on top: it would mislead
    missing = notices[1]
    assert missing.level == "warning"
    assert missing.text.startswith(
        f"No handshake from Meta reached this receiver within {WAIT_S:g} s of registering {URL}, although Meta "
        "accepted it"
    )
    # Meta accepted the URL, so the free-domain caveat (Meta refusing ngrok domains) would mislead here.
    assert CAVEAT not in missing.text and "`--tunnel cloudflared`" in missing.text


def _refuse(code: int, arrive: ExchangeRecorded | None = None) -> Any:
    def on_register(bus: EventBus) -> None:
        if arrive is not None:
            bus.publish(arrive)
        raise GraphError("(#2200) Callback verification failed with the following errors: ...", code=code)

    return on_register


async def test_a_refused_registration_no_handshake_reached_says_meta_did_not_reach_the_url(tmp_path: Path) -> None:
    _registrar, events = await _register(tmp_path, _refuse(2200))
    notices = [e for e in events.drain() if isinstance(e, Notice)]
    assert [n.topic for n in notices] == ["register", "handshake"]
    assert notices[0].level == "error"
    assert notices[1].text.startswith(
        f"Meta refused {URL} and its handshake never reached this receiver: Meta did not reach this URL"
    )
    assert CAVEAT in notices[1].text


async def test_a_refused_registration_whose_handshake_failed_here_points_at_the_reason(tmp_path: Path) -> None:
    _registrar, events = await _register(tmp_path, _refuse(2200, verify(False, reason="token mismatch")))
    notices = [e for e in events.drain() if isinstance(e, Notice)]
    assert [n.topic for n in notices] == ["handshake", "register"]
    assert notices[0].text.startswith("Meta's handshake arrived but failed: token mismatch.")


async def test_a_registration_refused_before_any_handshake_blames_no_url(tmp_path: Path) -> None:
    _registrar, events = await _register(tmp_path, _refuse(190))
    assert [e.topic for e in events.drain() if isinstance(e, Notice)] == ["register"]


class LocalTunnel:
    """A provider whose public URL is a plain-HTTP proxy to the receiver that adds a tunnel's X-Forwarded-For.

    Like ngrok's agent, it passes the request on from loopback with the address its edge saw appended,
    so Meta's fake handshake arrives labelled as Meta's (its user agent through a tunnel).
    """

    name = "ngrok"
    settle_s = 0.0
    EDGE_SAW = "173.252.127.1"

    def __init__(self) -> None:
        self.url = ""
        self._runner: web.AppRunner | None = None
        self._client: aiohttp.ClientSession | None = None

    async def prepare(self, progress: TextIO) -> None:
        """Nothing to prepare."""

    async def start(self, local_port: int) -> str:
        self._client = aiohttp.ClientSession(auto_decompress=False)

        async def forward(request: web.Request) -> web.Response:
            assert self._client is not None
            headers = {k: v for k, v in request.headers.items() if k.lower() not in ("host", "content-length")}
            headers["X-Forwarded-For"] = self.EDGE_SAW
            async with self._client.request(
                request.method,
                f"http://127.0.0.1:{local_port}{request.rel_url}",
                headers=headers,
                data=await request.read(),
            ) as answer:
                body = await answer.read()
                return web.Response(status=answer.status, body=body, content_type=answer.content_type)

        app = web.Application()
        app.router.add_route("*", "/{tail:.*}", forward)
        self._runner = web.AppRunner(app, access_log=None)
        await self._runner.setup()
        site = web.TCPSite(self._runner, "127.0.0.1", 0)
        await site.start()
        port = self._runner.addresses[0][1]
        self.url = f"http://127.0.0.1:{port}"
        return self.url

    def health(self) -> TunnelHealth:
        return TunnelHealth(True, self.url)

    async def check(self) -> TunnelHealth:
        return self.health()

    async def stop(self) -> None:
        if self._client is not None:
            await self._client.close()
        if self._runner is not None:
            await self._runner.cleanup()

    def footprint(self) -> AgentFootprint | None:
        return None


@pytest.fixture(autouse=True)
def no_proxy(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in ("HTTPS_PROXY", "HTTP_PROXY", "ALL_PROXY", "https_proxy", "http_proxy", "all_proxy"):
        monkeypatch.delenv(name, raising=False)


async def test_up_register_reports_metas_real_handshake(tmp_path: Path, fake_graph: FakeGraph) -> None:
    settings = load_settings(
        {"port": "0", "recordings_dir": str(tmp_path / "rec"), "tunnel": "none", "register": "phone"},
        environ=fake_graph.env(WHATSAPP_VERIFY_TOKEN=VERIFY_TOKEN, WA_DEVTUNNEL_QUIET_AFTER_REGISTER="0"),
        cwd=tmp_path,
    )
    service = WebhookService(settings, tunnel=LocalTunnel())
    events = service.bus.subscribe()
    await service.start()
    seen: list[Any] = []
    try:

        async def registered() -> None:
            while not any(isinstance(e, Notice) and e.topic == "register" for e in seen):
                seen.append(await events.get())

        await asyncio.wait_for(registered(), 15)
    finally:
        await service.stop()
    assert [h.ok for h in fake_graph.handshakes] == [True]
    assert next(e for e in seen if isinstance(e, SelfTestFinished)).ok
    said = [e for e in seen if isinstance(e, Notice) and e.topic == "handshake"]
    assert [n.text for n in said] == [
        f"Meta's handshake arrived and was answered with the challenge: Meta accepts {service.callback_url} "
        "and your verify token."
    ]
