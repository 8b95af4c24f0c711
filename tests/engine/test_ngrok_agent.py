"""The agent we run: the real binary, new enough, its process group stopped whole, its launcher where it can run."""

from __future__ import annotations

import asyncio
import os
import sys
import tempfile
from pathlib import Path

import pytest
from pyngrok import conf

from tests.support.fake_ngrok import DEFAULT_AUTHTOKEN, FakeNgrok, MakeFakeNgrok, pid_alive
from wa_devtunnel.engine.tunnel import ngrok as ngrok_module
from wa_devtunnel.engine.tunnel.agent_group import group_members
from wa_devtunnel.engine.tunnel.agent_version import is_pyngrok_wrapper, parse_version
from wa_devtunnel.engine.tunnel.ngrok import NgrokTunnel
from wa_devtunnel.engine.tunnel.provider import AGENT_WORKDIR_PREFIX, TunnelError

PYNGROK_WRAPPER = Path(sys.executable).parent / "ngrok"  # pip's console script for pyngrok, in this venv


def _tunnel(path: Path | str, deadline: float = 10.0) -> NgrokTunnel:
    return NgrokTunnel(DEFAULT_AUTHTOKEN, ngrok_path=str(path), start_deadline_s=deadline, upstream_host="127.0.0.1")


def _script(path: Path, body: str) -> Path:
    path.write_text(f"#!/bin/sh\n{body}\n", encoding="utf-8")
    path.chmod(0o700)
    return path


def _agent_pids(fake: FakeNgrok) -> list[int]:
    return [entry["pid"] for entry in fake._log_entries() if entry["argv"][:1] == ["start"]]


@pytest.mark.skipif(not PYNGROK_WRAPPER.is_file(), reason="pyngrok's console script is not installed here")
async def test_pyngrok_s_own_wrapper_is_refused_with_the_real_binary_named() -> None:
    assert is_pyngrok_wrapper(str(PYNGROK_WRAPPER))
    tunnel = _tunnel(PYNGROK_WRAPPER)
    with pytest.raises(TunnelError) as raised:
        await tunnel.start(8765)
    assert "pyngrok's Python wrapper script, not the ngrok agent" in raised.value.summary
    assert conf.DEFAULT_NGROK_PATH in raised.value.advice
    assert "https://ngrok.com/download" in raised.value.advice
    assert tunnel.footprint() is None  # nothing was started, nothing written


def test_a_shell_wrapper_mentioning_pyngrok_in_a_path_is_not_taken_for_it(tmp_path: Path) -> None:
    wrapper = _script(tmp_path / "ngrok", 'exec /opt/pyngrok-tools/ngrok "$@"')
    assert not is_pyngrok_wrapper(str(wrapper))


@pytest.mark.parametrize(
    ("said", "number"),
    [("ngrok version 3.30.0\n", (3, 30, 0)), ("ngrok version 2.3.41", (2, 3, 41)), ("ngrok version v3.31", (3, 31, 0))],
)
def test_versions_are_read_as_the_agent_prints_them(said: str, number: tuple[int, int, int]) -> None:
    assert parse_version(said) == number
    assert parse_version("command not found") is None


async def test_an_old_agent_is_refused_at_once_naming_the_binary_to_update(tmp_path: Path) -> None:
    old = _script(tmp_path / "ngrok", 'echo "ngrok version 2.3.41"')
    tunnel = _tunnel(old, deadline=20)
    loop = asyncio.get_running_loop()
    began = loop.time()
    with pytest.raises(TunnelError) as raised:
        await tunnel.start(8765)
    assert loop.time() - began < 5  # a version probe, not the 20 s deadline
    assert raised.value.summary == f"the ngrok agent at {old} is version 2.3.41; wa-devtunnel needs 3.30 or newer"
    assert f"`{old} update`" in raised.value.advice and "PYNGROK_NGROK_PATH" in raised.value.advice


async def test_an_agent_that_cannot_say_its_version_is_refused_with_what_it_printed(tmp_path: Path) -> None:
    broken = _script(tmp_path / "ngrok", 'echo "segmentation fault" >&2; exit 139')
    with pytest.raises(TunnelError) as raised:
        await _tunnel(broken).start(8765)
    assert "exit 139" in raised.value.summary and "segmentation fault" in raised.value.summary


async def test_stop_ends_the_agent_a_wrapper_started_as_a_grandchild(tmp_path: Path, fake_ngrok: FakeNgrok) -> None:
    # What `which ngrok` may find: a script that runs the agent without exec, so the agent is a grandchild.
    wrapper = _script(tmp_path / "wrapper-ngrok", f'"{fake_ngrok.ngrok_path}" "$@"\nexit $?')
    tunnel = _tunnel(wrapper)
    url = await tunnel.start(0)
    try:
        assert url.startswith("https://")
        footprint = tunnel.footprint()
        assert footprint is not None and footprint.pid > 0
        agents = _agent_pids(fake_ngrok)
        assert agents and all(pid_alive(pid) for pid in agents)
        assert footprint.pid not in agents  # the launcher/wrapper leads the group, the agent is below it
        assert all(os.getpgid(pid) == footprint.pid for pid in agents)
    finally:
        await tunnel.stop()
    assert not any(pid_alive(pid) for pid in agents)
    assert group_members(footprint.pid) == []
    assert not Path(footprint.workdir).exists()


async def test_a_temp_dir_where_programs_may_not_run_moves_the_launcher(
    tmp_path: Path, fake_ngrok: FakeNgrok, monkeypatch: pytest.MonkeyPatch
) -> None:
    noexec, runtime = tmp_path / "noexec-tmp", tmp_path / "runtime"
    noexec.mkdir()
    runtime.mkdir(mode=0o700)
    monkeypatch.setattr(tempfile, "tempdir", str(noexec))
    monkeypatch.setenv("XDG_RUNTIME_DIR", str(runtime))
    real_probe = ngrok_module.can_execute_in
    monkeypatch.setattr(ngrok_module, "can_execute_in", lambda d: d.parent != noexec and real_probe(d))
    tunnel = _tunnel(fake_ngrok.ngrok_path)
    try:
        await tunnel.start(0)
        footprint = tunnel.footprint()
        assert footprint is not None
        assert Path(footprint.workdir).parent == runtime
        assert Path(footprint.workdir).name.startswith(AGENT_WORKDIR_PREFIX)
        assert list(noexec.iterdir()) == []  # the refused attempt left nothing behind
    finally:
        await tunnel.stop()


async def test_no_place_to_run_the_launcher_is_a_tunnel_error_not_a_crash(
    tmp_path: Path, fake_ngrok: FakeNgrok, monkeypatch: pytest.MonkeyPatch
) -> None:
    not_a_dir = tmp_path / "a-file"
    not_a_dir.write_text("")
    monkeypatch.setattr(tempfile, "tempdir", str(not_a_dir))
    monkeypatch.delenv("XDG_RUNTIME_DIR", raising=False)
    monkeypatch.setenv("HOME", str(not_a_dir))
    with pytest.raises(TunnelError) as raised:
        await _tunnel(fake_ngrok.ngrok_path).start(0)
    assert raised.value.summary.startswith("no place for the ngrok agent's launcher: ")
    assert str(not_a_dir) in raised.value.summary
    assert "TMPDIR" in raised.value.advice
    assert _agent_pids(fake_ngrok) == []


async def test_old_agent_through_the_service_leaves_it_local_only(
    tmp_path: Path, make_fake_ngrok: MakeFakeNgrok
) -> None:
    fake = make_fake_ngrok(mode="version=3.29.9")
    with pytest.raises(TunnelError) as raised:
        await _tunnel(fake.ngrok_path).start(0)
    assert "is version 3.29.9; wa-devtunnel needs 3.30 or newer" in raised.value.summary
    assert f"`{fake.ngrok_path} update`" in raised.value.advice
    assert _agent_pids(fake) == []
