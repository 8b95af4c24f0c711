"""An agent and whatever it started live in one process group and are stopped as one: no orphan keeps a domain online.

The agent is started with `start_new_session=True`, so its pid is also its process group's id. A
wrapper script between us and the real agent (a shell script as PYNGROK_NGROK_PATH that does not
`exec`) would otherwise leave the agent running as a grandchild after we stop the wrapper.
"""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import time
from collections.abc import Callable
from pathlib import Path

_PROC = Path("/proc")
_GONE_STATES = ("Z", "X")
_POLL_S = 0.05


def _stat_fields(entry: Path) -> list[str] | None:
    with contextlib.suppress(OSError, UnicodeDecodeError, IndexError):
        return (entry / "stat").read_text(encoding="ascii").rsplit(")", 1)[1].split()
    return None


def group_members(pgid: int) -> list[int]:
    """The live (not zombie) processes of a process group."""
    if pgid <= 1:
        return []
    if _PROC.is_dir():
        members = []
        for entry in _PROC.iterdir():
            if entry.name.isdigit():
                fields = _stat_fields(entry)
                if fields and fields[2] == str(pgid) and fields[0] not in _GONE_STATES:
                    members.append(int(entry.name))
        return members
    try:
        listing = subprocess.run(
            ["ps", "-A", "-o", "pid=,pgid=,stat="], capture_output=True, text=True, timeout=5, check=False
        ).stdout
    except (OSError, subprocess.SubprocessError):
        return [pgid] if _group_exists(pgid) else []
    rows = (line.split() for line in listing.splitlines())
    return [int(r[0]) for r in rows if len(r) >= 3 and r[1] == str(pgid) and r[2][:1] not in _GONE_STATES]


def _group_exists(pgid: int) -> bool:
    try:
        os.killpg(pgid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def signal_group(pgid: int, signum: int) -> bool:
    """Send `signum` to every process of the group; False if there was none (or it is not a group we may touch)."""
    if pgid <= 1 or not hasattr(os, "killpg") or pgid == os.getpgrp():
        return False  # never our own group, init's, or "every process" (0, -1)
    try:
        os.killpg(pgid, signum)
    except (ProcessLookupError, PermissionError):
        return False
    return True


def _wait_empty(pgid: int, timeout: float, reap: Callable[[], object] | None) -> bool:
    deadline = time.monotonic() + timeout
    while True:
        if reap is not None:
            reap()
        if not group_members(pgid):
            return True
        if time.monotonic() >= deadline:
            return False
        time.sleep(_POLL_S)


def stop_group(pgid: int, grace_s: float = 3.0, reap: Callable[[], object] | None = None) -> bool:
    """SIGTERM the whole group, SIGKILL what is left after `grace_s`; True when nothing of it runs any more.

    `reap` (e.g. `Popen.poll`) collects our own child, the group leader, so it does not linger as a zombie.
    """
    if not signal_group(pgid, signal.SIGTERM):
        return not group_members(pgid)
    if _wait_empty(pgid, grace_s, reap):
        return True
    signal_group(pgid, signal.SIGKILL)
    return _wait_empty(pgid, grace_s, reap)
