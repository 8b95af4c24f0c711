"""Meta's many non-message fields, read through one table of paths so a new field costs one line."""

from __future__ import annotations

from itertools import islice
from typing import Any, NamedTuple


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


Update = tuple[str, str, str, dict[str, Any]]  # event, subject, detail, the object they were read from


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
    "message_template_quality_update": _rule("new_quality_score", _TEMPLATE, "was {previous_quality_score}"),
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
    "smb_app_state_sync": _rule("action", "contact.phone_number", "{contact.full_name}", each=("state_sync",)),
    "user_preferences": _rule("value", "wa_id|user_id", "{category}", "{detail}", each=("user_preferences",)),
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
    return event, _at(value, rule.subject), "; ".join(detail), value


def field_updates(field: str, value: dict[str, Any]) -> list[Update]:
    """One (event, subject, detail, object) per update a non-message change carries (list items count)."""
    rule = _FIELD_RULES.get(field, _GENERIC)
    updates = [_apply(rule, _obj(x)) for key in rule.each for x in _list(value.get(key))]
    if updates:
        return updates
    update = _apply(_GENERIC if rule.each else rule, value)
    if any(update[:3]):
        return [update]
    keys = ", ".join(islice(value, 8))
    return [("", "", f"keys: {keys}" if keys else "empty value", value)]
