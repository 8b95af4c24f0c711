"""Every sample body in tests/data/webhooks decoded: per kind, the values a WhatsApp developer acts on
are in the item (named fields and `values`) and in its line; for all of them, nothing Meta sent is
only in the raw body."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from wa_devtunnel.rules.decode.items import ChangeError, FieldUpdate, InboundMessage, StatusUpdate
from wa_devtunnel.rules.decode.payload import WebhookSummary, decode_payload

DATA = Path(__file__).resolve().parents[1] / "data" / "webhooks"
SAMPLES = sorted(path.relative_to(DATA).with_suffix("").as_posix() for path in DATA.rglob("*.json"))
USER, USER2, USER3, BIZ = "14155550123", "447700900456", "5511955550789", "15550281177"
GROUP = "Y2FwaV9ncm91cDoxNTU1MDI4MTE3NzoxMjAzNjM0MjAxODg1NTQwOTIZD"


def decode(name: str, **kwargs: Any) -> WebhookSummary:
    return decode_payload((DATA / f"{name}.json").read_bytes(), **kwargs)


def raw(name: str) -> dict[str, Any]:
    return json.loads((DATA / f"{name}.json").read_text())


def values(item: Any) -> dict[str, Any]:
    return dict(item.values)


# name: one dict per item: its type, named fields it must have, words its line must hold, values.
Expected = list[dict[str, Any]]
CASES: dict[str, Expected] = {
    "messages/text": [
        {
            "is": InboundMessage,
            "fields": {"sender": USER, "contact_name": "Dana Whitfield", "type": "text"},
            "line": ['text from 14155550123: "Hi, is the 2-seat sofa still available?"'],
            "values": {
                "text.body": "Hi, is the 2-seat sofa still available?",
                "contact.profile.name": "Dana Whitfield",
            },
        },
    ],
    "messages/text_frequently_forwarded": [
        {
            "is": InboundMessage,
            "fields": {"forwarded": True},
            "line": ["(frequently forwarded)"],
            "values": {"context.frequently_forwarded": True},
        },
    ],
    "messages/text_in_group": [
        {
            "is": InboundMessage,
            "fields": {"group_id": GROUP, "sender": USER},
            "line": ["text from 14155550123 in group …Dg1NTQwOTIZD:"],
            "values": {"group_id": GROUP},
        },
    ],
    "messages/text_from_ad": [
        {
            "is": InboundMessage,
            "fields": {"referral": True},
            "line": ['from an ad "Spring sale: 30% off sofas"', "ad 120214397553680221", "ctwa_clid …xS3vZ6bN9kM2"],
            "values": {
                "referral.ctwa_clid": "ARAkJp2W0q7tX1vYqKcN5sB8dF3gH6jL9mP2rT5wY8zC1eA4iO7uQ0xS3vZ6bN9kM2",
                "referral.source_id": "120214397553680221",
                "referral.source_url": "https://fb.me/8Qx3kLm2A",
                "referral.headline": "Spring sale: 30% off sofas",
                "referral.welcome_message.text": "Hi! Thanks for your interest in our spring sale.",
            },
        },
    ],
    "messages/text_about_product": [
        {
            "is": InboundMessage,
            "line": ["about product sofa-2s-grey of catalog 842117390215567", "reply to wamid.…"],
            "values": {"context.referred_product.product_retailer_id": "sofa-2s-grey"},
        },
    ],
    "messages/image": [
        {
            "is": InboundMessage,
            "fields": {"media_id": "1623449817731052", "text": "This is the scratch on the armrest"},
            "line": ['image from 14155550123: "This is the scratch on the armrest"'],
            "values": {"image.mime_type": "image/jpeg", "image.sha256": "q0n9Rz3xLwK1vB7dT5yH2mC8fJ4sP6gA0eU9iO3rW1E="},
        },
    ],
    "messages/sticker_animated": [
        {
            "is": InboundMessage,
            "fields": {"subtype": "animated", "media_id": "902477115620358"},
            "line": ["sticker from 14155550123: animated"],
            "values": {"sticker.animated": True},
        },
    ],
    "messages/audio_voice": [
        {"is": InboundMessage, "fields": {"subtype": "voice"}, "line": ["voice note"], "values": {"audio.voice": True}},
    ],
    "messages/document": [
        {
            "is": InboundMessage,
            "fields": {"subtype": "delivery-note-4471.pdf", "media_id": "1185520397742201"},
            "line": ['delivery-note-4471.pdf "Signed delivery note"'],
            "values": {"document.mime_type": "application/pdf"},
        },
    ],
    "messages/location": [
        {
            "is": InboundMessage,
            "line": ["Showroom, 12 Market St, London (51.507351,-0.127758)"],
            "values": {"location.latitude": 51.507351, "location.url": "https://example-furniture.test/showroom"},
        },
    ],
    "messages/contacts_vcard_only": [
        {
            "is": InboundMessage,
            "fields": {"text": "+44 7700 900123, vCard"},
            "line": ["contacts from 14155550123: +44 7700 900123, vCard"],
            "values": {
                "contacts[0].phones[0].wa_id": "447700900123",
                "contacts[1].vcard": "BEGIN:VCARD\nVERSION:3.0\nEND:VCARD",
            },
        },
    ],
    "messages/interactive_button_reply": [
        {
            "is": InboundMessage,
            "fields": {"subtype": "button_reply", "reply_id": "delivery-slot-am", "text": "Morning (8-12)"},
            "line": [
                'interactive button_reply from 14155550123: "Morning (8-12)" id delivery-slot-am (reply to wamid.…'
            ],
        },
    ],
    "messages/interactive_list_reply": [
        {
            "is": InboundMessage,
            "fields": {"reply_id": "color-sage", "reply_description": "Ships in 3 weeks", "text": "Sage green"},
            "line": ['"Sage green" id color-sage, "Ships in 3 weeks"'],
        },
    ],
    "messages/interactive_nfm_reply": [
        {
            "is": InboundMessage,
            "fields": {"subtype": "nfm_reply", "flow_token": "booking-7781-d2"},
            "line": ["flow: Sent; flow_token booking-7781-d2; delivery_date=2026-12-14, floor=3, needs_assembly=true"],
            "values": {
                "interactive.nfm_reply.response_json{}.flow_token": "booking-7781-d2",
                "interactive.nfm_reply.response_json{}.delivery_date": "2026-12-14",
                "interactive.nfm_reply.response_json{}.floor": 3,
                "interactive.nfm_reply.response_json{}.needs_assembly": True,
                "interactive.nfm_reply.response_json{}.notes": "Ring twice",
            },
        },
    ],
    "messages/interactive_call_permission_reply": [
        {
            "is": InboundMessage,
            "fields": {"subtype": "call_permission_reply", "reply_id": "accept"},
            "line": [
                "interactive call_permission_reply from 14155550123: accept until 2025-12-08 09:30 UTC (user_action)"
            ],
            "values": {
                "interactive.call_permission_reply.expiration_timestamp": 1765186202,
                "interactive.call_permission_reply.is_permanent": False,
            },
        },
    ],
    "messages/button": [
        {
            "is": InboundMessage,
            "fields": {"reply_id": "reschedule-delivery-4471", "text": "Reschedule"},
            "line": ['"Reschedule" (payload reschedule-delivery-4471)'],
        },
    ],
    "messages/reaction": [
        {
            "is": InboundMessage,
            "fields": {"text": "\U0001f44d"},
            "line": ["reaction from 14155550123: \U0001f44d on wamid.…RjRBMEU1NQA="],
        },
    ],
    "messages/edit": [
        {
            "is": InboundMessage,
            "fields": {"type": "edit", "subtype": "text", "text": "Hi, is the 3-seat sofa still available?"},
            "original": True,
            "line": ['edit from 14155550123: "Hi, is the 3-seat sofa still available?" (edits wamid.…OEU3QTYxMQA=)'],
        },
    ],
    "messages/revoke": [
        {
            "is": InboundMessage,
            "fields": {"type": "revoke"},
            "original": True,
            "line": ["revoke from 14155550123 (deletes wamid.…OEU3QTYxMQA=)"],
        },
    ],
    "messages/system_user_changed_user_id": [
        {
            "is": InboundMessage,
            "fields": {"subtype": "user_changed_user_id", "sender": "US.13491208655302741918"},
            "line": ["system user_changed_user_id from US.13491208655302741918", "to US.20577319465410228833"],
            "values": {"system.user_id": "US.20577319465410228833"},
        },
    ],
    "messages/unsupported": [
        {
            "is": InboundMessage,
            "fields": {"subtype": "poll"},
            "line": ["unsupported poll from 14155550123: 131051 Message type unknown"],
            "values": {"errors[0].error_data.details": "Message type is currently not supported."},
        },
    ],
    "messages/request_welcome": [
        {"is": InboundMessage, "line": ["request_welcome from 14155550123"]},
    ],
    "messages/order": [
        {
            "is": InboundMessage,
            "fields": {"subtype": "842117390215567"},
            "line": ["2 items from catalog 842117390215567, total 548 GBP (Please deliver after 5pm)"],
            "values": {
                "order.product_items[1].product_retailer_id": "cushion-sage",
                "order.product_items[1].quantity": 2,
            },
        },
    ],
    "messages/message_with_change_error": [
        {"is": InboundMessage, "line": ['"Hello?"']},
        {
            "is": ChangeError,
            "line": ["error 131000 Something went wrong (Message failed to send due to an unknown error.)"],
            "values": {"code": 131000},
        },
    ],
    "statuses/sent_with_pricing": [
        {
            "is": StatusUpdate,
            "fields": {
                "recipient_id": USER,
                "biz_opaque_callback_data": "order-4471:reminder-2",
                "pricing_type": "regular",
                "billable": True,
                "pricing_category": "utility",
                "conversation_id": "b7e2f09c4d1a6835e0f2c7d9a1b4e6f3",
                "conversation_expiration": "1764667860",
            },
            "line": ["sent wamid.…RjRBMEU1NQA= to 14155550123 (utility, callback order-4471:reminder-2)"],
        },
    ],
    "statuses/delivered_free_service": [
        {
            "is": StatusUpdate,
            "fields": {"billable": False, "pricing_type": "free_customer_service"},
            "line": ["delivered wamid.…RjRBMEU1NQA= to 14155550123 (free_customer_service, not billable)"],
        },
    ],
    "statuses/failed_error_data": [
        {
            "is": StatusUpdate,
            "fields": {"recipient_id": USER2, "biz_opaque_callback_data": "campaign-dec-17"},
            "line": [
                "failed wamid.…OEY0QTBFNTYA to 447700900456 (callback campaign-dec-17): "
                "131049 This message was not delivered"
            ],
            "errors": [
                (131049, "In order to maintain a healthy ecosystem engagement, the message failed to be delivered.")
            ],
        },
    ],
    "statuses/failed_old_details": [
        {
            "is": StatusUpdate,
            "line": ["failed wamid.…OEY0QTBFNTYA to 447700900456: 131026 Message Undeliverable."],
            "errors": [(131026, "Receiver is incapable of receiving this message")],
        },
    ],
    "statuses/read_in_group": [
        {
            "is": StatusUpdate,
            "fields": {"group_id": GROUP, "participant": USER3},
            "line": ["read wamid.…RjRBMEU1NQA= in group …Dg1NTQwOTIZD by 5511955550789"],
        },
    ],
    "fields/account_update_restriction": [
        {
            "is": FieldUpdate,
            "fields": {"event": "ACCOUNT_RESTRICTION"},
            "line": [
                "ADD_PHONE_NUMBER_ACTION, BIZ_INITIATED_MESSAGING until 2026-12-21 09:30 UTC",
                "CUSTOMER_INITIATED_MESSAGING until 2026-12-28 09:30 UTC",
            ],
            "values": {
                "restriction_info[2].restriction_type": "RESTRICTED_CUSTOMER_INITIATED_MESSAGING",
                "restriction_info[2].expiration": 1798450200,
                "restriction_info[1].expiration": "2026-12-21T09:30:00+0000",
            },
        },
    ],
    "fields/account_update_ban": [
        {
            "is": FieldUpdate,
            "line": ["ban SCHEDULE_FOR_DISABLE on December 20, 2026"],
            "values": {"ban_info.waba_ban_state[0]": "SCHEDULE_FOR_DISABLE"},
        },
    ],
    "fields/account_update_violation": [{"is": FieldUpdate, "line": ["ACCOUNT_VIOLATION (violation SCAM)"]}],
    "fields/account_update_partner_removed": [
        {
            "is": FieldUpdate,
            "line": ["PARTNER_REMOVED (disconnected: PRIMARY_INACTIVITY by SYSTEM"],
            "values": {
                "disconnection_info.reason": "PRIMARY_INACTIVITY",
                "waba_info.owner_business_id": "2284431990157713",
            },
        },
    ],
    "fields/account_update_certification": [
        {"is": FieldUpdate, "line": ["certification REJECTED (BUSINESS_NAME_MISMATCH) for business 1965503321187740"]},
    ],
    "fields/account_update_pricing_tier": [
        {"is": FieldUpdate, "line": ["pricing tier 100001:500000 for UTILITY in Brazil from 2027-01"]},
    ],
    "fields/account_alerts": [
        {
            "is": FieldUpdate,
            "fields": {"event": "OBA_APPROVED", "subject": "2284431990157713"},
            "line": ["CRITICAL; Official business account status approved."],
        },
    ],
    "fields/account_review_update": [
        {"is": FieldUpdate, "fields": {"event": "REJECTED"}, "line": ["account_review_update REJECTED"]}
    ],
    "fields/business_capability_update": [
        {
            "is": FieldUpdate,
            "line": [
                "messaging limit 10000/day; numbers per business 20; numbers per WABA 20; "
                "deprecated per-phone limit 2000"
            ],
            "values": {"max_daily_conversations_per_business": 10000},
        },
    ],
    "fields/business_capability_update_unlimited": [
        {
            "is": FieldUpdate,
            "line": ["messaging limit unlimited/day"],
            "values": {"max_daily_conversations_per_business": -1},
        },
    ],
    "fields/message_template_status_rejected": [
        {
            "is": FieldUpdate,
            "fields": {"event": "REJECTED", "subject": "delivery_reminder"},
            "line": [
                "INVALID_FORMAT; Variable parameters are at the start of the body. "
                "Recommendation: Move {{1}} after some fixed text."
            ],
            "values": {"rejection_info.recommendation": "Move {{1}} after some fixed text."},
        },
    ],
    "fields/message_template_status_disabled": [
        {
            "is": FieldUpdate,
            "line": ["template winter_promo DISABLED (disabled 2025-12-15 09:30 UTC)"],
            "values": {"disable_info.disable_date": 1765791000},
        },
    ],
    "fields/message_template_status_paused": [
        {
            "is": FieldUpdate,
            "line": ["PAUSED (SECOND_PAUSE: Your template has been paused for 6 hours due to low quality.)"],
        },
    ],
    "fields/message_template_quality_update": [
        {"is": FieldUpdate, "line": ["template quality winter_promo RED (was GREEN)"]}
    ],
    "fields/message_template_components_update": [
        {
            "is": FieldUpdate,
            "line": ["title Delivery tomorrow; body Hi {{1}}, your order {{2}} arrives tomorrow."],
            "values": {
                "message_template_buttons[0].message_template_button_url": "https://example-furniture.test/t/{{1}}"
            },
        },
    ],
    "fields/template_category_update_scheduled": [
        {
            "is": FieldUpdate,
            "fields": {"event": "MARKETING"},
            "line": ["template category delivery_reminder MARKETING (scheduled 2026-01-01 00:00 UTC; now UTILITY)"],
        },
    ],
    "fields/template_category_update_done": [
        {"is": FieldUpdate, "line": ["template category delivery_reminder MARKETING (was UTILITY)"]},
    ],
    "fields/phone_number_name_update": [
        {"is": FieldUpdate, "line": ["15550281177 REJECTED (Best Sofas Ever; NAME_FORMAT_UNACCEPTABLE)"]},
    ],
    "fields/phone_number_quality_update": [
        {"is": FieldUpdate, "line": ["15550281177 UPGRADE (limit 10000/day (TIER_10K); was TIER_2K)"]},
    ],
    "fields/flows_status_change": [
        {
            "is": FieldUpdate,
            "fields": {"subject": "1082204739812345"},
            "line": ["FLOW_STATUS_CHANGE (Flow Delivery booking changed status from DRAFT to PUBLISHED)"],
        },
    ],
    "fields/flows_endpoint_error_rate": [
        {
            "is": FieldUpdate,
            "line": [
                "ENDPOINT_ERROR_RATE (ACTIVATED; error rate 12.5%; threshold 10; "
                "TIMEOUT_ERROR 8.1% x81, INVALID_RESPONSE 4.4% x44"
            ],
            "values": {"errors[1].error_count": 44},
        },
    ],
    "fields/security": [{"is": FieldUpdate, "line": ["security 15550281177 PIN_RESET_REQUEST (by 2284431990157713)"]}],
    "fields/user_preferences": [
        {
            "is": FieldUpdate,
            "fields": {"event": "stop", "subject": USER},
            "line": [
                "user_preferences 14155550123 stop (marketing_messages; User requested to stop marketing messages)"
            ],
        },
    ],
    "fields/history_threads": [
        {"is": FieldUpdate, "line": ["history (phase 1; chunk 2; progress 40; 2 threads, 3 messages)"]},
        {
            "is": InboundMessage,
            "fields": {"history_status": "READ", "direction": "from", "field": "history"},
            "line": ['text from 14155550123: "Do you deliver to Leeds?" (history READ)'],
        },
        {
            "is": InboundMessage,
            "fields": {"history_status": "DELIVERED", "direction": "echo", "recipient": USER, "sender": BIZ},
            "line": ['text echo to 14155550123: "Yes, every Tuesday." (history DELIVERED)'],
        },
        {
            "is": InboundMessage,
            "fields": {"sender": USER2, "media_id": "1623449817731099"},
            "line": ['image from 447700900456: "This one" (history PLAYED)'],
        },
    ],
    "fields/history_declined": [
        {
            "is": ChangeError,
            "line": ["error 2593109 History sync is turned off by the business from the WhatsApp Business app"],
        },
    ],
    "fields/history_ordinary_messages": [
        {
            "is": InboundMessage,
            "fields": {"field": "history", "contact_name": "Dana Whitfield"},
            "line": ['text from 14155550123: "Old message from the app"'],
        },
    ],
    "fields/smb_message_echoes": [
        {
            "is": InboundMessage,
            "fields": {"direction": "echo", "recipient": USER, "sender": BIZ, "contact_name": "Dana Whitfield"},
            "line": ['text echo to 14155550123: "Your sofa ships tomorrow."'],
        },
    ],
    "fields/smb_message_echoes_edit": [
        {
            "is": InboundMessage,
            "fields": {"direction": "echo", "type": "edit"},
            "original": True,
            "line": ['edit echo to 14155550123: "Your sofa ships on Thursday." (edits wamid.…RjRBMEU1NQA=)'],
        },
    ],
    "fields/smb_app_state_sync": [
        {"is": FieldUpdate, "line": ["smb_app_state_sync 14155550123 add (Dana Whitfield)"]},
        {"is": FieldUpdate, "line": ["smb_app_state_sync 447700900456 remove"]},
    ],
    "fields/calls_connect_business": [
        {
            "is": FieldUpdate,
            "fields": {"direction": "by business to", "subject": USER, "event": "connect"},
            "line": ["call by business to 14155550123 connect (callback support-ticket-9913; wacid.…"],
            "values": {"biz_opaque_callback_data": "support-ticket-9913", "session.sdp_type": "answer"},
        },
    ],
    "fields/calls_terminate_user": [
        {
            "is": FieldUpdate,
            "fields": {"direction": "from", "subject": USER},
            "line": ["call from 14155550123 terminate (COMPLETED; 140 s; wacid.…"],
            "values": {"start_time": "1764581760"},
        },
    ],
    "fields/calls_status_ringing": [
        {
            "is": StatusUpdate,
            "fields": {"status": "RINGING", "biz_opaque_callback_data": "support-ticket-9913"},
            "line": ["RINGING wacid.…MTc3FQIAAA== to 14155550123 (callback support-ticket-9913)"],
        },
    ],
    "fields/group_lifecycle_update": [
        {
            "is": FieldUpdate,
            "fields": {"event": "group_create"},
            "line": [
                "group_lifecycle_update …Dg1NTQwOTIZD group_create (subject=Delivery day: Leeds; invite_link=https://chat.whatsapp.com/Jx4Kq8Rt2Lm9Vb"
            ],
            "values": {"group_id": GROUP},
        },
    ],
    "fields/group_participants_update": [
        {"is": FieldUpdate, "line": ["group_participants_add (added participants 14155550123; reason=invite_link)"]},
        {"is": FieldUpdate, "line": ["group_join_request_created (", "wa_id=447700900456"]},
        {"is": FieldUpdate, "line": ["group_join_request_approved (added participants 447700900456"]},
        {"is": FieldUpdate, "line": ["group_participants_remove (removed participants 5511955550789; by business"]},
        {"is": FieldUpdate, "line": ["group_participants_remove (removed participants 14155550123; by participant)"]},
    ],
    "fields/group_settings_update": [
        {
            "is": FieldUpdate,
            "line": [
                'subject "Delivery day: Leeds (Tue)"; description "Deliveries every Tuesday" '
                "failed 131009 Parameter value is not valid"
            ],
            "values": {"group_description.errors[0].error_data.details": "Description is too long"},
        },
    ],
    "fields/group_status_update": [{"is": FieldUpdate, "line": ["group_status_update …Dg1NTQwOTIZD group_suspend"]}],
    "fields/partner_solutions": [
        {"is": FieldUpdate, "line": ["partner_solutions 1530044218866521 SOLUTION_UPDATED (solution_status=ACTIVE)"]}
    ],
    "fields/business_username_update": [
        {
            "is": FieldUpdate,
            "fields": {"subject": "@bestsofas", "event": "approved"},
            "line": ["business_username_update @bestsofas approved (15550281177)"],
        },
    ],
    "fields/unknown_list_field": [
        {
            "is": FieldUpdate,
            "line": ["brand_new_list_field (kind=thing_created; thing.label=first; thing.id=T-1)"],
            "values": {"thing.label": "first"},
        },
        {"is": FieldUpdate, "line": ["brand_new_list_field (kind=thing_deleted; by=SYSTEM; thing.id=T-2)"]},
        {"is": FieldUpdate, "line": ["brand_new_list_field (note=two updates)"]},
    ],
    "fields/unknown_nested_field": [
        {
            "is": FieldUpdate,
            "line": [
                "brand_new_field SOMETHING_CHANGED "
                "(detail.level=2; detail.reason.code=R-17; detail.reason.text=limit reached)"
            ],
            "values": {"detail.reason.text": "limit reached"},
        },
    ],
}


def test_every_sample_has_its_case() -> None:
    assert sorted(CASES) == SAMPLES


@pytest.mark.parametrize("name", SAMPLES)
def test_sample_decodes_to_what_a_developer_acts_on(name: str) -> None:
    summary = decode(name)
    assert summary.ok, summary.problem
    expected = CASES[name]
    assert [type(item) for item in summary.items] == [case["is"] for case in expected]
    for item, case in zip(summary.items, expected, strict=True):
        line = item.line()
        for key, value in case.get("fields", {}).items():
            assert getattr(item, key) == value, (key, getattr(item, key))
        for words in case.get("line", []):
            assert words in line, line
        found = values(item)
        for path, value in case.get("values", {}).items():
            assert found.get(path) == value, (path, found.get(path))
        if case.get("original"):
            original = raw(name)["entry"][0]["changes"][0]["value"]
            message = (original.get("messages") or original.get("message_echoes"))[0]
            assert item.original_message_id == message[message["type"]]["original_message_id"]
        for code, details in case.get("errors", []):
            assert (item.errors[0].code, item.errors[0].details) == (code, details)
        assert "\n" not in line and len(line) < 260


def _scalars(node: Any) -> list[Any]:
    if isinstance(node, dict):
        return [leaf for value in node.values() for leaf in _scalars(value)]
    if isinstance(node, list):
        return [leaf for value in node for leaf in _scalars(value)]
    return [node]


@pytest.mark.parametrize("name", SAMPLES)
def test_nothing_is_only_in_the_raw_body(name: str) -> None:
    """Every scalar of every change value (metadata aside: it is in the named fields) is in the values
    of an item; a history thread's id is its messages' user."""
    summary = decode(name)
    shown = {json.dumps(value) for item in summary.items for _, value in item.values}
    for entry in raw(name)["entry"]:
        for change in entry["changes"]:
            value = {k: v for k, v in change["value"].items() if k not in ("messaging_product", "metadata")}
            for thread in (t for chunk in value.get("history", []) for t in chunk.get("threads", [])):
                thread.pop("id")
            missing = [leaf for leaf in _scalars(value) if json.dumps(leaf) not in shown]
            assert missing == [], missing


@pytest.mark.parametrize("name", SAMPLES)
def test_without_values_the_items_are_the_same_but_values(name: str) -> None:
    full, lean = decode(name), decode(name, values=False)
    assert [item._replace(values=()) for item in full.items] == list(lean.items)
    assert full.headline == lean.headline and full.flags == lean.flags
    document = lean.to_dict()
    assert document["values_omitted"] is True
    assert all("values" not in item for item in document["items"])
    assert "values_omitted" not in full.to_dict()


def test_batch_flag_counts_messages_statuses_and_fields_not_an_items_own_errors() -> None:
    assert decode("messages/message_with_change_error").flags == ()
    assert decode("fields/group_participants_update").flags == ("batch",)
    assert decode("fields/group_participants_update").headline == "batch: 5 group_participants_update"
    assert decode("fields/history_threads").headline == "batch: 2 messages, 1 echo, 1 history"


def test_message_with_its_own_error_is_headlined_by_the_message() -> None:
    assert decode("messages/message_with_change_error").headline == (
        'messages: text from 14155550123: "Hello?" + error 131000 Something went wrong '
        "(Message failed to send due to an unknown error.)"
    )


def test_plural_nouns_in_batch_headlines() -> None:
    body = raw("fields/calls_terminate_user")
    body["entry"][0]["changes"] *= 1
    one_call = decode_payload(json.dumps(body).encode())
    assert one_call.flags == () and one_call.headline.startswith("calls: call from 14155550123")
    body["entry"][0]["changes"][0]["value"]["calls"] *= 2
    assert decode_payload(json.dumps(body).encode()).headline == "batch: 2 calls"
    body["entry"][0]["changes"][0]["value"]["calls"].pop()
    body["entry"][0]["changes"].append(raw("fields/account_review_update")["entry"][0]["changes"][0])
    assert decode_payload(json.dumps(body).encode()).headline == "batch: 1 call, 1 account_review_update"
