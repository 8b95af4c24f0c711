"""`--register` in TUI mode: a lasting state in the header, and on quit the undo's outcome printed to the
terminal once the screen is gone (the real command on a pseudo-terminal, fake ngrok, fake Graph API)."""

from __future__ import annotations

from pathlib import Path

from tests.support.cli_process import registering_env, wait_for
from tests.support.fake_graph import PHONE_NUMBER_ID, FakeGraph
from tests.support.fake_ngrok import MakeFakeNgrok
from tests.tui.test_engine_process import WAIT_S, terminal_run


def test_quitting_the_tui_undoes_the_registration_and_says_so_in_the_terminal(
    tmp_path: Path, make_fake_ngrok: MakeFakeNgrok, threaded_fake_graph: FakeGraph
) -> None:
    env = registering_env(tmp_path, make_fake_ngrok(mode="ok"), threaded_fake_graph)
    overrides = threaded_fake_graph.state.phone_overrides
    with terminal_run(tmp_path, "--port", "0", "--register", "phone", env=env) as tui:
        wait_for(lambda: overrides.get(PHONE_NUMBER_ID, "").startswith("https://"), "Meta pointed at the tunnel", 30)
        wait_for(lambda: b"Registered with Meta:" in tui.screen, "the registration in the header")
        tui.press("q")
        assert tui.proc.wait(WAIT_S) == 0
        undone = f"Registration undone: removed the phone number override of {PHONE_NUMBER_ID}".encode()
        wait_for(lambda: undone in tui.screen, "the undo's outcome after the screen closed")
        after = tui.screen[tui.screen.rindex(undone) :]
        assert b"Stopped after" in after, "said before the engine's last line"
    assert overrides == {}
