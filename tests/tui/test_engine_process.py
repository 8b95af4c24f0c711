"""The TUI and its engine as two processes, as a developer runs them: the engine lives and dies with its UI.

The real `python -m wa_devtunnel` runs on a pseudo-terminal (Textual draws to it) and starts its engine
child; the tunnel is the fake ngrok agent and Meta the fake Graph API, both at the process boundary.
"""

from __future__ import annotations

import contextlib
import fcntl
import os
import pty
import signal
import socket
import struct
import subprocess
import sys
import tempfile
import termios
import threading
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.support.cli_process import minimal_env, registering_env, wait_for
from tests.support.constants import APP_SECRET, VERIFY_TOKEN
from tests.support.fake_graph import PHONE_NUMBER_ID, FakeGraph
from tests.support.fake_ngrok import MakeFakeNgrok, pid_alive
from tests.support.inspector import wait_until
from wa_devtunnel.__main__ import main
from wa_devtunnel.engine.channel.child import EngineChild
from wa_devtunnel.engine.instance import RunningInstance, instance_path, load_instance
from wa_devtunnel.engine.recording import read_recording
from wa_devtunnel.tui.app import InspectorApp
from wa_devtunnel.tui.header import EngineAlarm
from wa_devtunnel.tui.priority import UI_NICE

WAIT_S = 20.0


class TerminalRun:
    """`wa-devtunnel` on a 120x40 pseudo-terminal: keys in, screen bytes drained (and kept) in a thread."""

    def __init__(self, workdir: Path, args: list[str], env: dict[str, str]) -> None:
        master, slave = pty.openpty()
        fcntl.ioctl(slave, termios.TIOCSWINSZ, struct.pack("HHHH", 40, 120, 0, 0))
        self.master = master
        self.screen = bytearray()
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "wa_devtunnel", *args],
            cwd=workdir,
            env={**env, "TERM": "xterm-256color"},
            stdin=slave,
            stdout=slave,
            stderr=slave,
            start_new_session=True,
        )
        os.close(slave)
        self._reader = threading.Thread(target=self._drain, daemon=True)
        self._reader.start()

    def _drain(self) -> None:
        with contextlib.suppress(OSError):
            while data := os.read(self.master, 65536):
                self.screen += data

    def press(self, keys: str) -> None:
        os.write(self.master, keys.encode())

    def close(self) -> None:
        if self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait(10)
        self._reader.join(5)
        with contextlib.suppress(OSError):
            os.close(self.master)


@contextlib.contextmanager
def terminal_run(workdir: Path, *args: str, env: dict[str, str]) -> Iterator[TerminalRun]:
    run = TerminalRun(workdir, list(args), env)
    try:
        yield run
    finally:
        run.close()


def _running_engine(recordings: Path) -> RunningInstance:
    """The engine child's entry in the instance file, once it has written it."""
    found: list[RunningInstance] = []

    def ready() -> bool:
        instance = load_instance(recordings)
        if instance is not None and instance.channel:
            found.append(instance)
        return bool(found)

    wait_for(ready, "the engine's instance file")
    return found[-1]


def test_the_tui_starts_its_engine_as_a_child_and_stops_it_on_quit(tmp_path: Path) -> None:
    env = minimal_env(tmp_path, {"WHATSAPP_APP_SECRET": APP_SECRET, "WHATSAPP_VERIFY_TOKEN": VERIFY_TOKEN})
    recordings = tmp_path / "recordings"
    with terminal_run(tmp_path, "--port", "0", "--tunnel", "none", env=env) as tui:
        engine = _running_engine(recordings)
        assert engine.pid != tui.proc.pid and pid_alive(engine.pid)
        channel_dir = Path(str(engine.channel)).parent
        assert channel_dir.is_dir()
        wait_for(lambda: b"Callback URL" in tui.screen, "the header on screen")
        tui.press("s")
        recording = Path(str(engine.recording))
        wait_for(lambda: recording.exists() and read_recording(recording).records, "the sample's record")
        tui.press("q")
        assert tui.proc.wait(WAIT_S) == 0
        wait_for(lambda: not pid_alive(engine.pid), "the engine to exit with its UI")
        wait_for(lambda: b"Stopped after 1 exchange(s)" in tui.screen, "the engine's last line")
    assert not channel_dir.exists(), "the private channel directory is removed"
    assert not instance_path(recordings).exists()
    [sample] = read_recording(recording).records
    assert sample["origin"] == "sample" and sample["signature"] == "valid"


def test_a_killed_tui_leaves_no_engine_no_agent_and_no_meta_override(
    tmp_path: Path, make_fake_ngrok: MakeFakeNgrok, threaded_fake_graph: FakeGraph
) -> None:
    env = registering_env(tmp_path, make_fake_ngrok(mode="ok"), threaded_fake_graph)
    overrides = threaded_fake_graph.state.phone_overrides
    recordings = tmp_path / "recordings"
    with terminal_run(tmp_path, "--port", "0", "--register", "phone", env=env) as tui:
        wait_for(lambda: overrides.get(PHONE_NUMBER_ID, "").startswith("https://"), "Meta pointed at the tunnel")
        engine = _running_engine(recordings)
        wait_for(lambda: (load_instance(recordings) or engine).agent is not None, "the agent in the instance file")
        agent = (load_instance(recordings) or engine).agent
        assert agent is not None and pid_alive(agent.pid)
        tui.proc.send_signal(signal.SIGKILL)  # no chance to clean up: the engine must notice by itself
        tui.proc.wait(10)
        wait_for(lambda: not pid_alive(engine.pid), "the engine to stop after its UI died")
        assert not pid_alive(agent.pid), "no orphan ngrok agent"
    assert overrides == {}, "the Meta override was removed"
    assert not instance_path(recordings).exists()
    assert not Path(str(engine.channel)).parent.exists(), "nobody is left to read its log: the directory goes"


@pytest.fixture
def child_engine(tmp_path: Path) -> Iterator[EngineChild]:
    """The engine as `run_tui` starts it: a real child process on a private channel."""
    env = minimal_env(tmp_path, {"WHATSAPP_APP_SECRET": APP_SECRET, "WHATSAPP_VERIFY_TOKEN": VERIFY_TOKEN})
    child = EngineChild(["up", "--port", "0", "--tunnel", "none"], environ=env, cwd=tmp_path)
    yield child
    child.stop()


async def test_a_killed_engine_is_reported_loudly_and_restarted_keeping_the_list(
    child_engine: EngineChild, tmp_path: Path
) -> None:
    client = child_engine.start()
    app = InspectorApp(client, child_engine)
    async with app.run_test(size=(120, 40)) as pilot:
        await pilot.press("s")
        await wait_until(pilot, lambda: app.exchanges.row_count == 1, "the sample row")
        alarm = app.query_one(EngineAlarm)
        assert not alarm.display
        first = child_engine.process
        assert first is not None
        first.send_signal(signal.SIGKILL)
        await wait_until(pilot, lambda: "ENGINE DIED (killed by signal 9)" in str(alarm.render()), "the alarm")
        assert alarm.display and "Press R to restart" in str(alarm.render())
        assert app.state.tunnel_state == "failed"

        await pilot.press("R")
        await wait_until(pilot, lambda: app.child is not child_engine and not alarm.display, "the restart", 30)
        assert app.child is not None and app.child.exit_code is None
        assert app.started.verify_token == VERIFY_TOKEN
        assert app.exchanges.row_count == 1, "rows from before the restart stay"
        first_part = app.recording_parts[0]
        await pilot.press("s")
        await wait_until(pilot, lambda: app.exchanges.row_count == 2, "a sample through the new engine")
        # The new engine's file exists from its first record on; search covers the first engine's too.
        assert len(app.recording_parts) == 2 and app.recording_parts[0] == first_part
        restarted = app.child
    assert restarted.stop() == 0
    recordings = sorted((tmp_path / "recordings").glob("*.jsonl"))
    assert len(recordings) == 2 and all(read_recording(path).records for path in recordings)


def test_an_engine_that_cannot_start_says_why_and_the_tui_exits_2(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("WHATSAPP_VERIFY_TOKEN", VERIFY_TOKEN)
    private = tmp_path / "tmp"
    private.mkdir()
    monkeypatch.setattr(tempfile, "tempdir", str(private))  # where the channel directory is made
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        assert main(["--port", str(port), "--tunnel", "none"]) == 2
    err = capsys.readouterr().err
    assert f"cannot listen on 127.0.0.1:{port}" in err and "Traceback" not in err
    assert list(private.iterdir()) == [], "no channel directory left behind"


def test_the_screen_runs_below_its_engines_priority_and_a_restarted_engine_above_it_too(tmp_path: Path) -> None:
    env = minimal_env(tmp_path, {"WHATSAPP_APP_SECRET": APP_SECRET, "WHATSAPP_VERIFY_TOKEN": VERIFY_TOKEN})
    recordings = tmp_path / "recordings"
    with terminal_run(tmp_path, "--port", "0", "--tunnel", "none", env=env) as tui:
        first = _running_engine(recordings)
        wait_for(lambda: b"Callback URL" in tui.screen, "the header on screen")
        ours = os.getpriority(os.PRIO_PROCESS, os.getpid())
        assert os.getpriority(os.PRIO_PROCESS, first.pid) == ours
        assert os.getpriority(os.PRIO_PROCESS, tui.proc.pid) == min(ours + UI_NICE, 19)
        os.kill(first.pid, signal.SIGKILL)
        wait_for(lambda: b"ENGINE DIED" in tui.screen, "the engine banner")
        tui.press("R")
        wait_for(lambda: (load_instance(recordings) or first).pid not in (first.pid,), "the restarted engine", 30)
        second = load_instance(recordings)
        assert second is not None and pid_alive(second.pid)
        assert os.getpriority(os.PRIO_PROCESS, second.pid) == ours, "started from the starter thread, not the UI's"
        wait_for(lambda: b"Engine restarted" in tui.screen, "the UI attached to it")
        tui.press("q")
        assert tui.proc.wait(WAIT_S) == 0  # restarted: running again when the UI quit
        wait_for(lambda: not pid_alive(second.pid), "the restarted engine to stop with its UI")


def test_watch_in_a_terminal_detaches_on_q_and_the_engine_goes_on(tmp_path: Path) -> None:
    env = minimal_env(tmp_path, {"WHATSAPP_APP_SECRET": APP_SECRET, "WHATSAPP_VERIFY_TOKEN": VERIFY_TOKEN})
    recordings = tmp_path / "recordings"
    with terminal_run(tmp_path, "--port", "0", "--tunnel", "none", env=env) as owner:
        engine = _running_engine(recordings)
        with terminal_run(tmp_path, "watch", env=env) as watcher:
            wait_for(lambda: b"Callback URL" in watcher.screen, "the watcher's header")
            owner.press("s")
            wait_for(lambda: b"(sample) text from" in watcher.screen, "the sample in the watcher")
            watcher.press("q")
            assert watcher.proc.wait(WAIT_S) == 0
            assert b"Traceback" not in watcher.screen
        assert pid_alive(engine.pid), "detaching never stops the engine"
        owner.press("q")
        assert owner.proc.wait(WAIT_S) == 0
