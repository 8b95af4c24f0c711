"""Text that came from a request, made safe to show: every control becomes a visible escape.

The callback URL is public and WhatsApp users type the messages, so paths, headers, names and texts
may carry terminal escapes (ESC, OSC 52, CSI), C1 controls, bidi overrides or zero-width characters.
Front ends pass such text through `visible` before it reaches a terminal (`json_visible` for JSON
they print); markup is their own concern (they never parse request text as markup at all).
"""

from __future__ import annotations

import re

# C0 controls, DEL, C1 controls; bidi embeddings/overrides/isolates and marks; zero-width and other
# invisible format characters (every Unicode "Cf", plus fillers that render as nothing); line and
# paragraph separators; lone surrogates (from odd JSON escapes); tag characters.
_CONTROLS = "\x00-\x1f"
_CONTROLS_BUT_LINES = "\x00-\x08\x0b-\x1f"  # tab and line feed stay in multi-line views
_OTHER_UNSAFE = (
    "\x7f-\x9f"
    "\u00ad\u034f\u0600-\u0605\u061c\u06dd\u070f\u0890\u0891\u08e2"
    "\u115f\u1160\u17b4\u17b5\u180e"
    "\u200b-\u200f\u2028-\u202e\u2060-\u206f\u3164\ufeff\uffa0\ufff9-\ufffb"
    "\ud800-\udfff"
    "\U000110bd\U000110cd\U00013430-\U0001343f\U0001bca0-\U0001bca3\U0001d173-\U0001d17a"
    "\U000e0000-\U000e007f"
)
# A subdivision flag (England, Scotland, Wales): black flag, tag letters or digits, cancel tag.
_FLAG_SEQUENCE = "\U0001f3f4[\U000e0030-\U000e0039\U000e0061-\U000e007a]{1,8}\U000e007f"
_UNSAFE = re.compile(f"({_FLAG_SEQUENCE})|[{_CONTROLS}{_OTHER_UNSAFE}]")
_UNSAFE_KEEPING_LINES = re.compile(f"({_FLAG_SEQUENCE})|[{_CONTROLS_BUT_LINES}{_OTHER_UNSAFE}]")
_ZWJ = "\u200d"


def _escape(char: str) -> str:
    code = ord(char)
    if code < 0x100:
        return f"\\x{code:02x}"
    if code < 0x10000:
        return f"\\u{code:04x}"
    return f"\\U{code:08x}"


def _json_escape(char: str) -> str:
    """The JSON spelling of one character: `\\u202e`, or a surrogate pair beyond the BMP."""
    code = ord(char)
    if code < 0x10000:
        return f"\\u{code:04x}"
    code -= 0x10000
    return f"\\u{0xD800 + (code >> 10):04x}\\u{0xDC00 + (code & 0x3FF):04x}"


def _is_pictographic(char: str) -> bool:
    """Emoji and symbols that Unicode joins with U+200D (family, profession and flag sequences)."""
    code = ord(char)
    return code >= 0x1F000 or 0x2600 <= code <= 0x27BF or code in (0x2640, 0x2642, 0x2695, 0x2696, 0x2708, 0xFE0F)


def _kept(match: re.Match[str]) -> bool:
    """An emoji sequence (👩‍💻, 🏴 of Scotland) keeps its joiner and tags; a bare one is shown."""
    if match.group(1) is not None:
        return True
    if match.group() != _ZWJ:
        return False
    text, at = match.string, match.start()
    return 0 < at < len(text) - 1 and _is_pictographic(text[at - 1]) and _is_pictographic(text[at + 1])


def _replace(match: re.Match[str]) -> str:
    return match.group() if _kept(match) else _escape(match.group())


def _replace_json(match: re.Match[str]) -> str:
    return match.group() if _kept(match) else _json_escape(match.group())


def visible(text: str, *, keep_newlines: bool = False) -> str:
    """`text` with every control, bidi, zero-width or surrogate character shown as an escape (`\\x1b`).

    With keep_newlines, line feeds and tabs stay (multi-line views such as a raw body); a carriage
    return never does, since it lets a line overwrite what was printed before it.
    """
    pattern = _UNSAFE_KEEPING_LINES if keep_newlines else _UNSAFE
    if pattern.search(text) is None:
        return text
    return pattern.sub(_replace, text)


def json_visible(json_text: str) -> str:
    """JSON as `json.dumps(..., ensure_ascii=False)` writes it, with the same characters as `\\u` escapes.

    The value is unchanged (they only occur inside strings there, where `\\u202e` means U+202E), so
    scripts read back the exact strings while a terminal showing the line sees no raw control.
    """
    if _UNSAFE_KEEPING_LINES.search(json_text) is None:
        return json_text
    return _UNSAFE_KEEPING_LINES.sub(_replace_json, json_text)


def one_line(text: str, limit: int = 0) -> str:
    """`visible` text cut to `limit` characters (0: no limit), for list rows and log lines."""
    shown = visible(text)
    if limit and len(shown) > limit:
        return shown[: max(limit - 1, 0)] + "…"
    return shown
