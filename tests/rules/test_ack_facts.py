"""The receiver's cheap pass (ack_facts) and the reader rule (full_summary) give what decode_payload gave.

The acknowledgement path records a partial summary; every reader derives the rest from the body. Together
they must equal the summary the receiver used to write: same items, flags, 400s, SeenIds keys and account.
"""

from __future__ import annotations

import json
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from tests.rules.test_decode_samples import DATA, SAMPLES
from tests.rules.test_payload import REAL_ENVELOPES, json_values, paths, replaced
from wa_devtunnel.rules.decode.payload import (
    SeenIds,
    ack_facts,
    decode_payload,
    full_summary,
    partial_of,
    phone_number_ids,
)
from wa_devtunnel.rules.samples import payloads as samples
from wa_devtunnel.rules.samples.payloads import meta_json


def item_accounts(summary: Any) -> set[str]:
    return {item.account for item in summary.items if getattr(item, "account", None) is not None}


def assert_same(bodies: list[bytes], accounts: dict[str, str] | None) -> None:
    """Each body in turn through both paths, each with its own SeenIds (small: eviction counts too)."""
    decoder_seen, receiver_seen = SeenIds(limit=3), SeenIds(limit=3)
    for body in bodies:
        decoded = decode_payload(body, accounts_by_phone_number_id=accounts, seen=decoder_seen, values=False)
        facts = ack_facts(body, accounts_by_phone_number_id=accounts, seen=receiver_seen)
        if facts.refused is not None:
            assert facts.refused.to_dict() == decoded.to_dict()
            assert not body or decoded.problem.startswith(("body is not JSON", "JSON is not an object"))
            continue
        assert not decoded.problem.startswith(("body is not JSON", "JSON is not an object"))
        line = json.loads(json.dumps(facts.partial_summary()))  # as a reader gets it back from the file
        assert full_summary(line, body) == decoded.to_dict()
        # A replay's record keeps partial_of its source's summary (partial, or whole from an older receiver).
        assert full_summary(partial_of(line), body) == decoded.to_dict()
        assert full_summary(partial_of(decoded.to_dict()), body) == decoded.to_dict()
        assert set(facts.item_accounts) == item_accounts(decoded)
        assert list(receiver_seen._keys) == list(decoder_seen._keys)


def accounts_for(body: bytes) -> list[dict[str, str] | None]:
    numbers = phone_number_ids(body)
    known = {numbers[0]: "shop"} if numbers else {}
    return [None, {}, {"elsewhere": "other"}, known, {**known, "elsewhere": "other"}]


@pytest.mark.parametrize("name", SAMPLES)
def test_every_sample_twice(name: str) -> None:
    body = (DATA / f"{name}.json").read_bytes()
    for accounts in accounts_for(body):
        assert_same([body, body], accounts)  # the second is a duplicate


def test_the_partial_summary_holds_only_what_the_receiver_knew() -> None:
    body = samples.text_message_payload()
    (number,) = phone_number_ids(body)
    seen = SeenIds()
    ack_facts(body, accounts_by_phone_number_id={number: "shop"}, seen=seen)
    again = ack_facts(body, accounts_by_phone_number_id={number: "shop", "2": "b"}, seen=seen)
    assert again.partial_summary() == {"partial": True, "flags": ["duplicate"], "accounts": {number: "shop"}}
    unknown = ack_facts(body, accounts_by_phone_number_id={"2": "b"})
    assert unknown.partial_summary() == {"partial": True, "flags": ["unknown-phone-number-id"]}


@pytest.mark.parametrize("body", [b"", b"{", b"[]", b'"x"', b"\xff\xfe", b"1" * 30, b'{"entry": 1}', b"{}"])
def test_refusals_and_odd_bodies(body: bytes) -> None:
    assert_same([body], {"1": "a"})


@settings(max_examples=300, suppress_health_check=[HealthCheck.too_slow])
@given(st.lists(json_values, min_size=1, max_size=3))
def test_any_json_inside_an_envelope(values: list[Any]) -> None:
    bodies = [
        json.dumps({"object": "whatsapp_business_account", "entry": [{"id": "1", "changes": value}]}).encode()
        for value in values
    ]
    assert_same(bodies + bodies[:1], {"1": "a"})


@settings(max_examples=300, suppress_health_check=[HealthCheck.too_slow])
@given(st.sampled_from(REAL_ENVELOPES), st.data(), json_values)
def test_mutated_real_envelopes(document: Any, data: st.DataObject, new: Any) -> None:
    path = data.draw(st.sampled_from(paths(document)))
    body = meta_json(document)
    mutated = meta_json(replaced(document, path, new))
    accounts = data.draw(st.sampled_from(accounts_for(body)))
    assert_same([mutated, body, mutated], accounts)
