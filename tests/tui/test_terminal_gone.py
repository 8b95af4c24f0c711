"""A terminal that vanishes stops the TUI and its engine, even when no SIGHUP reaches the TUI (issue 16, item 3).

On a hang-up the kernel signals only the terminal's session leader. Started through `make run` (or `uv run`,
`poetry run`, an npm script) the TUI is not that leader: make takes the SIGHUP and waits for its children, and
the TUI used to go on for ever at high CPU on a deleted /dev/pts, its engine (and a `--register`) with it.
Here a small leader stands in for make: it takes the pseudo-terminal as its controlling terminal, swallows
SIGHUP and waits for the real `wa-devtunnel` console script it started.
"""

from __future__ import annotations

import contextlib
import fcntl
import os
import pty
import select
import shutil
import signal
import struct
import subprocess
import sys
import tempfile
import termios
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import IO

import pytest

from tests.support.cli_process import minimal_env, wait_for
from tests.support.constants import APP_SECRET, VERIFY_TOKEN
from tests.support.fake_ngrok import pid_alive
from wa_devtunnel.engine.instance import RunningInstance, instance_path, load_instance
from wa_devtunnel.engine.recording import read_recording
from wa_devtunnel.tui.terminal_watch import TerminalWatch, hung_up, let_go_of_dead_terminal

pytestmark = pytest.mark.skipif(not sys.platform.startswith("linux"), reason="reads /proc and Linux pty hang-ups")

EXIT_S = 15.0  # generous: polled, the exit takes about a second
START_S = 30.0

# Like make: the session leader takes the hang-up, passes nothing on, waits for its child and exits with it.
LEADER = """
import fcntl, signal, subprocess, sys, termios
signal.signal(signal.SIGHUP, lambda *_: None)
fcntl.ioctl(0, termios.TIOCSCTTY, 0)
sys.exit(subprocess.call(sys.argv[1:]))
"""


def _console_script() -> list[str]:
    """The installed `wa-devtunnel` beside this interpreter (as `make run` starts it)."""
    script = Path(sys.executable).parent / "wa-devtunnel"
    return [str(script)] if script.exists() else [sys.executable, "-m", "wa_devtunnel"]


class Terminal:
    """A 80x24 pseudo-terminal: the screen's bytes drained (and kept) until `vanish` closes the master side."""

    def __init__(self) -> None:
        self.master, self.slave = pty.openpty()
        fcntl.ioctl(self.slave, termios.TIOCSWINSZ, struct.pack("HHHH", 24, 80, 0, 0))
        self.screen = bytearray()
        self._closing = threading.Event()
        self._reader = threading.Thread(target=self._drain, daemon=True)

    def start_draining(self) -> None:
        os.close(self.slave)  # the child holds it now
        self.slave = -1
        self._reader.start()

    def _drain(self) -> None:
        # Never blocked in read() when `vanish` closes the master: a blocked read would keep it open.
        with contextlib.suppress(OSError):
            while not self._closing.is_set():
                if select.select([self.master], [], [], 0.05)[0]:
                    data = os.read(self.master, 65536)
                    if not data:
                        return
                    self.screen += data

    def press(self, keys: str) -> None:
        os.write(self.master, keys.encode())

    def vanish(self) -> None:
        """The window, the ssh connection or the tmux pane goes: the master side closes. No signal is sent."""
        self._closing.set()
        self._reader.join(5)
        if self.master >= 0:
            os.close(self.master)
            self.master = -1

    def close(self) -> None:
        self.vanish()
        if self.slave >= 0:
            os.close(self.slave)


@contextlib.contextmanager
def started(
    args: list[str], env: dict[str, str], cwd: Path, leader: bool
) -> Iterator[tuple[subprocess.Popen[bytes], Terminal]]:
    """`args` on a new terminal, under the SIGHUP-swallowing leader or as the session leader itself.

    Whatever happens, nothing is left running: the leader, the TUI and its engine are killed by pid."""
    terminal = Terminal()
    command = [sys.executable, "-c", LEADER, *args] if leader else args
    proc = subprocess.Popen(
        command,
        cwd=cwd,
        env={**env, "TERM": "xterm-256color"},
        stdin=terminal.slave,
        stdout=terminal.slave,
        stderr=terminal.slave,
        start_new_session=True,
    )
    terminal.start_draining()
    try:
        yield proc, terminal
    finally:
        for pid in _descendants(proc.pid):
            with contextlib.suppress(OSError):
                os.kill(pid, signal.SIGKILL)
        if proc.poll() is None:
            proc.kill()
        proc.wait(10)
        terminal.close()


def _children(pid: int) -> list[int]:
    path = Path(f"/proc/{pid}/task/{pid}/children")
    with contextlib.suppress(OSError):
        return [int(child) for child in path.read_text().split()]
    return []


def _descendants(pid: int) -> list[int]:
    found = []
    for child in _children(pid):
        found += [child, *_descendants(child)]
    return found


def _parent(pid: int) -> int:
    return int(Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[1])


def _running_engine(recordings: Path, terminal: Terminal) -> RunningInstance:
    found: list[RunningInstance] = []

    def ready() -> bool:
        instance = load_instance(recordings)
        if instance is not None and instance.channel:
            found.append(instance)
        return bool(found)

    try:
        wait_for(ready, "the engine's instance file", START_S)
    except AssertionError as exc:
        raise AssertionError(f"{exc}; the screen ends with {bytes(terminal.screen[-2000:])!r}") from None
    return found[-1]


@pytest.fixture
def env(tmp_path: Path) -> Iterator[dict[str, str]]:
    """No prompt for `.env` (the verify token is set), state and HOME in the test's folder."""
    # The engine's private channel directory is made here: short, a socket's path has a limit.
    channels = tempfile.mkdtemp(prefix="wa-tg-")
    yield minimal_env(
        tmp_path,
        {
            "WHATSAPP_APP_SECRET": APP_SECRET,
            "WHATSAPP_VERIFY_TOKEN": VERIFY_TOKEN,
            "WA_DEVTUNNEL_STATE_DIR": str(tmp_path / "state"),
            "TMPDIR": channels,
        },
    )
    shutil.rmtree(channels, ignore_errors=True)


def test_a_vanished_terminal_stops_the_tui_and_its_engine_though_no_sighup_reaches_the_tui(
    tmp_path: Path, env: dict[str, str]
) -> None:
    recordings = tmp_path / "recordings"
    args = [*_console_script(), "--port", "0", "--tunnel", "none", "--recordings-dir", str(recordings)]
    log: IO[bytes] | None = None
    with started(args, env, tmp_path, leader=True) as (leader, terminal):
        engine = _running_engine(recordings, terminal)
        tui = _parent(engine.pid)
        assert tui != leader.pid and os.getsid(tui) == leader.pid, "the TUI is not the session leader"
        wait_for(lambda: b"Callback URL" in terminal.screen, "the header on screen")
        terminal.press("s")
        recording = Path(str(engine.recording))
        wait_for(lambda: recording.exists() and read_recording(recording).records, "the sample's record")
        channel = Path(str(engine.channel)).parent
        log = open(channel / "engine.log", "rb")  # noqa: SIM115 - read after the directory is gone
        try:
            terminal.vanish()
            wait_for(lambda: not pid_alive(tui), "the TUI to exit on its own", EXIT_S)
            assert leader.wait(EXIT_S) == 0, "the TUI exited 0 (its leader exits with it)"
            wait_for(lambda: not pid_alive(engine.pid), "the engine to stop with its TUI", EXIT_S)
            last_words = log.read().decode()
        finally:
            log.close()
    assert "Stopped after 1 exchange(s). Recording: " in last_words, last_words
    assert "Traceback" not in last_words
    assert not instance_path(recordings).exists(), "the engine stopped cleanly (its instance file removed)"
    assert not channel.exists(), "the private channel directory is removed: the goodbye on a dead terminal is no error"
    [sample] = read_recording(recording).records
    assert sample["origin"] == "sample", "the recording is kept"


def test_sighup_on_a_live_terminal_still_restores_it_and_says_goodbye_there(
    tmp_path: Path, env: dict[str, str]
) -> None:
    """`kill -HUP` with the terminal still there: nothing is redirected, the screen gets the engine's last line."""
    recordings = tmp_path / "recordings"
    args = [*_console_script(), "--port", "0", "--tunnel", "none", "--recordings-dir", str(recordings)]
    with started(args, env, tmp_path, leader=False) as (tui, terminal):
        engine = _running_engine(recordings, terminal)
        wait_for(lambda: b"Callback URL" in terminal.screen, "the header on screen")
        tui.send_signal(signal.SIGHUP)
        assert tui.wait(EXIT_S) == 0
        wait_for(lambda: not pid_alive(engine.pid), "the engine to stop with its TUI", EXIT_S)
        wait_for(lambda: b"Stopped after 0 exchange(s)" in terminal.screen, "the engine's last line on screen")
        assert b"\x1b[?1049l" in terminal.screen, "the alternate screen was left"
        assert b"Traceback" not in terminal.screen


# The watch itself, on a bare pseudo-terminal ------------------------------------------------------------


def test_the_watch_sees_a_hang_up_at_once_and_points_the_descriptor_at_dev_null() -> None:
    master, slave = pty.openpty()
    watched = os.dup(slave)
    gone = threading.Event()
    try:
        watch = TerminalWatch(gone.set, fds=[watched], check_s=60.0).start()  # POLLHUP, not the periodic check
        assert not hung_up(watched)
        os.close(master)
        assert gone.wait(10), "the hang-up was noticed"
        assert watch.gone
        assert os.path.samestat(os.fstat(watched), os.stat(os.devnull)), "writes after it go nowhere, no EIO"
        os.write(watched, b"goodbye\n")
    finally:
        for fd in (slave, watched):
            with contextlib.suppress(OSError):
                os.close(fd)


def test_a_live_terminal_is_left_alone() -> None:
    master, slave = pty.openpty()
    gone = threading.Event()
    try:
        watch = TerminalWatch(gone.set, fds=[slave], check_s=0.05).start()
        assert not gone.wait(0.3)
        watch.stop()
        assert not let_go_of_dead_terminal([slave])
        assert os.isatty(slave)
        read_end, write_end = os.pipe()
        assert not hung_up(read_end), "a pipe is no hung-up terminal"
        for fd in (read_end, write_end):
            os.close(fd)
    finally:
        os.close(master)
        os.close(slave)
