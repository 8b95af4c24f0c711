"""ngrok through pyngrok 9: a vetted agent in its own process group, its session followed, its own words kept.

The authtoken stays off the command line (a 0600 config file), the agent sees only the environment it
needs (a launcher script), and the endpoint is the account's dev domain unless NGROK_DOMAIN names one.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import os
import shlex
import shutil
import subprocess
import tempfile
import time
from pathlib import Path
from typing import TextIO

from pyngrok import conf, installer, ngrok, process
from pyngrok.exception import (
    PyngrokError,
    PyngrokNgrokError,
    PyngrokNgrokHTTPError,
    PyngrokNgrokInstallError,
    PyngrokNgrokURLError,
)

from wa_devtunnel.engine.processes import process_identity
from wa_devtunnel.engine.redaction import Redactor
from wa_devtunnel.engine.tunnel.agent_env import agent_env_launcher_line, agent_environment
from wa_devtunnel.engine.tunnel.agent_group import stop_group
from wa_devtunnel.engine.tunnel.agent_version import PROBE_TIMEOUT_S, AgentVersion, vet_agent
from wa_devtunnel.engine.tunnel.ngrok_errors import ADVICE, DOWNLOAD_URL, advice_for, agent_words, explain, tail_lines
from wa_devtunnel.engine.tunnel.ngrok_session import AgentSession
from wa_devtunnel.engine.tunnel.provider import (
    AGENT_WORKDIR_PREFIX,
    AgentFootprint,
    TunnelError,
    TunnelHealth,
    upstream_address,
)

DEFAULT_START_DEADLINE_S = 20.0
DEFAULT_INSTALL_DEADLINE_S = 120.0
ENDPOINT_NAME = "wa-devtunnel"
MIN_REQUEST_TIMEOUT_S = 4.0  # pyngrok's own default for creating the endpoint; we allow what is left of the deadline
SESSION_GIVE_UP_S = 5.0  # at start, an agent failing this long to reach ngrok's servers is reported with its reason
CHECK_TIMEOUT_S = 3.0
STOP_GRACE_S = 3.0
CACHE_DIR = Path("~/.cache/wa-devtunnel")
# pyngrok logs every agent line; without a handler Python would print its errors on our stderr.
logging.getLogger("pyngrok").addHandler(logging.NullHandler())
logging.getLogger("pyngrok").propagate = False


def explain_agent_error(message: str) -> TunnelError:
    """Turn the agent's own error text into a message with its code and what to do."""
    return explain(message)


def _api_error_text(exc: PyngrokNgrokHTTPError) -> str:
    """The agent API's own error (e.g. a domain refused) from the HTTP error body."""
    try:
        body = json.loads(exc.body or "{}")
    except ValueError:
        return str(exc.body or exc)
    details = body.get("details") if isinstance(body, dict) else None
    if isinstance(details, dict) and details.get("err"):
        return str(details["err"])
    return str(body.get("msg") if isinstance(body, dict) and body.get("msg") else exc)


def write_agent_config(directory: Path, authtoken: str) -> Path:
    """A 0600 v3 agent config holding the authtoken (never on the command line); no remote restarts."""
    path = directory / "ngrok.yml"
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w", encoding="utf-8") as handle:
        # A JSON string is a valid YAML scalar, whatever characters the token holds.
        handle.write(f'version: "3"\nagent:\n  authtoken: {json.dumps(authtoken)}\n  remote_management: false\n')
    return path


def can_execute_in(directory: Path) -> bool:
    """Whether a script placed in `directory` runs (a temp dir mounted noexec refuses it)."""
    probe = directory / "exec-probe"
    try:
        probe.write_text("#!/bin/sh\nexit 0\n", encoding="utf-8")
        probe.chmod(0o700)
        quiet = subprocess.DEVNULL
        return subprocess.run([str(probe)], stdin=quiet, stdout=quiet, stderr=quiet, timeout=5).returncode == 0
    except (OSError, subprocess.SubprocessError):
        return False
    finally:
        with contextlib.suppress(OSError):
            probe.unlink()


def workdir_parents() -> list[Path | None]:
    """Where the agent's private directory may go: the temp dir first, then places rarely mounted noexec."""
    parents: list[Path | None] = [None]
    runtime = os.environ.get("XDG_RUNTIME_DIR", "").strip()
    if runtime and os.path.isabs(runtime):
        parents.append(Path(runtime))
    parents.append(CACHE_DIR.expanduser())
    return parents


def make_workdir() -> Path:
    """A fresh 0700 directory whose scripts may run; TunnelError (never a raw OSError) when there is none."""
    problems: list[str] = []
    for parent in workdir_parents():
        where = str(parent or tempfile.gettempdir())
        try:
            if parent is not None:
                parent.mkdir(mode=0o700, parents=True, exist_ok=True)
            workdir = Path(tempfile.mkdtemp(prefix=AGENT_WORKDIR_PREFIX, dir=parent))
        except OSError as exc:
            problems.append(f"{where}: {exc.strerror or exc}")
            continue
        if os.name != "posix" or can_execute_in(workdir):
            return workdir
        shutil.rmtree(workdir, ignore_errors=True)
        problems.append(f"{where}: programs may not run there (mounted noexec?)")
    raise TunnelError(
        f"no place for the ngrok agent's launcher: {'; '.join(problems)}",
        "Set TMPDIR to a directory of yours where programs may run (e.g. TMPDIR=~/.cache), then start again.",
    )


class NgrokTunnel:
    """The `ngrok` provider: a pyngrok-managed agent exposing only the receiver's port."""

    name = "ngrok"
    settle_s = 0.0  # the dev domain exists before the agent starts

    def __init__(
        self,
        authtoken: str | None,
        domain: str | None = None,
        ngrok_path: str | None = None,
        start_deadline_s: float = DEFAULT_START_DEADLINE_S,
        upstream_host: str = "localhost",
    ) -> None:
        self.authtoken = authtoken
        self.upstream_host = upstream_host
        self.domain = domain
        self.start_deadline_s = start_deadline_s
        self.binary_path = ngrok_path or conf.DEFAULT_NGROK_PATH
        self.version: AgentVersion | None = None
        self._workdir: Path | None = None
        # The agent's own error texts repeat the authtoken (ERR_NGROK_105): never pass it on.
        self._redactor = Redactor([("NGROK_AUTHTOKEN", authtoken)])
        self._session = AgentSession(self._redactor.text)
        self.config = self._pyngrok_config(self.binary_path, None)
        self._public_url: str | None = None
        self._agent_identity: tuple[int, str] | None = None

    def _pyngrok_config(self, launcher: str, config_path: str | None) -> conf.PyngrokConfig:
        config = conf.PyngrokConfig(
            ngrok_path=launcher,
            config_path=config_path,
            startup_timeout=int(self.start_deadline_s) + 5,
            monitor_thread=True,  # keeps feeding the session's log lines to `log_event_callback`
            log_event_callback=self._session.on_log,
            start_new_session=True,  # its own process group: stop() ends everything it started
            config_version="3",
            request_timeout=MIN_REQUEST_TIMEOUT_S,
        )
        # pyngrok copies NGROK_AUTHTOKEN into `--authtoken` on the command line; the config file has it.
        config.auth_token = None
        config.api_key = None
        return config

    @property
    def ngrok_path(self) -> str:
        """The real agent binary (downloaded by pyngrok on first use)."""
        return self.binary_path

    @property
    def stderr_log(self) -> Path | None:
        """Where the agent's stderr goes instead of the developer's terminal (None before a start)."""
        return self._workdir / "agent-stderr.log" if self._workdir else None

    async def prepare(self, progress: TextIO) -> None:
        """Download the agent if missing, with its progress sent to `progress`, never to stdout."""
        if os.path.exists(self.ngrok_path):
            return
        if not self.authtoken:
            return
        progress.write(f"Downloading the ngrok agent to {self.ngrok_path} (first run only)...\n")
        progress.flush()

        def install() -> None:
            with contextlib.redirect_stdout(progress):
                installer.install_ngrok(self.ngrok_path, ngrok_version=self.config.ngrok_version)

        try:
            await asyncio.wait_for(asyncio.to_thread(install), DEFAULT_INSTALL_DEADLINE_S)
        except (TimeoutError, PyngrokNgrokInstallError, OSError, PyngrokError) as exc:
            raise TunnelError(
                f"could not download the ngrok agent: {exc or 'timed out'}",
                f"Offline or behind a proxy? Install ngrok yourself ({DOWNLOAD_URL}) "
                "and set PYNGROK_NGROK_PATH=/path/to/ngrok in .env.",
            ) from exc
        progress.write("ngrok agent installed.\n")
        progress.flush()

    def _open_workdir(self) -> None:
        """A fresh private directory: the agent config (token) and, on POSIX, the launcher script."""
        self._discard_workdir()
        workdir = make_workdir()
        self._workdir = workdir
        try:
            config_path = write_agent_config(workdir, self.authtoken or "")
            launcher = Path(self.binary_path)
            if os.name == "posix":
                # Only what the agent needs of our environment (never the App Secret or access token);
                # its stderr (an "ERROR: ..." banner) goes to a file we quote, never to our terminal.
                launcher = workdir / "ngrok"
                command = agent_env_launcher_line(os.environ, self.binary_path)
                stderr = shlex.quote(str(self.stderr_log))
                launcher.write_text(f'#!/bin/sh\n{command} "$@" 2>>{stderr}\n', encoding="utf-8")
                launcher.chmod(0o700)
        except OSError as exc:
            shutil.rmtree(workdir, ignore_errors=True)
            raise TunnelError(
                f"could not write the ngrok agent's files in {workdir.parent}: {exc.strerror or exc}",
                "Set TMPDIR to a writable directory of yours, then start again.",
            ) from None
        self.config = self._pyngrok_config(str(launcher), str(config_path))

    def _discard_workdir(self) -> None:
        """Delete the private directory (the token file): the agent using it is stopped."""
        if self._workdir is not None:
            shutil.rmtree(self._workdir, ignore_errors=True)

    def _running_agent(self) -> process.NgrokProcess | None:
        # pyngrok holds its process table lock while it waits for startup lines, so reading the
        # table directly is the only way to reach a hung agent and enforce our own deadline.
        return process._current_processes.get(self.config.ngrok_path)

    def _endpoint_options(self, local_port: int) -> dict[str, object]:
        """The endpoint we ask for: our receiver, no inspection copy at :4040, never pooled."""
        options: dict[str, object] = {
            "upstream": {"url": f"http://{upstream_address(self.upstream_host, local_port)}"},
            "inspect": False,
        }
        if self.domain:  # else the account's dev domain, the same across restarts
            options["url"] = f"https://{self.domain}"
        return options

    def _connect(self, local_port: int, began: float) -> str:
        ngrok.get_ngrok_process(self.config)  # starts the agent and waits for its session
        left = self.start_deadline_s - (time.monotonic() - began)
        self.config.request_timeout = max(MIN_REQUEST_TIMEOUT_S, left)
        options = self._endpoint_options(local_port)
        tunnel = ngrok.connect(proto="http", name=ENDPOINT_NAME, pyngrok_config=self.config, **options)
        url = (tunnel.public_url or "").rstrip("/")
        if not url:
            raise TunnelError("ngrok started but reported no public URL")
        if not url.startswith("https://"):
            raise TunnelError(
                f"the ngrok agent opened {url}, not an https:// URL (Meta only calls https callback URLs)",
                "The agent is misconfigured or not a genuine ngrok agent: check PYNGROK_NGROK_PATH "
                f"(`{self.binary_path} --version`).",
            )
        return url

    def _words(self, agent: process.NgrokProcess | None, error: PyngrokNgrokError | None = None) -> str:
        """Everything the agent said that explains a failure, redacted (read before its files go)."""
        startup_error = error.ngrok_error if error is not None else None
        logs = list(error.ngrok_logs) if error is not None and error.ngrok_logs else []
        if agent is not None:
            startup_error = startup_error or agent.startup_error
            logs = logs or list(agent.logs)
        stderr: list[str] = []
        if self.stderr_log is not None:
            with contextlib.suppress(OSError):
                stderr = tail_lines(self.stderr_log.read_text(encoding="utf-8", errors="replace"))
        return self._redactor.text(agent_words(startup_error, logs, stderr))

    async def _wait_for(self, connecting: asyncio.Future[str], began: float) -> str | None:
        """None once `connecting` is done; "deadline" or "session" when waiting longer is pointless."""
        while True:
            left = self.start_deadline_s - (time.monotonic() - began)
            if left <= 0:
                return "deadline"
            done, _ = await asyncio.wait({connecting}, timeout=min(left, 0.1))
            if done:
                return None
            view = self._session.view()
            if view.up or view.failing_since is None:
                continue
            # An ERR_NGROK code (authtoken, plan limits) will not go away by retrying; a network error might.
            if advice_for(view.reason)[0] or time.monotonic() - view.failing_since >= SESSION_GIVE_UP_S:
                return "session"

    def _stalled(self, why: str, words: str) -> TunnelError:
        if why == "session":
            return explain(words, self.binary_path, "the ngrok agent could not open its session with ngrok's servers")
        summary = f"the ngrok agent did not come up within {self.start_deadline_s:g} s"
        if not words:
            return TunnelError(
                f"{summary} and printed nothing",
                f"Check that PYNGROK_NGROK_PATH points to a working ngrok (`{self.binary_path} --version`) and "
                "that this machine can reach ngrok's servers.",
            )
        error = explain(words, self.binary_path, summary)
        if not error.advice:
            error.advice = "Check that this machine can reach ngrok's servers (connect.ngrok-agent.com:443)."
        return error

    async def start(self, local_port: int) -> str:
        """Start the agent and the endpoint within the deadline; raise TunnelError with the agent's words."""
        if not self.authtoken:
            raise TunnelError(
                "no ngrok authtoken: NGROK_AUTHTOKEN is not set", ADVICE["ERR_NGROK_4018"], "ERR_NGROK_4018"
            )
        if not os.path.exists(self.ngrok_path):
            raise TunnelError(
                f"the ngrok agent is not installed at {self.ngrok_path}",
                f"Install ngrok ({DOWNLOAD_URL}) and set PYNGROK_NGROK_PATH=/path/to/ngrok in .env.",
            )
        began = time.monotonic()
        probe_s = min(PROBE_TIMEOUT_S, self.start_deadline_s)
        env = agent_environment(os.environ)
        self.version = await asyncio.to_thread(vet_agent, self.binary_path, env, conf.DEFAULT_NGROK_PATH, probe_s)
        self._session = AgentSession(self._redactor.text)
        self._open_workdir()
        connecting = asyncio.ensure_future(asyncio.to_thread(self._connect, local_port, began))
        # If we are cancelled (Ctrl+C during a reconnect) the thread's outcome is still consumed.
        connecting.add_done_callback(lambda task: task.cancelled() or task.exception())
        try:
            stalled = await self._wait_for(connecting, began)
        except asyncio.CancelledError:
            await asyncio.to_thread(self._kill_agent)
            raise
        if stalled is not None:
            words = self._words(self._running_agent())  # before the kill: pyngrok forgets the process then
            await asyncio.to_thread(self._kill_agent)
            with contextlib.suppress(Exception):
                await connecting
            self._discard_workdir()
            raise self._stalled(stalled, words)
        try:
            self._public_url = connecting.result()
        except Exception as exc:
            words = self._words(self._running_agent(), exc if isinstance(exc, PyngrokNgrokError) else None)
            await asyncio.to_thread(self._kill_agent)
            self._discard_workdir()
            raise self._failure(exc, words) from None
        self._session.serving()
        return self._public_url

    def _failure(self, exc: Exception, words: str) -> TunnelError:
        """The TunnelError for whatever the start raised, quoting the agent."""
        if isinstance(exc, TunnelError):
            return exc
        if isinstance(exc, PyngrokNgrokHTTPError):
            return explain(self._redactor.text(_api_error_text(exc)), self.binary_path, "ngrok refused the endpoint")
        if isinstance(exc, PyngrokNgrokURLError):
            summary = f"the ngrok agent did not answer when asked for the endpoint ({exc.reason})"
            return explain(words, self.binary_path, summary)
        if isinstance(exc, PyngrokNgrokError):
            return explain(words or self._redactor.text(str(exc)), self.binary_path)
        if isinstance(exc, PyngrokError | OSError):
            return explain(
                " | ".join(filter(None, [self._redactor.text(str(exc)), words])), self.binary_path, "ngrok failed"
            )
        raise exc

    def health(self) -> TunnelHealth:
        """No network: the agent process, and its session as its own log lines tell it."""
        agent = self._running_agent()
        if agent is None or agent.proc.poll() is not None:
            code = agent.proc.returncode if agent is not None else None
            detail = "the ngrok agent is gone" if code is None else f"the ngrok agent exited (code {code})"
            return TunnelHealth(alive=False, public_url=self._public_url, detail=detail)
        view = self._session.view()
        if view.restarted:
            detail = "the ngrok agent restarted (a Restart from ngrok's dashboard?) and lost the endpoint"
            return TunnelHealth(alive=False, public_url=self._public_url, detail=detail)
        if not view.up:
            detail = view.reason or "the ngrok agent lost its session with ngrok's servers and is reconnecting"
            return TunnelHealth(alive=True, public_url=self._public_url, detail=detail, session_up=False)
        return TunnelHealth(alive=True, public_url=self._public_url)

    async def check(self) -> TunnelHealth:
        """`health()`, cross-checked with the agent API: does it still list our endpoint?"""
        health = self.health()
        agent = self._running_agent()
        if not health.alive or self._public_url is None or agent is None or not agent.api_url:
            return health
        try:
            listed = await asyncio.to_thread(self._listed_urls, agent.api_url)
        except (PyngrokError, OSError, ValueError, TypeError, AttributeError):
            return health  # the API did not answer this time: the log's view stands
        if self._public_url not in listed:
            detail = f"the ngrok agent no longer serves {self._public_url} (restarted?)"
            return TunnelHealth(alive=False, public_url=self._public_url, detail=detail)
        return health

    @staticmethod
    def _listed_urls(api_url: str) -> set[str]:
        data = ngrok.api_request(f"{api_url}/api/endpoints", method="GET", timeout=CHECK_TIMEOUT_S)
        endpoints = data.get("endpoints") or data.get("tunnels") or []
        return {str(e.get("url") or e.get("public_url") or "").rstrip("/") for e in endpoints if isinstance(e, dict)}

    def footprint(self) -> AgentFootprint | None:
        """The agent's pid and start time (a recycled pid is never taken for it) and its temp files."""
        if self._workdir is None or not self._workdir.exists():
            return None
        agent = self._running_agent()
        pid = agent.proc.pid if agent is not None and agent.proc.poll() is None else 0
        if pid and (self._agent_identity is None or self._agent_identity[0] != pid):
            self._agent_identity = (pid, process_identity(pid) or "")
        files = (self.config.config_path or "", self.config.ngrok_path, str(self.stderr_log))
        return AgentFootprint(
            pid=pid,
            identity=self._agent_identity[1] if pid and self._agent_identity else "",
            marker=str(self.config.config_path),
            workdir=str(self._workdir),
            files=tuple(path for path in files if path and Path(path).parent == self._workdir),
        )

    def _kill_agent(self) -> None:
        """Stop the agent's whole process group (a wrapper's grandchild too), then forget it in pyngrok."""
        agent = self._running_agent()
        if agent is not None:
            if os.name == "posix":
                stop_group(agent.proc.pid, STOP_GRACE_S, reap=agent.proc.poll)
            elif agent.proc.poll() is None:
                agent.proc.kill()
                agent.proc.wait(timeout=5)
        with contextlib.suppress(Exception):
            ngrok.kill(self.config)

    async def stop(self) -> None:
        """Stop the agent; no orphan process survives us, and the token file goes."""
        await asyncio.to_thread(self._kill_agent)
        self._public_url = None
        self._discard_workdir()
