"""Which recorded exchanges a replay sends: reading session files and applying the selection."""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from fnmatch import fnmatchcase
from pathlib import Path
from typing import Any

from wa_devtunnel.engine.events import ExchangeView
from wa_devtunnel.engine.exchange_view import view_from_record
from wa_devtunnel.engine.recording import read_recording, request_body
from wa_devtunnel.rules.decode.payload import decode_payload, full_summary, merged_flags

REPLAY_SUFFIX = "replay"
REPLAYABLE_KINDS = ("event", "verify")
_REPLAY_FILE_RE = re.compile(rf"-{REPLAY_SUFFIX}(-\d+)?\.jsonl$")
_SEQ_RE = re.compile(r"^\s*(\d+)\s*(?:-\s*(\d+)\s*)?$")


class ReplayError(Exception):
    """The replay cannot start (no recording, nothing selected, missing secret/token): exit 2."""


class RecordedExchange:
    """One replayable record, with the file it came from, its request body and its display view.

    The view (with the reader rule's current summary) is made when first asked for: a replay of every
    event of a session selects by kind and sends, and never needs it (`kind`, `id` and `seq` are read
    from the record as the view reads them). Read-only by convention, like the frozen dataclass it was.
    """

    __slots__ = ("_view", "body", "record", "session")

    def __init__(self, session: Path, record: Mapping[str, Any], view: ExchangeView | None, body: bytes) -> None:
        self.session = session
        self.record = record
        self.body = body
        self._view = view

    @property
    def view(self) -> ExchangeView:
        """The display view of the record, its summary derived by DESIGN.md's reader rule when outdated."""
        if self._view is None:
            self._view = view_from_record(with_current_summary(self.record, self.body))
        return self._view

    @property
    def kind(self) -> str:
        """`event` or `verify` (what load_recordings keeps), as the view says it."""
        return self._view.kind if self._view is not None else str(self.record.get("kind", "other"))

    @property
    def id(self) -> str:
        return self._view.id if self._view is not None else str(self.record.get("id", ""))

    @property
    def seq(self) -> int:
        return self._view.seq if self._view is not None else int(self.record.get("seq", 0) or 0)

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, RecordedExchange):
            return NotImplemented
        return (self.session, self.record, self.body) == (other.session, other.record, other.body)

    __hash__ = None  # type: ignore[assignment]  # the record is a mutable mapping

    def __repr__(self) -> str:
        return f"RecordedExchange(session={self.session!r}, kind={self.kind!r}, id={self.id!r}, seq={self.seq!r})"


@dataclass(frozen=True, slots=True)
class Selection:
    """What to replay; categories are ANDed, values inside one category are ORed."""

    ids: tuple[str, ...] = ()
    seqs: tuple[tuple[int, int], ...] = ()
    last: int | None = None
    fields: tuple[str, ...] = ()
    types: tuple[str, ...] = ()
    statuses: tuple[str, ...] = ()
    signatures: tuple[str, ...] = ()
    origins: tuple[str, ...] = ()
    since: datetime | None = None
    until: datetime | None = None
    kind: str | None = None

    @property
    def kinds(self) -> tuple[str, ...]:
        """Events by default; everything replayable when exchanges are picked by id or seq."""
        kind = self.kind or ("all" if self.ids or self.seqs else "event")
        return REPLAYABLE_KINDS if kind == "all" else (kind,)


@dataclass(frozen=True, slots=True)
class LoadedRecordings:
    """Every replayable exchange of the sources, in file order, plus what was skipped and why."""

    paths: tuple[Path, ...]
    exchanges: tuple[RecordedExchange, ...]
    problems: tuple[str, ...]


def parse_seq_ranges(text: str) -> tuple[tuple[int, int], ...]:
    """`3`, `5-9` or `1,4-6` into inclusive ranges; ValueError names the bad part."""
    ranges = []
    for part in text.split(","):
        match = _SEQ_RE.match(part)
        if not match:
            raise ValueError(f"{part.strip()!r} is not a sequence number or range like 5-9")
        low = int(match.group(1))
        high = int(match.group(2) or low)
        if high < low:
            raise ValueError(f"{part.strip()!r} ends before it starts")
        ranges.append((low, high))
    return tuple(ranges)


def parse_timestamp(text: str) -> datetime:
    """ISO 8601 (`2026-11-26T21:55:00Z`, `2026-11-26 21:55`, `2026-11-26`); no zone means UTC like the records."""
    try:
        moment = datetime.fromisoformat(text.strip())
    except ValueError:
        raise ValueError(f"{text!r} is not an ISO timestamp such as 2026-11-26T21:55:00Z") from None
    return moment.replace(tzinfo=UTC) if moment.tzinfo is None else moment.astimezone(UTC)


def is_replay_session(path: Path) -> bool:
    """Sessions written by `replay` itself, which are never the default source."""
    return bool(_REPLAY_FILE_RE.search(path.name))


def load_recordings(paths: Sequence[Path]) -> LoadedRecordings:
    """Read each file; a missing or unreadable file is a ReplayError, a damaged line a problem."""
    exchanges: list[RecordedExchange] = []
    problems: list[str] = []
    for path in paths:
        try:
            read = read_recording(path)
        except IsADirectoryError:
            raise ReplayError(f"{path} is a directory, not a session file") from None
        except OSError as exc:
            raise ReplayError(f"cannot read {path}: {exc.strerror or exc}") from None
        problems += [f"{path.name}: {problem}" for problem in read.problems]
        for record in read.records:
            exchange, problem = _replayable(path, record)
            if exchange is not None:
                exchanges.append(exchange)
            elif problem:
                problems.append(f"{path.name}: {problem}")
    return LoadedRecordings(tuple(paths), tuple(exchanges), tuple(problems))


def _replayable(path: Path, record: Mapping[str, Any]) -> tuple[RecordedExchange | None, str]:
    """Skip what is not a webhook Meta could send again: late forward answers, our self-tests."""
    kind = record.get("kind")
    if kind not in REPLAYABLE_KINDS or record.get("origin") == "selftest":
        return None, ""
    where = f"seq {record.get('seq', '?')}"
    if record.get("request_body_truncated"):
        return None, f"{where} skipped: its body was too large and only a prefix was recorded"
    request = record.get("request")
    if not isinstance(request, Mapping):
        return None, f"{where} skipped: no request"
    try:
        body = request_body(request)
    except ValueError as exc:
        return None, f"{where} skipped: {exc}"
    return RecordedExchange(path, record, None, body), ""


def with_current_summary(record: Mapping[str, Any], body: bytes) -> Mapping[str, Any]:
    """The record with a summary this decoder would write, so selection sees today's types and statuses.

    The summary is derived data: a partial one (what the receiver knew: its flags and accounts) is completed
    from the body by full_summary; a line without one (or without its items, or written by a decoder
    older than item `values`) is decoded again from its body; any other is used as recorded.
    """
    summary = record.get("summary")
    if isinstance(summary, Mapping) and summary.get("partial") is True:
        return {**record, "summary": full_summary(summary, body)}
    items = summary.get("items") if isinstance(summary, Mapping) else None
    current = isinstance(items, list) and all(isinstance(i, Mapping) and "values" in i for i in items)
    if current or record.get("kind") != "event":
        return record
    decoded = decode_payload(body, values=False).to_dict()
    if isinstance(summary, Mapping):  # flags only the receiver could know (duplicate) stay
        decoded["flags"] = merged_flags(decoded["flags"], summary.get("flags"))
    return {**record, "summary": decoded}


def select(exchanges: Iterable[RecordedExchange], selection: Selection) -> list[RecordedExchange]:
    """Apply the selection in recording order; --last takes the last N of what matched."""
    if _kind_only(selection):  # the default (every event): no view needed, none made
        kinds = selection.kinds
        chosen = [exchange for exchange in exchanges if exchange.kind in kinds]
    else:
        chosen = [exchange for exchange in exchanges if _matches(exchange.view, selection)]
    if selection.last is not None:
        chosen = chosen[-selection.last :] if selection.last else []
    return chosen


def _kind_only(selection: Selection) -> bool:
    """The selection asks for nothing but kinds (and maybe --last)."""
    return not (
        selection.ids
        or selection.seqs
        or selection.fields
        or selection.types
        or selection.statuses
        or selection.signatures
        or selection.origins
        or selection.since is not None
        or selection.until is not None
    )


def _matches(view: ExchangeView, selection: Selection) -> bool:
    if view.kind not in selection.kinds:
        return False
    picked = any(view.id.startswith(prefix) for prefix in selection.ids) or any(
        low <= view.seq <= high for low, high in selection.seqs
    )
    if (selection.ids or selection.seqs) and not picked:
        return False
    conditions = (
        (selection.fields, view.fields),
        (selection.types, view.message_types),
        (selection.statuses, view.statuses),
        (selection.signatures, (view.signature,)),
        (selection.origins, (view.origin,)),
    )
    if not all(any_of(wanted, have) for wanted, have in conditions):
        return False
    if selection.since is None and selection.until is None:
        return True
    try:
        moment = parse_timestamp(view.received_at)
    except ValueError:
        return False
    return (selection.since is None or moment >= selection.since) and (
        selection.until is None or moment <= selection.until
    )


def any_of(wanted: tuple[str, ...], have: Iterable[str]) -> bool:
    """No condition matches everything; otherwise one value must match, ignoring case (`group_*` as a pattern)."""
    if not wanted:
        return True
    lowered = {value.lower() for value in have}
    return any(
        value.lower() in lowered
        or (any(c in value for c in "*?[") and any(fnmatchcase(have_one, value.lower()) for have_one in lowered))
        for value in wanted
    )
