"""At start-up, offer once to put a verify token wa-devtunnel made up into .env, so it never changes.

Asked only with a person at a terminal (stdin and stderr both terminals): scripts, CI and the TUI's
engine child never see a question. A "no" is remembered in the project state file and never asked
again; `wa-devtunnel token --write-env` still does it later.
"""

from __future__ import annotations

import sys
from dataclasses import replace
from pathlib import Path
from typing import TextIO

from wa_devtunnel.cli.env_file import EnvEditError, current_value, save_value
from wa_devtunnel.cli.output import is_terminal
from wa_devtunnel.cli.terminal_text import line, shown_path
from wa_devtunnel.project_state import ProjectState, StateError, read_state, save_state
from wa_devtunnel.settings import VERIFY_TOKEN_VARIABLE, Settings

QUESTION = "so it never changes? [Y/n] "
MADE_UP = ("project-state", "generated")  # the sources where wa-devtunnel chose the token


def offer_verify_token(settings: Settings, *, stdin: TextIO | None = None, stderr: TextIO | None = None) -> None:
    """Ask once whether to add the made-up verify token to .env; a "no" is kept in the project state."""
    stdin = sys.stdin if stdin is None else stdin
    stderr = sys.stderr if stderr is None else stderr
    if settings.verify_token_source not in MADE_UP or not (is_terminal(stdin) and is_terminal(stderr)):
        return
    directory = settings.state_path.parent if settings.state_path is not None else None
    state = read_state(directory).state if directory is not None else None
    if state is not None and state.env_offer_declined:
        return
    env_path = shown_path(settings.env_file_path or settings.env_file or Path(".env"))
    if _env_sets_token(env_path):  # shadowed by an empty variable in the environment: not ours to change
        return
    shown = line(env_path)
    print(_where_it_is(settings), file=stderr)
    print(f"Add this verify token to {shown} {QUESTION}", end="", file=stderr, flush=True)
    answer = stdin.readline()
    if not answer:  # end of input (Ctrl+D): no answer, nothing written or remembered
        print(file=stderr)
        return
    if answer.strip().lower() in ("", "y", "yes"):
        _write(env_path, settings.verify_token, stderr)
    else:
        _remember_no(directory, state or ProjectState(verify_token=settings.verify_token), stderr)


def _where_it_is(settings: Settings) -> str:
    token = line(settings.verify_token)
    if settings.verify_token_source == "generated":
        return f"Verify token {token}: {line(settings.state_warning)}."
    kept = line(shown_path(settings.state_path)) if settings.state_path else ""
    if settings.verify_token_new:
        return f"Verify token {token} was generated for this project and is kept in {kept}."
    return f"Verify token {token} is the one kept for this project in {kept}."


def _env_sets_token(env_path: Path) -> bool:
    try:
        return bool(current_value(env_path.read_bytes().decode("utf-8"), VERIFY_TOKEN_VARIABLE))
    except FileNotFoundError:
        return False
    except (OSError, UnicodeDecodeError):
        return True  # a file we cannot read is not one to edit


def _write(env_path: Path, token: str, stderr: TextIO) -> None:
    try:
        print(line(save_value(env_path, VERIFY_TOKEN_VARIABLE, token)), file=stderr)
    except (OSError, EnvEditError) as exc:
        reason = exc.strerror if isinstance(exc, OSError) and exc.strerror else str(exc)
        print(
            f"Could not write {line(str(env_path))}: {line(reason)}. Set {VERIFY_TOKEN_VARIABLE} in it by hand.",
            file=stderr,
        )


def _remember_no(directory: Path | None, state: ProjectState, stderr: TextIO) -> None:
    if directory is None:
        print("Not added (asked again next time: this run's token cannot be kept).", file=stderr)
        return
    try:
        save_state(directory, replace(state, env_offer_declined=True))
    except StateError as exc:
        print(f"Not added; the answer could not be kept ({line(str(exc))}).", file=stderr)
        return
    print(
        "Not added; not asked again. wa-devtunnel keeps using the token kept for this project; "
        "`wa-devtunnel token --write-env` adds it to .env later.",
        file=stderr,
    )
