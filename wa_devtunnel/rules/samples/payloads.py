"""Meta-shaped webhook payloads from the documented samples: for tests, `trigger` and the TUI.

The values (WABA id, phone numbers, wamid, names) are the ones in Meta's documentation, so a
developer recognises them; meta_json() writes bytes the way Meta does, which signatures depend on.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from typing import Any

from wa_devtunnel.rules.samples.messages import (
    ad_referral,
    audio,
    audio_message,
    button_reply,
    contacts_message,
    document,
    document_message,
    flow_reply,
    image_message,
    list_reply,
    location,
    location_message,
    order,
    order_message,
    reaction,
    reaction_message,
    request_welcome,
    request_welcome_message,
    sticker,
    sticker_message,
    system,
    system_message,
    template_button,
    text_message,
    unsupported_message,
    video,
    video_message,
)
from wa_devtunnel.rules.samples.updates import (
    account_update,
    field_change,
    phone_number_quality_update,
    status,
    template_category_update,
    template_quality_update,
    template_status_update,
)
from wa_devtunnel.rules.samples.values import (
    DISPLAY_PHONE_NUMBER,
    ENTRY_TIME,
    ERROR_HREF,
    ERRORS,
    MEDIA_SHA256,
    PHONE_NUMBER_ID,
    REPLIED_WAMID,
    STATUS_TIMESTAMP,
    TIMESTAMP,
    USER_NAME,
    USER_WA_ID,
    WABA_ID,
    WAMID,
    meta_error,
)

__all__ = [
    "DISPLAY_PHONE_NUMBER",
    "ENTRY_TIME",
    "ERRORS",
    "ERROR_HREF",
    "MEDIA_SHA256",
    "PHONE_NUMBER_ID",
    "REPLIED_WAMID",
    "STATUS_TIMESTAMP",
    "TIMESTAMP",
    "USER_NAME",
    "USER_WA_ID",
    "WABA_ID",
    "WAMID",
    "account_update",
    "ad_referral",
    "audio",
    "audio_message",
    "button_reply",
    "contact",
    "contacts_message",
    "dashboard_test_sample",
    "document",
    "document_message",
    "envelope",
    "field_change",
    "flow_reply",
    "image_message",
    "list_reply",
    "location",
    "location_message",
    "messages_change",
    "meta_error",
    "meta_json",
    "order",
    "order_message",
    "phone_number_quality_update",
    "reaction",
    "reaction_message",
    "request_welcome",
    "request_welcome_message",
    "status",
    "sticker",
    "sticker_message",
    "system",
    "system_message",
    "template_button",
    "template_category_update",
    "template_quality_update",
    "template_status_update",
    "text_message",
    "text_message_payload",
    "unsupported_message",
    "video",
    "video_message",
]


def meta_json(obj: Any, *, escape_slashes: bool = True) -> bytes:
    """Compact JSON, non-ASCII escaped (emoji as surrogate pairs) and "/" as "\\/", like Meta."""
    text = json.dumps(obj, ensure_ascii=True, separators=(",", ":"))
    if escape_slashes:
        text = text.replace("/", "\\/")  # "/" only ever occurs inside JSON strings
    return text.encode("ascii")


def envelope(changes: Sequence[dict[str, Any]], *, waba_id: str = WABA_ID, time: int | None = None) -> dict[str, Any]:
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
