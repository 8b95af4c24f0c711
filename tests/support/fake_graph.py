"""A local fake of Meta's Graph API for webhook configuration: tokens, subscriptions, overrides, real handshakes.

Like Meta it answers `{"error": {...}}` bodies, and before accepting a callback URL it really performs the
GET handshake against it (random challenge, 6 s budget, 200 + the exact challenge or error 2200).
Its fixtures are declared once, in tests/conftest.py.
"""

from __future__ import annotations

import asyncio
import secrets
import ssl
import threading
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import aiohttp
import trustme
import yarl
from aiohttp import web

from tests.support.constants import VERIFY_TOKEN
from tests.support.fake_ngrok import LoopbackResolver
from wa_devtunnel.settings import Settings, load_settings

APP_ID = "1234567890123456"
APP_SECRET = "0123456789abcdef0123456789abcdef"
APP_NAME = "wa-devtunnel test app"
WABA_ID = "102290129340398"
PHONE_NUMBER_ID = "106540352242922"
SYSTEM_USER_TOKEN = "EAAGfakeSystemUserToken0123456789abcdefZZ"
EXPIRED_TOKEN = "EAAGfakeExpiredUserToken0123456789abcdefZZ"
VERSION = "v23.0"
HANDSHAKE_BUDGET_S = 6.0
META_HANDSHAKE_UA = "facebookplatform/1.0 (+http://developers.facebook.com)"
OVERRIDE_FIELDS = "webhook_configuration"


@dataclass
class FakeToken:
    """A user or system-user token the fake knows; expires_at 0 means never."""

    app_id: str = APP_ID
    type: str = "SYSTEM_USER"
    expires_at: int = 0
    scopes: tuple[str, ...] = ("whatsapp_business_management", "whatsapp_business_messaging")


@dataclass
class HandshakeAttempt:
    """One verification GET the fake made, for assertions."""

    url: str
    verify_token: str
    ok: bool
    detail: str


@dataclass
class FakeMetaState:
    """Everything Meta would remember about this app, its WABA and its number."""

    app_subscription: dict[str, Any] | None = None
    app_subscribed_to_waba: bool = True
    waba_override: str | None = None
    phone_overrides: dict[str, str] = field(default_factory=dict)
    phone_numbers: dict[str, dict[str, str]] = field(
        default_factory=lambda: {
            PHONE_NUMBER_ID: {"display_phone_number": "15550783881", "verified_name": "Test Number"}
        }
    )


class MetaError(Exception):
    """Raised inside handlers; becomes Meta's error body."""

    def __init__(self, message: str, code: int, subcode: int | None = None, status: int = 400) -> None:
        super().__init__(message)
        self.message, self.code, self.subcode, self.status = message, code, subcode, status

    def response(self) -> web.Response:
        error: dict[str, Any] = {"message": self.message, "type": "OAuthException", "code": self.code}
        if self.subcode is not None:
            error["error_subcode"] = self.subcode
        error["fbtrace_id"] = "A" + secrets.token_urlsafe(15)
        return web.json_response({"error": error}, status=self.status)


def _meta_time(moment: datetime) -> str:
    return moment.strftime("%A, %d-%b-%y %H:%M:%S UTC")


def _unsupported(method: str, node: str) -> MetaError:
    return MetaError(
        f"Unsupported {method.lower()} request. Object with ID '{node}' does not exist, cannot be loaded due to "
        "missing permissions, or does not support this operation. Please read the Graph API documentation at "
        "https://developers.facebook.com/docs/graph-api",
        100,
        33,
    )


class FakeGraph:
    """The Graph API endpoints wa-devtunnel uses, on 127.0.0.1:<random port>."""

    def __init__(self, ssl_context: ssl.SSLContext | None = None) -> None:
        self.ssl_context = ssl_context
        self.tokens: dict[str, FakeToken] = {
            SYSTEM_USER_TOKEN: FakeToken(),
            EXPIRED_TOKEN: FakeToken(type="USER", expires_at=int((datetime.now(UTC) - timedelta(days=2)).timestamp())),
        }
        self.state = FakeMetaState()
        self.handshakes: list[HandshakeAttempt] = []
        self.debug_token_needs_a_developer = False  # some user tokens may not inspect themselves
        self.requests: list[tuple[str, str]] = []
        self.url = ""
        self._runner: web.AppRunner | None = None

    def env(self, **extra: str) -> dict[str, str]:
        """Settings that point wa-devtunnel at this fake with valid credentials."""
        return {
            "META_GRAPH_URL": self.url,
            "META_GRAPH_VERSION": VERSION,
            "META_APP_ID": APP_ID,
            "WHATSAPP_APP_SECRET": APP_SECRET,
            "WHATSAPP_ACCESS_TOKEN": SYSTEM_USER_TOKEN,
            "WHATSAPP_BUSINESS_ACCOUNT_ID": WABA_ID,
            "WHATSAPP_PHONE_NUMBER_ID": PHONE_NUMBER_ID,
            **extra,
        }

    async def start(self) -> str:
        app = web.Application()
        app.router.add_route("*", "/{version}/{node}", self._node)
        app.router.add_route("*", "/{version}/{node}/{edge}", self._edge)
        self._runner = web.AppRunner(app, access_log=None)
        await self._runner.setup()
        site = web.TCPSite(self._runner, "127.0.0.1", 0)
        await site.start()
        self.url = f"http://127.0.0.1:{self._runner.addresses[0][1]}"
        return self.url

    async def close(self) -> None:
        if self._runner is not None:
            await self._runner.cleanup()
            self._runner = None

    # --- plumbing -----------------------------------------------------------------------------

    async def _params(self, request: web.Request) -> dict[str, Any]:
        params: dict[str, Any] = dict(request.query)
        if request.can_read_body:
            if request.content_type == "application/json":
                body = await request.json()
                params.update(body if isinstance(body, dict) else {})
            else:
                params.update(dict(await request.post()))
        return params

    def _token(self, request: web.Request, params: dict[str, Any]) -> str:
        header = request.headers.get("Authorization", "")
        token = header[7:] if header.startswith("Bearer ") else str(params.get("access_token", ""))
        if not token:
            raise MetaError("An access token is required to request this resource.", 104)
        return token

    def _user(self, token: str) -> FakeToken:
        if "|" in token:
            if token != f"{APP_ID}|{APP_SECRET}":
                raise MetaError("Invalid OAuth access token signature.", 190)
            return FakeToken(type="APP")
        known = self.tokens.get(token)
        if known is None:
            raise MetaError("Invalid OAuth access token - Cannot parse access token", 190)
        if known.expires_at and known.expires_at <= datetime.now(UTC).timestamp():
            expired = datetime.fromtimestamp(known.expires_at, UTC)
            raise MetaError(
                f"Error validating access token: Session has expired on {_meta_time(expired)}. "
                f"The current time is {_meta_time(datetime.now(UTC))}.",
                190,
                463,
                status=401,
            )
        return known

    async def _handle(self, request: web.Request, work: Any) -> web.Response:
        self.requests.append((request.method, request.path))
        try:
            params = await self._params(request)
            token = self._token(request, params)
            return web.json_response(await work(params, token))
        except MetaError as error:
            return error.response()

    # --- the handshake Meta performs before accepting a callback -------------------------------

    async def verify_callback(self, url: str, verify_token: str) -> None:
        challenge = str(secrets.randbelow(9 * 10**9) + 10**9)
        query = {"hub.mode": "subscribe", "hub.challenge": challenge, "hub.verify_token": verify_token}
        connector = aiohttp.TCPConnector(ssl=self.ssl_context or True, resolver=LoopbackResolver())
        detail = ""
        try:
            async with (
                aiohttp.ClientSession(
                    connector=connector, timeout=aiohttp.ClientTimeout(total=HANDSHAKE_BUDGET_S)
                ) as session,
                session.get(url, params=query, headers={"User-Agent": META_HANDSHAKE_UA}) as response,
            ):
                body = await response.text(errors="replace")
                if response.status != 200:
                    detail = f"HTTP Status Code = {response.status}; HTTP Message = {response.reason}"
                elif body != challenge:
                    detail = (
                        "The URL couldn't be validated. Response does not match challenge, "
                        f'expected value="{challenge}", received="{body[:100]}"'
                    )
        except TimeoutError:
            detail = "curl_errno = 28; curl_error = Operation timed out after 6000 milliseconds with 0 bytes received"
        except (aiohttp.ClientConnectorCertificateError, aiohttp.ClientSSLError):
            detail = "curl_errno = 60; curl_error = SSL certificate problem: unable to get local issuer certificate"
        except aiohttp.ClientError:
            where = yarl.URL(url)
            refused = f"Failed to connect to {where.host} port {where.port}: Connection refused"
            detail = f"curl_errno = 7; curl_error = {refused}"
        self.handshakes.append(HandshakeAttempt(url, verify_token, not detail, detail))
        if detail:
            raise MetaError(f"(#2200) Callback verification failed with the following errors: {detail}", 2200)

    # --- nodes and edges ----------------------------------------------------------------------

    async def _node(self, request: web.Request) -> web.Response:
        node = request.match_info["node"]

        async def work(params: dict[str, Any], token: str) -> Any:
            user = self._user(token)
            if node == "debug_token":
                return self._debug_token(params, user)
            if node == "me":
                return {"id": "61550000000001", "name": "wa-devtunnel system user"}
            if node in self.state.phone_numbers and request.method == "GET":
                return self._phone(node, str(params.get("fields", "")))
            if node in self.state.phone_numbers and request.method == "POST":
                return await self._set_phone(node, params)
            raise _unsupported(request.method, node)

        return await self._handle(request, work)

    def _debug_token(self, params: dict[str, Any], inspector: FakeToken) -> dict[str, Any]:
        if self.debug_token_needs_a_developer and inspector.type != "APP":
            raise MetaError(
                "(#100) You must provide an app access token, or a user access token that is an owner or "
                "developer of the app",
                100,
            )
        subject = self.tokens.get(str(params.get("input_token", "")))
        if subject is None:
            return {"data": {"is_valid": False, "error": {"code": 190, "message": "Invalid OAuth access token."}}}
        data: dict[str, Any] = {
            "app_id": subject.app_id,
            "type": subject.type,
            "application": APP_NAME,
            "expires_at": subject.expires_at,
            "data_access_expires_at": 0,
            "is_valid": True,
            "scopes": list(subject.scopes),
            "user_id": "61550000000001",
        }
        if subject.expires_at and subject.expires_at <= datetime.now(UTC).timestamp():
            data["is_valid"] = False
            expired = _meta_time(datetime.fromtimestamp(subject.expires_at, UTC))
            data["error"] = {"code": 190, "message": f"Session has expired on {expired}.", "subcode": 463}
        return {"data": data}

    def _phone(self, node: str, fields: str) -> dict[str, Any]:
        if OVERRIDE_FIELDS not in fields:
            return {"id": node, **self.state.phone_numbers[node]}
        config: dict[str, str] = {}
        if node in self.state.phone_overrides:
            config["phone_number"] = self.state.phone_overrides[node]
        if self.state.waba_override and self.state.app_subscribed_to_waba:
            config["whatsapp_business_account"] = self.state.waba_override
        if self.state.app_subscription:
            config["application"] = self.state.app_subscription["callback_url"]
        return {"webhook_configuration": config, "id": node}

    async def _set_phone(self, node: str, params: dict[str, Any]) -> dict[str, Any]:
        config = params.get(OVERRIDE_FIELDS)
        if not isinstance(config, dict) or "override_callback_uri" not in config:
            raise MetaError("(#100) The parameter webhook_configuration is required", 100)
        url = str(config["override_callback_uri"])
        if url:
            await self.verify_callback(url, str(config.get("verify_token", "")))
            self.state.phone_overrides[node] = url
        else:
            self.state.phone_overrides.pop(node, None)
        return {"success": True}

    async def _edge(self, request: web.Request) -> web.Response:
        node, edge, method = request.match_info["node"], request.match_info["edge"], request.method

        async def work(params: dict[str, Any], token: str) -> Any:
            user = self._user(token)
            if node == APP_ID and edge == "subscriptions":
                if user.type != "APP":
                    raise MetaError("(#15) This method must be called with an app access_token.", 15)
                return await self._app_subscriptions(method, params)
            if node == WABA_ID and edge == "subscribed_apps":
                return await self._subscribed_apps(method, params)
            if node == WABA_ID and edge == "phone_numbers" and method == "GET":
                numbers = [{"id": k, **v, "quality_rating": "GREEN"} for k, v in self.state.phone_numbers.items()]
                return {"data": numbers, "paging": {"cursors": {"before": "QVFI", "after": "QVFI"}}}
            raise _unsupported(method, node)

        return await self._handle(request, work)

    async def _app_subscriptions(self, method: str, params: dict[str, Any]) -> dict[str, Any]:
        if method == "GET":
            return {"data": [self.state.app_subscription] if self.state.app_subscription else []}
        if method == "DELETE":
            self.state.app_subscription = None
            return {"success": True}
        if params.get("object") != "whatsapp_business_account" or not params.get("callback_url"):
            raise MetaError("(#100) The parameter object is required", 100)
        await self.verify_callback(str(params["callback_url"]), str(params.get("verify_token", "")))
        old = self.state.app_subscription["fields"] if self.state.app_subscription else []
        names = [f["name"] for f in old] + [n for n in str(params.get("fields", "")).split(",") if n]
        self.state.app_subscription = {
            "object": "whatsapp_business_account",
            "callback_url": params["callback_url"],
            "active": True,
            "fields": [{"name": n, "version": VERSION} for n in dict.fromkeys(names)],
        }
        return {"success": True}

    async def _subscribed_apps(self, method: str, params: dict[str, Any]) -> dict[str, Any]:
        if method == "GET":
            if not self.state.app_subscribed_to_waba:
                return {"data": []}
            entry: dict[str, Any] = {
                "whatsapp_business_api_data": {
                    "link": f"https://www.facebook.com/games/?app_id={APP_ID}",
                    "name": APP_NAME,
                    "id": APP_ID,
                }
            }
            if self.state.waba_override:
                entry["override_callback_uri"] = self.state.waba_override
            return {"data": [entry]}
        if method == "DELETE":
            self.state.app_subscribed_to_waba, self.state.waba_override = False, None
            return {"success": True}
        url = str(params.get("override_callback_uri", ""))
        if url:
            if not self.state.app_subscribed_to_waba:
                raise MetaError("(#100) Before override the current callback uri, your app must be subscribed", 100)
            await self.verify_callback(url, str(params.get("verify_token", "")))
            self.state.waba_override = url
        else:
            self.state.app_subscribed_to_waba, self.state.waba_override = True, None
        return {"success": True}


class ThreadedFakeGraph:
    """The fake on its own thread and loop, for tests that run the synchronous CLI in-process."""

    def __init__(self, ssl_context: ssl.SSLContext | None = None) -> None:
        self.graph = FakeGraph(ssl_context)
        self._loop = asyncio.new_event_loop()
        self._thread = threading.Thread(target=self._loop.run_forever, name="fake-graph", daemon=True)

    def __enter__(self) -> FakeGraph:
        self._thread.start()
        asyncio.run_coroutine_threadsafe(self.graph.start(), self._loop).result(10)
        return self.graph

    def __exit__(self, *exc: object) -> None:
        asyncio.run_coroutine_threadsafe(self.graph.close(), self._loop).result(10)
        self._loop.call_soon_threadsafe(self._loop.stop)
        self._thread.join(10)
        self._loop.close()


def trusting(ca: trustme.CA) -> ssl.SSLContext:
    """A client context that trusts the fake ngrok's certificates, as Meta trusts real ones."""
    context = ssl.create_default_context()
    ca.configure_trust(context)
    return context


def graph_settings(tmp_path: Path, graph: FakeGraph, **env: str) -> Settings:
    """wa-devtunnel settings pointing at the fake Graph API, tunnelled, with the tests' verify token."""
    return load_settings(
        {"port": "0", "recordings_dir": str(tmp_path / "rec"), "tunnel": "ngrok"},
        environ=graph.env(WHATSAPP_VERIFY_TOKEN=VERIFY_TOKEN, **env),
        cwd=tmp_path,
    )
