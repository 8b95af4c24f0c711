"""Which live view fits where a command runs: the TUI needs a terminal to draw on, read keys from and print to.

Docker compose without `-t`, a Procfile, `| tee` or a redirect must get plain lines, never escape codes,
so `up` and `watch` run headless there and say why on stderr.
"""

from __future__ import annotations

import sys

from wa_devtunnel.cli.output import is_terminal

# stdout: where the user reads (a pipe wants lines); stdin: where keys come from; stderr: where Textual draws.
STREAMS = ("stdout", "stdin", "stderr")


def missing_terminal() -> str | None:
    """The first standard stream that is not a terminal ("stdout", "stdin" or "stderr"); None when all are."""
    for name in STREAMS:
        if not is_terminal(getattr(sys, name)):
            return name
    return None


def headless_note(stream: str) -> str:
    """The one line on stderr that says why there is no TUI and how to get it."""
    return f"wa-devtunnel: {stream} is not a terminal, running --headless (run it in a terminal for the live view)"


def choose_headless(asked: bool) -> bool:
    """Headless when asked (--headless, --json) or when a terminal is missing, which the note on stderr explains."""
    if asked:
        return True
    stream = missing_terminal()
    if stream is None:
        return False
    print(headless_note(stream), file=sys.stderr, flush=True)
    return True
