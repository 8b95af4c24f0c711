"""Files that hold secrets (.env): created or replaced whole, mode 0600, never half-written."""

from __future__ import annotations

import contextlib
import os
import stat
import tempfile
from pathlib import Path

PRIVATE_MODE = 0o600  # .env holds the app secret and tokens: only its owner may read it


def create_private(path: Path, text: str) -> None:
    """A new file that only its owner can read (it will hold secrets), never over an existing one."""
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, PRIVATE_MODE)
    with os.fdopen(fd, "wb") as handle:
        os.fchmod(handle.fileno(), PRIVATE_MODE)
        handle.write(text.encode("utf-8"))


def replace_private(path: Path, text: str) -> int:
    """Rename a new copy over it (a crash never leaves half a .env), 0600 as it holds secrets; returns the old mode."""
    target = path.resolve()
    info = target.stat()
    fd, temp = tempfile.mkstemp(prefix=".env.", dir=target.parent)
    try:
        with os.fdopen(fd, "wb") as handle:
            os.fchmod(handle.fileno(), PRIVATE_MODE)
            if (info.st_uid, info.st_gid) != (os.geteuid(), os.getegid()):
                with contextlib.suppress(OSError):  # only root may give a file away; others keep their own
                    os.fchown(handle.fileno(), info.st_uid, info.st_gid)
            handle.write(text.encode("utf-8"))
        os.replace(temp, target)
    except BaseException:
        with contextlib.suppress(OSError):
            os.unlink(temp)
        raise
    return stat.S_IMODE(info.st_mode)
