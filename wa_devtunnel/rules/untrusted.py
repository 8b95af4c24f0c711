"""Text that came from a request, made safe to show: every control becomes a visible escape.

The callback URL is public and WhatsApp users type the messages, so paths, headers, names and texts
may carry terminal escapes (ESC, OSC 52, CSI), C1 controls, bidi overrides or zero-width characters.
Front ends pass such text through `visible` before it reaches a terminal; markup is their own concern
(they never parse request text as markup at all).
"""

from __future__ import annotations

import re

# C0 controls, DEL, C1 controls; bidi embeddings/overrides/isolates and marks; zero-width and other
# invisible format characters; line/paragraph separators; lone surrogates (from odd JSON escapes).
_CONTROLS = "\x00-\x1f"
_CONTROLS_BUT_LINES = "\x00-\x08\x0b-\x1f"  # tab and line feed stay in multi-line views
_OTHER_UNSAFE = (
    "\x7f-\x9f"
    "\u00ad\u034f\u061c\u115f\u1160\u17b4\u17b5\u180e"
    "\u200b-\u200f\u2028-\u202e\u2060-\u206f\u3164\ufeff\uffa0\ufff9-\ufffb"
    "\ud800-\udfff"
    "\U000e0000-\U000e007f"
)
_UNSAFE = re.compile(f"[{_CONTROLS}{_OTHER_UNSAFE}]")
_UNSAFE_KEEPING_LINES = re.compile(f"[{_CONTROLS_BUT_LINES}{_OTHER_UNSAFE}]")
_ZWJ = "\u200d"


def _escape(char: str) -> str:
    code = ord(char)
    if code < 0x100:
        return f"\\x{code:02x}"
    if code < 0x10000:
        return f"\\u{code:04x}"
    return f"\\U{code:08x}"


def _is_pictographic(char: str) -> bool:
    """Emoji and symbols that Unicode joins with U+200D (family, profession and flag sequences)."""
    code = ord(char)
    return code >= 0x1F000 or 0x2600 <= code <= 0x27BF or code in (0x2640, 0x2642, 0x2695, 0x2696, 0x2708, 0xFE0F)


def _replace(match: re.Match[str]) -> str:
    char = match.group()
    if char == _ZWJ:  # an emoji sequence (👩‍💻) keeps its joiner; a bare one is shown
        text, at = match.string, match.start()
        if 0 < at < len(text) - 1 and _is_pictographic(text[at - 1]) and _is_pictographic(text[at + 1]):
            return char
    return _escape(char)


def visible(text: str, *, keep_newlines: bool = False) -> str:
    """`text` with every control, bidi, zero-width or surrogate character shown as an escape (`\\x1b`).

    With keep_newlines, line feeds and tabs stay (multi-line views such as a raw body); a carriage
    return never does, since it lets a line overwrite what was printed before it.
    """
    pattern = _UNSAFE_KEEPING_LINES if keep_newlines else _UNSAFE
    if pattern.search(text) is None:
        return text
    return pattern.sub(_replace, text)


def one_line(text: str, limit: int = 0) -> str:
    """`visible` text cut to `limit` characters (0: no limit), for list rows and log lines."""
    shown = visible(text)
    if limit and len(shown) > limit:
        return shown[: max(limit - 1, 0)] + "…"
    return shown
