"""`wa-devtunnel sessions`: the recorded sessions as a table, oldest first, so a session can be named."""

from __future__ import annotations

import argparse
from collections.abc import Sequence
from pathlib import Path

from rich.console import Console
from rich.table import Table

from wa_devtunnel.cli.options import ExitCode, Subparsers, add_common
from wa_devtunnel.cli.output import add_row, console_for, echo, new_table, print_table, styled
from wa_devtunnel.engine.sessions import SessionInfo, list_sessions
from wa_devtunnel.settings import Settings

NAME = "sessions"
READS_SETTINGS = True
EMPTY_SHOWN = 5
HEADERS = ("FILE", "STARTED (UTC)", "EXCHANGES", "EVENTS", "VERIFIES", "OTHERS", "SIZE")


def register(subparsers: Subparsers) -> None:
    """`sessions [--recordings-dir DIR]`."""
    add_common(subparsers.add_parser(NAME, help="list recorded sessions"))


def human_size(size: int) -> str:
    """`512 B`, `9.0 KiB`, `3.0 MiB`: what a developer compares at a glance."""
    if size < 1024:
        return f"{size} B"
    value = float(size)
    for unit in ("KiB", "MiB", "GiB"):
        value /= 1024
        if value < 1024 or unit == "GiB":
            break
    return f"{value:.1f} {unit}"


def sessions_table(sessions: Sequence[SessionInfo]) -> Table:
    """Names and dates read left to right; counts and sizes line up on the right; damage is flagged."""
    damaged = any(info.problems for info in sessions)
    table = new_table((*HEADERS, "") if damaged else HEADERS, right=range(2, len(HEADERS)))
    for info in sessions:
        cells = [
            info.path.name,
            info.started_at.strftime("%Y-%m-%d %H:%M:%S") if info.started_at else "-",
            *(str(count) for count in (info.exchanges, info.events, info.verifies, info.others)),
            human_size(info.size_bytes),
        ]
        if info.problems:
            cells.append(styled(f"damaged: {info.problems} {'line' if info.problems == 1 else 'lines'}", "yellow"))
        elif damaged:
            cells.append("")
        add_row(table, cells)
    return table


def print_sessions(console: Console, sessions: Sequence[SessionInfo], directory: Path) -> None:
    """The table, or what to do when there is nothing recorded yet; empty files are named, not listed."""
    listed = [info for info in sessions if not info.empty]
    if listed:
        print_table(console, sessions_table(listed))
    else:
        echo(console, f"No recordings in {directory} yet. Run `wa-devtunnel` and send a webhook.")
    empty = [info.path.name for info in sessions if info.empty]
    if empty:
        files = "file" if len(empty) == 1 else "files"
        shown = ", ".join(empty[:EMPTY_SHOWN]) + (", ..." if len(empty) > EMPTY_SHOWN else "")
        echo(
            console,
            f"Not listed: {len(empty)} empty session {files} left by idle runs of an older wa-devtunnel "
            f"(safe to delete): {shown}",
        )


def run(args: argparse.Namespace, settings: Settings | None) -> ExitCode:
    """Always 0: an empty or missing directory is said, not an error."""
    assert settings is not None  # READS_SETTINGS
    print_sessions(console_for(), list_sessions(settings.recordings_dir), settings.recordings_dir)
    return ExitCode.OK
