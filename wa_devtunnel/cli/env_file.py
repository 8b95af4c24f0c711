""".env editing that changes one value and leaves every other byte alone (comments, CRLF, quotes, export).

`save_value` applies such an edit to the file on disk (created from .env.example when missing); it is
what `token --write-env` and the start-up offer to keep a generated verify token both use.

Hand-written on purpose: dotenv.set_key rewrites the line as KEY='value' (dropping its export, comment
and line ending) and replaces every assignment, while `token --write-env` promises the rest of the file
byte for byte. Lines are split by python-dotenv's grammar (mirrored below, as dotenv.parser is private),
and every edit is read back with the public dotenv_values to prove dotenv reads the new value.
"""

from __future__ import annotations

import io
import logging
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

from dotenv import dotenv_values

from wa_devtunnel.cli.private_file import PRIVATE_MODE, create_private, replace_private

Action = Literal["filled", "replaced", "appended"]
EXAMPLE_NAME = ".env.example"
MINIMAL_HEADER = (
    "# wa-devtunnel settings (`wa-devtunnel init` writes a .env with every setting, commented).\n"
    "# Keep this file out of version control: it holds secrets.\n"
)
# python-dotenv's grammar, one binding at a time: blank lines, `export`, a key, `=`, a value, a comment.
_BLANK = re.compile(r"\s*")
_EXPORT = re.compile(r"(?:export[^\S\r\n]+)?")
_KEY = re.compile(r"([^=#\s]+)[^\S\r\n]*")
_QUOTED_KEY = re.compile(r"'([^']+)'[^\S\r\n]*")
_EQUAL = re.compile(r"=[^\S\r\n]*")
_QUOTED = {"'": re.compile(r"'(?:\\.|[^'\\])*'", re.DOTALL), '"': re.compile(r'"(?:\\.|[^"\\])*"', re.DOTALL)}
_UNQUOTED = re.compile(r"[^\r\n]*")
_END = re.compile(r"(?:[^\S\r\n]*#[^\r\n]*)?[^\S\r\n]*(?:\r\n|\n|\r|$)")
_REST_OF_LINE = re.compile(r"[^\r\n]*(?:\r|\n|\r\n)?")
_SAFE_VALUE = re.compile(r"[A-Za-z0-9._~+/=:@%-]+")


class EnvEditError(Exception):
    """The file cannot be edited safely (the caller says so instead of guessing)."""


@dataclass(frozen=True, slots=True)
class EnvEdit:
    """The new file text, what was done, and the value it replaced (for the question asked)."""

    text: str
    action: Action
    previous: str


@dataclass(frozen=True, slots=True)
class _Assignment:
    """Where one `KEY=value` binding's value sits in the text, and how a new value must be written there."""

    key: str
    start: int
    end: int
    quote: str = ""  # the value's own quotes, kept
    needs_equal: bool = False  # `KEY` alone: `=value` goes after the name
    before_comment: bool = False  # `KEY= # comment`: a space keeps the comment a comment


def _assignments(text: str) -> list[_Assignment]:
    """Every valid binding in file order; lines dotenv cannot parse (it skips them) are skipped too."""
    found: list[_Assignment] = []
    pos = 1 if text.startswith("\ufeff") else 0
    while (pos := _skip(_BLANK, text, pos)) < len(text):
        binding, pos = _binding(text, pos)
        if binding is not None:
            found.append(binding)
    return found


def _skip(pattern: re.Pattern[str], text: str, pos: int) -> int:
    """Where a pattern that cannot fail (it may match nothing) ends."""
    match = pattern.match(text, pos)
    assert match is not None
    return match.end()


def _binding(text: str, pos: int) -> tuple[_Assignment | None, int]:
    """The binding at `pos` (None for a comment or a line dotenv skips) and where the next one starts."""
    pos = _skip(_EXPORT, text, pos)
    if text[pos : pos + 1] == "#":
        return None, _skip(_END, text, pos)
    head = (_QUOTED_KEY if text[pos : pos + 1] == "'" else _KEY).match(text, pos)
    if head is None:
        return None, _skip(_REST_OF_LINE, text, pos)
    key, pos = head.group(1), head.end()
    equal = _EQUAL.match(text, pos)
    if equal is None:
        binding = _Assignment(key, pos, pos, needs_equal=True)
    else:
        pos = equal.end()
        char = text[pos : pos + 1]
        if len(equal.group()) > 1 and char == "#":
            binding = _Assignment(key, pos, pos, before_comment=True)
        elif char in _QUOTED:
            quoted = _QUOTED[char].match(text, pos)
            if quoted is None:
                return None, _skip(_REST_OF_LINE, text, pos)
            binding, pos = _Assignment(key, pos, quoted.end(), quote=char), quoted.end()
        else:
            line = text[pos : _skip(_UNQUOTED, text, pos)]
            value = re.sub(r"\s+#.*", "", line).rstrip()
            binding, pos = _Assignment(key, pos, pos + len(value)), pos + len(line)
    end = _END.match(text, pos)
    if end is None:  # something after the value: dotenv skips the binding
        return None, _skip(_REST_OF_LINE, text, pos)
    return binding, end.end()


def _dotenv_reading(text: str) -> dict[str, str | None]:
    """What python-dotenv reads; its warnings about skipped lines are for loading settings, not for an edit."""
    logger = logging.getLogger("dotenv.main")
    disabled, logger.disabled = logger.disabled, True
    try:
        return dotenv_values(stream=io.StringIO(text), interpolate=False)
    finally:
        logger.disabled = disabled


def current_value(text: str, key: str) -> str | None:
    """The value dotenv reads for `key` ("" when empty), or None when the file never sets it."""
    values = _dotenv_reading(text)
    return (values[key] or "") if key in values else None


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


def set_value(text: str, key: str, value: str) -> EnvEdit:
    """Set `key` in a .env text: fill or replace its last assignment in place, else append a line."""
    mine = [a for a in _assignments(text) if a.key == key]
    previous = current_value(text, key) or ""
    if not mine:
        eol = _line_ending(text)
        separator = eol if text and not text.endswith(("\n", "\r")) else ""
        new_text, action = f"{text}{separator}{key}={_render(value, '')}{eol}", "appended"
    else:
        last = mine[-1]  # the one dotenv reads
        written = ("=" if last.needs_equal else "") + _render(value, last.quote) + (" " if last.before_comment else "")
        new_text, action = text[: last.start] + written + text[last.end :], ("replaced" if previous else "filled")
    if current_value(new_text, key) != value:
        raise EnvEditError(f"after the edit, dotenv would not read {key} back as written")
    return EnvEdit(new_text, action, previous if mine else "")  # type: ignore[arg-type]


def new_env_text(example: str | None) -> str:
    """The first content of a missing .env: the project's .env.example, else a short header."""
    return MINIMAL_HEADER if example is None else example


def example_text(env_path: Path) -> tuple[str | None, str]:
    """The .env.example beside the target, else in the current directory, else wa-devtunnel's own; and its name."""
    for candidate in (env_path.parent / EXAMPLE_NAME, Path.cwd() / EXAMPLE_NAME):
        if candidate.is_file():
            return candidate.read_bytes().decode("utf-8"), str(candidate)
    try:
        from wa_devtunnel.cli.init import env_template  # the template shipped in the package (pip installs)

        return env_template(), "wa-devtunnel's commented template"
    except (ImportError, OSError):
        return None, ""


def save_value(env_path: Path, key: str, value: str) -> str:
    """Set `key` in the file (created 0600 from an example when missing; 0600 after the edit); says what was done.

    Raises EnvEditError for a file that cannot be edited safely, OSError when it cannot be written.
    """
    if not env_path.exists():
        example, source = example_text(env_path)
        create_private(env_path, set_value(new_env_text(example), key, value).text)
        origin = f"from {source}" if source else "with a minimal header"
        return f"Created {env_path} {origin} (mode 0600) and set {key}."
    try:
        text = env_path.read_bytes().decode("utf-8")
    except UnicodeDecodeError:
        raise EnvEditError(f"{env_path} is not UTF-8 text; set {key} in it by hand") from None
    edit = set_value(text, key, value)
    old_mode = replace_private(env_path, edit.text)
    done = {"filled": "Set", "replaced": "Replaced", "appended": "Added"}[edit.action]
    tightened = f" Its mode is now 0600 (was {old_mode:04o}): it holds secrets." if old_mode != PRIVATE_MODE else ""
    return f"{done} {key} in {env_path}.{tightened}"
