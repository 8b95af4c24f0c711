"""The agent's session with ngrok's edge, followed through its own log lines (pyngrok's `log_event_callback`).

The real agent survives Wi-Fi changes, sleep and DNS failures without exiting: it logs `session closed,
starting reconnect loop` or `heartbeat timeout, terminating session`, then `failed to reconnect session`
with its reason every 1-30 s, and `client session established` once it is back. Meanwhile Meta's
deliveries fail with ERR_NGROK_3200. A "Restart" from ngrok's dashboard re-executes the agent under
the same pid: a fresh start (`starting web service` again) that has lost our endpoint.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from dataclasses import dataclass

from wa_devtunnel.engine.tunnel.ngrok_errors import AgentLog, describe, one_line

REASON_LIMIT = 300
_UP = ("client session established",)
_DOWN = ("session closed, starting reconnect loop", "failed to reconnect session", "heartbeat timeout")
_GENERIC_ERRS = ("", "nil", "session closed")
_FRESH_START = ("starting web service", "open config file", "no configuration paths supplied")


@dataclass(frozen=True, slots=True)
class SessionView:
    """One consistent reading of the session state."""

    up: bool
    reason: str
    restarted: bool
    failing_since: float | None


class AgentSession:
    """What the agent's log says about its session; fed from pyngrok's reader thread, read from the event loop."""

    def __init__(self, redact: Callable[[str], str]) -> None:
        self._redact = redact
        self._lock = threading.Lock()
        self._up = False
        self._reason = ""
        self._serving = False
        self._restarted = False
        self._failing_since: float | None = None

    def on_log(self, log: AgentLog) -> None:
        """pyngrok's `log_event_callback`: never raises (an exception would end pyngrok's reader thread)."""
        try:
            self._follow(log)
        except Exception:  # a strange line must not stop the reader that drains the agent's stdout
            return

    def _follow(self, log: AgentLog) -> None:
        message = (log.msg or "").lower()
        with self._lock:
            if any(word in message for word in _UP):
                self._up, self._reason, self._failing_since = True, "", None
            elif any(word in message for word in _DOWN):
                # "session closed" after "heartbeat timeout, terminating session" says less: keep the first.
                if self._up or not self._reason or (log.err or "").strip() not in _GENERIC_ERRS:
                    self._reason = self._redact(one_line(describe(log), REASON_LIMIT))
                self._up = False
                if self._failing_since is None:
                    self._failing_since = time.monotonic()
            elif self._serving and any(word in message for word in _FRESH_START):
                self._restarted, self._up = True, False

    def serving(self) -> None:
        """Our endpoint exists from now on: a fresh start of the agent after this means it is lost."""
        with self._lock:
            self._serving = True

    def view(self) -> SessionView:
        """The state now."""
        with self._lock:
            return SessionView(self._up, self._reason, self._restarted, self._failing_since)
