"""`wa-devtunnel export`: its arguments and what it prints; the work is in fixtures.export."""

from __future__ import annotations

import argparse
import sys
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any, TextIO

from wa_devtunnel.cli.progress import TerminalBar
from wa_devtunnel.cli.terminal_text import say

if TYPE_CHECKING:
    from wa_devtunnel.engine.replay.source import Selection
    from wa_devtunnel.settings import Settings

EXIT_OK, EXIT_FAILED, EXIT_USAGE = 0, 1, 2
PROG = "wa-devtunnel export"


def add_export_parser(commands: Any, add_common: Callable[[argparse.ArgumentParser], None]) -> None:
    """Register the subcommand; `add_common` adds --env-file/--recordings-dir like every command."""
    from wa_devtunnel.cli.selection import add_selection_arguments

    export = commands.add_parser(
        "export",
        help="turn recorded events into test fixtures (personal data scrubbed)",
        description="Write recorded webhook events as JSON fixtures for your tests, plus a manifest.json.",
    )
    add_common(export)
    export.add_argument(
        "recordings",
        nargs="*",
        metavar="RECORDING",
        help="session files, names or directories (default: the latest session in --recordings-dir)",
    )
    export.add_argument("--out", type=Path, required=True, metavar="DIR", help="where to write the fixtures")
    export.add_argument("--no-scrub", action="store_true", help="keep personal data (the exact recorded bytes)")
    export.add_argument("--keep-text", action="store_true", help="scrub people and media, keep message text")
    add_selection_arguments(
        export, "selection, as for replay (flags combine with AND; repeat a flag for OR)", "meta, sample or replay"
    )


def _usage(message: str) -> int:
    say(f"{PROG}: {message}", sys.stderr)
    return EXIT_USAGE


def resolve_recordings(names: Sequence[str], recordings_dir: Path) -> list[Path]:
    """Session files from what was typed (a path, a bare session name, a directory of sessions)."""
    from wa_devtunnel.engine.replay.source import ReplayError, default_source

    if not names:
        return [default_source(recordings_dir)]
    paths: list[Path] = []
    for name in names:
        candidates = (Path(name), recordings_dir / name, recordings_dir / f"{name}.jsonl")
        found = next((c for c in candidates if c.exists()), None)
        if found is None:
            raise ReplayError(f"no recording {name} (not a file, nor a session in {recordings_dir})")
        sessions = sorted(found.glob("*.jsonl")) if found.is_dir() else [found]
        if not sessions:
            raise ReplayError(f"no .jsonl session in {found}")
        paths.extend(sessions)
    return paths


class ProgressBar:
    """The export's bar: `Exporting [####....] done/total`, as a progress callback."""

    def __init__(self, stream: TextIO, label: str = "Exporting", width: int = 30) -> None:
        self._bar = TerminalBar(stream, label, width)

    def __call__(self, done: int, total: int) -> None:
        self._bar.draw(done, total)


def _selection(args: argparse.Namespace) -> Selection:
    from wa_devtunnel.engine.replay.source import Selection

    return Selection(
        ids=tuple(args.id or ()),
        seqs=tuple(r for ranges in args.seq or () for r in ranges),
        last=args.last,
        fields=tuple(args.field or ()),
        types=tuple(args.type or ()),
        statuses=tuple(args.status or ()),
        signatures=tuple(args.signature or ()),
        origins=tuple(args.origin or ()),
        since=args.since,
        until=args.until,
        kind="event",
    )


def summary_line(count: int, out: Path, scrubbed: bool, keep_text: bool) -> str:
    """The one line on stdout that says what was written and whether it is safe to commit."""
    how = (
        "personal data scrubbed, message text kept"
        if scrubbed and keep_text
        else "personal data scrubbed"
        if scrubbed
        else "NOT scrubbed: personal data included, do not commit"
    )
    noun = "fixture" if count == 1 else "fixtures"
    return f"Exported {count:,} {noun} to {out} ({how}) + manifest.json"


def _report_skipped(lines: Sequence[str], shown: int = 5) -> None:
    for line in lines[:shown]:
        say(f"skipped {line}", sys.stderr)
    if len(lines) > shown:
        say(f"skipped {len(lines) - shown} more", sys.stderr)


def run_export(args: argparse.Namespace, settings: Settings) -> int:
    """Select, export, report; exit 2 when there is nothing to export or --out is unusable."""
    from wa_devtunnel.engine.export.writer import ExportError, export_fixtures, prepare_out_dir
    from wa_devtunnel.engine.replay.source import ReplayError, describe_selection, load_recordings, select

    selection = _selection(args)
    try:
        paths = resolve_recordings(args.recordings, settings.recordings_dir)
        loaded = load_recordings(paths)
    except ReplayError as exc:
        return _usage(str(exc))
    _report_skipped(loaded.problems)
    events = select(loaded.exchanges, selection)
    if not events:
        where = ", ".join(str(p) for p in paths)
        return _usage(f"no event matches ({describe_selection(selection)}) in {where}")
    progress = ProgressBar(sys.stderr) if sys.stderr.isatty() else None
    try:
        prepare_out_dir(args.out)
        result = export_fixtures(events, args.out, scrub=not args.no_scrub, keep_text=args.keep_text, progress=progress)
    except ExportError as exc:
        return _usage(str(exc))
    except OSError as exc:
        say(f"{PROG}: cannot write to {args.out}: {exc.strerror or exc}", sys.stderr)
        return EXIT_FAILED
    _report_skipped(result.skipped)
    if not result.fixtures:
        return _usage("none of the matching events is a WhatsApp payload")
    say(summary_line(len(result.fixtures), args.out, result.scrubbed, result.keep_text))
    return EXIT_OK
