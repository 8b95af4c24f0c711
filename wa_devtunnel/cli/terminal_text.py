"""What the command-line front ends print: every human line goes through `rules.untrusted.visible`.

Recordings, Graph API answers, a backend's replies and agent errors all end up in these lines, so
nothing printed here can move the cursor, set the title, write the clipboard or reorder text.
"""

from __future__ import annotations

import json
import sys
from collections.abc import Iterable
from pathlib import Path
from typing import Any, TextIO

from wa_devtunnel.rules.untrusted import json_visible, visible


def line(text: object) -> str:
    """One line for a terminal: every control, a line feed included, shown as an escape."""
    return visible(str(text))


def block(text: object) -> str:
    """Several lines we composed ourselves: line feeds stay, every other control is shown escaped."""
    return visible(str(text), keep_newlines=True)


def say(text: object = "", file: TextIO | None = None) -> None:
    """print() for human output: the one way a command writes text a person reads."""
    stream = file if file is not None else sys.stdout
    stream.write(block(text) + "\n")
    stream.flush()


def say_lines(lines: Iterable[str], file: TextIO | None = None) -> None:
    """One line each (a line feed inside one is shown as `\\x0a`, so it can't forge the next line)."""
    say("\n".join(line(text) for text in lines), file)


def json_text(payload: Any, indent: int | None = None) -> str:
    """Exact JSON (strings read back unchanged) with no raw control, bidi or surrogate character in it."""
    return json_visible(json.dumps(payload, ensure_ascii=False, indent=indent))


def shown_path(path: Path) -> Path:
    """Relative to the current directory when inside it: shorter, and what the developer typed."""
    try:
        return path.resolve().relative_to(Path.cwd().resolve())
    except (ValueError, OSError):
        return path
