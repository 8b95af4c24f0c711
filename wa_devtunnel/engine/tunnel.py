"""Tunnel providers: what makes the local receiver reachable by Meta over public HTTPS."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Protocol, TextIO


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


class TunnelProvider(Protocol):
    """The small surface every provider implements (ngrok, none, later others)."""

    name: str

    async def prepare(self, progress: TextIO) -> None:
        """Anything slow before the UI exists (e.g. download the agent), reporting to `progress`."""

    async def start(self, local_port: int) -> str:
        """Open the tunnel to `local_port`; return the public base URL (https://host)."""

    def health(self) -> TunnelHealth:
        """A cheap check the watcher calls periodically."""

    async def stop(self) -> None:
        """Close the tunnel and leave no process behind (idempotent)."""


class NoTunnel:
    """Local-only by choice: nothing to open, nothing to watch."""

    name = "none"

    async def prepare(self, progress: TextIO) -> None:
        """Nothing to prepare."""

    async def start(self, local_port: int) -> str:
        """There is no public URL."""
        return ""

    def health(self) -> TunnelHealth:
        """Always 'alive': there is nothing that can fail."""
        return TunnelHealth(alive=True, public_url=None)

    async def stop(self) -> None:
        """Nothing to stop."""
