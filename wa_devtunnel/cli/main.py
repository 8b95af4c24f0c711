"""Command line: parses the contract in DESIGN.md and hands off to a front end (TUI imported lazily)."""

from __future__ import annotations

import argparse
import asyncio
import os
import sys
import traceback
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from wa_devtunnel import __version__
from wa_devtunnel.cli.export import add_export_parser, run_export
from wa_devtunnel.cli.selection import add_selection_arguments, positive
from wa_devtunnel.engine.redaction import SECRET_SETTINGS, Redactor
from wa_devtunnel.settings import DEFAULT_PATH, DEFAULT_PORT, ConfigError, Settings, load_settings, read_environment

EXIT_OK, EXIT_FAILED, EXIT_USAGE = 0, 1, 2
SUBCOMMANDS = ("up", "sessions", "replay", "trigger", "token", "export", "doctor", "meta")


class UsageError(Exception):
    """Bad usage: printed without a traceback, exit 2."""


class _Parser(argparse.ArgumentParser):
    """argparse that raises instead of exiting, so main() owns every exit code."""

    def error(self, message: str) -> None:  # type: ignore[override]
        raise UsageError(f"{self.prog}: {message}")


def _add_common(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--env-file", type=Path, help="settings file to read (default ./.env)")
    parser.add_argument("--recordings-dir", type=Path, help="where sessions are recorded (default ./recordings)")


def build_parser() -> argparse.ArgumentParser:
    """The whole command-line contract."""
    parser = _Parser(
        prog="wa-devtunnel",
        description="Receive, inspect, record and replay WhatsApp Cloud API webhooks on your machine.",
    )
    parser.add_argument("--version", action="version", version=f"wa-devtunnel {__version__}")
    commands = parser.add_subparsers(dest="command", parser_class=_Parser)

    up = commands.add_parser("up", help="receiver + tunnel + live view (the default command)")
    _add_common(up)
    up.add_argument("--port", type=str, help=f"local port (default {DEFAULT_PORT}; 0 picks a free port)")
    up.add_argument("--host", help="address to bind (default 127.0.0.1)")
    up.add_argument("--path", help=f"webhook path (default {DEFAULT_PATH})")
    up.add_argument("--tunnel", help="ngrok or none (default: ngrok when NGROK_AUTHTOKEN is set)")
    up.add_argument("--forward-to", help="also send every request to your backend at this URL")
    up.add_argument("--forward-timeout", help="seconds to wait for the backend before answering 504 (default 10)")
    up.add_argument(
        "--ack-first",
        action="store_true",
        help="answer Meta 200 at once and forward in the background (slow backend, breakpoints)",
    )
    up.add_argument("--headless", action="store_true", help="no TUI: one line per exchange on stdout")
    up.add_argument("--json", action="store_true", help="with --headless: JSON Lines on stdout")
    up.add_argument("--no-record", action="store_true", help="do not write a recording")
    up.add_argument("--accounts", help="TOML file with several [[account]] entries")
    up.add_argument("--verify-token", help="verify token (default WHATSAPP_VERIFY_TOKEN, else generated)")
    up.add_argument(
        "--require-signature",
        action="store_true",
        help="answer 401/403 to missing/invalid X-Hub-Signature-256, like a strict app",
    )
    up.add_argument("--max-body-bytes", type=str, help="answer 413 above this size (default 3.5 MiB)")
    up.add_argument(
        "--register",
        choices=("phone", "waba", "app"),
        help="point Meta at this tunnel via the Graph API once it is up; undone on exit",
    )

    sessions = commands.add_parser("sessions", help="list recorded sessions")
    _add_common(sessions)
    from wa_devtunnel.cli.token import add_token_parser
    from wa_devtunnel.cli.trigger import add_trigger_parser

    add_trigger_parser(commands)
    add_token_parser(commands)
    _add_replay(commands.add_parser("replay", help="send recorded webhooks again, e.g. to your backend"))
    add_export_parser(commands, _add_common)
    from wa_devtunnel.cli.doctor import add_doctor_parser
    from wa_devtunnel.cli.meta import add_meta_parser

    add_doctor_parser(commands, _add_common)
    add_meta_parser(commands, _add_common)
    return parser


def _add_replay(replay: argparse.ArgumentParser) -> None:
    """`replay`: sources, --to, selection, signature mode, pacing, output."""
    _add_common(replay)
    replay.add_argument(
        "recordings", nargs="*", metavar="RECORDING", help="session files (default: the latest session recorded)"
    )
    replay.add_argument("--to", metavar="URL", help="where to send (default: WA_DEVTUNNEL_FORWARD_TO)")
    add_selection_arguments(
        replay,
        "selection (flags combine with AND; repeat a flag or use commas for OR)",
        "meta, sample or replay (self-tests are never replayed)",
    )
    pick = replay.add_argument_group("kind")
    pick.add_argument(
        "--kind", choices=("event", "verify", "all"), help="default event (all when picking by --id/--seq)"
    )
    signing = replay.add_mutually_exclusive_group()
    signing.add_argument("--resign", action="store_true", help="sign again with --app-secret / WHATSAPP_APP_SECRET")
    signing.add_argument(
        "--bad-signature", action="store_true", help="send a wrong X-Hub-Signature-256 to test your rejection path"
    )
    replay.add_argument("--app-secret", help="App Secret for --resign (default WHATSAPP_APP_SECRET)")
    replay.add_argument(
        "--verify-token", help="the target's verify token, for handshakes (default WHATSAPP_VERIFY_TOKEN)"
    )
    replay.add_argument(
        "--concurrency", type=positive(int), default=1, help="requests in flight (default 1: in order)"
    )
    replay.add_argument("--rate", type=positive(float), metavar="R", help="at most R requests per second")
    replay.add_argument("--timeout", type=positive(float), metavar="S", help="seconds per request (default 10)")
    replay.add_argument("--dry-run", action="store_true", help="print what would be sent; send nothing")
    replay.add_argument("--json", action="store_true", help="print one JSON object (plan, results, summary)")
    replay.add_argument("--no-record", action="store_true", help="do not record the replayed exchanges")


def _flags(args: argparse.Namespace) -> dict[str, Any]:
    keys = (
        "env_file",
        "recordings_dir",
        "port",
        "host",
        "path",
        "tunnel",
        "forward_to",
        "no_record",
        "accounts",
        "verify_token",
        "require_signature",
        "forward_timeout",
        "ack_first",
        "max_body_bytes",
        "app_secret",
        "register",
    )
    return {key: getattr(args, key) for key in keys if getattr(args, key, None) not in (None, False)}


def _run_up(settings: Settings, args: argparse.Namespace) -> int:
    from wa_devtunnel.cli.headless import run_headless

    if args.json and not args.headless:
        raise UsageError("wa-devtunnel up: --json needs --headless")
    if not args.headless:
        from wa_devtunnel.tui.launch import run_tui

        return run_tui(settings)
    try:
        return asyncio.run(run_headless(settings, json_lines=args.json))
    except OSError as exc:
        print(f"error: {exc.strerror or exc}", file=sys.stderr)
        return EXIT_USAGE


def _run_sessions(settings: Settings) -> int:
    from wa_devtunnel.engine.recording import format_sessions_table, list_sessions

    print(format_sessions_table(list_sessions(settings.recordings_dir), settings.recordings_dir))
    return EXIT_OK


def _run_replay(settings: Settings, args: argparse.Namespace) -> int:
    from wa_devtunnel.cli.replay import run_replay_command
    from wa_devtunnel.engine.replay.source import ReplayError

    try:
        return run_replay_command(settings, args)
    except ReplayError as exc:
        print(f"wa-devtunnel replay: {exc}", file=sys.stderr)
        return EXIT_USAGE
    except OSError as exc:  # the recordings directory cannot be created or written
        print(f"wa-devtunnel replay: cannot record the replay: {exc.strerror or exc}", file=sys.stderr)
        return EXIT_USAGE


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
    print(Redactor(secrets).text(text), file=sys.stderr)


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of the `wa-devtunnel` console script."""
    args_list = list(sys.argv[1:] if argv is None else argv)
    if not args_list or (args_list[0] not in SUBCOMMANDS and args_list[0] not in ("-h", "--help", "--version")):
        args_list.insert(0, "up")
    try:
        args = build_parser().parse_args(args_list)
        if args.command == "token":  # before settings: it must work while .env is missing or broken
            from wa_devtunnel.cli.token import run_token

            return run_token(args)
        if args.command == "doctor":  # before settings: a broken .env is what it diagnoses
            from wa_devtunnel.cli.doctor import run_doctor_command

            return run_doctor_command(args)
        settings = load_settings(_flags(args))
        if args.command == "meta":
            from wa_devtunnel.cli.meta import run_meta_command

            return run_meta_command(settings, args)
        if args.command == "trigger":
            from wa_devtunnel.cli.trigger import run_trigger

            return run_trigger(args, settings)
        if args.command == "sessions":
            return _run_sessions(settings)
        if args.command == "replay":
            return _run_replay(settings, args)
        if args.command == "export":
            return run_export(args, settings)
        return _run_up(settings, args)
    except UsageError as exc:
        _print_error(str(exc), args_list)
        print("Try 'wa-devtunnel --help'.", file=sys.stderr)
        return EXIT_USAGE
    except ConfigError as exc:
        _print_error(f"configuration error: {exc}", args_list)
        return EXIT_USAGE
    except KeyboardInterrupt:
        return EXIT_OK
    except Exception:  # a bug: still a traceback, like Python's own, but never with a secret in it
        _print_error(traceback.format_exc().rstrip(), args_list)
        return EXIT_FAILED
