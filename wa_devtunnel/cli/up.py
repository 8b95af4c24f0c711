"""`wa-devtunnel [up]`: receiver + tunnel, watched by the TUI or printed headless, one line per exchange."""

from __future__ import annotations

import argparse
import asyncio
from collections.abc import Callable, Sequence

from wa_devtunnel.cli import front_end
from wa_devtunnel.cli.env_offer import offer_verify_token
from wa_devtunnel.cli.headless import run_headless
from wa_devtunnel.cli.options import ExitCode, Subparsers, UsageError, add_common
from wa_devtunnel.settings import DEFAULT_PATH, DEFAULT_PORT, TUNNEL_PROVIDERS, Settings

NAME = "up"
READS_SETTINGS = True
# The TUI is another front end: the CLI never imports it. __main__ hands its launcher in (this
# attribute of the parsed arguments); without one, `up` needs --headless (or no terminal).
TuiLauncher = Callable[[Settings, Sequence[str]], int]
LAUNCHER = "launch_tui"


def register(subparsers: Subparsers) -> None:
    """The flags of DESIGN.md's contract for `up` (the default command), plus the receiver's limits."""
    up = subparsers.add_parser(NAME, help="receiver + tunnel + live view (the default command)")
    add_common(up)
    up.add_argument("--port", type=str, help=f"local port (default {DEFAULT_PORT}; 0 picks a free port)")
    up.add_argument("--host", help="address to bind (default 127.0.0.1)")
    up.add_argument("--path", help=f"webhook path (default {DEFAULT_PATH})")
    up.add_argument(
        "--tunnel", choices=TUNNEL_PROVIDERS, help="how Meta reaches you (default: ngrok when NGROK_AUTHTOKEN is set)"
    )
    up.add_argument("--forward-to", help="also send every request to your backend at this URL")
    up.add_argument("--forward-timeout", help="seconds to wait for the backend before answering 504 (default 10)")
    up.add_argument(
        "--ack-first",
        action="store_true",
        help="answer Meta 200 at once and forward in the background (slow backend, breakpoints)",
    )
    up.add_argument(
        "--headless",
        action="store_true",
        help="no TUI: one line per exchange on stdout (the default when stdin, stdout or stderr is not a terminal)",
    )
    up.add_argument("--json", action="store_true", help="JSON Lines on stdout (implies --headless)")
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


def run(args: argparse.Namespace, settings: Settings | None) -> ExitCode:
    """Serve until stopped: the TUI on a terminal, else (or with --headless, --json) lines or JSON Lines."""
    assert settings is not None  # READS_SETTINGS
    headless = front_end.choose_headless(args.headless or args.json)
    offer_verify_token(settings)  # a new verify token, before either front end: it decides whether to ask
    if not headless:
        launch: TuiLauncher | None = getattr(args, LAUNCHER, None)
        if launch is None:
            raise UsageError("wa-devtunnel up: this entry point has no TUI; pass --headless", try_help=False)
        # The engine child runs this very command line with --headless: same settings, same code.
        return ExitCode(launch(settings, args.argv))
    try:
        return ExitCode(asyncio.run(run_headless(settings, json_lines=args.json)))
    except OSError as exc:  # the port is taken, the recordings directory cannot be written...
        raise UsageError(f"error: {exc.strerror or exc}", try_help=False) from None
