"""What `replay` prints: the dry-run plan, the summary with its status table and failures, the JSON object.

Headlines, answers and errors come from requests and from the target: every cell goes through
`output` (escaped, never markup); piped output is plain text at natural width.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

from rich.console import Console
from rich.text import Text

from wa_devtunnel.cli.options import shown_path
from wa_devtunnel.cli.output import add_row, echo, new_table, print_table, status_style, styled
from wa_devtunnel.engine.replay.plan import FORGED, PlannedRequest, ReplayOptions, SignatureMode
from wa_devtunnel.engine.replay.send import ReplayResult, ReplaySummary

BODY_PREVIEW = 200
ID_SHOWN = 12  # enough for `replay --id`
SIGNATURE_NOTES = {
    SignatureMode.ORIGINAL: "Meta's original X-Hub-Signature-256, body byte for byte",
    SignatureMode.RESIGN: "re-signed with your App Secret",
    SignatureMode.BAD: "deliberately wrong (testing your backend's rejection path)",
}


def _plural(count: int, noun: str) -> str:
    return f"{count} {noun}" if count == 1 else f"{count} {noun}s"


def _signature_lines(plan: Sequence[PlannedRequest], options: ReplayOptions) -> list[str]:
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


def print_dry_run(console: Console, plan: Sequence[PlannedRequest], options: ReplayOptions, multi: bool) -> None:
    """What would be sent, one row per request; nothing is sent."""
    echo(console, f"Dry run: {_plural(len(plan), 'request')} would be sent to {options.target_url} (nothing sent)")
    for text in _signature_lines(plan, options):
        echo(console, text)
    echo(console)
    table = new_table(("SEQ", "METHOD", "KIND", "SIGNATURE", "URL", "HEADLINE"), right=(0,), wrap=5)
    for p in plan:
        add_row(
            table,
            (_where(p, multi), p.method, p.source.view.kind, p.signature, p.url(options.target_url), _headline(p)),
        )
    print_table(console, table)


def _preview(text: str) -> str:
    flat = " ".join(text.split())
    return flat if len(flat) <= BODY_PREVIEW else flat[: BODY_PREVIEW - 3] + "..."


def _result_text(summary: ReplaySummary) -> Text:
    """`Result:  5 ok, 1 failed`, the failures in red; with --bad-signature, how many forgeries were refused."""
    if summary.forged:
        return _forged_result(summary)
    return Text.assemble(
        "Result:  ",
        (f"{summary.ok} ok", "green" if summary.ok else ""),
        ", ",
        (f"{summary.failed} failed", "bold red" if summary.failed else ""),
    )


def _forged_result(summary: ReplaySummary) -> Text:
    """`Result:  2 forged requests, all rejected (401)`, or how many were NOT rejected, in red."""
    statuses = ", ".join(summary.rejected)
    rejected = sum(summary.rejected.values())
    text = Text.assemble("Result:  ", _plural(summary.forged, "forged request"), ", ")
    if not summary.not_rejected:
        word = "rejected" if summary.forged == 1 else "all rejected"
        text.append(f"{word} ({statuses})", "green")
    else:
        if rejected:
            text.append(f"{rejected} rejected ({statuses}), ")
        text.append(f"{summary.not_rejected} NOT rejected", "bold red")
    handshakes = summary.total - summary.forged
    if handshakes:
        failed = summary.failed - summary.not_rejected
        text.append(f"; {_plural(handshakes, 'handshake')}: {handshakes - failed} ok, {failed} failed")
    return text


def print_summary(
    console: Console,
    paths: Sequence[Path],
    options: ReplayOptions,
    results: Sequence[ReplayResult],
    summary: ReplaySummary,
    recording: Path | None,
    multi: bool,
    not_recorded: str = "--no-record",
) -> None:
    """Status counts, latency percentiles, then every failure with its seq and what the target said."""
    sources = ", ".join(p.name for p in paths)
    echo(
        console,
        f"Replayed {_plural(summary.total, 'exchange')} from {sources} to {options.target_url} "
        f"in {summary.seconds:.2f} s ({summary.rate:,.1f}/s)",
    )
    for text in _signature_lines([r.planned for r in results], options):
        echo(console, text)
    echo(console)
    statuses = new_table(("STATUS", "COUNT"), right=(1,))
    for status, count in summary.statuses.items():
        add_row(statuses, (styled(status, status_style(status)), str(count)))
    print_table(console, statuses)
    echo(console)
    echo(console, f"Latency: p50 {summary.p50_ms:.1f} ms   p95 {summary.p95_ms:.1f} ms   max {summary.max_ms:.1f} ms")
    echo(console, _result_text(summary))
    failed = [r for r in results if not r.ok]
    if failed:
        table = new_table(("SEQ", "ID", "KIND", "STATUS", "ANSWER"), right=(0, 3), wrap=4)
        for r in failed:
            status = str(r.answer.status) if r.answer.status is not None else "error"
            answer = _preview(r.answer.error or _failure_text(r))
            view = r.planned.source.view
            add_row(table, (_where(r.planned, multi), view.id[:ID_SHOWN], view.kind, styled(status, "red"), answer))
        echo(console)
        echo(console, "Not rejected (a wrong signature must be refused):" if summary.forged else "Failed:")
        print_table(console, table, indent=2)
    echo(console)
    echo(console, f"Recorded to {shown_path(recording)}" if recording else f"Not recorded ({not_recorded})")


def _failure_text(result: ReplayResult) -> str:
    body = result.body_text
    if result.planned.signature == FORGED and result.answer.status is not None:
        return f"{result.detail}: {body}" if body else result.detail
    if result.planned.challenge is not None and result.answer.status == 200:
        return f"{result.detail}: {body!r}"
    return body or result.detail


def _source_json(planned: PlannedRequest) -> dict[str, Any]:
    view = planned.source.view
    return {"session": planned.source.session.name, "id": view.id, "seq": view.seq, "kind": view.kind}


def json_report(
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
        if summary.forged:
            rejected = {"sent": summary.forged, "rejected": dict(summary.rejected)}
            report["summary"]["forged"] = rejected | {"not_rejected": summary.not_rejected}
    return report
