"""The decoder shows EVERY entry, change, message and status of a POST, and never crashes."""

from __future__ import annotations

import json
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from wa_devtunnel.rules.decode.payload import (
    ChangeError,
    FieldUpdate,
    InboundMessage,
    MetaError,
    SeenIds,
    StatusUpdate,
    WebhookSummary,
    decode_payload,
)
from wa_devtunnel.rules.samples import payloads as samples
from wa_devtunnel.rules.samples.payloads import (
    PHONE_NUMBER_ID,
    REPLIED_WAMID,
    WAMID,
    envelope,
    messages_change,
    meta_json,
    text_message,
)

USER = "16505551234"
SHORT = "wamid.…ODEwMTQ0RgA="
FAILED_131049 = (
    f"failed {SHORT} to {USER}: "
    "131049 This message was not delivered to maintain healthy ecosystem engagement."
)
FLAGS = {"batch", "dashboard-test", "unknown-phone-number-id", "duplicate"}


def body_of(*changes: dict[str, Any], waba_id: str = samples.WABA_ID) -> bytes:
    return meta_json(envelope(list(changes), waba_id=waba_id))


def decode_messages(*messages: dict[str, Any], **kwargs: Any) -> WebhookSummary:
    return decode_payload(body_of(messages_change(list(messages))), **kwargs)


def only(summary: WebhookSummary) -> Any:
    assert summary.ok, summary.problem
    assert len(summary.items) == 1, summary.items
    return summary.items[0]


def assert_sane(summary: WebhookSummary) -> None:
    """What every summary must satisfy, whatever the input."""
    assert isinstance(summary, WebhookSummary)
    assert not summary.problem.startswith("decoder error"), summary.problem
    assert "\n" not in summary.headline and "\r" not in summary.headline
    assert set(summary.flags) <= FLAGS
    document = summary.to_dict()
    text = json.dumps(document, ensure_ascii=False)
    text.encode("utf-8")
    assert json.loads(text) == document
    for item in summary.items:
        assert "\n" not in item.line()


# --- the documented sample and the product's headline examples -------------------------------


def test_documented_text_message() -> None:
    summary = decode_payload(samples.text_message_payload())
    message = only(summary)
    assert isinstance(message, InboundMessage)
    assert summary.headline == 'messages: text from 16505551234: "Does it come in another color?"'
    assert summary.object == "whatsapp_business_account"
    assert summary.fields == ("messages",)
    assert summary.flags == ()
    assert message == InboundMessage(
        field="messages",
        waba_id="102290129340398",
        phone_number_id="106540352242922",
        display_phone_number="15550783881",
        account=None,
        message_id=WAMID,
        sender=USER,
        contact_name="Sheena Nelson",
        type="text",
        subtype="",
        text="Does it come in another color?",
        timestamp="1749416383",
        context_id="",
        forwarded=False,
        referral=False,
        media_id="",
        errors=(),
        values=(
            ("from", USER),
            ("id", WAMID),
            ("timestamp", "1749416383"),
            ("type", "text"),
            ("text.body", "Does it come in another color?"),
            ("contact.profile.name", "Sheena Nelson"),
            ("contact.wa_id", USER),
        ),
    )


def test_long_text_is_truncated_with_an_ellipsis_on_one_line() -> None:
    text = "first line\nsecond line\r\n\tthird " + "x" * 500
    message = only(decode_messages(text_message(text)))
    assert message.text == text
    line = message.line()
    assert line.startswith('text from 16505551234: "first line second line third x')
    assert line.endswith('…"')
    assert len(line) < 100


def test_terminal_escape_codes_never_reach_the_line() -> None:
    message = only(decode_messages(text_message("\x1b[31mred\x1b[0m\u2028next\x00\u202e")))
    assert "\x1b" not in message.line() and "\u2028" not in message.line()
    assert "\x00" not in message.line()
    # Shown, not hidden: the developer sees that the customer's text carried escape codes.
    assert message.line().endswith('"\\x1b[31mred\\x1b[0m next\\x00\\u202e"')


@pytest.mark.parametrize(
    ("field", "value"),
    [
        ("type", "\x1b[2Jtext\nmore"),
        ("from", "1650\n\x1b[31m5551234"),
        ("interactive", {"type": "button_reply\x1b[2J\n" + "x" * 80, "button_reply": {"title": "Yes"}}),
    ],
)
def test_odd_types_senders_and_subtypes_are_cleaned_too(field: str, value: Any) -> None:
    message = samples.button_reply() if field == "interactive" else text_message()
    message[field] = value
    line = only(decode_messages(message)).line()
    assert "\x1b" not in line and "\n" not in line
    assert len(line.split(" from ")[0]) <= 40


def test_read_status_headline() -> None:
    summary = decode_payload(body_of(messages_change(statuses=[samples.status("read")])))
    status = only(summary)
    assert status.line() == f"read {SHORT} to {USER}"
    assert summary.headline == f"messages: read {SHORT} to {USER}"


def test_failed_status_headline_and_errors() -> None:
    summary = decode_payload(body_of(messages_change(statuses=[samples.status("failed")])))
    status = only(summary)
    assert isinstance(status, StatusUpdate)
    assert status.line() == FAILED_131049
    assert summary.headline == f"messages: {FAILED_131049}"
    assert status.errors == (
        MetaError(
            code=131049,
            title="This message was not delivered to maintain healthy ecosystem engagement.",
            message="This message was not delivered to maintain healthy ecosystem engagement.",
            details="In order to maintain a healthy ecosystem engagement, "
            "the message failed to be delivered.",
        ),
    )


def test_template_status_headline() -> None:
    summary = decode_payload(body_of(samples.template_status_update()))
    update = only(summary)
    assert isinstance(update, FieldUpdate)
    assert update.line() == "template order_confirmation APPROVED"
    assert (
        summary.headline == "message_template_status_update: template order_confirmation APPROVED"
    )
    assert update.event == "APPROVED" and update.subject == "order_confirmation"
    assert update.raw_keys == (
        "event",
        "message_template_id",
        "message_template_name",
        "message_template_language",
        "reason",
    )


def test_batch_headline_counts_by_kind() -> None:
    first = messages_change(
        [text_message("one", message_id="wamid.1"), text_message("two", message_id="wamid.2")],
        statuses=[samples.status("sent", message_id="wamid.s1")],
    )
    second = messages_change(
        [samples.image_message(message_id="wamid.3")],
        statuses=[samples.status("delivered", message_id="wamid.s2")],
    )
    summary = decode_payload(body_of(first, second))
    assert summary.headline == "batch: 3 messages, 2 statuses"
    assert "batch" in summary.flags


def test_batch_headline_singular_and_other_kinds() -> None:
    change = messages_change(
        [text_message()],
        statuses=[samples.status("read")],
        errors=[samples.meta_error(131000)],
    )
    summary = decode_payload(body_of(change, samples.template_status_update()))
    assert (
        summary.headline == "batch: 1 message, 1 status, 1 message_template_status_update, 1 error"
    )


# --- every message type -------------------------------------------------------------------------

REPLY = "(reply to wamid.…OTJBMTE4RTUA)"


@pytest.mark.parametrize(
    ("message", "line"),
    [
        (samples.image_message(), 'image from 16505551234: "Is this the blue one?"'),
        (samples.sticker_message(animated=True), "sticker from 16505551234: animated"),
        (samples.request_welcome_message(), "request_welcome from 16505551234"),
        (samples.video_message(), "video from 16505551234"),
        (samples.audio_message(), "audio from 16505551234: voice note"),
        (samples.audio_message(voice=False), "audio from 16505551234"),
        (
            samples.document_message(),
            'document from 16505551234: invoice-2026-001.pdf "Here is the invoice"',
        ),
        (samples.document_message(caption=None), "document from 16505551234: invoice-2026-001.pdf"),
        (samples.sticker_message(), "sticker from 16505551234"),
        (
            samples.location_message(),
            "location from 16505551234: Philz Coffee, 101 Forest Ave, Palo Alto, CA 94301 "
            "(37.44216251868683,-122.16153582049394)",
        ),
        (
            samples.location_message(None, None),
            "location from 16505551234: (37.44216251868683,-122.16153582049394)",
        ),
        (
            samples.contacts_message(["Barbara J. Johnson", "Ali Ben"]),
            "contacts from 16505551234: Barbara J. Johnson, Ali Ben",
        ),
        (
            samples.button_reply(),
            f'interactive button_reply from 16505551234: "Yes" id confirm-yes {REPLY}',
        ),
        (
            samples.list_reply(),
            'interactive list_reply from 16505551234: "Express shipping" id shipping-express, '
            f'"Arrives in 1-2 days" {REPLY}',
        ),
        (
            samples.flow_reply(),
            f"interactive nfm_reply from 16505551234: flow: Sent; flow_token unused; size=M {REPLY}",
        ),
        (
            samples.template_button(),
            f'button from 16505551234: "Yes, I can make it" (payload attend-yes) {REPLY}',
        ),
        (samples.reaction_message(), "reaction from 16505551234: \U0001f600 on wamid.…OTJBMTE4RTUA"),
        (samples.reaction_message(None), "reaction from 16505551234: removed on wamid.…OTJBMTE4RTUA"),
        (
            samples.order_message(),
            "order from 16505551234: 2 items from catalog 194836987003835, total 60 USD "
            "(Here's my order)",
        ),
        (
            samples.order_message(1, note=""),
            "order from 16505551234: 1 item from catalog 194836987003835, total 30 USD",
        ),
        (
            samples.system_message(),
            "system user_changed_number from 16505551234: "
            "User Sheena Nelson changed from 16505551234 to 16505559876",
        ),
        (samples.request_welcome_message(), "request_welcome from 16505551234"),
        (
            samples.unsupported_message(),
            "unsupported video_note from 16505551234: 131051 Message type unknown",
        ),
    ],
)
def test_every_message_type_line(message: dict[str, Any], line: str) -> None:
    summary = decode_messages(message)
    item = only(summary)
    assert isinstance(item, InboundMessage)
    assert item.type == message["type"]
    assert item.line() == line
    assert summary.headline == f"messages: {line}"
    assert_sane(summary)


def test_message_details_per_type() -> None:
    image = only(decode_messages(samples.image_message()))
    assert (image.media_id, image.text) == ("1003383421387256", "Is this the blue one?")
    document = only(decode_messages(samples.document_message()))
    assert (document.subtype, document.text) == ("invoice-2026-001.pdf", "Here is the invoice")
    button = only(decode_messages(samples.button_reply()))
    assert (button.subtype, button.text, button.context_id) == (
        "button_reply",
        "Yes",
        REPLIED_WAMID,
    )
    template = only(decode_messages(samples.template_button()))
    assert (template.subtype, template.text) == ("attend-yes", "Yes, I can make it")
    reaction = only(decode_messages(samples.reaction_message()))
    assert (reaction.text, reaction.context_id) == ("\U0001f600", REPLIED_WAMID)
    removed = only(decode_messages(samples.reaction_message(None)))
    assert (removed.text, removed.subtype) == ("", "removed")
    order = only(decode_messages(samples.order_message(3)))
    assert order.subtype == "194836987003835" and order.text.startswith("3 items")
    system = only(decode_messages(samples.system_message()))
    assert system.subtype == "user_changed_number"
    unsupported = only(decode_messages(samples.unsupported_message()))
    assert [e.code for e in unsupported.errors] == [131051]
    assert unsupported.errors[0].details == "Message type is currently not supported."


def test_context_forwarded_and_referral() -> None:
    message = text_message(
        "Is it in stock?", reply_to=REPLIED_WAMID, forwarded=True, referral=samples.ad_referral()
    )
    item = only(decode_messages(message))
    assert item.context_id == REPLIED_WAMID
    assert item.forwarded and item.referral
    assert item.line() == (
        'text from 16505551234: "Is it in stock?" '
        '(reply to wamid.…OTJBMTE4RTUA, forwarded, from an ad "Chat with us", ad 120209822958960479, '
        "ctwa_clid …F4XvnO2E4Nx0)"
    )


def test_frequently_forwarded_counts_as_forwarded() -> None:
    message = text_message()
    message["context"] = {"frequently_forwarded": True}
    assert only(decode_messages(message)).forwarded


def test_errors_on_a_non_unsupported_message_are_shown() -> None:
    message = text_message(errors=[samples.meta_error(131000)])
    assert only(decode_messages(message)).line().endswith("[131000 Something went wrong]")


# --- 2026 contacts: business-scoped user ids and usernames --------------------------------------


def test_sender_falls_back_to_contact_user_id() -> None:
    contact = samples.contact(wa_id=None, user_id="US.13491208655302741918", username="sheena")
    change = messages_change([text_message(sender=None)], contacts=[contact])
    item = only(decode_payload(body_of(change)))
    assert item.sender == "US.13491208655302741918"
    assert item.contact_name == "Sheena Nelson"
    assert item.line().startswith("text from US.13491208655302741918: ")


def test_sender_falls_back_to_username() -> None:
    contact = samples.contact("Sheena", wa_id=None, username="sheena.shop")
    change = messages_change([text_message(sender=None)], contacts=[contact])
    assert only(decode_payload(body_of(change))).sender == "@sheena.shop"


def test_sender_from_user_id_and_contact_matched_by_user_id() -> None:
    contacts = [
        samples.contact("Other", wa_id=None, user_id="US.2"),
        samples.contact("Sheena", wa_id=None, user_id="US.1"),
    ]
    change = messages_change([text_message(sender=None, user_id="US.1")], contacts=contacts)
    item = only(decode_payload(body_of(change)))
    assert (item.sender, item.contact_name) == ("US.1", "Sheena")


def test_contact_matched_by_wa_id_in_a_multi_contact_change() -> None:
    contacts = [samples.contact("Ali", "19995550000"), samples.contact("Sheena", USER)]
    change = messages_change(
        [text_message(message_id="wamid.a"), text_message(sender="19995550000", message_id="w.b")],
        contacts=contacts,
    )
    names = [item.contact_name for item in decode_payload(body_of(change)).items]
    assert names == ["Sheena", "Ali"]


def test_no_sender_at_all() -> None:
    change = messages_change([text_message(sender=None)], contacts=[])
    assert only(decode_payload(body_of(change))).line().startswith("text from unknown sender:")


# --- statuses -----------------------------------------------------------------------------------


@pytest.mark.parametrize("name", ["sent", "delivered", "read", "played"])
def test_status_lines(name: str) -> None:
    item = only(decode_payload(body_of(messages_change(statuses=[samples.status(name)]))))
    assert item.line() == f"{name} {SHORT} to {USER}" + (" (marketing)" if name == "sent" else "")
    assert item.status == name and item.status_id == WAMID and item.recipient_id == USER


def test_sent_status_pricing_and_conversation() -> None:
    sent = samples.status("sent", category="utility", pricing_model="CBP")
    item = only(decode_payload(body_of(messages_change(statuses=[sent]))))
    assert (item.pricing_category, item.pricing_model) == ("utility", "CBP")
    assert item.conversation_category == "utility"
    assert item.timestamp == "1751142888"


def test_status_recipient_falls_back_to_recipient_user_id() -> None:
    status = samples.status("delivered")
    del status["recipient_id"]
    status["recipient_user_id"] = "US.1"
    assert only(decode_payload(body_of(messages_change(statuses=[status])))).recipient_id == "US.1"


@pytest.mark.parametrize(
    ("code", "title"),
    [(131026, "Message undeliverable"), (131047, "Re-engagement message")],
)
def test_failed_status_codes(code: int, title: str) -> None:
    status = samples.status("failed", error_code=code)
    item = only(decode_payload(body_of(messages_change(statuses=[status]))))
    assert item.line() == f"failed {SHORT} to {USER}: {code} {title}"


def test_change_level_errors() -> None:
    error = samples.meta_error(131000, details="Service unavailable")
    summary = decode_payload(body_of(messages_change(errors=[error])))
    item = only(summary)
    assert isinstance(item, ChangeError)
    assert item.error.code == 131000
    assert item.line() == "error 131000 Something went wrong (Service unavailable)"
    assert summary.headline == "messages: error 131000 Something went wrong (Service unavailable)"


# --- non-message fields -------------------------------------------------------------------------


def metadata() -> dict[str, str]:
    return {"display_phone_number": "15550783881", "phone_number_id": PHONE_NUMBER_ID}


FIELD_CASES = [
    (samples.template_status_update(), "template order_confirmation APPROVED"),
    (
        samples.template_status_update("welcome", "REJECTED", "INVALID_FORMAT"),
        "template welcome REJECTED (INVALID_FORMAT)",
    ),
    (samples.template_status_update(reason=None), "template order_confirmation APPROVED"),
    (
        samples.field_change(
            "message_template_status_update",
            {
                "event": "PAUSED",
                "message_template_id": 1,
                "message_template_name": "promo",
                "reason": None,
                "other_info": {"title": "FIRST_PAUSE", "description": "Paused for 3 hours"},
            },
        ),
        "template promo PAUSED (FIRST_PAUSE: Paused for 3 hours)",
    ),
    (samples.template_quality_update(), "template quality order_confirmation YELLOW (was GREEN)"),
    (
        samples.template_category_update(),
        "template category order_confirmation MARKETING (was UTILITY)",
    ),
    (samples.account_update(), "account_update ACCOUNT_VIOLATION (violation SCAM)"),
    (
        samples.account_update("VERIFIED_ACCOUNT", phone_number="15550783881"),
        "account_update 15550783881 VERIFIED_ACCOUNT",
    ),
    (
        samples.account_update("DISABLED_UPDATE", ban_info={"waba_ban_state": ["DISABLE"]}),
        "account_update DISABLED_UPDATE (ban DISABLE)",
    ),
    (
        samples.field_change(
            "account_alerts",
            {
                "entity_type": "WABA",
                "entity_id": "102290129340398",
                "alert_info": {
                    "alert_severity": "WARNING",
                    "alert_status": "ACTIVE",
                    "alert_type": "INCREASED_MESSAGING_LIMIT",
                    "alert_description": "Your messaging limit increased.",
                },
            },
        ),
        "account_alerts 102290129340398 INCREASED_MESSAGING_LIMIT "
        "(WARNING; Your messaging limit increased.; entity_type=WABA)",
    ),
    (
        samples.field_change("account_review_update", {"decision": "APPROVED"}),
        "account_review_update APPROVED",
    ),
    (
        samples.phone_number_quality_update(),
        "phone_number_quality_update 15550783881 UPGRADE (limit TIER_10K)",
    ),
    (
        samples.field_change(
            "phone_number_name_update",
            {
                "display_phone_number": "15550783881",
                "decision": "APPROVED",
                "requested_verified_name": "Lucky Shrub",
                "rejection_reason": "NONE",
            },
        ),
        "phone_number_name_update 15550783881 APPROVED (Lucky Shrub)",
    ),
    (
        samples.field_change(
            "business_capability_update",
            {"max_daily_conversation_per_phone": 1000, "max_phone_numbers_per_business": 25},
        ),
        "business_capability_update (numbers per business 25; deprecated per-phone limit 1000)",
    ),
    (
        samples.field_change(
            "security",
            {"display_phone_number": "15550783881", "event": "PIN_CHANGED", "requester": "1234"},
        ),
        "security 15550783881 PIN_CHANGED (by 1234)",
    ),
    (
        samples.field_change(
            "flows",
            {
                "event": "FLOW_STATUS_CHANGE",
                "message": "Flow Survey changed status from DRAFT to PUBLISHED",
                "flow_id": "1234567890",
                "old_status": "DRAFT",
                "new_status": "PUBLISHED",
            },
        ),
        "flows 1234567890 FLOW_STATUS_CHANGE (Flow Survey changed status from DRAFT to PUBLISHED)",
    ),
    (
        samples.field_change(
            "calls",
            {
                "messaging_product": "whatsapp",
                "metadata": metadata(),
                "calls": [
                    {
                        "id": "wacid.HBgLMTY1MDU1NTEyMzQ",
                        "to": "15550783881",
                        "from": USER,
                        "event": "connect",
                        "timestamp": "1749416383",
                        "direction": "USER_INITIATED",
                    }
                ],
            },
        ),
        "call from 16505551234 connect (wacid.…1MDU1NTEyMzQ)",
    ),
    (
        samples.field_change(
            "history",
            {
                "messaging_product": "whatsapp",
                "metadata": metadata(),
                "history": [
                    {"metadata": {"phase": 0, "chunk_order": 1, "progress": 55}, "threads": []}
                ],
            },
        ),
        "history (phase 0; chunk 1; progress 55)",
    ),
    (
        samples.field_change(
            "smb_app_state_sync",
            {
                "messaging_product": "whatsapp",
                "metadata": metadata(),
                "state_sync": [
                    {
                        "type": "contact",
                        "contact": {"full_name": "Sheena Nelson", "phone_number": USER},
                        "action": "add",
                        "metadata": {"timestamp": "1749416383"},
                    }
                ],
            },
        ),
        "smb_app_state_sync 16505551234 add (Sheena Nelson)",
    ),
    (
        samples.field_change(
            "user_preferences",
            {
                "messaging_product": "whatsapp",
                "metadata": metadata(),
                "user_preferences": [
                    {
                        "wa_id": USER,
                        "detail": "User requested to stop marketing messages",
                        "category": "marketing_messages",
                        "value": "stop",
                        "timestamp": 1749416383,
                    }
                ],
            },
        ),
        "user_preferences 16505551234 stop "
        "(marketing_messages; User requested to stop marketing messages)",
    ),
    (
        samples.field_change("payment_configuration_update", {"configuration_name": "x", "n": 1}),
        "payment_configuration_update (configuration_name=x; n=1)",
    ),
    (
        samples.field_change(
            "partner_solutions", {"event": "SOLUTION_CREATED", "solution_id": "7"}
        ),
        "partner_solutions 7 SOLUTION_CREATED",
    ),
    (samples.field_change("history", {"history": []}), "history (keys: history)"),
    (samples.field_change("brand_new_field", {}), "brand_new_field (empty value)"),
]


@pytest.mark.parametrize(("change", "line"), FIELD_CASES)
def test_every_field_line(change: dict[str, Any], line: str) -> None:
    summary = decode_payload(body_of(change))
    item = only(summary)
    assert isinstance(item, FieldUpdate)
    assert item.field == change["field"]
    assert item.line() == line
    assert item.raw_keys == tuple(change["value"])
    assert summary.fields == (change["field"],)
    expected = line if line.startswith(f"{item.field} ") else f"{item.field}: {line}"
    assert summary.headline == expected
    assert_sane(summary)


def test_list_fields_give_one_update_per_item() -> None:
    calls = [
        {"id": "wacid.1", "from": USER, "event": "connect", "direction": "USER_INITIATED"},
        {
            "id": "wacid.1",
            "from": USER,
            "event": "terminate",
            "status": "COMPLETED",
            "duration": 42,
        },
    ]
    statuses = [{"id": "wacid.2", "type": "call", "status": "RINGING", "recipient_id": USER}]
    change = samples.field_change(
        "calls", {"metadata": metadata(), "calls": calls, "statuses": statuses}
    )
    summary = decode_payload(body_of(change))
    assert [item.line() for item in summary.items] == [
        "call from 16505551234 connect (wacid.1)",
        "call from 16505551234 terminate (COMPLETED; 42 s; wacid.1)",
        "RINGING wacid.2 to 16505551234",
    ]
    assert summary.headline == "batch: 1 status, 2 calls"


# --- batches: every entry, every change, in order ----------------------------------------------


def test_batch_keeps_every_item_in_order() -> None:
    first = messages_change(
        [text_message("a", message_id="m1"), samples.reaction_message(message_id="m2")],
        statuses=[samples.status("sent", message_id="s1")],
    )
    second = messages_change(
        [text_message("b", message_id="m3")],
        phone_number_id="222",
        display_phone_number="15550001111",
    )
    third = messages_change(statuses=[samples.status("failed", message_id="s2")])
    document = {
        "object": "whatsapp_business_account",
        "entry": [
            {"id": "111", "changes": [first, samples.template_status_update()]},
            {"id": "333", "changes": [second, third, samples.account_update()]},
        ],
    }
    summary = decode_payload(meta_json(document))
    assert summary.ok
    ids = [getattr(item, "message_id", getattr(item, "status_id", "")) for item in summary.items]
    assert ids == ["m1", "m2", "s1", "", "m3", "s2", ""]
    assert [type(item).__name__ for item in summary.items] == [
        "InboundMessage",
        "InboundMessage",
        "StatusUpdate",
        "FieldUpdate",
        "InboundMessage",
        "StatusUpdate",
        "FieldUpdate",
    ]
    assert [item.waba_id for item in summary.items] == ["111"] * 4 + ["333"] * 3
    assert summary.items[4].phone_number_id == "222"
    assert summary.fields == ("messages", "message_template_status_update", "account_update")
    assert summary.headline == (
        "batch: 3 messages, 2 statuses, 1 message_template_status_update, 1 account_update"
    )
    assert summary.flags == ("batch",)


def test_a_thousand_updates_are_all_decoded() -> None:
    messages = [text_message(f"n{i}", message_id=f"wamid.{i}") for i in range(600)]
    statuses = [samples.status("read", message_id=f"wamid.s{i}") for i in range(400)]
    summary = decode_payload(body_of(messages_change(messages, statuses)))
    assert len(summary.items) == 1000
    assert summary.headline == "batch: 600 messages, 400 statuses"
    assert summary.items[599].text == "n599"


def test_empty_change() -> None:
    summary = decode_payload(body_of(messages_change()))
    assert summary.ok and summary.items == ()
    assert summary.headline == "messages: no messages or statuses"


def test_empty_entry_list_and_entry_without_changes() -> None:
    empty = decode_payload(b'{"object":"whatsapp_business_account","entry":[]}')
    assert empty.ok and empty.headline == "entry[] is empty"
    bare = decode_payload(b'{"object":"whatsapp_business_account","entry":[{"id":"1"}]}')
    assert bare.ok and bare.headline == "no changes in entry[]"


# --- flags: dashboard test, accounts, duplicates -----------------------------------------------


def test_dashboard_test_sample_is_labelled() -> None:
    summary = decode_payload(samples.dashboard_test_sample())
    assert summary.flags == ("dashboard-test",)
    assert summary.headline == 'messages: text from 16315551181: "this is a text message"'


def test_dashboard_test_button_for_another_field() -> None:
    body = meta_json(envelope([samples.template_status_update()], waba_id="0"))
    assert decode_payload(body).flags == ("dashboard-test",)


def test_accounts_by_phone_number_id() -> None:
    body = samples.text_message_payload()
    known = decode_payload(body, accounts_by_phone_number_id={PHONE_NUMBER_ID: "shop"})
    assert only(known).account == "shop"
    assert known.flags == ()
    unknown = decode_payload(body, accounts_by_phone_number_id={"999": "other"})
    assert only(unknown).account is None
    assert unknown.flags == ("unknown-phone-number-id",)
    assert decode_payload(body, accounts_by_phone_number_id={}).flags == ()


def test_dashboard_sample_with_configured_accounts_is_flagged_both_ways() -> None:
    summary = decode_payload(
        samples.dashboard_test_sample(), accounts_by_phone_number_id={PHONE_NUMBER_ID: "shop"}
    )
    assert summary.flags == ("dashboard-test", "unknown-phone-number-id")


def test_template_field_without_metadata_is_never_unknown_phone_number() -> None:
    body = body_of(samples.template_status_update())
    assert decode_payload(body, accounts_by_phone_number_id={"1": "a"}).flags == ()


def test_duplicate_message_and_status_deliveries() -> None:
    seen = SeenIds()
    body = samples.text_message_payload()
    assert decode_payload(body, seen=seen).flags == ()
    assert decode_payload(body, seen=seen).flags == ("duplicate",)
    read = body_of(messages_change(statuses=[samples.status("read")]))
    delivered = body_of(messages_change(statuses=[samples.status("delivered")]))
    assert decode_payload(delivered, seen=seen).flags == ()
    assert decode_payload(read, seen=seen).flags == ()
    assert decode_payload(read, seen=seen).flags == ("duplicate",)


def test_duplicate_inside_one_batch() -> None:
    summary = decode_messages(text_message(), text_message(), seen=SeenIds())
    assert summary.flags == ("batch", "duplicate")


def test_without_seen_ids_nothing_is_a_duplicate() -> None:
    assert decode_messages(text_message(), text_message()).flags == ("batch",)


def test_seen_ids_is_bounded_fifo() -> None:
    seen = SeenIds(limit=3)
    assert [seen.seen_before(k) for k in "abca"] == [False, False, False, True]
    assert not seen.seen_before("d")
    assert len(seen) == 3
    assert "a" not in seen and "d" in seen
    assert not seen.seen_before("a")
    assert "b" not in seen
    with pytest.raises(ValueError):
        SeenIds(limit=0)


# --- Meta's bytes: escaped unicode, "\/", odd shapes ------------------------------------------


def test_escaped_unicode_and_slashes_decode_to_text() -> None:
    text = "\u00c7a va? \U0001f62e see https://example.com/a/b"
    body = samples.text_message_payload(text)
    assert b"\\ud83d\\ude2e" in body and b"https:\\/\\/example.com" in body
    assert only(decode_payload(body)).text == text


def test_lone_surrogates_are_replaced_so_the_summary_encodes() -> None:
    body = samples.text_message_payload("x").replace(b'"body":"x"', b'"body":"\\ud800 oops"')
    summary = decode_payload(body)
    assert only(summary).text == "? oops"
    assert_sane(summary)


@pytest.mark.parametrize("number", ["123456789012345678901234", "-18446744073709551617"])
def test_integers_beyond_64_bits_keep_every_digit(number: str) -> None:
    body = samples.text_message_payload().replace(
        f'"phone_number_id":"{PHONE_NUMBER_ID}"'.encode(), f'"phone_number_id": {number}'.encode()
    )
    assert number.encode() in body
    assert only(decode_payload(body)).phone_number_id == number


def test_nesting_limit_does_not_depend_on_the_stack() -> None:
    deep = b'{"object":"whatsapp_business_account","entry":[],"x":' + b"[" * 1000 + b"]" * 1000 + b"}"
    assert decode_payload(deep).ok
    too_deep = b'{"object":"whatsapp_business_account","entry":[],"x":' + b"[" * 1100 + b"]" * 1100 + b"}"
    assert decode_payload(too_deep).problem == "body is not JSON: nested too deeply"


def test_to_dict_shape() -> None:
    change = messages_change(
        [text_message()], statuses=[samples.status("failed")], errors=[samples.meta_error(1)]
    )
    summary = decode_payload(body_of(change, samples.template_status_update()))
    document = summary.to_dict()
    json.dumps(document)
    assert list(document) == ["ok", "problem", "object", "fields", "flags", "headline", "items"]
    kinds = [item["kind"] for item in document["items"]]
    assert kinds == ["message", "status", "error", "field"]
    message, status, error, field = document["items"]
    assert message["text"] == "Does it come in another color?"
    assert message["line"] == 'text from 16505551234: "Does it come in another color?"'
    assert status["errors"][0] == {
        "code": 131049,
        "title": "This message was not delivered to maintain healthy ecosystem engagement.",
        "message": "This message was not delivered to maintain healthy ecosystem engagement.",
        "details": "In order to maintain a healthy ecosystem engagement, "
        "the message failed to be delivered.",
    }
    assert field["raw_keys"][0] == "event"
    assert error["error"]["code"] == 1


@pytest.mark.parametrize(
    ("body", "problem"),
    [
        (b"", "body is not JSON: empty body"),
        (b"not json", "body is not JSON: Expecting value: line 1 column 1 (char 0)"),
        (b"[1, 2]", "JSON is not an object (list)"),
        (b'"text"', "JSON is not an object (str)"),
        (b'{"object":"page","entry":[]}', "object is 'page', expected 'whatsapp_business_account'"),
        (b'{"entry":[]}', "object is missing, expected 'whatsapp_business_account'"),
        (b'{"object":"whatsapp_business_account"}', "no entry[]"),
        (b'{"object":"whatsapp_business_account","entry":{}}', "entry is not a list"),
        (b"[" * 100_000, "body is not JSON: nested too deeply"),
    ],
)
def test_not_a_whatsapp_envelope(body: bytes, problem: str) -> None:
    summary = decode_payload(body)
    assert not summary.ok
    assert summary.problem == problem
    assert summary.headline == problem
    assert_sane(summary)


def test_invalid_utf8_is_not_json() -> None:
    summary = decode_payload(b'{"object":"\xff\xfe"}')
    assert not summary.ok and summary.problem.startswith("body is not JSON: ")


def test_odd_shapes_degrade_without_raising() -> None:
    document = {
        "object": "whatsapp_business_account",
        "entry": [
            "not an entry",
            {"id": 42, "changes": {"not": "a list"}},
            {
                "id": "1",
                "changes": [
                    7,
                    {"field": "messages", "value": [1, 2]},
                    {"field": "messages", "value": {"messages": {"a": 1}, "statuses": "x"}},
                    {
                        "field": "messages",
                        "value": {
                            "metadata": [],
                            "contacts": "nope",
                            "messages": [
                                None,
                                {"type": "text", "text": "not an object", "id": 5, "from": 12},
                                {"type": ["x"], "errors": ["boom", {"code": "131051"}]},
                            ],
                            "statuses": [{"errors": {"code": 1}, "pricing": []}],
                        },
                    },
                ],
            },
        ],
    }
    summary = decode_payload(meta_json(document))
    assert summary.ok
    assert_sane(summary)
    lines = [item.line() for item in summary.items]
    assert lines[:3] == [
        "change (entry is str, not an object)",
        "change (change is int, not an object)",
        "messages (value is list, not an object)",
    ]
    assert lines[3] == "message from unknown sender"
    assert lines[4] == "text from 12"
    assert summary.items[4].message_id == "5"
    assert [e.code for e in summary.items[5].errors] == [None, 131051]
    assert summary.items[5].errors[0].message == "boom"
    assert lines[6] == "status"
    assert len(lines) == 7


# --- property tests: any bytes, any JSON, mutated real envelopes -------------------------------

json_values = st.recursive(
    st.none()
    | st.booleans()
    | st.integers()
    | st.floats()
    | st.text(max_size=20)
    | st.sampled_from(["messages", "whatsapp_business_account", "text", "failed", "0"]),
    lambda children: (
        st.lists(children, max_size=5)
        | st.dictionaries(
            st.sampled_from(
                [
                    "object",
                    "entry",
                    "changes",
                    "value",
                    "field",
                    "messages",
                    "statuses",
                    "type",
                    "text",
                    "errors",
                    "contacts",
                    "metadata",
                    "id",
                    "from",
                    "context",
                    "x",
                ]
            )
            | st.text(max_size=6),
            children,
            max_size=6,
        )
    ),
    max_leaves=40,
)

REAL_ENVELOPES = [
    envelope(
        [
            messages_change(
                [
                    text_message(reply_to=REPLIED_WAMID, referral=samples.ad_referral()),
                    samples.image_message(),
                    samples.document_message(),
                    samples.location_message(),
                    samples.contacts_message(),
                    samples.button_reply(),
                    samples.list_reply(),
                    samples.flow_reply(),
                    samples.template_button(),
                    samples.reaction_message(None),
                    samples.order_message(),
                    samples.system_message(),
                    samples.unsupported_message(),
                ],
                [samples.status("sent"), samples.status("failed")],
                errors=[samples.meta_error(131000)],
            ),
            samples.template_status_update(),
            samples.account_update(),
            FIELD_CASES[16][0],
        ]
    ),
    json.loads(samples.dashboard_test_sample()),
]


def paths(node: Any, prefix: tuple[Any, ...] = ()) -> list[tuple[Any, ...]]:
    """Every location in a JSON document, the root included."""
    found = [prefix]
    if isinstance(node, dict):
        for key, child in node.items():
            found += paths(child, (*prefix, key))
    elif isinstance(node, list):
        for index, child in enumerate(node):
            found += paths(child, (*prefix, index))
    return found


def replaced(document: Any, path: tuple[Any, ...], new: Any) -> Any:
    if not path:
        return new
    copy = json.loads(json.dumps(document))
    node = copy
    for step in path[:-1]:
        node = node[step]
    node[path[-1]] = new
    return copy


@settings(max_examples=300)
@given(st.binary(max_size=400))
def test_any_bytes(body: bytes) -> None:
    assert_sane(decode_payload(body, accounts_by_phone_number_id={"1": "a"}, seen=SeenIds()))


@settings(max_examples=300)
@given(json_values)
def test_any_json(value: Any) -> None:
    assert_sane(decode_payload(json.dumps(value).encode(), seen=SeenIds()))


@settings(max_examples=300)
@given(json_values)
def test_any_json_inside_an_envelope(value: Any) -> None:
    document = {"object": "whatsapp_business_account", "entry": [{"id": "1", "changes": value}]}
    assert_sane(
        decode_payload(json.dumps(document).encode(), accounts_by_phone_number_id={"1": "a"})
    )


@settings(max_examples=400, suppress_health_check=[HealthCheck.too_slow])
@given(st.sampled_from(REAL_ENVELOPES), st.data(), json_values)
def test_mutated_real_envelopes(document: Any, data: st.DataObject, new: Any) -> None:
    path = data.draw(st.sampled_from(paths(document)))
    mutated = replaced(document, path, new)
    summary = decode_payload(
        meta_json(mutated), seen=SeenIds(), accounts_by_phone_number_id={"x": "y"}
    )
    assert_sane(summary)


@settings(max_examples=100)
@given(st.sampled_from(REAL_ENVELOPES), st.data())
def test_truncated_real_envelopes(document: Any, data: st.DataObject) -> None:
    body = meta_json(document)
    cut = data.draw(st.integers(min_value=0, max_value=len(body)))
    assert_sane(decode_payload(body[:cut]))
