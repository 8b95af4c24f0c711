"""The running instance's address book, so `replay`, `trigger` and `meta` can find a live `up`."""

from __future__ import annotations

import contextlib
import json
import os
from dataclasses import asdict, dataclass
from pathlib import Path

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


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def read_instance(recordings_dir: Path) -> RunningInstance | None:
    """The live instance, or None (no file, a damaged one, or its process is gone)."""
    try:
        data = json.loads(instance_path(recordings_dir).read_text(encoding="utf-8"))
        instance = RunningInstance(**data)
    except (OSError, ValueError, TypeError):
        return None
    return instance if _alive(instance.pid) else None


def remove_instance(recordings_dir: Path) -> None:
    """Forget it on exit, but only if the file is still ours."""
    path = instance_path(recordings_dir)
    with contextlib.suppress(OSError, ValueError, TypeError):
        if json.loads(path.read_text(encoding="utf-8")).get("pid") == os.getpid():
            path.unlink()
