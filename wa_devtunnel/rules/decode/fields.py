"""Meta's non-message fields: one reader per documented field, and a faithful generic reader for the
rest (and for what a documented field adds later): every update's scalars shown, lists itemised."""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator
from typing import Any

from wa_devtunnel.rules.decode.items import short_id


def _obj(value: Any) -> dict[str, Any]:
    return value if isinstance(value, dict) else {}


def _list(value: Any) -> list[Any]:
    return value if isinstance(value, list) else []


_NUMBERS = (int, float)


def _str(value: Any) -> str:
    """Text of a JSON scalar ("" for null, booleans, objects and arrays).

    Strings come back as they are: the decoder's documents never hold lone surrogates (orjson
    refuses them and payload._load_json replaces them on its json.loads path).
    """
    if value.__class__ is str:
        return value
    if isinstance(value, str):
        return str(value)
    if value is None or isinstance(value, bool) or not isinstance(value, _NUMBERS):  # None: the usual miss
        return ""
    return str(value)


def _texts(value: dict[str, Any], keys: tuple[str, ...]) -> list[str]:
    """_str of several keys in one call: the per-message hot path reads many scalars at once."""
    return [v if v.__class__ is str else _str(v) for v in map(value.get, keys)]


def whole_number(value: Any) -> int | None:
    """An integer Meta sends as a number or as digits in a string (error codes, Unix timestamps); else None."""
    if isinstance(value, int) and not isinstance(value, bool):
        return value
    if isinstance(value, str) and 0 < len(value) <= 12 and value.isdigit() and value.isascii():
        return int(value)
    return None


def when(value: Any) -> str:
    """A time as `2026-04-19 13:59 UTC`: Unix seconds (number or digits) or a UTC ISO 8601 text
    (`2026-04-19T13:59:20+0000`); any other text as it is."""
    text = _str(value)
    if text.isdigit() and 9 <= len(text) <= 10:
        return time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime(int(text)))
    if len(text) >= 16 and text[4] == "-" and text[10] == "T" and text.endswith(("+0000", "+00:00", "Z")):
        return f"{text[:10]} {text[11:16]} UTC"
    return text


# An update: event, subject, detail, the object it was read from, direction (calls: "from" / "by business to").
Update = tuple[str, str, str, dict[str, Any], str]
_QUIET = frozenset({"messaging_product", "metadata"})  # shown elsewhere (the envelope) or constant
_SHOWN_SCALARS = 10


_LINE_DEPTH = 8  # a line names leaves this deep at most (all of them are in `values`)


def _scalars(node: Any, path: str = "", skip: frozenset[str] = _QUIET, depth: int = 0) -> Iterator[tuple[str, str]]:
    """(path, text) of the scalar leaves of `node`, depth first; lists of scalars joined by ","."""
    if depth > _LINE_DEPTH:
        yield path, "…"
    elif isinstance(node, dict):
        prefix = f"{path}." if path else ""
        for key, value in node.items():
            if key not in skip:
                yield from _scalars(value, prefix + key, frozenset(), depth + 1)
    elif isinstance(node, list):
        if node and not any(isinstance(v, (dict, list)) for v in node):
            yield path, ",".join(_text(v) for v in node)
        else:
            for index, value in enumerate(node):
                yield from _scalars(value, f"{path}[{index}]", frozenset(), depth + 1)
    elif node is not None and node != "":
        yield path, _text(node)


def _text(value: Any) -> str:
    return "true" if value is True else "false" if value is False else "null" if value is None else _str(value)


def _rest(node: dict[str, Any], used: frozenset[str] | set[str]) -> list[str]:
    """`key=value` of what no reader consumed: a key Meta adds tomorrow still shows. Ids come last
    (the line is cut; an id is rarely what explains an update), all of them are in `values`."""
    words, ids = [], []
    for path, text in _scalars(node, "", _QUIET | used):
        (ids if path.endswith("id") else words).append(f"{path}={text}")
        if len(words) + len(ids) >= _SHOWN_SCALARS:
            break
    return words + ids


def _joined(parts: list[str]) -> str:
    return "; ".join(p for p in parts if p)


def _first(value: dict[str, Any], *keys: str) -> str:
    for key in keys:
        text = _str(value.get(key))
        if text:
            return text
    return ""


# --- templates ----------------------------------------------------------------------------------

_TEMPLATE_IDS = frozenset({"message_template_name", "message_template_id", "message_template_language"})


def _template_name(value: dict[str, Any]) -> str:
    return _first(value, "message_template_name", "message_template_id")


def _template_status(value: dict[str, Any]) -> Update:
    parts = []
    reason = _str(value.get("reason"))
    if reason and reason != "NONE":
        parts.append(reason)
    rejection = _obj(value.get("rejection_info"))
    if rejection:
        said = _first(rejection, "reason", "title")
        advice = _first(rejection, "recommendation", "description")
        parts.append(" ".join(w for w in (said, f"Recommendation: {advice}" if advice else "") if w))
    disabled = _obj(value.get("disable_info"))
    if disabled:
        parts.append(f"disabled {when(disabled.get('disable_date'))}".rstrip())
    other = _obj(value.get("other_info"))
    if other:
        parts.append(": ".join(w for w in (_str(other.get("title")), _str(other.get("description"))) if w))
    category = _str(value.get("message_template_category"))
    if category:
        parts.append(category)
    used = {"event", "reason", "rejection_info", "disable_info", "other_info", "message_template_category"}
    parts += _rest(value, _TEMPLATE_IDS | used)
    return _str(value.get("event")), _template_name(value), _joined(parts), value, ""


def _template_quality(value: dict[str, Any]) -> Update:
    previous = _str(value.get("previous_quality_score"))
    parts = [f"was {previous}" if previous else ""]
    parts += _rest(value, _TEMPLATE_IDS | {"previous_quality_score", "new_quality_score"})
    return _str(value.get("new_quality_score")), _template_name(value), _joined(parts), value, ""


def _template_components(value: dict[str, Any]) -> Update:
    parts = []
    for key, label in (
        ("message_template_title", "title"),
        ("message_template_element", "body"),
        ("message_template_footer", "footer"),
    ):
        text = _str(value.get(key))
        if text:
            parts.append(f"{label} {text}")
    buttons = _list(value.get("message_template_buttons"))
    if buttons:
        shown = [_first(_obj(b), "message_template_button_text", "text") for b in buttons]
        parts.append(f"buttons {', '.join(s for s in shown if s) or len(buttons)}")
    used = {"message_template_title", "message_template_element", "message_template_footer", "message_template_buttons"}
    parts += _rest(value, _TEMPLATE_IDS | used)
    return "", _template_name(value), _joined(parts), value, ""


def _template_category(value: dict[str, Any]) -> Update:
    new, correct = _str(value.get("new_category")), _str(value.get("correct_category"))
    scheduled = value.get("category_update_timestamp")
    parts = []
    if correct and (scheduled is not None or correct != new):
        # An impending change: new_category is still the current one, correct_category is coming.
        event = correct
        parts.append(f"scheduled {when(scheduled)}".rstrip() if scheduled is not None else "scheduled")
        parts.append(f"now {new}" if new else "")
    else:
        event = new
        previous = _str(value.get("previous_category"))
        parts.append(f"was {previous}" if previous else "")
    used = {"new_category", "correct_category", "previous_category", "category_update_timestamp"}
    parts += _rest(value, _TEMPLATE_IDS | used)
    return event, _template_name(value), _joined(parts), value, ""


# --- account and phone numbers ------------------------------------------------------------------


def _restrictions(items: list[Any]) -> str:
    """`restricted: ADD_PHONE_NUMBER_ACTION, BIZ_INITIATED_MESSAGING until 2026-12-21 09:30 UTC`:
    every restriction, grouped by expiry (RESTRICTED_ dropped, it is in `values`)."""
    by_expiry: dict[str, list[str]] = {}
    for item in map(_obj, items):
        kind = _str(item.get("restriction_type")) or "restriction"
        by_expiry.setdefault(when(item.get("expiration")), []).append(kind.removeprefix("RESTRICTED_"))
    shown = [", ".join(kinds) + (f" until {until}" if until else "") for until, kinds in by_expiry.items()]
    return "restricted: " + "; ".join(shown) if shown else ""


def _ban(info: dict[str, Any]) -> str:
    state = info.get("waba_ban_state")
    states = ",".join(map(_str, state)) if isinstance(state, list) else _str(state)
    date = _str(info.get("waba_ban_date"))
    return f"ban {states}" + (f" on {date}" if date else "") if states or date else ""


def _brief(label: str, node: Any) -> str:
    """`label k v, k2 v2` of a sub-object's scalars (times readable), for the line."""
    pairs = [
        f"{path} {when(text) if path.endswith(('time', 'timestamp', 'date')) else text}"
        for path, text in _scalars(node)
    ]
    return f"{label} {', '.join(pairs[:_SHOWN_SCALARS])}" if pairs else ""


def _disconnection(info: dict[str, Any]) -> str:
    reason, by = _str(info.get("reason")), _str(info.get("initiated_by"))
    rest = _rest(info, frozenset({"reason", "initiated_by"}))
    return " ".join(w for w in ("disconnected:", reason, f"by {by}" if by else "", *rest) if w)


def _certification(info: dict[str, Any]) -> str:
    reasons = [r for r in map(_str, _list(info.get("rejection_reasons"))) if r and r != "NONE"]
    words = ["certification", _str(info.get("status")) or "?"]
    if reasons:
        words.append(f"({', '.join(reasons)})")
    client = _str(info.get("client_business_id"))
    if client:
        words.append(f"for business {client}")
    return " ".join(words)


def _pricing_tier(info: dict[str, Any]) -> str:
    words = ["pricing tier", _str(info.get("tier")) or "?"]
    for key, label in (("pricing_category", "for"), ("region", "in"), ("effective_month", "from")):
        text = _str(info.get(key))
        if text:
            words.append(f"{label} {text}")
    return " ".join(words)


_ACCOUNT_PARTS: dict[str, Callable[[Any], str]] = {
    "violation_info": lambda v: f"violation {_str(_obj(v).get('violation_type'))}".rstrip(),
    "ban_info": lambda v: _ban(_obj(v)),
    "restriction_info": lambda v: _restrictions(_list(v) or [v]),
    "disconnection_info": lambda v: _disconnection(_obj(v)),
    "partner_client_certification_info": lambda v: _certification(_obj(v)),
    "volume_tier_info": lambda v: _pricing_tier(_obj(v)),
    "auth_international_rate_eligibility": lambda v: _brief("auth international:", v),
    "lock_info": lambda v: _brief("lock:", v),
}
_ACCOUNT_LAST = ("waba_info",)  # ids of the account itself: after what explains the event


def _account_update(value: dict[str, Any]) -> Update:
    parts, last = [], []
    for key, node in value.items():
        if key in ("event", "phone_number") or key in _QUIET:
            continue
        reader = _ACCOUNT_PARTS.get(key)
        if reader is not None:
            part = reader(node)
            if key == "restriction_info" and value.get("event") == "ACCOUNT_RESTRICTION":
                part = part.removeprefix("restricted: ")  # the event says it already
            parts.append(part)
        elif isinstance(node, (dict, list)):
            (last if key in _ACCOUNT_LAST else parts).append(_brief(f"{key.removesuffix('_info')}:", node))
        elif node is not None and node != "":
            parts.append(f"{key} {_text(node)}")
    return _str(value.get("event")), _str(value.get("phone_number")), _joined(parts + last), value, ""


def _account_alerts(value: dict[str, Any]) -> Update:
    alert = _obj(value.get("alert_info"))
    parts = [_str(alert.get("alert_severity"))]
    status = _str(alert.get("alert_status"))
    if status and status != "ACTIVE":
        parts.append(status)
    parts.append(_str(alert.get("alert_description")))
    parts += [
        f"alert_info.{p}"
        for p in _rest(alert, frozenset({"alert_type", "alert_severity", "alert_status", "alert_description"}))
    ]
    parts += _rest(value, frozenset({"alert_info", "entity_id"}))
    return _str(alert.get("alert_type")), _str(value.get("entity_id")), _joined(parts), value, ""


def _limit(value: Any) -> str:
    text = _str(value)
    return "unlimited" if text == "-1" else text


def _capability(value: dict[str, Any]) -> Update:
    parts = []
    per_business = value.get("max_daily_conversations_per_business")
    if per_business is not None:
        parts.append(f"messaging limit {_limit(per_business)}/day")
    for key, label in (
        ("max_phone_numbers_per_business", "numbers per business"),
        ("max_phone_numbers_per_waba", "numbers per WABA"),
    ):
        if value.get(key) is not None:
            parts.append(f"{label} {_limit(value.get(key))}")
    per_phone = value.get("max_daily_conversation_per_phone")
    if per_phone is not None:  # removed by Meta in February 2026: shown, and said so
        parts.append(f"deprecated per-phone limit {_limit(per_phone)}")
    used = {
        "max_daily_conversations_per_business",
        "max_daily_conversation_per_phone",
        "max_phone_numbers_per_business",
        "max_phone_numbers_per_waba",
    }
    parts += _rest(value, frozenset(used))
    return _str(value.get("event")), "", _joined(parts), value, ""


def _phone_quality(value: dict[str, Any]) -> Update:
    parts = []
    per_business = value.get("max_daily_conversations_per_business")
    tier = _str(value.get("current_limit"))
    if per_business is not None:
        parts.append(f"limit {_limit(per_business)}/day" + (f" ({tier})" if tier else ""))
    elif tier:
        parts.append(f"limit {tier}")
    old = _str(value.get("old_limit"))
    if old:
        parts.append(f"was {old}")
    used = {"event", "display_phone_number", "current_limit", "old_limit", "max_daily_conversations_per_business"}
    parts += _rest(value, frozenset(used))
    return _str(value.get("event")), _str(value.get("display_phone_number")), _joined(parts), value, ""


def _phone_name(value: dict[str, Any]) -> Update:
    parts = [_str(value.get("requested_verified_name"))]
    reason = _str(value.get("rejection_reason"))
    if reason and reason != "NONE":
        parts.append(reason)
    used = {"decision", "display_phone_number", "requested_verified_name", "rejection_reason"}
    parts += _rest(value, frozenset(used))
    return _str(value.get("decision")), _str(value.get("display_phone_number")), _joined(parts), value, ""


def _security(value: dict[str, Any]) -> Update:
    requester = _str(value.get("requester"))
    parts = [f"by {requester}" if requester else ""]
    parts += _rest(value, frozenset({"event", "display_phone_number", "requester"}))
    return _str(value.get("event")), _str(value.get("display_phone_number")), _joined(parts), value, ""


def _username(value: dict[str, Any]) -> Update:
    name = _first(value, "username", "business_username")
    subject = f"@{name.lstrip('@')}" if name else _str(value.get("display_phone_number"))
    parts = [_str(value.get("display_phone_number")) if name else ""]
    parts += _rest(value, frozenset({"username", "business_username", "display_phone_number", "status", "event"}))
    return _first(value, "status", "event", "decision"), subject, _joined(parts), value, ""


def _percent(value: Any) -> str:
    text = _str(value)
    return f"{text}%" if text else "?"


def _flows(value: dict[str, Any]) -> Update:
    """Status changes (old -> new) and endpoint alerts (state, rate against threshold, per error type)."""
    parts = []
    message = _str(value.get("message"))
    old, new = _str(value.get("old_status")), _str(value.get("new_status"))
    state = _str(value.get("alert_state"))
    used = {"event", "flow_id", "message", "old_status", "new_status", "alert_state", "errors", "threshold"}
    if state:
        parts.append(state)
    limit = value.get("threshold")
    for key in ("error_rate", "p50_latency", "p90_latency", "availability", "requests_count"):
        if value.get(key) is not None:
            used.add(key)
            shown = _percent(value.get(key)) if key in ("error_rate", "availability") else _text(value.get(key))
            parts.append(f"{key.replace('_', ' ')} {shown}")
    if limit is not None:
        parts.append(f"threshold {_text(limit)}")
    kinds = []
    for error in map(_obj, _list(value.get("errors"))):
        count = error.get("error_count")
        kind = f"{_first(error, 'error_type', 'code') or '?'} {_percent(error.get('error_rate'))}"
        kinds.append(kind + (f" x{_text(count)}" if count is not None else ""))
    if kinds:
        parts.append(", ".join(kinds))
    if message:
        parts.append(message)
    elif old or new:
        parts.append(f"{old or '?'} -> {new or '?'}")
    parts += _rest(value, frozenset(used))
    return _str(value.get("event")), _str(value.get("flow_id")), _joined(parts), value, ""


# --- list-valued fields: one update per list item -----------------------------------------------


def _call(call: dict[str, Any]) -> Update:
    direction = _str(call.get("direction"))
    business = direction == "BUSINESS_INITIATED"
    user = _first(call, "to", "to_user_id") if business else _first(call, "from", "from_user_id")
    parts = [_str(call.get("status"))]
    duration = _str(call.get("duration"))
    if duration:
        parts.append(f"{duration} s")
    tag = _str(call.get("biz_opaque_callback_data"))
    if tag:
        parts.append(f"callback {tag}")
    call_id = _str(call.get("id"))
    if call_id:
        parts.append(short_id(call_id))
    if direction and direction not in ("BUSINESS_INITIATED", "USER_INITIATED"):
        parts.append(direction)
    errors = [_first(_obj(e), "code") + " " + _first(_obj(e), "title", "message") for e in _list(call.get("errors"))]
    parts += [f"error {e.strip()}" for e in errors]
    return (
        _str(call.get("event")),
        user,
        _joined(parts),
        call,
        "by business to" if business else "from" if direction == "USER_INITIATED" or user else "",
    )


def _state_sync(item: dict[str, Any]) -> Update:
    contact = _obj(item.get("contact"))
    name = _first(contact, "full_name", "first_name")
    parts = [name, _str(item.get("type")) if _str(item.get("type")) != "contact" else ""]
    parts += _rest(item, frozenset({"action", "contact", "type", "metadata"}))
    return _str(item.get("action")), _str(contact.get("phone_number")), _joined(parts), item, ""


def _preference(item: dict[str, Any]) -> Update:
    parts = [_str(item.get("category")), _str(item.get("detail"))]
    parts += _rest(item, frozenset({"value", "wa_id", "user_id", "category", "detail", "timestamp"}))
    return _str(item.get("value")), _first(item, "wa_id", "user_id"), _joined(parts), item, ""


def _participants(label: str, items: list[Any]) -> str:
    shown = [
        _first(_obj(p), "wa_id", "user_id", "input", "phone_number") if isinstance(p, dict) else _str(p) for p in items
    ]
    return f"{label} {', '.join(s for s in shown if s) or len(items)}" if items else ""


_GROUP_LISTS = ("added_participants", "removed_participants", "failed_participants", "join_requests")


_GROUP_SETTINGS = ("group_subject", "group_description", "group_profile_picture")


def _group_setting(key: str, node: Any) -> str:
    """`subject "New name"`, `description failed 131009 ...`: a group setting and whether it took."""
    setting = _obj(node)
    label = key.removeprefix("group_").replace("_", " ")
    text = _str(setting.get("text"))
    words = [label, f'"{text}"' if text else ""]
    if setting.get("update_successful") is False:
        words.append("failed")
    for error in map(_obj, _list(setting.get("errors"))):
        words.append(f"{_first(error, 'code')} {_first(error, 'title', 'message')}".strip())
    return " ".join(w for w in words if w)


def _group(item: dict[str, Any]) -> Update:
    parts = [_group_setting(key, item[key]) for key in _GROUP_SETTINGS if key in item]
    for key in _GROUP_LISTS:
        parts.append(_participants(key.replace("_", " "), _list(item.get(key))))
    initiated = _str(item.get("initiated_by"))
    if initiated:
        parts.append(f"by {initiated}")
    for error in map(_obj, _list(item.get("errors"))):
        parts.append(f"error {_first(error, 'code')} {_first(error, 'title', 'message')}".rstrip())
    used = {"type", "group_id", "initiated_by", "errors", "timestamp", *_GROUP_LISTS, *_GROUP_SETTINGS}
    parts += _rest(item, frozenset(used))
    group_id = _str(item.get("group_id"))
    return _first(item, "type", "event", "status"), short_id(group_id) if group_id else "", _joined(parts), item, ""


def history_chunk(chunk: dict[str, Any]) -> Update:
    """A `history` chunk's progress (its threads' messages are decoded as messages)."""
    meta = _obj(chunk.get("metadata"))
    parts = []
    for key, label in (("phase", "phase"), ("chunk_order", "chunk"), ("progress", "progress")):
        text = _str(meta.get(key))
        if text:
            parts.append(f"{label} {text}")
    threads = _list(chunk.get("threads"))
    if threads:
        count = sum(len(_list(_obj(t).get("messages"))) for t in threads)
        parts.append(f"{len(threads)} thread{'s' * (len(threads) != 1)}, {count} message{'s' * (count != 1)}")
    parts += _rest(chunk, frozenset({"metadata", "threads", "errors"}))
    return "", "", _joined(parts), chunk, ""


def _generic(value: dict[str, Any]) -> Update:
    """Any other field or list item: its event-like scalars first, then every other scalar with its path."""
    event = _first(value, "event", "decision", "status", "type")
    subject = _first(value, "display_phone_number", "username", "group_id", "flow_id", "solution_id", "entity_id")
    used = {k for k in ("event", "decision", "status", "type") if _str(value.get(k)) == event and event}
    used |= {
        k
        for k in ("display_phone_number", "username", "group_id", "flow_id", "solution_id", "entity_id")
        if _str(value.get(k)) == subject and subject
    }
    return event, subject, _joined(_rest(value, frozenset(used) | _DECODED_AS_ITEMS)), value, ""


_DECODED_AS_ITEMS = frozenset({"errors", "messages", "statuses", "message_echoes", "history"})
Reader = Callable[[dict[str, Any]], Update]
# Fields read as a whole value.
_VALUE_READERS: dict[str, Reader] = {
    "message_template_status_update": _template_status,
    "message_template_quality_update": _template_quality,
    "message_template_components_update": _template_components,
    "template_category_update": _template_category,
    "account_update": _account_update,
    "account_alerts": _account_alerts,
    "business_capability_update": _capability,
    "phone_number_quality_update": _phone_quality,
    "phone_number_name_update": _phone_name,
    "security": _security,
    "business_username_update": _username,
    "flows": _flows,
}
# Fields whose value holds lists of updates: (list key, reader of one item).
_LIST_READERS: dict[str, tuple[tuple[str, Reader], ...]] = {
    "calls": (("calls", _call),),
    "smb_app_state_sync": (("state_sync", _state_sync),),
    "user_preferences": (("user_preferences", _preference),),
}
_GROUP_READERS = (("groups", _group),)
# Lists that are never updates of their own (contacts explain messages, errors become ChangeError items,
# messages/statuses/message_echoes become message and status items).
NOT_UPDATES = frozenset({"contacts", "errors", "messages", "statuses", "message_echoes", "metadata", "history"})


def field_updates(field: str, value: dict[str, Any], decoded_elsewhere: bool = False) -> list[Update]:
    """One update per thing a non-message change reports: a documented field by its reader; any other
    field by the generic reader, one update per item of each list of objects it holds, plus one for
    the value's own scalars. `decoded_elsewhere`: its messages, statuses, echoes or history were
    decoded as messages and statuses, so a value with nothing else gives no update."""
    reader = _VALUE_READERS.get(field)
    if reader is not None:
        return [reader(value)]
    lists = _LIST_READERS.get(field) or (_GROUP_READERS if field.startswith("group_") else None)
    updates: list[Update] = []
    itemised: set[str] = set()
    if lists is not None:
        for key, item_reader in lists:
            found = _list(value.get(key))
            if found:
                itemised.add(key)
                updates += [item_reader(_obj(x)) for x in found]
    for key, node in value.items():
        if key in itemised or key in NOT_UPDATES:
            continue
        if isinstance(node, list) and node and all(isinstance(x, dict) for x in node):
            itemised.add(key)
            updates += [_generic(x) for x in node]
    if itemised or decoded_elsewhere:
        rest = {k: v for k, v in value.items() if k not in itemised and k not in NOT_UPDATES and k not in _QUIET}
        if rest:  # what the value says beside its lists: kept, as one more update
            updates.append(_generic(rest))
        return updates
    if not value:
        return [("", "", "empty value", value, "")]
    update = _generic(value)
    if any(update[:3]):
        return [update]
    return [("", "", f"keys: {', '.join(list(value)[:8])}", value, "")]
