"""The screen comes second: the UI runs below its engine's priority (engines start above it) and collects less."""

from __future__ import annotations

import contextlib
import gc
import os
from concurrent.futures import Future, ThreadPoolExecutor
from typing import Any

from wa_devtunnel.engine.channel.child import EngineChild
from wa_devtunnel.engine.channel.client import EngineClient

# The screen yields the CPU to its engine: when a burst keeps the machine busy (Meta redelivering a
# backlog, a load test of the bot), the scheduler serves the process Meta waits for first. Keys still
# get their share (benchmarks/tui_burst.py: p95 17 ms during a burst on 2 shared cores).
UI_NICE = 10
GC_YOUNG_THRESHOLD = 10_000


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


def collect_less_often() -> None:
    """A burst makes tens of objects per exchange and keeps one view of each: the cyclic garbage collector
    then ran every ~20 exchanges and walked the young views each time (3 us per exchange, measured);
    every 10,000 allocations instead of 700, it costs a third of that. Cycles wait longer, memory does not
    grow with it (views are freed by reference counting)."""
    gc.set_threshold(GC_YOUNG_THRESHOLD, 10, 10)
