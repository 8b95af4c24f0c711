"""`wa-devtunnel replay`: turns flags into an engine replay and renders the plan, progress and results."""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import gc
import json
import os
import sys
import time
from collections.abc import Iterator

from wa_devtunnel.cli.options import (
    ExitCode,
    Sources,
    Subparsers,
    Target,
    UsageError,
    add_common,
    add_recordings_argument,
    add_selection_arguments,
    positive,
    recordings_from_args,
    selection_from_args,
    shown_path,
    target_from_args,
)
from wa_devtunnel.cli.output import ProgressBar, console_for, error
from wa_devtunnel.cli.replay_output import json_report, print_dry_run, print_summary
from wa_devtunnel.cli.terminal_text import say_lines
from wa_devtunnel.engine.instance import origin_key_for
from wa_devtunnel.engine.origin import ORIGINS
from wa_devtunnel.engine.recording import SessionRecorder
from wa_devtunnel.engine.replay.hints import matches_with_any_kind, no_match_message
from wa_devtunnel.engine.replay.plan import PlannedRequest, ReplayOptions, SignatureMode, plan_replay
from wa_devtunnel.engine.replay.send import ReplayNotRecorded, send_plan, summarize
from wa_devtunnel.engine.replay.source import REPLAY_SUFFIX, ReplayError, Selection, select
from wa_devtunnel.engine.sessions import SessionNotFound
from wa_devtunnel.settings import Settings

NAME = "replay"
READS_SETTINGS = True
PROG = "wa-devtunnel replay"
MAX_PROBLEMS_SHOWN = 10


def register(subparsers: Subparsers) -> None:
    """`replay [RECORDING...] --to URL`: sources, selection, signature mode, pacing, output."""
    replay = subparsers.add_parser(NAME, help="send recorded webhooks again, e.g. to your backend")
    add_common(replay)
    add_recordings_argument(replay)
    replay.add_argument(
        "--to",
        metavar="URL",
        help="where to send (default: the running wa-devtunnel found in --recordings-dir, "
        "else WA_DEVTUNNEL_FORWARD_TO)",
    )
    add_selection_arguments(
        replay,
        "selection (flags combine with AND; repeat a flag or use commas for OR)",
        f"who sent it: {', '.join(ORIGINS)} (self-tests are never replayed)",
    )
    pick = replay.add_argument_group("kind")
    pick.add_argument(
        "--kind", choices=("event", "verify", "all"), help="default event (all when picking by --id/--seq)"
    )
    signing = replay.add_mutually_exclusive_group()
    signing.add_argument("--resign", action="store_true", help="sign again with --app-secret / WHATSAPP_APP_SECRET")
    signing.add_argument(
        "--bad-signature",
        action="store_true",
        help="send a wrong X-Hub-Signature-256 to test your rejection path: exit 0 when every one gets a 4xx",
    )
    replay.add_argument("--app-secret", help="App Secret for --resign (default WHATSAPP_APP_SECRET)")
    replay.add_argument(
        "--verify-token",
        help="the target's verify token, for handshakes (default: WHATSAPP_VERIFY_TOKEN, else the one kept for "
        "this project folder)",
    )
    replay.add_argument("--concurrency", type=positive(int), default=1, help="requests in flight (default 1: in order)")
    replay.add_argument("--rate", type=positive(float), metavar="R", help="at most R requests per second")
    replay.add_argument("--timeout", type=positive(float), metavar="S", help="seconds per request (default 10)")
    replay.add_argument("--dry-run", action="store_true", help="print what would be sent; send nothing")
    replay.add_argument("--json", action="store_true", help="print one JSON object (plan, results, summary)")
    replay.add_argument("--no-record", action="store_true", help="do not record the replayed exchanges")


def options_from_args(settings: Settings, args: argparse.Namespace, target: Target | None = None) -> ReplayOptions:
    """--to (else the running wa-devtunnel, else the forward target), signature mode, secret, token, pacing."""
    target = target or target_from_args(args.to, settings, PROG)
    if target is None:
        raise ReplayError(
            f"where to? no running wa-devtunnel found in {settings.recordings_dir}: pass --to URL "
            "(e.g. --to http://localhost:8000/webhook/whatsapp) or set WA_DEVTUNNEL_FORWARD_TO in .env"
        )
    mode = SignatureMode.RESIGN if args.resign else SignatureMode.BAD if args.bad_signature else SignatureMode.ORIGINAL
    return ReplayOptions(
        target_url=target.url,
        signature=mode,
        app_secret=settings.app_secret,
        verify_token=None if settings.verify_token_source == "generated" else settings.verify_token,
        concurrency=args.concurrency,
        rate=args.rate,
        timeout_s=args.timeout or settings.forward_timeout_s,
        origin_key=origin_key_for(settings.recordings_dir, target.url),
    )


def run(args: argparse.Namespace, settings: Settings | None) -> ExitCode:
    """0 when every request got a 2xx (or a correct handshake), 1 when one did not, 2 when it cannot start."""
    assert settings is not None  # READS_SETTINGS
    try:
        return _replay(settings, args)
    except (ReplayError, SessionNotFound) as exc:
        raise UsageError(f"{PROG}: {exc}", try_help=False) from None
    except BrokenPipeError:  # `replay ... | head`: the reader has what it wanted, like any Unix tool
        with contextlib.suppress(OSError):
            os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return ExitCode.OK
    except OSError as exc:  # the recordings directory cannot be created or written
        raise UsageError(f"{PROG}: cannot record the replay: {exc.strerror or exc}", try_help=False) from None


def _replay(settings: Settings, args: argparse.Namespace) -> ExitCode:
    """Load, select, plan; then print the plan (--dry-run) or send it and print the summary."""
    target = target_from_args(args.to, settings, PROG)
    options = options_from_args(settings, args, target)
    selection = selection_from_args(args, args.kind)
    with _collector_paused():
        sources, plan = _load_and_plan(settings, args, options, selection, target)
    multi = len(sources.paths) > 1
    if args.dry_run:
        if args.json:
            print(json.dumps(json_report(sources.paths, options, plan, None, None, None, sources.loaded.problems)))
        else:
            print_dry_run(console_for(), plan, options, multi)
        return ExitCode.OK
    return _send(settings, args, options, sources, plan)


@contextlib.contextmanager
def _collector_paused() -> Iterator[None]:
    """No garbage collection while the sessions load and the plan is built, nor of what they made after.

    Loading makes a dozen objects per line and none of them in a cycle, yet every few thousand of them
    the collector would scan all loaded so far again: with 10,000 events it took more time than the
    loading itself. What was made is then frozen (never scanned again: the first collection after
    re-enabling would otherwise scan all of it at once); send_plan keeps it so until the replay is done.
    """
    enabled = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        gc.freeze()
        if enabled:
            gc.enable()


def _load_and_plan(
    settings: Settings,
    args: argparse.Namespace,
    options: ReplayOptions,
    selection: Selection,
    target: Target | None,
) -> tuple[Sources, list[PlannedRequest]]:
    """The sources (their notes said on stderr) and the plan of what the selection chose; ReplayError for none."""
    sources = recordings_from_args(args.recordings, settings.recordings_dir, selection.kinds, "Replaying")
    paths, loaded = sources.paths, sources.loaded
    notes = [text for text in (sources.picked, target.note if target else "") if text]
    notes += [f"warning: {problem}" for problem in loaded.problems[:MAX_PROBLEMS_SHOWN]]
    if len(loaded.problems) > MAX_PROBLEMS_SHOWN:
        notes.append(f"warning: ... and {len(loaded.problems) - MAX_PROBLEMS_SHOWN} more")
    if notes:
        say_lines(notes, sys.stderr)
    chosen = select(loaded.exchanges, selection)
    if not chosen:
        hint = " (try --kind all)" if matches_with_any_kind(loaded.exchanges, selection) else ""
        shown = [shown_path(path) for path in paths]
        raise ReplayError(no_match_message(loaded.exchanges, selection, shown, "no exchanges match") + hint)
    return sources, plan_replay(chosen, options)


def _send(
    settings: Settings, args: argparse.Namespace, options: ReplayOptions, sources: Sources, plan: list[PlannedRequest]
) -> ExitCode:
    """Send the plan (recorded unless --no-record), then print the summary or --json."""
    paths, loaded, multi = sources.paths, sources.loaded, len(sources.paths) > 1
    recorder = (
        SessionRecorder(settings.recordings_dir, suffix=REPLAY_SUFFIX, max_bytes=settings.max_session_bytes)
        if settings.record
        else None
    )
    started = time.perf_counter()
    not_recorded = ""
    progress = ProgressBar("replaying", len(plan), rate=True)
    try:
        with progress:
            results = asyncio.run(send_plan(plan, options, recorder, progress.advance))
    except ReplayNotRecorded as exc:
        results, not_recorded = exc.results, str(exc)
    except KeyboardInterrupt:
        print(f"\ninterrupted: {progress.done} of {len(plan)} requests answered", file=sys.stderr)
        return ExitCode.FAILED
    finally:
        if recorder is not None:
            recorder.close()  # nothing recorded: no file was made
    summary = summarize(results, time.perf_counter() - started)
    recording = recorder.path if recorder is not None and recorder.paths else None
    if args.json:
        print(json.dumps(json_report(paths, options, plan, results, summary, recording, loaded.problems)))
    else:
        why = "--no-record" if recorder is None else "the replay session could not be written"
        print_summary(console_for(), paths, options, results, summary, recording, multi, why)
    if not_recorded:
        error(f"error: {not_recorded}")
    return ExitCode.OK if summary.failed == 0 and not not_recorded else ExitCode.FAILED
