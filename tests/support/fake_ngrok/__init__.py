"""A fake ngrok agent executable for tests: real pyngrok drives it exactly as it drives ngrok.

Load the fixtures with ``pytest_plugins = ("tests.support.fake_ngrok.plugin",)`` (root conftest, or the
test module):

    async def test_tunnel(fake_ngrok: FakeNgrok) -> None:
        tunnel = await pyngrok.aio.connect(str(port), "http",
                                           pyngrok_config=fake_ngrok.pyngrok_config())
        async with fake_ngrok.client_session() as session:
            await session.post(tunnel.public_url + "/webhook", data=b"...")

    def test_refused(make_fake_ngrok: MakeFakeNgrok) -> None:
        fake = make_fake_ngrok(mode="session-limit")

    def test_dropped(make_fake_ngrok: MakeFakeNgrok) -> None:
        fake = make_fake_ngrok(mode="drop-after=0.5,recover-after=1", env={"FAKE_NGROK_RECONNECT_S": "0.2"})

Each fake lives in its own temp directory: a ``ngrok`` shell wrapper (pass it as ``ngrok_path``),
an ``ngrok.yml`` holding the authtoken (never argv), a throwaway TLS certificate signed by a
trustme CA, ``argv.jsonl`` recording every start and ``api.jsonl`` every API call that is not a GET
(``api_requests()``). All fakes of one test share a state directory, as agents of one ngrok account
share its edge: a second endpoint on a URL already online is ERR_NGROK_334 (``online_urls()``).
Public URLs are ``https://localhost:<port>`` by default (the engine's self-test resolves names through
real DNS); ``public_host=None`` shows the endpoint's domain instead (the dev domain, ``dev_domain``,
when no URL is asked for), reachable through ``client_session()``. ``drop_session()``,
``recover_session()`` and ``restart_in_place()`` act on the live agents at once (the modes do it on a
timer); ``agent_log.AgentLog`` as ``log_event_callback`` collects what pyngrok parsed of the agent's log.
The agents outlive their parent as the real one does; teardown kills every agent started and its
process group.
"""

from __future__ import annotations

import contextlib
import json
import os
import shlex
import signal
import socket
import ssl
import sys
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import aiohttp
import trustme
import yaml
from aiohttp.abc import AbstractResolver, ResolveResult
from pyngrok import ngrok
from pyngrok.conf import PyngrokConfig

from tests.support.fake_ngrok._ngrok_errors import dev_domain_for

AGENT_SCRIPT = Path(__file__).resolve().with_name("fake_ngrok.py")
DEFAULT_AUTHTOKEN = "2fakeAuthtoken0123456789_abcdefghijklmnopqrstuvwxyz"
CERT_NAMES = (
    "localhost",
    "127.0.0.1",
    "*.ngrok-free.app",
    "*.ngrok-free.dev",
    "*.ngrok.app",
    "*.ngrok.dev",
    "*.ngrok.io",
)
_UNSET: Any = object()


class LoopbackResolver(AbstractResolver):
    """Resolves every host to 127.0.0.1, so a fake static domain reaches the fake agent."""

    async def resolve(
        self, host: str, port: int = 0, family: socket.AddressFamily = socket.AF_INET
    ) -> list[ResolveResult]:
        return [
            ResolveResult(
                hostname=host,
                host="127.0.0.1",
                port=port,
                family=socket.AF_INET,
                proto=0,
                flags=socket.AI_NUMERICHOST,
            )
        ]

    async def close(self) -> None:
        return None


@dataclass
class FakeNgrok:
    """One fake agent installation; ``ngrok_path`` and ``config_path`` go into PyngrokConfig."""

    root: Path
    ca: trustme.CA
    mode: str = "ok"
    authtoken: str | None = DEFAULT_AUTHTOKEN
    web_addr: str = "127.0.0.1:0"
    extra_env: dict[str, str] = field(default_factory=dict)
    extra_config: dict[str, Any] = field(default_factory=dict)
    state_dir: Path | None = None
    dev_domain: str = ""
    public_host: str | None = "localhost"

    def __post_init__(self) -> None:
        self.dev_domain = self.dev_domain or dev_domain_for(self.authtoken)
        self.state_dir = self.state_dir or self.root / "state"

    @property
    def ngrok_path(self) -> Path:
        return self.root / "ngrok"

    @property
    def config_path(self) -> Path:
        return self.root / "ngrok.yml"

    @property
    def argv_log(self) -> Path:
        return self.root / "argv.jsonl"

    @property
    def ca_path(self) -> Path:
        return self.root / "ca.pem"

    @property
    def api_log(self) -> Path:
        return self.root / "api.jsonl"

    def install(self, names: tuple[str, ...]) -> None:
        self.root.mkdir(parents=True, exist_ok=True)
        leaf = self.ca.issue_cert(*names)
        _write_private(self.root / "cert.pem", b"".join(b.bytes() for b in leaf.cert_chain_pems))
        _write_private(self.root / "key.pem", leaf.private_key_pem.bytes())
        self.ca.cert_pem.write_to_path(str(self.ca_path))
        self.write_config()
        self.set_mode(self.mode)

    def set_mode(self, mode: str, **extra_env: str) -> None:
        """Rewrite the wrapper: later starts of the agent use this FAKE_NGROK_MODE."""
        self.mode = mode
        self.extra_env.update(extra_env)
        env = {
            "FAKE_NGROK_MODE": mode,
            "FAKE_NGROK_CERT": str(self.root / "cert.pem"),
            "FAKE_NGROK_KEY": str(self.root / "key.pem"),
            "FAKE_NGROK_ARGV_LOG": str(self.argv_log),
            "FAKE_NGROK_API_LOG": str(self.api_log),
            "FAKE_NGROK_STATE_DIR": str(self.state_dir),
            "FAKE_NGROK_DEV_DOMAIN": self.dev_domain,
            **({"FAKE_NGROK_PUBLIC_HOST": self.public_host} if self.public_host else {}),
            **self.extra_env,
        }
        lines = ["#!/bin/sh", *(f"export {k}={shlex.quote(v)}" for k, v in env.items())]
        lines.append(f'exec {shlex.quote(sys.executable)} -I {shlex.quote(str(AGENT_SCRIPT))} "$@"')
        self.ngrok_path.write_text("\n".join(lines) + "\n")
        self.ngrok_path.chmod(0o700)

    def write_config(self, **agent: Any) -> None:
        """ngrok.yml (v3, mode 0600) holding the authtoken; ``agent`` adds or overrides fields."""
        section: dict[str, Any] = {"web_addr": self.web_addr}
        if self.authtoken is not None:
            section["authtoken"] = self.authtoken
        section.update(agent)
        document = {"version": "3", "agent": section, **self.extra_config}
        _write_private(self.config_path, yaml.safe_dump(document).encode())

    def pyngrok_config(self, **overrides: Any) -> PyngrokConfig:
        """A PyngrokConfig for this fake; auth_token stays None so nothing secret goes on argv."""
        options: dict[str, Any] = {
            "ngrok_path": str(self.ngrok_path),
            "config_path": str(self.config_path),
            "startup_timeout": 5,
            **overrides,
        }
        config = PyngrokConfig(**options)
        config.auth_token = overrides.get("auth_token")
        return config

    def ssl_context(self) -> ssl.SSLContext:
        context = ssl.create_default_context()
        self.ca.configure_trust(context)
        return context

    def client_session(self, **kwargs: Any) -> aiohttp.ClientSession:
        """An aiohttp session that trusts the fake's CA and resolves every host to 127.0.0.1."""
        connector = aiohttp.TCPConnector(ssl=self.ssl_context(), resolver=LoopbackResolver())
        return aiohttp.ClientSession(connector=connector, **kwargs)

    def invocations(self) -> list[list[str]]:
        """The argv (without argv[0]) of every run of the fake so far (an in-place restart is not a new run)."""
        return [entry["argv"] for entry in self._log_entries() if not entry.get("restarts")]

    def restarts(self) -> list[int]:
        """The pid of every in-place restart so far (``restart-after``): the same pid as the run it replaced."""
        return [entry["pid"] for entry in self._log_entries() if entry.get("restarts")]

    def agent_pids(self) -> list[int]:
        """The pids of this fake's agents still running."""
        return sorted({entry["pid"] for entry in self._log_entries() if _is_fake_agent(entry["pid"])})

    def api_requests(self, path: str | None = None) -> list[dict[str, Any]]:
        """Every API call but GETs, as {"pid", "method", "path", "body", "status"}; ``path`` filters by prefix."""
        if not self.api_log.exists():
            return []
        entries = [json.loads(line) for line in self.api_log.read_text().splitlines() if line]
        return [entry for entry in entries if path is None or entry["path"].startswith(path)]

    def endpoint_bodies(self) -> list[dict[str, Any]]:
        """The body of every endpoint or tunnel creation sent to the agent API (POST, PUT), in order."""
        created = [e for e in self.api_requests("/api/") if e["method"] in ("POST", "PUT")]
        return [e["body"] for e in created if e["path"].startswith(("/api/endpoints", "/api/tunnels"))]

    def online_urls(self) -> dict[str, int]:
        """Endpoint URL (``https://<domain>``) -> pid of the fake agent holding it on the shared edge."""
        path = (self.state_dir or self.root) / "edge.json"
        if not path.exists():
            return {}
        online = json.loads(path.read_text())["online"]
        return {url: holder["pid"] for url, holder in online.items() if _is_fake_agent(holder["pid"])}

    def _log_entries(self) -> list[dict[str, Any]]:
        if not self.argv_log.exists():
            return []
        return [json.loads(line) for line in self.argv_log.read_text().splitlines() if line]

    @property
    def env_log(self) -> Path:
        return self.root / "env.jsonl"

    def record_environments(self) -> None:
        """From now on every run of the fake logs the environment it was started with."""
        self.set_mode(self.mode, FAKE_NGROK_ENV_LOG=str(self.env_log))

    def environments(self) -> list[dict[str, str]]:
        """The environment of every run since `record_environments()`."""
        if not self.env_log.exists():
            return []
        return [json.loads(line)["env"] for line in self.env_log.read_text().splitlines() if line]

    def drop_session(self) -> None:
        """Drop the session of every live agent now (SIGUSR1), as ``drop-after`` does."""
        self._signal(signal.SIGUSR1)

    def recover_session(self) -> None:
        """Bring a dropped session back now (SIGUSR2), as ``recover-after`` does."""
        self._signal(signal.SIGUSR2)

    def restart_in_place(self) -> None:
        """A dashboard "Restart" now (SIGHUP): each live agent re-execs itself, same pid, no endpoints."""
        self._signal(signal.SIGHUP)

    def _signal(self, signum: int) -> None:
        for pid in self.agent_pids():
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signum)

    def outlive_parent(self) -> None:
        """Survive a killed wa-devtunnel (the default now, as the real agent) but exit with this test process."""
        self.set_mode(self.mode, FAKE_NGROK_WATCH_PID=str(os.getpid()))

    def kill(self) -> None:
        """SIGKILL every live run of this fake (and its process group, if it leads its own), then clear pyngrok's state.

        Killing first matters: a pyngrok start blocked on a silent agent holds pyngrok's process
        lock, so ``ngrok.kill`` alone would wait forever.
        """
        for pid in self.agent_pids():
            kill_agent(pid)
        ngrok.kill(self.pyngrok_config())


MakeFakeNgrok = Callable[..., FakeNgrok]


def _write_private(path: Path, data: bytes) -> None:
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "wb") as handle:
        handle.write(data)


def kill_agent(pid: int) -> None:
    """SIGKILL one agent; when it leads its own process group (never ours), the whole group."""
    with contextlib.suppress(ProcessLookupError):
        group = os.getpgid(pid)
        if group == pid and group != os.getpgrp():
            os.killpg(group, signal.SIGKILL)
        else:
            os.kill(pid, signal.SIGKILL)


def _is_fake_agent(pid: int) -> bool:
    """True only for a live fake agent process (guards against pid reuse before killing)."""
    cmdline = Path(f"/proc/{pid}/cmdline")
    try:
        return str(AGENT_SCRIPT).encode() in cmdline.read_bytes()
    except OSError:
        return False


def pid_alive(pid: int) -> bool:
    """Whether a process exists and is not a zombie."""
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    status = Path(f"/proc/{pid}/stat")
    with contextlib.suppress(OSError):
        return status.read_text().rsplit(")", 1)[1].split()[0] != "Z"
    return True
