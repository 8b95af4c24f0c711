"""Command line: parses the contract of DESIGN.md and dispatches to one module per command.

Every command module has `register(subparsers)` and `run(args, settings) -> ExitCode`; main owns
every exit: usage and configuration errors (2, no traceback), Ctrl+C (0), and bugs (1, secrets masked).
"""

from __future__ import annotations

import argparse
import os
import sys
import traceback
from collections.abc import Sequence
from pathlib import Path

from wa_devtunnel import __version__
from wa_devtunnel.cli import decode, doctor, export, meta, replay, sessions, token, trigger, up, watch
from wa_devtunnel.cli.options import Command, ExitCode, UsageError, settings_flags
from wa_devtunnel.cli.output import error
from wa_devtunnel.engine.redaction import SECRET_SETTINGS, Redactor
from wa_devtunnel.settings import ConfigError, load_settings, read_environment

# In the order `--help` lists them.
COMMANDS: tuple[Command, ...] = (up, watch, sessions, trigger, token, replay, export, decode, doctor, meta)
BY_NAME = {command.NAME: command for command in COMMANDS}
TOP_LEVEL_FLAGS = ("-h", "--help", "--version")


class _Parser(argparse.ArgumentParser):
    """argparse that raises instead of exiting, so main() owns every exit code."""

    def error(self, message: str) -> None:  # type: ignore[override]
        raise UsageError(f"{self.prog}: {message}")


def build_parser(
    launch_tui: up.TuiLauncher | None = None, watch_tui: watch.WatchLauncher | None = None
) -> argparse.ArgumentParser:
    """The whole command-line contract; `launch_tui`/`watch_tui` are what `up`/`watch` open when not headless."""
    parser = _Parser(
        prog="wa-devtunnel",
        description="Receive, inspect, record and replay WhatsApp Cloud API webhooks on your machine.",
    )
    parser.add_argument("--version", action="version", version=f"wa-devtunnel {__version__}")
    parser.set_defaults(**{up.LAUNCHER: launch_tui, watch.LAUNCHER: watch_tui})
    subparsers = parser.add_subparsers(dest="command", parser_class=_Parser)
    for command in COMMANDS:
        command.register(subparsers)
    return parser


def _flag_values(args: Sequence[str], flag: str) -> list[str]:
    """Every value given to `flag` (`--flag V` or `--flag=V`), read before argparse may fail."""
    values = [arg.split("=", 1)[1] for arg in args if arg.startswith(f"{flag}=")]
    values += [args[i + 1] for i, arg in enumerate(args[:-1]) if arg == flag]
    return values


def _print_error(text: str, args: Sequence[str]) -> None:
    """Errors can echo a value (a token pasted into the wrong setting): mask every secret we know of."""
    env_files = _flag_values(args, "--env-file") or [".env"]
    try:
        environ = read_environment(Path(env_files[-1]))
    except ConfigError:
        environ = dict(os.environ)
    secrets = [(name, environ.get(name)) for name in SECRET_SETTINGS]
    secrets += [("--app-secret", value) for value in _flag_values(args, "--app-secret")]
    error(Redactor(secrets).text(text))


def main(
    argv: Sequence[str] | None = None,
    *,
    launch_tui: up.TuiLauncher | None = None,
    watch_tui: watch.WatchLauncher | None = None,
) -> int:
    """Parse, read settings (unless the command must run without them), run; `up` is the default command."""
    args_list = list(sys.argv[1:] if argv is None else argv)
    if not args_list or (args_list[0] not in BY_NAME and args_list[0] not in TOP_LEVEL_FLAGS):
        args_list.insert(0, up.NAME)
    try:
        args = build_parser(launch_tui, watch_tui).parse_args(args_list)
        args.argv = tuple(args_list)  # as typed (`up` first): what an engine child of the TUI runs
        command = BY_NAME[args.command]
        settings = load_settings(settings_flags(args)) if command.READS_SETTINGS else None
        return command.run(args, settings)
    except UsageError as exc:
        _print_error(str(exc), args_list)
        if exc.try_help:
            print("Try 'wa-devtunnel --help'.", file=sys.stderr)
        return ExitCode.USAGE
    except ConfigError as exc:
        _print_error(f"configuration error: {exc}", args_list)
        return ExitCode.USAGE
    except KeyboardInterrupt:
        return ExitCode.OK
    except Exception:  # a bug: still a traceback, like Python's own, but never with a secret in it
        _print_error(traceback.format_exc().rstrip(), args_list)
        return ExitCode.FAILED
