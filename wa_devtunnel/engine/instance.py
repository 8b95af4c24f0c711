"""The running instance's address book, so `replay`, `trigger` and `meta` can find a live `up`.

It also lists what the instance started outside itself (the tunnel agent and its temp files), so
the next start can clean up after an instance that was killed with no chance to do it.
"""

from __future__ import annotations

import contextlib
import json
import os
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

from wa_devtunnel.engine.processes import process_identity
from wa_devtunnel.engine.tunnel.provider import AgentFootprint

INSTANCE_FILE = ".wa-devtunnel-instance.json"


@dataclass(frozen=True, slots=True)
class RunningInstance:
    """Where a live `wa-devtunnel up` listens and what Meta should call."""

    pid: int
    local_url: str
    callback_url: str
    public_url: str | None
    forward_to: str | None
    recording: str | None
    identity: str = ""
    agent: AgentFootprint | None = None
    # The session's origin key: our own tools label their requests with it (engine/origin.py).
    origin_key: str | None = None
    # Where front ends attach (`wa-devtunnel watch`): a Unix socket in a 0700 directory, and its secret.
    channel: str | None = None
    channel_secret: str | None = None


def instance_path(recordings_dir: Path) -> Path:
    """The file lives beside the recordings it describes (one project, one directory)."""
    return Path(recordings_dir) / INSTANCE_FILE


def write_instance(recordings_dir: Path, instance: RunningInstance) -> None:
    """Atomically (re)write the file, private to the user."""
    path = instance_path(recordings_dir)
    path.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
    temporary = path.with_suffix(f".{os.getpid()}.tmp")
    fd = os.open(temporary, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w", encoding="utf-8") as handle:
        json.dump(asdict(instance), handle)
    os.replace(temporary, path)


def _footprint(data: Any) -> AgentFootprint | None:
    if not isinstance(data, dict):
        return None
    return AgentFootprint(
        pid=int(data["pid"]),
        identity=str(data["identity"]),
        marker=str(data["marker"]),
        workdir=str(data["workdir"]),
        files=tuple(str(path) for path in data.get("files") or ()),
    )


def load_instance(recordings_dir: Path) -> RunningInstance | None:
    """The recorded instance, alive or not (None: no file or a damaged one)."""
    try:
        data = json.loads(instance_path(recordings_dir).read_text(encoding="utf-8"))
        data["agent"] = _footprint(data.get("agent"))
        return RunningInstance(**data)
    except (OSError, ValueError, TypeError, KeyError, AttributeError):
        return None


def is_alive(instance: RunningInstance) -> bool:
    """Its process still runs (and, when recorded, is the same process, not a reused pid)."""
    if instance.pid <= 0:
        return False
    if instance.identity:
        return process_identity(instance.pid) == instance.identity
    try:
        os.kill(instance.pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    except (OverflowError, ValueError):
        return False
    return True


def read_instance(recordings_dir: Path) -> RunningInstance | None:
    """The live instance, or None (no file, a damaged one, or its process is gone)."""
    instance = load_instance(recordings_dir)
    return instance if instance is not None and is_alive(instance) else None


def origin_key_for(recordings_dir: Path, target_url: str) -> str | None:
    """The live instance's origin key when `target_url` is that instance (its local or public URL)."""
    instance = read_instance(recordings_dir)
    if instance is None or not instance.origin_key:
        return None
    target = _origin_of(target_url)
    ours = {_origin_of(url) for url in (instance.local_url, instance.callback_url, instance.public_url) if url}
    return instance.origin_key if target in ours else None


def _origin_of(url: str) -> tuple[str, str, int | None]:
    parts = urlsplit(url)
    host = (parts.hostname or "").lower()
    if host in ("localhost", "::1"):
        host = "127.0.0.1"
    return parts.scheme, host, parts.port


def remove_instance(recordings_dir: Path, owner: int | None = None) -> None:
    """Forget it on exit (or a dead `owner`'s), but only if the file still belongs to that pid."""
    path = instance_path(recordings_dir)
    expected = os.getpid() if owner is None else owner
    with contextlib.suppress(OSError, ValueError, TypeError, AttributeError):
        if json.loads(path.read_text(encoding="utf-8")).get("pid") == expected:
            path.unlink()
