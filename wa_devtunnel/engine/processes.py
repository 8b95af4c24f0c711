"""Telling a process from a stranger that reused its pid, so cleanup after a crash never kills the wrong one."""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import time
from pathlib import Path

_PROC = Path("/proc")
_GONE_STATES = ("Z", "X")


def _boot_id() -> str:
    with contextlib.suppress(OSError):
        return (_PROC / "sys/kernel/random/boot_id").read_text(encoding="ascii").strip()
    return ""


def _ps(pid: int, column: str) -> str:
    """`ps -o <column>= -p <pid>` where there is no /proc (macOS, BSD); "" when the pid is gone."""
    try:
        result = subprocess.run(
            ["ps", "-o", f"{column}=", "-p", str(pid)], capture_output=True, text=True, timeout=5, check=False
        )
    except (OSError, subprocess.SubprocessError):
        return ""
    return result.stdout.strip()


def process_identity(pid: int) -> str | None:
    """Boot and start time of a live process (a reused pid gets another); None if gone or a zombie."""
    if pid <= 0:
        return None
    if _PROC.is_dir():
        try:
            fields = (_PROC / str(pid) / "stat").read_text(encoding="ascii").rsplit(")", 1)[1].split()
        except (OSError, IndexError, UnicodeDecodeError):
            return None
        if fields[0] in _GONE_STATES:
            return None
        return f"{_boot_id()}:{fields[19]}"
    state = _ps(pid, "stat")
    if not state or state[0] in _GONE_STATES:
        return None
    started = _ps(pid, "lstart")
    return f"ps:{started}" if started else None


def command_line(pid: int) -> str:
    """The process's argv joined by spaces ("" when unknown)."""
    if pid <= 0:
        return ""
    if _PROC.is_dir():
        with contextlib.suppress(OSError):
            return (_PROC / str(pid) / "cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace")
        return ""
    return _ps(pid, "command")


def is_same_process(pid: int, identity: str, marker: str) -> bool:
    """Still the very process we recorded: same start identity and `marker` in its command line."""
    if not identity or not marker:
        return False
    return process_identity(pid) == identity and marker in command_line(pid)


def _send(pid: int, identity: str, marker: str, signum: int) -> bool:
    """Signal only if it is still ours; with a pidfd (Linux) the pid cannot be reused in between."""
    pidfd: int | None = None
    if hasattr(os, "pidfd_open"):
        try:
            pidfd = os.pidfd_open(pid)
        except ProcessLookupError:
            return False
        except OSError:
            pidfd = None
    try:
        if not is_same_process(pid, identity, marker):
            return False
        if pidfd is not None:
            signal.pidfd_send_signal(pidfd, signum)
        else:
            os.kill(pid, signum)
        return True
    except ProcessLookupError:
        return False
    finally:
        if pidfd is not None:
            os.close(pidfd)


def _wait_gone(pid: int, identity: str, marker: str, timeout: float) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if not is_same_process(pid, identity, marker):
            return True
        time.sleep(0.05)
    return not is_same_process(pid, identity, marker)


def stop_recorded_process(pid: int, identity: str, marker: str, grace_s: float = 3.0) -> bool:
    """SIGTERM, then SIGKILL, a process we started earlier; False if it was not ours (or already gone)."""
    if not _send(pid, identity, marker, signal.SIGTERM):
        return False
    if _wait_gone(pid, identity, marker, grace_s):
        return True
    _send(pid, identity, marker, signal.SIGKILL)
    return _wait_gone(pid, identity, marker, grace_s)
