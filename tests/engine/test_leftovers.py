"""After kill -9 the ngrok agent and its token file outlive wa-devtunnel; the next start cleans them up.

The real agent has no parent watchdog, so the fake is told to outlive the killed CLI too (it still
never outlives this test process). Processes standing in for owners and agents are real children
of the test, always killed in `finally`.
"""

from __future__ import annotations

import contextlib
import os
import re
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from tests.support.cli_process import CliProcess, minimal_env, running_cli, write_env_file
from tests.support.fake_ngrok import DEFAULT_AUTHTOKEN, FakeNgrok, MakeFakeNgrok, pid_alive
from wa_devtunnel.engine.channel.address import CHANNEL_DIR_PREFIX
from wa_devtunnel.engine.events import Notice
from wa_devtunnel.engine.instance import (
    RunningInstance,
    instance_path,
    load_instance,
    read_instance,
    write_instance,
)
from wa_devtunnel.engine.leftovers import clear_leftovers
from wa_devtunnel.engine.processes import process_identity, stop_recorded_process
from wa_devtunnel.engine.service import WebhookService
from wa_devtunnel.engine.tunnel.agent_group import group_members
from wa_devtunnel.engine.tunnel.provider import AGENT_WORKDIR_PREFIX, AgentFootprint
from wa_devtunnel.settings import load_settings

PUBLIC_CALLBACK = re.compile(r"Callback URL: (https://\S+)")
SLEEPER = (
    "import signal, sys, time\n"
    "if 'ignore-term' in sys.argv: signal.signal(signal.SIGTERM, signal.SIG_IGN)\n"
    "print('ready', flush=True)\n"
    "time.sleep(60)"
)


@contextmanager
def cli_with_tunnel(workdir: Path, fake: FakeNgrok) -> Iterator[CliProcess]:
    """`wa-devtunnel --headless --tunnel ngrok` against the fake agent, up once its public URL shows."""
    recordings_dir = workdir / "recordings"
    env = minimal_env(workdir, {"NGROK_AUTHTOKEN": DEFAULT_AUTHTOKEN, "PYNGROK_NGROK_PATH": str(fake.ngrok_path)})
    argv = [sys.executable, "-m", "wa_devtunnel", "--headless", "--tunnel", "ngrok", "--port", "0"]
    argv += ["--recordings-dir", str(recordings_dir), "--env-file", str(write_env_file(workdir))]
    out, err = workdir / "tunnel.stdout", workdir / "tunnel.stderr"
    with open(out, "wb") as stdout, open(err, "wb") as stderr:
        proc = subprocess.Popen(
            argv, cwd=workdir, env=env, stdin=subprocess.DEVNULL, stdout=stdout, stderr=stderr, start_new_session=True
        )
    cli = CliProcess(proc, workdir, recordings_dir, out, err)
    try:
        deadline = time.monotonic() + 20
        while not PUBLIC_CALLBACK.search(cli.stdout()):
            assert proc.poll() is None and time.monotonic() < deadline, cli.stderr()
            time.sleep(0.05)
        yield cli
    finally:
        if proc.poll() is None:
            proc.kill()
        proc.wait(timeout=10)


@contextmanager
def sleeper(*marker: str) -> Iterator[subprocess.Popen[str]]:
    """A live process standing in for an owner or an agent (`marker` goes on its command line)."""
    proc = subprocess.Popen([sys.executable, "-c", SLEEPER, *marker], stdout=subprocess.PIPE, text=True)
    try:
        assert proc.stdout is not None and proc.stdout.readline() == "ready\n"
        yield proc
    finally:
        proc.kill()
        proc.wait(timeout=10)


def dead_pid() -> int:
    """The pid of a process that has ended (and was reaped)."""
    proc = subprocess.Popen([sys.executable, "-c", "pass"])
    proc.wait(timeout=10)
    return proc.pid


def agent_workdir(tmp_path: Path, name: str = "x") -> tuple[Path, Path]:
    workdir = tmp_path / f"{AGENT_WORKDIR_PREFIX}{name}"
    workdir.mkdir(mode=0o700)
    config = workdir / "ngrok.yml"
    config.write_text(f"agent:\n  authtoken: {DEFAULT_AUTHTOKEN}\n")
    return workdir, config


def record(recordings: Path, owner: int, agent: AgentFootprint | None) -> None:
    identity = process_identity(owner) or "gone-long-ago"
    local = "http://127.0.0.1:1/webhook/whatsapp"
    write_instance(recordings, RunningInstance(owner, local, local, None, None, None, identity, agent))


def test_a_start_after_kill9_stops_the_agent_left_behind_and_deletes_its_token_file(
    tmp_path: Path, make_fake_ngrok: MakeFakeNgrok
) -> None:
    fake = make_fake_ngrok()
    fake.outlive_parent()
    with cli_with_tunnel(tmp_path, fake) as first:
        instance = load_instance(first.recordings_dir)
        assert instance is not None and instance.pid == first.proc.pid and instance.agent is not None
        agent = instance.agent
        config = Path(agent.marker)
        assert agent.pid in [entry["pid"] for entry in fake._log_entries()]
        assert DEFAULT_AUTHTOKEN in config.read_text()
        first.kill9()
        assert first.proc.wait(timeout=10) == -signal.SIGKILL

    # What the issue saw: the agent keeps serving, and the authtoken stays in the temp dir.
    assert pid_alive(agent.pid)
    assert config.exists()

    with running_cli(tmp_path) as second:
        stderr = second.stderr()
        assert f"A previous wa-devtunnel (pid {first.proc.pid}) ended without cleaning up" in stderr
        assert f"stopped its tunnel agent (pid {agent.pid})" in stderr
        assert "deleted its tunnel agent's private files" in stderr
        assert not pid_alive(agent.pid)
        assert not Path(agent.workdir).exists()
        now = read_instance(second.recordings_dir)
        assert now is not None and now.pid == second.proc.pid
        assert second.stop(signal.SIGTERM) == 0
    assert DEFAULT_AUTHTOKEN not in second.stdout() + stderr


async def test_a_live_owner_keeps_its_agent_and_files(tmp_path: Path) -> None:
    recordings = tmp_path / "recordings"
    workdir, config = agent_workdir(tmp_path)
    with sleeper() as owner, sleeper(str(config)) as agent:
        footprint = AgentFootprint(agent.pid, process_identity(agent.pid) or "", str(config), str(workdir))
        record(recordings, owner.pid, footprint)
        flags = {"port": "0", "recordings_dir": str(recordings), "tunnel": "none"}
        settings = load_settings(flags, environ={}, cwd=tmp_path)
        service = WebhookService(settings)
        events = service.bus.subscribe()
        await service.start()
        await service.stop()
        assert agent.poll() is None
        assert config.exists()
    assert not [e for e in events.drain() if isinstance(e, Notice) and e.topic == "leftovers"]


def test_a_recycled_pid_is_never_killed_but_the_files_go(tmp_path: Path) -> None:
    workdir, config = agent_workdir(tmp_path)
    with sleeper(str(config)) as stranger, sleeper() as unmarked:
        for pid, identity in ((stranger.pid, "another-boot:123"), (unmarked.pid, process_identity(unmarked.pid))):
            assert identity
            workdir.mkdir(exist_ok=True)
            record(tmp_path, dead_pid(), AgentFootprint(pid, identity, str(config), str(workdir), (str(config),)))
            notice = clear_leftovers(tmp_path)
            assert notice is not None
            assert "stopped" not in notice
            assert "deleted its tunnel agent's private files" in notice
            assert not workdir.exists()
            assert not instance_path(tmp_path).exists()
        assert stranger.poll() is None and unmarked.poll() is None


def test_a_dead_owner_s_agent_is_stopped_only_while_it_is_the_same_process(tmp_path: Path) -> None:
    workdir, config = agent_workdir(tmp_path)
    with sleeper(str(config)) as agent:
        identity = process_identity(agent.pid) or ""
        record(tmp_path, dead_pid(), AgentFootprint(agent.pid, identity, str(config), str(workdir), (str(config),)))
        notice = clear_leftovers(tmp_path)
        assert agent.wait(timeout=5) == -signal.SIGTERM
    assert notice is not None and f"stopped its tunnel agent (pid {agent.pid})" in notice
    assert not workdir.exists()
    assert clear_leftovers(tmp_path) is None  # nothing left: nothing to say


def test_an_agent_ignoring_sigterm_gets_sigkill(tmp_path: Path) -> None:
    marker = str(tmp_path / "ngrok.yml")
    with sleeper(marker, "ignore-term") as agent:
        assert stop_recorded_process(agent.pid, process_identity(agent.pid) or "", marker, grace_s=0.3)
        assert agent.wait(timeout=5) == -signal.SIGKILL


def test_a_tampered_instance_file_deletes_nothing_outside_our_temp_dirs(tmp_path: Path) -> None:
    precious = tmp_path / "precious"
    precious.mkdir()
    (precious / "keep.txt").write_text("mine")
    footprint = AgentFootprint(0, "", str(precious / "ngrok.yml"), str(precious), (str(precious / "keep.txt"),))
    record(tmp_path / "recordings", dead_pid(), footprint)
    assert clear_leftovers(tmp_path / "recordings") is not None
    assert (precious / "keep.txt").read_text() == "mine"


def test_a_reused_owner_pid_is_not_taken_for_a_running_instance(tmp_path: Path) -> None:
    local = "http://127.0.0.1:1/webhook/whatsapp"
    write_instance(tmp_path, RunningInstance(os.getpid(), local, local, None, None, None, "other-start"))
    assert read_instance(tmp_path) is None
    ours = process_identity(os.getpid()) or ""
    write_instance(tmp_path, RunningInstance(os.getpid(), local, local, None, None, None, ours))
    assert read_instance(tmp_path) is not None


def test_a_dead_engine_s_channel_directory_goes_but_nothing_else(tmp_path: Path) -> None:
    local = "http://127.0.0.1:1/webhook/whatsapp"
    stale = tmp_path / f"{CHANNEL_DIR_PREFIX}dead"
    stale.mkdir(mode=0o700)
    (stale / "engine.sock").write_text("")  # a socket file nobody listens on any more
    instance = RunningInstance(dead_pid(), local, local, None, None, None, "gone", channel=str(stale / "engine.sock"))
    write_instance(tmp_path / "recordings", instance)
    assert clear_leftovers(tmp_path / "recordings") is not None
    assert not stale.exists()

    precious = tmp_path / "precious"  # a tampered instance file names a directory that is not ours
    precious.mkdir()
    (precious / "engine.sock").write_text("mine")
    tampered = RunningInstance(
        dead_pid(), local, local, None, None, None, "gone", channel=str(precious / "engine.sock")
    )
    write_instance(tmp_path / "recordings", tampered)
    clear_leftovers(tmp_path / "recordings")
    assert (precious / "engine.sock").read_text() == "mine"


@contextmanager
def agent_group(marker: str) -> Iterator[tuple[subprocess.Popen[str], int]]:
    """A launcher leading its own process group with the 'agent' as its child, as a wrapper script runs it."""
    launcher = "import subprocess, sys\nsubprocess.Popen([sys.executable, '-c', *sys.argv[1:]]).wait()"
    proc = subprocess.Popen(
        [sys.executable, "-c", launcher, SLEEPER, marker], stdout=subprocess.PIPE, text=True, start_new_session=True
    )
    try:
        assert proc.stdout is not None and proc.stdout.readline() == "ready\n"
        children = [pid for pid in group_members(proc.pid) if pid != proc.pid]
        assert len(children) == 1
        yield proc, children[0]
    finally:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(proc.pid, signal.SIGKILL)
        proc.wait(timeout=10)


def test_the_dead_instance_s_whole_agent_group_is_stopped(tmp_path: Path) -> None:
    workdir, config = agent_workdir(tmp_path)
    with agent_group(str(config)) as (launcher, agent):
        footprint = AgentFootprint(launcher.pid, process_identity(launcher.pid) or "", str(config), str(workdir))
        record(tmp_path, dead_pid(), footprint)
        notice = clear_leftovers(tmp_path)
        assert launcher.wait(timeout=5) is not None
        assert not pid_alive(agent)
    assert notice is not None and f"stopped its tunnel agent (pid {launcher.pid})" in notice
    assert group_members(launcher.pid) == []


def test_an_agent_whose_launcher_died_is_still_found_by_its_group_and_marker(tmp_path: Path) -> None:
    workdir, config = agent_workdir(tmp_path)
    with agent_group(str(config)) as (launcher, agent), sleeper(str(config)) as outsider:
        identity = process_identity(launcher.pid) or ""
        launcher.kill()
        launcher.wait(timeout=5)
        assert pid_alive(agent)
        record(tmp_path, dead_pid(), AgentFootprint(launcher.pid, identity, str(config), str(workdir)))
        notice = clear_leftovers(tmp_path)
        assert not pid_alive(agent)
        assert outsider.poll() is None  # same marker, but not in the agent's process group
    assert notice is not None and "stopped its tunnel agent" in notice
