"""`wa-devtunnel init`: a commented .env from the template shipped in the package (pip users have no clone).

It never reads settings (there is usually no .env yet) and never overwrites one without --force: an
existing .env holds secrets and the verify token Meta's dashboard already has.
"""

from __future__ import annotations

import argparse
from importlib import resources
from pathlib import Path

from wa_devtunnel.cli.options import ExitCode, Subparsers, UsageError
from wa_devtunnel.cli.output import error
from wa_devtunnel.cli.private_file import create_private, replace_private
from wa_devtunnel.cli.terminal_text import line, say, say_lines
from wa_devtunnel.settings import Settings

NAME = "init"
READS_SETTINGS = False  # it writes the settings file: nothing to read yet
PROG = f"wa-devtunnel {NAME}"
TEMPLATE = ("data", "env.example")  # inside the package; the repository's .env.example is the same text
# What a first run needs, and where Meta's and ngrok's dashboards show it.
FILL_IN_NEXT = (
    ("WHATSAPP_APP_SECRET", "App Dashboard > App settings > Basic > App secret (signature checks)"),
    ("NGROK_AUTHTOKEN", "https://dashboard.ngrok.com/get-started/your-authtoken (a public HTTPS URL)"),
)


def register(subparsers: Subparsers) -> None:
    """`init [--env-file PATH] [--force]`."""
    parser = subparsers.add_parser(NAME, help="write a commented .env with every setting, to fill in")
    parser.add_argument("--env-file", type=Path, help="the file to write (default ./.env)")
    parser.add_argument("--force", action="store_true", help="overwrite the file if it exists (its values are lost)")


def env_template() -> str:
    """Every setting of wa-devtunnel, commented: the text of the repository's .env.example, from the package."""
    return resources.files("wa_devtunnel").joinpath(*TEMPLATE).read_text(encoding="utf-8")


def run(args: argparse.Namespace, settings: Settings | None) -> ExitCode:
    """Write the template (0600, it will hold secrets), then say what to fill in."""
    path: Path = args.env_file or Path(".env")
    existed = path.exists() or path.is_symlink()
    if existed and not args.force:
        raise UsageError(
            f"{PROG}: {line(path)} already exists and may hold your settings; not overwriting it. "
            "Pass --force to replace it with the template (its values are lost), or --env-file PATH for another file.",
            try_help=False,
        )
    try:
        if existed:
            replace_private(path, env_template())
        else:
            create_private(path, env_template())
    except OSError as exc:
        error(f"{PROG}: cannot write {line(path)}: {line(exc.strerror or exc)}")
        return ExitCode.FAILED
    width = max(len(name) for name, _ in FILL_IN_NEXT)
    say(f"{'Replaced' if existed else 'Wrote'} {line(path)} (mode 0600): every setting, commented. Keep it out of git.")
    say("Fill in next:")
    say_lines(f"  {name:<{width}}  {where}" for name, where in FILL_IN_NEXT)
    say("Then run `wa-devtunnel`: it shows the Callback URL and Verify token to paste into App Dashboard >")
    say("WhatsApp > Configuration.")
    return ExitCode.OK
