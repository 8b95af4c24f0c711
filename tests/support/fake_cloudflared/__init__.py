"""A fake `cloudflared` executable for tests: the real CloudflaredTunnel runs it exactly as it runs cloudflared.

Load the fixtures with ``from tests.support.fake_cloudflared.plugin import *`` in a test module (or
list ``tests.support.fake_cloudflared.plugin`` in the root conftest's ``pytest_plugins``):

    async def test_tunnel(fake_cloudflared: FakeCloudflared) -> None:
        tunnel = CloudflaredTunnel(str(fake_cloudflared.path))
        url = await tunnel.start(port)
        async with fake_cloudflared.client_session() as session:
            await session.post(url + "/webhook", data=b"...")

Each fake lives in its own temp directory: a ``cloudflared`` shell wrapper (the venv's python runs
fake_cloudflared.py), a throwaway ``*.trycloudflare.com`` certificate signed by a trustme CA, and
``argv.jsonl`` recording every invocation. Teardown kills every run still alive.
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
from aiohttp.abc import AbstractResolver, ResolveResult
from aiohttp.resolver import DefaultResolver

SCRIPT = Path(__file__).resolve().with_name("fake_cloudflared.py")
CERT_NAMES = ("*.trycloudflare.com", "localhost", "127.0.0.1")
QUICK_DOMAIN = ".trycloudflare.com"


def _loopback(host: str, port: int) -> list[ResolveResult]:
    return [
        ResolveResult(
            hostname=host, host="127.0.0.1", port=port, family=socket.AF_INET, proto=0, flags=socket.AI_NUMERICHOST
        )
    ]


class TryCloudflareResolver(AbstractResolver):
    """*.trycloudflare.com resolves to 127.0.0.1 (where the fake listens); every other name as usual."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        self._system = DefaultResolver(*args, **kwargs)

    async def resolve(
        self, host: str, port: int = 0, family: socket.AddressFamily = socket.AF_INET
    ) -> list[ResolveResult]:
        if host.endswith(QUICK_DOMAIN):
            return _loopback(host, port)
        return await self._system.resolve(host, port, family)

    async def close(self) -> None:
        await self._system.close()


@dataclass
class FakeCloudflared:
    """One fake installation; pass ``path`` as CLOUDFLARED_PATH."""

    root: Path
    ca: trustme.CA
    mode: str = "ok"
    extra_env: dict[str, str] = field(default_factory=dict)

    @property
    def path(self) -> Path:
        return self.root / "cloudflared"

    @property
    def argv_log(self) -> Path:
        return self.root / "argv.jsonl"

    @property
    def env_log(self) -> Path:
        return self.root / "env.jsonl"

    def install(self) -> None:
        self.root.mkdir(parents=True, exist_ok=True)
        leaf = self.ca.issue_cert(*CERT_NAMES)
        _write_private(self.root / "cert.pem", b"".join(blob.bytes() for blob in leaf.cert_chain_pems))
        _write_private(self.root / "key.pem", leaf.private_key_pem.bytes())
        self.set_mode(self.mode)

    def set_mode(self, mode: str, **extra_env: str) -> None:
        """Rewrite the wrapper: later runs use this FAKE_CLOUDFLARED_MODE."""
        self.mode = mode
        self.extra_env.update(extra_env)
        env = {
            "FAKE_CLOUDFLARED_MODE": mode,
            "FAKE_CLOUDFLARED_CERT": str(self.root / "cert.pem"),
            "FAKE_CLOUDFLARED_KEY": str(self.root / "key.pem"),
            "FAKE_CLOUDFLARED_ARGV_LOG": str(self.argv_log),
            "FAKE_CLOUDFLARED_ENV_LOG": str(self.env_log),
            **self.extra_env,
        }
        lines = ["#!/bin/sh", *(f"export {key}={shlex.quote(value)}" for key, value in env.items())]
        lines.append(f'exec {shlex.quote(sys.executable)} -I {shlex.quote(str(SCRIPT))} "$@"')
        self.path.write_text("\n".join(lines) + "\n")
        self.path.chmod(0o700)

    def ssl_context(self) -> ssl.SSLContext:
        context = ssl.create_default_context()
        self.ca.configure_trust(context)
        return context

    def client_session(self, **kwargs: Any) -> aiohttp.ClientSession:
        """An aiohttp session that trusts the fake's CA and finds *.trycloudflare.com on 127.0.0.1."""
        connector = aiohttp.TCPConnector(ssl=self.ssl_context(), resolver=TryCloudflareResolver())
        return aiohttp.ClientSession(connector=connector, **kwargs)

    def _entries(self, log: Path) -> list[dict[str, Any]]:
        if not log.exists():
            return []
        return [json.loads(line) for line in log.read_text().splitlines() if line]

    def invocations(self) -> list[list[str]]:
        """The argv (without argv[0]) of every run so far."""
        return [entry["argv"] for entry in self._entries(self.argv_log)]

    def environments(self) -> list[dict[str, str]]:
        """The environment every run was started with (the wrapper's FAKE_* variables included)."""
        return [entry["env"] for entry in self._entries(self.env_log)]

    def pids(self) -> list[int]:
        """The pid of every `tunnel` run so far."""
        return [entry["pid"] for entry in self._entries(self.argv_log) if "tunnel" in entry["argv"]]

    def live_pids(self) -> list[int]:
        return [pid for pid in self.pids() if is_fake_cloudflared(pid)]

    def kill(self) -> None:
        """SIGKILL every live run of this fake (a test that failed half-way leaves nothing)."""
        for pid in self.live_pids():
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGKILL)


MakeFakeCloudflared = Callable[..., FakeCloudflared]


def _write_private(path: Path, data: bytes) -> None:
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "wb") as handle:
        handle.write(data)


def is_fake_cloudflared(pid: int) -> bool:
    """True only for a live (not zombie) run of the fake: guards against pid reuse before killing."""
    try:
        if str(SCRIPT).encode() not in Path(f"/proc/{pid}/cmdline").read_bytes():
            return False
        return Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0] not in ("Z", "X")
    except (OSError, IndexError):
        return False
