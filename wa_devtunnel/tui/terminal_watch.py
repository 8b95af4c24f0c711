"""Notices that the terminal is gone when no SIGHUP says so.

On a hang-up (a closed window, a dropped ssh connection, a killed tmux pane) the kernel signals only the
terminal's session leader. Under a launcher (`make run`, `uv run`, an npm script) that leader is the launcher,
and whether we hear of it is up to it: make, for one, takes the SIGHUP and waits for its children, and we hear
nothing. Our terminal then reads end of file at once, forever, and Textual's input thread turns that into a busy
loop (Textual 8.2: an empty read is taken for a piped stdin).

A hung-up terminal reports POLLHUP on every descriptor still open on it, and fails `tcgetattr` with EIO. A thread
waits for the first (polling at most a second at a time, so a hang-up that woke no poller is still seen within a
second) and checks the second each second (where a terminal cannot be polled); then the dead terminal's
descriptors are pointed at /dev/null and `on_gone` is called, once.
"""

from __future__ import annotations

import contextlib
import errno
import os
import select
import threading
from collections.abc import Callable, Iterable

try:
    import termios
except ImportError:  # pragma: no cover - Windows: no termios, and no hang-up to watch for
    termios = None  # type: ignore[assignment]

CHECK_S = 1.0
STANDARD_FDS = (0, 1, 2)
# What a descriptor on a hung-up terminal answers; POLLNVAL (a closed descriptor) is not one of them.
_HUNG_UP_EVENTS = getattr(select, "POLLHUP", 0) | getattr(select, "POLLERR", 0)
_HUNG_UP_ERRNOS = frozenset({errno.EIO, errno.ENXIO})


def terminal_fds(candidates: Iterable[int] = STANDARD_FDS) -> list[int]:
    """Those of `candidates` open on a terminal."""
    found = []
    for fd in candidates:
        with contextlib.suppress(OSError):
            if os.isatty(fd):
                found.append(fd)
    return found


def hung_up(fd: int) -> bool:
    """The cheap check: the terminal behind `fd` answers EIO (or is no device any more)."""
    if termios is None:  # pragma: no cover - Windows
        return False
    try:
        termios.tcgetattr(fd)
    except termios.error as exc:
        return bool(exc.args) and exc.args[0] in _HUNG_UP_ERRNOS
    except OSError as exc:
        return exc.errno in _HUNG_UP_ERRNOS
    return False


def let_go_of_dead_terminal(fds: Iterable[int] = STANDARD_FDS) -> bool:
    """Point the descriptors of a hung-up terminal at /dev/null; whether any was.

    Nothing written there can be seen any more, and every write would fail with EIO: Textual's output thread
    would die on the first (leaving later writes queued for nobody), our goodbye lines would raise. Written to
    /dev/null, the exit runs as on a live terminal.
    """
    dead = [fd for fd in fds if hung_up(fd)]  # (not `isatty`: a hung-up terminal is no tty to it any more)
    if not dead:
        return False
    null = os.open(os.devnull, os.O_RDWR)
    try:
        for fd in dead:
            with contextlib.suppress(OSError):
                os.dup2(null, fd)
    finally:
        os.close(null)
    return True


class TerminalWatch:
    """A daemon thread watching the terminal descriptors; `on_gone` is called once, from that thread."""

    def __init__(self, on_gone: Callable[[], None], fds: Iterable[int] | None = None, check_s: float = CHECK_S) -> None:
        self.fds = terminal_fds() if fds is None else list(fds)
        self.on_gone = on_gone
        self.check_s = check_s
        self.gone = False
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="wa-devtunnel-terminal-watch", daemon=True)

    def start(self) -> TerminalWatch:
        """Start watching (nothing to do when no standard descriptor is a terminal, or on Windows)."""
        if self.fds and termios is not None and hasattr(select, "poll"):
            self._thread.start()
        return self

    def stop(self) -> None:
        """Stop watching (the thread ends within `check_s`)."""
        self._stop.set()

    def _run(self) -> None:
        poller = select.poll()
        polled = set(self.fds)
        for fd in polled:
            poller.register(fd, 0)  # no events asked: a hang-up (POLLHUP, POLLERR) is always reported
        while not self._stop.is_set():
            if polled:
                events = poller.poll(self.check_s * 1000)
            else:
                self._stop.wait(self.check_s)
                events = []
            if any(mask & _HUNG_UP_EVENTS for _, mask in events):
                break
            for fd, mask in events:
                if mask & select.POLLNVAL:  # not pollable here (or closed): the once-a-second check alone
                    poller.unregister(fd)
                    polled.discard(fd)
            if self._stop.is_set():
                return
            if any(hung_up(fd) for fd in self.fds):
                break
        else:
            return
        self.gone = True
        let_go_of_dead_terminal(self.fds)
        self.on_gone()
