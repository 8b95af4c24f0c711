"""Fixtures for the fake Graph API (declared once, in tests/conftest.py)."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import pytest
import trustme

from tests.support.fake_graph import FakeGraph, ThreadedFakeGraph, graph_settings, trusting
from tests.support.fake_ngrok import FakeNgrok
from wa_devtunnel.engine.events import SelfTestFinished
from wa_devtunnel.engine.service import WebhookService
from wa_devtunnel.engine.tunnel.ngrok import NgrokTunnel


@pytest.fixture
async def fake_graph(fake_ngrok_ca: trustme.CA) -> AsyncIterator[FakeGraph]:
    """A fake Graph API on the test's loop, whose handshakes trust the fake ngrok's CA."""
    graph = FakeGraph(trusting(fake_ngrok_ca))
    await graph.start()
    yield graph
    await graph.close()


@pytest.fixture
def threaded_fake_graph(fake_ngrok_ca: trustme.CA) -> Iterator[FakeGraph]:
    """The same fake on its own thread, for synchronous tests of the CLI."""
    with ThreadedFakeGraph(trusting(fake_ngrok_ca)) as graph:
        yield graph


@pytest.fixture
async def tunnelled_service(
    tmp_path: Path, fake_ngrok: FakeNgrok, fake_graph: FakeGraph
) -> AsyncIterator[WebhookService]:
    """`wa-devtunnel up`: receiver + tunnel through the fake agent, self-test passed."""
    settings = graph_settings(tmp_path, fake_graph)
    tunnel = NgrokTunnel("fake-authtoken", ngrok_path=str(fake_ngrok.ngrok_path))
    service = WebhookService(settings, tunnel=tunnel, selftest_ssl=fake_ngrok.ssl_context())
    events = service.bus.subscribe()
    await service.start()

    async def selftest() -> SelfTestFinished:
        while not isinstance(event := await events.get(), SelfTestFinished):
            pass
        return event

    assert (await asyncio.wait_for(selftest(), 10)).ok
    yield service
    await service.stop()
