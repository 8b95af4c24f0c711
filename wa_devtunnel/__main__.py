"""The `wa-devtunnel` console script and `python -m wa_devtunnel`: the one place that sees both front ends.

The CLI never imports the TUI (nor the TUI the CLI); here the TUI's launcher is handed to the CLI as
what `up` opens on a terminal.
"""

from __future__ import annotations

import sys
from collections.abc import Sequence

from wa_devtunnel.cli.main import main as cli_main
from wa_devtunnel.tui.launch import run_tui, run_watch


def main(argv: Sequence[str] | None = None) -> int:
    """Run the command line with the TUI plugged in."""
    return cli_main(argv, launch_tui=run_tui, watch_tui=run_watch)


if __name__ == "__main__":
    sys.exit(main())
