"""`values` (every scalar leaf with its path, bounded) and short ids that tell messages apart."""

from __future__ import annotations

import json
from typing import Any

from hypothesis import given, settings
from hypothesis import strategies as st

from wa_devtunnel.rules.decode.items import short_id
from wa_devtunnel.rules.decode.leaves import CUT_PATH, MAX_DEPTH, MAX_TEXT, MAX_VALUES, leaf_values
from wa_devtunnel.rules.decode.payload import decode_payload
from wa_devtunnel.rules.samples import payloads as samples


def test_paths_are_dotted_keys_and_indexed_lists_in_document_order() -> None:
    node = {"a": {"b": 1, "c": [True, None, {"d": "x"}]}, "e": 2.5}
    assert leaf_values(node) == (("a.b", 1), ("a.c[0]", True), ("a.c[1]", None), ("a.c[2].d", "x"), ("e", 2.5))


def test_empty_objects_and_lists_are_leaves_so_no_key_disappears() -> None:
    assert leaf_values({"a": {}, "b": [], "c": [[]]}) == (("a", {}), ("b", []), ("c[0]", []))
    assert leaf_values({}) == ()


def test_json_held_in_a_string_is_also_expanded() -> None:
    node = {"nfm_reply": {"response_json": '{"flow_token": "t-1", "answers": [1, {"x": "y"}]}', "body": "{not json"}}
    assert leaf_values(node) == (
        ("nfm_reply.response_json", '{"flow_token": "t-1", "answers": [1, {"x": "y"}]}'),
        ("nfm_reply.response_json{}.flow_token", "t-1"),
        ("nfm_reply.response_json{}.answers[0]", 1),
        ("nfm_reply.response_json{}.answers[1].x", "y"),
        ("nfm_reply.body", "{not json"),
    )
    # Only under keys ending in "json": a user who types JSON in a text is not "expanded".
    assert leaf_values({"text": {"body": '{"a": 1}'}}) == (("text.body", '{"a": 1}'),)
    assert leaf_values({"response_json": "[broken"}) == (("response_json", "[broken"),)


def test_a_cut_says_so_and_how_much() -> None:
    node = {"items": list(range(MAX_VALUES + 25))}
    found = leaf_values(node)
    assert len(found) == MAX_VALUES + 1
    assert found[-2] == (f"items[{MAX_VALUES - 1}]", MAX_VALUES - 1)
    assert found[-1] == (CUT_PATH, "25 more values cut")


def test_long_texts_and_deep_nesting_are_bounded() -> None:
    assert leaf_values({"t": "x" * (MAX_TEXT + 10)}) == (("t", "x" * MAX_TEXT + "…"),)
    deep: Any = "bottom"
    for _ in range(MAX_DEPTH + 5):
        deep = {"k": deep}
    path, value = leaf_values(deep)[0]
    assert path == ".".join(["k"] * MAX_DEPTH) and value == "… nested too deeply"


def test_numbers_json_cannot_carry_are_kept_as_their_text() -> None:
    node = {"big": 2**70, "nan": float("nan"), "inf": float("-inf"), "ok": 2**62}
    assert leaf_values(node) == (("big", str(2**70)), ("nan", "NaN"), ("inf", "-Infinity"), ("ok", 2**62))


def test_values_of_a_decoded_body_survive_json() -> None:
    body = samples.text_message_payload().replace(b'"text":{"body"', b'"n":NaN,"text":{"body"')
    summary = decode_payload(body)
    document = json.loads(json.dumps(summary.to_dict(), allow_nan=False))
    assert ["n", "NaN"] in document["items"][0]["values"]


@settings(max_examples=200)
@given(
    st.recursive(
        st.none() | st.booleans() | st.integers() | st.floats() | st.text(max_size=10),
        lambda children: st.lists(children, max_size=4) | st.dictionaries(st.text(max_size=5), children, max_size=4),
        max_leaves=60,
    )
)
def test_any_json_gives_bounded_json_ready_values(node: Any) -> None:
    found = leaf_values(node)
    assert len(found) <= MAX_VALUES + 1
    json.dumps(found, allow_nan=False)


# --- short ids ------------------------------------------------------------------------------------

A = "wamid.HBgLMTY1MDM4Nzk0MzkVAgASGBQzQTRBNjU5OUFFRTAzODEwMTQ0RgA="
B = "wamid.HBgLMTY1MDM4Nzk0MzkVAgASGBQzRUIwQzRBMUYyRDlCOEU3QTYxMAA="


def test_short_ids_of_one_users_messages_differ() -> None:
    assert A[:20] == B[:20]  # the constant part: the user's number
    assert short_id(A) == "wamid.…ODEwMTQ0RgA="
    assert short_id(B) == "wamid.…OEU3QTYxMAA="
    assert A.endswith(short_id(A).split("…")[1])


def test_short_ids_whole_when_short_and_terminal_safe_always() -> None:
    assert short_id("wamid.bench-text") == "wamid.bench-text"
    assert short_id("") == ""
    assert short_id("ABGGFlA5Fpa") == "ABGGFlA5Fpa"
    assert short_id("no-prefix-but-quite-long-id-0123456789") == "…d-0123456789"
    hostile = short_id("wamid." + "x" * 30 + "\x1b[2J\u202e")
    assert "\x1b" not in hostile and "\u202e" not in hostile and hostile.startswith("wamid.…")
    assert "\n" not in short_id("a\nb")


def test_deeply_nested_values_of_any_field_decode_with_every_item() -> None:
    deep = b"[" * 1000 + b"]" * 1000
    body = (
        b'{"object":"whatsapp_business_account","entry":[{"id":"1","changes":['
        b'{"field":"brand_new","value":{"x":' + deep + b',"y":{"a":' + deep + b"}}},"
        b'{"field":"account_update","value":{"event":"E","z":{"q":' + deep + b"}}},"
        b'{"field":"messages","value":{"messages":[{"type":"text","from":"1","q":' + deep + b"}]}}]}]}"
    )
    summary = decode_payload(body)
    assert summary.ok and len(summary.items) == 3
    assert summary.items[1].line().startswith("account_update E (z: q[0]")
    json.dumps(summary.to_dict())
