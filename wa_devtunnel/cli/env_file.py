""".env editing that changes one value and leaves every other byte alone (comments, CRLF, quotes).

Lines are found with python-dotenv's own parser, so the line edited is the one `load_settings`
reads (the last assignment wins); every edit is re-parsed to prove dotenv now reads the new value.
"""

from __future__ import annotations

import io
import re
from dataclasses import dataclass
from typing import Literal

from dotenv.parser import Binding, parse_stream

Action = Literal["filled", "replaced", "appended"]
MINIMAL_HEADER = (
    "# wa-devtunnel settings (every setting is described in .env.example of wa-devtunnel).\n"
    "# Keep this file out of version control: it holds secrets.\n"
)
_HEAD = re.compile(r"\s*(?:export[^\S\r\n]+)?(?:'[^']+'|[^=#\s]+)[^\S\r\n]*")
_EQUAL = re.compile(r"=[^\S\r\n]*")
_QUOTED = {"'": re.compile(r"'(?:\\.|[^'\\])*'", re.DOTALL), '"': re.compile(r'"(?:\\.|[^"\\])*"', re.DOTALL)}
_UNQUOTED = re.compile(r"[^\r\n]*")
_SAFE_VALUE = re.compile(r"[A-Za-z0-9._~+/=:@%-]+")


class EnvEditError(Exception):
    """The file cannot be edited safely (the caller says so instead of guessing)."""


@dataclass(frozen=True, slots=True)
class EnvEdit:
    """The new file text, what was done, and the value it replaced (for the question asked)."""

    text: str
    action: Action
    previous: str


def _bindings(text: str) -> list[Binding]:
    return list(parse_stream(io.StringIO(text)))


def _last(bindings: list[Binding], key: str) -> int | None:
    found = [i for i, b in enumerate(bindings) if not b.error and b.key == key]
    return found[-1] if found else None


def current_value(text: str, key: str) -> str | None:
    """The value dotenv reads for `key` ("" when empty), or None when the file never sets it."""
    bindings = _bindings(text)
    index = _last(bindings, key)
    return None if index is None else (bindings[index].value or "")


def _line_ending(text: str) -> str:
    return "\r\n" if "\r\n" in text else "\n"


def _render(value: str, quote: str) -> str:
    """The value as written in the file: in the line's own quotes, double quotes if it needs them."""
    if quote:
        return f"{quote}{value}{quote}"
    if _SAFE_VALUE.fullmatch(value):
        return value
    escaped = value.replace("\\", "\\\\").replace('"', '\\"')
    return f'"{escaped}"'


def _replace_value(original: str, value: str) -> str:
    """Swap the value inside one binding's original text, keeping indent, export, quotes, comment, EOL."""
    head = _HEAD.match(original)
    if head is None:
        raise EnvEditError("cannot find the variable's name on its line")
    pos = head.end()
    if original[pos : pos + 1] != "=":
        return original[:pos] + "=" + _render(value, "") + original[pos:]
    pos = _EQUAL.match(original, pos).end()  # type: ignore[union-attr]
    char = original[pos : pos + 1]
    if pos - head.end() > 1 and char == "#":  # `KEY= # comment`: empty value, then a comment
        return original[:pos] + _render(value, "") + " " + original[pos:]
    if char in _QUOTED:
        quoted = _QUOTED[char].match(original, pos)
        if quoted is None:
            raise EnvEditError("the quoted value is not closed")
        return original[:pos] + _render(value, char) + original[quoted.end() :]
    part = _UNQUOTED.match(original, pos).group()  # type: ignore[union-attr]
    old = re.sub(r"\s+#.*", "", part).rstrip()
    return original[:pos] + _render(value, "") + original[pos + len(old) :]


def set_value(text: str, key: str, value: str) -> EnvEdit:
    """Set `key` in a .env text: fill or replace its last assignment in place, else append a line."""
    bindings = _bindings(text)
    if "".join(b.original.string for b in bindings) != text:
        raise EnvEditError("dotenv's reading of the file does not cover every byte of it")
    index = _last(bindings, key)
    if index is None:
        eol = _line_ending(text)
        separator = eol if text and not text.endswith(("\n", "\r")) else ""
        new_text, action, previous = f"{text}{separator}{key}={_render(value, '')}{eol}", "appended", ""
    else:
        binding = bindings[index]
        previous = binding.value or ""
        parts = [b.original.string for b in bindings]
        parts[index] = _replace_value(binding.original.string, value)
        new_text, action = "".join(parts), ("replaced" if previous else "filled")
    if current_value(new_text, key) != value:
        raise EnvEditError(f"after the edit, dotenv would not read {key} back as written")
    return EnvEdit(new_text, action, previous)  # type: ignore[arg-type]


def new_env_text(example: str | None) -> str:
    """The first content of a missing .env: the project's .env.example, else a short header."""
    return MINIMAL_HEADER if example is None else example
