"""X-Hub-Signature-256: sign and verify raw bodies, and explain the usual mismatches.

The signature covers the exact bytes Meta sent (compact JSON, non-ASCII escaped, "/" maybe as
"\\/"), so every check here works on bytes; the diagnosis work runs only after a mismatch.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import re
from collections.abc import Sequence
from dataclasses import dataclass, field
from enum import StrEnum
from typing import Any

SIGNATURE_HEADER = "X-Hub-Signature-256"
LEGACY_SIGNATURE_HEADER = "X-Hub-Signature"
NO_SECRET_DETAIL = "no App Secret configured: set WHATSAPP_APP_SECRET to verify X-Hub-Signature-256"
NO_MATCH_DETAIL = "no configured App Secret matches (is WHATSAPP_APP_SECRET this app's secret?)"
META_STYLE_DETAIL = "the signature matches this JSON re-serialised in Meta's style: a proxy re-encoded the body"

_HEX_SHA256 = re.compile(r"[0-9a-fA-F]{64}")
_HEX_SHA1 = re.compile(r"[0-9a-fA-F]{40}")
_FORM = 'expected "sha256=" followed by 64 hex characters'
_META_FORM_LENGTH = len("sha256=") + 64
_SHA256_BLOCK = 64
_INNER_PAD = bytes(x ^ 0x36 for x in range(256))  # RFC 2104's ipad and opad, as byte translations
_OUTER_PAD = bytes(x ^ 0x5C for x in range(256))
# Re-serialising a body to diagnose a mismatch holds the CPU (and the GIL) for a while: only for sizes
# a proxy plausibly re-encodes, never for a stranger's megabytes.
RESERIALISE_LIMIT_BYTES = 256 * 1024


class SignatureVerdict(StrEnum):
    """What the receiver can say about X-Hub-Signature-256 (recorded as this string)."""

    VALID = "valid"
    INVALID = "invalid"
    MISSING = "missing"
    UNCHECKED = "unchecked"


@dataclass(frozen=True, slots=True)
class SignatureCheck:
    """A verdict with the reason a developer needs; never carries a secret."""

    verdict: SignatureVerdict
    detail: str
    account: str | None


def sign_body(body: bytes, app_secret: str) -> str:
    """Sign exactly like Meta does, for replays and synthetic events."""
    return "sha256=" + _digest(app_secret, body).hex()


@dataclass(frozen=True, slots=True)
class SigningKey:
    """One configured App Secret as an HMAC key, with the verdict a match gives: both built once."""

    key: bytes
    match: SignatureCheck
    # HMAC-SHA256 (RFC 2104) with the key's inner and outer pads already hashed: per request, two copies of
    # plain hashlib states and no Python-level hmac.HMAC object (this runs on every acknowledgement).
    inner: Any = field(init=False, repr=False, compare=False)
    outer: Any = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        key = self.key if len(self.key) <= _SHA256_BLOCK else hashlib.sha256(self.key).digest()
        key = key.ljust(_SHA256_BLOCK, b"\0")
        object.__setattr__(self, "inner", hashlib.sha256(key.translate(_INNER_PAD)))
        object.__setattr__(self, "outer", hashlib.sha256(key.translate(_OUTER_PAD)))

    def signs(self, body: bytes, given: bytes) -> bool:
        """True when `given` (the header's hex, decoded) is the HMAC-SHA256 of `body` under this key."""
        inner = self.inner.copy()
        inner.update(body)
        outer = self.outer.copy()
        outer.update(inner.digest())
        return hmac.compare_digest(outer.digest(), given)


def signing_keys(secrets: Sequence[tuple[str, str]]) -> tuple[SigningKey, ...]:
    """The configured (label, App Secret) pairs, ready for the per-request check."""
    return tuple(
        SigningKey(_utf8(secret), SignatureCheck(SignatureVerdict.VALID, f"matches the App Secret of '{label}'", label))
        for label, secret in secrets
        if secret
    )


def check_signature(
    body: bytes,
    header: str | None,
    secrets: Sequence[tuple[str, str]],
    wrong_keys: Sequence[tuple[str, str]] = (),
    legacy_header: str | None = None,
    *,
    keys: Sequence[SigningKey] | None = None,
) -> SignatureCheck:
    """Check X-Hub-Signature-256 against each (label, App Secret) and explain a failure.

    `wrong_keys` are (label, key) pairs that developers mistake for the App Secret, such as
    ("the verify token", token); they are tried only to diagnose a mismatch. `keys` is
    signing_keys(secrets), when the caller keeps it.
    """
    # Fast path: exactly Meta's form ("sha256=" + 64 lowercase hex) and a match; all else goes the long way.
    # islower: no uppercase hex (that verdict carries a note); fromhex refuses any other character.
    if header is not None and len(header) == _META_FORM_LENGTH and header.startswith("sha256=") and header.islower():
        try:
            given = bytes.fromhex(header[7:])  # decoded once, compared with each key's digest
        except ValueError:
            given = b""
        if len(given) == 32:  # not 32: whitespace inside the hex, which the long way explains
            for signing in signing_keys(secrets) if keys is None else keys:
                if signing.signs(body, given):
                    return signing.match
    configured = [(label, secret) for label, secret in secrets if secret]
    if not configured:
        return SignatureCheck(SignatureVerdict.UNCHECKED, NO_SECRET_DETAIL, None)
    if header is None or not header.strip():
        return _missing(body, legacy_header, configured)
    given, problem = _parse_header(header)
    if given is None:
        return SignatureCheck(SignatureVerdict.INVALID, problem, None)
    matched = next((label for label, secret in configured if _matches(secret, body, given)), None)
    if matched is not None:
        detail = f"matches the App Secret of '{matched}'"
        if problem:
            detail = f"{detail} ({problem})"
        return SignatureCheck(SignatureVerdict.VALID, detail, matched)
    detail = _mismatch(body, given, configured, wrong_keys)
    return SignatureCheck(SignatureVerdict.INVALID, detail, None)


def _utf8(text: str) -> bytes:
    return text.encode("utf-8", "surrogatepass")


def _digest(secret: str, body: bytes) -> bytes:
    return hmac.digest(_utf8(secret), body, "sha256")


def _matches(key: str, body: bytes, given: bytes) -> bool:
    return hmac.compare_digest(_digest(key, body), given)


def _parse_header(header: str) -> tuple[bytes | None, str]:
    """Return (digest, note) or (None, why the header is malformed); lenient on case and spaces."""
    text = header.strip()
    algorithm, equals, hex_digest = text.partition("=")
    if not equals:
        if _HEX_SHA256.fullmatch(text):
            return None, f'{SIGNATURE_HEADER} has no "sha256=" prefix ({_FORM})'
        return None, f"{SIGNATURE_HEADER} is malformed ({_FORM})"
    if algorithm.strip().lower() == "sha1":
        return None, f"{SIGNATURE_HEADER} holds a sha1 signature ({_FORM})"
    if algorithm.strip().lower() != "sha256":
        return None, f'{SIGNATURE_HEADER} does not start with "sha256=" ({_FORM})'
    hex_digest = hex_digest.strip()
    if not _HEX_SHA256.fullmatch(hex_digest):
        return None, (f'{SIGNATURE_HEADER} is malformed: {len(hex_digest)} characters after "sha256=" ({_FORM})')
    note = "uppercase hex: Meta sends lowercase" if hex_digest != hex_digest.lower() else ""
    return bytes.fromhex(hex_digest), note


def _missing(body: bytes, legacy_header: str | None, configured: list[tuple[str, str]]) -> SignatureCheck:
    """Say the header is absent, and whether the legacy sha1 header would have passed."""
    detail = f"no {SIGNATURE_HEADER} header"
    if legacy_header and legacy_header.strip():
        detail += f": only the legacy sha1 {LEGACY_SIGNATURE_HEADER} was sent"
        algorithm, _, hex_digest = legacy_header.strip().partition("=")
        hex_digest = hex_digest.strip()
        if algorithm.strip().lower() == "sha1" and _HEX_SHA1.fullmatch(hex_digest):
            given = bytes.fromhex(hex_digest)
            labels = [
                label
                for label, secret in configured
                if hmac.compare_digest(hmac.digest(_utf8(secret), body, "sha1"), given)
            ]
            if labels:
                detail += f" (it matches the App Secret of '{labels[0]}')"
            else:
                detail += " (it matches no configured App Secret either)"
    return SignatureCheck(SignatureVerdict.MISSING, detail, None)


def _mismatch(
    body: bytes,
    given: bytes,
    configured: list[tuple[str, str]],
    wrong_keys: Sequence[tuple[str, str]],
) -> str:
    """Find the likeliest reason a well-formed signature does not match."""
    keys = [secret for _, secret in configured]
    for label, key in wrong_keys:
        if key and _matches(key, body, given):
            return f"signed with {label} instead of the App Secret"
    for label, secret in configured:
        trimmed = secret.strip()
        if trimmed and trimmed != secret and _matches(trimmed, body, given):
            return (
                f"the signature matches the App Secret of '{label}' without its surrounding "
                "whitespace: remove the whitespace from the configured App Secret"
            )
    if not body:
        return "the body is empty: was it read before the signature check?"
    trimmed_body = body.strip()
    if trimmed_body != body and any(_matches(key, trimmed_body, given) for key in keys):
        return "the signature matches the body without its leading/trailing whitespace: something added bytes around it"
    if len(body) > RESERIALISE_LIMIT_BYTES:
        return NO_MATCH_DETAIL
    for style, candidate in _reserialised(body):
        if candidate != body and any(_matches(key, candidate, given) for key in keys):
            if style == "Meta's style":
                return META_STYLE_DETAIL
            return (
                f"the signature matches this JSON re-serialised in {style}: it was computed "
                "over a re-encoded body instead of the raw bytes"
            )
    return NO_MATCH_DETAIL


def _reserialised(body: bytes) -> list[tuple[str, bytes]]:
    """The same JSON as Meta, Python and JavaScript would each serialise it."""
    try:
        document: Any = json.loads(body)
        meta = json.dumps(document, separators=(",", ":"))
        candidates = [
            ("Meta's style", meta.replace("/", "\\/").encode("ascii")),
            ("Meta's style", meta.encode("ascii")),
            ("json.dumps default style", json.dumps(document).encode("ascii")),
        ]
        unescaped = (
            ("json.dumps(ensure_ascii=False) style", (", ", ": ")),
            ("compact UTF-8 style (JSON.stringify)", (",", ":")),
        )
        for style, separators in unescaped:
            text = json.dumps(document, ensure_ascii=False, separators=separators)
            candidates.append((style, text.encode("utf-8", "surrogatepass")))
    except (ValueError, RecursionError):
        return []
    return candidates
