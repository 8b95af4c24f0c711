"""`wa-devtunnel replay` imports what replay needs: its start-up counts in every replay's time (issue 17)."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

from wa_devtunnel.cli import main as cli_main
from wa_devtunnel.cli import up, watch

# What replay never needs: the TUI, the receiving server, doctor's checks, the other commands.
NOT_FOR_REPLAY = (
    "textual",
    "aiohttp.web",
    "wa_devtunnel.tui.app",
    "wa_devtunnel.cli.up",
    "wa_devtunnel.cli.watch",
    "wa_devtunnel.cli.doctor",
    "wa_devtunnel.cli.export",
    "wa_devtunnel.cli.decode",
    "wa_devtunnel.cli.trigger",
    "wa_devtunnel.engine.service",
)

PROBE = """
import json, sys
from wa_devtunnel.__main__ import main
try:
    main(sys.argv[1:])
except SystemExit:
    pass
print(json.dumps(sorted(sys.modules)), file=sys.stderr)
"""


def _modules_after(tmp_path: Path, *argv: str) -> set[str]:
    done = subprocess.run(
        [sys.executable, "-c", PROBE, *argv], cwd=tmp_path, capture_output=True, text=True, timeout=60, check=False
    )
    return set(json.loads(done.stderr.strip().splitlines()[-1]))


def test_replay_help_imports_only_replay(tmp_path: Path) -> None:
    modules = _modules_after(tmp_path, "replay", "--help")
    assert "wa_devtunnel.cli.replay" in modules
    assert [name for name in NOT_FOR_REPLAY if name in modules] == []


def test_the_top_level_help_still_lists_every_command(tmp_path: Path) -> None:
    done = subprocess.run(
        [sys.executable, "-m", "wa_devtunnel", "--help"], cwd=tmp_path, capture_output=True, text=True, timeout=60
    )
    assert done.returncode == 0
    for name in cli_main.COMMAND_NAMES:
        assert f"    {name}" in done.stdout


def test_the_launcher_argument_names_are_up_and_watch_s() -> None:
    assert cli_main._LAUNCHERS == (up.LAUNCHER, watch.LAUNCHER)
    assert [command.NAME for command in cli_main.COMMANDS] == list(cli_main.COMMAND_NAMES)
