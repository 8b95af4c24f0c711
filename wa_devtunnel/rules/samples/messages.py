"""One builder per messages[] type a user can send, so tests and `trigger` never hand-write JSON."""

from __future__ import annotations

import json
from collections.abc import Sequence
from typing import Any

from wa_devtunnel.rules.samples.values import (
    DISPLAY_PHONE_NUMBER,
    MEDIA_SHA256,
    REPLIED_WAMID,
    TIMESTAMP,
    USER_WA_ID,
    WAMID,
    meta_error,
)


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


def video_message(caption: str | None = None, *, media_id: str = "1184814096413419", **common: Any) -> dict[str, Any]:
    """A video (caption optional)."""
    return _message("video", _media(media_id, "video/mp4", caption), **common)


def audio_message(*, voice: bool = True, media_id: str = "1265447874791213", **common: Any) -> dict[str, Any]:
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


def contacts_message(names: Sequence[str] = ("Barbara J. Johnson",), **common: Any) -> dict[str, Any]:
    """Shared contact cards, one per name."""
    cards = [
        {
            "name": {"formatted_name": name, "first_name": name.split()[0]},
            "phones": [{"phone": "+1 (940) 555-1234", "wa_id": "19405551234", "type": "MOBILE"}],
        }
        for name in names
    ]
    return _message("contacts", cards, **common)


def button_reply(title: str = "Yes", reply_id: str = "confirm-yes", **common: Any) -> dict[str, Any]:
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


def template_button(text: str = "Yes, I can make it", payload: str = "attend-yes", **common: Any) -> dict[str, Any]:
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
