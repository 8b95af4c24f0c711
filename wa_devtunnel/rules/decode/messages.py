"""Decoding of the `messages` field: every messages[] and statuses[] item, whatever its type or shape."""

from __future__ import annotations

from typing import Any, NamedTuple

from wa_devtunnel.rules.decode.fields import _list, _obj, _str, _texts
from wa_devtunnel.rules.decode.items import InboundMessage, MetaError, StatusUpdate, one_line
from wa_devtunnel.rules.decode.leaves import leaf_values


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
    if not raw or not isinstance(raw, list):  # the usual case, without building a generator
        return ()
    return tuple(_meta_error(e) for e in raw)


Content = tuple[str, str, str]  # subtype, text, media_id


def _content(kind: str, raw: Any) -> Content:
    """The human part of one message type (what Meta nests under the key named by `type`)."""
    if kind == "contacts":
        cards = [_obj(_obj(c).get("name")) for c in _list(raw)]
        names = [
            _str(n.get("formatted_name")) or f"{_str(n.get('first_name'))} {_str(n.get('last_name'))}" for n in cards
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


_MESSAGE_KEYS = ("type", "from", "id", "timestamp")


def _inbound(
    m: dict[str, Any], where: _Where, contacts: list[Any], by_id: dict[str, Any], index: int, values: bool = True
) -> InboundMessage:
    kind, sender, message_id, timestamp = _texts(m, _MESSAGE_KEYS)
    sender = sender or _str(m.get("from_user_id"))
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
    context = m.get("context")
    if context is None:  # the usual case: not a reply, not forwarded
        context_id, forwarded = "", False
    else:
        context = _obj(context)
        context_id = _str(context.get("id"))
        forwarded = context.get("forwarded") is True or context.get("frequently_forwarded") is True
    if kind == "reaction":
        context_id = _str(_obj(raw).get("message_id"))
    referral = m.get("referral")
    errors = m.get("errors")
    return InboundMessage(
        *where,
        message_id,
        sender,
        _str(profile.get("name")),
        kind,
        subtype,
        text,
        timestamp,
        context_id,
        forwarded,
        referral is not None and bool(_obj(referral)),
        media_id,
        _errors(errors) if errors else (),
        leaf_values(m) if values else (),
        group_id=_str(m.get("group_id")),
    )


def _status(s: dict[str, Any], where: _Where, values: bool = True) -> StatusUpdate:
    pricing, conversation = _obj(s.get("pricing")), _obj(s.get("conversation"))
    billable = pricing.get("billable")
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
        leaf_values(s) if values else (),
        _str(s.get("biz_opaque_callback_data")),
        _str(pricing.get("type")),
        billable if billable.__class__ is bool else None,
        _str(conversation.get("id")),
        _str(conversation.get("expiration_timestamp")),
        _str(s.get("group_id")),
        _str(s.get("participant")) or _str(s.get("participant_user_id")),
    )
