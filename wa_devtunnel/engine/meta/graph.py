"""Graph API client for webhook configuration: typed results, Meta's errors kept verbatim."""

from __future__ import annotations

import json
from collections.abc import Mapping
from datetime import UTC, datetime
from types import TracebackType
from typing import Any

import aiohttp
from yarl import URL

from wa_devtunnel.engine.http_client import REQUEST_ERRORS, client_session, machine_trust_store, request_failure
from wa_devtunnel.engine.meta.errors import GraphError, GraphUnreachable, MissingCredentials, _int_or_none, advice_for
from wa_devtunnel.engine.meta.models import (
    AppSubscription,
    PhoneNumber,
    PhoneWebhookConfiguration,
    SubscribedField,
    TokenInfo,
    WabaApp,
)
from wa_devtunnel.settings import Settings

__all__ = [
    "AppSubscription",
    "GraphClient",
    "GraphError",
    "GraphUnreachable",
    "MissingCredentials",
    "PhoneNumber",
    "PhoneWebhookConfiguration",
    "SubscribedField",
    "TokenInfo",
    "WabaApp",
    "advice_for",
    "check_callback_url",
    "check_override_url",
]

WABA_OBJECT = "whatsapp_business_account"
MAX_OVERRIDE_URL = 200  # Meta refuses longer override_callback_uri values
DEFAULT_TIMEOUT_S = 20.0  # Meta's handshake alone may take 6 s during a subscribe


def _timestamp(value: Any) -> datetime | None:
    """Meta's epoch seconds, where 0 means "never"."""
    seconds = _int_or_none(value)
    return datetime.fromtimestamp(seconds, UTC) if seconds else None


def check_callback_url(url: str) -> None:
    """Refuse before calling Meta: it calls only https callback URLs (with a publicly trusted certificate)."""
    parsed = URL(url)
    if parsed.scheme != "https" or not parsed.host:
        raise ValueError(
            f"{url} is not an https URL: Meta calls only https callback URLs with a publicly trusted certificate "
            "(use the https Callback URL wa-devtunnel prints when it runs with a tunnel)"
        )


def check_override_url(url: str) -> None:
    """Refuse before calling Meta: it answers a long URL with an unhelpful error."""
    if len(url) > MAX_OVERRIDE_URL:
        raise ValueError(
            f"the callback URL is {len(url)} characters; Meta accepts at most {MAX_OVERRIDE_URL} for an override "
            "(use a shorter --path or NGROK_DOMAIN)"
        )


class GraphClient:
    """A few Graph API calls on one aiohttp session; every non-2xx answer raises GraphError."""

    def __init__(
        self,
        base_url: str,
        version: str,
        access_token: str | None = None,
        app_id: str | None = None,
        app_secret: str | None = None,
        *,
        timeout_s: float = DEFAULT_TIMEOUT_S,
    ) -> None:
        self.base = f"{base_url.rstrip('/')}/{version.strip('/')}"
        base = URL(self.base)
        # How a network failure names the place: `graph.facebook.com` (with the port only when it is not the usual).
        self.host = f"{base.host}:{base.explicit_port}" if base.explicit_port else str(base.host or base_url)
        self.access_token = access_token
        self.app_id = app_id
        self.app_secret = app_secret
        self.timeout_s = timeout_s
        self._session: aiohttp.ClientSession | None = None

    @classmethod
    def from_settings(cls, settings: Settings, *, timeout_s: float = DEFAULT_TIMEOUT_S) -> GraphClient:
        """Base URL, version and credentials from META_* / WHATSAPP_* settings."""
        return cls(
            settings.graph_url,
            settings.graph_version,
            settings.access_token,
            settings.app_id,
            settings.app_secret,
            timeout_s=timeout_s,
        )

    async def __aenter__(self) -> GraphClient:
        return self

    async def __aexit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        await self.close()

    async def close(self) -> None:
        """Release the connection pool."""
        if self._session is not None:
            await self._session.close()
            self._session = None

    @property
    def app_token(self) -> str:
        """`APP_ID|APP_SECRET`: the app access token app subscriptions require."""
        if not (self.app_id and self.app_secret):
            raise MissingCredentials("app subscriptions need META_APP_ID and WHATSAPP_APP_SECRET")
        return f"{self.app_id}|{self.app_secret}"

    @property
    def user_token(self) -> str:
        """The system-user or business token for WABA and phone number calls."""
        if not self.access_token:
            raise MissingCredentials("this call needs WHATSAPP_ACCESS_TOKEN (a system-user token)")
        return self.access_token

    async def call(
        self,
        method: str,
        path: str,
        token: str,
        *,
        params: Mapping[str, str] | None = None,
        data: Mapping[str, str] | None = None,
        json_body: Mapping[str, Any] | None = None,
    ) -> Any:
        """One request; the token travels in the Authorization header, never in a logged URL."""
        if self._session is None:
            # As this machine's other HTTPS clients go out: its trust store and HTTPS_PROXY/NO_PROXY.
            self._session = client_session(self.timeout_s, ssl_context=machine_trust_store().context, trust_env=True)
        url = f"{self.base}/{path.lstrip('/')}"
        try:
            async with self._session.request(
                method, url, params=params, data=data, json=json_body, headers={"Authorization": f"Bearer {token}"}
            ) as response:
                text = await response.text(errors="replace")
                status = response.status
        except REQUEST_ERRORS as exc:
            raise GraphUnreachable(self.host, request_failure(exc, self.timeout_s)) from None
        if status >= 400:
            error = GraphError.from_response(status, text)
            error.app_token_used = "|" in token
            raise error
        try:
            return json.loads(text)
        except ValueError:
            raise GraphError(f"HTTP {status} from the Graph API is not JSON: {text[:200]!r}", status=status) from None

    async def debug_token(self) -> TokenInfo:
        """Expiry needs /debug_token: the token inspects itself (system users may), else the app token, else /me."""
        token = self.user_token
        try:
            body = await self.call("GET", "debug_token", token, params={"input_token": token})
        except GraphError as exc:
            if exc.code == 190 or exc.unreachable:  # no other token helps then
                raise
            try:
                body = await self.call("GET", "debug_token", self.app_token, params={"input_token": token})
            except (GraphError, MissingCredentials):
                me = await self.call("GET", "me", token)
                name = str(me.get("name", "")) if isinstance(me, dict) else ""
                return TokenInfo(True, "", name, "", None, (), expiry_known=False)
        data = body.get("data", {}) if isinstance(body, dict) else {}
        error = data.get("error") if isinstance(data.get("error"), dict) else {}
        return TokenInfo(
            valid=bool(data.get("is_valid")),
            app_id=str(data.get("app_id", "")),
            application=str(data.get("application", "")),
            type=str(data.get("type", "")),
            expires_at=_timestamp(data.get("expires_at")),
            scopes=tuple(str(s) for s in data.get("scopes", ()) or ()),
            error=str(error.get("message", "")),
        )

    async def app_subscriptions(self) -> list[AppSubscription]:
        """GET /{app-id}/subscriptions (needs the app token)."""
        body = await self.call("GET", f"{self.app_id}/subscriptions", self.app_token)
        return [
            AppSubscription(
                object=str(item.get("object", "")),
                callback_url=str(item.get("callback_url", "")),
                active=bool(item.get("active")),
                fields=tuple(
                    SubscribedField(str(f.get("name", "")), str(f.get("version", "")))
                    for f in item.get("fields", ()) or ()
                    if isinstance(f, dict)
                ),
            )
            for item in body.get("data", ())
            if isinstance(item, dict)
        ]

    async def waba_app_subscription(self) -> AppSubscription | None:
        """The app's whatsapp_business_account subscription, if any."""
        return next((s for s in await self.app_subscriptions() if s.object == WABA_OBJECT), None)

    async def subscribe_app(self, callback_url: str, verify_token: str, fields: tuple[str, ...]) -> None:
        """POST /{app-id}/subscriptions: Meta performs the handshake against callback_url first."""
        form = {
            "object": WABA_OBJECT,
            "callback_url": callback_url,
            "verify_token": verify_token,
            "fields": ",".join(fields),
            "include_values": "true",
        }
        await self.call("POST", f"{self.app_id}/subscriptions", self.app_token, data=form)

    async def delete_app_subscription(self) -> None:
        """DELETE /{app-id}/subscriptions?object=whatsapp_business_account."""
        await self.call("DELETE", f"{self.app_id}/subscriptions", self.app_token, params={"object": WABA_OBJECT})

    async def waba_subscribed_apps(self, waba_id: str) -> list[WabaApp]:
        """GET /{waba-id}/subscribed_apps."""
        body = await self.call("GET", f"{waba_id}/subscribed_apps", self.user_token)
        apps: list[WabaApp] = []
        for item in body.get("data", ()):
            if not isinstance(item, dict):
                continue
            api_data = item.get("whatsapp_business_api_data") or {}
            override = item.get("override_callback_uri")
            apps.append(WabaApp(str(api_data.get("id", "")), str(api_data.get("name", "")), override or None))
        return apps

    async def subscribe_app_to_waba(
        self, waba_id: str, override_callback_uri: str | None = None, verify_token: str | None = None
    ) -> None:
        """POST /{waba-id}/subscribed_apps, with an override (handshake first) or without (removes it)."""
        body: dict[str, str] | None = None
        if override_callback_uri is not None:
            check_override_url(override_callback_uri)
            body = {"override_callback_uri": override_callback_uri, "verify_token": verify_token or ""}
        await self.call("POST", f"{waba_id}/subscribed_apps", self.user_token, json_body=body)

    async def phone_webhook_configuration(self, phone_number_id: str) -> PhoneWebhookConfiguration:
        """GET /{phone-number-id}?fields=webhook_configuration: all three levels at once."""
        body = await self.call("GET", phone_number_id, self.user_token, params={"fields": "webhook_configuration"})
        config = body.get("webhook_configuration") or {}
        return PhoneWebhookConfiguration(
            phone_number_id,
            config.get("phone_number") or None,
            config.get("whatsapp_business_account") or None,
            config.get("application") or None,
        )

    async def set_phone_override(self, phone_number_id: str, url: str, verify_token: str) -> None:
        """Route this one number's webhooks to `url` (Meta performs the handshake first)."""
        check_override_url(url)
        body = {"webhook_configuration": {"override_callback_uri": url, "verify_token": verify_token}}
        await self.call("POST", phone_number_id, self.user_token, json_body=body)

    async def remove_phone_override(self, phone_number_id: str) -> None:
        """An empty override_callback_uri falls back to the WABA override or the app callback."""
        body = {"webhook_configuration": {"override_callback_uri": ""}}
        await self.call("POST", phone_number_id, self.user_token, json_body=body)

    async def waba_phone_numbers(self, waba_id: str) -> list[PhoneNumber]:
        """GET /{waba-id}/phone_numbers (first page: a developer's WABA has a handful)."""
        body = await self.call("GET", f"{waba_id}/phone_numbers", self.user_token)
        return [
            PhoneNumber(str(n.get("id", "")), str(n.get("display_phone_number", "")), str(n.get("verified_name", "")))
            for n in body.get("data", ())
            if isinstance(n, dict)
        ]
