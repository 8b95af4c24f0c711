"""Text folded at the pane's width character by character: a body as received has few spaces to wrap at."""

from __future__ import annotations

from rich.cells import cell_len, chop_cells
from rich.console import Console, ConsoleOptions, RenderResult
from rich.measure import Measurement
from rich.text import Text

TAB_SIZE = 8


class CharWrapped:
    """Meta's compact JSON is one long line with spaces only inside strings: wrapped at those spaces, its
    lines end ragged and a line longer than the pane loses its end. Folded at the width, every character is
    on screen, in order, and a copy of the screen is the body."""

    def __init__(self, text: Text) -> None:
        self.text = text

    def _lines(self) -> list[str]:
        return self.text.plain.expandtabs(TAB_SIZE).split("\n")

    def __rich_console__(self, console: Console, options: ConsoleOptions) -> RenderResult:
        width = max(1, options.max_width)
        pieces: list[str] = []
        for line in self._lines():
            if not line:
                pieces.append("")
            elif line.isascii():  # one cell per character: slices, not a measure per character
                pieces.extend(line[at : at + width] for at in range(0, len(line), width))
            else:
                pieces.extend(chop_cells(line, width))
        yield Text("\n".join(pieces), style=self.text.style, no_wrap=True, overflow="crop", end="")

    def __rich_measure__(self, console: Console, options: ConsoleOptions) -> Measurement:
        longest = max((cell_len(line) for line in self._lines()), default=0)
        return Measurement(1, min(max(1, longest), options.max_width))
