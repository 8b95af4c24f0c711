"""What the inspector remembers and how it filters: plain Python, testable without a terminal."""

from __future__ import annotations

import shlex
from collections import OrderedDict, deque
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field, replace
from typing import Any

from wa_devtunnel.engine.exchange_view import ExchangeView, text_in_record

# Filter keys a developer types in the search bar, e.g. `kind:verify sig:invalid type:text hello`.
FILTER_KEYS = {
    "kind": "kind",
    "field": "field",
    "type": "type",
    "status": "status",
    "sig": "sig",
    "signature": "sig",
    "account": "account",
    "origin": "origin",
    "flag": "flag",
    "http": "http",
}
FILTER_HELP = (
    "kind:verify|event|other  field:messages  type:text  status:failed  sig:invalid  "
    "account:NAME  origin:meta|other|local|selftest|replay|sample  flag:batch|duplicate|dashboard-test  "
    "http:4xx  -key:value excludes; other words search the bodies"
)


@dataclass(frozen=True, slots=True)
class ExchangeFilter:
    """A parsed search bar: key:value conditions (ANDed) plus free text matched against bodies."""

    include: tuple[tuple[str, str], ...] = ()
    exclude: tuple[tuple[str, str], ...] = ()
    text: str = ""
    problems: tuple[str, ...] = ()

    @property
    def active(self) -> bool:
        """Whether anything is filtered at all."""
        return bool(self.include or self.exclude or self.text)

    def describe(self) -> str:
        """A short line for the status bar."""
        parts = [f"{k}:{v}" for k, v in self.include] + [f"-{k}:{v}" for k, v in self.exclude]
        if self.text:
            parts.append(f'"{self.text}"')
        return " ".join(parts)


def parse_filter(query: str) -> ExchangeFilter:
    """Turn `kind:event -sig:valid "not delivered"` into a filter; unknown keys are reported, not fatal."""
    try:
        tokens = shlex.split(query)
    except ValueError:
        tokens = query.split()
    include: list[tuple[str, str]] = []
    exclude: list[tuple[str, str]] = []
    words: list[str] = []
    problems: list[str] = []
    for token in tokens:
        negate = token.startswith("-") and ":" in token
        body = token[1:] if negate else token
        key, sep, value = body.partition(":")
        if sep and key.lower() in FILTER_KEYS and value:
            (exclude if negate else include).append((FILTER_KEYS[key.lower()], value.lower()))
        elif sep and key and key.isalpha() and value and key.lower() not in FILTER_KEYS:
            problems.append(f"unknown filter key {key!r}")
            words.append(token)
        else:
            words.append(token)
    return ExchangeFilter(tuple(include), tuple(exclude), " ".join(words), tuple(problems))


def _values(view: ExchangeView, key: str) -> Iterable[str]:
    if key == "kind":
        return (view.kind,)
    if key == "field":
        return view.fields
    if key == "type":
        return view.message_types
    if key == "status":
        return view.statuses
    if key == "sig":
        return (view.signature,)
    if key == "account":
        return (view.account or "",)
    if key == "origin":
        return (view.origin,)
    if key == "flag":
        return view.flags + (("failed",) if view.verify_ok is False else ())
    if key == "http":
        return (str(view.status), f"{str(view.status)[:1]}xx")
    return ()


def matches_conditions(view: ExchangeView, flt: ExchangeFilter) -> bool:
    """The key:value part of a filter (free text is matched against bodies separately)."""
    for key, value in flt.include:
        if not any(v.lower().startswith(value) for v in _values(view, key)):
            return False
    return all(not any(v.lower().startswith(value) for v in _values(view, key)) for key, value in flt.exclude)


def is_problem(view: ExchangeView) -> bool:
    """What a bot developer calls an error: a failed handshake, a bad signature, a failed delivery (a status
    `failed`, e.g. 131026 or 131049), an error answer to a webhook request (any 5xx), or the backend failing
    or refusing a forwarded one. A scanner's 404 on another path is not one: it says nothing about the bot."""
    return (
        view.verify_ok is False
        or view.signature == "invalid"
        or "failed" in view.statuses
        or view.status >= 500
        or (view.status >= 400 and view.kind != "other")
        or bool(view.forward_error)
        or (view.forward_status or 0) >= 400
    )


@dataclass(slots=True)
class Counters:
    """The header's tallies for the whole session (clearing the list keeps them: the session goes on)."""

    handshakes_ok: int = 0
    handshakes_failed: int = 0
    events: int = 0
    signature_failures: int = 0
    errors: int = 0
    others: int = 0

    def count(self, view: ExchangeView) -> None:
        """Add one exchange."""
        if view.kind == "verify":
            if view.verify_ok:
                self.handshakes_ok += 1
            else:
                self.handshakes_failed += 1
        elif view.kind == "event":
            self.events += 1
        else:
            self.others += 1
        if view.signature == "invalid":
            self.signature_failures += 1
        if is_problem(view):
            self.errors += 1


def record_size(record: Mapping[str, Any]) -> int:
    """Roughly what a cached record costs: its body dominates (a few hundred bytes of the rest are ignored)."""
    request = record.get("request")
    if not isinstance(request, Mapping):
        return 0
    body = request.get("body", request.get("body_b64", ""))
    return len(body) if isinstance(body, str) else 0


# Exchanges the inspector keeps in memory, filters working over all of them: a view, its store entries and
# its place in the list cost ~530 bytes (50 MB at the cap; the recording keeps everything).
MAX_VIEWS = 100_000


@dataclass(slots=True)
class ExchangeStore:
    """Bounded memory of the session: every view (up to `max_views`) and a small cache of full records.

    The cache is bounded in bytes as well as in records: 300 bodies of 3 MB would be a gigabyte, and a
    record that falls out is read back from the recording when it is selected again.
    """

    max_views: int = MAX_VIEWS
    max_records: int = 300
    max_record_bytes: int = 32 * 1024 * 1024
    views: deque[ExchangeView] = field(default_factory=deque)
    counters: Counters = field(default_factory=Counters)
    records: OrderedDict[str, Mapping[str, Any]] = field(default_factory=OrderedDict)
    dropped: int = 0
    record_bytes: int = 0

    def add(self, view: ExchangeView, record: Mapping[str, Any] | None = None) -> None:
        """Remember one exchange; the oldest are forgotten beyond the caps (the recording keeps them)."""
        self.views.append(view)
        self.counters.count(view)
        if len(self.views) > self.max_views:
            self.views.popleft()
            self.dropped += 1
        if record is not None:
            self.remember(view.id, record)

    def clear(self) -> int:
        """Forget every exchange shown so far (a display action: the recording keeps them); how many."""
        count = len(self.views)
        self.views.clear()
        self.records.clear()
        self.record_bytes = 0
        return count

    def _index(self, exchange_id: str) -> int | None:
        """Where an exchange is, looking from the newest (late updates concern recent exchanges).

        No index by id: 50,000 of them would cost the UI ~2 MB, for a lookup a late backend answer needs.
        """
        views = self.views
        for index in range(len(views) - 1, -1, -1):
            if views[index].id == exchange_id:
                return index
        return None

    def replace(self, view: ExchangeView) -> None:
        """Swap in an updated view (e.g. a late forward result), keeping its place."""
        index = self._index(view.id)
        if index is not None:
            self.views[index] = view

    def forward_completed(self, exchange_id: str, forward: Mapping[str, Any]) -> ExchangeView | None:
        """--ack-first: the backend's late answer, into the view and the cached record; the updated view."""
        index = self._index(exchange_id)
        if index is None:
            return None
        view = self.views[index]
        status, error = forward.get("status"), str(forward.get("error") or "")
        updated = replace(view, forward_status=status, forward_error=error, forward_pending=False)
        self.replace(updated)
        if is_problem(updated) and not is_problem(view):  # the backend's late answer made it an error
            self.counters.errors += 1
        record = self.cached(exchange_id)
        if record is not None:
            self.remember(exchange_id, {**record, "forward": dict(forward)})
        return updated

    def remember(self, exchange_id: str, record: Mapping[str, Any]) -> None:
        """Keep a full record in the small LRU cache (the newest one always, however big)."""
        previous = self.records.pop(exchange_id, None)
        if previous is not None:
            self.record_bytes -= record_size(previous)
        self.records[exchange_id] = record
        self.record_bytes += record_size(record)
        while len(self.records) > 1 and (
            len(self.records) > self.max_records or self.record_bytes > self.max_record_bytes
        ):
            _, forgotten = self.records.popitem(last=False)
            self.record_bytes -= record_size(forgotten)

    def cached(self, exchange_id: str) -> Mapping[str, Any] | None:
        """A full record if it is still cached."""
        record = self.records.get(exchange_id)
        if record is not None:
            self.records.move_to_end(exchange_id)
        return record


@dataclass(slots=True)
class ListFilter:
    """What the list shows: the search bar's filter, 'problems only', and body matches for free text."""

    query: ExchangeFilter = field(default_factory=ExchangeFilter)
    problems_only: bool = False
    text_matches: set[str] = field(default_factory=set)

    @property
    def active(self) -> bool:
        """Whether anything is hidden."""
        return self.query.active or self.problems_only

    def shows(self, view: ExchangeView) -> bool:
        """Whether one exchange belongs in the list."""
        if self.problems_only and not is_problem(view):
            return False
        if self.query.text and view.id not in self.text_matches:
            return False
        return matches_conditions(view, self.query)

    def note_arrival(self, view: ExchangeView, record: Mapping[str, Any] | None) -> None:
        """Free-text matching for exchanges that arrive after the search started."""
        if self.query.text and record is not None and text_in_record(record, self.query.text):
            self.text_matches.add(view.id)

    def describe(self) -> str:
        """For the header."""
        parts = ["problems only"] if self.problems_only else []
        if self.query.active:
            parts.append(self.query.describe())
        return ", ".join(parts)
