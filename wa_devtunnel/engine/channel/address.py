"""Where an engine listens for front ends: a Unix socket in a 0700 directory, plus a secret for the first line."""

from __future__ import annotations

import contextlib
import os
import secrets
import shutil
import tempfile
from dataclasses import dataclass
from pathlib import Path

# How a parent (the TUI) hands its engine child the address: never argv, which `ps` shows to everyone.
CHANNEL_ENV = "WA_DEVTUNNEL_ENGINE_CHANNEL"
SECRET_ENV = "WA_DEVTUNNEL_ENGINE_SECRET"
SOCKET_NAME = "engine.sock"
CHANNEL_DIR_PREFIX = "wa-devtunnel-engine-"


@dataclass(frozen=True, slots=True)
class ChannelAddress:
    """A socket path only this user can reach, and the secret a client must send first."""

    socket: Path
    secret: str

    @property
    def directory(self) -> Path:
        """The private directory the socket lives in."""
        return self.socket.parent


def private_address() -> ChannelAddress:
    """A new 0700 directory (mkdtemp) with the socket's path in it, and a fresh 256-bit secret."""
    directory = Path(tempfile.mkdtemp(prefix=CHANNEL_DIR_PREFIX))
    os.chmod(directory, 0o700)
    return ChannelAddress(directory / SOCKET_NAME, secrets.token_urlsafe(32))


def address_from_environment(environ: dict[str, str] | None = None) -> ChannelAddress | None:
    """The address a parent process chose for us, if it did."""
    env = os.environ if environ is None else environ
    socket, secret = env.get(CHANNEL_ENV), env.get(SECRET_ENV)
    if not socket or not secret:
        return None
    return ChannelAddress(Path(socket), secret)


def child_environment(address: ChannelAddress, base: dict[str, str] | None = None) -> dict[str, str]:
    """The environment an engine child gets: ours plus where to listen."""
    env = dict(os.environ if base is None else base)
    env[CHANNEL_ENV] = str(address.socket)
    env[SECRET_ENV] = address.secret
    return env


def remove_address(address: ChannelAddress) -> None:
    """The socket and its private directory, once nobody listens (only a directory we made: wa-devtunnel-*)."""
    with contextlib.suppress(OSError):
        address.socket.unlink()
    if address.directory.name.startswith(CHANNEL_DIR_PREFIX):
        shutil.rmtree(address.directory, ignore_errors=True)
