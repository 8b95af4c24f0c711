"""One exchange (request + answer + verdicts) as a version-1 record, and its display view."""

from __future__ import annotations

import uuid
from collections.abc import Iterable, Mapping, Sequence
from datetime import UTC, datetime
from typing import Any

from wa_devtunnel.engine.events import ExchangeView
from wa_devtunnel.engine.recording import RECORDING_VERSION, encode_body

# Header values that are someone's credentials; kept out of recordings and logs.
REDACTED_HEADERS = frozenset({"authorization", "proxy-authorization", "cookie"})


def utc_timestamp(moment: datetime | None = None) -> str:
    """ISO 8601 with microseconds and a Z, as the recording format asks."""
    moment = moment or datetime.now(UTC)
    return moment.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def header_pairs(raw_headers: Sequence[tuple[bytes, bytes]]) -> list[list[str]]:
    """Headers in arrival order and original case, decoded losslessly, credentials redacted."""
    pairs: list[list[str]] = []
    for name_bytes, value_bytes in raw_headers:
        name = name_bytes.decode("latin-1")
        value = "REDACTED" if name.lower() in REDACTED_HEADERS else value_bytes.decode("latin-1")
        pairs.append([name, value])
    return pairs


def build_record(
    *,
    seq: int,
    received_at: str,
    kind: str,
    method: str,
    path: str,
    query: str,
    headers: list[list[str]],
    body: bytes,
    status: int,
    response_body: str,
    signature: str,
    extra: Mapping[str, Any],
) -> dict[str, Any]:
    """Assemble the version-1 record; `extra` adds verify/summary/account/... keys."""
    request: dict[str, Any] = {
        "method": method,
        "path": path,
        "query": query,
        "headers": headers,
    }
    request.update(encode_body(body))
    record: dict[str, Any] = {
        "v": RECORDING_VERSION,
        "id": uuid.uuid4().hex,
        "seq": seq,
        "received_at": received_at,
        "kind": kind,
        "request": request,
        "response": {"status": status, "body": response_body},
        "signature": signature,
    }
    record.update(extra)
    return record


def view_from_record(record: Mapping[str, Any], offset: int = -1) -> ExchangeView:
    """The small display view of a record, whether it came live or from a file."""
    request = record.get("request") or {}
    response = record.get("response") or {}
    summary = record.get("summary") or {}
    verify = record.get("verify")
    kind = str(record.get("kind", "other"))
    forward = record.get("forward")
    raw_items = summary.get("items") if isinstance(summary, Mapping) else None
    items = [i for i in raw_items if isinstance(i, Mapping)] if isinstance(raw_items, list) else []
    if kind == "verify" and isinstance(verify, Mapping):
        headline = "OK: challenge echoed" if verify.get("ok") else f"FAILED: {verify.get('reason', '')}"
    elif kind == "event":
        headline = str(summary.get("headline", ""))
    else:
        headline = f"{request.get('method', '?')} {request.get('path', '?')}"
    return ExchangeView(
        id=str(record.get("id", "")),
        seq=int(record.get("seq", 0) or 0),
        received_at=str(record.get("received_at", "")),
        kind=kind,
        method=str(request.get("method", "")),
        path=str(request.get("path", "")),
        status=int(response.get("status", 0) or 0),
        signature=str(record.get("signature", "unchecked")),
        signature_detail=str(record.get("signature_detail", "")),
        verify_ok=bool(verify.get("ok")) if isinstance(verify, Mapping) else None,
        verify_reason=str(verify.get("reason", "")) if isinstance(verify, Mapping) else "",
        headline=headline,
        fields=tuple(summary.get("fields", ()) or ()),
        account=record.get("account"),
        flags=tuple(summary.get("flags", ()) or ()),
        elapsed_ms=float(record.get("elapsed_ms", 0.0) or 0.0),
        origin=str(record.get("origin", "meta")),
        offset=offset,
        message_types=_distinct(item.get("type") for item in items if item.get("kind") == "message"),
        statuses=_distinct(item.get("status") for item in items if item.get("kind") == "status"),
        forward_status=forward.get("status") if isinstance(forward, Mapping) else None,
        forward_error=str(forward.get("error") or "") if isinstance(forward, Mapping) else "",
        forward_pending=bool(forward.get("pending")) if isinstance(forward, Mapping) else False,
    )


def _distinct(values: Iterable[Any]) -> tuple[str, ...]:
    return tuple(dict.fromkeys(str(v) for v in values if v))
