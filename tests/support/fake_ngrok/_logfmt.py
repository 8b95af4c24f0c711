"""The agent's log lines in ngrok's logfmt (``t=... lvl=info msg="..." key=value``), as pyngrok parses them."""

from __future__ import annotations

import re
import sys
from datetime import datetime
from typing import Any, TextIO

_BARE = re.compile(r"[^\s\"\\=]+")


class Logger:
    """Writes to stdout, stderr or a file (``--log``); ``false`` or nothing silences it, as in ngrok."""

    def __init__(self, target: str | None) -> None:
        self.stream: TextIO | None = None
        if target == "stdout":
            self.stream = sys.stdout
        elif target == "stderr":
            self.stream = sys.stderr
        elif target and target != "false":
            self.stream = open(target, "a", encoding="utf-8")  # noqa: SIM115

    def __call__(self, lvl: str, msg: str, **fields: Any) -> None:
        """One line; a key given as ``obj_2`` is printed as a second ``obj=`` (ngrok repeats keys)."""
        if self.stream is None:
            return
        stamp = datetime.now().astimezone().strftime("%Y-%m-%dT%H:%M:%S%z")
        parts = [f"t={stamp}", f"lvl={lvl}", f"msg={quote(msg)}"]
        parts += [f"{key.removesuffix('_2')}={quote(str(value))}" for key, value in fields.items()]
        try:
            self.stream.write(" ".join(parts) + "\n")
            self.stream.flush()
        except (BrokenPipeError, ValueError):
            self.stream = None


def quote(value: str) -> str:
    """Go's logfmt quoting: bare when safe (``msg=start``), else double quotes with \\n, \\r, \\t escaped."""
    if value and _BARE.fullmatch(value):
        return value
    escaped = value.replace("\\", "\\\\").replace('"', '\\"')
    return '"' + escaped.replace("\n", "\\n").replace("\r", "\\r").replace("\t", "\\t") + '"'
