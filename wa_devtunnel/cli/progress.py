"""One progress bar for the commands that run long (export, replay): drawn on a terminal, throttled."""

from __future__ import annotations

import time
from typing import TextIO

REDRAW_S = 0.1


class TerminalBar:
    """`label [####....] done/total`, redrawn at most ten times a second so it never slows the work."""

    def __init__(self, stream: TextIO, label: str, width: int, show_rate: bool = False) -> None:
        self.stream, self.label, self.width, self.show_rate = stream, label, width, show_rate
        self.started = self._drawn_at = time.perf_counter()

    def draw(self, done: int, total: int, newline_when_done: bool = True) -> None:
        """Redraw unless the last drawing is too recent; the final state is always drawn."""
        now = time.perf_counter()
        if done < total and now - self._drawn_at < REDRAW_S:
            return
        self._drawn_at = now
        filled = self.width * done // total if total else self.width
        bar = "#" * filled + "." * (self.width - filled)
        text = f"\r{self.label} [{bar}] {done:,}/{total:,}"
        if self.show_rate:
            rate = done / (now - self.started) if now > self.started else 0.0
            text += f"  {rate:,.0f}/s "
        self.stream.write(text)
        if done >= total and newline_when_done:
            self.stream.write("\n")
        self.stream.flush()

    def clear(self) -> None:
        """Wipe the line (when a report follows on the same terminal)."""
        self.stream.write("\r" + " " * (len(self.label) + self.width + 40) + "\r")
        self.stream.flush()
