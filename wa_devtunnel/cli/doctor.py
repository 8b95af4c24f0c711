"""`wa-devtunnel doctor`: renders the engine's checks, one line each, with the fix under what is not PASS."""

from __future__ import annotations

import argparse
import asyncio
import json
import logging
from collections.abc import Callable, Sequence
from dataclasses import replace
from typing import Any

from wa_devtunnel.cli.terminal_text import line, say_lines
from wa_devtunnel.engine.doctor.checks import gather
from wa_devtunnel.engine.doctor.report import CheckResult, Status
from wa_devtunnel.engine.doctor.run import run_doctor
from wa_devtunnel.engine.instance import read_instance

EXIT_OK, EXIT_FAILED = 0, 1
NAME_WIDTH = 24


def add_doctor_parser(commands: Any, add_common: Callable[[argparse.ArgumentParser], None]) -> None:
    """`doctor [--url URL] [--json]` next to the other subcommands."""
    doctor = commands.add_parser("doctor", help="check settings, tunnel and Meta's webhook configuration")
    add_common(doctor)
    doctor.add_argument("--url", help="public callback URL to test (default: the running wa-devtunnel's)")
    doctor.add_argument("--json", action="store_true", help="one JSON object on stdout, for scripts")


def format_report(results: Sequence[CheckResult]) -> list[str]:
    """`FAIL  verify token   ...` then `        fix: ...`, and a one-line summary.

    Details quote Meta's errors, the callback URL's answer and agent output: each line is escaped.
    """
    lines: list[str] = []
    for result in results:
        lines.append(f"{result.status.value:<4}  {result.name:<{NAME_WIDTH}}{result.detail}")
        if result.status is not Status.PASS and result.fix:
            lines.append(f"{'':6}{'':<{NAME_WIDTH}}fix: {result.fix}")
    counts = {status: sum(r.status is status for r in results) for status in Status}
    lines.append(", ".join(f"{counts[s]} {s.value}" for s in (Status.FAIL, Status.WARN, Status.PASS, Status.SKIP)))
    return [line(text) for text in lines]


def run_doctor_command(args: argparse.Namespace) -> int:
    """Exit 0 when nothing FAILs, 1 otherwise (a WARN is advice, not a failure)."""
    logging.getLogger("dotenv.main").setLevel(logging.ERROR)  # doctor reports unparsable lines itself
    flags = {k: getattr(args, k) for k in ("env_file", "recordings_dir") if getattr(args, k, None)}
    inp = gather(flags, args.url, None)
    inp = replace(inp, instance=read_instance(inp.settings.recordings_dir))
    results = asyncio.run(run_doctor(inp))
    failed = any(r.status is Status.FAIL for r in results)
    if args.json:
        print(json.dumps({"ok": not failed, "checks": [r.as_dict() for r in results]}, indent=2))
    else:
        say_lines(format_report(results))
    return EXIT_FAILED if failed else EXIT_OK
