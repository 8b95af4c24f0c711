"""Meta's GET verification handshake: answer it, and say WHY when it is refused.

Meta's dashboard only reports "The callback URL or verify token couldn't be validated", so the
reason computed here is the one thing that tells a developer what went wrong.
"""

from __future__ import annotations

import hmac
from collections.abc import Sequence
from dataclasses import dataclass
from urllib.parse import parse_qsl, unquote, unquote_plus, urlencode

MODE = "hub.mode"
CHALLENGE = "hub.challenge"
VERIFY_TOKEN = "hub.verify_token"
HUB_PARAMS = (MODE, CHALLENGE, VERIFY_TOKEN)
SUBSCRIBE = "subscribe"
REDACTED = "REDACTED"

_QUOTES = "\"'"
_SHOWN_LIMIT = 40


@dataclass(frozen=True, slots=True)
class VerifyAttempt:
    """The decision on one handshake, with the diagnosis the dashboard never gives."""

    ok: bool
    status: int
    body: str
    reason: str
    account: str | None
    mode: str | None
    challenge: str | None


def decide_handshake(query: str, tokens: Sequence[tuple[str, str]]) -> VerifyAttempt:
    """Answer Meta's handshake from the RAW query string against every (account, token) pair.

    `account` names the account whose token matched, even when the request is refused for
    another reason (wrong mode, empty challenge), so the refusal can be labelled.
    """
    pairs = parse_qsl(query.removeprefix("?"), keep_blank_values=True)
    values: dict[str, list[str]] = {name: [] for name in HUB_PARAMS}
    for name, value in pairs:
        if name in values:
            values[name].append(value)
    mode = _first(values[MODE])
    challenge = _first(values[CHALLENGE])
    sent = _first(values[VERIFY_TOKEN])
    account = _matching_account(sent, tokens)
    reason = _diagnose(pairs, values, mode, challenge, sent, account, tokens)
    if reason:
        return VerifyAttempt(
            ok=False,
            status=403,
            body="Forbidden",  # a stranger learns nothing; the reason is for our own screen and recording
            reason=reason,
            account=account,
            mode=mode,
            challenge=challenge,
        )
    return VerifyAttempt(
        ok=True,
        status=200,
        body=challenge or "",
        reason="",
        account=account,
        mode=mode,
        challenge=challenge,
    )


def verification_query(challenge: str, verify_token: str) -> str:
    """The query string Meta sends to verify a callback URL (self-test, replays, fakes)."""
    return urlencode({MODE: SUBSCRIBE, CHALLENGE: challenge, VERIFY_TOKEN: verify_token})


def redact_verify_token(query: str, tokens: Sequence[str] = ()) -> str:
    """Hide every verify-token value so recordings never hold the token.

    Any parameter named like hub.verify_token (any case or spacing: the diagnosis explains a
    misspelt name, the recording must not keep its value) and any parameter whose value is one of
    `tokens`, whatever its name. Works on the raw string so every other byte (order, duplicates,
    odd encodings) survives; empty values are kept as they are since they reveal nothing.
    """
    secrets = {token for token in tokens if token}
    segments = query.split("&")
    for index, segment in enumerate(segments):
        raw_name, equals, value = segment.partition("=")
        name = raw_name.removeprefix("?") if index == 0 else raw_name
        if not (equals and value):
            continue
        named_token = "verify_token" in unquote_plus(name).strip().lower().replace(" ", "")
        if named_token or (secrets and _decoded_forms(value) & secrets):
            segments[index] = f"{raw_name}={REDACTED}"
    return "&".join(segments)


def _decoded_forms(value: str) -> set[str]:
    """The value as sent, once and twice URL-decoded, with `+` as a space or not."""
    once = unquote_plus(value)
    return {value, once, unquote(value), unquote_plus(once), once.strip()}


def _first(values: list[str]) -> str | None:
    return values[0] if values else None


def _utf8(text: str) -> bytes:
    return text.encode("utf-8", "surrogatepass")


def _matching_account(sent: str | None, tokens: Sequence[tuple[str, str]]) -> str | None:
    """Compare in constant time against EVERY token, so timing says nothing about which matched."""
    sent_bytes = _utf8(sent) if sent is not None else b""
    matched: str | None = None
    for name, token in tokens:
        equal = hmac.compare_digest(sent_bytes, _utf8(token))
        if equal and token and sent is not None and matched is None:
            matched = name
    return matched


def _diagnose(
    pairs: list[tuple[str, str]],
    values: dict[str, list[str]],
    mode: str | None,
    challenge: str | None,
    sent: str | None,
    account: str | None,
    tokens: Sequence[tuple[str, str]],
) -> str:
    """Return the first thing wrong with the request, in the order a developer should fix it."""
    missing = [name for name in HUB_PARAMS if not values[name]]
    if missing:
        return f"missing {', '.join(missing)}{_missing_hint(pairs, missing)}"
    duplicates = [
        f"duplicate {name} parameter (sent {len(values[name])} times)"
        for name in HUB_PARAMS
        if len(set(values[name])) > 1
    ]
    if duplicates:
        return "; ".join(duplicates)
    if mode != SUBSCRIBE:
        return f"hub.mode is {_shown(mode or '')}, expected '{SUBSCRIBE}'"
    if account is None:
        return _token_mismatch(sent or "", [token for _, token in tokens if token])
    if not challenge:
        return "empty hub.challenge"
    return ""


def _missing_hint(pairs: list[tuple[str, str]], missing: list[str]) -> str:
    """Point at near-miss names (hub_mode, Hub.Mode) that a hand-written request often uses."""
    if not pairs:
        return " (no query string: not a verification request)"
    wanted = {_loose(name) for name in missing}
    near = []
    for name, _ in pairs:
        if _loose(name) in wanted and name not in near:
            near.append(name)
    if not near:
        return ""
    return f" (got {', '.join(_shown(name) for name in near)} instead)"


def _loose(name: str) -> str:
    return name.strip().lower().replace("_", ".")


def _token_mismatch(sent: str, expected: list[str]) -> str:
    """Explain a token mismatch without ever quoting a configured token (or the sent one)."""
    if not expected:
        return "no verify token configured"
    if any(sent.strip() == token.strip() for token in expected):
        if sent == sent.strip():
            return "token mismatch: leading/trailing whitespace (in the configured token)"
        return "token mismatch: leading/trailing whitespace"
    if any(sent.casefold() == token.casefold() for token in expected):
        return "token mismatch: letter case differs"
    if any(sent.strip().casefold() == token.strip().casefold() for token in expected):
        return "token mismatch: leading/trailing whitespace and letter case differs"
    hint = _unknown_token_hint(sent, expected)
    return f"token mismatch: unknown token ({hint})" if hint else "token mismatch: unknown token"


def _unknown_token_hint(sent: str, expected: list[str]) -> str:
    """Recognise the usual encoding and quoting slips; the hint never reveals the token."""
    if not sent:
        return "hub.verify_token is empty"
    for token in expected:
        if unquote(sent) == token or unquote_plus(sent) == token:
            return "looks URL-encoded twice"
        if sent.replace(" ", "+") == token:
            return "a '+' in the token arrived as a space: send it as %2B"
        if unquote(token) == sent or unquote_plus(token) == sent:
            return "the configured token looks URL-encoded"
        if sent.strip(_QUOTES) == token or token.strip(_QUOTES) == sent:
            return "quotes around the token"
    return ""


def _shown(value: str) -> str:
    """Quote a value we received for a one-line reason: escaped, and cut when long."""
    text = value[:_SHOWN_LIMIT]
    if not text.isprintable():
        text = text.encode("unicode_escape").decode("ascii")
    if len(value) > _SHOWN_LIMIT:
        return f"'{text}...' ({len(value)} characters)"
    return f"'{text}'"
