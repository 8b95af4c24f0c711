"""ngrok through pyngrok, with a hard start deadline and the authtoken kept off the command line."""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import os
import re
import shlex
import shutil
import tempfile
from pathlib import Path
from typing import TextIO

from pyngrok import conf, installer, ngrok, process
from pyngrok.exception import (
    PyngrokError,
    PyngrokNgrokError,
    PyngrokNgrokHTTPError,
    PyngrokNgrokInstallError,
)

from wa_devtunnel.engine.processes import process_identity
from wa_devtunnel.engine.redaction import Redactor
from wa_devtunnel.engine.tunnel.agent_env import agent_env_launcher_line
from wa_devtunnel.engine.tunnel.provider import AGENT_WORKDIR_PREFIX, AgentFootprint, TunnelError, TunnelHealth

AUTHTOKEN_URL = "https://dashboard.ngrok.com/get-started/your-authtoken"
DOMAINS_URL = "https://dashboard.ngrok.com/domains"
DEFAULT_START_DEADLINE_S = 20.0
DEFAULT_INSTALL_DEADLINE_S = 120.0
_CODE = re.compile(r"ERR_NGROK_\d+")

_ADVICE: dict[str, str] = {
    "ERR_NGROK_4018": f"ngrok needs an authtoken: get one at {AUTHTOKEN_URL} and add "
    "NGROK_AUTHTOKEN=<token> to .env (or run with --tunnel none).",
    "ERR_NGROK_105": f"The authtoken is not valid: copy it again from {AUTHTOKEN_URL} into NGROK_AUTHTOKEN.",
    "ERR_NGROK_107": f"The authtoken was revoked or is wrong: copy a current one from {AUTHTOKEN_URL}.",
    "ERR_NGROK_108": "Your ngrok plan allows one agent session at a time: stop the other ngrok "
    "(another wa-devtunnel?), or end it at https://dashboard.ngrok.com/agents.",
    "ERR_NGROK_121": "The ngrok agent is too old for ngrok's service: run `ngrok update`, or set "
    "PYNGROK_NGROK_PATH to a current ngrok (https://ngrok.com/download).",
    "ERR_NGROK_120": "The ngrok agent version is no longer supported: run `ngrok update`.",
    "ERR_NGROK_334": "This domain is already online in another ngrok session (another wa-devtunnel?): stop it first.",
}
# pyngrok logs every agent line; without a handler Python would print its errors on our stderr.
logging.getLogger("pyngrok").addHandler(logging.NullHandler())
logging.getLogger("pyngrok").propagate = False

_DOMAIN_ADVICE = f"NGROK_DOMAIN must be a domain of your ngrok account: see {DOMAINS_URL}."


def explain_agent_error(message: str) -> TunnelError:
    """Turn the agent's own error text into a message with its code and what to do."""
    text = " ".join(message.replace("\\r", " ").replace("\\n", " ").split())
    match = _CODE.search(text)
    code = match.group(0) if match else ""
    advice = _ADVICE.get(code, "")
    if not advice and "domain" in text.lower():
        advice = _DOMAIN_ADVICE
    return TunnelError(f"ngrok refused to start: {text}", advice, code)


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
    """A 0600 agent config holding the authtoken, so `ps` never shows it on the command line."""
    path = directory / "ngrok.yml"
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w", encoding="utf-8") as handle:
        # A JSON string is a valid YAML scalar, whatever characters the token holds.
        handle.write(f'version: "3"\nagent:\n  authtoken: {json.dumps(authtoken)}\n')
    return path


class NgrokTunnel:
    """The `ngrok` provider: a pyngrok-managed agent exposing only the receiver's port."""

    name = "ngrok"

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
        self._workdir = Path(tempfile.mkdtemp(prefix=AGENT_WORKDIR_PREFIX))
        self.binary_path = ngrok_path or conf.DEFAULT_NGROK_PATH
        # The agent's own stderr (its "ERROR: ..." banner) must never reach our terminal or TUI.
        launcher = self._workdir / "ngrok" if os.name == "posix" else Path(self.binary_path)
        self.config = conf.PyngrokConfig(
            ngrok_path=str(launcher),
            config_path=str(self._workdir / "ngrok.yml"),
            startup_timeout=int(start_deadline_s) + 5,
            monitor_thread=True,
        )
        # pyngrok copies NGROK_AUTHTOKEN into `--authtoken` on the command line; the config file has it.
        self.config.auth_token = None
        self._public_url: str | None = None
        self._agent_identity: tuple[int, str] | None = None
        # The agent's own error texts repeat the authtoken (ERR_NGROK_105): never pass it on.
        self._redactor = Redactor([("NGROK_AUTHTOKEN", authtoken)])

    @property
    def ngrok_path(self) -> str:
        """The real agent binary (downloaded by pyngrok on first use)."""
        return self.binary_path

    @property
    def stderr_log(self) -> Path:
        """Where the agent's stderr goes instead of the developer's terminal."""
        return self._workdir / "agent-stderr.log"

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
                "Offline or behind a proxy? Install ngrok yourself (https://ngrok.com/download) "
                "and set PYNGROK_NGROK_PATH=/path/to/ngrok in .env.",
            ) from exc
        progress.write("ngrok agent installed.\n")
        progress.flush()

    def _write_config(self) -> None:
        """(Re)create the private config; stop() deletes it so the token does not linger on disk."""
        self._workdir.mkdir(mode=0o700, exist_ok=True)
        os.chmod(self._workdir, 0o700)
        write_agent_config(self._workdir, self.authtoken or "")
        launcher = Path(self.config.ngrok_path)
        if launcher != Path(self.binary_path):
            # Only what the agent needs of our environment (never the App Secret or access token).
            command = agent_env_launcher_line(os.environ, self.binary_path)
            launcher.write_text(
                f'#!/bin/sh\n{command} "$@" 2>>{shlex.quote(str(self.stderr_log))}\n', encoding="utf-8"
            )
            launcher.chmod(0o700)

    def _running_agent(self) -> process.NgrokProcess | None:
        # pyngrok holds its process table lock while it waits for startup lines, so reading the
        # table directly is the only way to reach a hung agent and enforce our own deadline.
        return process._current_processes.get(self.config.ngrok_path)

    def _connect(self, local_port: int) -> str:
        options: dict[str, object] = {}
        if self.domain:
            options["url"] = f"https://{self.domain}"
        tunnel = ngrok.connect(str(local_port), "http", pyngrok_config=self.config, **options)
        if not tunnel.public_url:
            raise TunnelError("ngrok started but reported no public URL")
        return tunnel.public_url.replace("http://", "https://", 1)

    async def start(self, local_port: int) -> str:
        """Start the agent and the endpoint within the deadline; raise TunnelError with advice."""
        if not self.authtoken:
            raise TunnelError(
                "no ngrok authtoken: NGROK_AUTHTOKEN is not set", _ADVICE["ERR_NGROK_4018"], "ERR_NGROK_4018"
            )
        if not os.path.exists(self.ngrok_path):
            raise TunnelError(
                f"the ngrok agent is not installed at {self.ngrok_path}",
                "Install ngrok (https://ngrok.com/download) and set PYNGROK_NGROK_PATH.",
            )
        self._write_config()
        connecting = asyncio.ensure_future(asyncio.to_thread(self._connect, local_port))
        # If we are cancelled (Ctrl+C during a reconnect) the thread's outcome is still consumed.
        connecting.add_done_callback(lambda task: task.cancelled() or task.exception())
        try:
            done, _ = await asyncio.wait({connecting}, timeout=self.start_deadline_s)
        except asyncio.CancelledError:
            self._kill_agent()
            raise
        if not done:
            self._kill_agent()
            with contextlib.suppress(Exception):
                await connecting
            raise TunnelError(
                f"the ngrok agent did not come up within {self.start_deadline_s:g} s",
                "It printed nothing usable. Check that PYNGROK_NGROK_PATH points to a working ngrok "
                "(`ngrok version`) and that this machine can reach ngrok's servers.",
            )
        try:
            self._public_url = connecting.result()
        except PyngrokNgrokHTTPError as exc:
            self._kill_agent()
            raise explain_agent_error(self._redactor.text(_api_error_text(exc))) from None
        except PyngrokNgrokError as exc:
            self._kill_agent()
            raise explain_agent_error(self._redactor.text(exc.ngrok_error or str(exc))) from None
        except PyngrokError as exc:
            self._kill_agent()
            raise TunnelError(f"ngrok failed: {self._redactor.text(str(exc))}") from None
        return self._public_url

    def health(self) -> TunnelHealth:
        """Alive while the agent process runs; the public URL it serves."""
        agent = self._running_agent()
        if agent is None or agent.proc.poll() is not None:
            code = agent.proc.returncode if agent is not None else None
            detail = "the ngrok agent is gone" if code is None else f"the ngrok agent exited (code {code})"
            return TunnelHealth(alive=False, public_url=self._public_url, detail=detail)
        return TunnelHealth(alive=True, public_url=self._public_url)

    def footprint(self) -> AgentFootprint | None:
        """The agent's pid and start time (a recycled pid is never taken for it) and its temp files."""
        if not self._workdir.exists():
            return None
        agent = self._running_agent()
        pid = agent.proc.pid if agent is not None and agent.proc.poll() is None else 0
        if pid and (self._agent_identity is None or self._agent_identity[0] != pid):
            self._agent_identity = (pid, process_identity(pid) or "")
        files = (self.config.config_path, self.config.ngrok_path, str(self.stderr_log))
        return AgentFootprint(
            pid=pid,
            identity=self._agent_identity[1] if pid and self._agent_identity else "",
            marker=str(self.config.config_path),
            workdir=str(self._workdir),
            files=tuple(path for path in files if Path(path).parent == self._workdir),
        )

    def _kill_agent(self) -> None:
        agent = self._running_agent()
        if agent is not None and agent.proc.poll() is None:
            agent.proc.kill()
            agent.proc.wait(timeout=5)
        with contextlib.suppress(Exception):
            ngrok.kill(self.config)

    async def stop(self) -> None:
        """Stop the agent; no orphan process survives us."""
        await asyncio.to_thread(self._kill_agent)
        self._public_url = None
        shutil.rmtree(self._workdir, ignore_errors=True)
