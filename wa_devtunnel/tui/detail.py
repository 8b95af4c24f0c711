"""The detail of one exchange as rich renderables: decoded items, body, headers, verdicts.

Every value here came from a request (or from a file a request was written to), so each one goes
through tui.safe: Text only, controls escaped, never a str that Rich would parse as markup.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import Any

from rich.console import Group, RenderableType
from rich.syntax import Syntax
from rich.table import Table
from rich.text import Text

from wa_devtunnel.engine.recording import request_body
from wa_devtunnel.rules.decode.payload import decode_payload
from wa_devtunnel.rules.untrusted import json_visible, visible
from wa_devtunnel.tui.char_wrap import CharWrapped
from wa_devtunnel.tui.safe import data, data_block, shown

SIGNATURE_MEANING = {
    "valid": "X-Hub-Signature-256 matches the raw body signed with your App Secret.",
    "invalid": "X-Hub-Signature-256 does not match: a strict app would answer 403.",
    "missing": "No X-Hub-Signature-256 header: Meta always sends one, so this did not come from Meta.",
    "unchecked": "Not checked: set WHATSAPP_APP_SECRET to verify signatures.",
}
# The Body tab shows this much; pretty-printing and highlighting a multi-megabyte body froze the UI.
BODY_SHOWN_BYTES = 64 * 1024
# Highlighting costs ~10 ms per KiB of JSON on the UI thread: beyond this the pretty view is plain text.
HIGHLIGHT_MAX_BYTES = 16 * 1024
HEX_SHOWN_BYTES = 4096
WHOLE_BODY_KEYS = "press o to open the whole body in $PAGER, w to write it to a file"
# One value of an item (a text, a Flow's answers) is shown up to this long; a path up to PATH_SHOWN.
VALUE_SHOWN = 1000
PATH_SHOWN = 120
# A record without item values is decoded again for the detail up to this size (on the UI thread).
VALUES_DECODE_MAX_BYTES = 256 * 1024
# Who sent a request, in words (the record's `origin`; the list shows the label itself, e.g. `(sample)`).
ORIGIN_WORDS = {
    "meta": "Meta (its user agent, through the tunnel)",
    "other": "not Meta: through the tunnel without Meta's user agent (a scanner, curl...)",
    "local": "not Meta: a local client, not through the tunnel",
    "selftest": "wa-devtunnel's self-test",
    "sample": "a sample event from wa-devtunnel (s)",
    "replay": "a replay from wa-devtunnel",
}
# Item fields where False is news (billable: false means Meta does not charge), not an unset default.
_MEANINGFUL_FALSE = frozenset({"billable"})


def _kv_table() -> Table:
    table = Table.grid(padding=(0, 2))
    table.add_column(style="bold", no_wrap=True)
    table.add_column(overflow="fold")
    return table


def summary_renderable(record: Mapping[str, Any], client: str = "") -> RenderableType:
    """Every item of the batch, one block each, plus the exchange's verdicts; `client` is the sender's
    address when the view knows it (the tunnel's forwarded header), else the record's."""
    request = _mapping(record.get("request"))
    response = _mapping(record.get("response"))
    overview = _kv_table()
    target = f"{request.get('method', '')} {request.get('path', '')}"
    overview.add_row("Request", data(target + (f"?{request['query']}" if request.get("query") else "")))
    overview.add_row("Answer", data(f"{response.get('status', '')} {response.get('body', '')!s:.120}"))
    overview.add_row(
        "Received",
        data(f"{record.get('received_at', '')}  seq {record.get('seq', '')}  {record.get('elapsed_ms', '')} ms"),
    )
    overview.add_row("From", _sender(record, client))
    verify = record.get("verify")
    if isinstance(verify, Mapping):
        verdict = (
            Text("PASSED: challenge echoed", style="green")
            if verify.get("ok")
            else data(f"FAILED: {verify.get('reason', '')}", style="bold red")
        )
        overview.add_row("Handshake", verdict)
    if record.get("kind") == "event":
        overview.add_row("Signature", _signature_text(record))
    if record.get("account"):
        overview.add_row("Account", data(record["account"]))
    parts: list[RenderableType] = [overview]
    summary = record.get("summary")
    if isinstance(summary, Mapping):
        if summary.get("problem"):
            parts.append(data(f"Problem: {summary['problem']}", style="bold red"))
        if summary.get("flags"):
            parts.append(data("Flags: " + ", ".join(map(str, summary["flags"])), style="yellow"))
        items = _items_with_values(record, summary.get("items") or [])
        if items:
            parts.append(Text(f"\n{len(items)} item(s):", style="bold"))
            parts.extend(_item_block(index, item) for index, item in enumerate(items, 1) if isinstance(item, Mapping))
    forward = record.get("forward")
    if isinstance(forward, Mapping):
        parts.append(Text("\n"))
        parts.append(
            data(
                f"Forwarded to {forward.get('url')}: {forward.get('status')} "
                f"in {forward.get('elapsed_ms')} ms {forward.get('error') or ''}"
            )
        )
    return Group(*parts)


def _sender(record: Mapping[str, Any], client: str) -> Text:
    """`203.0.113.7  Meta (its user agent, through the tunnel)`: the address, then the origin in words."""
    address = client or record.get("client") or record.get("remote") or "?"
    origin = str(record.get("origin", "meta"))
    return data(f"{address}  {ORIGIN_WORDS.get(origin, origin)}")


def _items_with_values(record: Mapping[str, Any], items: Any) -> list[Any]:
    """The recorded items, each with its `values`: a line recorded without them (an older decoder, or
    a receiver that left them out) gets them by decoding its body again, as `wa-devtunnel decode` does."""
    if not isinstance(items, list):
        return []
    if not items or any(isinstance(item, Mapping) and item.get("values") for item in items):
        return items
    try:
        body = request_body(_mapping(record.get("request")))
    except ValueError:
        return items
    if not body or len(body) > VALUES_DECODE_MAX_BYTES or record.get("request_body_truncated"):
        return items
    fresh = decode_payload(body).to_dict()["items"]
    if len(fresh) != len(items):  # decoded by another version: today's decoding is the whole truth
        return fresh
    return [
        {**item, **{key: value for key, value in again.items() if key == "values" or key not in item}}
        if isinstance(item, Mapping)
        else again
        for item, again in zip(items, fresh, strict=True)
    ]


def _mapping(value: Any) -> Mapping[str, Any]:
    return value if isinstance(value, Mapping) else {}


def _item_block(index: int, item: Mapping[str, Any]) -> RenderableType:
    """The item's line, its decoded fields, then every value Meta sent in it as `path = value`."""
    table = _kv_table()
    table.add_row(data(f"{index}. {item.get('kind', '?')}"), data(item.get("line", ""), style="bold"))
    for key, value in item.items():
        if key in ("kind", "line", "values") or value in ("", None, (), []):
            continue
        if value is False and key not in _MEANINGFUL_FALSE:
            continue
        if key == "errors" and isinstance(value, list):
            for entry in value:
                error = _mapping(entry)
                what = f"{error.get('code')} {error.get('title', '')} {error.get('details', '')}"
                table.add_row("  error", data(what))
            continue
        table.add_row(data(f"  {key}"), data(plain_value(value)))
    values = item.get("values")
    if not isinstance(values, list) or not values:
        return table
    return Group(table, Text("  values, as Meta sent them:", style="dim"), values_text(values))


def values_text(values: list[Any]) -> Text:
    """`    interactive.list_reply.id = "ship-24h"`, one line per value: strings as JSON spells them, cut when long."""
    text = Text()
    for pair in values:
        if not isinstance(pair, list | tuple) or len(pair) != 2:
            continue
        if text:
            text.append("\n")
        text.append("    ")
        text.append(shown(pair[0], PATH_SHOWN), style="cyan")
        text.append(" = ", style="dim")
        text.append(value_shown(pair[1]))
    return text


def plain_value(value: Any) -> str:
    """A decoded field in words: a list as `a, b`, anything else as JSON spells it; never a Python repr."""
    if isinstance(value, str):
        return value
    if isinstance(value, list | tuple):
        return ", ".join(item if isinstance(item, str) else _json(item) for item in value)
    return _json(value)


def _json(value: Any) -> str:
    try:
        return json.dumps(value, ensure_ascii=False, default=str)
    except (TypeError, ValueError):  # a circular structure: only from a bug, still never a repr
        return str(value)


def value_shown(value: Any, limit: int = VALUE_SHOWN) -> str:
    """A value as JSON spells it, escapes visible, cut to `limit` characters with a note."""
    spelled = shown(_json(value))
    if len(spelled) > limit:
        return f"{spelled[: limit - 1]}… (cut: {len(spelled):,} characters, the Body tab has all)"
    return spelled


def _signature_text(record: Mapping[str, Any]) -> Text:
    verdict = str(record.get("signature", "unchecked"))
    style = {"valid": "green", "invalid": "bold red", "missing": "yellow"}.get(verdict, "dim")
    text = data(verdict.upper(), style=style)
    detail = record.get("signature_detail") or SIGNATURE_MEANING.get(verdict, "")
    return text.append(f"  {shown(detail)}", style="")


def human_size(size: int) -> str:
    """`512 B`, `64 KiB`, `3.4 MiB`: how big a body is, at a glance."""
    if size < 1024:
        return f"{size} B"
    if size < 1024 * 1024:
        return f"{size / 1024:.0f} KiB"
    return f"{size / (1024 * 1024):.1f} MiB"


def is_big_body(body: bytes) -> bool:
    """Whether the Body tab shows only the start (and the o / w keys matter)."""
    return len(body) > BODY_SHOWN_BYTES


def body_renderable(record: Mapping[str, Any], raw: bool) -> RenderableType:
    """Pretty JSON with highlighting, or the exact bytes as received (escapes shown); a big body only its start."""
    request = _mapping(record.get("request"))
    try:
        body = request_body(request)
    except ValueError as exc:
        return data(f"(body unreadable: {exc})", style="red")
    if not body:
        return Text("(empty body)", style="dim")
    note = (
        " (truncated: only the start of an oversized body is recorded)" if record.get("request_body_truncated") else ""
    )
    if "body_b64" in request:
        cut = f"; {WHOLE_BODY_KEYS}" if len(body) > HEX_SHOWN_BYTES else ""
        return Group(
            Text(f"(not UTF-8: {len(body)} bytes, the first {HEX_SHOWN_BYTES} shown as hex{cut}){note}", style="dim"),
            Text(body[:HEX_SHOWN_BYTES].hex(" ")),
        )
    if is_big_body(body):
        start = body[:BODY_SHOWN_BYTES].decode("utf-8", "ignore")  # a cut character at the end is dropped
        return Group(
            Text(
                f"(showing {human_size(BODY_SHOWN_BYTES)} of {human_size(len(body))}, as received: "
                f"{WHOLE_BODY_KEYS}){note}",
                style="bold yellow",
            ),
            _as_received(start),
        )
    text = body.decode("utf-8")
    if raw:
        return Group(Text(f"{len(body)} bytes, exactly as received{note}", style="dim"), _as_received(text))
    try:
        pretty = pretty_json(text)
    except ValueError:
        return Group(Text(f"not JSON{note}", style="dim"), _as_received(text))
    except RecursionError:  # a hostile body nested ~1000 deep: show it as it came
        deep = Text(f"{len(body)} bytes, nested too deeply to pretty-print{note}", style="dim")
        return Group(deep, _as_received(text))
    if len(body) > HIGHLIGHT_MAX_BYTES:
        return Group(
            Text(f"{len(body)} bytes, pretty-printed without colours (b: raw bytes){note}", style="dim"),
            Text(pretty),
        )
    return Group(
        Text(f"{len(body)} bytes, pretty-printed (b: raw bytes){note}", style="dim"),
        Syntax(pretty, "json", word_wrap=True, theme="ansi_dark"),
    )


def _as_received(text: str) -> CharWrapped:
    """A body as it came, escapes shown, folded at the pane's width (never wrapped at its few spaces)."""
    return CharWrapped(data_block(text))


def pretty_json(text: str) -> str:
    """Indented JSON whose odd characters (bidi, C1, lone surrogates) stay `\\u` escapes: same value, safe."""
    return json_visible(json.dumps(json.loads(text), indent=2, ensure_ascii=False))


def whole_body_text(record: Mapping[str, Any]) -> str:
    """The whole body for a pager: pretty JSON when it parses, else as received (hex when not UTF-8), escaped."""
    request = _mapping(record.get("request"))
    body = request_body(request)
    if "body_b64" in request:
        return "\n".join(body[at : at + 32].hex(" ") for at in range(0, len(body), 32))
    text = body.decode("utf-8")
    try:
        return pretty_json(text)
    except (ValueError, RecursionError):
        return visible(text, keep_newlines=True)


def headers_renderable(record: Mapping[str, Any]) -> RenderableType:
    """Request headers in arrival order, and what we answered."""
    request = _mapping(record.get("request"))
    table = _kv_table()
    for pair in request.get("headers") or []:
        if isinstance(pair, list | tuple) and len(pair) == 2:
            table.add_row(data(pair[0]), data(pair[1]))
    response = _mapping(record.get("response"))
    answer = _kv_table()
    answer.add_row("Status", data(response.get("status", "")))
    answer.add_row("Content-Type", "text/plain; charset=utf-8")
    answer.add_row("Body", data(response.get("body", "")))
    return Group(
        Text("Request headers", style="bold underline"), table, Text("\nResponse", style="bold underline"), answer
    )


def signature_renderable(record: Mapping[str, Any]) -> RenderableType:
    """The verdict and why, or the handshake diagnosis for verify requests."""
    verify = record.get("verify")
    if isinstance(verify, Mapping):
        if verify.get("ok"):
            return Text("Handshake passed: 200 with the challenge echoed verbatim as text/plain.", style="green")
        return Group(
            data(f"Handshake FAILED: {verify.get('reason', '')}", style="bold red"),
            Text(
                'Meta would show only "The callback URL or verify token couldn\'t be validated". '
                "The expected token is never shown here; compare it with WHATSAPP_VERIFY_TOKEN."
            ),
        )
    if record.get("kind") != "event":
        return Text("Not a webhook request: no signature applies.", style="dim")
    verdict = str(record.get("signature", "unchecked"))
    return Group(_signature_text(record), Text(SIGNATURE_MEANING.get(verdict, ""), style="dim"))
