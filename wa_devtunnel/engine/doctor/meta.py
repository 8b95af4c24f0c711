"""`doctor`'s Graph API checks: token, app subscription, routing, fields, WABA and phone number."""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime, timedelta

from wa_devtunnel.engine.doctor.report import CheckResult, Status
from wa_devtunnel.engine.meta.graph import (
    AppSubscription,
    GraphClient,
    GraphError,
    GraphUnreachable,
    TokenInfo,
    advice_for,
)
from wa_devtunnel.settings import Settings, mask

EXPIRY_WARNING = timedelta(days=7)
TOKEN_HOWTO = "Business Settings > System users > Generate token (whatsapp_business_management)"
DASHBOARD = "App Dashboard > WhatsApp > Configuration"
ERROR_GUIDE = "https://developers.facebook.com/docs/graph-api/guides/error-handling"
NAMES = (
    "access token",
    "app subscription",
    "callback URL",
    "messages field",
    "app subscribed to WABA",
    "phone number in WABA",
)


def _failed(name: str, error: GraphError, settings: Settings) -> CheckResult:
    """Meta's error verbatim, and what to do about it; no answer at all ends the Graph checks (graph_checks)."""
    if isinstance(error, GraphUnreachable):
        raise error
    fix = advice_for(error, settings.waba_id) or f"look up Meta's error code above in {ERROR_GUIDE}"
    return CheckResult(name, Status.FAIL, str(error), fix)


async def _token(graph: GraphClient, settings: Settings) -> tuple[CheckResult, TokenInfo | None]:
    name = NAMES[0]
    if not settings.access_token:
        return CheckResult(name, Status.SKIP, "WHATSAPP_ACCESS_TOKEN is not set", f"{TOKEN_HOWTO}, then .env"), None
    shown = mask(settings.access_token)
    try:
        info = await graph.debug_token()
    except GraphError as exc:
        return _failed(name, exc, settings), None
    if not info.valid:
        return CheckResult(
            name,
            Status.FAIL,
            f"{shown} is not valid: {info.error or 'Meta says is_valid=false'}",
            f"new token: {TOKEN_HOWTO}",
        ), None
    what = (
        f"{shown}: {info.type or 'unknown'} token of {info.application or 'app'} ({info.app_id}), {info.expiry_text()}"
    )
    if settings.app_id and info.app_id and info.app_id != settings.app_id:
        return CheckResult(
            name, Status.WARN, f"{what}; but META_APP_ID is {settings.app_id}", "use a token of the same app"
        ), info
    if info.scopes and "whatsapp_business_management" not in info.scopes:
        return CheckResult(
            name, Status.WARN, f"{what}; lacks whatsapp_business_management", f"new token with it: {TOKEN_HOWTO}"
        ), info
    if info.expires_at is not None and info.expires_at - datetime.now(UTC) < EXPIRY_WARNING:
        return CheckResult(name, Status.WARN, what, f"use a system-user token that never expires: {TOKEN_HOWTO}"), info
    return CheckResult(name, Status.PASS, what), info


async def _subscription(graph: GraphClient, settings: Settings) -> tuple[CheckResult, AppSubscription | None]:
    name = NAMES[1]
    if not (settings.app_id and settings.app_secret):
        fix = "set META_APP_ID and WHATSAPP_APP_SECRET (App Dashboard > App settings > Basic)"
        return CheckResult(name, Status.SKIP, "needs the app access token", fix), None
    try:
        subscription = await graph.waba_app_subscription()
    except GraphError as exc:
        return _failed(name, exc, settings), None
    if subscription is None:
        return CheckResult(
            name,
            Status.FAIL,
            f"app {settings.app_id} has no webhook subscription for whatsapp_business_account",
            f"`wa-devtunnel meta subscribe --scope app`, or {DASHBOARD} > Edit",
        ), None
    fields = ", ".join(subscription.field_names) or "no fields"
    detail = f"callback {subscription.callback_url} ({fields})"
    if not subscription.active:
        return CheckResult(
            name, Status.WARN, f"inactive: {detail}", f"verify the callback again in {DASHBOARD}"
        ), subscription
    return CheckResult(name, Status.PASS, detail), subscription


def _messages_field(result: CheckResult, subscription: AppSubscription | None) -> CheckResult:
    name = NAMES[3]
    if subscription is None:
        return CheckResult(name, Status.SKIP, f"no app subscription to look at ({result.status.value} above)")
    if "messages" not in subscription.field_names:
        return CheckResult(
            name,
            Status.FAIL,
            f"field `messages` is not subscribed (only: {', '.join(subscription.field_names) or 'none'})",
            f"{DASHBOARD} > Webhook fields > messages > Subscribe (or `wa-devtunnel meta subscribe --scope app`)",
        )
    return CheckResult(name, Status.PASS, "field `messages` is subscribed")


async def _routing(
    graph: GraphClient, settings: Settings, ours: str | None, subscription: AppSubscription | None, token_ok: bool
) -> CheckResult:
    name = NAMES[2]
    if ours is None:
        return CheckResult(
            name, Status.SKIP, "no running wa-devtunnel and no --url to compare", "start `wa-devtunnel` or pass --url"
        )
    try:
        if settings.phone_number_id and token_ok:
            config = await graph.phone_webhook_configuration(settings.phone_number_id)
            where, level = config.effective()
            levels = {config.application: "app callback", config.whatsapp_business_account: "WABA override"}
            subject = f"phone number {settings.phone_number_id}"
        else:
            where = subscription.callback_url if subscription else None
            level, levels, subject = "app callback", {}, "this app"
    except GraphError as exc:
        return _failed(name, exc, settings)
    if where == ours:
        return CheckResult(name, Status.PASS, f"Meta sends `messages` for {subject} to {ours} ({level})")
    fix = "`wa-devtunnel meta subscribe` (a phone number override diverts only this number)"
    if where is None:
        return CheckResult(name, Status.FAIL, f"Meta has no callback URL for {subject}", fix)
    if ours in levels:
        return CheckResult(
            name, Status.FAIL, f"{ours} is the {levels[ours]}, but the {level} {where} takes precedence", fix
        )
    return CheckResult(name, Status.FAIL, f"Meta sends `messages` for {subject} to {where} ({level}), not {ours}", fix)


async def _waba(graph: GraphClient, settings: Settings, info: TokenInfo | None, token_ok: bool) -> CheckResult:
    name = NAMES[4]
    if not settings.waba_id:
        return CheckResult(
            name, Status.SKIP, "WHATSAPP_BUSINESS_ACCOUNT_ID is not set", "copy it from WhatsApp > API Setup"
        )
    if not token_ok:
        return CheckResult(name, Status.SKIP, "needs a valid access token")
    app_id = settings.app_id or (info.app_id if info else "")
    try:
        apps = await graph.waba_subscribed_apps(settings.waba_id)
    except GraphError as exc:
        return _failed(name, exc, settings)
    names = ", ".join(f"{a.name} ({a.app_id})" for a in apps) or "none"
    if any(a.app_id == app_id for a in apps) or (not app_id and apps):
        return CheckResult(name, Status.PASS, f"WABA {settings.waba_id} sends webhooks to: {names}")
    advice = advice_for(GraphError("must be subscribed", code=100), settings.waba_id, graph.base)
    return CheckResult(
        name,
        Status.FAIL,
        f"app {app_id or '?'} is not subscribed to WABA {settings.waba_id} (subscribed: {names})",
        advice,
    )


async def _phone(graph: GraphClient, settings: Settings, token_ok: bool) -> CheckResult:
    name = NAMES[5]
    if not (settings.waba_id and settings.phone_number_id):
        return CheckResult(
            name, Status.SKIP, "needs WHATSAPP_BUSINESS_ACCOUNT_ID and WHATSAPP_PHONE_NUMBER_ID", "WhatsApp > API Setup"
        )
    if not token_ok:
        return CheckResult(name, Status.SKIP, "needs a valid access token")
    try:
        numbers = await graph.waba_phone_numbers(settings.waba_id)
    except GraphError as exc:
        return _failed(name, exc, settings)
    mine = next((n for n in numbers if n.id == settings.phone_number_id), None)
    if mine is not None:
        return CheckResult(
            name,
            Status.PASS,
            f"{mine.id} (+{mine.display_phone_number}, {mine.verified_name}) is in WABA {settings.waba_id}",
        )
    others = ", ".join(f"{n.id} (+{n.display_phone_number})" for n in numbers) or "none"
    return CheckResult(
        name,
        Status.FAIL,
        f"{settings.phone_number_id} is not a number of WABA {settings.waba_id} (it has: {others})",
        "set WHATSAPP_PHONE_NUMBER_ID to one of them (WhatsApp > API Setup)",
    )


async def graph_checks(
    settings: Settings, ours: str | None, graph_factory: Callable[[], GraphClient] | None = None
) -> list[CheckResult]:
    """Where Meta actually sends this app's webhooks, and why it might send nothing."""
    if not (settings.access_token or (settings.app_id and settings.app_secret)):
        fix = f"set WHATSAPP_ACCESS_TOKEN ({TOKEN_HOWTO}), META_APP_ID, WHATSAPP_BUSINESS_ACCOUNT_ID"
        first = CheckResult(NAMES[0], Status.SKIP, "no Graph API credentials: Meta's side is not checked", fix)
        return [first, *(CheckResult(name, Status.SKIP, "no Graph API credentials") for name in NAMES[1:])]
    results: list[CheckResult] = []
    async with (graph_factory or (lambda: GraphClient.from_settings(settings)))() as graph:
        try:
            token, info = await _token(graph, settings)
            results.append(token)
            token_ok = token.status in (Status.PASS, Status.WARN)
            subscription_result, subscription = await _subscription(graph, settings)
            results.append(subscription_result)
            results.append(await _routing(graph, settings, ours, subscription, token_ok))
            results.append(_messages_field(subscription_result, subscription))
            results.append(await _waba(graph, settings, info, token_ok))
            results.append(await _phone(graph, settings, token_ok))
        except GraphUnreachable as exc:  # each further call would wait as long for the same silence
            results.append(CheckResult(NAMES[len(results)], Status.FAIL, str(exc), advice_for(exc)))
            unknown = f"not checked: {exc.host} did not answer (see {NAMES[len(results) - 1]})"
            results += [CheckResult(name, Status.SKIP, unknown) for name in NAMES[len(results) :]]
    return results
