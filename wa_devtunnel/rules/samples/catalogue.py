"""The `trigger` catalogue: every event a developer can ask for by name, built by the sample builders.

Pure: payloads come from the same builders the test suite uses, with fresh ids from a seeded
random generator, so a run is reproducible (`--seed`) and never collides with a previous one.
"""

from __future__ import annotations

import base64
import difflib
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from random import Random
from typing import Any, Literal, NamedTuple, TypeVar

from wa_devtunnel.rules.samples import payloads as samples
from wa_devtunnel.rules.samples.values import PHONE_NUMBER_ID, TIMESTAMP, USER_WA_ID

Group = Literal["message", "status", "field"]
T = TypeVar("T")
MAX_BATCH = 1000  # Meta batches at most 1000 updates in one POST
DEFAULT_FAILED_CODE = 131049
SEQUENCE_STATUSES = ("sent", "delivered", "read")


class ItemParams(NamedTuple):
    """What one item of a payload is made of; text None means the documented sample's text."""

    text: str | None
    message_id: str
    sender: str
    timestamp: str
    error_code: int | None


Builder = Callable[[ItemParams], dict[str, Any]]


@dataclass(frozen=True, slots=True)
class EventKind:
    """One name `wa-devtunnel trigger` accepts: what it builds and how `--list` describes it."""

    name: str
    group: Group
    description: str
    build: Builder


@dataclass(frozen=True, slots=True)
class TriggerOptions:
    """What the developer varies; the defaults are the values of Meta's documentation."""

    sender: str = USER_WA_ID
    text: str | None = None
    phone_number_id: str = PHONE_NUMBER_ID
    message_id: str | None = None
    error_code: int | None = None
    batch: int = 1
    now: int = int(TIMESTAMP)


def _message(builder: Callable[..., dict[str, Any]], text_arg: str | None = None, **fixed: Any) -> Builder:
    """A message kind; `text_arg` names the builder argument that --text replaces."""

    def build(p: ItemParams) -> dict[str, Any]:
        kwargs = dict(fixed)
        if text_arg is not None and p.text is not None:
            kwargs[text_arg] = p.text
        return builder(**kwargs, sender=p.sender, message_id=p.message_id, timestamp=p.timestamp)

    return build


def _contact_cards(name: str = "Barbara J. Johnson", **common: Any) -> dict[str, Any]:
    return samples.contacts_message((name,), **common)


def _from_ad(text: str = "Can I get the free shipping?", **common: Any) -> dict[str, Any]:
    return samples.text_message(text, referral=samples.ad_referral(), **common)


def _unsupported(p: ItemParams) -> dict[str, Any]:
    code = {} if p.error_code is None else {"code": p.error_code}
    return samples.unsupported_message(**code, sender=p.sender, message_id=p.message_id, timestamp=p.timestamp)


def _status(name: str) -> Builder:
    def build(p: ItemParams) -> dict[str, Any]:
        code = (p.error_code or DEFAULT_FAILED_CODE) if name == "failed" else None
        return samples.status(
            name, message_id=p.message_id, recipient_id=p.sender, timestamp=p.timestamp, error_code=code
        )

    return build


def _field(make: Callable[..., dict[str, Any]], **fixed: Any) -> Builder:
    return lambda p: make(**fixed)


def _paused_template() -> dict[str, Any]:
    change = samples.template_status_update(event="PAUSED", reason=None)
    change["value"]["other_info"] = {
        "title": "FIRST_PAUSE",
        "description": "Your message template has been paused for 3 hours due to low quality.",
    }
    return change


def _name_update() -> dict[str, Any]:
    value = {
        "display_phone_number": samples.DISPLAY_PHONE_NUMBER,
        "decision": "APPROVED",
        "requested_verified_name": "Lucky Shrub",
        "rejection_reason": None,
    }
    return samples.field_change("phone_number_name_update", value)


def _security() -> dict[str, Any]:
    value = {"display_phone_number": samples.DISPLAY_PHONE_NUMBER, "event": "PIN_CHANGED", "requester": "5550783881"}
    return samples.field_change("security", value)


_M, _S, _F = "message", "status", "field"
_REJECTED = {"event": "REJECTED", "reason": "INCORRECT_CATEGORY"}
KINDS: tuple[EventKind, ...] = (
    EventKind("text", _M, "text message (--text: the body)", _message(samples.text_message, "text")),
    EventKind("image", _M, "photo with a caption (--text: caption)", _message(samples.image_message, "caption")),
    EventKind("audio", _M, "audio file (not a voice note)", _message(samples.audio_message, voice=False)),
    EventKind("voice", _M, "voice note (audio with voice: true)", _message(samples.audio_message, voice=True)),
    EventKind("video", _M, "video (--text: caption)", _message(samples.video_message, "caption")),
    EventKind("document", _M, "PDF with filename and caption (--text: caption)", _message(samples.document, "caption")),
    EventKind("sticker", _M, "sticker (webp)", _message(samples.sticker_message)),
    EventKind(
        "location", _M, "shared location with name and address (--text: name)",
        _message(samples.location, "name"),
    ),
    EventKind("contacts", _M, "shared contact card (--text: the contact's name)", _message(_contact_cards, "name")),
    EventKind(
        "button_reply", _M, "interactive: reply button tapped (--text: title)",
        _message(samples.button_reply, "title"),
    ),
    EventKind("list_reply", _M, "interactive: list row picked (--text: title)", _message(samples.list_reply, "title")),
    EventKind(
        "flow_reply", _M, "interactive nfm_reply: a WhatsApp Flow completed",
        _message(samples.flow_reply, "body"),
    ),
    EventKind(
        "template_button", _M, "template quick-reply button (type button)",
        _message(samples.template_button, "text"),
    ),
    EventKind("reaction", _M, "emoji reaction to a message (--text: the emoji)", _message(samples.reaction, "emoji")),
    EventKind("reaction_removed", _M, "reaction removed (emoji omitted)", _message(samples.reaction, emoji=None)),
    EventKind("order", _M, "catalog order with two products (--text: note)", _message(samples.order, "note")),
    EventKind("system", _M, "system notice: the user changed number", _message(samples.system_message, "body")),
    EventKind("request_welcome", _M, "user opened the chat for the first time", _message(samples.request_welcome)),
    EventKind("unsupported", _M, "unsupported type with errors[] (--error-code, default 131051)", _unsupported),
    EventKind("ad_referral", _M, "text sent from a click-to-WhatsApp ad (referral)", _message(_from_ad, "text")),
    EventKind("status_sent", _S, "sent, with conversation and pricing", _status("sent")),
    EventKind("status_delivered", _S, "delivered to the phone", _status("delivered")),
    EventKind("status_read", _S, "read by the user", _status("read")),
    EventKind("status_played", _S, "voice message played", _status("played")),
    EventKind(
        "status_failed", _S, f"failed, errors[] (--error-code, default {DEFAULT_FAILED_CODE})",
        _status("failed"),
    ),
    EventKind(
        "template_approved", _F, "template status APPROVED (message_template_status_update)",
        _field(samples.template_status_update),
    ),
    EventKind(
        "template_rejected", _F, "template status REJECTED (INCORRECT_CATEGORY)",
        _field(samples.template_status_update, **_REJECTED),
    ),
    EventKind("template_paused", _F, "template status PAUSED (FIRST_PAUSE: low quality)", _field(_paused_template)),
    EventKind(
        "template_disabled", _F, "template status DISABLED",
        _field(samples.template_status_update, event="DISABLED", reason=None),
    ),
    EventKind(
        "template_quality", _F, "message_template_quality_update GREEN -> YELLOW",
        _field(samples.template_quality_update),
    ),
    EventKind(
        "template_category", _F, "template_category_update UTILITY -> MARKETING",
        _field(samples.template_category_update),
    ),
    EventKind("account_update", _F, "account_update ACCOUNT_VIOLATION", _field(samples.account_update)),
    EventKind(
        "phone_number_quality_update", _F, "messaging limit UPGRADE to TIER_10K",
        _field(samples.phone_number_quality_update),
    ),
    EventKind("phone_number_name_update", _F, "display name APPROVED", _field(_name_update)),
    EventKind("security", _F, "security: two-step verification PIN changed", _field(_security)),
)
KINDS_BY_NAME: dict[str, EventKind] = {kind.name: kind for kind in KINDS}
ALIASES = {
    "nfm_reply": "flow_reply",
    "button": "template_button",
    "sent": "status_sent",
    "delivered": "status_delivered",
    "read": "status_read",
    "played": "status_played",
    "failed": "status_failed",
}
GROUP_TITLES: dict[Group, str] = {
    "message": 'Messages a user sends you (field "messages", messages[])',
    "status": 'Statuses of a message you sent (field "messages", statuses[])',
    "field": "Other fields (templates, account, phone number)",
}


def find_kind(name: str) -> EventKind | None:
    """The kind for a name as typed (case, dashes and the aliases Meta's own words suggest allowed)."""
    key = name.strip().lower().replace("-", "_")
    return KINDS_BY_NAME.get(ALIASES.get(key, key))


def close_matches(name: str, limit: int = 4) -> list[str]:
    """Kinds a mistyped name probably meant, for the usage error."""
    key = name.strip().lower().replace("-", "_")
    names = [*KINDS_BY_NAME, *ALIASES]
    found = difflib.get_close_matches(key, names, n=limit * 2, cutoff=0.6)
    found += [n for n in KINDS_BY_NAME if key and key in n and n not in found]
    unique = dict.fromkeys(ALIASES.get(n, n) for n in found)
    return list(unique)[:limit]


def catalogue_lines() -> list[str]:
    """`trigger --list`: every kind with what it sends, grouped as Meta groups them."""
    width = max(len(kind.name) for kind in KINDS)
    lines: list[str] = []
    for group, title in GROUP_TITLES.items():
        lines.append(f"{title}:" if not lines else f"\n{title}:")
        lines += [f"  {kind.name:<{width}}  {kind.description}" for kind in KINDS if kind.group == group]
    return lines


def new_message_id(rng: Random, sender: str = USER_WA_ID) -> str:
    """A fresh wamid laid out like Meta's (wa_id and a random hex id, base64), so it never repeats."""
    phone = sender.encode("ascii", "replace")[:64]
    raw = b"\x1c\x18" + bytes([len(phone)]) + phone + b"\x15\x02\x00\x12\x18\x14"
    raw += rng.randbytes(10).hex().upper().encode("ascii") + b"\x00"
    return "wamid." + base64.b64encode(raw).decode("ascii")


def _envelope(group: Group, items: list[dict[str, Any]], options: TriggerOptions) -> dict[str, Any]:
    pnid = options.phone_number_id
    if group == "message":
        # Meta sends system notices without contacts[]; every other message names its sender.
        contacts = [] if items[0].get("type") == "system" else [samples.contact(wa_id=options.sender)]
        return samples.envelope([samples.messages_change(items, contacts=contacts, phone_number_id=pnid)])
    if group == "status":
        return samples.envelope([samples.messages_change(statuses=items, phone_number_id=pnid)])
    return samples.envelope(items, time=options.now)


def build_event(kind: EventKind, options: TriggerOptions, rng: Random) -> dict[str, Any]:
    """One POST body: `options.batch` items of `kind` (the first may reuse --message-id)."""
    if not 1 <= options.batch <= MAX_BATCH:
        raise ValueError(f"batch must be between 1 and {MAX_BATCH}")
    items = []
    for index in range(options.batch):
        message_id = options.message_id if index == 0 and options.message_id else new_message_id(rng, options.sender)
        params = ItemParams(options.text, message_id, options.sender, str(options.now), options.error_code)
        items.append(kind.build(params))
    return _envelope(kind.group, items, options)


def status_sequence(options: TriggerOptions, rng: Random) -> list[tuple[str, dict[str, Any]]]:
    """sent, delivered, read of one message id, one POST each, timestamps one second apart."""
    message_id = options.message_id or new_message_id(rng, options.sender)
    sequence = []
    for offset, name in enumerate(SEQUENCE_STATUSES):
        kind = KINDS_BY_NAME[f"status_{name}"]
        params = ItemParams(None, message_id, options.sender, str(options.now + offset), None)
        sequence.append((kind.name, _envelope("status", [kind.build(params)], options)))
    return sequence


def out_of_order(items: Sequence[T], rng: Random) -> list[T]:
    """A random order that is never the original one, so a backend really sees a reordering."""
    order = list(range(len(items)))
    rng.shuffle(order)
    if len(order) > 1 and order == sorted(order):
        order = order[1:] + order[:1]
    return [items[i] for i in order]
