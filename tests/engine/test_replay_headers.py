"""replay's one-pass header filter says what the forwarder's rules and the plan's own said in three passes."""

from __future__ import annotations

from hypothesis import given
from hypothesis import strategies as st

from wa_devtunnel.engine.exchange import REDACTED_HEADERS
from wa_devtunnel.engine.forwarder import CLIENT_PROXY_HEADERS, HOP_BY_HOP, end_to_end_headers
from wa_devtunnel.engine.origin import ORIGIN_HEADER
from wa_devtunnel.engine.replay.plan import replayed_headers

NAMES = sorted(
    {*HOP_BY_HOP, *CLIENT_PROXY_HEADERS, *REDACTED_HEADERS, ORIGIN_HEADER, "X-Hub-Signature-256", "Content-Type"}
    | {"User-Agent", "X-Custom", "x-custom", "CONNECTION", "Cookie", "Authorization", "X-Forwarded-For"}
)
VALUES = st.sampled_from(["", "REDACTED", "x-custom", "close, X-Custom", " , keep-alive", "application/json"])


def composed(raw: list[tuple[str, str]]) -> list[tuple[str, str]]:
    """What plan_replay did before: end-to-end headers, minus proxy headers, our origin and redacted credentials."""
    recorded = [(n, v) for n, v in end_to_end_headers(raw) if n.lower() not in CLIENT_PROXY_HEADERS]
    return [
        (n, v)
        for n, v in recorded
        if n.lower() != ORIGIN_HEADER.lower() and not (n.lower() in REDACTED_HEADERS and v == "REDACTED")
    ]


@given(st.lists(st.tuples(st.sampled_from(NAMES) | st.text(max_size=8), VALUES | st.text(max_size=12)), max_size=12))
def test_replayed_headers_match_the_three_passes(raw: list[tuple[str, str]]) -> None:
    assert replayed_headers(raw) == composed(raw)


def test_meta_s_headers_in_meta_s_order() -> None:
    raw = [
        ["Host", "x.ngrok-free.app"],
        ["User-Agent", "facebookexternalua"],
        ["Content-Length", "12"],
        ["Connection", "X-Drop"],
        ["X-Drop", "1"],
        ["X-Forwarded-For", "1.2.3.4"],
        ["Authorization", "REDACTED"],
        ["X-Hub-Signature-256", "sha256=ab"],
        [ORIGIN_HEADER, "replay; key=k"],
    ]
    assert replayed_headers(raw) == [("User-Agent", "facebookexternalua"), ("X-Hub-Signature-256", "sha256=ab")]
