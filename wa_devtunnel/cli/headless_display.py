"""The headless display's pace: lines written in batches by a thread, and coalesced under overload.

The receiver, the recorder and this printer share one event loop: every line formatted is CPU the next
request waits for, and a stdout nobody reads fast enough would block the loop on write(2). So the
printer formats what arrived since its last turn (at most one turn per BATCH_SECONDS), hands the text to
a writer thread (one write per stream run), and past its budget (DISPLAY_RATE exchanges a second after a
burst of DISPLAY_BURST, or a writer more than WRITER_BEHIND_BYTES behind) it counts exchanges instead of
formatting them: "N exchange(s) not shown". Answers and the recording never wait on any of this.
"""

from __future__ import annotations

import threading
import time
from collections import deque
from collections.abc import Callable, Iterable
from typing import TextIO

# The printer's pace: one turn at most this often while exchanges keep coming (a lone one prints at once).
BATCH_SECONDS = 0.05
# Exchanges shown per second once a burst has used DISPLAY_BURST: more than anyone reads on a terminal,
# a few percent of one core to format.
DISPLAY_RATE = 500.0
DISPLAY_BURST = 1000
# Text handed to the writer and not yet written: past this the reader of stdout is behind, and the
# printer coalesces rather than queue more (or block the receiver's loop on a full pipe).
WRITER_BEHIND_BYTES = 256 * 1024
# A run of exchanges not shown is reported when the display resumes, else at least this often.
SKIPPED_REPORT_SECONDS = 1.0
# How long the end of a run waits for the writer to finish (a reader that stopped reading loses the rest).
CLOSE_TIMEOUT_SECONDS = 10.0

Runs = list[tuple[TextIO, str]]


class DisplayBudget:
    """A token bucket of exchanges to show: DISPLAY_BURST at once, refilled at DISPLAY_RATE a second.

    Once it runs dry (or the writer is `behind`) the display coalesces: nothing is shown, and every
    exchange still uses a token, until arrivals have stayed under the rate long enough to refill half the
    burst. So a sustained flood costs no formatting at all, and a burst within the budget shows whole.
    """

    def __init__(
        self,
        rate: float = DISPLAY_RATE,
        burst: int = DISPLAY_BURST,
        clock: Callable[[], float] = time.monotonic,
        behind: Callable[[], bool] = lambda: False,
    ) -> None:
        self.rate = rate
        self.burst = float(burst)
        self.clock = clock
        self.behind = behind
        self.coalescing = False
        self._tokens = float(burst)
        self._at = clock()

    def take(self, now: float | None = None) -> bool:
        """True: show this exchange. False: count it as not shown (`now`: the clock, read once for a batch)."""
        now = self.clock() if now is None else now
        tokens = min(self.burst, self._tokens + (now - self._at) * self.rate)
        self._at = now
        if self.coalescing and tokens >= self.burst / 2 and not self.behind():
            self.coalescing = False
        elif not self.coalescing and (tokens < 1.0 or self.behind()):
            self.coalescing = True
        self._tokens = max(0.0, tokens - 1.0)
        return not self.coalescing

    def spend(self, count: int) -> None:
        """`count` more exchanges not shown (what as many take() with the same clock reading would do, once the
        budget has said no: within one reading the tokens only go down)."""
        self._tokens = max(0.0, self._tokens - count)


class LineWriter:
    """Writes runs of text in a thread, in order: the event loop never blocks on a slow stdout."""

    def __init__(self) -> None:
        self._runs: deque[tuple[TextIO, str]] = deque()
        self._pending = 0
        self._lock = threading.Condition()
        self._closing = False
        self._thread = threading.Thread(target=self._work, name="headless-writer", daemon=True)
        self._thread.start()

    @property
    def pending_bytes(self) -> int:
        """Characters handed over and not yet written."""
        return self._pending

    def behind(self) -> bool:
        return self._pending > WRITER_BEHIND_BYTES

    def put(self, runs: Iterable[tuple[TextIO, str]]) -> None:
        with self._lock:
            for run in runs:
                self._runs.append(run)
                self._pending += len(run[1])
            self._lock.notify()

    def _work(self) -> None:
        while True:
            with self._lock:
                while not self._runs and not self._closing:
                    self._lock.wait()
                if not self._runs:
                    return
                stream, text = self._runs.popleft()
            try:
                stream.write(text)
                stream.flush()
            except (OSError, ValueError):  # a closed pipe or stream: the display is gone, the engine is not
                pass
            with self._lock:
                self._pending -= len(text)

    def close(self, timeout: float = CLOSE_TIMEOUT_SECONDS) -> bool:
        """Write what was handed over, then stop; False when the writer did not finish within `timeout`."""
        with self._lock:
            self._closing = True
            self._lock.notify()
        self._thread.join(timeout)
        return not self._thread.is_alive()


def joined_runs(chunks: Iterable[tuple[TextIO, str]]) -> Runs:
    """Consecutive chunks for one stream joined into one write, the order across streams kept."""
    grouped: list[tuple[TextIO, list[str]]] = []
    for stream, text in chunks:
        if grouped and grouped[-1][0] is stream:
            grouped[-1][1].append(text)
        else:
            grouped.append((stream, [text]))
    return [(stream, "".join(texts)) for stream, texts in grouped]
