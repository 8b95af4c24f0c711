"""A recorded conversation full of personal data, for the export and pytest-plugin tests."""

from __future__ import annotations

import base64
import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from tests.support.constants import APP_SECRET
from tests.support.meta_client import meta_signature
from tests.support.receiver_harness import ReceiverHarness
from wa_devtunnel.rules.samples import payloads as samples

ALICE = "4915123456789"
ALICE_NAME = "Zoë Quarterman-Xylo"
BOB = "447700900123"
BOB_NAME = "Ravi Okonkwo-Lindqvist"
TEXT = "Meet me at Brückenstraße 7/3 at 5 😮"
SECOND_TEXT = "Also: the green one, order https://shop.example.org/p/42"
BUTTON_TITLE = "Yes please, Zoë"
CAPTION = "Is this the blue one?"
FILENAME = "passport-scan-quarterman.pdf"
LOCATION_NAME = "Philz Coffee"
LOCATION_ADDRESS = "101 Forest Ave, Palo Alto, CA 94301"
LATITUDE = 37.44216251868683
LONGITUDE = -122.16153582049394
MEDIA_ID = "1003383421387256"
AD_URL = "https://fb.me/2ZBcVDyO5"
CARD_NAME = "Barbara J. Johnson"
CARD_PHONE = "+1 (940) 555-1234"
CARD_WA_ID = "19405551234"


def wamid(phone: str, hex_id: str) -> str:
    """A wamid shaped like Meta's: base64 of 0x18, a length, the customer's number, then the message id."""
    raw = b"\x1c\x18" + bytes([len(phone)]) + phone.encode() + b"\x15\x02\x00\x12\x18\x14" + hex_id.encode() + b"\x00"
    return "wamid." + base64.b64encode(raw).decode()


INCOMING = wamid(ALICE, "3A4A6599AEE038101440")
INCOMING_2 = wamid(ALICE, "3A4A6599AEE038101441")
OUTGOING = wamid(ALICE, "5B4A6599AEE038101442")  # the business's message to Alice
OUTGOING_BOB = wamid(BOB, "5B4A6599AEE038101443")

# Every value the scrubbed export must not contain, in any form.
PERSONAL = (
    ALICE,
    ALICE_NAME,
    "Quarterman",
    BOB,
    BOB_NAME,
    TEXT,
    "Brückenstraße",
    SECOND_TEXT,
    "shop.example.org",
    BUTTON_TITLE,
    CAPTION,
    FILENAME,
    LOCATION_NAME,
    LOCATION_ADDRESS,
    repr(LATITUDE),
    repr(LONGITUDE),
    MEDIA_ID,
    samples.MEDIA_SHA256,
    AD_URL,
    CARD_NAME,
    CARD_PHONE,
    CARD_WA_ID,
    "Here is the invoice",
)


def _from_alice(*messages: dict[str, Any]) -> dict[str, Any]:
    change = samples.messages_change(list(messages), contacts=[samples.contact(ALICE_NAME, ALICE)])
    return samples.envelope([change])


def _statuses(*statuses: dict[str, Any]) -> dict[str, Any]:
    return samples.envelope([samples.messages_change(statuses=list(statuses))])


def conversation() -> list[bytes]:
    """Meta-style bodies, in the order they are recorded (seq 1, 2, ...)."""
    alice: dict[str, Any] = {"sender": ALICE}
    bodies = [
        _from_alice(samples.text_message(TEXT, message_id=INCOMING, **alice)),
        _from_alice(samples.image_message(CAPTION, media_id=MEDIA_ID, message_id=INCOMING_2, **alice)),
        _from_alice(samples.document_message(FILENAME, message_id=wamid(ALICE, "D0C0000000000000000A"), **alice)),
        _from_alice(
            samples.location_message(LOCATION_NAME, LOCATION_ADDRESS, latitude=LATITUDE, longitude=LONGITUDE, **alice)
        ),
        _from_alice(samples.contacts_message((CARD_NAME,), **alice)),
        _from_alice(samples.button_reply(BUTTON_TITLE, reply_to=OUTGOING, **alice)),
        _from_alice(samples.reaction_message("\U0001f62e", reacted_to=OUTGOING, **alice)),
        _statuses(samples.status("sent", message_id=OUTGOING, recipient_id=ALICE)),
        _statuses(samples.status("delivered", message_id=OUTGOING, recipient_id=ALICE)),
        _statuses(samples.status("read", message_id=OUTGOING, recipient_id=ALICE)),
        _statuses(samples.status("failed", message_id=OUTGOING_BOB, recipient_id=BOB, error_code=131049)),
        samples.envelope([samples.template_status_update("order_confirmation", "APPROVED")]),
        samples.envelope(
            [
                samples.messages_change(
                    [samples.text_message("Bob here", sender=BOB, message_id=wamid(BOB, "B0B0000000000000000B"))],
                    [samples.status("read", message_id=OUTGOING_BOB, recipient_id=BOB)],
                    contacts=[samples.contact(BOB_NAME, BOB)],
                )
            ]
        ),
        _from_alice(samples.text_message(SECOND_TEXT, referral=samples.ad_referral(), **alice)),
    ]
    encoded = [samples.meta_json(body) for body in bodies]
    encoded.append(json.dumps({"hello": "not a WhatsApp payload"}).encode())
    return encoded


EXPECTED_NAMES = {
    "messages.text.json",
    "messages.image.json",
    "messages.document.json",
    "messages.location.json",
    "messages.contacts.json",
    "messages.interactive-button_reply.json",
    "messages.reaction.json",
    "statuses.sent.json",
    "statuses.delivered.json",
    "statuses.read.json",
    "statuses.failed-131049.json",
    "message_template_status_update.approved.json",
    "batch.2-items.json",
    "messages.text-2.json",
}


@dataclass(frozen=True)
class RecordedConversation:
    """The session file the receiver wrote, and its records."""

    path: Path
    records: list[dict[str, Any]]


async def record_conversation(harness: ReceiverHarness) -> RecordedConversation:
    """POST every body, signed like Meta, through the real receiver and its recorder."""
    for body in conversation():
        headers = {
            "Content-Type": "application/json",
            "X-Hub-Signature-256": meta_signature(body, APP_SECRET),
            "User-Agent": "facebookexternalua",
        }
        response = await harness.client.post("/webhook/whatsapp", data=body, headers=headers)
        assert response.status in (200, 400), await response.text()
    return RecordedConversation(harness.recorder.path, harness.records())
