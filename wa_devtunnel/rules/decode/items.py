"""Typed webhook items, each rendering as one terminal-safe line, so front ends never walk Meta's JSON."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, NamedTuple

from wa_devtunnel.rules.decode.leaves import Values
from wa_devtunnel.rules.untrusted import visible

TEXT_LIMIT = 60
# Line and field separators fold into spaces (one line); every other control is shown as an escape.
_SEPARATORS = {i: " " for i in (9, 10, 11, 12, 13, 0x1C, 0x1D, 0x1E, 0x1F, 0x85, 0x2028, 0x2029)}
_QUOTED = frozenset({"text", "image", "video", "audio", "sticker", "interactive", "button"})
_QUOTED_MEDIA = frozenset({"image", "video"})  # a quoted caption, nothing else
_TYPES = _QUOTED | {
    "document",
    "location",
    "contacts",
    "reaction",
    "order",
    "system",
    "unsupported",
    "request_welcome",
    "edit",
    "revoke",
}
_SUBTYPED = frozenset({"interactive", "system", "unsupported"})  # their line names the subtype too
_REPLIES = frozenset({"button_reply", "list_reply", "nfm_reply", "call_permission_reply"})  # clean subtypes


def one_line(text: str, limit: int = TEXT_LIMIT) -> str:
    """Squeeze untrusted text into one short terminal-safe line: no newlines, controls as visible escapes."""
    # Fast path (most text): printable means no control codes and no whitespace but " ".
    if len(text) <= limit and text.isprintable() and "  " not in text and text[:1] != " " != text[-1:]:
        return text
    head = text[: limit * 2 + 16]
    flat = " ".join(visible(head.translate(_SEPARATORS)).split())
    if len(flat) > limit or len(text) > len(head):
        return flat[: limit - 1].rstrip() + "…"
    return flat


SHORT_ID_TAIL = 12
_SHORT_ID_WHOLE = 24


def short_id(message_id: str) -> str:
    """`wamid.…ODEwMTQ0RgA=`: a wamid starts with the user's number (the same for every message to
    them), so its tail tells messages apart; the prefix before a first "." is kept, ids of up to
    24 characters are shown whole. Terminal-safe; the full id is in the item and its `values`."""
    if len(message_id) <= _SHORT_ID_WHOLE:
        if message_id.isprintable() and " " not in message_id:  # the usual id: nothing to clean
            return message_id
        return one_line(message_id, 40)
    if message_id[:6] == "wamid.":  # the usual id: only its tail needs a look
        tail = message_id[-SHORT_ID_TAIL:]
        if tail.isprintable() and " " not in tail:
            return f"wamid.…{tail}"
    dot = message_id.find(".", 0, 9)
    head = message_id[: dot + 1] if dot > 0 else ""
    short = f"{head}…{message_id[-SHORT_ID_TAIL:]}"
    if short.isprintable() and " " not in short:
        return short
    return f"{one_line(head, 12) if head else ''}…{one_line(message_id[-SHORT_ID_TAIL:], 30)}"


def _quoted(text: str) -> str:
    return f'"{one_line(text)}"' if text else ""


class MetaError(NamedTuple):
    """One item of Meta's errors[]: the code is what Meta's error-code table is keyed by."""

    code: int | None
    title: str
    message: str
    details: str

    def line(self) -> str:
        """`131049 This message was not delivered ...`: code, then title (else message)."""
        code, said = self.code, self.title or self.message or self.details
        if said:
            said = one_line(said, 120)
        if code is None:
            return said or "error without code or title"
        return f"{code} {said}" if said else str(code)


def _error_lines(errors: tuple[MetaError, ...], shown: int = 3) -> str:
    if len(errors) == 1:  # the usual case
        return errors[0].line()
    more = f" (+{len(errors) - shown} more)" if len(errors) > shown else ""
    return "; ".join([e.line() for e in errors[:shown]]) + more


class InboundMessage(NamedTuple):
    """One messages[] item (or a message echo, or a message of a history thread), flattened so front
    ends show any type without knowing its nesting."""

    field: str
    waba_id: str
    phone_number_id: str
    display_phone_number: str
    account: str | None
    message_id: str
    sender: str
    contact_name: str
    type: str
    # interactive.type, system.type, unsupported.type, button payload, document filename,
    # location "lat,long", "voice" (audio), "animated" (sticker), "removed" (reaction), order catalog
    # id, for an edit the type of the new content
    subtype: str
    text: str  # body, caption, reply title, emoji, place, contact names, order summary, flow answers
    timestamp: str
    context_id: str  # the message replied to (for a reaction: the message reacted to)
    forwarded: bool
    referral: bool
    media_id: str
    errors: tuple[MetaError, ...]
    values: Values = ()  # every scalar leaf of the messages[] item, with its path (leaves.leaf_values)
    direction: str = "from"  # "from" a user; "echo": the business wrote it (WhatsApp Business app) to `recipient`
    recipient: str = ""  # the user an echo went to
    group_id: str = ""  # the group the message was sent in
    reply_id: str = ""  # what the app routes on: button_reply/list_reply id, button payload, call permission answer
    reply_description: str = ""  # list_reply description
    original_message_id: str = ""  # the message an edit or a revoke (deletion) changes
    flow_token: str = ""  # nfm_reply: the flow_token the business sent with the flow
    history_status: str = ""  # a message of a `history` thread: its history_context.status (READ, DELIVERED ...)
    notes: tuple[str, ...] = ()  # more context for the line: the ad, the product asked about, a new user id ...

    def line(self) -> str:
        """`text from 16505551234: "Does it come in another color?"`, `text echo to 16505551234: ...`."""
        # Runs for every message of every request: the usual words (a Meta type, a phone number, a
        # text) take the short way; the rest goes through one_line.
        kind, sub = self.type, self.subtype
        if kind in _TYPES:  # Meta's own type names need no cleaning
            if sub and kind in _SUBTYPED:
                label = f"{kind} {sub}" if sub in _REPLIES else one_line(f"{kind} {sub}", 40)
            else:
                label = kind
        else:
            label = one_line(kind, 40) if kind else "message"
        if self.direction == "echo":
            who = self.recipient
            line = f"{label} echo to {who if who.isdigit() and len(who) <= 40 else _who(who, 'unknown recipient')}"
        else:
            who = self.sender
            line = f"{label} from {who if who.isdigit() and len(who) <= 40 else _who(who, 'unknown sender')}"
        if self.group_id:
            line += f" in group {short_id(self.group_id)}"
        if kind == "text":
            text = self.text
            if text:
                line += f': "{one_line(text)}"'
        else:
            content = self._content()
            if content:
                line += f": {content}"
        if self.context_id or self.forwarded or self.referral or self.notes or self.original_message_id:
            notes = []
            if self.original_message_id:
                verb = "deletes" if kind == "revoke" else "edits"
                notes.append(f"{verb} {short_id(self.original_message_id)}")
            if self.context_id and kind != "reaction":
                notes.append(f"reply to {short_id(self.context_id)}")
            extra = self.notes
            if self.forwarded and "frequently forwarded" not in extra:
                notes.append("forwarded")
            if self.referral and not any(n.startswith("from an ad") for n in extra):
                notes.append("from an ad")
            if extra:
                notes.extend([one_line(n, 120) for n in extra])
            if notes:
                line += f" ({', '.join(notes)})"
        if self.errors and kind != "unsupported":
            line += f" [{_error_lines(self.errors)}]"
        return line

    def _content(self) -> str:
        kind, sub, text = self.type, self.subtype, self.text
        if kind == "edit":
            kind = sub
        if kind == "text":
            return _quoted(text)
        if kind == "reaction":
            what = one_line(text, 12) if text else "removed"
            return f"{what} on {short_id(self.context_id)}" if self.context_id else what
        if kind in _QUOTED_MEDIA:
            return f'"{one_line(text)}"' if text else ""
        if kind == "interactive":
            said = _quoted(text) if sub in ("button_reply", "list_reply") else one_line(text, 100)
            reply_id = self.reply_id
            if reply_id and sub != "call_permission_reply":
                said = f"{said} id {one_line(reply_id, 40)}".lstrip()
                if self.reply_description:
                    said += f", {_quoted(self.reply_description)}"
            return said
        if kind == "audio" and sub == "voice":
            return "voice note"
        if kind == "sticker" and sub == "animated":
            return "animated"
        if kind == "document":
            return " ".join(w for w in (one_line(sub, 40), _quoted(text)) if w)
        if kind == "button" and sub:
            return " ".join(w for w in (_quoted(text), f"(payload {one_line(sub, 40)})") if w)
        if kind == "location":
            place = one_line(text, 80) if text else ""
            if not sub:
                return place
            return f"{place} ({one_line(sub)})" if place else f"({one_line(sub)})"
        if kind == "unsupported":
            return _error_lines(self.errors)
        return _quoted(text) if kind in _QUOTED else one_line(text, 80)


def _who(party: str, missing: str) -> str:
    # A phone number (the usual party) is already one short clean word.
    if party.isdigit() and len(party) <= 40:
        return party
    return one_line(party, 40) or missing


class StatusUpdate(NamedTuple):
    """One statuses[] item: what happened to a message (or a call) the business sent."""

    field: str
    waba_id: str
    phone_number_id: str
    display_phone_number: str
    account: str | None
    status_id: str
    status: str
    recipient_id: str
    timestamp: str
    pricing_category: str
    pricing_model: str
    conversation_category: str
    errors: tuple[MetaError, ...]
    values: Values = ()  # every scalar leaf of the statuses[] item, with its path
    biz_opaque_callback_data: str = ""  # the business's own tag, sent with the message
    pricing_type: str = ""  # pricing.type: regular, free_customer_service, free_entry_point
    billable: bool | None = None  # pricing.billable (None: not said)
    conversation_id: str = ""
    conversation_expiration: str = ""  # conversation.expiration_timestamp (Unix seconds)
    group_id: str = ""  # the group the message went to
    participant: str = ""  # in a group: the member this status is about

    def line(self) -> str:
        """`read wamid.…ODEwMTQ0RgA= to 16505551234`, `failed wamid.…RgA= to 16505551234: 131049 ...`."""
        # Runs for every status of every request: the fields unpacked once, Meta's words taken as they are.
        _, _, _, _, _, status_id, raw_status, recipient, _, category, _, _, errors, *more = self
        _, tag, pricing_type, billable, _, _, group_id, participant = more
        status = raw_status if raw_status in _STATUS_WORDS else one_line(raw_status, 30) or "status"
        line = f"{status} {short_id(status_id)}" if status_id else status
        if group_id:
            line += f" in group {short_id(group_id)}"
            if participant:
                line += f" by {_who(participant, '?')}"
        elif recipient:
            line += f" to {recipient if recipient.isdigit() and len(recipient) <= 40 else _who(recipient, '?')}"
        priced = bool(category) and raw_status == "sent"  # priced once: said on `sent`
        if priced or (pricing_type and pricing_type != "regular") or billable is False or tag:
            notes = []
            if priced:
                notes.append(category if category in _CATEGORY_WORDS else one_line(category, 30))
            if pricing_type and pricing_type != "regular":
                notes.append(one_line(pricing_type, 30))
            if billable is False:
                notes.append("not billable")
            if tag:
                notes.append(f"callback {one_line(tag, 40)}")
            line += f" ({', '.join(notes)})"
        if errors:
            line += f": {_error_lines(errors)}"
        return line


_STATUS_WORDS = frozenset({"sent", "delivered", "read", "failed", "played", "deleted", "warning"})
# Meta's pricing categories (pricing.category), shown as they are.
_CATEGORY_WORDS = frozenset(
    {
        "marketing",
        "marketing_lite",
        "utility",
        "authentication",
        "authentication_international",
        "service",
        "referral_conversion",
    }
)
_FIELD_NOUNS = {
    "message_template_status_update": "template",
    "message_template_quality_update": "template quality",
    "message_template_components_update": "template components",
    "template_category_update": "template category",
    "calls": "call",
}


class FieldUpdate(NamedTuple):
    """A non-message field (templates, account, quality, calls, groups ...) or an unknown one."""

    field: str
    waba_id: str
    event: str
    subject: str  # what it is about: template name, phone number, group id, the user of a call ...
    detail: str
    raw_keys: tuple[str, ...]
    values: Values = ()  # every scalar leaf of the field's value (or of its list item), with its path
    direction: str = ""  # a call: "from" (the user called) or "by business to"

    def line(self) -> str:
        """`template order_confirmation APPROVED`, `call by business to 16505551234 connect`."""
        noun = _FIELD_NOUNS.get(self.field) or one_line(self.field, 60) or "change"
        words = (noun, self.direction, one_line(self.subject, 60), one_line(self.event, 60))
        line = " ".join(w for w in words if w)
        return f"{line} ({one_line(self.detail, 140)})" if self.detail else line


class ChangeError(NamedTuple):
    """An item of value.errors[]: Meta could not deliver something at all."""

    field: str
    waba_id: str
    error: MetaError
    values: Values = ()  # every scalar leaf of the error object, with its path

    def line(self) -> str:
        """`error 131000 Something went wrong (details)`."""
        details = self.error.details
        extra = f" ({one_line(details, 100)})" if details and details != self.error.title else ""
        return f"error {self.error.line()}{extra}"


Item = InboundMessage | StatusUpdate | FieldUpdate | ChangeError
_KINDS: dict[type, str] = {
    InboundMessage: "message",
    StatusUpdate: "status",
    FieldUpdate: "field",
    ChangeError: "error",
}
_NAMES: dict[type, tuple[str, ...]] = {cls: cls._fields for cls in (*_KINDS, MetaError)}
# Fields that are not JSON-ready as they are: the expression that makes them so (`v_<name>` is the field).
_CONVERTED = {
    "errors": "[_error_dict(e) for e in v_errors] if v_errors else []",
    "error": "_error_dict(v_error)",
    "raw_keys": "list(v_raw_keys)",
    "notes": "list(v_notes) if v_notes else []",
    "values": "[[path, value] for path, value in v_values] if v_values else []",
}


def _compile_dict(
    cls: type, kind: str | None = None, skip: tuple[str, ...] = (), env: dict[str, Any] | None = None
) -> Callable[..., dict[str, Any]]:
    """The JSON-ready dict of an item of `cls`: `kind` first (when given), its fields in declaration
    order but `skip`, then `line` (when `kind` is given). Compiled once, like a dataclass __init__: the
    item (a tuple) is unpacked once into locals, and the keys are stored as the attributes of a bare
    object whose __dict__ is returned. Every such object of one compiled function shares one key table,
    so a dict costs a few stores and no hashing; a dict display of the same 28 keys costs three times
    as much, and this runs for every item of every request. (Past 30 keys CPython stops sharing: still
    the same dict, just built the slower way.)"""
    names = _NAMES[cls]
    keys = [(name, _CONVERTED.get(name, f"v_{name}")) for name in names if name not in skip]
    if kind is not None:
        keys = [("kind", repr(kind)), *keys, ("line", "line")]
    stores = "".join(f"    o.{key} = {expression}\n" for key, expression in keys)
    source = (
        f"def to_dict(item, line=None):\n"
        f"    {', '.join(f'v_{name}' for name in names)}, = item\n"
        f"    o = _new(_Keys)\n{stores}"
        f"    return o.__dict__\n"
    )
    keys_class = type(f"_{cls.__name__}Keys", (), {"__module__": __name__})  # one key table per shape
    namespace: dict[str, Any] = {**(env or {}), "_new": object.__new__, "_Keys": keys_class}
    exec(source, namespace)  # our own field names, compiled once at import
    return namespace["to_dict"]


_error_dict = _compile_dict(MetaError)
_ITEM_DICTS = {cls: _compile_dict(cls, kind, (), {"_error_dict": _error_dict}) for cls, kind in _KINDS.items()}
# Items decoded with values=False: no `values` key at all (a reader can tell "not decoded" from "none").
_ITEM_DICTS_WITHOUT_VALUES = {
    cls: _compile_dict(cls, kind, ("values",), {"_error_dict": _error_dict}) for cls, kind in _KINDS.items()
}

