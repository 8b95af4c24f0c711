"""A replay plan: every request built up front from the recording, exactly as it will be sent."""

from __future__ import annotations

import secrets
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from enum import StrEnum

from wa_devtunnel.engine.exchange import REDACTED_HEADERS
from wa_devtunnel.engine.forwarder import CLIENT_PROXY_HEADERS, DEFAULT_FORWARD_TIMEOUT_S, HOP_BY_HOP, Forwarder
from wa_devtunnel.engine.origin import ORIGIN_HEADER, origin_header
from wa_devtunnel.engine.replay.source import RecordedExchange, ReplayError
from wa_devtunnel.engine.tunnel.selftest import new_challenge
from wa_devtunnel.rules.handshake import redact_verify_token, verification_query
from wa_devtunnel.rules.signature import LEGACY_SIGNATURE_HEADER, SIGNATURE_HEADER, sign_body

REPLAY_ORIGIN = "replay"
FORGED = "bad"  # PlannedRequest.signature of a request sent with a deliberately wrong signature


class SignatureMode(StrEnum):
    """How X-Hub-Signature-256 is sent: Meta's own, recomputed, or deliberately wrong."""

    ORIGINAL = "original"
    RESIGN = "resign"
    BAD = "bad"


@dataclass(frozen=True, slots=True)
class ReplayOptions:
    """Where and how to send; the secret and token are only needed for resign/bad and handshakes."""

    target_url: str
    signature: SignatureMode = SignatureMode.ORIGINAL
    app_secret: str | None = None
    verify_token: str | None = None
    concurrency: int = 1
    rate: float | None = None
    timeout_s: float = DEFAULT_FORWARD_TIMEOUT_S
    # The running wa-devtunnel's key when it is the target, so it records these as replays.
    origin_key: str | None = None


@dataclass(frozen=True, slots=True)
class PlannedRequest:
    """One request exactly as it will be sent; `signature` says which signature it carries."""

    index: int
    source: RecordedExchange
    method: str
    query: str
    headers: tuple[tuple[str, str], ...]
    body: bytes
    signature: str
    challenge: str | None = None

    def url(self, target_url: str) -> str:
        """The full URL, with the verify token redacted so it can be shown or logged."""
        return Forwarder(target_url).url_for(redact_verify_token(self.query))


def plan_replay(
    exchanges: Sequence[RecordedExchange],
    options: ReplayOptions,
    edited_bodies: Mapping[str, bytes] | None = None,
) -> list[PlannedRequest]:
    """Build every request up front, so a missing secret or token stops the replay before it starts.

    `edited_bodies` (exchange id -> new body) replaces bodies; Meta's signature cannot cover an
    edited body, so those are re-signed unless a bad signature is asked for.
    """
    edited = dict(edited_bodies or {})
    resigning = options.signature is SignatureMode.RESIGN or any(
        e.id in edited and edited[e.id] != e.body and e.kind == "event" for e in exchanges
    )
    if resigning and options.signature is not SignatureMode.BAD and not options.app_secret:
        raise ReplayError("re-signing needs the App Secret to sign with: pass --app-secret or set WHATSAPP_APP_SECRET")
    if any(e.kind == "verify" for e in exchanges) and not options.verify_token:
        raise ReplayError(
            "replaying a handshake needs the target's verify token: pass --verify-token T "
            "(or set WHATSAPP_VERIFY_TOKEN), or leave handshakes out with --kind event"
        )
    return [
        _plan_one(index, exchange, options, edited.get(exchange.id) if edited else None)
        for index, exchange in enumerate(exchanges)
    ]


def _plan_one(
    index: int, exchange: RecordedExchange, options: ReplayOptions, edited_body: bytes | None
) -> PlannedRequest:
    request = exchange.record.get("request") or {}
    headers = replayed_headers(request.get("headers") or ())
    origin = (ORIGIN_HEADER, origin_header(REPLAY_ORIGIN, options.origin_key))
    if exchange.kind == "verify":
        challenge = new_challenge()
        query = verification_query(challenge, options.verify_token or "")
        headers.append(origin)
        return PlannedRequest(index, exchange, "GET", query, tuple(headers), b"", "none", challenge)
    body = exchange.body if edited_body is None else edited_body
    signature = options.signature
    if signature is SignatureMode.ORIGINAL and body != exchange.body:
        signature = SignatureMode.RESIGN
    mode = "original" if header_value(headers, SIGNATURE_HEADER) is not None else "absent"
    if signature is not SignatureMode.ORIGINAL:
        # A recomputed (or deliberately wrong) sha256 replaces Meta's in place; the stale sha1 goes.
        key = (
            options.app_secret or ""
            if signature is SignatureMode.RESIGN
            else "wa-devtunnel-bad-" + secrets.token_hex(8)
        )
        mode = "resigned" if signature is SignatureMode.RESIGN else FORGED
        headers = [(n, v) for n, v in headers if n.lower() != LEGACY_SIGNATURE_HEADER.lower()]
        headers = _with_header(headers, SIGNATURE_HEADER, sign_body(body, key))
    headers.append(origin)
    return PlannedRequest(index, exchange, "POST", str(request.get("query") or ""), tuple(headers), body, mode)


# Never sent again: hop-by-hop headers, proxy headers (they described the original hop, or were a stranger's
# claim: a replay is a new request) and our own origin header (the replay adds its own).
_NOT_REPLAYED = HOP_BY_HOP | CLIENT_PROXY_HEADERS | {ORIGIN_HEADER.lower()}


def replayed_headers(raw_headers: Iterable[Sequence[str]]) -> list[tuple[str, str]]:
    """The recorded headers a replay sends, in Meta's order, in one pass over them.

    end_to_end_headers minus CLIENT_PROXY_HEADERS and ORIGIN_HEADER, and minus credentials the recorder
    redacted (they cannot be sent again).
    """
    pairs = [(str(pair[0]), str(pair[1])) for pair in raw_headers]
    lowered = [name.lower() for name, _value in pairs]
    dropped = _NOT_REPLAYED
    if "connection" in lowered:  # headers named in Connection are hop-by-hop too (RFC 9110 section 7.6.1)
        named = {
            token.strip().lower()
            for (_name, value), low in zip(pairs, lowered, strict=True)
            if low == "connection"
            for token in value.split(",")
            if token.strip()
        }
        dropped = dropped | named
    return [
        pair
        for pair, low in zip(pairs, lowered, strict=True)
        if low not in dropped and not (low in REDACTED_HEADERS and pair[1] == "REDACTED")
    ]


def _with_header(headers: list[tuple[str, str]], name: str, value: str) -> list[tuple[str, str]]:
    """Replace the header where it stood (or append it), so the order stays Meta's."""
    wanted = name.lower()
    if not any(n.lower() == wanted for n, _ in headers):
        return [*headers, (name, value)]
    return [(n, value if n.lower() == wanted else v) for n, v in headers]


def header_value(pairs: Sequence[Sequence[str]], name: str) -> str | None:
    """The first value of a header, any case: recorded pairs keep whatever case the sender used."""
    wanted = name.lower()
    for key, value in pairs:
        if key.lower() == wanted:
            return value
    return None
