"""A Cloudflare quick tunnel (trycloudflare.com, no account) through an installed `cloudflared`: when ngrok can't.

`cloudflared tunnel --url http://<receiver>` asks api.trycloudflare.com for a random hostname, prints it
in a box, then registers one connection to Cloudflare's edge. We run it in its own process group with
only the environment it needs, follow its log (cloudflared_log) for the URL and the connection's state,
cross-check its metrics server's /ready, and stop the whole group. Its private config file keeps a
developer's ~/.cloudflared/config.yml (a named tunnel's ingress rules would answer every request
with their catch-all 404) out of the quick tunnel. Quick tunnels have no uptime guarantee, a new URL
on every start and a cap of 200 requests in flight: for development only, which is what this is.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import shutil
import subprocess
import tempfile
import threading
from pathlib import Path
from typing import TextIO

from wa_devtunnel.engine.http_client import REQUEST_ERRORS, client_session
from wa_devtunnel.engine.processes import process_identity
from wa_devtunnel.engine.tunnel.agent_env import agent_environment
from wa_devtunnel.engine.tunnel.agent_group import stop_group
from wa_devtunnel.engine.tunnel.cloudflared_log import INSTALL_URL, CloudflaredLog, advice_for
from wa_devtunnel.engine.tunnel.provider import (
    AGENT_WORKDIR_PREFIX,
    AgentFootprint,
    TunnelError,
    TunnelHealth,
    upstream_address,
)

DEFAULT_START_DEADLINE_S = 20.0
STOP_GRACE_S = 3.0
READY_TIMEOUT_S = 2.0
POLL_S = 0.05
MAX_LINE_BYTES = 8192
CONFIG_NAME = "cloudflared.yml"
# Not empty (cloudflared logs an error for an empty file); no `tunnel:` and no ingress rules.
ISOLATED_CONFIG = "# wa-devtunnel's quick tunnel: no named tunnel, no ingress rules\nno-autoupdate: true\n"
INSTALL_ADVICE = (
    f"Install cloudflared ({INSTALL_URL}; e.g. `brew install cloudflared`), or set "
    "CLOUDFLARED_PATH=/path/to/cloudflared in .env, or use --tunnel ngrok."
)


def find_cloudflared(configured: str | None, search_path: str | None = None) -> str:
    """The cloudflared to run: CLOUDFLARED_PATH if set, else the one on PATH; TunnelError with advice if none."""
    if configured:
        path = os.path.expanduser(configured)
        if os.sep not in path:  # a bare name ("cloudflared-2025"): looked up on PATH, as a shell would
            path = shutil.which(path, path=search_path) or path
        if not os.path.isfile(path):
            raise TunnelError(f"CLOUDFLARED_PATH={configured} does not exist", INSTALL_ADVICE)
        if not os.access(path, os.X_OK):
            raise TunnelError(
                f"CLOUDFLARED_PATH={configured} is not executable", f"chmod +x {path}, or {INSTALL_ADVICE}"
            )
        return path
    found = shutil.which("cloudflared", path=search_path)
    if found is None:
        raise TunnelError("cloudflared is not installed (not found on PATH)", INSTALL_ADVICE)
    return found


class CloudflaredTunnel:
    """The `cloudflared` provider: a quick tunnel to the receiver's port, with no account."""

    name = "cloudflared"
    # "it may take some time to be reachable": a new *.trycloudflare.com name needs a few seconds of DNS.
    settle_s = 20.0

    def __init__(
        self,
        cloudflared_path: str | None,
        start_deadline_s: float = DEFAULT_START_DEADLINE_S,
        upstream_host: str = "127.0.0.1",
    ) -> None:
        self.cloudflared_path = cloudflared_path
        self.start_deadline_s = start_deadline_s
        self.upstream_host = upstream_host
        self._workdir: Path | None = None
        self._process: subprocess.Popen[bytes] | None = None
        self._reader: threading.Thread | None = None
        self._lock = threading.Lock()
        self._log = CloudflaredLog()
        self._public_url: str | None = None
        self._identity: tuple[int, str] | None = None

    @property
    def config_path(self) -> Path | None:
        """The private config on cloudflared's command line (also what marks the process as ours)."""
        return self._workdir / CONFIG_NAME if self._workdir is not None else None

    async def prepare(self, progress: TextIO) -> None:
        """Nothing to download (cloudflared is installed by the developer): say now if it is missing."""
        find_cloudflared(self.cloudflared_path)

    async def start(self, local_port: int) -> str:
        """Start cloudflared; return the https://*.trycloudflare.com URL once a connection to the edge is up."""
        binary = find_cloudflared(self.cloudflared_path)
        await self.stop()
        try:
            workdir = Path(tempfile.mkdtemp(prefix=AGENT_WORKDIR_PREFIX))
            self._workdir = workdir
            config = workdir / CONFIG_NAME
            config.write_text(ISOLATED_CONFIG, encoding="utf-8")
        except OSError as exc:
            raise TunnelError(
                f"cannot write cloudflared's private config in {tempfile.gettempdir()}: {exc.strerror or exc}",
                "Point TMPDIR at a writable directory.",
            ) from None
        upstream = f"http://{upstream_address(self.upstream_host, local_port)}"
        argv = [binary, "tunnel", "--no-autoupdate", "--config", str(config), "--metrics", "127.0.0.1:0"]
        argv += ["--url", upstream]
        log = CloudflaredLog()
        self._log = log
        try:
            process = subprocess.Popen(
                argv,
                stdin=subprocess.DEVNULL,
                stdout=subprocess.PIPE,
                stderr=subprocess.STDOUT,
                # Only what a Go program dialing Cloudflare needs: never our secrets, nor a TUNNEL_* setting.
                env=agent_environment(os.environ),
                cwd=workdir,
                start_new_session=True,  # its own group: stop() ends everything it started
            )
        except OSError as exc:
            self._remove_workdir()
            raise TunnelError(f"cannot run {binary}: {exc.strerror or exc}", INSTALL_ADVICE) from None
        self._process = process
        self._reader = threading.Thread(target=self._read, args=(process, log), name="cloudflared-log", daemon=True)
        self._reader.start()
        try:
            self._public_url = await self._until_connected(process, log)
        except BaseException:  # a refusal, our deadline, or Ctrl+C: leave nothing behind
            await self.stop()
            raise
        return self._public_url

    def _read(self, process: subprocess.Popen[bytes], log: CloudflaredLog) -> None:
        """cloudflared logs to stderr; a pipe nobody drains would block it, so this reads until it ends."""
        assert process.stdout is not None
        for raw in iter(lambda: process.stdout.readline(MAX_LINE_BYTES), b""):  # type: ignore[union-attr]
            with self._lock:
                log.feed(raw.decode("utf-8", errors="replace"))

    async def _until_connected(self, process: subprocess.Popen[bytes], log: CloudflaredLog) -> str:
        loop = asyncio.get_running_loop()
        deadline = loop.time() + self.start_deadline_s
        while True:
            with self._lock:
                url, connected = log.url, log.session_up
            if url and connected:
                return url
            if process.poll() is not None:
                if self._reader is not None:
                    await asyncio.to_thread(self._reader.join, 1.0)  # its last words
                raise self._exited_error(process.returncode, log)
            if loop.time() >= deadline:
                raise self._deadline_error(log)
            await asyncio.sleep(POLL_S)

    def _exited_error(self, code: int, log: CloudflaredLog) -> TunnelError:
        with self._lock:
            reason, words = log.reason(), log.words()
        how = f"was killed (signal {-code})" if code < 0 else f"exited (code {code})"
        summary = f"cloudflared {how} before the tunnel was up" + (f": {reason}" if reason else "")
        return TunnelError(summary, advice_for(words) or "Run the same cloudflared by hand to see why.")

    def _deadline_error(self, log: CloudflaredLog) -> TunnelError:
        with self._lock:
            url, reason, problems = log.url, log.reason(), log.words()
        waited = f"{self.start_deadline_s:g} s"
        if url is None:
            summary = f"cloudflared printed no quick tunnel URL within {waited}" + (
                f"; its last line: {reason}" if reason else ""
            )
            advice = advice_for(problems) or advice_for("failed to request quick Tunnel")
        else:
            summary = f"cloudflared got {url} but no connection to Cloudflare's edge came up within {waited}" + (
                f": {reason}" if reason else ""
            )
            advice = advice_for(problems) or advice_for("dial edge")
        return TunnelError(summary, advice)

    def health(self) -> TunnelHealth:
        """From the process and its log only: gone, reconnecting by itself (session_up=False), or up."""
        process = self._process
        with self._lock:
            log = self._log
            gone, down, session_up, reason = log.gone_reason, log.down_reason, log.session_up, log.reason()
        if process is None:
            return TunnelHealth(alive=False, public_url=self._public_url, detail="cloudflared is not running")
        code = process.poll()
        if code is not None:
            how = f"was killed (signal {-code})" if code < 0 else f"exited (code {code})"
            detail = f"cloudflared {how}" + (f": {reason}" if reason else "")
            return TunnelHealth(alive=False, public_url=self._public_url, detail=detail)
        if gone:
            detail = f"Cloudflare no longer knows this quick tunnel ({gone}): starting a new one (new URL)"
            return TunnelHealth(alive=False, public_url=self._public_url, detail=detail)
        if not session_up:
            detail = "cloudflared lost its connection to Cloudflare and is reconnecting" + (f": {down}" if down else "")
            return TunnelHealth(alive=True, public_url=self._public_url, detail=detail, session_up=False)
        return TunnelHealth(alive=True, public_url=self._public_url)

    async def check(self) -> TunnelHealth:
        """health(), cross-checked with cloudflared's metrics server: /ready is 200 only with an edge connection."""
        health = self.health()
        with self._lock:
            metrics = self._log.metrics
        if not health.alive or metrics is None:
            return health
        try:
            async with client_session(READY_TIMEOUT_S) as session, session.get(f"http://{metrics}/ready") as answer:
                status, body = answer.status, await answer.content.read(4096)
        except REQUEST_ERRORS:
            return health  # no answer from the metrics server: the process and its log stand
        if status == 200:
            return TunnelHealth(alive=True, public_url=self._public_url)
        try:
            ready = json.loads(body).get("readyConnections", 0)
        except (ValueError, AttributeError):
            ready = "?"
        if health.session_up:
            detail = f"cloudflared has no connection to Cloudflare's edge (/ready: HTTP {status}, {ready} ready)"
            return TunnelHealth(alive=True, public_url=self._public_url, detail=detail, session_up=False)
        return health

    def footprint(self) -> AgentFootprint | None:
        """cloudflared's pid and start time (a recycled pid is never taken for it) and its private directory."""
        config = self.config_path
        if config is None or self._workdir is None or not self._workdir.exists():
            return None
        process = self._process
        pid = process.pid if process is not None and process.poll() is None else 0
        if pid and (self._identity is None or self._identity[0] != pid):
            self._identity = (pid, process_identity(pid) or "")
        identity = self._identity[1] if pid and self._identity else ""
        return AgentFootprint(
            pid=pid, identity=identity, marker=str(config), workdir=str(self._workdir), files=(str(config),)
        )

    def _terminate(self) -> None:
        """SIGTERM to the whole group, SIGKILL to whatever is left after a grace period."""
        process, reader = self._process, self._reader
        if process is None:
            return
        stop_group(process.pid, STOP_GRACE_S, reap=process.poll)  # started with start_new_session: pid == pgid
        with contextlib.suppress(subprocess.TimeoutExpired):
            process.wait(STOP_GRACE_S)
        if reader is not None:
            reader.join(STOP_GRACE_S)
        if process.stdout is not None:
            process.stdout.close()
        self._process, self._reader = None, None

    def _remove_workdir(self) -> None:
        if self._workdir is not None:
            shutil.rmtree(self._workdir, ignore_errors=True)
            self._workdir = None

    async def stop(self) -> None:
        """Stop cloudflared and everything in its group; delete its directory (idempotent)."""
        await asyncio.to_thread(self._terminate)
        self._public_url = None
        self._remove_workdir()
