"""What a front end shows of one exchange: the small view of a record and the words both front ends share."""

from __future__ import annotations

import sys
import time
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime
from functools import lru_cache
from pathlib import Path
from typing import Any

from wa_devtunnel.engine.recording import summary_is_partial, with_full_summary


@dataclass(slots=True)
class ExchangeView:
    """What a front end shows for one exchange, small enough to keep thousands in memory.

    Never changed once made (a late backend answer makes a new one, `dataclasses.replace`); not frozen
    because a frozen dataclass takes 8x longer to build, and a TUI builds one per event of a burst.
    """

    id: str
    seq: int
    received_at: str
    kind: str
    method: str
    path: str
    status: int
    signature: str
    signature_detail: str
    verify_ok: bool | None
    verify_reason: str
    headline: str
    fields: tuple[str, ...]
    account: str | None
    flags: tuple[str, ...]
    elapsed_ms: float
    origin: str
    offset: int = -1
    message_types: tuple[str, ...] = ()
    statuses: tuple[str, ...] = ()
    forward_status: int | None = None
    forward_error: str = ""
    forward_pending: bool = False
    # The session file `offset` refers to (a session rolls over into several files).
    recording: Path | None = None
    # Who sent it: the address the tunnel saw (its forwarded header), else the socket peer; request-derived text.
    client: str = ""


# A front end keeps a view of every exchange of the session: the strings and tuples most of them share
# (kind, path, signature, headline of a status, fields...) are kept once, not once per exchange.
_SHARED_LIMIT = 4096
_shared_tuples: dict[tuple[str, ...], tuple[str, ...]] = {}
_paths_by_name: dict[str, Path] = {}


def _text(value: object) -> str:
    """`str(value)`, one copy per distinct value (interned strings are freed with their last user)."""
    text = str(value)
    return sys.intern(text) if type(text) is str else text


def _strings(values: Any) -> tuple[str, ...]:
    """A tuple of names, one copy per distinct tuple (a bounded table: it forgets when full)."""
    shared = tuple(values)
    if len(_shared_tuples) >= _SHARED_LIMIT:
        _shared_tuples.clear()
    try:
        return _shared_tuples.setdefault(shared, shared)
    except TypeError:  # an unhashable item from a hostile record: kept as it is
        return shared


VIEW_FIELDS = tuple(name for name in ExchangeView.__dataclass_fields__)
_TEXT_FIELDS = ("kind", "method", "path", "signature", "signature_detail", "verify_reason", "headline", "origin")
_SHARED_TEXT = tuple(VIEW_FIELDS.index(name) for name in (*_TEXT_FIELDS, "client"))
_SHARED_TUPLES = tuple(VIEW_FIELDS.index(name) for name in ("fields", "flags", "message_types", "statuses"))
_ACCOUNT, _RECORDING = VIEW_FIELDS.index("account"), VIEW_FIELDS.index("recording")
_RECEIVED, _ELAPSED = VIEW_FIELDS.index("received_at"), VIEW_FIELDS.index("elapsed_ms")
_shared_numbers: dict[float, float] = {}


def view_values(view: ExchangeView) -> list[Any]:
    """A view as its values in VIEW_FIELDS order (the channel's wire form), the recording as a str."""
    values = [getattr(view, name) for name in VIEW_FIELDS]
    if view.recording is not None:
        values[_RECORDING] = str(view.recording)
    return values


def view_from_values(values: list[Any]) -> ExchangeView:
    """A view back from `view_values` (decoded in another process), its repeated strings and tuples shared.

    A front end keeps one per exchange of the session, so it keeps what it shows: the time to the second
    (the list's HH:MM:SS; the record keeps the microseconds) and the milliseconds to a tenth (the list's
    `0.4`), both shared between the exchanges that have the same. TypeError/ValueError when `values` is
    not such a list.
    """
    if type(values) is not list or len(values) != len(VIEW_FIELDS):
        raise ValueError(f"a view has {len(VIEW_FIELDS)} values")
    intern = sys.intern
    for index in _SHARED_TEXT:
        value = values[index]
        if type(value) is str:
            values[index] = intern(value)
    for index in _SHARED_TUPLES:
        values[index] = _strings(values[index])
    account = values[_ACCOUNT]
    if type(account) is str:
        values[_ACCOUNT] = intern(account)
    recording = values[_RECORDING]
    values[_RECORDING] = shared_path(recording) if recording else None
    received = values[_RECEIVED]
    if type(received) is str and len(received) > 20 and received.endswith("Z"):
        values[_RECEIVED] = intern(received[:19] + "Z")  # 2026-12-07T08:12:34Z
    elapsed = values[_ELAPSED]
    if type(elapsed) is float:
        values[_ELAPSED] = _shared_number(round(elapsed, 1))
    return ExchangeView(*values)


def _shared_number(value: float) -> float:
    """One float object per distinct value (a bounded table)."""
    shared = _shared_numbers.get(value)
    if shared is None:
        if len(_shared_numbers) >= _SHARED_LIMIT:
            _shared_numbers.clear()
        shared = _shared_numbers[value] = value
    return shared


def shared_path(name: str) -> Path:
    """One Path per session file name: parsing a path costs more than the rest of a view."""
    path = _paths_by_name.get(name)
    if path is None:
        if len(_paths_by_name) >= _SHARED_LIMIT:
            _paths_by_name.clear()
        path = _paths_by_name[name] = Path(name)
    return path


def view_from_record(record: Mapping[str, Any], offset: int = -1, recording: Path | None = None) -> ExchangeView:
    """The small display view of a record, whether it came live or from a file (a partial summary derived)."""
    if summary_is_partial(record):
        record = with_full_summary(record)  # type: ignore[arg-type]
    get = record.get
    request = get("request") or {}
    response = get("response") or {}
    summary = get("summary") or {}
    verify = get("verify")
    verify = verify if isinstance(verify, Mapping) else None
    kind = str(get("kind", "other"))
    forward = get("forward")
    forward = forward if isinstance(forward, Mapping) else None
    raw_items = summary.get("items") if isinstance(summary, Mapping) else None
    if kind == "verify" and verify is not None:
        headline = "OK: challenge echoed" if verify.get("ok") else f"FAILED: {verify.get('reason', '')}"
    elif kind == "event":
        headline = str(summary.get("headline", "") or summary.get("problem", ""))
    elif request.get("method") or request.get("path"):
        headline = f"{request.get('method', '?')} {request.get('path', '?')}"
    else:  # a request line the server could not even parse: its reason is all there is to show
        headline = str(get("reason", "") or "unparseable request")
    types, statuses = _types_and_statuses(raw_items)
    account = get("account")
    client = get("client")
    if not client or type(client) is not str:  # recordings before `client`: the socket peer, as they showed it
        client = get("remote")
    return ExchangeView(
        id=str(get("id", "")),
        seq=int(get("seq", 0) or 0),
        received_at=str(get("received_at", "")),
        kind=_text(kind),
        method=_text(request.get("method", "")),
        path=_text(request.get("path", "")),
        status=int(response.get("status", 0) or 0),
        signature=_text(get("signature", "unchecked")),
        signature_detail=_text(get("signature_detail", "")),
        verify_ok=bool(verify.get("ok")) if verify is not None else None,
        verify_reason=_text(verify.get("reason", "")) if verify is not None else "",
        headline=_text(headline),
        fields=_strings(summary.get("fields", ()) or ()),
        account=_text(account) if type(account) is str else account,
        flags=_strings(summary.get("flags", ()) or ()),
        elapsed_ms=float(get("elapsed_ms", 0.0) or 0.0),
        origin=_text(get("origin", "meta")),
        offset=offset,
        recording=shared_path(str(recording)) if recording is not None else None,
        message_types=_strings(types),
        statuses=_strings(statuses),
        forward_status=forward.get("status") if forward is not None else None,
        forward_error=_text(forward.get("error") or "") if forward is not None else "",
        forward_pending=bool(forward.get("pending")) if forward is not None else False,
        client=_text(client) if type(client) is str else "",
    )


# Message types whose `subtype` names a kind of message (interactive.type, system.type, unsupported.type),
# so `--type list_reply` and `type:nfm_reply` find it; other subtypes are data (a payload, a file name).
_SUBTYPE_IS_A_TYPE = frozenset({"interactive", "system", "unsupported"})


def _types_and_statuses(raw_items: Any) -> tuple[tuple[str, ...], tuple[str, ...]]:
    """Distinct message types (with interactive/system subtypes, and `echo` for what the business sent
    from the WhatsApp Business app) and status values of summary.items, in order of first appearance."""
    types: dict[str, None] = {}
    statuses: dict[str, None] = {}
    if isinstance(raw_items, list):
        for item in raw_items:
            if not isinstance(item, Mapping):
                continue
            item_kind = item.get("kind")
            if item_kind == "message":
                value = item.get("type")
                if value:
                    types[str(value)] = None
                    subtype = item.get("subtype")
                    if subtype and str(value) in _SUBTYPE_IS_A_TYPE:
                        types[str(subtype)] = None
                if item.get("direction") == "echo":
                    types["echo"] = None
            elif item_kind == "status":
                value = item.get("status")
                if value:
                    statuses[str(value)] = None
    return tuple(types), tuple(statuses)


def local_clock(received_at: str) -> str:
    """HH:MM:SS in the developer's time zone, from the record's UTC timestamp."""
    if len(received_at) >= 20 and received_at.endswith("Z"):
        # A burst has thousands per second: one conversion each (and each time zone: TZ may change).
        return _local_second(received_at[:19], time.tzname)
    return _local_time(received_at)


@lru_cache(maxsize=256)
def _local_second(utc_second: str, zone: tuple[str, str]) -> str:
    return _local_time(utc_second + "Z")


def _local_time(received_at: str) -> str:
    try:
        moment = datetime.fromisoformat(received_at.replace("Z", "+00:00"))
    except ValueError:
        return received_at[:8]
    return moment.astimezone().strftime("%H:%M:%S")


def forward_note(status: int | None, error: str, pending: bool) -> str:
    """`-> backend 200` / `-> BACKEND UNREACHABLE: ...` / `-> backend pending` for forwarded exchanges."""
    if pending:
        return "  -> backend pending (acknowledged first)"
    if error:
        prefix = "backend unreachable"
        if error.startswith(prefix):
            return f"  -> BACKEND UNREACHABLE{error[len(prefix) :]}"
        return f"  -> {error}"
    if status is not None:
        return f"  -> backend {status}"
    return ""


def text_in_record(record: Mapping[str, Any], text: str) -> bool:
    """Free text: case-insensitive, across the body, path, query, headline and diagnosis."""
    needle = text.lower()
    if summary_is_partial(record):  # the headline is derived data
        record = with_full_summary(record)  # type: ignore[arg-type]
    request = record.get("request") or {}
    summary = record.get("summary") or {}
    haystacks = (
        str(request.get("body", "")),
        str(request.get("path", "")),
        str(request.get("query", "")),
        str(summary.get("headline", "")) if isinstance(summary, Mapping) else "",
        str((record.get("verify") or {}).get("reason", "")),
        str(record.get("signature_detail", "")),
    )
    return any(needle in h.lower() for h in haystacks)
