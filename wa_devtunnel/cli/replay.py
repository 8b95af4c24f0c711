"""`wa-devtunnel replay` front end: turns flags into an engine replay and renders progress and results."""

from __future__ import annotations

import argparse
import asyncio
import json
import sys
import time
from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import Any, TextIO

from wa_devtunnel.cli.progress import TerminalBar
from wa_devtunnel.cli.terminal_text import line, say, say_lines
from wa_devtunnel.engine.instance import origin_key_for
from wa_devtunnel.engine.recording import SessionRecorder
from wa_devtunnel.engine.replay.plan import PlannedRequest, ReplayOptions, SignatureMode, plan_replay
from wa_devtunnel.engine.replay.send import ReplayNotRecorded, ReplayResult, ReplaySummary, send_plan, summarize
from wa_devtunnel.engine.replay.source import (
    REPLAY_SUFFIX,
    ReplayError,
    Selection,
    default_source,
    describe_selection,
    load_recordings,
    select,
)
from wa_devtunnel.settings import Settings, http_url

BODY_PREVIEW = 200
MAX_PROBLEMS_SHOWN = 10
SIGNATURE_NOTES = {
    SignatureMode.ORIGINAL: "Meta's original X-Hub-Signature-256, body byte for byte",
    SignatureMode.RESIGN: "re-signed with your App Secret",
    SignatureMode.BAD: "deliberately wrong (testing your backend's rejection path)",
}


def _values(raw: Iterable[str] | None) -> tuple[str, ...]:
    """Repeated flags and comma lists mean the same: `--type text,image` == `--type text --type image`."""
    return tuple(part.strip() for item in raw or () for part in item.split(",") if part.strip())


def selection_from_args(args: argparse.Namespace) -> Selection:
    """The selection flags, already parsed by argparse, as the engine's Selection."""
    return Selection(
        ids=_values(args.id),
        seqs=tuple(r for ranges in args.seq or () for r in ranges),
        last=args.last,
        fields=_values(args.field),
        types=_values(args.type),
        statuses=_values(args.status),
        signatures=_values(args.signature),
        origins=_values(args.origin),
        since=args.since,
        until=args.until,
        kind=args.kind,
    )


def options_from_args(settings: Settings, args: argparse.Namespace) -> ReplayOptions:
    """--to (or the forward target), signature mode, secret, the target's token, pacing."""
    if args.to:
        target = http_url(args.to, "--to")
    elif settings.forward_to:
        target = settings.forward_to
    else:
        raise ReplayError(
            "where to? pass --to URL (e.g. --to http://localhost:8000/webhook/whatsapp) "
            "or set WA_DEVTUNNEL_FORWARD_TO in .env"
        )
    mode = SignatureMode.RESIGN if args.resign else SignatureMode.BAD if args.bad_signature else SignatureMode.ORIGINAL
    return ReplayOptions(
        target_url=target,
        signature=mode,
        app_secret=settings.app_secret,
        verify_token=None if settings.verify_token_generated else settings.verify_token,
        concurrency=args.concurrency,
        rate=args.rate,
        timeout_s=args.timeout or settings.forward_timeout_s,
        origin_key=origin_key_for(settings.recordings_dir, target),
    )


def run_replay_command(settings: Settings, args: argparse.Namespace) -> int:
    """Load, select, plan; then print the plan (--dry-run) or send it and print the summary."""
    options = options_from_args(settings, args)
    paths = [_session_path(p, settings.recordings_dir) for p in args.recordings]
    paths = paths or [default_source(settings.recordings_dir)]
    loaded = load_recordings(paths)
    warnings = [f"warning: {problem}" for problem in loaded.problems[:MAX_PROBLEMS_SHOWN]]
    if len(loaded.problems) > MAX_PROBLEMS_SHOWN:
        warnings.append(f"warning: ... and {len(loaded.problems) - MAX_PROBLEMS_SHOWN} more")
    if warnings:
        say_lines(warnings, sys.stderr)
    selection = selection_from_args(args)
    chosen = select(loaded.exchanges, selection)
    if not chosen:
        names = ", ".join(str(p) for p in paths)
        raise ReplayError(
            f"no exchanges match ({describe_selection(selection)}) in {names}: "
            f"{len(loaded.exchanges)} replayable exchanges there (try --kind all, or fewer filters)"
        )
    plan = plan_replay(chosen, options)
    multi = len(paths) > 1
    if args.dry_run:
        if args.json:
            print(json.dumps(_json_report(paths, options, plan, None, None, None, loaded.problems)))
        else:
            say_lines(dry_run_lines(plan, options, multi))
        return 0
    recorder = (
        SessionRecorder(settings.recordings_dir, suffix=REPLAY_SUFFIX, max_bytes=settings.max_session_bytes)
        if settings.record
        else None
    )
    progress = ProgressLine(sys.stderr if sys.stderr.isatty() else None, len(plan))
    started = time.perf_counter()
    not_recorded = ""
    try:
        results = asyncio.run(send_plan(plan, options, recorder, progress.update))
    except ReplayNotRecorded as exc:
        results, not_recorded = exc.results, str(exc)
    except KeyboardInterrupt:
        print(f"\ninterrupted: {progress.done} of {len(plan)} requests answered", file=sys.stderr)
        return 1
    finally:
        progress.clear()
        if recorder is not None:
            recorder.close()
            if recorder.path.stat().st_size == 0:  # nothing was sent: leave no empty session behind
                recorder.path.unlink()
    summary = summarize(results, time.perf_counter() - started)
    recording = recorder.path if recorder is not None else None
    if args.json:
        print(json.dumps(_json_report(paths, options, plan, results, summary, recording, loaded.problems)))
    else:
        say_lines(summary_lines(paths, options, results, summary, recording, multi))
    if not_recorded:
        say(line(f"error: {not_recorded}"), sys.stderr)
    return 0 if summary.failed == 0 and not not_recorded else 1


def _session_path(name: str, recordings_dir: Path) -> Path:
    """A bare name as `wa-devtunnel sessions` lists it is looked up in the recordings directory."""
    path = Path(name)
    in_dir = recordings_dir / name
    return in_dir if not path.exists() and path.parent == Path(".") and in_dir.exists() else path


class ProgressLine:
    """Counts answers; on a terminal also draws the shared progress bar with the rate."""

    def __init__(self, stream: TextIO | None, total: int) -> None:
        self.total, self.done = total, 0
        self._bar = TerminalBar(stream, "replaying", 24, show_rate=True) if stream is not None else None

    def update(self, _result: ReplayResult) -> None:
        self.done += 1
        if self._bar is not None:
            self._bar.draw(self.done, self.total, newline_when_done=False)

    def clear(self) -> None:
        if self._bar is not None:
            self._bar.clear()


def _plural(count: int, noun: str) -> str:
    return f"{count} {noun}" if count == 1 else f"{count} {noun}s"


def _signature_line(plan: Sequence[PlannedRequest], options: ReplayOptions) -> list[str]:
    """Say how events are signed and that handshakes use the target's token; skip what does not apply."""
    lines = []
    if any(p.challenge is None for p in plan):
        lines.append(f"Signatures: {SIGNATURE_NOTES[options.signature]}")
    if any(p.challenge is not None for p in plan):
        lines.append("Handshakes: a fresh hub.challenge each, with the target's verify token")
    return lines


def _where(planned: PlannedRequest, multi: bool) -> str:
    seq = str(planned.source.view.seq)
    return f"{planned.source.session.name}:{seq}" if multi else seq


def _headline(planned: PlannedRequest) -> str:
    view = planned.source.view
    return f"handshake (recorded: {view.headline})" if view.kind == "verify" else view.headline


def _table(rows: Sequence[Sequence[str]], right: Sequence[int] = ()) -> list[str]:
    """Aligned columns; cells are escaped first (headlines and answers come from requests), so widths hold."""
    rows = [[line(cell) for cell in row] for row in rows]
    widths = [max(len(row[col]) for row in rows) for col in range(len(rows[0]))]
    return [
        "  ".join(
            c.rjust(w) if i in right else c.ljust(w) for i, (c, w) in enumerate(zip(row, widths, strict=True))
        ).rstrip()
        for row in rows
    ]


def dry_run_lines(plan: Sequence[PlannedRequest], options: ReplayOptions, multi: bool) -> list[str]:
    """What would be sent, one row per request; nothing is sent. Every line terminal-safe."""
    lines = [f"Dry run: {_plural(len(plan), 'request')} would be sent to {options.target_url} (nothing sent)"]
    lines += _signature_line(plan, options)
    rows = [("SEQ", "METHOD", "KIND", "SIGNATURE", "URL", "HEADLINE")]
    rows += [
        (_where(p, multi), p.method, p.source.view.kind, p.signature, p.url(options.target_url), _headline(p))
        for p in plan
    ]
    return [line(text) for text in (*lines, "", *_table(rows, right=(0,)))]


def _preview(text: str) -> str:
    flat = " ".join(text.split())
    return flat if len(flat) <= BODY_PREVIEW else flat[: BODY_PREVIEW - 3] + "..."


def summary_lines(
    paths: Sequence[Path],
    options: ReplayOptions,
    results: Sequence[ReplayResult],
    summary: ReplaySummary,
    recording: Path | None,
    multi: bool,
) -> list[str]:
    """Status counts, latency percentiles, then every failure with its seq and what the target said (escaped)."""
    sources = ", ".join(p.name for p in paths)
    lines = [
        f"Replayed {_plural(summary.total, 'exchange')} from {sources} to {options.target_url} "
        f"in {summary.seconds:.2f} s ({summary.rate:,.1f}/s)",
        *_signature_line([r.planned for r in results], options),
        "",
        *_table([("STATUS", "COUNT"), *((s, str(n)) for s, n in summary.statuses.items())], right=(1,)),
        "",
        f"Latency: p50 {summary.p50_ms:.1f} ms   p95 {summary.p95_ms:.1f} ms   max {summary.max_ms:.1f} ms",
        f"Result:  {summary.ok} ok, {summary.failed} failed",
    ]
    failed = [r for r in results if not r.ok]
    if failed:
        rows = [("SEQ", "KIND", "STATUS", "ANSWER")]
        rows += [
            (
                _where(r.planned, multi),
                r.planned.source.view.kind,
                str(r.answer.status) if r.answer.status is not None else "error",
                _preview(r.answer.error or _failure_text(r)),
            )
            for r in failed
        ]
        lines += ["", "Failed:", *(f"  {line}" for line in _table(rows, right=(0, 2)))]
    lines.append("")
    lines.append(f"Recorded to {_shown(recording)}" if recording else "Not recorded (--no-record)")
    return [line(text) for text in lines]


def _shown(path: Path) -> Path:
    """Relative to the current directory when inside it: shorter, and what the developer typed."""
    try:
        return path.resolve().relative_to(Path.cwd().resolve())
    except ValueError:
        return path


def _failure_text(result: ReplayResult) -> str:
    body = result.body_text
    if result.planned.challenge is not None and result.answer.status == 200:
        return f"{result.detail}: {body!r}"
    return body or result.detail


def _source_json(planned: PlannedRequest) -> dict[str, Any]:
    view = planned.source.view
    return {"session": planned.source.session.name, "id": view.id, "seq": view.seq, "kind": view.kind}


def _json_report(
    paths: Sequence[Path],
    options: ReplayOptions,
    plan: Sequence[PlannedRequest],
    results: Sequence[ReplayResult] | None,
    summary: ReplaySummary | None,
    recording: Path | None,
    problems: Sequence[str],
) -> dict[str, Any]:
    """One object for scripts: the plan, each result in recording order, the summary."""
    report: dict[str, Any] = {
        "target": options.target_url,
        "sources": [str(p) for p in paths],
        "signature": options.signature.value,
        "dry_run": results is None,
        "plan": [
            _source_json(p)
            | {"method": p.method, "url": p.url(options.target_url), "signature": p.signature}
            | {"headline": _headline(p), "body_bytes": len(p.body)}
            for p in plan
        ],
        "results": None,
        "summary": None,
        "recording": str(recording) if recording else None,
        "problems": list(problems),
    }
    if results is not None:
        report["results"] = [
            _source_json(r.planned)
            | {"ok": r.ok, "status": r.answer.status, "detail": r.detail, "error": r.answer.error}
            | {"elapsed_ms": round(r.answer.elapsed_ms, 3), "body": r.body_text[:4096]}
            for r in results
        ]
    if summary is not None:
        latency = {"p50": summary.p50_ms, "p95": summary.p95_ms, "max": summary.max_ms}
        report["summary"] = {
            "total": summary.total,
            "ok": summary.ok,
            "failed": summary.failed,
            "statuses": dict(summary.statuses),
            "latency_ms": {key: round(value, 3) for key, value in latency.items()},
            "seconds": round(summary.seconds, 3),
        }
    return report
