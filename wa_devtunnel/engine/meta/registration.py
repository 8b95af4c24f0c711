"""Pointing Meta at this tunnel (phone number override, WABA override or app callback) and undoing it."""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
from collections.abc import Callable
from dataclasses import asdict, dataclass, replace
from pathlib import Path
from typing import Any

from wa_devtunnel.engine.events import EngineEvent, EventBus, ExchangeRecorded, Notice, RegistrationChanged
from wa_devtunnel.engine.meta.graph import (
    AppSubscription,
    GraphClient,
    GraphError,
    MissingCredentials,
    SubscribedField,
    advice_for,
)
from wa_devtunnel.engine.meta.handshake_watch import HANDSHAKE_WAIT_S, HandshakeWatch
from wa_devtunnel.settings import Settings

UNDO_TIMEOUT_S = 10.0
META_STATE_FILE = ".wa-devtunnel-meta.json"


@dataclass(frozen=True, slots=True)
class Registration:
    """What we changed at Meta, enough to undo it (for the app scope: what was there before)."""

    scope: str
    callback_url: str
    target: str
    previous: AppSubscription | None = None

    def describe(self) -> str:
        """`Meta now sends webhooks for phone number 1065... (phone number override) to https://...`."""
        where = {
            "phone": f"phone number {self.target} (phone number override)",
            "waba": f"WABA {self.target} (WABA override)",
            "app": f"app {self.target} (app callback)",
        }[self.scope]
        return f"Meta verified {self.callback_url} and now sends webhooks for {where} there"


def _target(settings: Settings, scope: str) -> str:
    value = {"phone": settings.phone_number_id, "waba": settings.waba_id, "app": settings.app_id}[scope]
    if not value:
        raise MissingCredentials(f"--scope {scope} needs {_SETTING[scope]}")
    return value


_SETTING = {"phone": "WHATSAPP_PHONE_NUMBER_ID", "waba": "WHATSAPP_BUSINESS_ACCOUNT_ID", "app": "META_APP_ID"}


async def register(
    graph: GraphClient, settings: Settings, scope: str, callback_url: str, verify_token: str
) -> Registration:
    """One subscribe call; Meta performs the handshake against `callback_url` before answering."""
    target = _target(settings, scope)
    if scope == "phone":
        await graph.set_phone_override(target, callback_url, verify_token)
        return Registration(scope, callback_url, target)
    if scope == "waba":
        await graph.subscribe_app_to_waba(target, callback_url, verify_token)
        return Registration(scope, callback_url, target)
    current = await graph.waba_app_subscription()
    previous = current if current is not None and current.callback_url != callback_url else None
    fields = tuple(dict.fromkeys((*(current.field_names if current else ()), "messages")))
    await graph.subscribe_app(callback_url, verify_token, fields)
    return Registration(scope, callback_url, target, previous)


async def current_override(graph: GraphClient, settings: Settings, scope: str) -> str | None:
    """The URL our scope currently routes to (None: no override / no subscription)."""
    target = _target(settings, scope)
    if scope == "phone":
        return (await graph.phone_webhook_configuration(target)).phone_number
    if scope == "waba":
        apps = await graph.waba_subscribed_apps(target)
        mine = [a for a in apps if not graph.app_id or a.app_id == graph.app_id]
        return next((a.override_callback_uri for a in mine if a.override_callback_uri), None)
    subscription = await graph.waba_app_subscription()
    return subscription.callback_url if subscription else None


async def unregister(graph: GraphClient, settings: Settings, registration: Registration) -> str:
    """Undo one registration if Meta still points at our URL; say what happened."""
    scope, target = registration.scope, registration.target
    now = await current_override(graph, settings, scope)
    if now != registration.callback_url:
        ours = registration.callback_url
        return f"left the {scope} routing alone: it now points to {now or 'nothing'}, not to {ours}"
    if scope == "phone":
        await graph.remove_phone_override(target)
        return f"removed the phone number override of {target}"
    if scope == "waba":
        await graph.subscribe_app_to_waba(target)
        return f"removed the WABA override of {target}"
    previous = registration.previous
    if previous is not None and previous.callback_url:
        token = settings.restore_verify_token or settings.verify_token
        await graph.subscribe_app(previous.callback_url, token, previous.field_names or ("messages",))
        return f"restored the app callback of {target} to {previous.callback_url}"
    await graph.delete_app_subscription()
    return f"removed the app's whatsapp_business_account subscription (app {target} had none before)"


def save_app_previous(recordings_dir: Path, registration: Registration) -> None:
    """`meta subscribe --scope app` remembers the callback it replaced, for `meta unsubscribe`."""
    previous = asdict(registration.previous) if registration.previous else None
    state = {"callback_url": registration.callback_url, "previous": previous}
    path = Path(recordings_dir) / META_STATE_FILE
    path.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w", encoding="utf-8") as handle:
        json.dump({"app": state}, handle)


def load_app_registration(recordings_dir: Path, app_id: str) -> Registration | None:
    """The app-scope registration `meta subscribe` saved, or None."""
    try:
        state: dict[str, Any] = json.loads((Path(recordings_dir) / META_STATE_FILE).read_text(encoding="utf-8"))["app"]
        raw = state.get("previous")
        previous = (
            AppSubscription(
                str(raw["object"]),
                str(raw["callback_url"]),
                bool(raw["active"]),
                tuple(SubscribedField(str(f["name"]), str(f["version"])) for f in raw["fields"]),
            )
            if raw
            else None
        )
        return Registration("app", str(state["callback_url"]), app_id, previous)
    except (OSError, ValueError, KeyError, TypeError):
        return None


def forget_app_registration(recordings_dir: Path) -> None:
    """After a successful `meta unsubscribe --scope app`."""
    (Path(recordings_dir) / META_STATE_FILE).unlink(missing_ok=True)


def quiet_hint(seconds: float, registration: Registration) -> str:
    """What to check when Meta accepted the URL but sends nothing."""
    number = f" (phone number {registration.target})" if registration.scope == "phone" else ""
    return (
        f"No webhook from Meta in {seconds:g} s since registering {registration.callback_url}{number}. Check: "
        "is the field `messages` subscribed (`wa-devtunnel meta status`)? Is the app subscribed to the WABA "
        "(`wa-devtunnel doctor`)? With a test number, did you message it from a number on its recipient list? "
        "(Template and account fields always go to the app callback.)"
    )


class Registrar:
    """Keeps Meta pointed at this tunnel for `up --register`, re-registers on a new URL, undoes it on exit."""

    def __init__(
        self,
        settings: Settings,
        scope: str,
        *,
        graph_factory: Callable[[], GraphClient] | None = None,
        quiet_after_s: float | None = None,
        handshake_wait_s: float = HANDSHAKE_WAIT_S,
    ) -> None:
        self.settings = settings
        self.scope = scope
        self.graph_factory = graph_factory or (lambda: GraphClient.from_settings(settings))
        self.quiet_after_s = settings.quiet_after_register_s if quiet_after_s is None else quiet_after_s
        self.handshake_wait_s = handshake_wait_s
        self.bus = EventBus()
        # Meta's verify requests as the receiver saw them (the service's watch; attach() passes it).
        self.handshakes: HandshakeWatch | None = None
        self.current: Registration | None = None
        self.meta_events = 0
        self._lock = asyncio.Lock()
        self._inflight: asyncio.Future[None] | None = None
        self._quiet: asyncio.Task[None] | None = None

    def attach(self, bus: EventBus, handshakes: HandshakeWatch | None = None) -> None:
        """Publish on the service's bus, count Meta's events on it (the quiet hint), see its handshakes arrive."""
        self.bus = bus
        self.handshakes = handshakes
        bus.add_listener(self.observe)

    def observe(self, event: EngineEvent) -> None:
        """Bus listener: a POST from Meta proves the routing works."""
        # The event's own fields (no line, no view, no decoding): this runs inline on every acknowledgement path.
        if event.__class__ is ExchangeRecorded and event.kind == "event" and event.origin in ("meta", ""):  # type: ignore[union-attr]
            self.meta_events += 1

    @property
    def target(self) -> str:
        """The phone number, WABA or app id this scope routes ("" when the settings lack it)."""
        try:
            return _target(self.settings, self.scope)
        except MissingCredentials:
            return ""

    def _state(self, state: str, url: str, detail: str = "", previous: str = "") -> None:
        self.bus.publish(RegistrationChanged(state, self.scope, url, detail, previous, self.target))

    def unavailable_notice(self, tunnel_state: str) -> Notice:
        """Meta only calls public HTTPS URLs: say why nothing was registered."""
        return Notice("error", f"--register {self.scope}: {self._unavailable_text(tunnel_state)}", topic="register")

    def _unavailable_text(self, tunnel_state: str) -> str:
        fix = " (set NGROK_AUTHTOKEN, or use --tunnel cloudflared)" if tunnel_state == "local-only" else ""
        if tunnel_state == "failed":
            fix = " (see why above; fix it and start again)"
        return f"not registered, Meta needs a public HTTPS URL and the tunnel is {tunnel_state}{fix}"

    def unavailable(self, tunnel_state: str, local_url: str) -> None:
        """No public URL at start: nothing is sent to Meta; the notice and the lasting `failed` state say why."""
        self.bus.publish(self.unavailable_notice(tunnel_state))
        self._state("failed", local_url, self._unavailable_text(tunnel_state))

    async def ensure(self, callback_url: str) -> None:
        """Register `callback_url` unless it already is; shielded so a cancelled caller cannot half-do it."""
        self._inflight = asyncio.ensure_future(self._ensure(callback_url))
        await asyncio.shield(self._inflight)

    async def _ensure(self, callback_url: str) -> None:
        async with self._lock:
            if self.current is not None and self.current.callback_url == callback_url:
                return
            handshakes_seen = self.handshakes.arrived if self.handshakes is not None else 0
            self._state("registering", callback_url)
            previous: str | None = "" if self.scope == "app" else None  # "": nothing; None: not known
            try:
                async with self.graph_factory() as graph:
                    if self.scope != "app":  # the app scope reads what it replaces itself
                        previous = await self._routed_now(graph)
                    registration = await register(
                        graph, self.settings, self.scope, callback_url, self.settings.verify_token
                    )
            except (GraphError, MissingCredentials, ValueError) as exc:
                advice = advice_for(exc, self.settings.waba_id) if isinstance(exc, GraphError) else ""
                # Only an answer from Meta is a refusal: no answer (the network) or missing settings are not.
                refused = isinstance(exc, GraphError) and not getattr(exc, "unreachable", False)
                said = f"Meta refused {callback_url}: {exc}" if refused else str(exc)
                text = f"--register {self.scope} failed: {said}"
                self.bus.publish(Notice("error", text + (f"\n  {advice}" if advice else ""), topic="register"))
                why = str(exc).rstrip(". ")
                detail = f"Meta refused it: {why}." if refused else f"{why}."
                self._state("failed", callback_url, detail + (f" {advice}" if advice else ""))
                # 2200: Meta's handshake failed and it tries no more. None reached us: Meta never got through.
                handshakes = self.handshakes
                verification_failed = isinstance(exc, GraphError) and exc.code == 2200
                if verification_failed and handshakes is not None and handshakes.arrived == handshakes_seen:
                    self.bus.publish(handshakes.missing(callback_url, 0, accepted=False))
                return
            again = self.current is not None
            if self.scope == "app" and registration.previous is not None:
                previous = registration.previous.callback_url
            if again and self.current is not None:
                registration = replace(registration, previous=self.current.previous)
            self.current = registration
            note = " (re-registered: the tunnel URL changed)" if again else " (undone on exit)"
            self.bus.publish(Notice("info", registration.describe() + note, topic="register"))
            self._state("registered", callback_url, registration.describe() + note, _was(previous))
            self._watch_quiet(registration, handshakes_seen)

    async def _routed_now(self, graph: GraphClient) -> str | None:
        """Where the scope routes before we change it (None when unknown: reading it is only for the record)."""
        try:
            return await current_override(graph, self.settings, self.scope) or ""
        except Exception:  # a failed look is no reason not to register: the line then says "unknown"
            return None

    def _watch_quiet(self, registration: Registration, handshakes_seen: int) -> None:
        if self._quiet is not None:
            self._quiet.cancel()
        self._quiet = asyncio.ensure_future(self._quiet_watch(registration, self.meta_events, handshakes_seen))

    async def _quiet_watch(self, registration: Registration, events_seen: int, handshakes_seen: int) -> None:
        """First: did Meta's handshake reach us at all? Then: did any webhook follow?"""
        loop = asyncio.get_running_loop()
        began = loop.time()
        handshakes, wait_s = self.handshakes, self.handshake_wait_s
        if handshakes is not None and wait_s > 0 and not await handshakes.arrived_since(handshakes_seen, wait_s):
            self.bus.publish(handshakes.missing(registration.callback_url, wait_s, accepted=True))
            return  # the quiet hint's checks (fields, WABA) would mislead: Meta never reached this receiver
        if self.quiet_after_s <= 0:
            return
        await asyncio.sleep(max(self.quiet_after_s - (loop.time() - began), 0))
        if self.meta_events == events_seen:
            hint = quiet_hint(self.quiet_after_s, registration)
            self.bus.publish(Notice("warning", hint, topic="quiet"))
            if handshakes is not None:  # the lasting state, until Meta's next event clears it
                handshakes.went_quiet(self.quiet_after_s, registration.callback_url, "registration", hint)

    async def close(self) -> None:
        """Undo what we registered (the override we created, or the app callback we replaced)."""
        if self._quiet is not None:
            self._quiet.cancel()
        if self._inflight is not None and not self._inflight.done():
            with contextlib.suppress(Exception):
                await asyncio.wait_for(asyncio.shield(self._inflight), UNDO_TIMEOUT_S)
        registration, self.current = self.current, None
        if registration is None:
            return
        url = registration.callback_url
        self._state("undoing", url)
        try:
            async with self.graph_factory() as graph:
                done = await asyncio.wait_for(unregister(graph, self.settings, registration), UNDO_TIMEOUT_S)
        except (GraphError, MissingCredentials, TimeoutError, OSError) as exc:
            why = str(exc) or "Meta did not answer in time"
            command = f"wa-devtunnel meta unsubscribe --scope {self.scope} --url {url}"
            self.bus.publish(
                Notice(
                    "error",
                    f"--register {self.scope}: could not undo the registration: {why}\n  Run `{command}`.",
                    topic="register",
                )
            )
            self._state("undo-failed", url, f"{why}. Meta still sends webhooks to {url}: run `{command}`.")
            return
        self.bus.publish(Notice("info", f"--register {self.scope}: {done}", topic="register"))
        self._state("undone", url, done)


def _was(previous: str | None) -> str:
    """The `previous` of a registered state: the URL, "" for none, "unknown" when it could not be read."""
    return "unknown" if previous is None else previous


def registrar_for(settings: Settings) -> Registrar | None:
    """The registrar `up --register SCOPE` asks for, or None."""
    return Registrar(settings, settings.register) if settings.register else None
