"""pytest fixtures for the fake ngrok agent (declared once, in tests/conftest.py)."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import trustme

from tests.support.fake_ngrok import _UNSET, CERT_NAMES, DEFAULT_AUTHTOKEN, FakeNgrok, MakeFakeNgrok


@pytest.fixture
def fake_ngrok_ca() -> trustme.CA:
    return trustme.CA()


@pytest.fixture
def make_fake_ngrok(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, fake_ngrok_ca: trustme.CA
) -> Iterator[MakeFakeNgrok]:
    """Factory: ``make_fake_ngrok(mode=..., authtoken=..., domains=..., web_addr=..., env=..., config=...,
    dev_domain=..., public_host=..., state_dir=...)``; the fakes of one test share one state directory (one ngrok
    account's edge) unless given another."""
    monkeypatch.delenv("NGROK_AUTHTOKEN", raising=False)
    created: list[FakeNgrok] = []
    shared_state = tmp_path / "fake-ngrok-state"

    def factory(
        *,
        mode: str = "ok",
        authtoken: str | None = _UNSET,
        domains: tuple[str, ...] = (),
        web_addr: str = "127.0.0.1:0",
        env: dict[str, str] | None = None,
        config: dict[str, Any] | None = None,
        dev_domain: str = "",
        public_host: str | None = "localhost",
        state_dir: Path | None = None,
    ) -> FakeNgrok:
        fake = FakeNgrok(
            root=tmp_path / f"fake-ngrok-{len(created)}",
            ca=fake_ngrok_ca,
            mode=mode,
            authtoken=DEFAULT_AUTHTOKEN if authtoken is _UNSET else authtoken,
            web_addr=web_addr,
            extra_env=dict(env or {}),
            extra_config=dict(config or {}),
            state_dir=state_dir or shared_state,
            dev_domain=dev_domain,
            public_host=public_host,
        )
        fake.install((*CERT_NAMES, *domains, fake.dev_domain))
        created.append(fake)
        return fake

    yield factory
    for fake in created:  # the agents outlive their parents (as ngrok does): nothing else stops them
        fake.kill()


@pytest.fixture
def fake_ngrok(make_fake_ngrok: MakeFakeNgrok) -> FakeNgrok:
    """A healthy fake agent with an authtoken in its config file."""
    return make_fake_ngrok()
