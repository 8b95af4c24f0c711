"""The service's tunnel watcher against a scripted provider: a dropped session is DOWN, a dead agent is restarted.

The provider is a test double at the provider interface; its public URL is a small local "edge" that forwards
to the receiver while the session is up and answers like ngrok's edge (404, ERR_NGROK_3200) while it is down,
so the self-test and the probe see what Meta would.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator, Callable
from pathlib import Path
from typing import Any, TextIO

import aiohttp
import pytest
from aiohttp import web

from tests.support.constants import VERIFY_TOKEN
from tests.support.fake_ngrok import DEFAULT_AUTHTOKEN, MakeFakeNgrok
from wa_devtunnel.engine import service as service_module
from wa_devtunnel.engine.events import EngineEvent, Notice, SelfTestFinished, Subscription, TunnelChanged
from wa_devtunnel.engine.service import WebhookService
from wa_devtunnel.engine.tunnel.ngrok import NgrokTunnel
from wa_devtunnel.engine.tunnel.provider import AgentFootprint, TunnelError, TunnelHealth
from wa_devtunnel.settings import load_settings

TICK_S = 0.02
DROPPED = "failed to reconnect session: dial tcp: lookup connect.ngrok-agent.com: no such host"


class ScriptedTunnel:
    """A provider whose health the test sets; `start` opens the local edge, as an agent opens its endpoint."""

    name = "ngrok"
    settle_s = 0.0

    def __init__(self, edge: Edge) -> None:
        self.edge = edge
        self.starts = self.stops = self.checks = 0
        self.health_now = TunnelHealth(alive=True, public_url=edge.url)
        self.checked: TunnelHealth | Exception | None = None  # what check() says when it disagrees
        self.start_failures = 0

    async def prepare(self, progress: TextIO) -> None:
        """Nothing to download."""

    async def start(self, local_port: int) -> str:
        self.starts += 1
        if self.start_failures:
            self.start_failures -= 1
            raise TunnelError("the agent did not start", code="ERR_NGROK_108")
        self.edge.upstream = f"http://127.0.0.1:{local_port}"
        self.health_now = TunnelHealth(alive=True, public_url=self.edge.url)
        return self.edge.url

    def health(self) -> TunnelHealth:
        return self.health_now

    async def check(self) -> TunnelHealth:
        self.checks += 1
        if isinstance(self.checked, Exception):
            raise self.checked
        return self.checked or self.health_now

    async def stop(self) -> None:
        self.stops += 1

    def footprint(self) -> AgentFootprint | None:
        return None

    def drop(self, reason: str = DROPPED) -> None:
        """The agent runs, its session is gone: the edge answers 3200."""
        self.edge.online = False
        self.health_now = TunnelHealth(alive=True, public_url=self.edge.url, detail=reason, session_up=False)

    def recover(self) -> None:
        self.edge.online = True
        self.health_now = TunnelHealth(alive=True, public_url=self.edge.url)


class Edge:
    """ngrok's edge in miniature: forwards to the receiver when online, else its 3200 page."""

    def __init__(self) -> None:
        self.url = ""
        self.upstream = ""
        self.online = True
        self.requests = 0
        self.wrong_path = False  # answer 404 as a server without our path would
        self.not_ready = 0  # the next N requests get Cloudflare's 530 (a quick tunnel's hostname not ready yet)

    async def handle(self, request: web.Request) -> web.Response:
        self.requests += 1
        if self.not_ready:
            self.not_ready -= 1
            return web.Response(status=530, text="error code: 1033", content_type="text/plain")
        if self.wrong_path:
            return web.Response(status=404, text="404: Not Found", content_type="text/plain")
        if not self.online:
            page = "<!DOCTYPE html><html><body>The endpoint is offline. ERR_NGROK_3200</body></html>"
            return web.Response(
                status=404, text=page, content_type="text/html", headers={"ngrok-error-code": "ERR_NGROK_3200"}
            )
        headers = {k: v for k, v in request.headers.items() if k.lower() not in ("host", "content-length")}
        async with (
            aiohttp.ClientSession() as session,
            session.get(f"{self.upstream}{request.path_qs}", headers=headers) as answer,
        ):
            body = await answer.read()
            return web.Response(status=answer.status, body=body, content_type=answer.content_type)


@pytest.fixture
async def edge() -> AsyncIterator[Edge]:
    edge = Edge()
    app = web.Application()
    app.router.add_route("*", "/{tail:.*}", edge.handle)
    runner = web.AppRunner(app)
    await runner.setup()
    await web.TCPSite(runner, "127.0.0.1", 0).start()
    edge.url = f"http://127.0.0.1:{runner.addresses[0][1]}"
    yield edge
    await runner.cleanup()


@pytest.fixture(autouse=True)
def fast_watch(monkeypatch: pytest.MonkeyPatch) -> None:
    """The watcher's cadence shortened (its logic, not its timing, is under test)."""
    monkeypatch.setattr(service_module, "WATCH_INTERVAL_S", TICK_S)
    monkeypatch.setattr(service_module, "CHECK_INTERVAL_S", 5 * TICK_S)
    for name in ("HTTPS_PROXY", "HTTP_PROXY", "ALL_PROXY", "https_proxy", "http_proxy", "all_proxy"):
        monkeypatch.delenv(name, raising=False)


@contextlib.asynccontextmanager
async def serving(tmp_path: Path, tunnel: ScriptedTunnel) -> AsyncIterator[tuple[WebhookService, Subscription]]:
    """The real service with the scripted provider, started and always stopped."""
    settings = load_settings(
        {"port": "0", "recordings_dir": str(tmp_path / "rec"), "tunnel": "none"},
        environ={"WHATSAPP_VERIFY_TOKEN": VERIFY_TOKEN},
        cwd=tmp_path,
    )
    service = WebhookService(settings, tunnel=tunnel)
    events = service.bus.subscribe()
    await service.start()
    try:
        yield service, events
    finally:
        await service.stop()


@pytest.fixture
async def running(tmp_path: Path, edge: Edge) -> AsyncIterator[tuple[WebhookService, ScriptedTunnel, Subscription]]:
    tunnel = ScriptedTunnel(edge)
    async with serving(tmp_path, tunnel) as (service, events):
        first = await until(events, lambda e: isinstance(e, SelfTestFinished))
        assert first.ok, first.detail
        yield service, tunnel, events


async def until(events: Subscription, wanted: Callable[[EngineEvent], bool], seen: list[Any] | None = None) -> Any:
    """The next event `wanted` accepts; every event on the way is kept in `seen`."""

    async def wait() -> EngineEvent:
        while True:
            event = await events.get()
            if seen is not None:
                seen.append(event)
            if wanted(event):
                return event

    return await asyncio.wait_for(wait(), 10)


def tunnel_states(seen: list[Any]) -> list[str]:
    return [e.state for e in seen if isinstance(e, TunnelChanged)]


async def test_a_dropped_session_is_down_once_then_up_with_a_fresh_selftest(running: Any) -> None:
    service, tunnel, events = running
    seen: list[Any] = []
    tunnel.drop()
    down = await until(events, lambda e: isinstance(e, TunnelChanged), seen)
    assert (down.state, down.reason) == ("down", DROPPED)
    probe = await until(events, lambda e: isinstance(e, SelfTestFinished), seen)
    assert not probe.ok and "ERR_NGROK_3200" in probe.detail and "endpoint is offline" in probe.detail
    for _ in range(10):  # several more ticks while down: nothing more is said
        await asyncio.sleep(TICK_S)
    tunnel.recover()
    up = await until(events, lambda e: isinstance(e, TunnelChanged), seen)
    assert (up.state, up.reason, up.callback_url) == ("up", "reconnected", service.callback_url)
    fresh = await until(events, lambda e: isinstance(e, SelfTestFinished), seen)
    assert fresh.ok, fresh.detail
    notices = [e for e in seen if isinstance(e, Notice)]
    assert [n.topic for n in notices] == ["tunnel-down"]
    assert notices[0].level == "error"
    assert notices[0].text == (
        f"TUNNEL DOWN: {DROPPED}. Meta's deliveries fail (ERR_NGROK_3200) until it is back; "
        "Meta retries for up to 7 days."
    )
    assert tunnel_states(seen) == ["down", "up"]
    assert (tunnel.starts, tunnel.stops) == (1, 0)  # a reconnecting agent is never restarted
    assert service.tunnel_state == "up"


async def test_a_dead_agent_is_stopped_and_started_again(running: Any) -> None:
    _service, tunnel, events = running
    seen: list[Any] = []
    tunnel.start_failures = 1
    tunnel.health_now = TunnelHealth(alive=False, public_url=None, detail="the agent exited (code 1)")
    up = await until(events, lambda e: isinstance(e, TunnelChanged) and e.state == "up", seen)
    assert up.reason == "reconnected"
    assert tunnel_states(seen) == ["reconnecting", "reconnecting", "up"]
    assert "the agent did not start" in [e for e in seen if isinstance(e, TunnelChanged)][1].reason
    assert [n.text.split(":")[0] for n in seen if isinstance(n, Notice)] == ["Tunnel lost"]
    assert (await until(events, lambda e: isinstance(e, SelfTestFinished))).ok
    assert (tunnel.starts, tunnel.stops) == (3, 2)


async def test_the_cross_check_can_see_a_drop_the_log_did_not(running: Any) -> None:
    _service, tunnel, events = running
    seen: list[Any] = []
    tunnel.checked = TunnelHealth(True, tunnel.edge.url, detail="the agent API lists no session", session_up=False)
    down = await until(events, lambda e: isinstance(e, TunnelChanged), seen)
    assert (down.state, down.reason) == ("down", "the agent API lists no session")
    tunnel.checked = None  # the next check (every tick while it disagrees) says up again
    up = await until(events, lambda e: isinstance(e, TunnelChanged), seen)
    assert up.state == "up"
    assert tunnel_states(seen) == ["down", "up"]


async def test_a_failing_cross_check_changes_nothing(running: Any) -> None:
    service, tunnel, events = running
    tunnel.checked = RuntimeError("the agent API hung up")
    checks = tunnel.checks
    while tunnel.checks < checks + 3:
        await asyncio.sleep(TICK_S)
    assert service.tunnel_state == "up"
    assert [e for e in events.drain() if isinstance(e, TunnelChanged | Notice)] == []


async def test_a_dead_agent_during_a_drop_goes_the_restart_way(running: Any) -> None:
    _service, tunnel, events = running
    seen: list[Any] = []
    tunnel.drop()
    await until(events, lambda e: isinstance(e, TunnelChanged) and e.state == "down", seen)
    tunnel.edge.online = True
    tunnel.health_now = TunnelHealth(alive=False, public_url=None, detail="the agent exited (signal 9)")
    await until(events, lambda e: isinstance(e, TunnelChanged) and e.state == "up", seen)
    assert tunnel_states(seen) == ["down", "reconnecting", "up"]
    assert (tunnel.starts, tunnel.stops) == (2, 1)
    assert (await until(events, lambda e: isinstance(e, SelfTestFinished) and e.ok)).ok


async def test_the_real_pyngrok_and_the_fake_agent_dropping_its_session(
    tmp_path: Path, make_fake_ngrok: MakeFakeNgrok
) -> None:
    """End to end: the agent's log says the session dropped (process alive), the edge answers 3200, it recovers."""
    fake = make_fake_ngrok(mode="drop-after=1,recover-after=2", env={"FAKE_NGROK_RECONNECT_S": "0.2"})
    settings = load_settings(
        {"port": "0", "recordings_dir": str(tmp_path / "rec"), "tunnel": "ngrok"},
        environ={"WHATSAPP_VERIFY_TOKEN": VERIFY_TOKEN},
        cwd=tmp_path,
    )
    service = WebhookService(
        settings,
        tunnel=NgrokTunnel(DEFAULT_AUTHTOKEN, ngrok_path=str(fake.ngrok_path)),
        selftest_ssl=fake.ssl_context(),
    )
    events = service.bus.subscribe()
    started = await service.start()
    seen: list[Any] = []
    try:
        assert started.tunnel_state == "up"
        down = await until(events, lambda e: isinstance(e, TunnelChanged) and e.state not in ("starting", "up"), seen)
        assert down.state == "down" and down.reason, down
        probe = await until(events, lambda e: isinstance(e, SelfTestFinished) and not e.ok, seen)
        assert "ERR_NGROK_3200" in probe.detail, probe.detail
        up = await until(events, lambda e: isinstance(e, TunnelChanged) and e.state == "up", seen)
        assert (up.reason, up.callback_url) == ("reconnected", started.callback_url)
        assert (await until(events, lambda e: isinstance(e, SelfTestFinished), seen)).ok
    finally:
        await service.stop()
    assert [n.topic for n in seen if isinstance(n, Notice)] == ["tunnel-down"]
    assert [argv[0] for argv in fake.invocations() if argv[0] != "--version"] == ["start"]  # never restarted
    assert fake.agent_pids() == []


async def test_a_new_url_that_is_not_reachable_yet_is_tested_again_while_it_settles(
    tmp_path: Path, edge: Edge, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A quick tunnel's fresh hostname answers 530 for a while: one verdict, once it works (cloudflared)."""
    monkeypatch.setattr(service_module, "SETTLE_RETRY_S", TICK_S)
    tunnel = ScriptedTunnel(edge)
    tunnel.settle_s = 5.0
    edge.not_ready = 3
    async with serving(tmp_path, tunnel) as (_service, events):
        verdict = await until(events, lambda e: isinstance(e, SelfTestFinished))
        assert verdict.ok, verdict.detail
        assert edge.requests == 4 and edge.not_ready == 0


async def test_an_answer_from_past_the_edge_is_not_tried_again(
    tmp_path: Path, edge: Edge, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A plain 404 (a wrong path) is an answer: no amount of settling changes it, one FAIL after one request."""
    monkeypatch.setattr(service_module, "SETTLE_RETRY_S", TICK_S)
    tunnel = ScriptedTunnel(edge)
    tunnel.settle_s = 5.0
    edge.wrong_path = True
    async with serving(tmp_path, tunnel) as (_service, events):
        verdict = await until(events, lambda e: isinstance(e, SelfTestFinished))
        assert not verdict.ok and "HTTP 404" in verdict.detail
        assert edge.requests == 1
