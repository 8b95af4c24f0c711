"""Just enough YAML for ngrok.yml (block maps, lists, scalars): the fake agent is stdlib-only.

Reads what pyngrok's ``yaml.dump`` and hand-written ngrok configs contain; writes JSON-quoted
scalars, which every YAML parser reads back unchanged.
"""

from __future__ import annotations

import json
import re
from typing import Any

_INT = re.compile(r"[-+]?\d+")
_FLOAT = re.compile(r"[-+]?(\d+\.\d*|\.\d+)([eE][-+]?\d+)?")


class YamlError(ValueError):
    """The file uses YAML this reader does not understand (the fake then refuses to start)."""


def loads(text: str) -> Any:
    """Parse a document; an empty one is None, as with yaml.safe_load."""
    if text.lstrip().startswith("{"):
        try:
            return json.loads(text)
        except json.JSONDecodeError as exc:
            raise YamlError("flow-style documents are not supported") from exc
    lines = _logical_lines(text)
    if not lines:
        return None
    value, index = _block(lines, 0, lines[0][0])
    if index != len(lines):
        raise YamlError(f"unexpected indentation at: {lines[index][1]!r}")
    return value


def dumps(value: Any) -> str:
    """Block-style YAML for dicts and lists of JSON-compatible values."""
    return "".join(_dump(value, 0)) or "{}\n"


def _logical_lines(text: str) -> list[tuple[int, str]]:
    out: list[tuple[int, str]] = []
    for raw in text.splitlines():
        if raw.strip() in ("---", "...") and not raw.startswith(" "):
            continue
        line = _strip_comment(raw).rstrip()
        if not line.strip():
            continue
        if "\t" in line[: len(line) - len(line.lstrip())]:
            raise YamlError("tabs are not allowed in indentation")
        out.append((len(line) - len(line.lstrip(" ")), line.strip()))
    return out


def _strip_comment(line: str) -> str:
    quote = ""
    for i, ch in enumerate(line):
        if quote:
            if ch == quote:
                quote = ""
        elif ch in "'\"":
            quote = ch
        elif ch == "#" and (i == 0 or line[i - 1] in " \t"):
            return line[:i]
    return line


def _is_item(content: str) -> bool:
    return content == "-" or content.startswith("- ")


def _block(lines: list[tuple[int, str]], index: int, indent: int) -> tuple[Any, int]:
    if _is_item(lines[index][1]):
        return _sequence(lines, index, indent)
    return _mapping(lines, index, indent)


def _mapping(lines: list[tuple[int, str]], index: int, indent: int) -> tuple[dict[str, Any], int]:
    result: dict[str, Any] = {}
    while index < len(lines) and lines[index][0] == indent and not _is_item(lines[index][1]):
        key, rest = _split_key(lines[index][1])
        index += 1
        if rest:
            result[key] = _scalar(rest)
            continue
        nested = index < len(lines) and (
            lines[index][0] > indent or (lines[index][0] == indent and _is_item(lines[index][1]))
        )
        if nested:
            result[key], index = _block(lines, index, lines[index][0])
        else:
            result[key] = None
    return result, index


def _sequence(lines: list[tuple[int, str]], index: int, indent: int) -> tuple[list[Any], int]:
    result: list[Any] = []
    while index < len(lines) and lines[index][0] == indent and _is_item(lines[index][1]):
        after = lines[index][1][1:]
        item = after.strip()
        if not item:
            index += 1
            if index < len(lines) and lines[index][0] > indent:
                value, index = _block(lines, index, lines[index][0])
            else:
                value = None
            result.append(value)
        elif _is_item(item) or _looks_like_key(item):
            inner = indent + 1 + len(after) - len(after.lstrip())
            lines[index] = (inner, item)
            value, index = _block(lines, index, inner)
            result.append(value)
        else:
            result.append(_scalar(item))
            index += 1
    return result, index


def _looks_like_key(content: str) -> bool:
    if content[0] in "'\"":
        end = content.find(content[0], 1)
        return end > 0 and content[end + 1 : end + 2] == ":"
    if content[0] in "[{":
        return False
    return bool(re.match(r"[^:]+:(\s|$)", content))


def _split_key(content: str) -> tuple[str, str]:
    if content[0] in "'\"":
        end = content.find(content[0], 1)
        if end < 0 or content[end + 1 : end + 2] != ":":
            raise YamlError(f"bad key in: {content!r}")
        return _scalar(content[: end + 1]), content[end + 2 :].strip()
    match = re.match(r"([^:]+):(?:\s+(.*))?$", content)
    if not match:
        raise YamlError(f"expected 'key: value', got: {content!r}")
    return match.group(1).strip(), (match.group(2) or "").strip()


def _scalar(text: str) -> Any:
    if text.startswith("'") and text.endswith("'") and len(text) >= 2:
        return text[1:-1].replace("''", "'")
    if text.startswith('"') and text.endswith('"') and len(text) >= 2:
        return json.loads(text)
    if text[0] in "[{":
        try:
            return json.loads(text)
        except json.JSONDecodeError:
            return _flow(text)
    lowered = text.lower()
    if lowered in ("true", "yes", "on"):
        return True
    if lowered in ("false", "no", "off"):
        return False
    if lowered in ("null", "~"):
        return None
    if _INT.fullmatch(text):
        return int(text)
    if _FLOAT.fullmatch(text):
        return float(text)
    return text


def _flow(text: str) -> Any:
    """Flow collections with bare words, e.g. ``[https, http]`` or ``{addr: 80}``."""
    inner = text[1:-1].strip()
    parts = [p.strip() for p in inner.split(",") if p.strip()] if inner else []
    if text[0] == "[":
        return [_scalar(p) for p in parts]
    pairs = (_split_key(p) for p in parts)
    return {key: _scalar(value) if value else None for key, value in pairs}


def _dump(value: Any, indent: int) -> list[str]:
    pad = " " * indent
    if isinstance(value, dict):
        out: list[str] = []
        for key, item in value.items():
            if isinstance(item, (dict, list)) and item:
                out.append(f"{pad}{_quote(str(key))}:\n")
                out.extend(_dump(item, indent + 2))
            else:
                out.append(f"{pad}{_quote(str(key))}: {_inline(item)}\n")
        return out
    if isinstance(value, list):
        out = []
        for item in value:
            if isinstance(item, (dict, list)) and item:
                nested = _dump(item, indent + 2)
                out.append(f"{pad}- {nested[0].lstrip()}")
                out.extend(nested[1:])
            else:
                out.append(f"{pad}- {_inline(item)}\n")
        return out
    return [f"{pad}{_inline(value)}\n"]


def _inline(value: Any) -> str:
    return json.dumps(value)


def _quote(key: str) -> str:
    return key if re.fullmatch(r"[A-Za-z_][A-Za-z0-9_\-]*", key) else json.dumps(key)
