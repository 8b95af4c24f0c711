"""Shared fixtures only (a receiver app on a real recorder); constants and helpers live in tests/support."""

from __future__ import annotations

import os
from collections.abc import AsyncIterator, Callable
from pathlib import Path
from typing import Any

import pytest
from hypothesis import settings as hypothesis_settings

from tests.support.constants import APP_SECRET, VERIFY_TOKEN
from tests.support.receiver_harness import ReceiverHarness, ReceiverTestServer
from wa_devtunnel.engine.events import EventBus
from wa_devtunnel.engine.receiver import ReceiverConfig, create_receiver_app
from wa_devtunnel.engine.recording import SessionRecorder
from wa_devtunnel.project_state import STATE_DIR_VARIABLE

# Declared once, here: the fakes' fixtures (ngrok agent, Graph API) and pytester for the plugin's tests.
pytest_plugins = (
    "pytester",
    "tests.support.fake_ngrok.plugin",
    "tests.support.fake_cloudflared.plugin",
    "tests.support.fake_graph_plugin",
)

# The suite is deterministic: property tests replay the same examples on every run (CI included).
# `HYPOTHESIS_PROFILE=explore` searches fresh examples when hunting for bugs by hand.
hypothesis_settings.register_profile("ci", derandomize=True, deadline=None, print_blob=True)
hypothesis_settings.register_profile("explore", deadline=None, max_examples=2000)
hypothesis_settings.load_profile(os.environ.get("HYPOTHESIS_PROFILE", "ci"))


@pytest.fixture(autouse=True)
def _project_state_in_tmp(tmp_path_factory: pytest.TempPathFactory, monkeypatch: pytest.MonkeyPatch) -> None:
    """Every test keeps the generated verify token in its own folder, never in `.wa-devtunnel/` of the repo."""
    monkeypatch.setenv(STATE_DIR_VARIABLE, str(tmp_path_factory.mktemp("wa-devtunnel-state")))


@pytest.fixture
def make_receiver(aiohttp_client: Callable[..., Any], tmp_path: Path) -> Callable[..., Any]:
    async def factory(**overrides: Any) -> ReceiverHarness:
        options: dict[str, Any] = {
            "path": "/webhook/whatsapp",
            "handshake_tokens": (("default", VERIFY_TOKEN),),
            "signature_secrets": (("default", APP_SECRET),),
            "wrong_signing_keys": (("the verify token", VERIFY_TOKEN),),
        }
        options.update(overrides)
        bus = EventBus()
        recorder = SessionRecorder(tmp_path / "recordings")
        config = ReceiverConfig(**options)
        app = create_receiver_app(config, bus, recorder)
        client = await aiohttp_client(ReceiverTestServer(app, bus))
        return ReceiverHarness(client, recorder, bus, config)

    return factory


@pytest.fixture
async def receiver(make_receiver: Callable[..., Any]) -> AsyncIterator[ReceiverHarness]:
    yield await make_receiver()
