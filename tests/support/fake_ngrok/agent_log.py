"""What the agent logged, as pyngrok hands it over (``PyngrokConfig.log_event_callback``), for tests to wait on."""

from __future__ import annotations

import threading
import time

from pyngrok.log import NgrokLog


class AgentLog:
    """Pass as ``log_event_callback``; collects every line pyngrok parses (startup and monitor thread)."""

    def __init__(self) -> None:
        self.lines: list[NgrokLog] = []
        self._changed = threading.Condition()

    def __call__(self, log: NgrokLog) -> None:
        with self._changed:
            self.lines.append(log)
            self._changed.notify_all()

    def with_msg(self, msg: str) -> list[NgrokLog]:
        with self._changed:
            return [line for line in self.lines if line.msg == msg]

    def wait_for(self, msg: str, count: int = 1, timeout: float = 15.0) -> list[NgrokLog]:
        """Block until ``msg`` was logged ``count`` times; AssertionError naming what came instead."""
        deadline = time.monotonic() + timeout
        with self._changed:
            while len(found := [line for line in self.lines if line.msg == msg]) < count:
                left = deadline - time.monotonic()
                if left <= 0:
                    seen = [line.msg for line in self.lines][-15:]
                    raise AssertionError(f"{msg!r} logged {len(found)} of {count} times; last lines: {seen}")
                self._changed.wait(left)
            return found
