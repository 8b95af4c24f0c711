"""One exchange (request + answer + verdicts) as a version-1 record: ids, timestamps, headers, the line."""

from __future__ import annotations

import os
import random
import time
from collections.abc import Mapping, Sequence
from datetime import UTC, datetime
from typing import Any

from wa_devtunnel.engine.origin import ORIGIN_HEADER, without_key
from wa_devtunnel.engine.recording import RECORDING_VERSION, encode_body

# Header values that are someone's credentials; kept out of recordings and logs.
REDACTED_HEADERS = frozenset({"authorization", "proxy-authorization", "cookie"})
_REDACTED_HEADER_BYTES = frozenset(name.encode("ascii") for name in REDACTED_HEADERS)
_ORIGIN_HEADER_BYTES = ORIGIN_HEADER.lower().encode("ascii")
# Most names need no lower() at all: only those as long as a credential header or our origin header.
_SENSITIVE_NAME_LENGTHS = frozenset({*map(len, REDACTED_HEADERS), len(_ORIGIN_HEADER_BYTES)})

# Exchange ids: 128 random bits like a uuid4, from a private generator seeded by os.urandom, made
# _ID_BATCH at a time (one big random number cut into ids: a list pop per request). A forked child
# reseeds and drops the parent's batch, so two processes never share an id.
_ids = random.Random()
_ID_BATCH = 256
_id_batch: list[str] = []


def _after_fork() -> None:
    _ids.seed()
    _id_batch.clear()


os.register_at_fork(after_in_child=_after_fork)

# The formatted second of the last timestamp: strftime then runs once a second, not per request.
_second_cache: tuple[int, str] = (-1, "")


def new_exchange_id() -> str:
    """32 hex characters, unique across sessions; `replay --id` selects by any unique prefix."""
    if not _id_batch:
        text = f"{_ids.getrandbits(128 * _ID_BATCH):0{32 * _ID_BATCH}x}"
        _id_batch.extend(text[start : start + 32] for start in range(0, len(text), 32))
    return _id_batch.pop()


def utc_timestamp(moment: datetime | None = None) -> str:
    """ISO 8601 with microseconds and a Z, as the recording format asks."""
    global _second_cache
    if moment is not None:
        return moment.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")
    second, nanos = divmod(time.time_ns(), 1_000_000_000)
    cached_second, prefix = _second_cache
    if second != cached_second:
        prefix = time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(second))
        _second_cache = (second, prefix)
    return f"{prefix}.{nanos // 1000:06d}Z"


def header_pairs(raw_headers: Sequence[tuple[bytes, bytes]]) -> list[list[str]]:
    """Headers in arrival order and original case, decoded losslessly, credentials and our origin key left out."""
    return [
        [
            name.decode("latin-1"),
            _sensitive_value(name, value) if len(name) in _SENSITIVE_NAME_LENGTHS else value.decode("latin-1"),
        ]
        for name, value in raw_headers
    ]


def _sensitive_value(name: bytes, value: bytes) -> str:
    """What a recording keeps of a header whose name length matches one we protect."""
    lowered = name.lower()
    if lowered in _REDACTED_HEADER_BYTES:
        return "REDACTED"
    text = value.decode("latin-1")
    return without_key(text) if lowered == _ORIGIN_HEADER_BYTES else text


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
        "id": new_exchange_id(),
        "seq": seq,
        "received_at": received_at,
        "kind": kind,
        "request": request,
        "response": {"status": status, "body": response_body},
        "signature": signature,
    }
    record.update(extra)
    return record
