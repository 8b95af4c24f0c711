"""`wa-devtunnel doctor`: renders the engine's checks, one line each, with the fix under what is not PASS."""

from __future__ import annotations

import argparse
import asyncio
import json
import logging
from collections.abc import Sequence
from dataclasses import replace

from rich.text import Text

from wa_devtunnel.cli.options import ExitCode, Subparsers, add_common
from wa_devtunnel.cli.output import console_for, echo
from wa_devtunnel.cli.terminal_text import line
from wa_devtunnel.engine.doctor.checks import gather
from wa_devtunnel.engine.doctor.report import CheckResult, Status
from wa_devtunnel.engine.doctor.run import run_doctor
from wa_devtunnel.engine.instance import read_instance
from wa_devtunnel.settings import TUNNEL_PROVIDERS, Settings

NAME = "doctor"
READS_SETTINGS = False  # a broken .env is what it diagnoses: it reads settings leniently itself
NAME_WIDTH = 24
STATUS_STYLES = {Status.PASS: "green", Status.WARN: "yellow", Status.FAIL: "bold red", Status.SKIP: "dim"}


def register(subparsers: Subparsers) -> None:
    """`doctor [--url URL] [--json]` next to the other subcommands."""
    doctor = subparsers.add_parser(NAME, help="check settings, tunnel and Meta's webhook configuration")
    add_common(doctor)
    doctor.add_argument(
        "--url",
        help="callback URL to send Meta's handshake to (default: the running wa-devtunnel's public one); "
        "a local or plain-http URL is judged as one Meta cannot reach",
    )
    doctor.add_argument("--json", action="store_true", help="one JSON object on stdout, for scripts")
    doctor.add_argument(
        "--tunnel", choices=TUNNEL_PROVIDERS, help="the tunnel you run with (checks its agent; default: from settings)"
    )


def format_report(results: Sequence[CheckResult]) -> list[Text]:
    """`FAIL  verify token   ...` then `        fix: ...`, and a one-line summary; verdicts in colour.

    Details quote Meta's errors, the callback URL's answer and agent output: each line is escaped.
    """
    lines: list[Text] = []
    for result in results:
        status = (f"{result.status.value:<4}", STATUS_STYLES[result.status])
        lines.append(Text.assemble(status, line(f"  {result.name:<{NAME_WIDTH}}{result.detail}")))
        if result.status is not Status.PASS and result.fix:
            lines.append(Text(line(f"{'':6}{'':<{NAME_WIDTH}}fix: {result.fix}")))
    counts = {status: sum(r.status is status for r in results) for status in Status}
    summary = Text()
    for index, status in enumerate((Status.FAIL, Status.WARN, Status.PASS, Status.SKIP)):
        summary.append(", " if index else "")
        summary.append(f"{counts[status]} {status.value}", STATUS_STYLES[status] if counts[status] else "")
    lines.append(summary)
    return lines


def run(args: argparse.Namespace, settings: Settings | None) -> ExitCode:
    """Exit 0 when nothing FAILs, 1 otherwise (a WARN is advice, not a failure); settings: unused."""
    logging.getLogger("dotenv.main").setLevel(logging.ERROR)  # doctor reports unparsable lines itself
    flags = {k: getattr(args, k) for k in ("env_file", "recordings_dir", "tunnel") if getattr(args, k, None)}
    inp = gather(flags, args.url, None)
    inp = replace(inp, instance=read_instance(inp.settings.recordings_dir))
    results = asyncio.run(run_doctor(inp))
    failed = any(r.status is Status.FAIL for r in results)
    if args.json:
        print(json.dumps({"ok": not failed, "checks": [r.as_dict() for r in results]}, indent=2))
    else:
        out = console_for()
        for text in format_report(results):
            echo(out, text)
    return ExitCode.FAILED if failed else ExitCode.OK
