"""Which session `replay` and `export` read when none is named: the latest one with something to send.

Never a session written by `replay` itself, never one without exchanges of the asked kind, and never
the live session of a running wa-devtunnel (it is still growing, and replaying it into itself loops);
each of those can still be named.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from wa_devtunnel.engine.instance import read_instance
from wa_devtunnel.engine.replay.source import LoadedRecordings, ReplayError, is_replay_session, load_recordings
from wa_devtunnel.engine.sessions import session_paths

# What a kind is called in a sentence: (one, several).
_NOUNS = {("event",): ("event", "events"), ("verify",): ("handshake", "handshakes")}
_ANY_KIND = ("exchange", "exchanges")


@dataclass(frozen=True, slots=True)
class PickedSession:
    """The session picked by default, already read, and what was passed over to get there."""

    path: Path
    loaded: LoadedRecordings
    count: int  # exchanges of the asked kinds in it
    kinds: tuple[str, ...]
    live_left_out: tuple[Path, ...] = ()  # the running instance's files, newer than `path`
    without_kind: int = 0  # newer sessions with nothing of the asked kinds


def kind_noun(kinds: Sequence[str], count: int = 2) -> str:
    """`event`/`events`, `handshake`/`handshakes`, `exchange`/`exchanges` (both kinds)."""
    one, several = _NOUNS.get(tuple(kinds), _ANY_KIND)
    return one if count == 1 else several


def live_session_files(recordings_dir: Path) -> tuple[Path, ...]:
    """The files the running instance records to (its session and the parts it rolled over into)."""
    instance = read_instance(recordings_dir)
    if instance is None or not instance.recording:
        return ()
    stem = Path(instance.recording).stem
    part = re.compile(rf"{re.escape(stem)}(-\d+)?\.jsonl")
    return tuple(path for path in session_paths(recordings_dir) if part.fullmatch(path.name))


def pick_latest_session(recordings_dir: Path, kinds: tuple[str, ...]) -> PickedSession:
    """The newest session (not a replay, not the live one) holding an exchange of `kinds`; ReplayError if none."""
    candidates = [path for path in session_paths(recordings_dir) if not is_replay_session(path)]
    if not candidates:
        raise ReplayError(
            f"no recordings in {recordings_dir}: run `wa-devtunnel` to record webhooks, "
            "or name a session file (wa-devtunnel sessions lists them)"
        )
    live = set(live_session_files(recordings_dir))
    live_left_out: list[Path] = []
    without_kind = 0
    for path in reversed(candidates):
        if path in live:
            live_left_out.insert(0, path)
            continue
        try:
            loaded = load_recordings([path])
        except ReplayError:  # removed or unreadable meanwhile: an older one may do
            continue
        count = sum(1 for exchange in loaded.exchanges if exchange.kind in kinds)
        if count:
            return PickedSession(path, loaded, count, kinds, tuple(live_left_out), without_kind)
        without_kind += 1
    raise ReplayError(_nothing_to_pick(recordings_dir, kinds, without_kind, live_left_out))


def _nothing_to_pick(recordings_dir: Path, kinds: tuple[str, ...], looked_at: int, live: Sequence[Path]) -> str:
    noun = kind_noun(kinds)
    text = f"no session in {recordings_dir} has {noun}"
    text += f" ({looked_at} looked at)" if looked_at else ""
    if live:
        text += f"; the running wa-devtunnel's {live[0].name} is left out: name it to use it ({live[0].stem})"
    return text + "; `wa-devtunnel sessions` lists them all"


def picked_note(picked: PickedSession, verb: str, shown: Path) -> str:
    """`Replaying recordings/X.jsonl (latest session with events; 14 events)`, plus what was passed over."""
    with_what = "events or handshakes" if set(picked.kinds) >= {"event", "verify"} else kind_noun(picked.kinds)
    parts = [f"latest session with {with_what}", f"{picked.count} {kind_noun(picked.kinds, picked.count)}"]
    if picked.without_kind:
        newer = "session" if picked.without_kind == 1 else "sessions"
        parts.append(f"{picked.without_kind} newer {newer} without {kind_noun(picked.kinds)} skipped")
    if picked.live_left_out:
        parts.append(f"the running wa-devtunnel's {picked.live_left_out[0].name} left out, name it to use it")
    return f"{verb} {shown} ({'; '.join(parts)})"
