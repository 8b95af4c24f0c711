"""Decode a webhook body into a typed summary of EVERY entry, change, message and status.

Most handlers read only entry[0].changes[0]; an inspector shows all of it and never crashes on
what arrives (this runs on every request, on bytes from anyone).
"""

from __future__ import annotations

import json
from collections import OrderedDict
from collections.abc import Mapping
from dataclasses import dataclass, fields
from itertools import islice
from typing import Any, NamedTuple

WHATSAPP_OBJECT = "whatsapp_business_account"
DASHBOARD_TEST_ENTRY_ID = "0"
DASHBOARD_TEST_PHONE_NUMBER_ID = "123456123"
DASHBOARD_TEST_MESSAGE_ID = "ABGGFlA5Fpa"
TEXT_LIMIT = 60
_CONTROL = {i: " " for i in (*range(32), *range(127, 160))}
_QUOTED = frozenset({"text", "image", "video", "audio", "sticker", "interactive", "button"})
_MAX_RAW_KEYS = 50


def one_line(text: str, limit: int = TEXT_LIMIT) -> str:
    """Squeeze untrusted text into one short terminal-safe line: no newlines, no escape codes."""
    head = text[: limit * 2 + 16]
    flat = " ".join(head.translate(_CONTROL).split())
    if len(flat) > limit or len(text) > len(head):
        return flat[: limit - 1].rstrip() + "…"
    return flat


def short_id(message_id: str) -> str:
    """A wamid is ~60 base64 characters; its first 14 keep a line readable."""
    clean = one_line(message_id, 80)
    return clean if len(clean) <= 17 else clean[:14] + "..."


def _quoted(text: str) -> str:
    return f'"{one_line(text)}"' if text else ""


@dataclass(frozen=True, slots=True)
class MetaError:
    """One item of Meta's errors[]: the code is what Meta's error-code table is keyed by."""

    code: int | None
    title: str
    message: str
    details: str

    def line(self) -> str:
        """`131049 This message was not delivered ...`: code, then title (else message)."""
        code = "" if self.code is None else str(self.code)
        words = (code, one_line(self.title or self.message or self.details, 120))
        return " ".join(w for w in words if w) or "error without code or title"


def _error_lines(errors: tuple[MetaError, ...], shown: int = 3) -> str:
    more = f" (+{len(errors) - shown} more)" if len(errors) > shown else ""
    return "; ".join(e.line() for e in errors[:shown]) + more


@dataclass(frozen=True, slots=True)
class InboundMessage:
    """One messages[] item, flattened so front ends show any type without knowing its nesting."""

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
    # location "lat,long", "voice" (audio), "removed" (reaction), order catalog id
    subtype: str
    text: str  # body, caption, reply title, emoji, place, contact names, order summary
    timestamp: str
    context_id: str  # the message replied to (for a reaction: the message reacted to)
    forwarded: bool
    referral: bool
    media_id: str
    errors: tuple[MetaError, ...]

    def line(self) -> str:
        """`text from 16505551234: "Does it come in another color?"`."""
        label = self.type or "message"
        if self.type in ("interactive", "system", "unsupported") and self.subtype:
            label = f"{label} {self.subtype}"
        line = f"{one_line(label, 40)} from {one_line(self.sender, 40) or 'unknown sender'}"
        content = self._content()
        if content:
            line += f": {content}"
        notes = []
        if self.context_id and self.type != "reaction":
            notes.append(f"reply to {short_id(self.context_id)}")
        if self.forwarded:
            notes.append("forwarded")
        if self.referral:
            notes.append("from an ad")
        if notes:
            line += f" ({', '.join(notes)})"
        if self.errors and self.type != "unsupported":
            line += f" [{_error_lines(self.errors)}]"
        return line

    def _content(self) -> str:
        kind, sub, text = self.type, self.subtype, self.text
        if kind == "reaction":
            what = one_line(text, 12) if text else "removed"
            return f"{what} on {short_id(self.context_id)}" if self.context_id else what
        if kind == "audio" and sub == "voice":
            return "voice note"
        if kind == "document":
            return " ".join(w for w in (one_line(sub, 40), _quoted(text)) if w)
        if kind == "button" and sub:
            return " ".join(w for w in (_quoted(text), f"(payload {one_line(sub, 40)})") if w)
        if kind == "location":
            return " ".join(
                w for w in (one_line(text, 80), f"({one_line(sub)})" if sub else "") if w
            )
        if kind == "unsupported":
            return _error_lines(self.errors)
        return _quoted(text) if kind in _QUOTED else one_line(text, 80)


@dataclass(frozen=True, slots=True)
class StatusUpdate:
    """One statuses[] item: what happened to a message the business sent."""

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

    def line(self) -> str:
        """`read wamid.HBgLMTY1...`, or `failed 131049 This message was not delivered ...`."""
        status = one_line(self.status, 30) or "status"
        if self.errors:
            return f"{status} {_error_lines(self.errors)}"
        return f"{status} {short_id(self.status_id)}".rstrip()


_FIELD_NOUNS = {
    "message_template_status_update": "template",
    "message_template_quality_update": "template quality",
    "message_template_components_update": "template components",
    "template_category_update": "template category",
}


@dataclass(frozen=True, slots=True)
class FieldUpdate:
    """A non-message field (templates, account, quality, calls, echoes ...) or an unknown one."""

    field: str
    waba_id: str
    event: str
    subject: str
    detail: str
    raw_keys: tuple[str, ...]

    def line(self) -> str:
        """`template order_confirmation APPROVED`, `account_update ACCOUNT_VIOLATION`."""
        noun = _FIELD_NOUNS.get(self.field) or one_line(self.field, 60) or "change"
        words = (noun, one_line(self.subject, 60), one_line(self.event, 60))
        line = " ".join(w for w in words if w)
        return f"{line} ({one_line(self.detail, 100)})" if self.detail else line


@dataclass(frozen=True, slots=True)
class ChangeError:
    """An item of value.errors[]: Meta could not deliver something at all."""

    field: str
    waba_id: str
    error: MetaError

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
_NAMES = {cls: tuple(f.name for f in fields(cls)) for cls in (*_KINDS, MetaError)}


def _error_dict(error: MetaError) -> dict[str, Any]:
    return {name: getattr(error, name) for name in _NAMES[MetaError]}


def _item_dict(item: Item) -> dict[str, Any]:
    out: dict[str, Any] = {"kind": _KINDS[type(item)]}
    for name in _NAMES[type(item)]:
        value = getattr(item, name)
        if name == "errors":
            value = [_error_dict(e) for e in value]
        elif name == "error":
            value = _error_dict(value)
        elif name == "raw_keys":
            value = list(value)
        out[name] = value
    out["line"] = item.line()
    return out


@dataclass(frozen=True, slots=True)
class WebhookSummary:
    """The WhatsApp view of one POST body: every item in order, plus what is odd about it."""

    ok: bool
    problem: str
    object: str
    fields: tuple[str, ...]
    items: tuple[Item, ...]
    flags: tuple[str, ...]
    headline: str

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready, stable keys: this is the `summary` of a recorded exchange."""
        return {
            "ok": self.ok,
            "problem": self.problem,
            "object": self.object,
            "fields": list(self.fields),
            "flags": list(self.flags),
            "headline": self.headline,
            "items": [_item_dict(item) for item in self.items],
        }


class SeenIds:
    """Bounded FIFO memory of delivered ids: Meta retries for days and apps must de-duplicate."""

    __slots__ = ("_keys", "limit")

    def __init__(self, limit: int = 100_000) -> None:
        if limit < 1:
            raise ValueError("limit must be at least 1")
        self.limit = limit
        self._keys: OrderedDict[str, None] = OrderedDict()

    def seen_before(self, key: str) -> bool:
        """Record `key`; True when it was already recorded (and not yet evicted)."""
        if key in self._keys:
            return True
        self._keys[key] = None
        if len(self._keys) > self.limit:
            self._keys.popitem(last=False)
        return False

    def __contains__(self, key: object) -> bool:
        return key in self._keys

    def __len__(self) -> int:
        return len(self._keys)


def _obj(value: Any) -> dict[str, Any]:
    return value if isinstance(value, dict) else {}


def _list(value: Any) -> list[Any]:
    return value if isinstance(value, list) else []


def _str(value: Any) -> str:
    """Text of a JSON scalar; lone surrogates replaced so the summary always encodes as UTF-8."""
    if isinstance(value, str):
        if value.isascii():
            return value
        try:
            value.encode("utf-8")
        except UnicodeEncodeError:
            return value.encode("utf-8", "replace").decode("utf-8")
        return value
    if isinstance(value, bool) or not isinstance(value, int | float):
        return ""
    return str(value)


def _code(value: Any) -> int | None:
    if isinstance(value, int) and not isinstance(value, bool):
        return value
    if isinstance(value, str) and 0 < len(value) <= 12 and value.isdigit() and value.isascii():
        return int(value)
    return None


def _meta_error(raw: Any) -> MetaError:
    if not isinstance(raw, dict):
        return MetaError(None, "", one_line(_str(raw), 200), "")
    details = _str(_obj(raw.get("error_data")).get("details"))
    title, message = _str(raw.get("title")), _str(raw.get("message"))
    return MetaError(_code(raw.get("code")), title, message, details)


def _errors(raw: Any) -> tuple[MetaError, ...]:
    return tuple(_meta_error(e) for e in _list(raw))


Content = tuple[str, str, str]  # subtype, text, media_id


def _content(kind: str, raw: Any) -> Content:
    """The human part of one message type (what Meta nests under the key named by `type`)."""
    if kind == "contacts":
        cards = [_obj(_obj(c).get("name")) for c in _list(raw)]
        names = [
            _str(n.get("formatted_name"))
            or f"{_str(n.get('first_name'))} {_str(n.get('last_name'))}"
            for n in cards
        ]
        named = [n.strip() for n in names if n.strip()]
        count = len(cards)
        return "", ", ".join(named) or f"{count} contact card{'s' * (count != 1)}", ""
    body = _obj(raw)
    if kind == "text":
        return "", _str(body.get("body")), ""
    if kind in ("image", "video", "audio", "sticker", "document"):
        sub = _str(body.get("filename")) if kind == "document" else ""
        sub = sub or ("voice" if body.get("voice") is True else "")
        return sub, _str(body.get("caption")), _str(body.get("id"))
    if kind == "location":
        lat, lng = _str(body.get("latitude")), _str(body.get("longitude"))
        place = ", ".join(w for w in (_str(body.get("name")), _str(body.get("address"))) if w)
        return (f"{lat},{lng}" if lat or lng else ""), place, ""
    if kind == "interactive":
        sub = _str(body.get("type"))
        reply = _obj(body.get(sub)) if sub else {}
        name, said = _str(reply.get("name")), _str(reply.get("body"))
        if sub == "nfm_reply":
            return sub, f"{name}: {said}" if name and said else name or said, ""
        return sub, _str(reply.get("title")) or said or _str(reply.get("id")), ""
    if kind == "button":
        return _str(body.get("payload")), _str(body.get("text")), ""
    if kind == "reaction":
        emoji = _str(body.get("emoji"))
        return ("" if emoji else "removed"), emoji, ""
    if kind == "order":
        catalog, count = _str(body.get("catalog_id")), len(_list(body.get("product_items")))
        note = _str(body.get("text"))
        summary = f"{count} item{'s' * (count != 1)} from catalog {catalog or '?'}"
        return catalog, f"{summary} ({note})" if note else summary, ""
    if kind == "system":
        return _str(body.get("type")), _str(body.get("body")), ""
    if kind == "unsupported":
        return _str(body.get("type")), "", ""
    text = _str(body.get("body")) or _str(body.get("caption")) or _str(body.get("text"))
    return _str(body.get("type")), text, _str(body.get("id"))


Update = tuple[str, str, str]  # event, subject, detail


class FieldRule(NamedTuple):
    """How to read one non-message field. A path is "a.b.0.c"; "x|y" takes the first non-empty."""

    each: tuple[str, ...]  # value keys whose list items are one update each ("" = the value)
    event: str
    subject: str
    details: tuple[tuple[str, str], ...]  # (prefix, path)


def _rule(event: str, subject: str = "", *details: str, each: tuple[str, ...] = ()) -> FieldRule:
    """details are "prefix {path}" templates, e.g. "was {previous_quality_score}"."""
    parts = tuple((d.partition("{")[0], d.partition("{")[2].rstrip("}")) for d in details)
    return FieldRule(each, event, subject, parts)


_TEMPLATE = "message_template_name|message_template_id"
_LIMIT = "current_limit|max_daily_conversations_per_business|max_daily_conversation_per_phone"
_FIELD_RULES: dict[str, FieldRule] = {
    "message_template_status_update": _rule("event", _TEMPLATE, "{reason}", "{other_info.title}"),
    "message_template_quality_update": _rule(
        "new_quality_score", _TEMPLATE, "was {previous_quality_score}"
    ),
    "message_template_components_update": _rule("", _TEMPLATE, "{message_template_title}"),
    "template_category_update": _rule(
        "new_category", _TEMPLATE, "was {previous_category}", "correct {correct_category}"
    ),
    "account_update": _rule(
        "event",
        "phone_number",
        "violation {violation_info.violation_type}",
        "ban {ban_info.waba_ban_state.0|ban_info.waba_ban_state}",
        "restriction {restriction_info.0.restriction_type}",
    ),
    "account_alerts": _rule(
        "alert_info.alert_type",
        "entity_id",
        "{alert_info.alert_severity}",
        "{alert_info.alert_description}",
    ),
    "account_review_update": _rule("decision"),
    "phone_number_quality_update": _rule("event", "display_phone_number", f"limit {{{_LIMIT}}}"),
    "phone_number_name_update": _rule(
        "decision", "display_phone_number", "{requested_verified_name}", "{rejection_reason}"
    ),
    "business_capability_update": _rule(
        "",
        "",
        "max_daily_conversation_per_phone {max_daily_conversation_per_phone}",
        "max_phone_numbers_per_business {max_phone_numbers_per_business}",
        "max_phone_numbers_per_waba {max_phone_numbers_per_waba}",
    ),
    "security": _rule("event", "display_phone_number", "by {requester}"),
    "flows": _rule("event", "flow_id", "{message|new_status}"),
    "calls": _rule(
        "event|status",
        "from|recipient_id",
        "{direction}",
        "{status}",
        "duration {duration}",
        each=("calls", "statuses"),
    ),
    "history": _rule(
        "",
        "",
        "phase {metadata.phase}",
        "chunk {metadata.chunk_order}",
        "progress {metadata.progress}",
        "error {errors.0.code}",
        each=("history",),
    ),
    "smb_message_echoes": _rule("type", "to", "{text.body}", each=("message_echoes",)),
    "smb_app_state_sync": _rule(
        "action", "contact.phone_number", "{contact.full_name}", each=("state_sync",)
    ),
    "user_preferences": _rule(
        "value", "wa_id|user_id", "{category}", "{detail}", each=("user_preferences",)
    ),
}
_GENERIC = _rule("event|decision|status")


def _at(value: dict[str, Any], path: str) -> str:
    """The text at a dotted path, first non-empty of "|" alternatives; "" when the shape differs."""
    if not path:
        return ""
    for option in path.split("|"):
        node: Any = value
        for part in option.split("."):
            if part.isdigit():
                items = _list(node)
                node = items[int(part)] if int(part) < len(items) else None
            else:
                node = _obj(node).get(part)
        text = _str(node)
        if text:
            return text
    return ""


def _apply(rule: FieldRule, value: dict[str, Any]) -> Update:
    event, detail = _at(value, rule.event), []
    for prefix, path in rule.details:
        text = _at(value, path)
        if text and text not in ("NONE", event):
            detail.append(f"{prefix}{text}")
    return event, _at(value, rule.subject), "; ".join(detail)


def field_updates(field: str, value: dict[str, Any]) -> list[Update]:
    """One (event, subject, detail) per update a non-message change carries (list items count)."""
    rule = _FIELD_RULES.get(field, _GENERIC)
    updates = [_apply(rule, _obj(x)) for key in rule.each for x in _list(value.get(key))]
    if updates:
        return updates
    update = _apply(_GENERIC if rule.each else rule, value)
    if any(update):
        return [update]
    keys = ", ".join(islice(value, 8))
    return [("", "", f"keys: {keys}" if keys else "empty value")]


class _Where(NamedTuple):
    """Where an item sits: the leading fields of InboundMessage and StatusUpdate."""

    field: str
    waba_id: str
    phone_number_id: str
    display_phone_number: str
    account: str | None


def _contacts_by_id(contacts: list[Any]) -> dict[str, dict[str, Any]]:
    """contacts[] keyed by wa_id and by user_id (2026 contacts may carry only the latter)."""
    by_id: dict[str, dict[str, Any]] = {}
    for contact in map(_obj, contacts):
        for key in (_str(contact.get("wa_id")), _str(contact.get("user_id"))):
            if key:
                by_id.setdefault(key, contact)
    return by_id


def _inbound(
    m: dict[str, Any], where: _Where, contacts: list[Any], by_id: dict[str, Any], index: int
) -> InboundMessage:
    kind = _str(m.get("type"))
    sender = _str(m.get("from")) or _str(m.get("from_user_id"))
    contact = by_id.get(sender) if sender else None
    if contact is None:
        contact = _obj(contacts[index]) if index < len(contacts) else {}
    profile = _obj(contact.get("profile"))
    if not sender:
        username = _str(profile.get("username"))
        handle = f"@{username.lstrip('@')}" if username else ""
        sender = _str(contact.get("wa_id")) or _str(contact.get("user_id")) or handle
    raw = m.get(kind) if kind else None
    subtype, text, media_id = _content(kind, raw)
    context = _obj(m.get("context"))
    context_id = _str(context.get("id"))
    if kind == "reaction":
        context_id = _str(_obj(raw).get("message_id"))
    forwarded = context.get("forwarded") is True or context.get("frequently_forwarded") is True
    return InboundMessage(
        *where,
        _str(m.get("id")),
        sender,
        _str(profile.get("name")),
        kind,
        subtype,
        text,
        _str(m.get("timestamp")),
        context_id,
        forwarded,
        bool(_obj(m.get("referral"))),
        media_id,
        _errors(m.get("errors")),
    )


def _status(s: dict[str, Any], where: _Where) -> StatusUpdate:
    pricing, conversation = _obj(s.get("pricing")), _obj(s.get("conversation"))
    return StatusUpdate(
        *where,
        _str(s.get("id")),
        _str(s.get("status")),
        _str(s.get("recipient_id")) or _str(s.get("recipient_user_id")),
        _str(s.get("timestamp")),
        _str(pricing.get("category")),
        _str(pricing.get("pricing_model")),
        _str(_obj(conversation.get("origin")).get("type")),
        _errors(s.get("errors")),
    )


class _Decoder:
    """Walks entry[] x changes[] once, collecting items and flags."""

    def __init__(self, accounts: Mapping[str, str] | None, seen: SeenIds | None) -> None:
        self.accounts = accounts or {}
        self.seen = seen
        self.items: list[Item] = []
        self.fields: dict[str, None] = {}
        self.flags: set[str] = set()

    def entry(self, raw: Any) -> None:
        if not isinstance(raw, dict):
            self.malformed("", "", f"entry is {type(raw).__name__}, not an object")
            return
        waba_id = _str(raw.get("id"))
        if waba_id == DASHBOARD_TEST_ENTRY_ID:
            self.flags.add("dashboard-test")
        for change in _list(raw.get("changes")):
            if isinstance(change, dict):
                self.change(change, waba_id)
            else:
                self.malformed("", waba_id, f"change is {type(change).__name__}, not an object")

    def malformed(self, field: str, waba_id: str, detail: str) -> None:
        self.items.append(FieldUpdate(field, waba_id, "", "", detail, ()))

    def change(self, change: dict[str, Any], waba_id: str) -> None:
        field = _str(change.get("field"))
        if field:
            self.fields[field] = None
        value = change.get("value")
        if not isinstance(value, dict):
            kind = type(value).__name__ if "value" in change else "missing"
            self.malformed(field, waba_id, f"value is {kind}, not an object")
            return
        metadata = _obj(value.get("metadata"))
        phone_number_id = _str(metadata.get("phone_number_id"))
        if phone_number_id == DASHBOARD_TEST_PHONE_NUMBER_ID:
            self.flags.add("dashboard-test")
        if self.accounts and phone_number_id and phone_number_id not in self.accounts:
            self.flags.add("unknown-phone-number-id")
        if field == "messages":
            account = self.accounts.get(phone_number_id) if phone_number_id else None
            display = _str(metadata.get("display_phone_number"))
            self.messages(value, _Where(field, waba_id, phone_number_id, display, account))
        else:
            raw_keys = tuple(islice(value, _MAX_RAW_KEYS))
            for event, subject, detail in field_updates(field, value):
                self.items.append(FieldUpdate(field, waba_id, event, subject, detail, raw_keys))
        for error in _list(value.get("errors")):
            self.items.append(ChangeError(field, waba_id, _meta_error(error)))

    def messages(self, value: dict[str, Any], where: _Where) -> None:
        contacts = _list(value.get("contacts"))
        by_id = _contacts_by_id(contacts)
        for index, raw in enumerate(_list(value.get("messages"))):
            message = _inbound(_obj(raw), where, contacts, by_id, index)
            if message.message_id == DASHBOARD_TEST_MESSAGE_ID:
                self.flags.add("dashboard-test")
            self.remember(f"message:{message.message_id}" if message.message_id else "")
            self.items.append(message)
        for raw in _list(value.get("statuses")):
            status = _status(_obj(raw), where)
            key = f"status:{status.status_id}:{status.status}" if status.status_id else ""
            self.remember(key)
            self.items.append(status)

    def remember(self, key: str) -> None:
        if key and self.seen is not None and self.seen.seen_before(key):
            self.flags.add("duplicate")


_FLAG_ORDER = ("batch", "dashboard-test", "unknown-phone-number-id", "duplicate")


def _plural(count: int, noun: str, plural: str) -> str:
    return f"{count} {noun if count == 1 else plural}"


def _headline(items: list[Item], fields_seen: tuple[str, ...], entries: int) -> str:
    if not items:
        if "messages" in fields_seen:
            return "messages: no messages or statuses"
        if fields_seen:
            return f"{', '.join(one_line(f, 40) for f in fields_seen)}: nothing to decode"
        return "entry[] is empty" if entries == 0 else "no changes in entry[]"
    if len(items) == 1:
        item = items[0]
        line, field = item.line(), one_line(item.field, 60) or "change"
        return line if line == field or line.startswith(f"{field} ") else f"{field}: {line}"
    counts: dict[str, int] = {}
    for item in items:
        key = item.field if isinstance(item, FieldUpdate) else _KINDS[type(item)]
        counts[key] = counts.get(key, 0) + 1
    words = {
        "message": ("message", "messages"),
        "status": ("status", "statuses"),
        "error": ("error", "errors"),
    }
    parts = [_plural(counts.pop(k), *words[k]) for k in ("message", "status") if k in counts]
    errors = counts.pop("error", 0)
    parts += [f"{n} {one_line(field, 40) or 'change'}" for field, n in counts.items()]
    if errors:
        parts.append(_plural(errors, *words["error"]))
    return f"batch: {', '.join(parts)}"


def _refused(problem: str, obj: str = "") -> WebhookSummary:
    return WebhookSummary(False, problem, obj, (), (), (), problem)


def decode_payload(
    body: bytes,
    *,
    accounts_by_phone_number_id: Mapping[str, str] | None = None,
    seen: SeenIds | None = None,
) -> WebhookSummary:
    """Decode every item of a POST body; never raises, whatever the bytes or the JSON shape."""
    try:
        return _decode(body, accounts_by_phone_number_id, seen)
    except Exception as exc:
        return _refused(f"decoder error: {type(exc).__name__}")


def _decode(
    body: bytes, accounts: Mapping[str, str] | None, seen: SeenIds | None
) -> WebhookSummary:
    if not body:
        return _refused("body is not JSON: empty body")
    try:
        document = json.loads(body)
    except RecursionError:
        return _refused("body is not JSON: nested too deeply")
    except ValueError as exc:
        return _refused(f"body is not JSON: {one_line(str(exc), 120)}")
    if not isinstance(document, dict):
        return _refused(f"JSON is not an object ({type(document).__name__})")
    obj = _str(document.get("object"))
    problem = ""
    if obj != WHATSAPP_OBJECT:
        shown = f"'{one_line(obj, 40)}'" if obj else "missing"
        problem = f"object is {shown}, expected '{WHATSAPP_OBJECT}'"
    entries = document.get("entry")
    if not isinstance(entries, list):
        problem = problem or ("no entry[]" if entries is None else "entry is not a list")
        entries = []
    decoder = _Decoder(accounts, seen)
    for entry in entries:
        decoder.entry(entry)
    if len(decoder.items) > 1:
        decoder.flags.add("batch")
    fields_seen = tuple(decoder.fields)
    headline = problem or _headline(decoder.items, fields_seen, len(entries))
    flags = tuple(flag for flag in _FLAG_ORDER if flag in decoder.flags)
    return WebhookSummary(
        not problem, problem, obj, fields_seen, tuple(decoder.items), flags, headline
    )
