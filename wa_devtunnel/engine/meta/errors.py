"""Meta's Graph API errors, kept verbatim, and what a developer should do about the usual ones."""

from __future__ import annotations

import json
from typing import Any

from wa_devtunnel.engine.http_client import RequestFailure

# What to check when Meta never answered: nothing is known about the configuration then.
NETWORK_FIX = (
    "check this machine's network: DNS, a firewall, a VPN, or a proxy it needs (HTTPS_PROXY, NO_PROXY; "
    "a TLS-inspecting proxy's CA in this machine's certificate store); then try again"
)


class GraphError(Exception):
    """An error answered by Meta (or by something on the way that answered HTTP), carrying Meta's fields untouched."""

    # No answer at all (DNS, refused, TLS, timeout, proxy): GraphUnreachable, never worded as Meta's.
    unreachable = False

    def __init__(
        self,
        message: str,
        type: str = "",
        code: int | None = None,
        error_subcode: int | None = None,
        fbtrace_id: str = "",
        status: int = 0,
    ) -> None:
        super().__init__(message)
        self.message = message
        self.type = type
        self.code = code
        self.error_subcode = error_subcode
        self.fbtrace_id = fbtrace_id
        self.status = status
        self.app_token_used = False  # a 190 then means META_APP_ID / WHATSAPP_APP_SECRET, not the access token

    @classmethod
    def from_response(cls, status: int, text: str) -> GraphError:
        """Meta's {"error": {...}} body, or a readable stand-in when something else answered."""
        try:
            error = json.loads(text).get("error")
        except (ValueError, AttributeError):
            error = None
        if not isinstance(error, dict):
            snippet = " ".join(text.split())[:200]
            return cls(f"HTTP {status} from the Graph API: {snippet or 'empty body'}", status=status)
        return cls(
            str(error.get("message", "")),
            str(error.get("type", "")),
            _int_or_none(error.get("code")),
            _int_or_none(error.get("error_subcode")),
            str(error.get("fbtrace_id", "")),
            status,
        )

    def __str__(self) -> str:
        if self.code is None or self.message.startswith("(#"):
            return self.message
        subcode = f", subcode {self.error_subcode}" if self.error_subcode else ""
        return f"{self.message} (code {self.code}{subcode})"

    def details(self) -> str:
        """`OAuthException, code 2200, fbtrace_id AbC` for a support ticket."""
        parts = [self.type] if self.type else []
        if self.code is not None:
            parts.append(f"code {self.code}")
        if self.error_subcode:
            parts.append(f"subcode {self.error_subcode}")
        if self.fbtrace_id:
            parts.append(f"fbtrace_id {self.fbtrace_id}")
        return ", ".join(parts)


class GraphUnreachable(GraphError):
    """No answer from the Graph API: the network, never Meta, said no; `failure` says how."""

    unreachable = True

    def __init__(self, host: str, failure: RequestFailure) -> None:
        super().__init__(f"could not reach {host}: {failure.reason} (no answer from Meta; check your network/proxy)")
        self.host = host
        self.failure = failure

    def __str__(self) -> str:
        return self.message

    def details(self) -> str:
        """Meta said nothing, so there is no code or fbtrace_id to quote."""
        return ""


class MissingCredentials(Exception):
    """A Graph call needs settings that are not set; the message names them."""


def _int_or_none(value: Any) -> int | None:
    """Meta sends codes as numbers, but a proxy's body may hold anything."""
    try:
        return int(value)
    except (TypeError, ValueError):
        return None


def advice_for(error: GraphError, waba_id: str | None = None, base: str = "https://graph.facebook.com/v23.0") -> str:
    """One line on what to do about the Graph errors developers hit when configuring webhooks."""
    if error.unreachable:
        return NETWORK_FIX
    message = error.message.lower()
    if error.code == 2200:
        return (
            "Meta could not verify the callback: wa-devtunnel must be running at that URL with the same "
            "verify token (its verify line says why it refused)"
        )
    if error.code == 100 and "must be subscribed" in message:
        return (
            f'subscribe the app to the WABA first: curl -X POST -H "Authorization: Bearer $WHATSAPP_ACCESS_TOKEN" '
            f"{base}/{waba_id or '<waba-id>'}/subscribed_apps"
        )
    if error.code == 190 and error.app_token_used:
        return "META_APP_ID / WHATSAPP_APP_SECRET are not this app's ID and secret (App Dashboard > App settings)"
    if error.code == 190:
        return (
            "the access token is invalid or expired: generate a system-user token (Business Settings > "
            "System users > Generate token) and set WHATSAPP_ACCESS_TOKEN"
        )
    if error.code in (10, 200) or (error.code is not None and 200 <= error.code < 300):
        return "the token lacks a permission: it needs whatsapp_business_management (and _messaging)"
    if error.code == 100 and "does not exist" in message:
        return "check the ID in .env (META_APP_ID, WHATSAPP_BUSINESS_ACCOUNT_ID, WHATSAPP_PHONE_NUMBER_ID)"
    return ""
