"""`wa-devtunnel token`: a strong verify token, optionally saved in .env without touching anything else."""

from __future__ import annotations

import argparse
import os
import sys
from collections.abc import Callable
from pathlib import Path
from typing import NamedTuple

from wa_devtunnel.cli.env_file import EXAMPLE_NAME, EnvEditError, current_value, save_value
from wa_devtunnel.cli.options import ExitCode, Subparsers, UsageError
from wa_devtunnel.cli.output import error
from wa_devtunnel.project_state import read_state, state_directory, state_file
from wa_devtunnel.settings import VERIFY_TOKEN_VARIABLE, Settings, generate_verify_token, mask

NAME = "token"
READS_SETTINGS = False  # it must work while .env is missing or broken: writing one is its job
TOKEN_VARIABLE = VERIFY_TOKEN_VARIABLE
DASHBOARD_HINT = "Paste it into App Dashboard > WhatsApp > Configuration > Verify token (the same value)."
KEPT_HINT = "If Meta's dashboard already has this token, nothing changes there; else paste it there (the same value)."


class Written(NamedTuple):
    """What `--write-env` did: exit code, words for stderr, the token written (None: none), the kept one?"""

    code: ExitCode
    message: str
    token: str | None = None
    kept: bool = False


def register(subparsers: Subparsers) -> None:
    """`token [--write-env] [--force] [--env-file PATH]`."""
    parser = subparsers.add_parser(
        NAME,
        help="print a strong verify token; --write-env saves the project's token in .env",
        description=f"Print a new strong verify token. With --write-env, set {TOKEN_VARIABLE} in .env "
        f"(created from {EXAMPLE_NAME} when missing) and leave every other line as it is: the token "
        "wa-devtunnel already keeps for this project when there is one, else a new one.",
    )
    parser.add_argument("--write-env", action="store_true", help=f"set {TOKEN_VARIABLE} in the .env file")
    parser.add_argument("--force", action="store_true", help="with --write-env: replace a token without asking")
    parser.add_argument("--env-file", type=Path, help="with --write-env: the file to edit (default ./.env)")


def _ask_on_terminal(question: str) -> bool | None:
    """y/N on the terminal; None when there is no terminal to ask on (scripts, CI)."""
    if not sys.stdin or not sys.stdin.isatty():
        return None
    print(question, end="", file=sys.stderr, flush=True)
    answer = sys.stdin.readline()
    return answer.strip().lower() in ("y", "yes")


def kept_token(env_path: Path) -> tuple[str | None, Path]:
    """The verify token the project state beside this .env keeps (read only: never created here)."""
    directory = state_directory(env_path.parent)
    found = read_state(directory).state
    return (found.verify_token if found else None), state_file(directory)


def write_token(env_path: Path, *, force: bool, ask: Callable[[str], bool | None] = _ask_on_terminal) -> Written:
    """Put a token in the file, asking before a replace.

    The token is the project's kept one when the file has none (Meta's dashboard may have it already),
    a new one when an existing token is replaced (after asking, or with --force).
    """
    existing = None
    if env_path.exists():
        try:
            existing = current_value(env_path.read_bytes().decode("utf-8"), TOKEN_VARIABLE)
        except UnicodeDecodeError:
            return Written(ExitCode.FAILED, f"error: {env_path} is not UTF-8 text; set {TOKEN_VARIABLE} in it by hand.")
    if existing and not force:
        question = (
            f"{env_path} already sets {TOKEN_VARIABLE} ({mask(existing)}). Replace it? "
            "Meta's dashboard must then get the new token too. [y/N] "
        )
        answer = ask(question)
        if answer is None:
            return Written(
                ExitCode.FAILED,
                f"error: {env_path} already sets {TOKEN_VARIABLE}; not replacing it without a terminal "
                "to ask on. Run again with --force to replace it.",
            )
        if not answer:  # a "no" is an answer, not a failure
            return Written(ExitCode.OK, f"Left {env_path} unchanged.")
    kept, where = (None, None) if existing else kept_token(env_path)
    token = kept or generate_verify_token()
    message = save_value(env_path, TOKEN_VARIABLE, token)
    if kept:
        message += f" It is the verify token wa-devtunnel kept for this project ({where})."
    return Written(ExitCode.OK, message, token, kept=bool(kept))


def current_value_of(env_path: Path) -> str | None:
    """The token a .env sets ("" when empty, None when it sets none or cannot be read)."""
    try:
        return current_value(env_path.read_bytes().decode("utf-8"), TOKEN_VARIABLE)
    except (OSError, UnicodeDecodeError):
        return None


def run(args: argparse.Namespace, settings: Settings | None) -> ExitCode:
    """Print a new token (stdout, alone, for scripts); with --write-env save the project's (settings: unused)."""
    if (args.force or args.env_file) and not args.write_env:
        raise UsageError("wa-devtunnel token: --force and --env-file only apply with --write-env")
    if not args.write_env:
        print(generate_verify_token())
        print(
            "A new token, saved nowhere (for a script, or another app). To keep the token wa-devtunnel uses in "
            ".env: `wa-devtunnel token --write-env`.",
            file=sys.stderr,
        )
        kept, where = kept_token(Path(".env"))
        if kept and not current_value_of(Path(".env")) and not os.environ.get(TOKEN_VARIABLE):
            print(
                f"note: wa-devtunnel uses this project's kept verify token {mask(kept)} ({where}), not this one; "
                "`wa-devtunnel token --write-env` saves that one in .env.",
                file=sys.stderr,
            )
        return ExitCode.OK
    env_path = args.env_file or Path(".env")
    try:
        written = write_token(env_path, force=args.force)
    except (OSError, EnvEditError, UnicodeDecodeError) as exc:
        reason = exc.strerror if isinstance(exc, OSError) and exc.strerror else str(exc)
        error(f"error: cannot write {TOKEN_VARIABLE} to {env_path}: {reason}")
        return ExitCode.FAILED
    if written.token is None:
        print(written.message, file=sys.stderr)
        return written.code
    print(written.token)
    print(written.message, file=sys.stderr)
    print(KEPT_HINT if written.kept else f"{DASHBOARD_HINT} wa-devtunnel uses it from its next start.", file=sys.stderr)
    if os.environ.get(TOKEN_VARIABLE):
        print(
            f"note: {TOKEN_VARIABLE} is also set in your environment, which wins over {env_path}; unset it.",
            file=sys.stderr,
        )
    return ExitCode.OK

