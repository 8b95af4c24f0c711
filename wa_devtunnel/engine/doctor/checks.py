"""`doctor`: local checks that find why Meta says "the callback URL couldn't be validated", each with a fix."""

from __future__ import annotations

import asyncio
import os
import re
import ssl
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from wa_devtunnel.engine.doctor.report import CheckResult, DoctorInput, Status
from wa_devtunnel.engine.instance import RunningInstance
from wa_devtunnel.engine.tunnel.agent_env import agent_environment
from wa_devtunnel.engine.tunnel.agent_version import vet_agent
from wa_devtunnel.engine.tunnel.ngrok_errors import DOWNLOAD_URL
from wa_devtunnel.engine.tunnel.provider import TunnelError
from wa_devtunnel.settings import (
    ConfigError,
    Settings,
    load_settings,
    mask,
    read_environment,
    unparsed_env_lines,
)

URL_SAFE = re.compile(r"^[A-Za-z0-9._~-]+$")
APP_SECRET_SHAPE = re.compile(r"^[0-9a-f]{32}$")
MIN_TOKEN_LENGTH = 16
AUTHTOKEN_URL = "https://dashboard.ngrok.com/get-started/your-authtoken"


def env_file_problems(path: Path) -> tuple[str, ...]:
    """Lines python-dotenv would skip, by number and what is wrong; never a line's text (it may hold a secret)."""
    try:
        unparsed = unparsed_env_lines(path)
    except (OSError, UnicodeDecodeError) as exc:
        return (f"cannot read it: {exc}",)
    return tuple(f"line {number}: {problem}" for number, problem in unparsed)


def gather(
    flags: Mapping[str, Any],
    url: str | None,
    instance: RunningInstance | None,
    *,
    environ: Mapping[str, str] | None = None,
    cwd: Path | None = None,
    ssl_context: ssl.SSLContext | None = None,
) -> DoctorInput:
    """Load settings leniently: a bad value becomes a finding and its default is used for the rest.

    A line python-dotenv cannot parse is skipped as python-dotenv does (env_file_problems reports it), so
    the other lines' settings are still read and checked.
    """
    base = cwd or Path.cwd()
    process_env = dict(os.environ if environ is None else environ)
    env_file = Path(flags.get("env_file") or base / ".env")
    problems = env_file_problems(env_file) if env_file.is_file() else ()
    try:
        raw = read_environment(env_file, process_env)
    except ConfigError as exc:
        raw, problems = dict(process_env), (*problems, exc.message)
    flags = {k: v for k, v in flags.items() if k != "env_file" or env_file.is_file()}
    errors: list[ConfigError] = []
    blanked: dict[str, str] = {}
    settings = Settings(recordings_dir=Path(flags.get("recordings_dir") or base / "recordings"))
    for _ in range(12):
        try:
            settings = load_settings(flags, environ={**process_env, **blanked}, cwd=base, skip_unparsed_env_lines=True)
            break
        except ConfigError as exc:
            errors.append(exc)
            if exc.setting not in raw or exc.setting in blanked:
                break
            blanked[exc.setting] = ""
    return DoctorInput(settings, raw, env_file, problems, tuple(errors), url, instance, ssl_context)


def check_settings_file(inp: DoctorInput) -> CheckResult:
    """`.env` found and parsed, and every value valid."""
    name = "settings (.env)"
    others = [e for e in inp.config_errors if e.setting != "WHATSAPP_VERIFY_TOKEN"]
    if not inp.env_file.is_file():
        return CheckResult(
            name,
            Status.WARN,
            f"no {inp.env_file}: only the process environment is read",
            "`wa-devtunnel init` writes a commented .env",
        )
    if inp.env_problems:
        return CheckResult(
            name,
            Status.FAIL,
            f"{inp.env_file} {'; '.join(inp.env_problems)}",
            "write each line as NAME=value; quote values containing spaces or #",
        )
    if others:
        return CheckResult(
            name,
            Status.FAIL,
            "; ".join(str(e) for e in others),
            "correct the value(s) named above (each setting is explained in the .env `wa-devtunnel init` writes)",
        )
    return CheckResult(name, Status.PASS, f"{inp.env_file} parsed")


def check_verify_token(inp: DoctorInput) -> CheckResult:
    """Present, long, no surrounding whitespace, URL-safe: what Meta's dashboard and query strings need."""
    name = "verify token"
    raw = inp.environ.get("WHATSAPP_VERIFY_TOKEN", "")
    suggestion = "`wa-devtunnel token --write-env` writes a strong one to .env"
    if not raw:
        return _unset_verify_token(inp.settings, name, suggestion)
    if raw != raw.strip():
        return CheckResult(
            name,
            Status.FAIL,
            f"WHATSAPP_VERIFY_TOKEN {mask(raw.strip())} has leading/trailing whitespace: the handshake would fail",
            "remove the spaces around the value in .env (check the quotes)",
        )
    if len(raw) < MIN_TOKEN_LENGTH:
        return CheckResult(
            name, Status.WARN, f"only {len(raw)} characters: easy to guess", f"use {MIN_TOKEN_LENGTH}+: {suggestion}"
        )
    if not URL_SAFE.match(raw):
        odd = "".join(sorted({c for c in raw if not URL_SAFE.match(c)}))
        return CheckResult(
            name,
            Status.WARN,
            f"contains {odd!r}: Meta URL-encodes it and many servers decode it wrongly",
            f"use only letters, digits, '-', '_', '.', '~': {suggestion}",
        )
    return CheckResult(name, Status.PASS, f"set, {len(raw)} URL-safe characters ({mask(raw)})")


def _unset_verify_token(settings: Settings, name: str, suggestion: str) -> CheckResult:
    """No WHATSAPP_VERIFY_TOKEN: the accounts file's, the one kept for this project folder, or a temporary one."""
    if settings.accounts:
        return CheckResult(name, Status.PASS, f"from {settings.accounts_file} ({len(settings.accounts)})")
    if settings.verify_token_source == "project-state":
        return CheckResult(
            name,
            Status.PASS,
            f"WHATSAPP_VERIFY_TOKEN is not set: the token kept in {settings.state_path} "
            f"({mask(settings.verify_token)}) is used, the same at every start here "
            "(`wa-devtunnel token --write-env` puts it in .env)",
        )
    why = settings.state_warning or "the verify token is new for this run only"
    return CheckResult(name, Status.WARN, f"WHATSAPP_VERIFY_TOKEN is not set and none is kept here: {why}", suggestion)


def check_app_secret(inp: DoctorInput) -> CheckResult:
    """Signatures are only checked with the App Secret, and it has a recognisable shape."""
    name = "app secret"
    secret = inp.environ.get("WHATSAPP_APP_SECRET", "").strip()
    where = "App Dashboard > App settings > Basic > App secret (Show)"
    if not secret:
        return CheckResult(
            name,
            Status.WARN,
            "WHATSAPP_APP_SECRET is not set: X-Hub-Signature-256 is not checked",
            f"copy it from {where}",
        )
    if secret.startswith("EAA"):
        return CheckResult(
            name, Status.FAIL, f"{mask(secret)} is an access token, not the App Secret", f"copy the secret from {where}"
        )
    if not APP_SECRET_SHAPE.match(secret):
        return CheckResult(
            name,
            Status.FAIL,
            f"{mask(secret)} is not shaped like an App Secret (32 lowercase hex characters)",
            f"copy it again from {where}",
        )
    return CheckResult(name, Status.PASS, f"set, 32 hex characters ({mask(secret)})")


def check_ngrok_authtoken(inp: DoctorInput) -> CheckResult:
    """Without it there is no public URL, and Meta cannot reach a local one."""
    token = inp.environ.get("NGROK_AUTHTOKEN", "").strip()
    if not token:
        return CheckResult(
            "ngrok authtoken",
            Status.WARN,
            "NGROK_AUTHTOKEN is not set: local-only, Meta cannot reach the receiver",
            f"get one at {AUTHTOKEN_URL} and add NGROK_AUTHTOKEN=... to .env",
        )
    return CheckResult("ngrok authtoken", Status.PASS, f"set ({mask(token)})")


async def check_ngrok_binary(inp: DoctorInput) -> CheckResult:
    """The agent pyngrok runs is the real binary, answers `--version`, and is new enough for pyngrok 9 (3.30+)."""
    from pyngrok import conf

    name = "ngrok binary"
    configured = inp.environ.get("PYNGROK_NGROK_PATH", "").strip()
    path = configured or conf.DEFAULT_NGROK_PATH
    if not os.path.exists(path):
        if configured:
            return CheckResult(
                name,
                Status.FAIL,
                f"PYNGROK_NGROK_PATH={configured} does not exist",
                f"point it at the ngrok agent binary (pyngrok downloads it to {conf.DEFAULT_NGROK_PATH}; "
                f"or get ngrok from {DOWNLOAD_URL}), or remove it so pyngrok downloads one",
            )
        return CheckResult(
            name,
            Status.WARN,
            f"not installed yet at {path}: pyngrok downloads it on the first tunnelled run (needs internet)",
            f"offline? install ngrok ({DOWNLOAD_URL}) and set PYNGROK_NGROK_PATH",
        )
    try:
        version = await asyncio.to_thread(vet_agent, path, agent_environment(inp.environ), conf.DEFAULT_NGROK_PATH)
    except TunnelError as exc:
        return CheckResult(name, Status.FAIL, exc.summary, exc.advice)
    return CheckResult(name, Status.PASS, f"ngrok version {version.text} ({path})")
