"""Command line: parses the contract of DESIGN.md and dispatches to one module per command.

Every command module has `register(subparsers)` and `run(args, settings) -> ExitCode`; main owns
every exit: usage and configuration errors (2, no traceback), Ctrl+C (0), and bugs (1, secrets masked).
"""

from __future__ import annotations

import argparse
import importlib
import os
import sys
import traceback
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any, cast

from wa_devtunnel import __version__
from wa_devtunnel.cli.options import Command, ExitCode, Subparsers, UsageError, settings_flags
from wa_devtunnel.cli.output import error
from wa_devtunnel.cli.terminal_text import line
from wa_devtunnel.engine.redaction import SECRET_SETTINGS, Redactor
from wa_devtunnel.settings import ConfigError, load_settings, read_environment

if TYPE_CHECKING:
    from wa_devtunnel.cli.up import TuiLauncher
    from wa_devtunnel.cli.watch import WatchLauncher

# In the order `--help` lists them; each is the module wa_devtunnel.cli.<name>, imported only when needed:
# `wa-devtunnel replay ...` pays for replay's imports, not for the TUI's, the server's or doctor's.
COMMAND_NAMES = ("up", "init", "watch", "sessions", "trigger", "token", "replay", "export", "decode", "doctor", "meta")
TOP_LEVEL_FLAGS = ("-h", "--help", "--version")
# up.LAUNCHER and watch.LAUNCHER: the argument names under which `up`/`watch` find what they open.
_LAUNCHERS = ("launch_tui", "watch_tui")


def command_module(name: str) -> Command:
    """The module of one command (`wa_devtunnel.cli.<name>`), imported on first use."""
    return cast("Command", importlib.import_module(f"wa_devtunnel.cli.{name}"))


def __getattr__(name: str) -> Any:
    """COMMANDS (every command module, in --help order) and BY_NAME (name -> module): these import them all."""
    if name == "COMMANDS":
        return tuple(command_module(each) for each in COMMAND_NAMES)
    if name == "BY_NAME":
        return {each: command_module(each) for each in COMMAND_NAMES}
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


class _Parser(argparse.ArgumentParser):
    """argparse that raises instead of exiting, so main() owns every exit code."""

    def error(self, message: str) -> None:  # type: ignore[override]
        raise UsageError(f"{self.prog}: {message}")


class _Subcommands(Subparsers):
    """Each command's `--help` opens with its one-line help when the command gives no longer description."""

    def add_parser(self, name: str, **kwargs: Any) -> argparse.ArgumentParser:
        kwargs.setdefault("description", kwargs.get("help"))
        return super().add_parser(name, **kwargs)


def build_parser(
    launch_tui: TuiLauncher | None = None,
    watch_tui: WatchLauncher | None = None,
    only: str | None = None,
) -> argparse.ArgumentParser:
    """The whole command-line contract; `launch_tui`/`watch_tui` are what `up`/`watch` open when not headless.

    `only` registers that one command (what parsing its own command line needs); else all of them.
    """
    parser = _Parser(
        prog="wa-devtunnel",
        description="Receive, inspect, record and replay WhatsApp Cloud API webhooks on your machine.",
        epilog=f"Without a command, wa-devtunnel runs `{COMMAND_NAMES[0]}`. "
        "'wa-devtunnel COMMAND --help' lists its options.",
    )
    parser.add_argument("--version", action="version", version=f"wa-devtunnel {__version__}")
    parser.set_defaults(**dict(zip(_LAUNCHERS, (launch_tui, watch_tui), strict=True)))
    subparsers = parser.add_subparsers(
        title="commands", dest="command", metavar="COMMAND", parser_class=_Parser, action=_Subcommands
    )
    for name in COMMAND_NAMES if only is None else (only,):
        command_module(name).register(subparsers)
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


def _command_line(argv: Sequence[str]) -> list[str]:
    """`up` is the default command: flags alone mean `up`; a first word that is no command is a typo, not `up`."""
    args = list(argv)
    if not args or (args[0].startswith("-") and args[0] not in TOP_LEVEL_FLAGS):
        return [COMMAND_NAMES[0], *args]
    if args[0] not in COMMAND_NAMES and args[0] not in TOP_LEVEL_FLAGS:
        import difflib  # only for a mistyped command

        close = difflib.get_close_matches(args[0], list(COMMAND_NAMES), n=1)
        hint = f"did you mean '{close[0]}'?" if close else f"the commands are {', '.join(COMMAND_NAMES)}"
        raise UsageError(f"wa-devtunnel: unknown command '{line(args[0])}'; {hint}")
    return args


def _help_hint(args: Sequence[str]) -> str:
    """Point to the help of the command the mistake was made in, else to the top-level help."""
    command = f" {args[0]}" if args and args[0] in COMMAND_NAMES else ""
    return f"Try 'wa-devtunnel{command} --help'."


def main(
    argv: Sequence[str] | None = None,
    *,
    launch_tui: TuiLauncher | None = None,
    watch_tui: WatchLauncher | None = None,
) -> int:
    """Parse, read settings (unless the command must run without them), run; `up` is the default command."""
    args_list = list(sys.argv[1:] if argv is None else argv)
    try:
        args_list = _command_line(args_list)
        only = args_list[0] if args_list[0] in COMMAND_NAMES else None
        args, unknown = build_parser(launch_tui, watch_tui, only).parse_known_args(args_list)
        if unknown:  # argparse would name the top-level program; the mistake is in this command's arguments
            raise UsageError(f"wa-devtunnel {args.command}: unrecognized arguments: {' '.join(unknown)}")
        args.argv = tuple(args_list)  # as typed (`up` first): what an engine child of the TUI runs
        command = command_module(args.command)
        settings = load_settings(settings_flags(args)) if command.READS_SETTINGS else None
        return command.run(args, settings)
    except UsageError as exc:
        _print_error(str(exc), args_list)
        if exc.try_help:
            print(_help_hint(args_list), file=sys.stderr)
        return ExitCode.USAGE
    except ConfigError as exc:
        _print_error(f"configuration error: {exc}", args_list)
        return ExitCode.USAGE
    except KeyboardInterrupt:
        return ExitCode.OK
    except Exception:  # a bug: still a traceback, like Python's own, but never with a secret in it
        _print_error(traceback.format_exc().rstrip(), args_list)
        return ExitCode.FAILED
