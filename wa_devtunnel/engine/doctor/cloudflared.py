"""`doctor`'s cloudflared check: with --tunnel cloudflared, the binary is there, answers `--version`, and is current."""

from __future__ import annotations

import asyncio
import re
from datetime import date

from wa_devtunnel.engine.doctor.report import CheckResult, DoctorInput, Status
from wa_devtunnel.engine.tunnel.agent_env import agent_environment
from wa_devtunnel.engine.tunnel.cloudflared import find_cloudflared
from wa_devtunnel.engine.tunnel.cloudflared_log import INSTALL_URL
from wa_devtunnel.engine.tunnel.provider import TunnelError
from wa_devtunnel.rules.untrusted import one_line

NAME = "cloudflared"
VERSION_TIMEOUT_S = 10.0
# cloudflared versions are dated (YEAR.MONTH.PATCH); Cloudflare supports releases for about a year.
SUPPORTED_MONTHS = 12
_VERSION = re.compile(r"cloudflared version (?P<year>\d{4})\.(?P<month>\d{1,2})\.(?P<patch>\d+)")


async def _version_output(path: str, inp: DoctorInput) -> tuple[int | None, str]:
    """The exit code and the words of `cloudflared --version` (run with only the allowlisted environment)."""
    try:
        process = await asyncio.create_subprocess_exec(
            path,
            "--version",
            stdin=asyncio.subprocess.DEVNULL,
            stdout=asyncio.subprocess.PIPE,
            stderr=asyncio.subprocess.STDOUT,
            env=agent_environment(inp.environ),
        )
    except OSError as exc:
        return None, exc.strerror or str(exc)
    try:
        output, _ = await asyncio.wait_for(process.communicate(), VERSION_TIMEOUT_S)
    except TimeoutError:
        process.kill()
        await process.wait()
        return None, f"no answer within {VERSION_TIMEOUT_S:g} s"
    return process.returncode, " ".join(output.decode(errors="replace").split())


def months_old(year: int, month: int, today: date) -> int:
    """How many months ago a YEAR.MONTH release came out."""
    return (today.year - year) * 12 + today.month - month


async def check_cloudflared(inp: DoctorInput, today: date | None = None) -> CheckResult:
    """The cloudflared that --tunnel cloudflared runs exists, says its version, and is not over a year old."""
    if inp.settings.tunnel != "cloudflared":
        return CheckResult(NAME, Status.SKIP, f"not used (tunnel: {inp.settings.tunnel})")
    try:
        path = find_cloudflared(inp.settings.cloudflared_path, inp.environ.get("PATH"))
    except TunnelError as exc:
        return CheckResult(NAME, Status.FAIL, exc.summary, exc.advice)
    code, words = await _version_output(path, inp)
    shown = one_line(words, 160)
    version = _VERSION.search(words)
    if code != 0 or version is None:
        return CheckResult(
            NAME,
            Status.FAIL,
            f"{path} --version did not answer as cloudflared does: {shown}",
            f"reinstall it ({INSTALL_URL})",
        )
    number = version.group(0).removeprefix("cloudflared version ")
    age = months_old(int(version["year"]), int(version["month"]), today or date.today())
    if age > SUPPORTED_MONTHS:
        return CheckResult(
            NAME,
            Status.WARN,
            f"cloudflared {number} ({path}) is {age} months old: Cloudflare supports releases for about a year, "
            "and quick tunnels may stop working with older ones",
            f"update cloudflared ({INSTALL_URL})",
        )
    return CheckResult(NAME, Status.PASS, f"cloudflared version {number} ({path})")
