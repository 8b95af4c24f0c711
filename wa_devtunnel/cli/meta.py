"""`wa-devtunnel meta status|subscribe|unsubscribe`: where Meta sends webhooks, and pointing it at this tunnel."""

from __future__ import annotations

import argparse
import asyncio
import json
import sys
from typing import Any

from wa_devtunnel.cli.options import ExitCode, Subparsers, UsageError, add_common
from wa_devtunnel.cli.output import error
from wa_devtunnel.cli.terminal_text import say
from wa_devtunnel.engine.instance import read_instance
from wa_devtunnel.engine.meta.graph import (
    GraphClient,
    GraphError,
    GraphUnreachable,
    MissingCredentials,
    advice_for,
    check_callback_url,
)
from wa_devtunnel.engine.meta.registration import (
    Registration,
    current_override,
    forget_app_registration,
    load_app_registration,
    save_app_previous,
    unregister,
)
from wa_devtunnel.engine.meta.registration import register as register_callback
from wa_devtunnel.settings import REGISTER_SCOPES, Settings, missing_for_scope

NAME = "meta"
READS_SETTINGS = True
NOT_RUNNING = "start `wa-devtunnel` first: Meta performs the handshake against it during this call"
ACTIONS = ("status", "subscribe", "unsubscribe")


def _usage(message: str) -> UsageError:
    """Bad usage or configuration for a meta command: `error: ...` and exit 2."""
    return UsageError(f"error: {message}", try_help=False)


def register(subparsers: Subparsers) -> None:
    """`meta status|subscribe|unsubscribe [--scope app|waba|phone] [--url URL] [--json]`."""
    meta = subparsers.add_parser(NAME, help="see or change where Meta sends webhooks (Graph API)")
    add_common(meta)
    meta.add_argument(
        "action",
        choices=ACTIONS,
        metavar="{" + ",".join(ACTIONS) + "}",  # named by its choices in usage errors too, not as `action`
        help="status: where Meta sends webhooks now; subscribe: point Meta at this tunnel; unsubscribe: undo it",
    )
    meta.add_argument(
        "--scope",
        choices=REGISTER_SCOPES,
        default="phone",
        help="phone: the phone number override (default); waba: the WABA override; app: the app callback",
    )
    meta.add_argument("--url", help="callback URL (default: the running wa-devtunnel's)")
    meta.add_argument("--json", action="store_true", help="JSON on stdout, for scripts")


async def routing_status(graph: GraphClient, settings: Settings) -> dict[str, Any]:
    """App callback, WABA override and phone number override, each or why it could not be read."""

    unreachable: dict[str, Any] = {}

    async def attempt(call: Any) -> Any:
        if unreachable:  # Meta was not reached: the next call would wait as long for the same nothing
            call.close()
            return unreachable
        try:
            return await call
        except MissingCredentials as exc:
            return {"skipped": str(exc)}
        except GraphUnreachable as exc:
            unreachable.update(unreachable=str(exc), fix=advice_for(exc))
            return unreachable
        except GraphError as exc:
            return {"error": str(exc), "details": exc.details(), "fix": advice_for(exc, settings.waba_id, graph.base)}

    status: dict[str, Any] = {"graph": graph.base}
    if settings.app_id:
        subscription = await attempt(graph.waba_app_subscription())
        if subscription is None or isinstance(subscription, dict):
            status["app"] = {"app_id": settings.app_id, **(subscription or {"callback_url": None})}
        else:
            fields = [{"name": f.name, "version": f.version} for f in subscription.fields]
            status["app"] = {
                "app_id": settings.app_id,
                "callback_url": subscription.callback_url,
                "active": subscription.active,
                "fields": fields,
            }
    if settings.waba_id:
        apps = await attempt(graph.waba_subscribed_apps(settings.waba_id))
        if isinstance(apps, dict):
            status["waba"] = {"waba_id": settings.waba_id, **apps}
        else:
            mine = [a for a in apps if not settings.app_id or a.app_id == settings.app_id]
            status["waba"] = {
                "waba_id": settings.waba_id,
                "app_subscribed": bool(mine),
                "subscribed_apps": [a.name or a.app_id for a in apps],
                "override_callback_uri": next((a.override_callback_uri for a in mine if a.override_callback_uri), None),
            }
    if settings.phone_number_id:
        config = await attempt(graph.phone_webhook_configuration(settings.phone_number_id))
        if isinstance(config, dict):
            status["phone"] = {"phone_number_id": settings.phone_number_id, **config}
        else:
            where, level = config.effective()
            status["phone"] = {
                "phone_number_id": settings.phone_number_id,
                "override_callback_uri": config.phone_number,
            }
            status["effective"] = {"callback_url": where, "level": level}
    return status


def _status_lines(status: dict[str, Any], ours: str | None) -> list[str]:
    """Where Meta routes webhooks, as Meta reported it (printed escaped: Meta's words are data)."""
    lines = [f"Graph API: {status['graph']}"]

    def problem(section: dict[str, Any]) -> str | None:
        fix = f"\n    fix: {section['fix']}" if section.get("fix") else ""
        if "unreachable" in section:
            return f"{section['unreachable']}{fix}"
        if "error" in section:
            return f"Meta refused: {section['error']}{fix}"
        return f"skipped: {section['skipped']}" if "skipped" in section else None

    if "app" in status:
        app = status["app"]
        head = f"App {app['app_id']} callback:"
        if problem(app):
            lines.append(f"{head} {problem(app)}")
        elif not app.get("callback_url"):
            lines.append(f"{head} none (no whatsapp_business_account subscription)")
        else:
            fields = ", ".join(f"{f['name']} ({f['version']})" for f in app["fields"]) or "no fields"
            state = "active" if app["active"] else "INACTIVE"
            lines.append(f"{head} {app['callback_url']}  [{state}; fields: {fields}]")
    if "waba" in status:
        waba = status["waba"]
        head = f"WABA {waba['waba_id']} override:"
        if problem(waba):
            lines.append(f"{head} {problem(waba)}")
        else:
            subscribed = "app subscribed" if waba["app_subscribed"] else "APP NOT SUBSCRIBED to this WABA"
            lines.append(f"{head} {waba['override_callback_uri'] or 'none'}  [{subscribed}]")
    if "phone" in status:
        phone = status["phone"]
        head = f"Phone number {phone['phone_number_id']} override:"
        lines.append(f"{head} {problem(phone) or phone['override_callback_uri'] or 'none'}")
    if "effective" in status:
        effective = status["effective"]
        number = status["phone"]["phone_number_id"]
        lines.append(
            f"=> `messages` for {number} go to {effective['callback_url'] or 'nowhere'} ({effective['level']})"
        )
        if ours:
            verdict = "receives them" if effective["callback_url"] == ours else "does NOT receive them"
            lines.append(f"This wa-devtunnel ({ours}) {verdict}")
    return lines


def _callback_url(settings: Settings, url: str | None, *, public: bool = False) -> str | None:
    if url:
        return url
    instance = read_instance(settings.recordings_dir)
    if instance is not None and public and not instance.public_url:
        raise _usage(
            f"the running wa-devtunnel is local-only ({instance.callback_url}): Meta cannot reach it; "
            "set NGROK_AUTHTOKEN and restart it (or pass --url)"
        )
    return instance.callback_url if instance else None


async def _subscribe(graph: GraphClient, settings: Settings, scope: str, url: str | None) -> str:
    if url is None:
        raise _usage(NOT_RUNNING)
    if settings.verify_token_source == "generated":  # temporary: the running wa-devtunnel made up its own
        raise _usage(
            "WHATSAPP_VERIFY_TOKEN is not set and none is kept for this folder, so the running wa-devtunnel's "
            "token is unknown: set it in .env (`wa-devtunnel token --write-env`) and restart wa-devtunnel "
            "(or use `wa-devtunnel up --register`)"
        )
    registration = await register_callback(graph, settings, scope, url, settings.verify_token)
    if scope == "app":
        save_app_previous(settings.recordings_dir, registration)
    return f"{registration.describe()}.\nUndo with: wa-devtunnel meta unsubscribe --scope {scope}"


async def _unsubscribe(graph: GraphClient, settings: Settings, scope: str, url: str | None) -> str:
    if scope == "app":
        registration = load_app_registration(settings.recordings_dir, settings.app_id or "")
        if registration is None:
            raise _usage(
                "no `meta subscribe --scope app` was made from here, so there is nothing to restore: change the "
                "app callback in App Dashboard > WhatsApp > Configuration"
            )
        done = await unregister(graph, settings, registration)
        forget_app_registration(settings.recordings_dir)
        return done
    now = await current_override(graph, settings, scope)
    if now is None:
        return f"no {scope} override: nothing to remove"
    if url is not None and now != url:
        raise _usage(f"the {scope} override points to {now}, not to {url}; pass --url {now} to remove it")
    target = settings.phone_number_id if scope == "phone" else settings.waba_id
    return await unregister(graph, settings, Registration(scope, now, target or ""))


async def _run(settings: Settings, args: argparse.Namespace, url: str | None) -> dict[str, Any]:
    async with GraphClient.from_settings(settings) as graph:
        if args.action == "status":
            return await routing_status(graph, settings)
        if args.action == "subscribe":
            message = await _subscribe(graph, settings, args.scope, url)
        else:
            message = await _unsubscribe(graph, settings, args.scope, url)
        result: dict[str, Any] = {"ok": True, "action": args.action, "scope": args.scope, "message": message}
        if settings.phone_number_id and settings.access_token:
            with_route = await routing_status(graph, settings)
            result["effective"] = with_route.get("effective")
        return result


def _failure_report(exc: GraphError, fix: str) -> dict[str, Any]:
    """`--json`: Meta's error fields as Meta sent them, or (no answer at all) which host and why."""
    if isinstance(exc, GraphUnreachable):
        failure = exc.failure
        where = {"host": exc.host, "kind": failure.kind.value, "cause": failure.reason}
        return {"ok": False, "unreachable": where, "message": str(exc), "fix": fix}
    refusal = {k: getattr(exc, k) for k in ("message", "type", "code", "error_subcode", "fbtrace_id")}
    return {"ok": False, "error": refusal, "fix": fix}


def _say_failure(exc: GraphError, fix: str) -> None:
    """`Meta refused: <Meta's words>` with its code and fbtrace_id, or the network's failure named as such."""
    error(str(exc) if exc.unreachable else f"Meta refused: {exc}")
    if exc.details():
        say(f"  ({exc.details()})", sys.stderr)
    if fix:
        say(f"  fix: {fix}", sys.stderr)


def run(args: argparse.Namespace, settings: Settings | None) -> ExitCode:
    """0 done; 1 Meta refused (its message verbatim) or could not be reached; 2 usage or missing settings."""
    assert settings is not None  # READS_SETTINGS
    if args.action == "status" and not (settings.app_id or settings.waba_id or settings.phone_number_id):
        raise UsageError(
            "meta status needs META_APP_ID, WHATSAPP_BUSINESS_ACCOUNT_ID or WHATSAPP_PHONE_NUMBER_ID "
            "(with WHATSAPP_APP_SECRET / WHATSAPP_ACCESS_TOKEN; `wa-devtunnel init` writes a commented .env)",
            try_help=False,
        )
    if args.action != "status":
        missing = missing_for_scope(settings, args.scope)
        if missing:
            raise UsageError(f"meta {args.action} --scope {args.scope} needs {' and '.join(missing)}", try_help=False)
    try:
        url = _callback_url(settings, args.url, public=args.action == "subscribe")
        if args.action == "subscribe" and url is not None:
            check_callback_url(url)  # before any Graph call: Meta would refuse it after a handshake attempt
        result = asyncio.run(_run(settings, args, url))
    except (ValueError, MissingCredentials) as exc:
        raise _usage(str(exc)) from None
    except GraphError as exc:
        fix = advice_for(exc, settings.waba_id, f"{settings.graph_url}/{settings.graph_version}")
        if args.json:
            print(json.dumps(_failure_report(exc, fix), indent=2))
        else:
            _say_failure(exc, fix)
        return ExitCode.FAILED
    if args.json:
        print(json.dumps(result, indent=2))
    elif args.action == "status":
        say("\n".join(_status_lines(result, _callback_url(settings, args.url))))
    else:
        say(result["message"])
        effective = result.get("effective")
        if effective:
            where = effective["callback_url"] or "nowhere"
            say(f"`messages` for {settings.phone_number_id} now go to {where} ({effective['level']})")
    if args.action == "status" and any(
        isinstance(v, dict) and ("error" in v or "unreachable" in v) for v in result.values()
    ):
        return ExitCode.FAILED
    return ExitCode.OK
