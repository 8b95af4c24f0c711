"""Our own requests (self-test, sample, replay) are labelled by a per-session key, never by a stranger.

The callback URL is public: anyone can send `X-WA-Devtunnel-Origin: replay`. A label counts only when
the header also carries the session's unguessable key (kept in memory and in the 0600 instance file);
the key itself is never recorded.
"""

from __future__ import annotations

import hmac
import secrets

ORIGIN_HEADER = "X-WA-Devtunnel-Origin"
KNOWN_ORIGINS = frozenset({"selftest", "replay", "sample"})
META = "meta"
_KEY_PARAM = "; key="


def new_origin_key() -> str:
    """128 random bits: one per receiver session."""
    return secrets.token_urlsafe(16)


def origin_header(origin: str, key: str | None) -> str:
    """The header value our tools send: `replay; key=...` for a known receiver, else just the label."""
    return f"{origin}{_KEY_PARAM}{key}" if key else origin


def trusted_origin(value: str | None, key: str) -> str:
    """The label when the value carries this session's key, else "meta" (a stranger's claim counts for nothing)."""
    if not value:
        return META
    label, sep, given = value.partition(_KEY_PARAM)
    if sep and label in KNOWN_ORIGINS and hmac.compare_digest(given.encode("utf-8", "replace"), key.encode()):
        return label
    return META


def without_key(value: str) -> str:
    """What the recording keeps of the header: the label only."""
    return value.partition(_KEY_PARAM)[0]
