"""X-Hub-Signature-256 over raw bytes, and the diagnosis of every usual mismatch."""

from __future__ import annotations

import dataclasses
import hashlib
import hmac
import json
import string

import pytest
from hypothesis import assume, given
from hypothesis import strategies as st

from wa_devtunnel.rules import signature
from wa_devtunnel.rules.signature import (
    META_STYLE_DETAIL,
    NO_MATCH_DETAIL,
    NO_SECRET_DETAIL,
    SignatureCheck,
    SignatureVerdict,
    check_signature,
    sign_body,
)

APP_SECRET = "6f1c0d9e3b7a4c2e8d5f0a1b2c3d4e5f"
OTHER_SECRET = "a0b1c2d3e4f5a6b7c8d9e0f1a2b3c4d5"
VERIFY_TOKEN = "Sh0p-Verify-Token-2026"
ACCESS_TOKEN = "EAAGm0PX4ZCpsBAKZCZAZBZCZB1234567890abcdef"
SECRETS = [("default", APP_SECRET)]
WRONG_KEYS = [("the verify token", VERIFY_TOKEN), ("the access token", ACCESS_TOKEN)]
ALL_SECRETS = (APP_SECRET, OTHER_SECRET, VERIFY_TOKEN, ACCESS_TOKEN)

# Exactly what Meta sends: compact, non-ASCII escaped (emoji as a surrogate pair), "/" as "\/".
META_BODY = (
    b'{"object":"whatsapp_business_account","entry":[{"id":"102290129340398","changes":'
    b'[{"value":{"messaging_product":"whatsapp","metadata":{"display_phone_number":'
    b'"15550783881","phone_number_id":"106540352242922"},"contacts":[{"profile":{"name":'
    b'"J\\u00e4rvi"},"wa_id":"16505551234"}],"messages":[{"from":"16505551234","id":'
    b'"wamid.HBgLMTY1MDM4Nzk0MzkVAgASGBQzQTRBNjU5OUFFRTAzODEwMTQ0RgA=","timestamp":'
    b'"1749416383","type":"text","text":{"body":"K\\u00e4se? \\ud83d\\ude2e https:\\/\\/'
    b'example.com\\/a"}}]},"field":"messages"}]}]}'
)
DOCUMENT = json.loads(META_BODY)


def check(body: bytes, header: str | None, **options: object) -> SignatureCheck:
    result = check_signature(body, header, SECRETS, WRONG_KEYS, **options)  # type: ignore[arg-type]
    for secret in ALL_SECRETS:
        assert secret not in result.detail
    return result


def test_sign_body_matches_a_known_hmac_sha256_vector() -> None:
    assert sign_body(b"The quick brown fox jumps over the lazy dog", "key") == (
        "sha256=f7bc83f430538424b13298e6aa6fb143ef4d59a14946175997479dbc2d1a3cd8"
    )


def test_sign_body_is_lowercase_hex_over_the_exact_bytes() -> None:
    header = sign_body(META_BODY, APP_SECRET)
    expected = hmac.new(APP_SECRET.encode(), META_BODY, hashlib.sha256).hexdigest()
    assert header == f"sha256={expected}"
    assert header == header.lower()


def test_round_trip_over_meta_escaped_bytes_is_valid() -> None:
    assert b"\\u00e4" in META_BODY
    assert b"\\ud83d\\ude2e" in META_BODY
    assert b"\\/" in META_BODY
    result = check(META_BODY, sign_body(META_BODY, APP_SECRET))
    assert result == SignatureCheck(SignatureVerdict.VALID, "matches the App Secret of 'default'", "default")


@pytest.mark.parametrize("body", [b"", b"\xff\xfe not utf-8 \x00", b"x" * 3_000_000, "K\u00e4se".encode()])
def test_round_trip_over_any_bytes(body: bytes) -> None:
    assert check(body, sign_body(body, APP_SECRET)).verdict is SignatureVerdict.VALID


def test_unescaping_the_body_breaks_the_signature() -> None:
    unescaped = json.dumps(DOCUMENT, ensure_ascii=False, separators=(",", ":")).encode()
    assert unescaped != META_BODY
    result = check(unescaped, sign_body(META_BODY, APP_SECRET))
    assert result.verdict is SignatureVerdict.INVALID
    assert result.account is None


@pytest.mark.parametrize(
    "header",
    [
        "sha256=" + sign_body(META_BODY, APP_SECRET).removeprefix("sha256=").upper(),
        "SHA256=" + sign_body(META_BODY, APP_SECRET).removeprefix("sha256="),
        f"  {sign_body(META_BODY, APP_SECRET)}\t",
        sign_body(META_BODY, APP_SECRET).replace("=", " = "),
    ],
)
def test_lenient_on_case_and_surrounding_spaces(header: str) -> None:
    result = check(META_BODY, header)
    assert result.verdict is SignatureVerdict.VALID
    assert result.account == "default"


def test_uppercase_hex_is_valid_with_a_note() -> None:
    header = "sha256=" + sign_body(META_BODY, APP_SECRET).removeprefix("sha256=").upper()
    assert check(META_BODY, header).detail == (
        "matches the App Secret of 'default' (uppercase hex: Meta sends lowercase)"
    )


def test_several_secrets_return_the_matching_label() -> None:
    secrets = [("shop", APP_SECRET), ("support", OTHER_SECRET)]
    for label, secret in secrets:
        result = check_signature(META_BODY, sign_body(META_BODY, secret), secrets)
        assert result.verdict is SignatureVerdict.VALID
        assert result.account == label
        assert label in result.detail


def test_several_secrets_none_matching() -> None:
    secrets = [("shop", APP_SECRET), ("support", OTHER_SECRET)]
    result = check_signature(META_BODY, sign_body(META_BODY, "someone-else"), secrets)
    assert result == SignatureCheck(SignatureVerdict.INVALID, NO_MATCH_DETAIL, None)


def test_wrong_secret_is_invalid_with_the_generic_hint() -> None:
    result = check(META_BODY, sign_body(META_BODY, OTHER_SECRET))
    assert result == SignatureCheck(SignatureVerdict.INVALID, NO_MATCH_DETAIL, None)


def test_one_changed_byte_is_invalid() -> None:
    tampered = META_BODY.replace(b"16505551234", b"16505551235", 1)
    result = check(tampered, sign_body(META_BODY, APP_SECRET))
    assert result == SignatureCheck(SignatureVerdict.INVALID, NO_MATCH_DETAIL, None)


@pytest.mark.parametrize("header", [None, "", "   "])
def test_missing_header(header: str | None) -> None:
    result = check(META_BODY, header)
    assert result == SignatureCheck(SignatureVerdict.MISSING, "no X-Hub-Signature-256 header", None)


def test_only_the_legacy_sha1_header_valid() -> None:
    legacy = "sha1=" + hmac.new(APP_SECRET.encode(), META_BODY, hashlib.sha1).hexdigest()
    result = check(META_BODY, None, legacy_header=legacy)
    assert result.verdict is SignatureVerdict.MISSING
    assert result.detail == (
        "no X-Hub-Signature-256 header: only the legacy sha1 X-Hub-Signature was sent "
        "(it matches the App Secret of 'default')"
    )


def test_only_the_legacy_sha1_header_invalid() -> None:
    legacy = "sha1=" + hmac.new(b"other", META_BODY, hashlib.sha1).hexdigest()
    result = check(META_BODY, "", legacy_header=legacy)
    assert result.verdict is SignatureVerdict.MISSING
    assert result.detail.endswith("(it matches no configured App Secret either)")


@pytest.mark.parametrize("legacy", ["garbage", "sha1=xyz", "sha256=" + "0" * 64])
def test_only_a_malformed_legacy_header(legacy: str) -> None:
    result = check(META_BODY, None, legacy_header=legacy)
    assert result.verdict is SignatureVerdict.MISSING
    assert result.detail == ("no X-Hub-Signature-256 header: only the legacy sha1 X-Hub-Signature was sent")


def test_a_legacy_header_beside_a_valid_signature_is_ignored() -> None:
    result = check(META_BODY, sign_body(META_BODY, APP_SECRET), legacy_header="sha1=bogus")
    assert result.verdict is SignatureVerdict.VALID


@pytest.mark.parametrize("secrets", [[], [("default", "")], [("a", ""), ("b", "")]])
@pytest.mark.parametrize("header", [None, "sha256=" + "0" * 64, "garbage"])
def test_unchecked_without_an_app_secret(secrets: list[tuple[str, str]], header: str | None) -> None:
    result = check_signature(META_BODY, header, secrets, WRONG_KEYS)
    assert result == SignatureCheck(SignatureVerdict.UNCHECKED, NO_SECRET_DETAIL, None)
    assert "WHATSAPP_APP_SECRET" in result.detail


HEX = sign_body(META_BODY, APP_SECRET).removeprefix("sha256=")


@pytest.mark.parametrize(
    ("header", "detail"),
    [
        (HEX, 'no "sha256=" prefix'),
        ("sha256=" + HEX[:-1], "malformed: 63 characters after"),
        ("sha256=" + HEX + "0", "malformed: 65 characters after"),
        ("sha256=", "malformed: 0 characters after"),
        ("sha256=" + "z" * 64, "malformed: 64 characters after"),
        ("sha256=" + HEX[:32] + " " + HEX[32:], "malformed: 65 characters after"),
        ("sha1=" + "a" * 40, "holds a sha1 signature"),
        ("md5=" + HEX, 'does not start with "sha256="'),
        ("garbage", "is malformed"),
    ],
)
def test_malformed_header(header: str, detail: str) -> None:
    result = check(META_BODY, header)
    assert result.verdict is SignatureVerdict.INVALID
    assert detail in result.detail
    assert 'expected "sha256=" followed by 64 hex characters' in result.detail
    assert result.account is None


@pytest.mark.parametrize(("label", "key"), WRONG_KEYS)
def test_signed_with_a_token_instead_of_the_app_secret(label: str, key: str) -> None:
    result = check(META_BODY, sign_body(META_BODY, key))
    assert result == SignatureCheck(SignatureVerdict.INVALID, f"signed with {label} instead of the App Secret", None)


def test_empty_wrong_keys_are_ignored() -> None:
    result = check_signature(META_BODY, sign_body(META_BODY, ""), SECRETS, [("the verify token", "")])
    assert result.detail == NO_MATCH_DETAIL


def test_app_secret_configured_with_surrounding_whitespace() -> None:
    result = check_signature(META_BODY, sign_body(META_BODY, APP_SECRET), [("default", f" {APP_SECRET}\n")])
    assert result.verdict is SignatureVerdict.INVALID
    assert "without its surrounding whitespace" in result.detail
    assert APP_SECRET not in result.detail


@pytest.mark.parametrize(
    "received",
    [
        json.dumps(DOCUMENT).encode(),
        json.dumps(DOCUMENT, ensure_ascii=False).encode(),
        json.dumps(DOCUMENT, ensure_ascii=False, separators=(",", ":")).encode(),
        json.dumps(DOCUMENT, indent=2).encode(),
        json.dumps(DOCUMENT, separators=(",", ":")).encode(),
    ],
    ids=["json.dumps", "ensure_ascii=False", "JSON.stringify", "indented", "slashes-unescaped"],
)
def test_proxy_that_re_encoded_meta_s_body(received: bytes) -> None:
    assert received != META_BODY
    result = check(received, sign_body(META_BODY, APP_SECRET))
    assert result == SignatureCheck(SignatureVerdict.INVALID, META_STYLE_DETAIL, None)


def test_meta_style_without_escaped_slashes_is_recognised_too() -> None:
    signed = json.dumps(DOCUMENT, separators=(",", ":")).encode()
    received = json.dumps(DOCUMENT, indent=1).encode()
    assert check(received, sign_body(signed, APP_SECRET)).detail == META_STYLE_DETAIL


@pytest.mark.parametrize(
    ("signed", "style"),
    [
        (json.dumps(DOCUMENT).encode(), "json.dumps default style"),
        (json.dumps(DOCUMENT, ensure_ascii=False).encode(), "ensure_ascii=False"),
        (
            json.dumps(DOCUMENT, ensure_ascii=False, separators=(",", ":")).encode(),
            "JSON.stringify",
        ),
    ],
)
def test_signature_computed_over_a_re_serialised_body(signed: bytes, style: str) -> None:
    result = check(META_BODY, sign_body(signed, APP_SECRET))
    assert result.verdict is SignatureVerdict.INVALID
    assert style in result.detail
    assert "re-encoded body instead of the raw bytes" in result.detail


def test_wrong_key_is_diagnosed_before_re_serialisation() -> None:
    received = json.dumps(DOCUMENT).encode()
    result = check(received, sign_body(received, VERIFY_TOKEN))
    assert result.detail == "signed with the verify token instead of the App Secret"


def test_empty_body_with_a_signature() -> None:
    result = check(b"", sign_body(META_BODY, APP_SECRET))
    assert result.verdict is SignatureVerdict.INVALID
    assert result.detail == "the body is empty: was it read before the signature check?"


def test_bytes_added_around_the_body() -> None:
    result = check(META_BODY + b"\r\n", sign_body(META_BODY, APP_SECRET))
    assert result.verdict is SignatureVerdict.INVALID
    assert "without its leading/trailing whitespace" in result.detail


@pytest.mark.parametrize("body", [b"not json", b"\xff\xfe", b"[" * 100_000, b'{"a": "\\ud83d"}', b"1e999"])
def test_mismatch_on_odd_bodies_never_crashes(body: bytes) -> None:
    result = check(body, "sha256=" + "0" * 64)
    assert result == SignatureCheck(SignatureVerdict.INVALID, NO_MATCH_DETAIL, None)


def test_valid_path_skips_the_diagnosis(monkeypatch: pytest.MonkeyPatch) -> None:
    def forbidden(*_: object) -> None:
        raise AssertionError("diagnosis ran on the valid path")

    monkeypatch.setattr(signature, "_mismatch", forbidden)
    monkeypatch.setattr(signature, "_reserialised", forbidden)
    monkeypatch.setattr(signature.json, "loads", forbidden)
    secrets = [("shop", APP_SECRET), ("support", OTHER_SECRET)]
    for _, secret in secrets:
        result = check_signature(META_BODY, sign_body(META_BODY, secret), secrets, WRONG_KEYS)
        assert result.verdict is SignatureVerdict.VALID


def test_comparison_is_constant_time_on_bytes(monkeypatch: pytest.MonkeyPatch) -> None:
    seen: list[tuple[object, object]] = []
    real = hmac.compare_digest

    def recording(a: bytes, b: bytes) -> bool:
        seen.append((a, b))
        return real(a, b)

    monkeypatch.setattr(signature.hmac, "compare_digest", recording)
    check(META_BODY, sign_body(META_BODY, APP_SECRET))
    assert seen
    assert all(isinstance(a, bytes) and isinstance(b, bytes) for a, b in seen)


def test_verdict_is_recorded_as_a_plain_string() -> None:
    assert SignatureVerdict.VALID == "valid"
    assert [str(verdict) for verdict in SignatureVerdict] == [
        "valid",
        "invalid",
        "missing",
        "unchecked",
    ]
    assert json.dumps({"signature": SignatureVerdict.MISSING}) == '{"signature": "missing"}'


def test_signature_check_is_frozen() -> None:
    result = check(META_BODY, None)
    with pytest.raises(dataclasses.FrozenInstanceError):
        result.detail = "changed"  # type: ignore[misc]


app_secrets = st.text("0123456789abcdef", min_size=32, max_size=32)
tokens = st.text(string.ascii_letters + string.digits, min_size=16, max_size=40)


@given(body=st.binary(max_size=2000), secret=st.text(min_size=1))
def test_any_body_signed_with_any_secret_verifies(body: bytes, secret: str) -> None:
    result = check_signature(body, sign_body(body, secret), [("default", secret)])
    assert result.verdict is SignatureVerdict.VALID
    assert result.account == "default"


@given(
    body=st.one_of(st.binary(max_size=500), st.just(META_BODY)),
    header=st.one_of(st.none(), st.text(max_size=80), st.just(sign_body(META_BODY, OTHER_SECRET))),
    legacy=st.one_of(st.none(), st.text(max_size=60)),
    secret=app_secrets,
    token=tokens,
    access=tokens,
)
def test_detail_never_contains_a_secret(
    body: bytes, header: str | None, legacy: str | None, secret: str, token: str, access: str
) -> None:
    result = check_signature(
        body,
        header,
        [("default", secret)],
        [("the verify token", token), ("the access token", access)],
        legacy_header=legacy,
    )
    assert result.verdict in set(SignatureVerdict)
    for key in (secret, token, access):
        assert key not in result.detail


@given(body=st.binary(max_size=300), secret=app_secrets, key=tokens)
def test_signing_with_a_wrong_key_is_always_named(body: bytes, secret: str, key: str) -> None:
    assume(key != secret)
    result = check_signature(body, sign_body(body, key), [("default", secret)], [("the verify token", key)])
    assert result.detail == "signed with the verify token instead of the App Secret"
    assert key not in result.detail and secret not in result.detail


@given(key=st.binary(max_size=200), body=st.binary(max_size=3000), other=st.binary(min_size=32, max_size=32))
def test_a_signing_key_agrees_with_the_standard_hmac(key: bytes, body: bytes, other: bytes) -> None:
    """SigningKey hashes RFC 2104's pads once; its verdict is hmac.digest's (keys past one block hashed first)."""
    match = signature.SignatureCheck(signature.SignatureVerdict.VALID, "matches", "default")
    signing = signature.SigningKey(key, match)
    expected = hmac.digest(key, body, "sha256")
    assert signing.signs(body, expected)
    assert signing.signs(body, other) is (other == expected)
    assert signing.signs(body + b"x", expected) is False
