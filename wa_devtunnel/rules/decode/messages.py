"""Decoding of messages and statuses: messages[] and statuses[] of any field, smb_message_echoes'
message_echoes[] and the messages of history threads, whatever their type or shape."""

from __future__ import annotations

from typing import Any, NamedTuple

import orjson

from wa_devtunnel.rules.decode.fields import _list, _obj, _str, when, whole_number
from wa_devtunnel.rules.decode.items import InboundMessage, MetaError, StatusUpdate, one_line, short_id
from wa_devtunnel.rules.decode.leaves import MAX_VALUES, Values, leaf_values


def _meta_error(raw: Any) -> MetaError:
    """An errors[] item; `details` is error_data.details, or the older top-level `details`."""
    if not isinstance(raw, dict):
        return MetaError(None, "", one_line(_str(raw), 200), "")
    details = _str(_obj(raw.get("error_data")).get("details")) or _str(raw.get("details"))
    title, message = _str(raw.get("title")), _str(raw.get("message"))
    return MetaError(whole_number(raw.get("code")), title, message, details)


def _errors(raw: Any) -> tuple[MetaError, ...]:
    if not raw or not isinstance(raw, list):  # the usual case, without building a generator
        return ()
    return tuple(_meta_error(e) for e in raw)


class Content(NamedTuple):
    """The human part of one message type (what Meta nests under the key named by `type`)."""

    subtype: str = ""
    text: str = ""
    media_id: str = ""
    reply_id: str = ""
    reply_description: str = ""
    flow_token: str = ""
    original_message_id: str = ""
    notes: tuple[str, ...] = ()


_NO_CONTENT = Content()
_MEDIA = frozenset({"image", "video", "audio", "sticker", "document"})
_ANSWERS_SHOWN = 6


def _contact_card(card: dict[str, Any]) -> str:
    name = _obj(card.get("name"))
    shown = _str(name.get("formatted_name")) or f"{_str(name.get('first_name'))} {_str(name.get('last_name'))}"
    shown = shown.strip()
    if shown:
        return shown
    for phone in map(_obj, _list(card.get("phones"))):
        number = _str(phone.get("phone")) or _str(phone.get("wa_id"))
        if number:
            return number
    return "vCard" if card.get("vcard") else ""


def _flow_answers(response_json: str) -> tuple[str, str]:
    """(flow_token, "key=value, ...") of an nfm_reply's response_json (a JSON string)."""
    try:
        answers = orjson.loads(response_json)
    except orjson.JSONDecodeError:
        return "", one_line(response_json, 80)
    if not isinstance(answers, dict):
        return "", one_line(response_json, 80)
    token = _str(answers.get("flow_token"))
    shown = [
        f"{key}={_short_value(value)}" for key, value in answers.items() if key != "flow_token" and value is not None
    ]
    more = len(shown) - _ANSWERS_SHOWN
    text = ", ".join(shown[:_ANSWERS_SHOWN]) + (f" (+{more} more)" if more > 0 else "")
    return token, text


def _short_value(value: Any) -> str:
    if isinstance(value, str):
        return one_line(value, 40)
    if isinstance(value, (dict, list)):
        return one_line(orjson.dumps(value).decode(), 40)
    return "true" if value is True else "false" if value is False else str(value)


def _interactive(body: dict[str, Any]) -> Content:
    sub = _str(body.get("type"))
    reply = _obj(body.get(sub)) if sub else {}
    if sub in ("button_reply", "list_reply"):
        return Content(
            sub,
            _str(reply.get("title")),
            reply_id=_str(reply.get("id")),
            reply_description=_str(reply.get("description")),
        )
    if sub == "nfm_reply":
        name, said, response = _str(reply.get("name")), _str(reply.get("body")), _str(reply.get("response_json"))
        token, answers = _flow_answers(response) if response else ("", "")
        words = [f"{name}: {said}" if name and said else name or said]
        if token:
            words.append(f"flow_token {token}")
        if answers:
            words.append(answers)
        return Content(sub, "; ".join(w for w in words if w), flow_token=token)
    if sub == "call_permission_reply":
        answer = _str(reply.get("response"))
        words = [answer]
        expires = when(reply.get("expiration_timestamp"))
        if expires:
            words.append(f"until {expires}")
        source = _str(reply.get("response_source"))
        if source:
            words.append(f"({source})")
        return Content(sub, " ".join(w for w in words if w), reply_id=answer)
    said = _str(reply.get("title")) or _str(reply.get("body")) or _str(reply.get("text"))
    return Content(sub, said, reply_id=_str(reply.get("id")), reply_description=_str(reply.get("description")))


def _order(body: dict[str, Any]) -> Content:
    catalog, products = _str(body.get("catalog_id")), _list(body.get("product_items"))
    count = len(products)
    summary = f"{count} item{'s' * (count != 1)} from catalog {catalog or '?'}"
    totals: dict[str, float] = {}
    for product in map(_obj, products):
        price, quantity = product.get("item_price"), product.get("quantity")
        if isinstance(price, (int, float)) and isinstance(quantity, (int, float)):
            currency = _str(product.get("currency"))
            totals[currency] = totals.get(currency, 0) + price * quantity
    if totals:
        summary += ", total " + " + ".join(f"{amount:g} {currency}".rstrip() for currency, amount in totals.items())
    note = _str(body.get("text"))
    return Content(catalog, f"{summary} ({note})" if note else summary)


def _system(body: dict[str, Any]) -> Content:
    sub = _str(body.get("type"))
    notes: tuple[str, ...] = ()
    new_id = _str(body.get("user_id")) or _str(body.get("new_wa_id")) or _str(body.get("wa_id"))
    said = _str(body.get("body"))
    if new_id and new_id not in said:
        previous = _str(body.get("previous_user_id"))
        notes = (f"now {new_id}" + (f", was {previous}" if previous else ""),)
    return Content(sub, said, notes=notes)


def _content(kind: str, raw: Any) -> Content:
    """Decode the part of a message named by its `type`."""
    if kind == "text":
        body = raw.get("body") if raw.__class__ is dict else None
        # A plain tuple in Content's order: the text message is the hot path, and callers unpack.
        return ("", body if body.__class__ is str else _str(body), "", "", "", "", "", ())  # type: ignore[return-value]
    if kind == "contacts":
        cards = [_contact_card(_obj(c)) for c in _list(raw)]
        named = [c for c in cards if c]
        count = len(cards)
        return Content(text=", ".join(named) or f"{count} contact card{'s' * (count != 1)}")
    body = _obj(raw)
    if kind in _MEDIA:
        sub = _str(body.get("filename")) if kind == "document" else ""
        sub = sub or ("voice" if body.get("voice") is True else "animated" if body.get("animated") is True else "")
        return Content(sub, _str(body.get("caption")), _str(body.get("id")))
    if kind == "interactive":
        return _interactive(body)
    if kind == "button":
        payload = _str(body.get("payload"))
        return Content(payload, _str(body.get("text")), reply_id=payload)
    if kind == "reaction":
        emoji = _str(body.get("emoji"))
        return Content("" if emoji else "removed", emoji)
    if kind == "location":
        lat, lng = _str(body.get("latitude")), _str(body.get("longitude"))
        place = ", ".join(w for w in (_str(body.get("name")), _str(body.get("address"))) if w)
        return Content(f"{lat},{lng}" if lat or lng else "", place)
    if kind == "order":
        return _order(body)
    if kind == "system":
        return _system(body)
    if kind == "unsupported":
        return Content(_str(body.get("type")))
    if kind == "edit":
        inner = _obj(body.get("message"))
        inner_kind = _str(inner.get("type"))
        new = _content(inner_kind, inner.get(inner_kind)) if inner_kind and inner_kind != "edit" else _NO_CONTENT
        return Content(*new)._replace(subtype=inner_kind, original_message_id=_str(body.get("original_message_id")))
    if kind == "revoke":
        return Content(original_message_id=_str(body.get("original_message_id")))
    if kind == "request_welcome" or not body:
        return _NO_CONTENT
    text = _str(body.get("body")) or _str(body.get("caption")) or _str(body.get("text")) or _str(body.get("title"))
    return Content(_str(body.get("type")), text, _str(body.get("id")))


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


_new_tuple = tuple.__new__  # a NamedTuple built from a tuple of all its fields


def _ad(referral: dict[str, Any]) -> tuple[str, ...]:
    """`from an ad "Headline"`, `ad 1202...`, `ctwa_clid …`: what ties the chat to the ad."""
    source_type = _str(referral.get("source_type"))
    headline = _str(referral.get("headline")) or _str(referral.get("body"))
    first = "from an ad" if source_type in ("ad", "") else f"from a {one_line(source_type, 20)}"
    notes = [f'{first} "{one_line(headline, 40)}"' if headline else first]
    source_id = _str(referral.get("source_id"))
    if source_id:
        notes.append(f"{source_type or 'source'} {source_id}")
    clid = _str(referral.get("ctwa_clid"))
    if clid:
        notes.append(f"ctwa_clid {short_id(clid)}")
    if not source_id and not clid and _str(referral.get("source_url")):
        notes.append(one_line(_str(referral.get("source_url")), 50))
    return tuple(notes)


def _product(product: dict[str, Any]) -> str:
    retailer, catalog = _str(product.get("product_retailer_id")), _str(product.get("catalog_id"))
    return f"about product {retailer or '?'}" + (f" of catalog {catalog}" if catalog else "")


def _message_values(m: dict[str, Any], contact: dict[str, Any]) -> Values:
    """The message's leaves, then its contacts[] entry's under `contact.` (user_id, username, ...)."""
    own = leaf_values(m)
    if not contact:
        return own
    return own + tuple((f"contact.{path}", value) for path, value in leaf_values(contact))[: MAX_VALUES - len(own)]


def _inbound(
    m: dict[str, Any],
    where: _Where,
    contacts: list[Any],
    by_id: dict[str, Any],
    index: int,
    values: bool = True,
    echo: bool = False,
    history_status: str | None = None,
) -> InboundMessage:
    """One message; `echo`: the business sent it (smb_message_echoes, a business message of a history
    thread): `from` is the business, `to` the user it went to. `history_status`: a message of a
    history thread (its history_context.status, "" when it has none)."""
    # Runs for every message of every request: plain gets and class checks, no helper per key.
    get = m.get
    kind, sender, message_id, timestamp = get("type"), get("from"), get("id"), get("timestamp")
    if kind.__class__ is not str:
        kind = _str(kind)
    if sender.__class__ is not str or not sender:
        sender = _str(sender) or _str(get("from_user_id"))
    if message_id.__class__ is not str:
        message_id = _str(message_id)
    if timestamp.__class__ is not str:
        timestamp = _str(timestamp)
    recipient = ""
    if echo:
        recipient = _str(get("to")) or _str(get("to_user_id"))
        contact = by_id.get(recipient) if recipient else None
    else:
        contact = by_id.get(sender) if sender else None
    if contact is None:
        contact = _obj(contacts[index]) if index < len(contacts) else {}
    profile = contact.get("profile")
    if profile.__class__ is not dict:
        profile = {}
    raw = get(kind) if kind else None
    if kind == "text":  # the usual message: its body, nothing else to read
        body = raw.get("body") if raw.__class__ is dict else None
        text = body if body.__class__ is str else _str(body)
        subtype = media_id = reply_id = reply_description = flow_token = original_id = ""
        notes: tuple[str, ...] = ()
    else:
        subtype, text, media_id, reply_id, reply_description, flow_token, original_id, notes = _content(kind, raw)
    if not sender and not echo:
        username = _str(profile.get("username"))
        handle = f"@{username.lstrip('@')}" if username else ""
        sender = _str(contact.get("wa_id")) or _str(contact.get("user_id")) or handle
        if not sender and kind == "system":
            sender = _str(_obj(raw).get("previous_user_id"))
    context = m.get("context")
    if context is None:  # the usual case: not a reply, not forwarded
        context_id, forwarded = "", False
    else:
        context = _obj(context)
        context_id = _str(context.get("id"))
        frequently = context.get("frequently_forwarded") is True
        forwarded = context.get("forwarded") is True or frequently
        if frequently:
            notes = (*notes, "frequently forwarded")
        product = context.get("referred_product")
        if product:
            notes = (*notes, _product(_obj(product)))
    if kind == "reaction":
        context_id = _str(_obj(raw).get("message_id"))
    referral = get("referral")
    is_ad = referral is not None and bool(_obj(referral))
    if is_ad:
        notes = (*notes, *_ad(referral))
    if history_status is not None:
        notes = (*notes, f"history {history_status}".rstrip())
    errors, group_id, name = get("errors"), get("group_id"), profile.get("name")
    return _new_tuple(  # InboundMessage(...) without its Python-level __new__
        InboundMessage,
        (
            *where,
            message_id,
            sender,
            name if name.__class__ is str else _str(name),
            kind,
            subtype,
            text,
            timestamp,
            context_id,
            forwarded,
            is_ad,
            media_id,
            _errors(errors) if errors else (),
            _message_values(m, contact) if values else (),
            "echo" if echo else "from",
            recipient,
            _str(group_id) if group_id else "",
            reply_id,
            reply_description,
            original_id,
            flow_token,
            history_status or "",
            notes,
        ),
    )


_PARTICIPANT_KEYS = ("recipient_participant_id", "participant_id", "participant", "recipient_participant_user_id")
_PRICING_KEYS = ("category", "pricing_model", "type", "billable")
_CONVERSATION_KEYS = ("id", "expiration_timestamp", "origin")


def _status(s: dict[str, Any], where: _Where, values: bool = True) -> StatusUpdate:
    # Runs for every status of every request: plain gets and class checks, no helper per key.
    get = s.get
    status_id, status, recipient, timestamp = get("id"), get("status"), get("recipient_id"), get("timestamp")
    if status_id.__class__ is not str:
        status_id = _str(status_id)
    if status.__class__ is not str:
        status = _str(status)
    if recipient.__class__ is not str:
        recipient = _str(recipient)
    if not recipient:
        recipient = _str(get("recipient_user_id"))
    if timestamp.__class__ is not str:
        timestamp = _str(timestamp)
    tag, group_id = get("biz_opaque_callback_data"), get("group_id")
    tag = "" if tag is None else tag if tag.__class__ is str else _str(tag)
    group_id = "" if group_id is None else group_id if group_id.__class__ is str else _str(group_id)
    pricing, conversation = get("pricing"), get("conversation")
    category = model = pricing_type = conversation_id = expiration = origin_type = ""
    billable = None
    if pricing.__class__ is dict:
        category, model, pricing_type, billable = map(pricing.get, _PRICING_KEYS)
        if category.__class__ is not str:
            category = _str(category)
        if model.__class__ is not str:
            model = _str(model)
        if pricing_type.__class__ is not str:
            pricing_type = _str(pricing_type)
        if billable.__class__ is not bool:
            billable = None
    if conversation.__class__ is dict:
        conversation_id, expiration, origin = map(conversation.get, _CONVERSATION_KEYS)
        if conversation_id.__class__ is not str:
            conversation_id = _str(conversation_id)
        if expiration.__class__ is not str:
            expiration = _str(expiration)
        origin_type = _str(origin.get("type")) if origin.__class__ is dict else ""
    if not group_id and get("recipient_type") == "group":
        group_id = recipient
    participant = ""
    if group_id:
        participant = next((p for p in map(_str, map(get, _PARTICIPANT_KEYS)) if p), "")
    errors = get("errors")
    return _new_tuple(  # StatusUpdate(...) without its Python-level __new__
        StatusUpdate,
        (
            *where,
            status_id,
            status,
            recipient,
            timestamp,
            category,
            model,
            origin_type,
            _errors(errors) if errors else (),
            leaf_values(s) if values else (),
            tag,
            pricing_type,
            billable,
            conversation_id,
            expiration,
            group_id,
            participant,
        ),
    )
