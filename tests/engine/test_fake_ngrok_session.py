"""The fake agent's session with the edge behaves like the real one's: drops, redials, recovers, restarts, offline."""

from __future__ import annotations

import shlex
import subprocess
import time
from collections.abc import AsyncIterator, Callable
from urllib.parse import urlsplit

import pytest
from aiohttp import web
from pyngrok import ngrok
from pyngrok.exception import PyngrokNgrokError

from tests.support.fake_ngrok import FakeNgrok, MakeFakeNgrok, kill_agent, pid_alive
from tests.support.fake_ngrok._ngrok_errors import DROP_ERR, OFFLINE_ERR
from tests.support.fake_ngrok.agent_log import AgentLog

FAST_REDIAL = {"FAKE_NGROK_RECONNECT_S": "0.1"}


@pytest.fixture
async def upstream_port() -> AsyncIterator[int]:
    """The developer's app: answers 201 "ack" to anything."""

    async def ack(request: web.Request) -> web.Response:
        return web.Response(status=201, text="ack")

    app = web.Application()
    app.router.add_route("*", "/{tail:.*}", ack)
    runner = web.AppRunner(app)
    await runner.setup()
    await web.TCPSite(runner, "127.0.0.1", 0).start()
    yield runner.addresses[0][1]
    await runner.cleanup()


async def _get(fake: FakeNgrok, url: str) -> tuple[int, str, str]:
    async with fake.client_session() as session, session.get(url) as response:
        return response.status, response.headers.get("Ngrok-Error-Code", ""), await response.text()


async def test_a_dropped_session_keeps_the_agent_and_its_endpoint_while_the_edge_answers_3200(
    make_fake_ngrok: MakeFakeNgrok, upstream_port: int
) -> None:
    fake = make_fake_ngrok(mode="drop-after=0.3", env=FAST_REDIAL)
    log = AgentLog()
    config = fake.pyngrok_config(log_event_callback=log)
    tunnel = ngrok.connect(str(upstream_port), "http", pyngrok_config=config)

    (dropped,) = log.wait_for("session closed, starting reconnect loop")
    redials = log.wait_for("failed to reconnect session", count=2)

    assert (dropped.lvl, dropped.obj, dropped.err) == ("ERROR", "tunnels.session", DROP_ERR)
    assert all((line.lvl, line.err) == ("ERROR", OFFLINE_ERR) for line in redials)
    agent = ngrok.get_ngrok_process(config)
    assert agent.proc.poll() is None
    status, code, page = await _get(fake, f"{tunnel.public_url}/webhook")
    assert (status, code) == (404, "ERR_NGROK_3200")
    assert f"The endpoint {urlsplit(tunnel.public_url or '').hostname} is offline." in page
    assert [t.public_url for t in ngrok.get_tunnels(config)] == [tunnel.public_url]
    assert ngrok.api_request(f"{agent.api_url}/api/status")["status"] == "reconnecting"


async def test_a_recovered_session_forwards_again_on_the_same_url(
    make_fake_ngrok: MakeFakeNgrok, upstream_port: int
) -> None:
    fake = make_fake_ngrok(mode="drop-after=0.2,recover-after=0.4", env=FAST_REDIAL)
    log = AgentLog()
    config = fake.pyngrok_config(log_event_callback=log)
    tunnel = ngrok.connect(str(upstream_port), "http", pyngrok_config=config)

    log.wait_for("session closed, starting reconnect loop")
    back = log.wait_for("client session established", count=2)[-1]

    assert (back.lvl, back.obj) == ("INFO", "tunnels.session")
    assert (await _get(fake, f"{tunnel.public_url}/webhook"))[:2] == (201, "")
    assert [t.public_url for t in ngrok.get_tunnels(config)] == [tunnel.public_url]


async def test_signals_drop_and_recover_the_session_when_a_test_says(
    make_fake_ngrok: MakeFakeNgrok, upstream_port: int
) -> None:
    fake = make_fake_ngrok(env={**FAST_REDIAL, "FAKE_NGROK_RECONNECT_ERR": "dial tcp: connect: network is unreachable"})
    log = AgentLog()
    config = fake.pyngrok_config(log_event_callback=log)
    tunnel = ngrok.connect(str(upstream_port), "http", pyngrok_config=config)
    assert (await _get(fake, f"{tunnel.public_url}/"))[0] == 201

    fake.drop_session()
    (redial,) = log.wait_for("failed to reconnect session")
    assert redial.err == "dial tcp: connect: network is unreachable"
    assert (await _get(fake, f"{tunnel.public_url}/"))[:2] == (404, "ERR_NGROK_3200")

    fake.recover_session()
    log.wait_for("client session established", count=2)
    assert (await _get(fake, f"{tunnel.public_url}/"))[0] == 201


def test_a_heartbeat_timeout_is_logged_before_the_reconnect_loop(make_fake_ngrok: MakeFakeNgrok) -> None:
    fake = make_fake_ngrok(mode="drop-after=0.2,drop-heartbeat", env=FAST_REDIAL)
    log = AgentLog()
    ngrok.connect("9", "http", pyngrok_config=fake.pyngrok_config(log_event_callback=log))

    (dropped,) = log.wait_for("session closed, starting reconnect loop")

    msgs = [line.msg for line in log.lines]
    assert msgs[msgs.index(dropped.msg) - 1] == "heartbeat timeout, terminating session"
    assert dropped.err == "session closed"


def test_pyngrok_gives_up_on_an_offline_agent_with_its_dial_error(make_fake_ngrok: MakeFakeNgrok) -> None:
    """pyngrok waits for "client session established"; offline it never comes, so its timeout ends the agent."""
    fake = make_fake_ngrok(mode="offline", env=FAST_REDIAL)
    log = AgentLog()
    config = fake.pyngrok_config(log_event_callback=log, startup_timeout=1)

    with pytest.raises(PyngrokNgrokError) as caught:
        ngrok.connect("9", "http", pyngrok_config=config)

    assert caught.value.ngrok_error == OFFLINE_ERR
    assert str(caught.value) == f"The ngrok process errored on start: {OFFLINE_ERR}."
    assert log.with_msg("starting web service") and not log.with_msg("client session established")
    assert len(log.with_msg("failed to reconnect session")) >= 2
    assert fake.agent_pids() == []


def test_an_offline_agent_never_exits_by_itself(fake_ngrok: FakeNgrok) -> None:
    fake_ngrok.set_mode("offline", **FAST_REDIAL)
    command = [
        str(fake_ngrok.ngrok_path),
        "start",
        "--none",
        "--log",
        "stdout",
        "--config",
        str(fake_ngrok.config_path),
    ]
    agent = subprocess.Popen(command, stdout=subprocess.PIPE, text=True)
    try:
        assert agent.stdout is not None
        redials: list[str] = []
        for line in agent.stdout:
            if "failed to reconnect session" in line:
                redials.append(line)
            if len(redials) == 3:
                break
        assert agent.poll() is None
        assert 'err="failed to dial ngrok server with address \\"connect.ngrok-agent.com:443\\": dial tcp' in redials[0]
    finally:
        kill_agent(agent.pid)
        agent.wait(timeout=10)


def test_a_dashboard_restart_re_execs_in_place_and_loses_the_endpoint(make_fake_ngrok: MakeFakeNgrok) -> None:
    fake = make_fake_ngrok()
    log = AgentLog()
    config = fake.pyngrok_config(log_event_callback=log)
    tunnel = ngrok.connect("9", "http", pyngrok_config=config)
    agent = ngrok.get_ngrok_process(config)

    fake.restart_in_place()
    log.wait_for("starting web service", count=2)
    log.wait_for("client session established", count=2)

    (stop,) = log.with_msg("received stop request")
    assert "restart:true" in stop.line
    assert agent.proc.poll() is None
    assert fake.restarts() == [agent.proc.pid]
    assert fake.invocations() == [["start", "--none", "--log", "stdout", "--config", str(fake.config_path)]]
    assert ngrok.get_tunnels(config) == []  # same API address, no endpoint
    assert ngrok.connect("9", "http", pyngrok_config=config).public_url == tunnel.public_url


def test_restart_after_restarts_once(make_fake_ngrok: MakeFakeNgrok) -> None:
    fake = make_fake_ngrok(mode="restart-after=0.3")
    log = AgentLog()
    config = fake.pyngrok_config(log_event_callback=log)
    ngrok.get_ngrok_process(config)

    log.wait_for("client session established", count=2)

    assert fake.restarts() == [ngrok.get_ngrok_process(config).proc.pid]
    assert ngrok.connect("9", "http", pyngrok_config=config).public_url


def test_the_agent_outlives_its_parent_as_the_real_one_does(fake_ngrok: FakeNgrok) -> None:
    agent_command = shlex.join(
        [str(fake_ngrok.ngrok_path), "start", "--none", "--log", "false", "--config", str(fake_ngrok.config_path)]
    )
    shell = subprocess.run(
        ["sh", "-c", f"{agent_command} >/dev/null 2>&1 & echo $!"], capture_output=True, text=True, check=True
    )
    pid = int(shell.stdout)
    _wait_until(lambda: pid in fake_ngrok.agent_pids())
    time.sleep(1.0)  # the old watchdog looked every 0.5 s for a new parent
    assert pid_alive(pid)
    kill_agent(pid)
    _wait_until(lambda: not pid_alive(pid))


def test_watch_pid_ends_the_agent_with_the_process_named(fake_ngrok: FakeNgrok) -> None:
    watched = subprocess.Popen(["sleep", "60"])
    fake_ngrok.set_mode("ok", FAKE_NGROK_WATCH_PID=str(watched.pid))
    agent = ngrok.get_ngrok_process(fake_ngrok.pyngrok_config())
    watched.kill()
    watched.wait()
    assert agent.proc.wait(timeout=10) == 0


def test_kill_agent_stops_the_whole_process_group_of_an_agent_that_leads_one(fake_ngrok: FakeNgrok) -> None:
    command = [str(fake_ngrok.ngrok_path), "start", "--none", "--log", "false", "--config", str(fake_ngrok.config_path)]
    agent = subprocess.Popen(command, start_new_session=True)
    try:
        _wait_until(lambda: agent.pid in fake_ngrok.agent_pids())
        kill_agent(agent.pid)
        assert agent.wait(timeout=10) < 0
    finally:
        if agent.poll() is None:
            agent.kill()
            agent.wait()


def _wait_until(condition: Callable[[], bool], timeout: float = 10.0) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        assert time.monotonic() < deadline, "condition not met in time"
        time.sleep(0.05)
