"""`wa-devtunnel watch`: attach a live view (TUI, or headless lines / JSON Lines) to an engine already running.

The engine is found through the instance file in the recordings directory (`up` and the TUI's engine
both write it), or at `--address SOCKET` with its secret in WA_DEVTUNNEL_ENGINE_SECRET. Several
watchers may attach at once; detaching (q, Ctrl+C) never stops the engine.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import signal
import sys
from collections.abc import Callable
from pathlib import Path
from typing import TextIO

from wa_devtunnel.cli import front_end
from wa_devtunnel.cli.headless import HeadlessPrinter
from wa_devtunnel.cli.options import ExitCode, Subparsers, UsageError, add_common
from wa_devtunnel.engine.channel.address import SECRET_ENV, ChannelAddress
from wa_devtunnel.engine.channel.client import ChannelError, EngineClient, EngineLost
from wa_devtunnel.engine.instance import instance_path, read_instance
from wa_devtunnel.settings import Settings

NAME = "watch"
READS_SETTINGS = True
# The CLI never imports the TUI: __main__ hands its watcher in, like `up`'s launcher.
WatchLauncher = Callable[[ChannelAddress], int]
LAUNCHER = "watch_tui"


def register(subparsers: Subparsers) -> None:
    """`watch [--headless] [--json] [--recordings-dir DIR | --address SOCKET]`."""
    watch = subparsers.add_parser(NAME, help="attach a view to a running engine (detaching leaves it running)")
    add_common(watch)
    watch.add_argument(
        "--headless",
        action="store_true",
        help="no TUI: one line per exchange on stdout (the default when stdin, stdout or stderr is not a terminal)",
    )
    watch.add_argument("--json", action="store_true", help="JSON Lines on stdout (implies --headless)")
    watch.add_argument(
        "--address",
        type=Path,
        help=f"the engine's socket, when not found through the recordings directory (secret in {SECRET_ENV})",
    )


def find_engine(settings: Settings, address: Path | None) -> ChannelAddress:
    """The running engine's channel: an explicit socket, else the instance file beside the recordings."""
    if address is not None:
        secret = os.environ.get(SECRET_ENV)
        if not secret:
            raise UsageError(f"wa-devtunnel watch: --address needs the engine's secret in {SECRET_ENV}")
        return ChannelAddress(address, secret)
    instance = read_instance(settings.recordings_dir)
    if instance is None:
        raise UsageError(
            f"wa-devtunnel watch: no running engine found ({instance_path(settings.recordings_dir)}). "
            "Start one with `wa-devtunnel up --headless` (or `wa-devtunnel`) in this directory, "
            "or pass --recordings-dir where it records.",
            try_help=False,
        )
    if not instance.channel or not instance.channel_secret:
        raise UsageError(
            f"wa-devtunnel watch: the engine (pid {instance.pid}) accepts no watchers: it is an older "
            "wa-devtunnel, or could not open its channel (see its output)",
            try_help=False,
        )
    return ChannelAddress(Path(instance.channel), instance.channel_secret)


def run(args: argparse.Namespace, settings: Settings | None) -> ExitCode:
    """Attach until the engine stops or the user detaches."""
    assert settings is not None  # READS_SETTINGS
    address = find_engine(settings, args.address)
    if not front_end.choose_headless(args.headless or args.json):
        launch: WatchLauncher | None = getattr(args, LAUNCHER, None)
        if launch is None:
            raise UsageError("wa-devtunnel watch: this entry point has no TUI; pass --headless", try_help=False)
        return ExitCode(launch(address))
    try:
        client = EngineClient.attach(address, records=args.json)  # text lines need only the views
    except ChannelError as exc:
        raise UsageError(f"wa-devtunnel watch: {exc.strerror or exc}", try_help=False) from None
    return ExitCode(asyncio.run(watch_headless(client, json_lines=args.json)))


async def watch_headless(
    client: EngineClient, *, json_lines: bool = False, out: TextIO | None = None, err: TextIO | None = None
) -> int:
    """Print what the engine does, as `up --headless` prints it, until it stops (0) or is lost (1); ^C detaches."""
    printer = HeadlessPrinter(out or sys.stdout, err or sys.stderr, json_lines)
    lost: list[EngineLost] = []
    done = asyncio.Event()

    def deliver(batch: list[object]) -> None:
        for event in batch:
            if isinstance(event, EngineLost):
                lost.append(event)
                done.set()
            else:
                printer.render(event)  # type: ignore[arg-type]

    deliver([client.welcome.started, *client.welcome.state])
    loop = asyncio.get_running_loop()
    for signum in (signal.SIGINT, signal.SIGTERM, signal.SIGHUP):
        loop.add_signal_handler(signum, done.set)
    reader = asyncio.create_task(client.run(deliver))
    try:
        await done.wait()
    finally:
        for signum in (signal.SIGINT, signal.SIGTERM, signal.SIGHUP):
            loop.remove_signal_handler(signum)
        client.close()
        reader.cancel()
    if not lost:
        printer.err.write("Detached; the engine goes on.\n")
        return 0
    if lost[0].clean:
        return 0
    printer.err.write(f"Lost the engine: {lost[0].reason}\n")
    return 1
