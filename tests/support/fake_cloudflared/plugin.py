"""pytest fixtures for the fake cloudflared (import them into a test module, or list this module in pytest_plugins)."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import aiohttp.connector
import pytest
import trustme

from tests.support.fake_cloudflared import FakeCloudflared, MakeFakeCloudflared, TryCloudflareResolver


@pytest.fixture
def fake_cloudflared_ca() -> trustme.CA:
    return trustme.CA()


@pytest.fixture
def make_fake_cloudflared(tmp_path: Path, fake_cloudflared_ca: trustme.CA) -> Iterator[MakeFakeCloudflared]:
    """Factory: ``make_fake_cloudflared(mode=..., env=...)``."""
    created: list[FakeCloudflared] = []

    def factory(*, mode: str = "ok", env: dict[str, str] | None = None) -> FakeCloudflared:
        fake = FakeCloudflared(
            root=tmp_path / f"fake-cloudflared-{len(created)}",
            ca=fake_cloudflared_ca,
            mode=mode,
            extra_env=dict(env or {}),
        )
        fake.install()
        created.append(fake)
        return fake

    yield factory
    for fake in created:
        fake.kill()


@pytest.fixture
def fake_cloudflared(make_fake_cloudflared: MakeFakeCloudflared) -> FakeCloudflared:
    """A healthy fake: a quick tunnel whose edge connection comes up at once."""
    return make_fake_cloudflared()


@pytest.fixture
def trycloudflare_dns(monkeypatch: pytest.MonkeyPatch) -> None:
    """Every aiohttp connector made in this test finds *.trycloudflare.com on 127.0.0.1 (the self-test's too)."""
    monkeypatch.setattr(aiohttp.connector, "DefaultResolver", TryCloudflareResolver)
