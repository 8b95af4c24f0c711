"""Why a selection matched nothing, in words that name the real cause and what the sessions do have."""

from __future__ import annotations

from collections import Counter
from collections.abc import Sequence
from dataclasses import replace
from pathlib import Path

from wa_devtunnel.engine.events import ExchangeView
from wa_devtunnel.engine.replay.source import RecordedExchange, Selection, any_of, select
from wa_devtunnel.rules.untrusted import one_line

# The value flags: the flag, its Selection attribute (also the noun of a hint), the view attribute it matches.
_VALUE_FLAGS = (
    ("--field", "fields", "fields"),
    ("--type", "types", "message_types"),
    ("--status", "statuses", "statuses"),
    ("--signature", "signatures", "signature"),
    ("--origin", "origins", "origin"),
)
# What a "nothing matched" message lists, in this order: the first three always, the others when asked for.
_LISTED = (
    ("types", "message_types"),
    ("statuses", "statuses"),
    ("fields", "fields"),
    ("signatures", "signature"),
    ("origins", "origin"),
)
_ALWAYS_LISTED = ("types", "statuses", "fields")
_KIND_NOUNS = {"event": ("event", "events"), "verify": ("handshake", "handshakes")}
HINT_VALUES_SHOWN = 20


def no_match_message(
    exchanges: Sequence[RecordedExchange], selection: Selection, paths: Sequence[Path], nothing: str
) -> str:
    """Why nothing matched, after `nothing` (`no exchanges match`), and what the sources do have, counted.

    A flag whose values no exchange has is named as the cause (`no exchanges match --type bogus`), else
    the whole selection; then `this session (rec/x.jsonl) has 14 events: types text 12, image 2;
    statuses delivered 9, read 7; fields messages 14`.
    """
    where = sources_phrase(paths)
    has = "has" if len(paths) == 1 else "have"
    pool = [exchange.view for exchange in exchanges if exchange.view.kind in selection.kinds]
    if not pool:
        others = Counter(exchange.view.kind for exchange in exchanges)
        wanted = " or ".join(_kind_noun(kind, 2) for kind in selection.kinds)
        if not others:
            return f"{nothing}: {where} {has} no replayable exchanges"
        present = ", ".join(f"{count} {_kind_noun(kind, count)}" for kind, count in others.items())
        return f"{nothing}: {where} {has} no {wanted}, only {present}"
    return f"{nothing} {_cause(pool, selection)}: {where} {has} {session_inventory(pool, selection)}"


def _cause(pool: Sequence[ExchangeView], selection: Selection) -> str:
    """The flag whose values none of the pool has (`--type bogus`), else the whole selection in brackets."""
    for flag, noun, attribute in _VALUE_FLAGS:
        wanted: tuple[str, ...] = getattr(selection, noun)
        if wanted and not any(any_of(wanted, _view_values(view, attribute)) for view in pool):
            return f"{flag} {','.join(wanted)}"
    return f"({describe_selection(selection)})"


def session_inventory(pool: Sequence[ExchangeView], selection: Selection) -> str:
    """`14 events: types text 12, image 2; statuses delivered 9; fields messages 14`: exchanges per value."""
    kinds = Counter(view.kind for view in pool)
    head = ", ".join(f"{count} {_kind_noun(kind, count)}" for kind, count in kinds.items())
    parts = []
    for noun, attribute in _LISTED:
        if noun not in _ALWAYS_LISTED and not getattr(selection, noun):
            continue
        counts = Counter(value for view in pool for value in dict.fromkeys(_view_values(view, attribute)) if value)
        if counts:
            ranked = counts.most_common()
            shown = ", ".join(f"{one_line(value, 60)} {count}" for value, count in ranked[:HINT_VALUES_SHOWN])
            more = f" and {len(ranked) - HINT_VALUES_SHOWN} more" if len(ranked) > HINT_VALUES_SHOWN else ""
            parts.append(f"{noun} {shown}{more}")
    return f"{head}: {'; '.join(parts)}" if parts else head


def _kind_noun(kind: str, count: int) -> str:
    one, several = _KIND_NOUNS.get(kind, (kind, kind))
    return one if count == 1 else several


def sources_phrase(paths: Sequence[Path]) -> str:
    """`this session (rec/20261207-065840.jsonl)`, `these 3 sessions (a.jsonl, b.jsonl, ...)`."""
    if len(paths) == 1:
        return f"this session ({paths[0]})"
    names = ", ".join(path.name for path in paths[:3]) + (", ..." if len(paths) > 3 else "")
    return f"these {len(paths)} sessions ({names})"


def _view_values(view: ExchangeView, attribute: str) -> tuple[str, ...]:
    value = getattr(view, attribute)
    return (value,) if isinstance(value, str) else tuple(value)


def matches_with_any_kind(exchanges: Sequence[RecordedExchange], selection: Selection) -> bool:
    """Whether `--kind all` would have found something (only then is it worth suggesting)."""
    return selection.kind != "all" and bool(select(exchanges, replace(selection, kind="all")))


def describe_selection(selection: Selection) -> str:
    """A short line for the 'nothing matched' message, so the developer sees what was asked."""
    parts = [f"kind {'/'.join(selection.kinds)}"]
    for label, values in (
        ("id", selection.ids),
        ("field", selection.fields),
        ("type", selection.types),
        ("status", selection.statuses),
        ("signature", selection.signatures),
        ("origin", selection.origins),
    ):
        if values:
            parts.append(f"{label} {','.join(values)}")
    if selection.seqs:
        parts.append("seq " + ",".join(f"{a}" if a == b else f"{a}-{b}" for a, b in selection.seqs))
    if selection.since:
        parts.append(f"since {selection.since.isoformat()}")
    if selection.until:
        parts.append(f"until {selection.until.isoformat()}")
    if selection.last is not None:
        parts.append(f"last {selection.last}")
    return ", ".join(parts)
