"""`wa-devtunnel token`: a strong verify token, optionally saved in .env without touching anything else."""

from __future__ import annotations

import argparse
import contextlib
import os
import stat
import sys
import tempfile
from collections.abc import Callable
from pathlib import Path

from wa_devtunnel.cli.env_file import EnvEdit, EnvEditError, current_value, new_env_text, set_value
from wa_devtunnel.cli.options import ExitCode, Subparsers, UsageError
from wa_devtunnel.cli.output import error
from wa_devtunnel.settings import Settings, generate_verify_token, mask

NAME = "token"
READS_SETTINGS = False  # it must work while .env is missing or broken: writing one is its job
TOKEN_VARIABLE = "WHATSAPP_VERIFY_TOKEN"
EXAMPLE_NAME = ".env.example"
PRIVATE_MODE = 0o600  # .env holds the app secret and tokens: only its owner may read it
DASHBOARD_HINT = "Paste it into App Dashboard > WhatsApp > Configuration > Verify token (the same value)."


def register(subparsers: Subparsers) -> None:
    """`token [--write-env] [--force] [--env-file PATH]`."""
    parser = subparsers.add_parser(
        NAME,
        help="print a strong verify token; --write-env saves it in .env",
        description=f"Print a strong verify token. With --write-env, set {TOKEN_VARIABLE} in .env "
        f"(created from {EXAMPLE_NAME} when missing) and leave every other line as it is.",
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


def _example_text(env_path: Path) -> tuple[str | None, Path | None]:
    """The .env.example beside the target, else in the current directory; None when neither exists."""
    for candidate in (env_path.parent / EXAMPLE_NAME, Path.cwd() / EXAMPLE_NAME):
        if candidate.is_file():
            return candidate.read_bytes().decode("utf-8"), candidate
    return None, None


def _create_private(path: Path, text: str) -> None:
    """A new file that only its owner can read (it will hold secrets), never over an existing one."""
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, PRIVATE_MODE)
    with os.fdopen(fd, "wb") as handle:
        os.fchmod(handle.fileno(), PRIVATE_MODE)
        handle.write(text.encode("utf-8"))


def _replace_atomically(path: Path, text: str) -> int:
    """Rename a new copy over it (a crash never leaves half a .env), 0600 as it holds secrets; returns the old mode."""
    target = path.resolve()
    info = target.stat()
    fd, temp = tempfile.mkstemp(prefix=".env.", dir=target.parent)
    try:
        with os.fdopen(fd, "wb") as handle:
            os.fchmod(handle.fileno(), PRIVATE_MODE)
            if (info.st_uid, info.st_gid) != (os.geteuid(), os.getegid()):
                with contextlib.suppress(OSError):  # only root may give a file away; others keep their own
                    os.fchown(handle.fileno(), info.st_uid, info.st_gid)
            handle.write(text.encode("utf-8"))
        os.replace(temp, target)
    except BaseException:
        with contextlib.suppress(OSError):
            os.unlink(temp)
        raise
    return stat.S_IMODE(info.st_mode)


def write_token(
    env_path: Path, token: str, *, force: bool, ask: Callable[[str], bool | None] = _ask_on_terminal
) -> tuple[ExitCode, str]:
    """Put the token in the file; return (exit code, what happened) after asking before a replace."""
    if not env_path.exists():
        example, source = _example_text(env_path)
        edit = set_value(new_env_text(example), TOKEN_VARIABLE, token)
        _create_private(env_path, edit.text)
        origin = f"from {source}" if source else "with a minimal header"
        return ExitCode.OK, f"Created {env_path} {origin} (mode 0600) and set {TOKEN_VARIABLE}."
    try:
        text = env_path.read_bytes().decode("utf-8")
    except UnicodeDecodeError:
        return ExitCode.FAILED, f"error: {env_path} is not UTF-8 text; set {TOKEN_VARIABLE} in it by hand."
    existing = current_value(text, TOKEN_VARIABLE)
    if existing and not force:
        question = (
            f"{env_path} already sets {TOKEN_VARIABLE} ({mask(existing)}). Replace it? "
            "Meta's dashboard must then get the new token too. [y/N] "
        )
        answer = ask(question)
        if answer is None:
            return ExitCode.FAILED, (
                f"error: {env_path} already sets {TOKEN_VARIABLE}; not replacing it without a terminal "
                "to ask on. Run again with --force to replace it."
            )
        if not answer:
            return ExitCode.FAILED, f"Left {env_path} unchanged."
    edit: EnvEdit = set_value(text, TOKEN_VARIABLE, token)
    old_mode = _replace_atomically(env_path, edit.text)
    done = {"filled": "Set", "replaced": "Replaced", "appended": "Added"}[edit.action]
    tightened = f" Its mode is now 0600 (was {old_mode:04o}): it holds secrets." if old_mode != PRIVATE_MODE else ""
    return ExitCode.OK, f"{done} {TOKEN_VARIABLE} in {env_path}.{tightened}"


def run(args: argparse.Namespace, settings: Settings | None) -> ExitCode:
    """Print a new token (stdout, alone, for scripts); with --write-env save it first (settings: unused)."""
    if (args.force or args.env_file) and not args.write_env:
        raise UsageError("wa-devtunnel token: --force and --env-file only apply with --write-env")
    token = generate_verify_token()
    if not args.write_env:
        print(token)
        print(f"Save it with `wa-devtunnel token --write-env`. {DASHBOARD_HINT}", file=sys.stderr)
        return ExitCode.OK
    env_path = args.env_file or Path(".env")
    try:
        code, message = write_token(env_path, token, force=args.force)
    except (OSError, EnvEditError, UnicodeDecodeError) as exc:
        reason = exc.strerror if isinstance(exc, OSError) and exc.strerror else str(exc)
        error(f"error: cannot write {TOKEN_VARIABLE} to {env_path}: {reason}")
        return ExitCode.FAILED
    if code != ExitCode.OK:
        print(message, file=sys.stderr)
        return code
    print(token)
    print(message, file=sys.stderr)
    print(f"{DASHBOARD_HINT} wa-devtunnel uses it from its next start.", file=sys.stderr)
    if os.environ.get(TOKEN_VARIABLE):
        print(
            f"note: {TOKEN_VARIABLE} is also set in your environment, which wins over {env_path}; unset it.",
            file=sys.stderr,
        )
    return ExitCode.OK
