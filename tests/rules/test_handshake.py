"""Meta's GET handshake: echo the challenge verbatim, and explain every refusal."""

from __future__ import annotations

import dataclasses
import hmac
import string
from urllib.parse import parse_qsl, quote, unquote_plus, urlencode

import pytest
from hypothesis import assume, given
from hypothesis import strategies as st

from wa_devtunnel.rules import handshake
from wa_devtunnel.rules.handshake import VerifyAttempt, decide_handshake, redact_verify_token

TOKEN = "Sh0p-Verify-Token-2026"
ACCOUNTS = [("default", TOKEN)]


def verify_query(mode: str = "subscribe", challenge: str = "1158201444", token: str = TOKEN) -> str:
    """Build the query exactly as Meta encodes it."""
    return urlencode(
        [("hub.mode", mode), ("hub.challenge", challenge), ("hub.verify_token", token)]
    )


def refused(query: str, tokens: list[tuple[str, str]] = ACCOUNTS) -> VerifyAttempt:
    attempt = decide_handshake(query, tokens)
    assert not attempt.ok
    assert attempt.status == 403
    assert attempt.body == "Forbidden"  # the reason stays on our side
    assert TOKEN not in attempt.reason
    return attempt


def test_valid_handshake_echoes_the_challenge() -> None:
    attempt = decide_handshake(verify_query(), ACCOUNTS)
    assert attempt == VerifyAttempt(
        ok=True,
        status=200,
        body="1158201444",
        reason="",
        account="default",
        mode="subscribe",
        challenge="1158201444",
    )


@pytest.mark.parametrize(
    "challenge",
    [
        "1158201444",
        "0007",
        "not-a-number_XYZ",
        "K\u00e4se \U0001f62e \u4e2d\u6587",
        "a+b",
        "a b",
        " padded ",
        "=&?#%/\\\"'",
        '"12345"',
        "x" * 2000,
    ],
)
def test_challenge_is_echoed_verbatim(challenge: str) -> None:
    attempt = decide_handshake(verify_query(challenge=challenge), ACCOUNTS)
    assert attempt.ok
    assert attempt.body == challenge
    assert attempt.challenge == challenge


@pytest.mark.parametrize(
    ("raw_challenge", "echoed"),
    [
        ("a%2Bb", "a+b"),
        ("a%2bb", "a+b"),
        ("a+b", "a b"),
        ("%C3%A4%F0%9F%98%AE", "\u00e4\U0001f62e"),
        ("\u00e4\U0001f62e", "\u00e4\U0001f62e"),
        ("%25", "%"),
        ("%zz", "%zz"),
    ],
)
def test_challenge_is_decoded_once_like_a_web_framework(raw_challenge: str, echoed: str) -> None:
    query = f"hub.mode=subscribe&hub.challenge={raw_challenge}&hub.verify_token={TOKEN}"
    assert decide_handshake(query, ACCOUNTS).body == echoed


def test_parameter_order_extra_parameters_and_leading_question_mark_do_not_matter() -> None:
    query = f"?extra=1&hub.verify_token={TOKEN}&hub.challenge=42&utm=x&hub.mode=subscribe"
    attempt = decide_handshake(query, ACCOUNTS)
    assert attempt.ok
    assert attempt.body == "42"


def test_repeated_identical_parameters_are_accepted() -> None:
    query = verify_query() + f"&hub.verify_token={TOKEN}&hub.mode=subscribe"
    assert decide_handshake(query, ACCOUNTS).ok


@pytest.mark.parametrize(
    ("present", "reason"),
    [
        (("hub.challenge", "hub.verify_token"), "missing hub.mode"),
        (("hub.mode", "hub.verify_token"), "missing hub.challenge"),
        (("hub.mode", "hub.challenge"), "missing hub.verify_token"),
        (("hub.mode",), "missing hub.challenge, hub.verify_token"),
        (("hub.challenge",), "missing hub.mode, hub.verify_token"),
        (("hub.verify_token",), "missing hub.mode, hub.challenge"),
    ],
)
def test_missing_parameters_are_all_listed(present: tuple[str, ...], reason: str) -> None:
    values = {"hub.mode": "subscribe", "hub.challenge": "42", "hub.verify_token": TOKEN}
    query = urlencode([(name, values[name]) for name in present] + [("other", "1")])
    attempt = refused(query)
    assert attempt.reason == reason
    assert attempt.account is None or "hub.verify_token" in present


def test_missing_parameters_keep_what_was_sent() -> None:
    attempt = refused("hub.mode=subscribe")
    assert attempt.mode == "subscribe"
    assert attempt.challenge is None


def test_empty_query_says_it_is_not_a_verification_request() -> None:
    attempt = refused("")
    assert attempt.reason == (
        "missing hub.mode, hub.challenge, hub.verify_token "
        "(no query string: not a verification request)"
    )
    assert (attempt.mode, attempt.challenge, attempt.account) == (None, None, None)


def test_near_miss_parameter_names_are_pointed_out() -> None:
    query = f"hub_mode=subscribe&Hub.Challenge=1&hub_verify_token={TOKEN}"
    attempt = refused(query)
    assert attempt.reason == (
        "missing hub.mode, hub.challenge, hub.verify_token "
        "(got 'hub_mode', 'Hub.Challenge', 'hub_verify_token' instead)"
    )


def test_missing_is_reported_before_other_problems() -> None:
    attempt = refused("hub.mode=unsubscribe&hub.verify_token=wrong")
    assert attempt.reason == "missing hub.challenge"


@pytest.mark.parametrize(
    ("extra", "reason"),
    [
        ("&hub.verify_token=other", "duplicate hub.verify_token parameter (sent 2 times)"),
        (
            "&hub.verify_token=other&hub.verify_token=third",
            "duplicate hub.verify_token parameter (sent 3 times)",
        ),
        (
            f"&hub.verify_token={TOKEN}&hub.verify_token=x",
            "duplicate hub.verify_token parameter (sent 3 times)",
        ),
        ("&hub.challenge=99", "duplicate hub.challenge parameter (sent 2 times)"),
        ("&hub.mode=unsubscribe", "duplicate hub.mode parameter (sent 2 times)"),
        (
            "&hub.mode=unsubscribe&hub.verify_token=x",
            "duplicate hub.mode parameter (sent 2 times); "
            "duplicate hub.verify_token parameter (sent 2 times)",
        ),
    ],
)
def test_duplicate_parameters_with_different_values_are_refused(extra: str, reason: str) -> None:
    attempt = refused(verify_query() + extra)
    assert attempt.reason == reason


def test_duplicate_parameters_report_the_first_values() -> None:
    attempt = refused(verify_query(challenge="1") + "&hub.challenge=2")
    assert attempt.challenge == "1"
    assert attempt.mode == "subscribe"


@pytest.mark.parametrize(
    ("mode", "reason"),
    [
        ("unsubscribe", "hub.mode is 'unsubscribe', expected 'subscribe'"),
        ("Subscribe", "hub.mode is 'Subscribe', expected 'subscribe'"),
        ("subscribe ", "hub.mode is 'subscribe ', expected 'subscribe'"),
        ("", "hub.mode is '', expected 'subscribe'"),
        ("sub\nscribe", "hub.mode is 'sub\\nscribe', expected 'subscribe'"),
        ("m" * 100, f"hub.mode is '{'m' * 40}...' (100 characters), expected 'subscribe'"),
    ],
)
def test_wrong_mode_is_refused(mode: str, reason: str) -> None:
    attempt = refused(verify_query(mode=mode))
    assert attempt.reason == reason
    assert attempt.mode == mode


def test_wrong_mode_is_reported_before_a_token_mismatch() -> None:
    assert refused(verify_query(mode="unsubscribe", token="nope")).reason.startswith("hub.mode")


def test_refusal_still_names_the_account_whose_token_matched() -> None:
    assert refused(verify_query(mode="unsubscribe")).account == "default"


@pytest.mark.parametrize("sent", [f" {TOKEN}", f"{TOKEN} ", f"{TOKEN}\n", f"\t{TOKEN}\r\n"])
def test_whitespace_around_the_sent_token(sent: str) -> None:
    attempt = refused(verify_query(token=sent))
    assert attempt.reason == "token mismatch: leading/trailing whitespace"
    assert attempt.account is None


def test_whitespace_around_the_configured_token() -> None:
    attempt = refused(verify_query(), [("default", f"{TOKEN}\n")])
    assert attempt.reason == "token mismatch: leading/trailing whitespace (in the configured token)"


@pytest.mark.parametrize("sent", [TOKEN.upper(), TOKEN.lower(), TOKEN.swapcase()])
def test_letter_case_differs(sent: str) -> None:
    assert refused(verify_query(token=sent)).reason == "token mismatch: letter case differs"


def test_whitespace_and_letter_case_together() -> None:
    attempt = refused(verify_query(token=f" {TOKEN.upper()}"))
    assert attempt.reason == "token mismatch: leading/trailing whitespace and letter case differs"


@pytest.mark.parametrize("sent", ["nope", TOKEN[:-1], TOKEN + "x", "x" + TOKEN, TOKEN * 2])
def test_unknown_token(sent: str) -> None:
    assert refused(verify_query(token=sent)).reason == "token mismatch: unknown token"


def test_empty_sent_token() -> None:
    attempt = refused(verify_query(token=""))
    assert attempt.reason == "token mismatch: unknown token (hub.verify_token is empty)"


@pytest.mark.parametrize(
    "configured", ["my token&more/1", "tok+en", "100%sure", "caf\u00e9 \u00e4"]
)
def test_double_url_encoding_is_recognised(configured: str) -> None:
    query = verify_query(token=quote(configured, safe=""))
    attempt = refused(query, [("default", configured)])
    assert attempt.reason == "token mismatch: unknown token (looks URL-encoded twice)"
    assert configured not in attempt.reason


def test_unencoded_plus_arrives_as_a_space() -> None:
    query = "hub.mode=subscribe&hub.challenge=1&hub.verify_token=abc+def"
    attempt = refused(query, [("default", "abc+def")])
    assert attempt.reason == (
        "token mismatch: unknown token (a '+' in the token arrived as a space: send it as %2B)"
    )


def test_plus_sent_as_percent_2b_matches() -> None:
    query = "hub.mode=subscribe&hub.challenge=1&hub.verify_token=abc%2Bdef"
    assert decide_handshake(query, [("default", "abc+def")]).ok


def test_configured_token_that_looks_url_encoded() -> None:
    attempt = refused(verify_query(token="abc def"), [("default", "abc%20def")])
    assert attempt.reason == (
        "token mismatch: unknown token (the configured token looks URL-encoded)"
    )


@pytest.mark.parametrize("sent", [f'"{TOKEN}"', f"'{TOKEN}'"])
def test_quotes_around_the_sent_token(sent: str) -> None:
    attempt = refused(verify_query(token=sent))
    assert attempt.reason == "token mismatch: unknown token (quotes around the token)"


def test_quotes_around_the_configured_token() -> None:
    attempt = refused(verify_query(), [("default", f'"{TOKEN}"')])
    assert attempt.reason == "token mismatch: unknown token (quotes around the token)"


def test_empty_challenge_is_refused() -> None:
    attempt = refused(verify_query(challenge=""))
    assert attempt.reason == "empty hub.challenge"
    assert attempt.challenge == ""
    assert attempt.account == "default"


def test_token_mismatch_is_reported_before_an_empty_challenge() -> None:
    assert refused(verify_query(challenge="", token="nope")).reason == (
        "token mismatch: unknown token"
    )


@pytest.mark.parametrize("tokens", [[], [("default", "")]])
def test_no_verify_token_configured(tokens: list[tuple[str, str]]) -> None:
    attempt = refused(verify_query(token=""), tokens)
    assert attempt.reason == "no verify token configured"
    assert attempt.account is None


SEVERAL = [("shop", "tok-shop-1234"), ("support", "tok-support-5678"), ("staging", "st-9")]


@pytest.mark.parametrize(("account", "token"), SEVERAL)
def test_any_configured_token_is_accepted_and_its_account_named(account: str, token: str) -> None:
    attempt = decide_handshake(verify_query(token=token), SEVERAL)
    assert attempt.ok
    assert attempt.account == account


def test_shared_token_names_the_first_account() -> None:
    tokens = [("a", "same-token"), ("b", "same-token")]
    assert decide_handshake(verify_query(token="same-token"), tokens).account == "a"


def test_diagnosis_considers_every_account() -> None:
    attempt = refused(verify_query(token="TOK-SUPPORT-5678"), SEVERAL)
    assert attempt.reason == "token mismatch: letter case differs"
    for _, token in SEVERAL:
        assert token not in attempt.body


def test_every_token_is_compared_even_after_a_match(monkeypatch: pytest.MonkeyPatch) -> None:
    calls: list[tuple[bytes, bytes]] = []
    real = hmac.compare_digest

    def counting(a: bytes, b: bytes) -> bool:
        calls.append((a, b))
        return real(a, b)

    monkeypatch.setattr(handshake.hmac, "compare_digest", counting)
    assert decide_handshake(verify_query(token="tok-shop-1234"), SEVERAL).account == "shop"
    assert len(calls) == len(SEVERAL)
    assert all(isinstance(a, bytes) and isinstance(b, bytes) for a, b in calls)


def test_tokens_with_unencodable_characters_do_not_crash() -> None:
    attempt = decide_handshake(verify_query(token="x"), [("env", "bad\udcff")])
    assert attempt.reason == "token mismatch: unknown token"


def test_verify_attempt_is_frozen() -> None:
    attempt = decide_handshake(verify_query(), ACCOUNTS)
    with pytest.raises(dataclasses.FrozenInstanceError):
        attempt.ok = False  # type: ignore[misc]


configured_tokens = st.text(string.ascii_letters + string.digits + "-_", min_size=12, max_size=40)


@given(configured=configured_tokens, sent=st.text(), challenge=st.text())
def test_reason_never_reveals_the_configured_token(
    configured: str, sent: str, challenge: str
) -> None:
    assume(sent != configured)
    attempt = decide_handshake(
        verify_query(challenge=challenge, token=sent), [("default", configured)]
    )
    assert not attempt.ok
    assert configured not in attempt.reason
    assert configured not in attempt.body


@given(first=configured_tokens, second=configured_tokens, sent=st.text())
def test_reason_never_reveals_any_of_several_tokens(first: str, second: str, sent: str) -> None:
    assume(sent not in (first, second))
    attempt = decide_handshake(verify_query(token=sent), [("a", first), ("b", second)])
    assert not attempt.ok
    assert first not in attempt.body
    assert second not in attempt.body


@given(configured=configured_tokens, query=st.text())
def test_arbitrary_queries_never_crash_nor_reveal_the_token(configured: str, query: str) -> None:
    assume(configured not in query and configured not in unquote_plus(query))
    attempt = decide_handshake(query, [("default", configured)])
    assert attempt.status in (200, 403)
    assert configured not in attempt.reason
    assert configured not in attempt.body


# redact_verify_token


@pytest.mark.parametrize(
    ("query", "redacted"),
    [
        (
            f"hub.mode=subscribe&hub.challenge=1158201444&hub.verify_token={TOKEN}",
            "hub.mode=subscribe&hub.challenge=1158201444&hub.verify_token=REDACTED",
        ),
        (
            "hub.verify_token=a&hub.mode=subscribe&hub.verify_token=b",
            "hub.verify_token=REDACTED&hub.mode=subscribe&hub.verify_token=REDACTED",
        ),
        ("hub%2Everify_token=secret&x=1", "hub%2Everify_token=REDACTED&x=1"),
        ("hub.verify%5Ftoken=secret", "hub.verify%5Ftoken=REDACTED"),
        ("hub.verify_token=a%2520b%2Bc+d", "hub.verify_token=REDACTED"),
        ("hub.verify_token=a=b=c", "hub.verify_token=REDACTED"),
        ("?hub.verify_token=secret&a=1", "?hub.verify_token=REDACTED&a=1"),
        (
            "hub.challenge=a+b%2B%zz&&x=%E4;y=1&hub.verify_token=t&z",
            "hub.challenge=a+b%2B%zz&&x=%E4;y=1&hub.verify_token=REDACTED&z",
        ),
        ("hub.verify_token=&hub.verify_token", "hub.verify_token=&hub.verify_token"),
        # Misspelt names still carry the token: the diagnosis names them, the recording hides their values.
        ("hub.verify_tokens=x&xhub.verify_token=y", "hub.verify_tokens=REDACTED&xhub.verify_token=REDACTED"),
        ("HUB.VERIFY_TOKEN=t&hub.mode=subscribe", "HUB.VERIFY_TOKEN=REDACTED&hub.mode=subscribe"),
        ("hub.mode=subscribe&hub.challenge=1", "hub.mode=subscribe&hub.challenge=1"),
        ("", ""),
        ("&&", "&&"),
        (
            "hub.challenge=\u00e4&hub.verify_token=\u00e4\U0001f62e",
            "hub.challenge=\u00e4&hub.verify_token=REDACTED",
        ),
    ],
)
def test_redact_verify_token(query: str, redacted: str) -> None:
    assert redact_verify_token(query) == redacted


def test_a_configured_token_is_redacted_under_any_name() -> None:
    query = "hub.mode=subscribe&x=tok%20en&y=other&z=tok+en"
    assert redact_verify_token(query, ["tok en"]) == "hub.mode=subscribe&x=REDACTED&y=other&z=REDACTED"


def _token_name(name: str) -> bool:
    return "verify_token" in unquote_plus(name).strip().lower().replace(" ", "")


def test_redacted_query_is_refused_without_revealing_the_token() -> None:
    attempt = decide_handshake(redact_verify_token(verify_query()), ACCOUNTS)
    assert attempt.reason == "token mismatch: unknown token"


token_names = st.sampled_from(
    [
        "hub.verify_token",
        "hub%2Everify_token",
        "hub.verify%5ftoken",
        "hub.mode",
        "hub.challenge",
        "x",
        "hub.verify_token2",
        "",
    ]
)
raw_values = st.text(alphabet=st.characters(exclude_characters="&"), max_size=20)


@given(st.lists(st.tuples(token_names, st.booleans(), raw_values), min_size=1, max_size=8))
def test_redaction_changes_only_token_values(segments: list[tuple[str, bool, str]]) -> None:
    raw = [f"{name}={value}" if equals else name + value for name, equals, value in segments]
    query = "&".join(raw)
    redacted = redact_verify_token(query)
    out = redacted.split("&")
    assert len(out) == len(raw)
    for before, after in zip(raw, out, strict=True):
        name, equals, value = before.partition("=")
        if equals and value and _token_name(name):
            assert after == f"{name}=REDACTED"
        else:
            assert after == before
    expected = [
        (name, "REDACTED" if _token_name(name) and value else value)
        for name, value in parse_qsl(query, keep_blank_values=True)
    ]
    assert parse_qsl(redacted, keep_blank_values=True) == expected


@given(st.text())
def test_redaction_is_idempotent_and_never_crashes(query: str) -> None:
    once = redact_verify_token(query)
    assert redact_verify_token(once) == once
    assert once.count("&") == query.count("&")
