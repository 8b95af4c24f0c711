"""Runs the real `python -m wa_devtunnel` as a child process, the way a developer's terminal does."""

from __future__ import annotations

import os
import re
import signal
import subprocess
import sys
import time
from collections.abc import Callable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from tests.support import constants
from wa_devtunnel.engine.leftovers import clear_leftovers

if TYPE_CHECKING:
    from tests.support.fake_graph import FakeGraph
    from tests.support.fake_ngrok import FakeNgrok

REPO_ROOT = Path(__file__).resolve().parents[2]
APP_SECRET = "cli-app-secret-0123456789abcdef"
VERIFY_TOKEN = "wa-cli-verify-token"
CALLBACK_RE = re.compile(r"Callback URL: (http://127\.0\.0\.1:(\d+)(/\S*))")
STARTUP_TIMEOUT_S = 20.0
STOP_TIMEOUT_S = 10.0


def minimal_env(workdir: Path, extra: Mapping[str, str] | None = None) -> dict[str, str]:
    """Just enough to run Python: no NGROK_AUTHTOKEN or WHATSAPP_* leaking in from the developer."""
    env = {
        "PATH": os.environ.get("PATH", "/usr/bin:/bin"),
        "HOME": str(workdir),
        "PYTHONPATH": str(REPO_ROOT),
        "PYTHONIOENCODING": "utf-8",
        "PYTHONDONTWRITEBYTECODE": "1",
        "LC_ALL": "C.UTF-8",
    }
    env.update(extra or {})
    return env


def registering_env(workdir: Path, fake_ngrok: FakeNgrok, graph: FakeGraph) -> dict[str, str]:
    """A child's environment for `up --register phone`: the fake agent as ngrok, the fake Graph API as Meta."""
    return minimal_env(
        workdir,
        graph.env(
            WHATSAPP_VERIFY_TOKEN=constants.VERIFY_TOKEN,
            NGROK_AUTHTOKEN="fake-authtoken",
            PYNGROK_NGROK_PATH=str(fake_ngrok.ngrok_path),
            SSL_CERT_FILE=str(fake_ngrok.ca_path),  # the child's self-test trusts the fake agent like a public CA
        ),
    )


def wait_for(condition: Callable[[], object], what: str, timeout: float = 20.0) -> None:
    """Poll (a child process or a fake) until `condition()` holds; fail naming `what` after `timeout`."""
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout} s waiting for {what}")
        time.sleep(0.05)


def write_env_file(workdir: Path, lines: Sequence[str] | None = None) -> Path:
    """A .env with the app secret and verify token (or the given lines)."""
    path = workdir / ".env"
    if lines is None:
        lines = [f"WHATSAPP_APP_SECRET={APP_SECRET}", f"WHATSAPP_VERIFY_TOKEN={VERIFY_TOKEN}"]
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return path


def run_cli(
    workdir: Path, *args: str, env: Mapping[str, str] | None = None, timeout: float = 30.0
) -> subprocess.CompletedProcess[str]:
    """Run a command that ends by itself (e.g. --version) and capture its output."""
    return subprocess.run(
        [sys.executable, "-m", "wa_devtunnel", *args],
        cwd=workdir,
        env=minimal_env(workdir, env),
        capture_output=True,
        text=True,
        encoding="utf-8",
        timeout=timeout,
        check=False,
    )


@dataclass
class CliProcess:
    """A running `wa-devtunnel up`; stdout and stderr go to files so the child never blocks on a pipe."""

    proc: subprocess.Popen[bytes]
    workdir: Path
    recordings_dir: Path
    stdout_path: Path
    stderr_path: Path
    port: int = 0
    callback_url: str = ""

    def stdout(self) -> str:
        return self.stdout_path.read_text(encoding="utf-8", errors="replace")

    def stderr(self) -> str:
        return self.stderr_path.read_text(encoding="utf-8", errors="replace")

    def wait_for_callback_url(self, timeout: float = STARTUP_TIMEOUT_S) -> None:
        """The port is only known once the CLI prints `Callback URL: ...` (stdout, or stderr with --json)."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            match = CALLBACK_RE.search(self.stdout()) or CALLBACK_RE.search(self.stderr())
            if match:
                self.callback_url, self.port = match.group(1), int(match.group(2))
                return
            if self.proc.poll() is not None:
                raise AssertionError(
                    f"wa-devtunnel exited with {self.proc.returncode} before printing its "
                    f"callback URL\nstdout:\n{self.stdout()}\nstderr:\n{self.stderr()}"
                )
            time.sleep(0.02)
        raise AssertionError(
            f"no 'Callback URL:' line within {timeout}s\nstdout:\n{self.stdout()}\nstderr:\n{self.stderr()}"
        )

    def stop(self, signum: int = signal.SIGTERM, timeout: float = STOP_TIMEOUT_S) -> int:
        """Send the signal and wait for the exit code."""
        self.proc.send_signal(signum)
        return self.proc.wait(timeout=timeout)

    def kill9(self) -> None:
        """SIGKILL: no handler, no cleanup, no flush; only what is already on disk survives."""
        if self.proc.poll() is None:
            os.kill(self.proc.pid, signal.SIGKILL)

    def recording(self) -> Path:
        """The one session file this run wrote."""
        files = sorted(self.recordings_dir.glob("*.jsonl"))
        assert len(files) == 1, files
        return files[0]


@contextmanager
def running_cli(
    workdir: Path,
    *extra_args: str,
    env: Mapping[str, str] | None = None,
    env_lines: Sequence[str] | None = None,
) -> Iterator[CliProcess]:
    """Start `python -m wa_devtunnel --headless --tunnel none --port 0`; never leaves it running."""
    recordings_dir = workdir / "recordings"
    env_file = write_env_file(workdir, env_lines)
    argv = [
        sys.executable,
        "-m",
        "wa_devtunnel",
        "--headless",
        "--tunnel",
        "none",
        "--port",
        "0",
        "--recordings-dir",
        str(recordings_dir),
        "--env-file",
        str(env_file),
        *extra_args,
    ]
    stdout_path, stderr_path = workdir / "cli.stdout", workdir / "cli.stderr"
    with open(stdout_path, "wb") as out, open(stderr_path, "wb") as err:
        proc = subprocess.Popen(
            argv,
            cwd=workdir,
            env=minimal_env(workdir, env),
            stdin=subprocess.DEVNULL,
            stdout=out,
            stderr=err,
            start_new_session=True,
        )
    cli = CliProcess(proc, workdir, recordings_dir, stdout_path, stderr_path)
    try:
        cli.wait_for_callback_url()
        yield cli
    finally:
        if proc.poll() is None:  # a clean stop first: a SIGKILLed engine leaves its channel directory behind
            proc.send_signal(signal.SIGTERM)
            try:
                proc.wait(timeout=STOP_TIMEOUT_S)
            except subprocess.TimeoutExpired:
                proc.kill()
        proc.wait(timeout=STOP_TIMEOUT_S)
        clear_leftovers(recordings_dir)  # what a killed one left, as the next start in that directory would
