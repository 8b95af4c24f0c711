"""Meta-shaped webhook payloads from the documented samples: for tests, `trigger` and the TUI.

The values (WABA id, phone numbers, wamid, names) are the ones in Meta's documentation, so a
developer recognises them; meta_json() writes bytes the way Meta does, which signatures depend on.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from typing import Any

WABA_ID = "102290129340398"
PHONE_NUMBER_ID = "106540352242922"
DISPLAY_PHONE_NUMBER = "15550783881"
USER_WA_ID = "16505551234"
USER_NAME = "Sheena Nelson"
WAMID = "wamid.HBgLMTY1MDM4Nzk0MzkVAgASGBQzQTRBNjU5OUFFRTAzODEwMTQ0RgA="
REPLIED_WAMID = "wamid.HBgLMTY1MDM4Nzk0MzkVAgARGBJDQjZCMzlEQUE4OTJBMTE4RTUA"
TIMESTAMP = "1749416383"
STATUS_TIMESTAMP = "1751142888"
ENTRY_TIME = 1751247548
MEDIA_SHA256 = "Ig8HZ8mWe1hRB2+pyTHBGMjb7z0SGRRxu0rrw1FGx8s="
ERROR_HREF = "/documentation/business-messaging/whatsapp/support/error-codes"

# code: (title, error_data.details), as Meta words them.
ERRORS: dict[int, tuple[str, str]] = {
    131049: (
        "This message was not delivered to maintain healthy ecosystem engagement.",
        "In order to maintain a healthy ecosystem engagement, the message failed to be delivered.",
    ),
    131026: ("Message undeliverable", "Message Undeliverable."),
    131047: (
        "Re-engagement message",
        "Message failed to send because more than 24 hours have passed since the customer last "
        "replied to this number.",
    ),
    131051: ("Message type unknown", "Message type is currently not supported."),
    131000: ("Something went wrong", "Message failed to send due to an unknown error."),
}


def meta_json(obj: Any, *, escape_slashes: bool = True) -> bytes:
    """Compact JSON, non-ASCII escaped (emoji as surrogate pairs) and "/" as "\\/", like Meta."""
    text = json.dumps(obj, ensure_ascii=True, separators=(",", ":"))
    if escape_slashes:
        text = text.replace("/", "\\/")  # "/" only ever occurs inside JSON strings
    return text.encode("ascii")


def envelope(
    changes: Sequence[dict[str, Any]], *, waba_id: str = WABA_ID, time: int | None = None
) -> dict[str, Any]:
    """The POST body object; non-message fields carry an integer entry time, as Meta sends them."""
    entry: dict[str, Any] = {"id": waba_id}
    if time is None and any(change.get("field") != "messages" for change in changes):
        time = ENTRY_TIME
    if time is not None:
        entry["time"] = time
    entry["changes"] = list(changes)
    return {"object": "whatsapp_business_account", "entry": [entry]}


def contact(
    name: str = USER_NAME,
    wa_id: str | None = USER_WA_ID,
    *,
    user_id: str | None = None,
    username: str | None = None,
) -> dict[str, Any]:
    """A contacts[] item; 2026 contacts may carry user_id / username and no wa_id."""
    profile: dict[str, Any] = {"name": name}
    if username is not None:
        profile["username"] = username
    item: dict[str, Any] = {"profile": profile}
    if wa_id is not None:
        item["wa_id"] = wa_id
    if user_id is not None:
        item["user_id"] = user_id
    return item


def messages_change(
    messages: Sequence[dict[str, Any]] = (),
    statuses: Sequence[dict[str, Any]] = (),
    contacts: Sequence[dict[str, Any]] | None = None,
    *,
    phone_number_id: str = PHONE_NUMBER_ID,
    display_phone_number: str = DISPLAY_PHONE_NUMBER,
    errors: Sequence[dict[str, Any]] = (),
) -> dict[str, Any]:
    """A `messages` change; contacts default to the documented sender when there are messages."""
    value: dict[str, Any] = {
        "messaging_product": "whatsapp",
        "metadata": {
            "display_phone_number": display_phone_number,
            "phone_number_id": phone_number_id,
        },
    }
    if contacts is None:
        contacts = [contact()] if messages else []
    if contacts:
        value["contacts"] = list(contacts)
    if messages:
        value["messages"] = list(messages)
    if statuses:
        value["statuses"] = list(statuses)
    if errors:
        value["errors"] = list(errors)
    return {"value": value, "field": "messages"}


def meta_error(
    code: int, *, title: str | None = None, details: str | None = None
) -> dict[str, Any]:
    """An errors[] item as Meta sends it (title repeated as message, href to the code table)."""
    known_title, known_details = ERRORS.get(code, ("Something went wrong", ""))
    title = known_title if title is None else title
    return {
        "code": code,
        "title": title,
        "message": title,
        "error_data": {"details": known_details if details is None else details},
        "href": ERROR_HREF,
    }


def ad_referral() -> dict[str, Any]:
    """The `referral` of a message that started from a click-to-WhatsApp ad."""
    return {
        "source_url": "https://fb.me/2ZBcVDyO5",
        "source_id": "120209822958960479",
        "source_type": "ad",
        "headline": "Chat with us",
        "body": "Free shipping on every order this week",
        "media_type": "image",
        "image_url": "https://scontent.xx.fbcdn.net/v/t45.1600-4/ad_image.png",
        "ctwa_clid": "ARAkLkA8rmlFeiCktEJQ-QTwRiyYHAFDLMNDBH0CD3qpjd0HR4irJ6LEkR7JwFF4XvnO2E4Nx0",
    }


def _message(
    kind: str,
    content: Any = None,
    *,
    sender: str | None = USER_WA_ID,
    user_id: str | None = None,
    message_id: str = WAMID,
    timestamp: str = TIMESTAMP,
    reply_to: str | None = None,
    forwarded: bool = False,
    referral: dict[str, Any] | None = None,
    errors: Sequence[dict[str, Any]] = (),
) -> dict[str, Any]:
    """A messages[] item: the common keys, then the part named by `type`."""
    message: dict[str, Any] = {}
    if reply_to is not None or forwarded:
        context: dict[str, Any] = {}
        if reply_to is not None:
            context.update({"from": DISPLAY_PHONE_NUMBER, "id": reply_to})
        if forwarded:
            context["forwarded"] = True
        message["context"] = context
    if sender is not None:
        message["from"] = sender
    if user_id is not None:
        message["from_user_id"] = user_id
    message.update({"id": message_id, "timestamp": timestamp, "type": kind})
    if content is not None:
        message[kind] = content
    if referral is not None:
        message["referral"] = referral
    if errors:
        message["errors"] = list(errors)
    return message


def text_message(text: str = "Does it come in another color?", **common: Any) -> dict[str, Any]:
    """The documented text message."""
    return _message("text", {"body": text}, **common)


def _media(media_id: str, mime_type: str, caption: str | None) -> dict[str, Any]:
    media: dict[str, Any] = {"mime_type": mime_type, "sha256": MEDIA_SHA256, "id": media_id}
    if caption is not None:
        media["caption"] = caption
    return media


def image_message(
    caption: str | None = "Is this the blue one?",
    *,
    media_id: str = "1003383421387256",
    **common: Any,
) -> dict[str, Any]:
    """A photo, with its caption."""
    return _message("image", _media(media_id, "image/jpeg", caption), **common)


def video_message(
    caption: str | None = None, *, media_id: str = "1184814096413419", **common: Any
) -> dict[str, Any]:
    """A video (caption optional)."""
    return _message("video", _media(media_id, "video/mp4", caption), **common)


def audio_message(
    *, voice: bool = True, media_id: str = "1265447874791213", **common: Any
) -> dict[str, Any]:
    """A voice note (voice=True) or an audio file."""
    audio = _media(media_id, "audio/ogg; codecs=opus", None)
    audio["voice"] = voice
    return _message("audio", audio, **common)


def document_message(
    filename: str = "invoice-2026-001.pdf",
    caption: str | None = "Here is the invoice",
    *,
    media_id: str = "1261497368569735",
    **common: Any,
) -> dict[str, Any]:
    """A document: filename and caption."""
    document = _media(media_id, "application/pdf", caption)
    document["filename"] = filename
    return _message("document", document, **common)


def sticker_message(*, animated: bool = False, **common: Any) -> dict[str, Any]:
    """A sticker (webp)."""
    sticker = _media("1214378466783938", "image/webp", None)
    sticker["animated"] = animated
    return _message("sticker", sticker, **common)


def location_message(
    name: str | None = "Philz Coffee",
    address: str | None = "101 Forest Ave, Palo Alto, CA 94301",
    *,
    latitude: float = 37.44216251868683,
    longitude: float = -122.16153582049394,
    **common: Any,
) -> dict[str, Any]:
    """A shared location (name and address are absent for a bare pin)."""
    location: dict[str, Any] = {"latitude": latitude, "longitude": longitude}
    if name is not None:
        location["name"] = name
    if address is not None:
        location["address"] = address
    return _message("location", location, **common)


def contacts_message(
    names: Sequence[str] = ("Barbara J. Johnson",), **common: Any
) -> dict[str, Any]:
    """Shared contact cards, one per name."""
    cards = [
        {
            "name": {"formatted_name": name, "first_name": name.split()[0]},
            "phones": [{"phone": "+1 (940) 555-1234", "wa_id": "19405551234", "type": "MOBILE"}],
        }
        for name in names
    ]
    return _message("contacts", cards, **common)


def button_reply(
    title: str = "Yes", reply_id: str = "confirm-yes", **common: Any
) -> dict[str, Any]:
    """A tap on a reply button of an interactive message."""
    reply = {"type": "button_reply", "button_reply": {"id": reply_id, "title": title}}
    common.setdefault("reply_to", REPLIED_WAMID)
    return _message("interactive", reply, **common)


def list_reply(
    title: str = "Express shipping",
    reply_id: str = "shipping-express",
    description: str = "Arrives in 1-2 days",
    **common: Any,
) -> dict[str, Any]:
    """A row picked from a list message."""
    row = {"id": reply_id, "title": title, "description": description}
    common.setdefault("reply_to", REPLIED_WAMID)
    return _message("interactive", {"type": "list_reply", "list_reply": row}, **common)


def flow_reply(
    response: dict[str, Any] | None = None, *, name: str = "flow", body: str = "Sent", **common: Any
) -> dict[str, Any]:
    """A completed WhatsApp Flow (nfm_reply); response_json is a JSON string, as Meta sends it."""
    response = {"flow_token": "unused", "size": "M"} if response is None else response
    reply = {"response_json": json.dumps(response), "body": body, "name": name}
    common.setdefault("reply_to", REPLIED_WAMID)
    return _message("interactive", {"type": "nfm_reply", "nfm_reply": reply}, **common)


def template_button(
    text: str = "Yes, I can make it", payload: str = "attend-yes", **common: Any
) -> dict[str, Any]:
    """A quick-reply button of a template message (type "button")."""
    common.setdefault("reply_to", REPLIED_WAMID)
    return _message("button", {"payload": payload, "text": text}, **common)


def reaction_message(
    emoji: str | None = "\U0001f600", *, reacted_to: str = REPLIED_WAMID, **common: Any
) -> dict[str, Any]:
    """A reaction; emoji=None is a removed reaction (Meta omits the emoji)."""
    reaction: dict[str, Any] = {"message_id": reacted_to}
    if emoji is not None:
        reaction["emoji"] = emoji
    return _message("reaction", reaction, **common)


def order_message(
    items: int = 2,
    *,
    catalog_id: str = "194836987003835",
    note: str = "Here's my order",
    **common: Any,
) -> dict[str, Any]:
    """An order sent from a catalog (`items` product lines)."""
    products = [
        {"product_retailer_id": f"sku-{n + 1}", "quantity": 1, "item_price": 30, "currency": "USD"}
        for n in range(items)
    ]
    order = {"catalog_id": catalog_id, "text": note, "product_items": products}
    return _message("order", order, **common)


def system_message(
    body: str = "User Sheena Nelson changed from 16505551234 to 16505559876",
    *,
    system_type: str = "user_changed_number",
    **common: Any,
) -> dict[str, Any]:
    """A system notice (number change); Meta sends these without a contacts[] array."""
    system = {"body": body, "wa_id": "16505559876", "type": system_type}
    return _message("system", system, **common)


def request_welcome_message(**common: Any) -> dict[str, Any]:
    """A user opened the chat for the first time (no content)."""
    return _message("request_welcome", **common)


def unsupported_message(
    code: int = 131051, *, unsupported_type: str | None = "video_note", **common: Any
) -> dict[str, Any]:
    """A message type the Cloud API cannot deliver; the why is in errors[]."""
    content = None if unsupported_type is None else {"type": unsupported_type}
    common.setdefault("errors", [meta_error(code)])
    return _message("unsupported", content, **common)


def status(
    status: str,
    *,
    message_id: str = WAMID,
    recipient_id: str = USER_WA_ID,
    timestamp: str = STATUS_TIMESTAMP,
    error_code: int | None = None,
    category: str = "marketing",
    pricing_model: str = "PMP",
) -> dict[str, Any]:
    """A statuses[] item; billable statuses carry conversation and pricing, failed ones errors."""
    item: dict[str, Any] = {
        "id": message_id,
        "status": status,
        "timestamp": timestamp,
        "recipient_id": recipient_id,
    }
    if status == "failed" and error_code is None:
        error_code = 131049
    if status in ("sent", "delivered", "read"):
        conversation: dict[str, Any] = {"id": "4c3b5e8a2f1d7b9e0a6c4f2d8b1e3a5c"}
        if status == "sent":
            conversation["expiration_timestamp"] = str(int(timestamp) + 86400)
        conversation["origin"] = {"type": category}
        item["conversation"] = conversation
        item["pricing"] = {
            "billable": True,
            "pricing_model": pricing_model,
            "category": category,
            "type": "regular",
        }
    if error_code is not None:
        item["errors"] = [meta_error(error_code)]
    return item


def field_change(field: str, value: dict[str, Any]) -> dict[str, Any]:
    """Any other field's change, e.g. field_change("calls", {...})."""
    return {"value": value, "field": field}


def template_status_update(
    name: str = "order_confirmation",
    event: str = "APPROVED",
    reason: str | None = "NONE",
    *,
    template_id: int = 806312974732579,
    language: str = "en_US",
) -> dict[str, Any]:
    """message_template_status_update: Meta decided on a template (reason "NONE" when approved)."""
    value = {
        "event": event,
        "message_template_id": template_id,
        "message_template_name": name,
        "message_template_language": language,
        "reason": reason,
    }
    return field_change("message_template_status_update", value)


def template_quality_update(
    name: str = "order_confirmation", new_score: str = "YELLOW", previous_score: str = "GREEN"
) -> dict[str, Any]:
    """message_template_quality_update: recipients' feedback moved a template's rating."""
    value = {
        "previous_quality_score": previous_score,
        "new_quality_score": new_score,
        "message_template_id": 806312974732579,
        "message_template_name": name,
        "message_template_language": "en_US",
    }
    return field_change("message_template_quality_update", value)


def template_category_update(
    name: str = "order_confirmation", new: str = "MARKETING", previous: str = "UTILITY"
) -> dict[str, Any]:
    """template_category_update: Meta re-categorised a template (which changes its price)."""
    value = {
        "message_template_id": 806312974732579,
        "message_template_name": name,
        "message_template_language": "en_US",
        "previous_category": previous,
        "new_category": new,
    }
    return field_change("template_category_update", value)


def account_update(event: str = "ACCOUNT_VIOLATION", **extra: Any) -> dict[str, Any]:
    """account_update; ACCOUNT_VIOLATION gets violation_info unless `extra` gives the value."""
    value: dict[str, Any] = {"event": event}
    if event == "ACCOUNT_VIOLATION" and not extra:
        extra = {"violation_info": {"violation_type": "SCAM"}}
    value.update(extra)
    return field_change("account_update", value)


def phone_number_quality_update(
    event: str = "UPGRADE",
    current_limit: str = "TIER_10K",
    *,
    display_phone_number: str = DISPLAY_PHONE_NUMBER,
) -> dict[str, Any]:
    """phone_number_quality_update: the number's messaging limit or quality rating changed."""
    value = {
        "display_phone_number": display_phone_number,
        "event": event,
        "current_limit": current_limit,
    }
    return field_change("phone_number_quality_update", value)


def dashboard_test_sample() -> bytes:
    """What the App Dashboard's "Test" button sends for the messages field (fixed fake ids)."""
    value = {
        "messaging_product": "whatsapp",
        "metadata": {"display_phone_number": "16505551111", "phone_number_id": "123456123"},
        "contacts": [{"profile": {"name": "test user name"}, "wa_id": "16315551181"}],
        "messages": [
            {
                "from": "16315551181",
                "id": "ABGGFlA5Fpa",
                "timestamp": "1504902988",
                "type": "text",
                "text": {"body": "this is a text message"},
            }
        ],
    }
    body = {
        "object": "whatsapp_business_account",
        "entry": [{"id": "0", "changes": [{"field": "messages", "value": value}]}],
    }
    return meta_json(body)


def text_message_payload(
    text: str = "Does it come in another color?",
    *,
    escape_slashes: bool = True,
    phone_number_id: str = PHONE_NUMBER_ID,
    **common: Any,
) -> bytes:
    """A whole POST body carrying one text message, byte-for-byte in Meta's style."""
    change = messages_change([text_message(text, **common)], phone_number_id=phone_number_id)
    return meta_json(envelope([change]), escape_slashes=escape_slashes)


# The short names SPEC.md uses for the same builders.
audio = audio_message
video = video_message
document = document_message
sticker = sticker_message
location = location_message
reaction = reaction_message
order = order_message
system = system_message
request_welcome = request_welcome_message
