"""The ids, names and error texts from Meta's docs, in one place so every sample builder agrees."""

from __future__ import annotations

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
        "Message failed to send because more than 24 hours have passed since the customer last replied to this number.",
    ),
    131051: ("Message type unknown", "Message type is currently not supported."),
    131000: ("Something went wrong", "Message failed to send due to an unknown error."),
}


def meta_error(code: int, *, title: str | None = None, details: str | None = None) -> dict[str, Any]:
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
