"""Command-line selection flags shared by `replay` and `export`, so both pick exchanges the same way."""

from __future__ import annotations

import argparse
from collections.abc import Callable
from typing import Any

from wa_devtunnel.engine.replay.source import parse_seq_ranges, parse_timestamp


def parsed(parse: Callable[[str], Any]) -> Callable[[str], Any]:
    """An argparse type from a parser that raises ValueError, so a bad value is a usage error."""

    def convert(text: str) -> Any:
        try:
            return parse(text)
        except ValueError as exc:
            raise argparse.ArgumentTypeError(str(exc)) from None

    return convert


def positive(kind: type[int] | type[float]) -> Callable[[str], Any]:
    """Counts, rates and timeouts: zero or negative is a usage error, not a hang or a crash."""

    def parse(text: str) -> int | float:
        try:
            value = kind(text)
        except ValueError:
            raise ValueError(f"{text!r} is not a {'whole number' if kind is int else 'number'}") from None
        if value <= 0:
            raise ValueError(f"{text} must be greater than 0")
        return value

    return parsed(parse)


def add_selection_arguments(parser: argparse.ArgumentParser, title: str, origins_help: str) -> None:
    """--id --seq --last --field --type --status --signature --origin --since --until."""
    pick = parser.add_argument_group(title)
    pick.add_argument("--id", action="append", help="exchange id, or the start of one")
    pick.add_argument("--seq", action="append", type=parsed(parse_seq_ranges), help="sequence numbers: 7, 3-9, 1,4-6")
    pick.add_argument("--last", type=positive(int), metavar="N", help="only the last N that match")
    pick.add_argument("--field", action="append", help="webhook field, e.g. messages, account_update")
    pick.add_argument("--type", action="append", help="message type, e.g. text, image, interactive")
    pick.add_argument("--status", action="append", help="status update, e.g. delivered, read, failed")
    pick.add_argument("--signature", action="append", help="recorded verdict: valid, invalid, missing, unchecked")
    pick.add_argument("--origin", action="append", help=origins_help)
    pick.add_argument("--since", type=parsed(parse_timestamp), help="received at or after (ISO, UTC by default)")
    pick.add_argument("--until", type=parsed(parse_timestamp), help="received at or before (ISO, UTC by default)")
