"""values=False (the acknowledgement path) decodes exactly what values=True does, minus `values`.

Over every sample body (tests/data/webhooks and every event of the `trigger` catalogue, single and
batched, plus the receiver benchmark's bodies): the to_dict() of a lean decode equals the full one with
each item's `values` removed and `values_omitted` added, and the lines the decoder stores are the
items' own line()."""

from __future__ import annotations

import json
from pathlib import Path
from random import Random
from typing import Any

import pytest

from wa_devtunnel.rules.decode.payload import SeenIds, WebhookSummary, decode_payload
from wa_devtunnel.rules.samples import catalogue
from wa_devtunnel.rules.samples import payloads as samples

DATA = Path(__file__).resolve().parents[1] / "data" / "webhooks"
FILES = sorted(path.relative_to(DATA).as_posix() for path in DATA.rglob("*.json"))
KINDS = [kind.name for kind in catalogue.KINDS]


def _catalogue_body(name: str, batch: int) -> bytes:
    kind = catalogue.KINDS_BY_NAME[name]
    options = catalogue.TriggerOptions(batch=batch)
    return samples.meta_json(catalogue.build_event(kind, options, Random(15)))


def _bench_batch() -> bytes:
    """benchmarks/receiver.py's `--payload batch`: five message types and four statuses."""
    messages = [
        samples.text_message(message_id="wamid.bench-text"),
        samples.image_message(message_id="wamid.bench-image"),
        samples.location_message(message_id="wamid.bench-location"),
        samples.button_reply(message_id="wamid.bench-button"),
        samples.reaction_message(message_id="wamid.bench-reaction"),
    ]
    statuses = [samples.status(s) for s in ("sent", "delivered", "read", "failed")]
    changes = [samples.messages_change(messages), samples.messages_change(statuses=statuses)]
    return samples.meta_json(samples.envelope(changes))


def _without_values(document: dict[str, Any]) -> dict[str, Any]:
    items = [{key: value for key, value in item.items() if key != "values"} for item in document["items"]]
    return {**document, "items": items, "values_omitted": True}


def _check(body: bytes) -> None:
    accounts = {"106540352242922": "bench"}
    full = decode_payload(body, accounts_by_phone_number_id=accounts, seen=SeenIds())
    lean = decode_payload(body, accounts_by_phone_number_id=accounts, seen=SeenIds(), values=False)
    assert lean.to_dict() == _without_values(full.to_dict())
    assert list(lean.to_dict()) == [*full.to_dict(), "values_omitted"]  # same key order
    for summary in (full, lean):
        _lines_are_the_items_lines(summary)


def _lines_are_the_items_lines(summary: WebhookSummary) -> None:
    assert list(summary.lines) == [item.line() for item in summary.items]
    assert [item["line"] for item in summary.to_dict()["items"]] == list(summary.lines)


@pytest.mark.parametrize("name", FILES)
def test_sample_file(name: str) -> None:
    _check((DATA / name).read_bytes())


@pytest.mark.parametrize("batch", [1, 3])
@pytest.mark.parametrize("name", KINDS)
def test_trigger_catalogue_event(name: str, batch: int) -> None:
    _check(_catalogue_body(name, batch))


def test_receiver_benchmark_bodies() -> None:
    _check(samples.text_message_payload())
    _check(_bench_batch())


def test_every_sample_file_in_one_body() -> None:
    """All changes of all sample files in one delivery: a batch of every kind at once."""
    changes = []
    for name in FILES:
        document = json.loads((DATA / name).read_bytes())
        for entry in document.get("entry", []):
            changes += entry.get("changes", [])
    _check(samples.meta_json(samples.envelope(changes)))


def test_seen_any_records_like_seen_before_one_by_one() -> None:
    """The decoder records a change's ids in one call: the same memory, evictions and answer."""
    keys = ["a", "b", "a", "c", "d", "b", "e", "a"]
    for limit in (1, 2, 3, 10):
        one_by_one, at_once = SeenIds(limit), SeenIds(limit)
        for start in range(0, len(keys), 3):
            chunk = keys[start : start + 3]
            expected = any([one_by_one.seen_before(key) for key in chunk])
            assert at_once.seen_any(chunk) == expected
            assert list(at_once._keys) == list(one_by_one._keys)
    assert SeenIds().seen_any([]) is False
