"""Where a request came from: Meta through the tunnel, someone else through it, this machine, or our own tools.

Our own requests (self-test, sample, replay) are labelled by a per-session key, never by a stranger: the
callback URL is public, and anyone can send `X-WA-Devtunnel-Origin: replay`. A label counts only when the
header also carries the session's unguessable key (kept in memory and in the 0600 instance file); the key
itself is never recorded.

Everyone else is labelled by two headers, as a label only, never for security (the signature is what
proves Meta sent an event): the tunnel agent's forwarded header says the request came through the tunnel
(ngrok adds X-Forwarded-For/-Proto/-Host, cloudflared Cf-Connecting-Ip and X-Forwarded-For), and Meta's
user agent says who sent it. Both arrive from the agent on loopback, so a local client can forge them too.
"""

from __future__ import annotations

import hmac
import secrets
from typing import Protocol

ORIGIN_HEADER = "X-WA-Devtunnel-Origin"
KNOWN_ORIGINS = frozenset({"selftest", "replay", "sample"})
META = "meta"  # Meta's user agent, through the tunnel
OTHER = "other"  # through the tunnel, another user agent: scanners, curl, a browser
LOCAL = "local"  # not through the tunnel (this machine or the LAN), not ours
# Every label a record can carry, for --origin and the filters (older recordings have only meta and ours).
ORIGINS = (META, OTHER, LOCAL, "selftest", "sample", "replay")
# Meta's user agents, observed (Meta does not document them): event POSTs and the verification GET.
META_USER_AGENT = "facebookexternalua"
META_HANDSHAKE_USER_AGENT = "facebookplatform/1.0 (+http://developers.facebook.com)"
_META_AGENTS = (META_USER_AGENT, "facebookplatform/")
_META_EXACT = frozenset({META_USER_AGENT, META_HANDSHAKE_USER_AGENT})  # as Meta sends them: no lower() needed
_AGENT_PREFIX = max(map(len, _META_AGENTS))
# The address the tunnel's edge saw: the last X-Forwarded-For hop (the one the tunnel added; what comes
# before it is the sender's own claim), else Cloudflare's own header.
CLOUDFLARE_CLIENT_HEADER = "Cf-Connecting-Ip"
FORWARDED_FOR_HEADER = "X-Forwarded-For"
# An address is at most 45 characters (IPv6 with an IPv4 tail); a forged header is cut to this.
MAX_CLIENT_CHARS = 64
_KEY_PARAM = "; key="


class RequestHeaders(Protocol):
    """A case-insensitive multidict of request headers (aiohttp's CIMultiDictProxy, multidict.CIMultiDict)."""

    def get(self, key: str, default: str | None = None, /) -> str | None: ...

    def getall(self, key: str, default: None, /) -> list[str] | None: ...


def new_origin_key() -> str:
    """128 random bits: one per receiver session."""
    return secrets.token_urlsafe(16)


def origin_header(origin: str, key: str | None) -> str:
    """The header value our tools send: `replay; key=...` for a known receiver, else just the label."""
    return f"{origin}{_KEY_PARAM}{key}" if key else origin


def keyed_origin(value: str | None, key: str) -> str | None:
    """Our own label when the value carries this session's key, else None (a stranger's claim counts for nothing)."""
    if not value:
        return None
    label, sep, given = value.partition(_KEY_PARAM)
    if sep and label in KNOWN_ORIGINS and hmac.compare_digest(given.encode("utf-8", "replace"), key.encode()):
        return label
    return None


def request_origin(headers: RequestHeaders, key: str) -> tuple[str, str | None]:
    """(the origin label, the client address the tunnel saw, or None when the request did not come through one).

    On the ack path: a few header lookups, nothing more.
    """
    client = tunnel_client(headers)
    ours = headers.get(ORIGIN_HEADER)
    if ours is not None:
        label = keyed_origin(ours, key)
        if label is not None:
            return label, client
    if client is None:
        return LOCAL, None
    agent = headers.get("User-Agent")
    if agent is not None and (agent in _META_EXACT or agent[:_AGENT_PREFIX].lower().startswith(_META_AGENTS)):
        return META, client
    return OTHER, client


def tunnel_client(headers: RequestHeaders) -> str | None:
    """The address the tunnel's edge saw ("" when its header is empty), or None without a forwarded header.

    The last X-Forwarded-For entry first: ngrok and Cloudflare both append the address they saw there,
    while a Cf-Connecting-Ip sent through ngrok is only the sender's claim (Cloudflare sets its own).
    """
    chain = headers.getall(FORWARDED_FOR_HEADER, None)
    if chain is not None:
        last = chain[-1]
        return client_address(last.rpartition(",")[2] if "," in last else last)
    connecting = headers.get(CLOUDFLARE_CLIENT_HEADER)
    return None if connecting is None else client_address(connecting)


def client_address(value: str) -> str:
    """A header's address as recorded: trimmed and cut to MAX_CLIENT_CHARS (front ends escape the rest)."""
    return value.strip()[:MAX_CLIENT_CHARS]


def without_key(value: str) -> str:
    """What the recording keeps of the header: the label only."""
    return value.partition(_KEY_PARAM)[0]
