"""Tunnel providers: what makes the local receiver reachable by Meta over public HTTPS."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Protocol, TextIO

# Every agent's private temp directory starts with this: cleanup after a crash deletes nothing else.
AGENT_WORKDIR_PREFIX = "wa-devtunnel-agent-"
# What versions before cloudflared named them: a crash of such a version is still cleaned up.
LEGACY_AGENT_WORKDIR_PREFIX = "wa-devtunnel-ngrok-"


def upstream_address(bind_host: str, port: int) -> str:
    """Where a tunnel agent on this machine reaches the receiver: the bound address, loopback for a wildcard."""
    host = bind_host.strip("[]") or "localhost"
    if host in ("0.0.0.0", "::", "*"):
        host = "localhost"
    return f"[{host}]:{port}" if ":" in host else f"{host}:{port}"


class TunnelError(Exception):
    """A tunnel could not start or stay up; `advice` tells the developer what to do."""

    def __init__(self, summary: str, advice: str = "", code: str = "") -> None:
        super().__init__(summary)
        self.summary = summary
        self.advice = advice
        self.code = code

    def __str__(self) -> str:
        text = f"{self.summary} ({self.code})" if self.code and self.code not in self.summary else self.summary
        return f"{text}\n  {self.advice}" if self.advice else text


@dataclass(frozen=True, slots=True)
class TunnelHealth:
    """Whether the tunnel still carries traffic, and to which public URL."""

    alive: bool
    public_url: str | None
    detail: str = ""
    # False: the agent runs but its session with the edge is down and it is reconnecting by itself;
    # `detail` holds the agent's own reason. The service shows TUNNEL DOWN and does not restart it.
    session_up: bool = True


@dataclass(frozen=True, slots=True)
class AgentFootprint:
    """What a running tunnel agent leaves on this machine, so a start after a crash can clean it up.

    `identity` (process start time) and `marker` (a unique path on its command line) make sure a
    recycled pid is never mistaken for the agent; `files` are the temp files holding the authtoken.
    """

    pid: int
    identity: str
    marker: str
    workdir: str
    files: tuple[str, ...] = ()


class TunnelProvider(Protocol):
    """The small surface every provider implements (ngrok, cloudflared, none)."""

    name: str
    # How long a new public URL may take to answer (DNS of a fresh hostname): the self-test retries that long.
    settle_s: float

    async def prepare(self, progress: TextIO) -> None:
        """Anything slow before the UI exists (e.g. download the agent), reporting to `progress`."""

    async def start(self, local_port: int) -> str:
        """Open the tunnel to `local_port`; return the public base URL (https://host)."""

    def health(self) -> TunnelHealth:
        """A cheap check the watcher calls every second: no network, only what the agent told us."""

    async def check(self) -> TunnelHealth:
        """A slower cross-check (e.g. the agent API still lists our endpoint), called every ~10 s."""

    async def stop(self) -> None:
        """Close the tunnel and leave no process behind (idempotent)."""

    def footprint(self) -> AgentFootprint | None:
        """The agent process and temp files to clean up if we are killed (None: nothing left)."""


class NoTunnel:
    """Local-only by choice: nothing to open, nothing to watch."""

    name = "none"
    settle_s = 0.0

    async def prepare(self, progress: TextIO) -> None:
        """Nothing to prepare."""

    async def start(self, local_port: int) -> str:
        """There is no public URL."""
        return ""

    def health(self) -> TunnelHealth:
        """Always 'alive': there is nothing that can fail."""
        return TunnelHealth(alive=True, public_url=None)

    async def check(self) -> TunnelHealth:
        """Nothing to cross-check: the same as `health()`."""
        return self.health()

    async def stop(self) -> None:
        """Nothing to stop."""

    def footprint(self) -> AgentFootprint | None:
        """No agent, no files."""
        return None
