"""The ngrok provider against a strict fake agent as the real one behaves in the field, through real pyngrok.

What we ask the agent for (the dev domain, no inspection, no pooling, the receiver's own host), what a
refusal says (334, offline, stderr), and what health()/check() report when the session drops, comes back,
or the agent restarts in place.
"""

from __future__ import annotations

import asyncio
import re
from collections.abc import Callable
from pathlib import Path

import pytest

from tests.support.fake_ngrok import DEFAULT_AUTHTOKEN, FakeNgrok, MakeFakeNgrok, pid_alive
from wa_devtunnel.engine.tunnel import ngrok as ngrok_module
from wa_devtunnel.engine.tunnel.ngrok import NgrokTunnel
from wa_devtunnel.engine.tunnel.provider import TunnelError, TunnelHealth

DROP_ERR = "read tcp 10.0.0.2:50000->3.1.2.3:443: read: connection reset by peer"


def _tunnel(
    fake: FakeNgrok, *, domain: str | None = None, host: str = "127.0.0.1", deadline: float = 10.0
) -> NgrokTunnel:
    return NgrokTunnel(DEFAULT_AUTHTOKEN, domain, str(fake.ngrok_path), start_deadline_s=deadline, upstream_host=host)


async def _health_until(tunnel: NgrokTunnel, wanted: Callable[[TunnelHealth], bool]) -> TunnelHealth:
    """Poll health() (no network) until it says what the test waits for; a generous bound, not a speed check."""
    loop = asyncio.get_running_loop()
    give_up = loop.time() + 15
    while not wanted(health := tunnel.health()):
        assert loop.time() < give_up, health
        await asyncio.sleep(0.05)
    return health


@pytest.mark.parametrize(("host", "upstream"), [("127.0.0.1", "127.0.0.1"), ("0.0.0.0", "localhost")])
async def test_the_endpoint_asked_for_is_the_dev_domain_without_inspection_or_pooling(
    make_fake_ngrok: MakeFakeNgrok, host: str, upstream: str
) -> None:
    fake_ngrok = make_fake_ngrok(public_host=None)  # public URLs on the endpoint's own domain
    tunnel = _tunnel(fake_ngrok, host=host)
    try:
        url = await tunnel.start(8765)
        config = Path(tunnel.config.config_path or "").read_text()
    finally:
        await tunnel.stop()
    assert re.fullmatch(rf"https://{re.escape(fake_ngrok.dev_domain)}(:\d+)?", url)  # the fake's port, not 443
    # Exactly what the strict agent accepted: no `url` (the account's dev domain), no pooling, no inspection.
    assert fake_ngrok.endpoint_bodies() == [
        {"name": "wa-devtunnel", "upstream": {"url": f"http://{upstream}:8765"}, "inspect": False}
    ]
    assert "remote_management: false" in config
    assert not any("--authtoken" in argv for argv in fake_ngrok.invocations())


async def test_ngrok_domain_is_asked_for_as_an_https_url(make_fake_ngrok: MakeFakeNgrok) -> None:
    fake = make_fake_ngrok(domains=("hooks.example.com",), public_host=None)
    tunnel = _tunnel(fake, domain="hooks.example.com")
    try:
        assert re.fullmatch(r"https://hooks\.example\.com(:\d+)?", await tunnel.start(8765))
    finally:
        await tunnel.stop()
    assert [body.get("url") for body in fake.endpoint_bodies()] == ["https://hooks.example.com"]
    assert not any(body.get("pooling_enabled") for body in fake.endpoint_bodies())


async def test_the_dev_domain_comes_back_the_same_after_a_restart(fake_ngrok: FakeNgrok) -> None:
    tunnel = _tunnel(fake_ngrok)
    try:
        first = await tunnel.start(8765)
        await tunnel.stop()
        assert await tunnel.start(8765) == first
    finally:
        await tunnel.stop()


async def test_the_dev_domain_online_in_another_ngrok_is_334_with_what_to_do(make_fake_ngrok: MakeFakeNgrok) -> None:
    theirs, ours = make_fake_ngrok(), make_fake_ngrok()  # one account: the same dev domain, one edge
    holder = _tunnel(theirs)
    try:
        await holder.start(8000)
        with pytest.raises(TunnelError) as raised:
            await _tunnel(ours).start(8765)
    finally:
        await holder.stop()
    error = raised.value
    assert error.code == "ERR_NGROK_334"
    assert theirs.dev_domain in error.summary  # the agent's own words
    assert error.advice == (
        "Your dev domain is already online in another ngrok: stop it (`ngrok http` in another terminal? "
        "another wa-devtunnel?), or end it at https://dashboard.ngrok.com/agents."
    )
    assert ours.agent_pids() == []  # the refused agent was stopped


async def test_an_offline_machine_is_told_the_agent_s_own_network_error(
    make_fake_ngrok: MakeFakeNgrok, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(ngrok_module, "SESSION_GIVE_UP_S", 1.0)
    fake = make_fake_ngrok(mode="offline")
    with pytest.raises(TunnelError) as raised:
        await _tunnel(fake, deadline=20).start(8765)
    error = raised.value
    assert error.summary.startswith("the ngrok agent could not open its session with ngrok's servers: ")
    assert "dial tcp: lookup connect.ngrok-agent.com" in error.summary and "no such host" in error.summary
    assert "cannot reach ngrok's servers" in error.advice
    assert "printed nothing" not in str(error)
    assert fake.agent_pids() == []


async def test_at_the_deadline_the_agent_s_words_are_quoted(make_fake_ngrok: MakeFakeNgrok) -> None:
    fake = make_fake_ngrok(mode="offline")
    with pytest.raises(TunnelError) as raised:
        await _tunnel(fake, deadline=1.5).start(8765)
    assert raised.value.summary.startswith("the ngrok agent did not come up within 1.5 s: ")
    assert "no such host" in raised.value.summary


async def test_the_agent_s_stderr_is_quoted_though_its_file_is_deleted(
    tmp_path: Path, make_fake_ngrok: MakeFakeNgrok
) -> None:
    fake = make_fake_ngrok(mode="silent")
    noisy = tmp_path / "noisy-ngrok"
    noisy.write_text(
        f'#!/bin/sh\necho "ERROR:  cannot open /dev/tun0: permission denied" >&2\nexec "{fake.ngrok_path}" "$@"\n'
    )
    noisy.chmod(0o700)
    tunnel = NgrokTunnel(DEFAULT_AUTHTOKEN, ngrok_path=str(noisy), start_deadline_s=1.5)
    with pytest.raises(TunnelError) as raised:
        await tunnel.start(8765)
    assert "ERROR: cannot open /dev/tun0: permission denied" in raised.value.summary
    assert tunnel.footprint() is None  # its files (the token) are gone


async def test_the_authtoken_the_agent_repeats_is_never_in_the_message(make_fake_ngrok: MakeFakeNgrok) -> None:
    fake = make_fake_ngrok(mode="bad-authtoken")
    with pytest.raises(TunnelError) as raised:
        await _tunnel(fake).start(8765)
    assert raised.value.code == "ERR_NGROK_105"
    assert DEFAULT_AUTHTOKEN not in str(raised.value)
    assert "<redacted NGROK_AUTHTOKEN>" in str(raised.value)


async def test_an_agent_reporting_an_http_url_is_reported_not_rewritten(
    make_fake_ngrok: MakeFakeNgrok, monkeypatch: pytest.MonkeyPatch
) -> None:
    fake_ngrok = make_fake_ngrok(public_host=None)
    real_connect = ngrok_module.ngrok.connect

    def plain_http(*args: object, **kwargs: object) -> object:
        tunnel = real_connect(*args, **kwargs)  # type: ignore[arg-type]
        tunnel.public_url = tunnel.public_url.replace("https://", "http://", 1) if tunnel.public_url else None
        return tunnel

    monkeypatch.setattr(ngrok_module.ngrok, "connect", plain_http)
    tunnel = _tunnel(fake_ngrok)
    with pytest.raises(TunnelError) as raised:
        await tunnel.start(8765)
    summary = raised.value.summary
    assert summary.startswith(f"the ngrok agent opened http://{fake_ngrok.dev_domain}")
    assert summary.endswith(", not an https:// URL (Meta only calls https callback URLs)")
    assert fake_ngrok.agent_pids() == []


async def test_a_dropped_session_is_down_with_the_agent_s_reason_then_back_up(make_fake_ngrok: MakeFakeNgrok) -> None:
    fake = make_fake_ngrok(env={"FAKE_NGROK_DROP_ERR": DROP_ERR, "FAKE_NGROK_RECONNECT_S": "60"})
    tunnel = _tunnel(fake)
    try:
        url = await tunnel.start(8765)
        assert tunnel.health() == TunnelHealth(alive=True, public_url=url)
        fake.drop_session()
        down = await _health_until(tunnel, lambda h: not h.session_up)
        assert down.alive and down.public_url == url  # reconnecting by itself: no restart wanted
        assert down.detail == f"session closed, starting reconnect loop: {DROP_ERR}"
        checked = await tunnel.check()  # the agent API still lists the endpoint while it reconnects
        assert checked.alive and not checked.session_up
        pids = fake.agent_pids()
        fake.recover_session()
        back = await _health_until(tunnel, lambda h: h.session_up)
        assert back == TunnelHealth(alive=True, public_url=url)
        assert await tunnel.check() == back
        assert fake.agent_pids() == pids  # the same agent all along
    finally:
        await tunnel.stop()


async def test_a_heartbeat_timeout_is_a_dropped_session_too(make_fake_ngrok: MakeFakeNgrok) -> None:
    fake = make_fake_ngrok(mode="drop-after=0.3,drop-heartbeat", env={"FAKE_NGROK_RECONNECT_S": "60"})
    tunnel = _tunnel(fake)
    try:
        await tunnel.start(8765)
        down = await _health_until(tunnel, lambda h: not h.session_up)
        assert down.alive and "heartbeat timeout" in down.detail
    finally:
        await tunnel.stop()


async def test_an_agent_restarted_in_place_has_lost_the_endpoint(fake_ngrok: FakeNgrok) -> None:
    tunnel = _tunnel(fake_ngrok)
    try:
        url = await tunnel.start(8765)
        pids = fake_ngrok.agent_pids()
        fake_ngrok.restart_in_place()
        gone = await _health_until(tunnel, lambda h: not h.alive)
        assert gone.public_url == url and "restarted" in gone.detail
        assert fake_ngrok.restarts() == pids  # the same pid, re-executed
        assert not (await tunnel.check()).alive
    finally:
        await tunnel.stop()
    assert not any(pid_alive(pid) for pid in pids)
