"""The screen comes second: the UI runs below its engine's priority, and engines start above the screen's."""

from __future__ import annotations

import contextlib
import os
from concurrent.futures import Future, ThreadPoolExecutor
from typing import Any

from wa_devtunnel.engine.channel.child import EngineChild
from wa_devtunnel.engine.channel.client import EngineClient

# The screen yields the CPU to its engine: when a burst keeps the machine busy (Meta redelivering a
# backlog, a load test of the bot), the scheduler serves the process Meta waits for first. Keys still
# get their share (benchmarks/tui_burst.py: p95 17 ms during a burst on 2 shared cores).
UI_NICE = 10


class EngineStarter:
    """Starts engines from a thread made before the UI lowered its priority (Linux's nice is per thread):
    the first engine and any restarted one run at the user's own priority, above the screen's."""

    def __init__(self) -> None:
        self._thread = ThreadPoolExecutor(max_workers=1, thread_name_prefix="wa-devtunnel-engine-starter")
        self._thread.submit(lambda: None).result()  # the thread exists now, at today's priority

    def start(self, child: EngineChild, **options: Any) -> Future[EngineClient]:
        """`child.start(**options)` on the starter's thread."""
        return self._thread.submit(child.start, **options)

    def close(self) -> None:
        self._thread.shutdown(wait=False)


def yield_to_engine() -> None:
    """Lower the screen's priority below its engine's (once the engine runs); best effort, never fatal."""
    with contextlib.suppress(OSError, AttributeError):
        os.nice(UI_NICE)
