"""Every scalar leaf of one JSON object with its path: the decoder's faithful fallback, so nothing Meta
sends is only in the raw body (see docs/decoded-view.md, "values")."""

from __future__ import annotations

from typing import Any

import orjson

MAX_VALUES = 300  # leaves kept per item; a cut item ends with (CUT_PATH, "N more values cut")
MAX_TEXT = 4096  # characters kept of one string (Meta's longest text body); longer ends with "…"
MAX_DEPTH = 24  # levels below the item; deeper objects become one leaf saying so
MAX_EXPANDED = 65_536  # characters of a JSON-holding string that are also expanded as leaves
CUT_PATH = "…"
_BIG = 2**63  # integers beyond 64 bits (only json.loads makes them) are kept as their digits
Values = tuple[tuple[str, Any], ...]


class _Full(Exception):
    """Raised by the walk when MAX_VALUES leaves are collected."""


def leaf_values(node: Any) -> Values:
    """(path, value) of every scalar leaf of `node` in document order: `a.b`, `a[0].c`, `x{}.k` for the
    JSON held in a string under a key ending in `json` (nfm_reply.response_json). Empty objects and
    lists are leaves too (`{}`, `[]`), so a key never disappears. Bounded: see the MAX_ constants."""
    if node.__class__ is dict and not node:
        return ()
    out: list[tuple[str, Any]] = []
    try:
        _walk(node, "", out, 0)
    except _Full:
        cut = _count(node) - MAX_VALUES
        out.append((CUT_PATH, f"{cut} more value{'s' * (cut != 1)} cut" if cut > 0 else "more values cut"))
    except RecursionError:  # a deep stack elsewhere: keep what was collected, say it is cut
        out.append((CUT_PATH, "values cut"))
    return tuple(out)


def _scalar(value: Any) -> Any:
    cls = value.__class__
    if cls is str:
        return value if len(value) <= MAX_TEXT else value[:MAX_TEXT] + "…"
    if cls is int:
        return value if -_BIG <= value < _BIG else str(value)
    if cls is float and (value != value or value in (float("inf"), float("-inf"))):
        return "NaN" if value != value else ("Infinity" if value > 0 else "-Infinity")
    return value


def _walk(node: Any, path: str, out: list[tuple[str, Any]], depth: int) -> None:
    cls = node.__class__
    if cls is dict:
        if not node:
            out.append((path, {}))
            return
        if depth >= MAX_DEPTH:
            out.append((path, "… nested too deeply"))
            return
        prefix = f"{path}." if path else ""
        for key, value in node.items():
            vcls = value.__class__
            if vcls is dict or vcls is list:
                _walk(value, prefix + key, out, depth + 1)
                continue
            here = prefix + key
            if vcls is str:
                out.append((here, value if len(value) <= MAX_TEXT else value[:MAX_TEXT] + "…"))
                if key[-4:].lower() == "json" and value[:1] in ("{", "[") and len(value) <= MAX_EXPANDED:
                    _expand(value, here, out, depth)
            else:
                out.append((here, _scalar(value)))
            if len(out) >= MAX_VALUES:
                raise _Full
    elif cls is list:
        if not node:
            out.append((path, []))
            return
        if depth >= MAX_DEPTH:
            out.append((path, "… nested too deeply"))
            return
        for index, value in enumerate(node):
            here = f"{path}[{index}]"
            vcls = value.__class__
            if vcls is dict or vcls is list:
                _walk(value, here, out, depth + 1)
            else:
                out.append((here, _scalar(value)))
                if len(out) >= MAX_VALUES:
                    raise _Full
    else:
        out.append((path, _scalar(node)))
    if len(out) >= MAX_VALUES:
        raise _Full


def _expand(text: str, path: str, out: list[tuple[str, Any]], depth: int) -> None:
    try:
        inner = orjson.loads(text)
    except orjson.JSONDecodeError:
        return
    if inner.__class__ is dict or inner.__class__ is list:
        _walk(inner, f"{path}{{}}", out, depth + 1)


def _count(node: Any) -> int:
    """How many leaves the whole walk would give (for the cut note); JSON strings not expanded."""
    stack, total = [node], 0
    while stack:
        current = stack.pop()
        if current.__class__ is dict and current:
            stack.extend(current.values())
        elif current.__class__ is list and current:
            stack.extend(current)
        else:
            total += 1
    return total
