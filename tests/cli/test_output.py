"""The CLI's drawing: colour and bars for a person at a terminal, plain stable bytes for a pipe."""

from __future__ import annotations

import io
import re

import pytest

from wa_devtunnel.cli.output import ProgressBar, add_row, console_for, echo, error, new_table, print_table, styled

SGR = re.compile(r"\x1b\[[0-9;]*m")


class FakeTerminal(io.StringIO):
    """A stream that says it is a terminal."""

    def isatty(self) -> bool:
        return True


@pytest.fixture(autouse=True)
def colour_allowed(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("NO_COLOR", raising=False)


def test_a_progress_bar_draws_on_a_terminal_and_leaves_nothing_behind() -> None:
    stream = FakeTerminal()
    with ProgressBar("Exporting", 1000, stream=stream, rate=True) as bar:
        for done in range(1, 1001):
            bar.update(done, 1000)
    drawn = stream.getvalue()
    assert "Exporting" in drawn and "1,000/1,000" in SGR.sub("", drawn) and "/s" in drawn
    assert drawn.count("Exporting") < 60  # redrawn a few times a second, not once per item
    assert drawn.endswith("\x1b[2K") or "\x1b[2K" in drawn[-40:], repr(drawn[-80:])  # transient: line erased
    assert bar.done == 1000


def test_a_progress_bar_is_silent_when_piped_but_still_counts() -> None:
    stream = io.StringIO()
    with ProgressBar("replaying", 3, stream=stream) as bar:
        for _ in range(3):
            bar.advance()
    assert stream.getvalue() == "" and bar.done == 3


def test_tables_are_plain_and_unwrapped_when_piped() -> None:
    stream = io.StringIO()
    table = new_table(("SEQ", "KIND", "HEADLINE"), right=(0,), wrap=2)
    add_row(table, ("1", "event", "x" * 500))
    add_row(table, ("10", styled("verify", "red"), "hi \x1b[2J there"))
    print_table(console_for(stream), table, indent=2)
    assert stream.getvalue() == (
        f"  SEQ  KIND    HEADLINE\n    1  event   {'x' * 500}\n   10  verify  hi \\x1b[2J there\n"
    )


def test_on_a_narrow_terminal_only_the_free_text_column_folds() -> None:
    stream = FakeTerminal()
    console = console_for(stream)
    console.width = 40
    table = new_table(("FILE", "HEADLINE"), wrap=1)
    add_row(table, ("20261126-215500-replay-2.jsonl", "a long headline " * 4))
    print_table(console, table)
    lines = SGR.sub("", stream.getvalue()).splitlines()
    assert lines[1].startswith("20261126-215500-replay-2.jsonl  a long")  # the name is never cut
    assert len(lines) > 3  # the headline folded under its column


def test_colour_on_a_terminal_none_with_no_color(monkeypatch: pytest.MonkeyPatch) -> None:
    terminal = FakeTerminal()
    echo(console_for(terminal), styled("200", "green"))
    assert terminal.getvalue() == "\x1b[32m200\x1b[0m\n"
    monkeypatch.setenv("NO_COLOR", "1")
    plain = FakeTerminal()
    echo(console_for(plain), styled("200", "green"))
    assert plain.getvalue() == "200\n"


def test_errors_are_red_on_a_terminal_and_always_escaped() -> None:
    terminal, pipe = FakeTerminal(), io.StringIO()
    error("error: \x1b]52;c;aGk=\x07 [bold]not markup[/bold]", terminal)
    error("error: \x1b]52;c;aGk=\x07 [bold]not markup[/bold]", pipe)
    assert pipe.getvalue() == "error: \\x1b]52;c;aGk=\\x07 [bold]not markup[/bold]\n"
    assert terminal.getvalue() == f"\x1b[31m{pipe.getvalue()[:-1]}\x1b[0m\n"
