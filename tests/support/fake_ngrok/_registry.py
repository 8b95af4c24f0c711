"""ngrok's edge as seen by the fake agents of one test: which endpoint URLs are online, and on which local port.

Agents sharing FAKE_NGROK_STATE_DIR share it (a second endpoint on a URL already online is ERR_NGROK_334, as on the
account); without it each agent only knows its own endpoints. A URL keeps its local port across agent restarts
when that port is free, so ``https://localhost:<port>`` stays the same as a dev domain does.
"""

from __future__ import annotations

import contextlib
import fcntl
import json
import os
from collections.abc import Iterator
from pathlib import Path
from typing import Any

AGENT_MARK = b"fake_ngrok.py"


class AlreadyOnline(Exception):
    """The URL is held by another endpoint (in this agent or another one) that does not pool with us."""


class Registry:
    def __init__(self, state_dir: str | None) -> None:
        self.dir = Path(state_dir) if state_dir else None
        self._memory: dict[str, Any] = {"online": {}, "ports": {}}

    def forget_own(self) -> None:
        """A (re)started agent holds nothing yet: a restart in place keeps the pid but loses every endpoint."""
        with self._state() as state:
            state["online"] = {k: v for k, v in state["online"].items() if v["pid"] != os.getpid()}

    def claim(self, url: str, name: str, pooling: bool) -> None:
        with self._state() as state:
            holder = state["online"].get(url)
            if holder and _alive(holder["pid"]) and not (pooling and holder["pooling"]):
                raise AlreadyOnline(url)
            state["online"][url] = {"pid": os.getpid(), "name": name, "pooling": pooling}

    def release(self, url: str, name: str) -> None:
        with self._state() as state:
            holder = state["online"].get(url)
            if holder and holder["pid"] == os.getpid() and holder["name"] == name:
                del state["online"][url]

    def port_for(self, url: str) -> int:
        with self._state() as state:
            return int(state["ports"].get(url, 0))

    def remember_port(self, url: str, port: int) -> None:
        with self._state() as state:
            state["ports"][url] = port

    @contextlib.contextmanager
    def _state(self) -> Iterator[dict[str, Any]]:
        if self.dir is None:
            yield self._memory
            return
        self.dir.mkdir(parents=True, exist_ok=True)
        path = self.dir / "edge.json"
        with open(self.dir / "edge.lock", "a") as lock:
            fcntl.flock(lock, fcntl.LOCK_EX)
            try:
                state = json.loads(path.read_text()) if path.exists() else {"online": {}, "ports": {}}
                yield state
                tmp = path.with_suffix(".tmp")
                tmp.write_text(json.dumps(state, sort_keys=True))
                tmp.replace(path)
            finally:
                fcntl.flock(lock, fcntl.LOCK_UN)


def _alive(pid: int) -> bool:
    """A live fake agent (a recycled pid running something else does not hold a URL)."""
    try:
        return AGENT_MARK in Path(f"/proc/{pid}/cmdline").read_bytes() and _not_zombie(pid)
    except OSError:
        return False


def _not_zombie(pid: int) -> bool:
    with contextlib.suppress(OSError, IndexError):
        return Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0] != "Z"
    return True
