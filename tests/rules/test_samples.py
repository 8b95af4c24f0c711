"""The sample builders produce Meta's shapes and Meta's bytes (signatures depend on the bytes)."""

from __future__ import annotations

import json
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from wa_devtunnel.rules.samples import payloads as samples
from wa_devtunnel.rules.samples.payloads import (
    DISPLAY_PHONE_NUMBER,
    PHONE_NUMBER_ID,
    REPLIED_WAMID,
    USER_WA_ID,
    WABA_ID,
    WAMID,
    envelope,
    messages_change,
    meta_json,
    text_message,
)

# The documented sample text message (whatsapp-webhooks.md, section 2), as Meta sends it.
DOCUMENTED_TEXT_BODY = (
    b'{"object":"whatsapp_business_account","entry":[{"id":"102290129340398","changes":[{"value":{'
    b'"messaging_product":"whatsapp",'
    b'"metadata":{"display_phone_number":"15550783881","phone_number_id":"106540352242922"},'
    b'"contacts":[{"profile":{"name":"Sheena Nelson"},"wa_id":"16505551234"}],'
    b'"messages":[{"from":"16505551234",'
    b'"id":"wamid.HBgLMTY1MDM4Nzk0MzkVAgASGBQzQTRBNjU5OUFFRTAzODEwMTQ0RgA=",'
    b'"timestamp":"1749416383","type":"text","text":{"body":"Does it come in another color?"}}]},'
    b'"field":"messages"}]}]}'
)

json_values = st.recursive(
    st.none()
    | st.booleans()
    | st.integers()
    | st.floats(allow_nan=False, allow_infinity=False)
    | st.text(),
    lambda children: (
        st.lists(children, max_size=4) | st.dictionaries(st.text(max_size=8), children, max_size=4)
    ),
    max_leaves=20,
)


def test_text_message_payload_is_byte_identical_to_the_documented_sample() -> None:
    assert samples.text_message_payload() == DOCUMENTED_TEXT_BODY


def test_meta_json_is_compact() -> None:
    assert meta_json({"a": 1, "b": [1, 2], "c": {"d": None}}) == b'{"a":1,"b":[1,2],"c":{"d":null}}'


def test_meta_json_escapes_non_ascii_with_surrogate_pairs() -> None:
    assert (
        meta_json({"t": "Gr\u00fc\u00dfe \U0001f62e"})
        == b'{"t":"Gr\\u00fc\\u00dfe \\ud83d\\ude2e"}'
    )


def test_meta_json_escapes_slashes_by_default_and_on_request_only() -> None:
    obj = {"url": "https://fb.me/x"}
    assert meta_json(obj) == b'{"url":"https:\\/\\/fb.me\\/x"}'
    assert meta_json(obj, escape_slashes=False) == b'{"url":"https://fb.me/x"}'


def test_meta_json_keeps_already_escaped_text_intact() -> None:
    obj = {"t": 'quote " backslash \\ slash /'}
    assert json.loads(meta_json(obj)) == obj


@given(json_values, st.booleans())
def test_meta_json_round_trips_and_is_ascii(value: Any, escape: bool) -> None:
    body = meta_json(value, escape_slashes=escape)
    assert body.isascii()
    assert json.loads(body) == value


def test_envelope_carries_integer_time_only_for_non_message_fields() -> None:
    messages = envelope([messages_change([text_message()])])
    assert "time" not in messages["entry"][0]
    template = envelope([samples.template_status_update()])
    assert isinstance(template["entry"][0]["time"], int)
    assert envelope([messages_change()], time=5)["entry"][0]["time"] == 5
    assert messages["object"] == "whatsapp_business_account"
    assert messages["entry"][0]["id"] == WABA_ID


def test_messages_change_shapes() -> None:
    change = messages_change([text_message()])
    value = change["value"]
    assert change["field"] == "messages"
    assert value["metadata"] == {
        "display_phone_number": DISPLAY_PHONE_NUMBER,
        "phone_number_id": PHONE_NUMBER_ID,
    }
    assert value["contacts"] == [{"profile": {"name": "Sheena Nelson"}, "wa_id": USER_WA_ID}]
    only_statuses = messages_change(statuses=[samples.status("read")])["value"]
    assert "contacts" not in only_statuses and "messages" not in only_statuses
    assert "statuses" not in value
    errors = messages_change(errors=[samples.meta_error(131000)])["value"]
    assert errors["errors"][0]["code"] == 131000


def test_contact_of_2026_may_omit_wa_id() -> None:
    item = samples.contact(wa_id=None, user_id="US.13491208655302741918", username="sheena")
    assert item == {
        "profile": {"name": "Sheena Nelson", "username": "sheena"},
        "user_id": "US.13491208655302741918",
    }


def test_common_message_options_build_context_referral_and_errors() -> None:
    message = text_message(
        "hi", reply_to=REPLIED_WAMID, forwarded=True, referral=samples.ad_referral()
    )
    assert message["context"] == {
        "from": DISPLAY_PHONE_NUMBER,
        "id": REPLIED_WAMID,
        "forwarded": True,
    }
    assert message["referral"]["source_type"] == "ad"
    anonymous = text_message(sender=None, user_id="US.1")
    assert "from" not in anonymous and anonymous["from_user_id"] == "US.1"
    with pytest.raises(TypeError):
        text_message(colour="blue")


@pytest.mark.parametrize(
    ("builder", "kind"),
    [
        (samples.text_message, "text"),
        (samples.image_message, "image"),
        (samples.video_message, "video"),
        (samples.audio_message, "audio"),
        (samples.document_message, "document"),
        (samples.sticker_message, "sticker"),
        (samples.location_message, "location"),
        (samples.contacts_message, "contacts"),
        (samples.button_reply, "interactive"),
        (samples.list_reply, "interactive"),
        (samples.flow_reply, "interactive"),
        (samples.template_button, "button"),
        (samples.reaction_message, "reaction"),
        (samples.order_message, "order"),
        (samples.system_message, "system"),
        (samples.request_welcome_message, "request_welcome"),
        (samples.unsupported_message, "unsupported"),
    ],
)
def test_every_message_builder_has_the_common_keys(builder: Any, kind: str) -> None:
    message = builder()
    assert message["type"] == kind
    assert message["from"] == USER_WA_ID
    assert message["id"] == WAMID
    assert message["timestamp"].isdigit()
    assert kind == "request_welcome" or kind in message
    assert json.loads(meta_json(message)) == message


def test_type_specific_shapes() -> None:
    assert samples.document_message()["document"]["filename"] == "invoice-2026-001.pdf"
    assert samples.audio_message()["audio"]["voice"] is True
    assert samples.location_message()["location"]["name"] == "Philz Coffee"
    assert samples.reaction_message()["reaction"]["emoji"] == "\U0001f600"
    assert "emoji" not in samples.reaction_message(None)["reaction"]
    assert samples.button_reply()["interactive"]["button_reply"]["title"] == "Yes"
    flow = samples.flow_reply({"flow_token": "t", "size": "L"})["interactive"]
    assert flow["type"] == "nfm_reply"
    assert json.loads(flow["nfm_reply"]["response_json"]) == {"flow_token": "t", "size": "L"}
    assert samples.template_button()["button"] == {
        "payload": "attend-yes",
        "text": "Yes, I can make it",
    }
    assert len(samples.order_message(3)["order"]["product_items"]) == 3
    assert samples.system_message()["system"]["type"] == "user_changed_number"
    assert samples.unsupported_message()["errors"][0]["code"] == 131051
    assert "unsupported" not in samples.unsupported_message(unsupported_type=None)
    assert [
        c["name"]["formatted_name"] for c in samples.contacts_message(["A B", "C D"])["contacts"]
    ] == [
        "A B",
        "C D",
    ]


def test_status_builders() -> None:
    sent = samples.status("sent")
    assert sent["pricing"] == {
        "billable": True,
        "pricing_model": "PMP",
        "category": "marketing",
        "type": "regular",
    }
    assert sent["conversation"]["origin"] == {"type": "marketing"}
    assert "expiration_timestamp" in sent["conversation"]
    assert "expiration_timestamp" not in samples.status("read")["conversation"]
    failed = samples.status("failed")
    assert "pricing" not in failed
    error = failed["errors"][0]
    assert error["code"] == 131049
    assert (
        error["title"] == "This message was not delivered to maintain healthy ecosystem engagement."
    )
    assert error["error_data"]["details"]
    assert b'"href":"\\/documentation\\/business-messaging' in meta_json(failed)
    assert (
        samples.status("failed", error_code=131026)["errors"][0]["title"] == "Message undeliverable"
    )
    assert "errors" not in samples.status("played")


def test_field_builders() -> None:
    template = samples.template_status_update("welcome", "REJECTED", "INVALID_FORMAT")
    assert template["field"] == "message_template_status_update"
    assert template["value"]["message_template_name"] == "welcome"
    assert template["value"]["reason"] == "INVALID_FORMAT"
    assert samples.account_update()["value"]["violation_info"] == {"violation_type": "SCAM"}
    assert samples.account_update("PARTNER_ADDED")["value"] == {"event": "PARTNER_ADDED"}
    quality = samples.phone_number_quality_update()["value"]
    assert quality["current_limit"] == "TIER_10K"
    assert samples.template_quality_update()["value"]["new_quality_score"] == "YELLOW"
    assert samples.template_category_update()["value"]["new_category"] == "MARKETING"
    assert samples.field_change("calls", {"calls": []}) == {
        "value": {"calls": []},
        "field": "calls",
    }


def test_dashboard_test_sample_is_metas_fixed_payload() -> None:
    body = json.loads(samples.dashboard_test_sample())
    entry = body["entry"][0]
    value = entry["changes"][0]["value"]
    assert entry["id"] == "0"
    assert value["metadata"] == {
        "display_phone_number": "16505551111",
        "phone_number_id": "123456123",
    }
    assert value["messages"][0]["id"] == "ABGGFlA5Fpa"
    assert value["messages"][0]["text"]["body"] == "this is a text message"


def test_text_message_payload_escapes_like_meta() -> None:
    body = samples.text_message_payload("\u00c7a va? \U0001f62e https://example.com/a")
    assert b"\\u00c7a va? \\ud83d\\ude2e https:\\/\\/example.com\\/a" in body
    assert b"https://example.com/a" in samples.text_message_payload(
        "https://example.com/a", escape_slashes=False
    )


def test_spec_short_names_are_the_same_builders() -> None:
    assert samples.reaction is samples.reaction_message
    assert samples.request_welcome is samples.request_welcome_message
    assert samples.order(1)["order"]["product_items"][0]["quantity"] == 1
