"""The engine as a child process of a front end: the same `up --headless` a terminal runs, on a private channel.

The child holds the read end of a pipe as its stdin; when the front end ends (quit, crash, kill -9) the
kernel closes the write end and the engine stops cleanly: Meta override undone, agent stopped, recording
closed. Its stderr goes to a log in the channel's private directory: the front end shows it while the
engine starts (download progress, a port in use) and its tail when the engine dies.
"""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import sys
import time
from collections.abc import Sequence
from pathlib import Path
from typing import TextIO

from wa_devtunnel.engine.channel.address import ChannelAddress, child_environment, private_address, remove_address
from wa_devtunnel.engine.channel.client import ChannelError, EngineClient

LOG_NAME = "engine.log"
POLL_S = 0.05
START_TIMEOUT_S = 300.0  # a first ngrok download on a slow line; the engine has its own tunnel deadline
STOP_TIMEOUT_S = 20.0  # the engine waits up to --forward-timeout for backend answers before it closes


class EngineStartFailed(RuntimeError):
    """The engine exited (or never answered) before its receiver was up; `log` says why in its own words."""

    def __init__(self, exit_code: int | None, log: str) -> None:
        super().__init__(log or f"the engine exited with status {exit_code}")
        self.exit_code = exit_code
        self.log = log


def engine_command(argv: Sequence[str]) -> list[str]:
    """This interpreter running `wa-devtunnel <argv> --headless` (argv as the user typed it, `up` first)."""
    args = list(argv)
    if "--headless" not in args:
        args.append("--headless")
    return [sys.executable, "-m", "wa_devtunnel", *args]


class EngineChild:
    """One engine process started by a front end, and the way to stop it."""

    def __init__(self, argv: Sequence[str], environ: dict[str, str] | None = None, cwd: Path | None = None) -> None:
        self.argv = list(argv)
        self.environ = environ
        self.cwd = cwd
        self.address: ChannelAddress = private_address()
        self.log_path = self.address.directory / LOG_NAME
        self._log_read = 0
        self.process: subprocess.Popen[bytes] | None = None

    def start(
        self, progress: TextIO | None = None, timeout: float = START_TIMEOUT_S, records: bool = False
    ) -> EngineClient:
        """Spawn the engine and wait until it welcomes us; its start-up output is copied to `progress`.

        The client gets views only unless `records` (a UI reads a body from the recording when it shows it).
        """
        with open(self.log_path, "wb") as log:
            self.process = subprocess.Popen(
                engine_command(self.argv),
                stdin=subprocess.PIPE,
                stdout=subprocess.DEVNULL,
                stderr=log,
                env=child_environment(self.address, self.environ),
                cwd=self.cwd,
                start_new_session=True,  # the terminal's Ctrl+C and hang-up are the front end's to handle
            )
        deadline = time.monotonic() + timeout
        try:
            while True:
                self._copy_log(progress)
                code = self.process.poll()
                if code is not None:
                    raise EngineStartFailed(code, self.log_tail())
                if self.address.socket.exists():
                    with contextlib.suppress(ChannelError):
                        return EngineClient.attach(self.address, records=records)
                if time.monotonic() > deadline:
                    raise EngineStartFailed(None, f"the engine did not start within {timeout:.0f} s\n{self.log_tail()}")
                time.sleep(POLL_S)
        except BaseException:
            self._copy_log(progress)  # its last words (a port in use, say) before its directory goes
            self.stop()
            raise

    def _copy_log(self, progress: TextIO | None) -> None:
        """What the engine wrote since the last look (it escapes request text itself)."""
        if progress is None:
            return
        data = b""
        with contextlib.suppress(OSError), open(self.log_path, "rb") as log:
            log.seek(self._log_read)
            data = log.read()
            self._log_read += len(data)
        if data:
            progress.write(data.decode("utf-8", "replace"))
            progress.flush()

    def log_tail(self, lines: int = 12) -> str:
        """The last lines the engine wrote (why it stopped, in its own words)."""
        try:
            text = self.log_path.read_bytes()[-16384:].decode("utf-8", "replace")
        except OSError:
            return ""
        return "\n".join(text.rstrip("\n").splitlines()[-lines:])

    @property
    def exit_code(self) -> int | None:
        """None while it runs."""
        return None if self.process is None else self.process.poll()

    def stop(self, timeout: float = STOP_TIMEOUT_S, keep_log: bool = False) -> int | None:
        """Close its stdin (it stops cleanly), wait; TERM then KILL only if it does not. Its exit status.

        The private directory goes too, unless `keep_log` (then `forget` removes it once the log is read).
        """
        process = self.process
        if process is None:
            return None
        if process.stdin is not None:
            with contextlib.suppress(OSError):
                process.stdin.close()
        try:
            process.wait(timeout)
        except subprocess.TimeoutExpired:
            for signum, wait in ((signal.SIGTERM, 5.0), (signal.SIGKILL, 5.0)):
                with contextlib.suppress(OSError):
                    os.killpg(process.pid, signum)
                try:
                    process.wait(wait)
                    break
                except subprocess.TimeoutExpired:
                    continue
        if not keep_log:
            remove_address(self.address)
        return process.poll()

    def forget(self) -> None:
        """Remove the private directory (socket and log) of a stopped engine."""
        remove_address(self.address)
