"""The agent's session with ngrok's edge: up, dropped while the process lives on (reconnect loop), or never up.

The lines are ngrok-go's reconnecting session's (lvl=eror for the loss and each failed redial, lvl=info when
established again); the redial interval is FAKE_NGROK_RECONNECT_S instead of ngrok's 0.5 s doubling to 30 s.
"""

from __future__ import annotations

import asyncio
import secrets
from collections.abc import Callable
from typing import Any

from _ngrok_errors import DROP_ERR

Log = Callable[..., None]


class Session:
    """``up`` decides whether the public side forwards (True) or answers ERR_NGROK_3200 (False)."""

    def __init__(self, log: Log, *, reconnect_s: float, reconnect_err: str, drop_err: str = DROP_ERR) -> None:
        self.log = log
        self.reconnect_s = reconnect_s
        self.reconnect_err = reconnect_err
        self.drop_err = drop_err
        self.id = secrets.token_hex(6)
        self.state = "connecting"
        self._redial: asyncio.Task[Any] | None = None

    @property
    def up(self) -> bool:
        return self.state == "online"

    def establish(self) -> None:
        """A fresh start: the session comes up (ngrok 3.x prints these two lines, in this order)."""
        self.log("info", "client session established", obj="tunnels.session")
        self.log("info", "tunnel session started", obj="tunnels.session")
        self.state = "online"

    def drop(self, *, heartbeat: bool = False) -> None:
        """The connection to the edge is lost; the agent keeps running and redials by itself."""
        if not self.up:
            return
        err = self.drop_err
        if heartbeat:
            self.log(
                "eror",
                "heartbeat timeout, terminating session",
                obj="tunnels.session",
                obj_2="csess",
                id=self.id,
                clientid=secrets.token_hex(16),
            )
            err = "session closed"
        self.log("eror", "session closed, starting reconnect loop", obj="tunnels.session", err=err)
        self.state = "reconnecting"
        self._redial = asyncio.get_running_loop().create_task(self.redial_forever(first_after=self.reconnect_s))

    def recover(self) -> None:
        """A redial succeeded: same session, same endpoints, forwarding again."""
        if self._redial is not None:
            self._redial.cancel()
            self._redial = None
        if self.state == "reconnecting":
            self.log("info", "client session established", obj="tunnels.session")
            self.state = "online"

    async def redial_forever(self, *, first_after: float = 0.0) -> None:
        """`failed to reconnect session` with the dial error, every ``reconnect_s``, until cancelled."""
        await asyncio.sleep(first_after)
        while True:
            self.log(
                "eror",
                "failed to reconnect session",
                obj="tunnels.session",
                obj_2="csess",
                id=self.id,
                err=self.reconnect_err,
            )
            await asyncio.sleep(self.reconnect_s)

    def status(self) -> str:
        """/api/status's ``status``: online, or what the inspector shows while redialing."""
        return "online" if self.up else "reconnecting"
