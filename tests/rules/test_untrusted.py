"""The one rule for text from a request: every control becomes a visible escape, nothing else changes."""

from __future__ import annotations

import json
import sys
import unicodedata

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from wa_devtunnel.rules.untrusted import json_visible, one_line, visible

SCOTLAND = "\U0001f3f4\U000e0067\U000e0062\U000e0073\U000e0063\U000e0074\U000e007f"
TECHNOLOGIST = "\U0001f469\u200d\U0001f4bb"
INVISIBLE_CATEGORIES = ("Cc", "Cf", "Cs", "Zl", "Zp")
# Any code point at all, lone surrogates included (hypothesis leaves those out unless asked).
ANY_CHARACTER = st.characters(codec=None) | st.characters(categories=["Cs"])


@pytest.mark.parametrize(
    ("raw", "shown"),
    [
        ("\x1b]52;c;aGVsbG8=\x07", "\\x1b]52;c;aGVsbG8=\\x07"),  # OSC 52: write the clipboard
        ("\x1b[2J\x1b]0;title\x07", "\\x1b[2J\\x1b]0;title\\x07"),  # clear screen, set the title
        ("ok\rsig=valid", "ok\\x0dsig=valid"),  # a carriage return forging the start of a line
        ("\x9b31m\x85", "\\x9b31m\\x85"),  # C1: CSI and NEL
        ("abc\u202edef\u2066", "abc\\u202edef\\u2066"),  # bidi override and isolate
        ("pay\u200bpal\ufeff", "pay\\u200bpal\\ufeff"),  # zero-width space, BOM
        ("\ud800", "\\ud800"),  # a lone surrogate from a JSON escape
        ("\u0600\U0001d173\U000110bd", "\\u0600\\U0001d173\\U000110bd"),  # format characters beyond the BMP
        ("\U000e0041", "\\U000e0041"),  # a tag character on its own (ASCII smuggling)
        ("Größe? 日本 [/x]", "Größe? 日本 [/x]"),  # text, accents, CJK and markup-like brackets stay as they are
        (TECHNOLOGIST, TECHNOLOGIST),  # an emoji sequence keeps its joiner
        (SCOTLAND, SCOTLAND),  # a subdivision flag keeps its tags
        ("a\u200db", "a\\u200db"),  # a bare joiner is shown
    ],
)
def test_controls_become_visible_escapes(raw: str, shown: str) -> None:
    assert visible(raw) == shown


def test_every_control_format_and_separator_character_is_escaped() -> None:
    """The ranges cover every Cc/Cf/Cs/Zl/Zp code point this Python knows, not just the famous ones."""
    missed = [
        f"U+{code:04X}"
        for code in range(sys.maxunicode + 1)
        if unicodedata.category(chr(code)) in INVISIBLE_CATEGORIES and visible(chr(code)) == chr(code)
    ]
    assert missed == []


def test_keep_newlines_keeps_line_feeds_and_tabs_but_never_a_carriage_return() -> None:
    assert visible("a\nb\tc\r\n\x1b", keep_newlines=True) == "a\nb\tc\\x0d\n\\x1b"
    assert visible("a\nb\tc") == "a\\x0ab\\x09c"


def test_one_line_cuts_after_escaping() -> None:
    assert one_line("ab\x1bcd", 5) == "ab\\x…"
    assert one_line("short", 10) == "short"


@settings(max_examples=200, deadline=None)
@given(st.text(alphabet=ANY_CHARACTER))
def test_visible_output_is_a_fixed_point_with_no_raw_control(text: str) -> None:
    shown = visible(text)
    assert visible(shown) == shown
    assert not any(unicodedata.category(c) in ("Cc", "Cs", "Zl", "Zp") for c in shown)


@settings(max_examples=200, deadline=None)
@given(
    st.recursive(
        st.none() | st.booleans() | st.integers() | st.text(alphabet=ANY_CHARACTER),
        lambda children: (
            st.lists(children, max_size=4) | st.dictionaries(st.text(alphabet=ANY_CHARACTER), children, max_size=4)
        ),
        max_leaves=12,
    )
)
def test_json_visible_keeps_the_exact_value(value: object) -> None:
    """Scripts reading --json get the very strings that came in; the terminal sees only escapes."""
    for indent in (None, 2):
        text = json_visible(json.dumps(value, ensure_ascii=False, indent=indent))
        assert json.loads(text) == value
        assert visible(text, keep_newlines=True) == text
