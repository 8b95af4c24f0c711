"""How the commands draw for a person: rich consoles, tables, colours and progress bars.

On a terminal: colour (unless NO_COLOR is set), tables fitted to its width, a transient progress bar on
stderr. Piped: the same words as plain text, tables at their natural width, no bar, no escape
sequence, so scripts and tests read stable bytes. Every string reaches rich as `Text` already passed
through `terminal_text` (controls shown as escapes); nothing is ever parsed as markup.
"""

from __future__ import annotations

import os
import sys
from collections.abc import Callable, Iterable, Sequence
from types import TracebackType
from typing import TextIO

from rich.cells import cell_len
from rich.color import ColorSystem
from rich.console import Console
from rich.progress import BarColumn, Progress, ProgressColumn, Task, TextColumn
from rich.style import Style
from rich.table import Table
from rich.text import Text

from wa_devtunnel.cli.terminal_text import block, line

PIPED_WIDTH = 1_000_000  # piped tables are never wrapped: one row, one line, as before rich
Cell = str | Text


def is_terminal(stream: TextIO) -> bool:
    """A person is watching (so colour and bars make sense); a closed or odd stream counts as a pipe."""
    try:
        return stream.isatty()
    except (AttributeError, ValueError):
        return False


def console_for(stream: TextIO | None = None) -> Console:
    """A console on `stream` (stdout by default) that never reads markup, emoji codes or highlights data.

    Styles only on a terminal and without NO_COLOR (then not even bold); FORCE_COLOR is not honoured,
    so a pipe always gets plain, unwrapped text whatever the environment says.
    """
    stream = stream if stream is not None else sys.stdout
    terminal = is_terminal(stream)
    return Console(
        file=stream,
        force_terminal=terminal,
        color_system="auto" if terminal and not os.environ.get("NO_COLOR") else None,
        width=None if terminal else PIPED_WIDTH,
        markup=False,
        emoji=False,
        highlight=False,
        legacy_windows=False,
    )


def styled(text: str, style: str = "") -> Text:
    """One terminal-safe line of text with a style (escapes first: the text may come from a request)."""
    return Text(line(text), style=style)


def echo(console: Console, text: Cell = "") -> None:
    """One line to the console (a line feed in a str is shown as `\\x0a`: it cannot forge the next line);
    plain bytes when piped, styled on a terminal."""
    shown = text if isinstance(text, Text) else Text(line(text))
    if console.is_terminal:
        console.print(shown, soft_wrap=True)
    else:
        console.file.write(shown.plain + "\n")
        console.file.flush()


def error(text: str, stream: TextIO | None = None) -> None:
    """An error line on stderr: red on a terminal, escaped always."""
    echo(console_for(stream if stream is not None else sys.stderr), Text(block(text), style="red"))


def status_style(status: int | str | None) -> str:
    """HTTP statuses as a developer scans them: 2xx green, 3xx yellow, 4xx/5xx and errors red."""
    code = str(status)
    if code.isdigit() and len(code) == 3:
        return {"2": "green", "3": "yellow"}.get(code[0], "red")
    return "red"


def new_table(headers: Sequence[str], *, right: Iterable[int] = (), wrap: int | None = None) -> Table:
    """Aligned columns two spaces apart, bold headers, no borders (what the plain tables looked like).

    Only column `wrap` may fold on a narrow terminal; piped output is never wrapped at all.
    """
    table = Table(box=None, pad_edge=False, padding=(0, 1), show_edge=False, header_style="bold")
    aligned = set(right)
    for index, header in enumerate(headers):
        fixed = index != wrap
        table.add_column(
            header,
            justify="right" if index in aligned else "left",
            no_wrap=fixed,
            overflow="fold",
            min_width=cell_len(header) if fixed else None,
        )
    return table


def add_row(table: Table, cells: Sequence[Cell]) -> None:
    """A row of strings (escaped here) or Text (already escaped by `styled`); fixed columns grow to fit it."""
    texts = [cell if isinstance(cell, Text) else Text(line(cell)) for cell in cells]
    for column, text in zip(table.columns, texts, strict=True):
        if column.no_wrap:  # rich would cut a fixed column on a narrow terminal: its minimum is its widest cell
            column.min_width = max(column.min_width or 0, text.cell_len)
    table.add_row(*texts)


def print_table(console: Console, table: Table, indent: int = 0) -> None:
    """The table, each line indented and without trailing spaces (piped output is compared byte for byte).

    On a narrow terminal only the `wrap` column folds; the others are never cut (a session name must
    stay whole to be typed), so such a table may be wider than the terminal, as plain text was.
    """
    width = console.width
    needed = console.measure(table, options=console.options.update_width(PIPED_WIDTH)).minimum + indent
    console.width = max(width, needed)
    try:
        with console.capture() as capture:
            console.print(table, width=console.width - indent)
    finally:
        console.width = width
    for text in capture.get().splitlines():
        console.file.write(" " * indent + text.rstrip() + "\n")
    console.file.flush()


Paint = Callable[[str, str], str]


def no_paint(text: str, _style: str) -> str:
    """The paint of a pipe: the text as it is."""
    return text


def _painted(text: str, style: str) -> str:
    return Style.parse(style).render(text, color_system=ColorSystem.STANDARD) if style else text


def painter(stream: TextIO) -> Paint:
    """`paint(text, style)` for line-by-line output on a hot path (headless): rich's colour codes around
    already-escaped text on a terminal, the text unchanged when piped or with NO_COLOR (no console per line)."""
    return _painted if is_terminal(stream) and not os.environ.get("NO_COLOR") else no_paint


class _CountColumn(ProgressColumn):
    """`1,234/10,000`, like the bar it replaces."""

    def render(self, task: Task) -> Text:
        return Text(f"{task.completed:,.0f}/{task.total or 0:,.0f}")


class _RateColumn(ProgressColumn):
    """Requests per second so far."""

    def render(self, task: Task) -> Text:
        return Text(f"{task.speed or 0:,.0f}/s")


class ProgressBar:
    """`label ━━━━━━━━━━━━ done/total` on a terminal's stderr while the work runs, erased after; no-op when piped."""

    def __init__(self, label: str, total: int, *, stream: TextIO | None = None, rate: bool = False) -> None:
        self.done, self.total = 0, total
        console = console_for(stream if stream is not None else sys.stderr)
        self.shown = console.is_terminal
        columns: list[str | ProgressColumn] = [TextColumn("{task.description}"), BarColumn(), _CountColumn()]
        if rate:
            columns.append(_RateColumn())
        self._progress = Progress(
            *columns,
            console=console,
            transient=True,
            disable=not self.shown,
            redirect_stdout=False,
            redirect_stderr=False,
        )
        self._task = self._progress.add_task(label, total=total)

    def advance(self, _result: object = None) -> None:
        """One more unit done (usable as a per-result callback)."""
        self.update(self.done + 1)

    def update(self, done: int, total: int | None = None) -> None:
        """`done` of `total` (the signature of export's progress callback)."""
        self.done = done
        if total is not None:
            self.total = total
        if self.shown:  # piped: counting is all (a long export or replay pays nothing for the bar)
            self._progress.update(self._task, completed=done, total=self.total)

    def __enter__(self) -> ProgressBar:
        self._progress.start()
        return self

    def __exit__(
        self, kind: type[BaseException] | None, value: BaseException | None, trace: TracebackType | None
    ) -> None:
        self._progress.stop()
