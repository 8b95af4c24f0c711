"""What every command shares: the exit codes, the usage error, common flags, and how `replay` and
`export` pick sessions and exchanges (one set of flags, one reading of session names, commas mean OR)."""

from __future__ import annotations

import argparse
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from enum import IntEnum
from pathlib import Path
from typing import Any, Protocol

from wa_devtunnel.cli.terminal_text import shown_path
from wa_devtunnel.engine.instance import read_instance
from wa_devtunnel.engine.replay.pick import pick_latest_session, picked_note
from wa_devtunnel.engine.replay.source import (
    LoadedRecordings,
    Selection,
    load_recordings,
    parse_seq_ranges,
    parse_timestamp,
)
from wa_devtunnel.engine.sessions import find_sessions
from wa_devtunnel.settings import ConfigError, Settings, http_url

Subparsers = argparse._SubParsersAction  # argparse's own type for `add_subparsers()`; it has no public name

# Flags that feed Settings (the rest belong to the command): names as load_settings reads them.
SETTINGS_FLAGS = (
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


class ExitCode(IntEnum):
    """The exit codes of DESIGN.md's command-line contract."""

    OK = 0
    FAILED = 1  # a check, replay or delivery failed
    USAGE = 2  # bad usage or configuration


class UsageError(Exception):
    """Bad usage or configuration: main prints the message, no traceback, and exits 2.

    `try_help` adds "Try 'wa-devtunnel --help'." for mistakes in the command line itself.
    """

    def __init__(self, message: str, *, try_help: bool = True) -> None:
        super().__init__(message)
        self.try_help = try_help


class Command(Protocol):
    """What cli/main.py needs from a command module (`wa_devtunnel.cli.<name>`)."""

    NAME: str
    # False for `token` and `doctor`: they run before settings are read (a broken .env is what they
    # fix or diagnose), and get None instead of Settings.
    READS_SETTINGS: bool

    def register(self, subparsers: Subparsers) -> None: ...

    def run(self, args: argparse.Namespace, settings: Settings | None) -> ExitCode: ...


def add_common(parser: argparse.ArgumentParser) -> None:
    """--env-file and --recordings-dir, which every command that reads settings takes."""
    parser.add_argument("--env-file", type=Path, help="settings file to read (default ./.env)")
    parser.add_argument("--recordings-dir", type=Path, help="where sessions are recorded (default ./recordings)")


def settings_flags(args: argparse.Namespace) -> dict[str, Any]:
    """The flags given on the command line that override .env and the environment."""
    return {key: getattr(args, key) for key in SETTINGS_FLAGS if getattr(args, key, None) not in (None, False)}


def parsed(parse: Callable[[str], Any]) -> Callable[[str], Any]:
    """An argparse type from a parser that raises ValueError, so a bad value is a usage error."""

    def convert(text: str) -> Any:
        try:
            return parse(text)
        except ValueError as exc:
            raise argparse.ArgumentTypeError(str(exc)) from None

    return convert


def positive(kind: type[int] | type[float]) -> Callable[[str], Any]:
    """Counts, rates and timeouts: zero or negative is a usage error, not a hang or a crash."""

    def parse(text: str) -> int | float:
        try:
            value = kind(text)
        except ValueError:
            raise ValueError(f"{text!r} is not a {'whole number' if kind is int else 'number'}") from None
        if value <= 0:
            raise ValueError(f"{text} must be greater than 0")
        return value

    return parsed(parse)


def add_recordings_argument(parser: argparse.ArgumentParser) -> None:
    """The RECORDING... positionals, read by `recordings_from_args`."""
    parser.add_argument(
        "recordings",
        nargs="*",
        metavar="RECORDING",
        help="session files or directories, or sessions by name as `wa-devtunnel sessions` lists them "
        "(.jsonl optional, or the start of one name); default: the latest session with something to send "
        "(never the running wa-devtunnel's own, unless named)",
    )


@dataclass(frozen=True, slots=True)
class Sources:
    """The sessions a command reads, already loaded, and the line that says which was picked by default."""

    paths: list[Path]
    loaded: LoadedRecordings
    picked: str = ""  # empty when the sessions were named


def recordings_from_args(names: Sequence[str], recordings_dir: Path, kinds: tuple[str, ...], verb: str) -> Sources:
    """The sessions typed (see engine.sessions.find_session), else the latest with exchanges of `kinds`.

    The default is never a replay's session nor the running wa-devtunnel's live one (engine.replay.pick);
    `verb` starts the line that names it (`Replaying`, `Exporting from`). Raises SessionNotFound or
    ReplayError; each command words them as its own usage error.
    """
    if names:
        paths = find_sessions(names, recordings_dir)
        return Sources(paths, load_recordings(paths))
    picked = pick_latest_session(recordings_dir, kinds)
    return Sources([picked.path], picked.loaded, picked_note(picked, verb, shown_path(picked.path)))


@dataclass(frozen=True, slots=True)
class Target:
    """Where `replay`/`trigger` send, and the line that says how it was found (empty for --to)."""

    url: str
    note: str = ""


def target_from_args(to: str | None, settings: Settings, prog: str) -> Target | None:
    """--to, else the running wa-devtunnel (its instance file beside the recordings), else the forward target.

    None when there is none of the three: each command says what to do (or uses its own default).
    """
    if to:
        try:
            return Target(http_url(to, "--to"))
        except ConfigError as exc:
            raise UsageError(f"{prog}: {exc}") from None
    instance = read_instance(settings.recordings_dir)
    if instance is not None and instance.local_url:
        return Target(
            instance.local_url,
            f"Sending to the running wa-devtunnel at {instance.local_url} (pid {instance.pid}; --to for another URL)",
        )
    if settings.forward_to:
        return Target(
            settings.forward_to,
            f"Sending to WA_DEVTUNNEL_FORWARD_TO {settings.forward_to} (no running wa-devtunnel in "
            f"{settings.recordings_dir})",
        )
    return None


def add_selection_arguments(parser: argparse.ArgumentParser, title: str, origins_help: str) -> None:
    """--id --seq --last --field --type --status --signature --origin --since --until."""
    pick = parser.add_argument_group(title)
    pick.add_argument("--id", action="append", help="exchange id, or the start of one")
    pick.add_argument("--seq", action="append", type=parsed(parse_seq_ranges), help="sequence numbers: 7, 3-9, 1,4-6")
    pick.add_argument("--last", type=positive(int), metavar="N", help="only the last N that match")
    pick.add_argument(
        "--field", action="append", help="webhook field, e.g. messages, account_update, or a pattern: group_*"
    )
    pick.add_argument(
        "--type", action="append", help="message type, e.g. text, image, interactive, list_reply, nfm_reply, echo"
    )
    pick.add_argument("--status", action="append", help="status update, e.g. delivered, read, failed")
    pick.add_argument("--signature", action="append", help="recorded verdict: valid, invalid, missing, unchecked")
    pick.add_argument("--origin", action="append", help=origins_help)
    pick.add_argument("--since", type=parsed(parse_timestamp), help="received at or after (ISO, UTC by default)")
    pick.add_argument("--until", type=parsed(parse_timestamp), help="received at or before (ISO, UTC by default)")


def _values(raw: Iterable[str] | None) -> tuple[str, ...]:
    """Repeated flags and comma lists mean the same: `--type text,image` == `--type text --type image`."""
    return tuple(part.strip() for item in raw or () for part in item.split(",") if part.strip())


def selection_from_args(args: argparse.Namespace, kind: str | None) -> Selection:
    """The selection flags, already parsed by argparse, as the engine's Selection (`kind`: event/verify/all)."""
    return Selection(
        ids=_values(args.id),
        seqs=tuple(r for ranges in args.seq or () for r in ranges),
        last=args.last,
        fields=_values(args.field),
        types=_values(args.type),
        statuses=_values(args.status),
        signatures=_values(args.signature),
        origins=_values(args.origin),
        since=args.since,
        until=args.until,
        kind=kind,
    )
