"""Builders for what Meta reports back (statuses[], non-message fields), apart from what users send."""

from __future__ import annotations

from typing import Any

from wa_devtunnel.rules.samples.values import (
    DISPLAY_PHONE_NUMBER,
    STATUS_TIMESTAMP,
    USER_WA_ID,
    WAMID,
    meta_error,
)


def status(
    status: str,
    *,
    message_id: str = WAMID,
    recipient_id: str = USER_WA_ID,
    timestamp: str = STATUS_TIMESTAMP,
    error_code: int | None = None,
    category: str = "marketing",
    pricing_model: str = "PMP",
) -> dict[str, Any]:
    """A statuses[] item; billable statuses carry conversation and pricing, failed ones errors."""
    item: dict[str, Any] = {
        "id": message_id,
        "status": status,
        "timestamp": timestamp,
        "recipient_id": recipient_id,
    }
    if status == "failed" and error_code is None:
        error_code = 131049
    if status in ("sent", "delivered", "read"):
        conversation: dict[str, Any] = {"id": "4c3b5e8a2f1d7b9e0a6c4f2d8b1e3a5c"}
        if status == "sent":
            conversation["expiration_timestamp"] = str(int(timestamp) + 86400)
        conversation["origin"] = {"type": category}
        item["conversation"] = conversation
        item["pricing"] = {
            "billable": True,
            "pricing_model": pricing_model,
            "category": category,
            "type": "regular",
        }
    if error_code is not None:
        item["errors"] = [meta_error(error_code)]
    return item


def field_change(field: str, value: dict[str, Any]) -> dict[str, Any]:
    """Any other field's change, e.g. field_change("calls", {...})."""
    return {"value": value, "field": field}


def template_status_update(
    name: str = "order_confirmation",
    event: str = "APPROVED",
    reason: str | None = "NONE",
    *,
    template_id: int = 806312974732579,
    language: str = "en_US",
) -> dict[str, Any]:
    """message_template_status_update: Meta decided on a template (reason "NONE" when approved)."""
    value = {
        "event": event,
        "message_template_id": template_id,
        "message_template_name": name,
        "message_template_language": language,
        "reason": reason,
    }
    return field_change("message_template_status_update", value)


def template_quality_update(
    name: str = "order_confirmation", new_score: str = "YELLOW", previous_score: str = "GREEN"
) -> dict[str, Any]:
    """message_template_quality_update: recipients' feedback moved a template's rating."""
    value = {
        "previous_quality_score": previous_score,
        "new_quality_score": new_score,
        "message_template_id": 806312974732579,
        "message_template_name": name,
        "message_template_language": "en_US",
    }
    return field_change("message_template_quality_update", value)


def template_category_update(
    name: str = "order_confirmation", new: str = "MARKETING", previous: str = "UTILITY"
) -> dict[str, Any]:
    """template_category_update: Meta re-categorised a template (which changes its price)."""
    value = {
        "message_template_id": 806312974732579,
        "message_template_name": name,
        "message_template_language": "en_US",
        "previous_category": previous,
        "new_category": new,
    }
    return field_change("template_category_update", value)


def account_update(event: str = "ACCOUNT_VIOLATION", **extra: Any) -> dict[str, Any]:
    """account_update; ACCOUNT_VIOLATION gets violation_info unless `extra` gives the value."""
    value: dict[str, Any] = {"event": event}
    if event == "ACCOUNT_VIOLATION" and not extra:
        extra = {"violation_info": {"violation_type": "SCAM"}}
    value.update(extra)
    return field_change("account_update", value)


def phone_number_quality_update(
    event: str = "UPGRADE",
    current_limit: str = "TIER_10K",
    *,
    display_phone_number: str = DISPLAY_PHONE_NUMBER,
) -> dict[str, Any]:
    """phone_number_quality_update: the number's messaging limit or quality rating changed."""
    value = {
        "display_phone_number": display_phone_number,
        "event": event,
        "current_limit": current_limit,
    }
    return field_change("phone_number_quality_update", value)
