"""`wa-devtunnel export`: its arguments and what it prints; the work is in engine.export."""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence
from pathlib import Path

from rich.text import Text

from wa_devtunnel.cli.options import (
    ExitCode,
    Subparsers,
    UsageError,
    add_common,
    add_recordings_argument,
    add_selection_arguments,
    recordings_from_args,
    selection_from_args,
    shown_path,
)
from wa_devtunnel.cli.output import ProgressBar, console_for, echo, error
from wa_devtunnel.cli.terminal_text import line, say, say_lines
from wa_devtunnel.engine.export.writer import ExportError, export_fixtures, prepare_out_dir
from wa_devtunnel.engine.origin import ORIGINS
from wa_devtunnel.engine.replay.hints import no_match_message
from wa_devtunnel.engine.replay.source import ReplayError, select
from wa_devtunnel.engine.sessions import SessionNotFound
from wa_devtunnel.settings import Settings

NAME = "export"
READS_SETTINGS = True
PROG = "wa-devtunnel export"
NOT_SCRUBBED = "NOT scrubbed: personal data included, do not commit"


def register(subparsers: Subparsers) -> None:
    """`export [RECORDING...] --out DIR [--no-scrub | --keep-text] [--clean] [selection]`."""
    export = subparsers.add_parser(
        NAME,
        help="turn recorded events into test fixtures (personal data scrubbed)",
        description="Write recorded webhook events as JSON fixtures for your tests, plus a manifest.json.",
    )
    add_common(export)
    add_recordings_argument(export)
    export.add_argument("--out", type=Path, required=True, metavar="DIR", help="where to write the fixtures")
    export.add_argument("--no-scrub", action="store_true", help="keep personal data (the exact recorded bytes)")
    export.add_argument("--keep-text", action="store_true", help="scrub people and media, keep message text")
    export.add_argument(
        "--clean",
        action="store_true",
        help="first remove the fixtures an earlier export listed in DIR/manifest.json (other files stay); "
        "without it, earlier fixtures are kept and never overwritten by another event",
    )
    add_selection_arguments(
        export,
        "selection, as for replay (flags combine with AND; repeat a flag or use commas for OR)",
        f"who sent it: {', '.join(ORIGINS)} (self-tests are never exported)",
    )


def _usage(message: str) -> UsageError:
    return UsageError(f"{PROG}: {message}", try_help=False)


def summary_line(count: int, out: Path, scrubbed: bool, keep_text: bool, kept: int = 0) -> str:
    """The one line on stdout that says what was written, whether it is safe to commit, and what stayed."""
    how = (
        "personal data scrubbed, message text kept"
        if scrubbed and keep_text
        else "personal data scrubbed"
        if scrubbed
        else NOT_SCRUBBED
    )
    noun = "fixture" if count == 1 else "fixtures"
    text = f"Exported {count:,} {noun} to {out} ({how}) + manifest.json"
    if kept:
        text += f"; {kept:,} earlier {'fixture' if kept == 1 else 'fixtures'} kept (--clean removes them first)"
    return text


def summary_text(count: int, out: Path, scrubbed: bool, keep_text: bool, kept: int = 0) -> Text:
    """The summary line, its warning in bold red when personal data was kept."""
    text = Text(line(summary_line(count, out, scrubbed, keep_text, kept)))
    text.highlight_words([NOT_SCRUBBED], "bold red")
    return text


def report_skipped(lines: Sequence[str], shown: int = 5) -> None:
    """The first few records that could not be exported, and how many more (stderr: stdout is the result)."""
    for text in lines[:shown]:
        say(f"skipped {text}", sys.stderr)
    if len(lines) > shown:
        say(f"skipped {len(lines) - shown} more", sys.stderr)


def run(args: argparse.Namespace, settings: Settings | None) -> ExitCode:
    """Select, export, report; exit 2 when there is nothing to export or --out is unusable."""
    assert settings is not None  # READS_SETTINGS
    selection = selection_from_args(args, "event")
    try:
        sources = recordings_from_args(args.recordings, settings.recordings_dir, selection.kinds, "Exporting from")
    except (ReplayError, SessionNotFound) as exc:
        raise _usage(str(exc)) from None
    paths, loaded = sources.paths, sources.loaded
    if sources.picked:
        say_lines([sources.picked], sys.stderr)
    report_skipped(loaded.problems)
    events = select(loaded.exchanges, selection)
    if not events:
        shown = [shown_path(path) for path in paths]
        raise _usage(no_match_message(loaded.exchanges, selection, shown, "no event matches"))
    try:
        earlier = prepare_out_dir(args.out, clean=args.clean)
        if args.clean:
            removed = "fixture" if earlier.removed == 1 else "fixtures"
            echo(console_for(), line(f"Removed {earlier.removed:,} earlier {removed} from {args.out} (--clean)"))
        with ProgressBar("Exporting", len(events)) as progress:
            result = export_fixtures(
                events,
                args.out,
                scrub=not args.no_scrub,
                keep_text=args.keep_text,
                progress=progress.update,
                earlier=earlier,
            )
    except ExportError as exc:
        raise _usage(str(exc)) from None
    except OSError as exc:
        error(f"{PROG}: cannot write to {args.out}: {exc.strerror or exc}")
        return ExitCode.FAILED
    report_skipped(result.skipped)
    if not result.fixtures:
        raise _usage("none of the matching events is a WhatsApp payload")
    echo(console_for(), summary_text(len(result.fixtures), args.out, result.scrubbed, result.keep_text, result.kept))
    return ExitCode.OK
