"""The detail of one exchange as rich renderables: decoded items, body, headers, verdicts."""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import Any

from rich.console import Group, RenderableType
from rich.syntax import Syntax
from rich.table import Table
from rich.text import Text

from wa_devtunnel.engine.recording import request_body

SIGNATURE_MEANING = {
    "valid": "X-Hub-Signature-256 matches the raw body signed with your App Secret.",
    "invalid": "X-Hub-Signature-256 does not match: a strict app would answer 403.",
    "missing": "No X-Hub-Signature-256 header: Meta always sends one, so this did not come from Meta.",
    "unchecked": "Not checked: set WHATSAPP_APP_SECRET to verify signatures.",
}


def _kv_table() -> Table:
    table = Table.grid(padding=(0, 2))
    table.add_column(style="bold", no_wrap=True)
    table.add_column(overflow="fold")
    return table


def summary_renderable(record: Mapping[str, Any]) -> RenderableType:
    """Every item of the batch, one block each, plus the exchange's verdicts."""
    request = record.get("request") or {}
    response = record.get("response") or {}
    overview = _kv_table()
    overview.add_row(
        "Request",
        f"{request.get('method', '')} {request.get('path', '')}"
        + (f"?{request['query']}" if request.get("query") else ""),
    )
    overview.add_row("Answer", f"{response.get('status', '')} {response.get('body', '')!s:.120}")
    overview.add_row(
        "Received",
        f"{record.get('received_at', '')}  seq {record.get('seq', '')}  "
        f"{record.get('elapsed_ms', '')} ms  from {record.get('remote', '?')}  "
        f"({record.get('origin', 'meta')})",
    )
    verify = record.get("verify")
    if isinstance(verify, Mapping):
        verdict = (
            Text("PASSED: challenge echoed", style="green")
            if verify.get("ok")
            else Text(f"FAILED: {verify.get('reason', '')}", style="bold red")
        )
        overview.add_row("Handshake", verdict)
    if record.get("kind") == "event":
        overview.add_row("Signature", _signature_text(record))
    if record.get("account"):
        overview.add_row("Account", str(record["account"]))
    parts: list[RenderableType] = [overview]
    summary = record.get("summary")
    if isinstance(summary, Mapping):
        if summary.get("problem"):
            parts.append(Text(f"Problem: {summary['problem']}", style="bold red"))
        if summary.get("flags"):
            parts.append(Text("Flags: " + ", ".join(summary["flags"]), style="yellow"))
        items = summary.get("items") or []
        if items:
            parts.append(Text(f"\n{len(items)} item(s):", style="bold"))
            parts.extend(_item_block(index, item) for index, item in enumerate(items, 1) if isinstance(item, Mapping))
    forward = record.get("forward")
    if isinstance(forward, Mapping):
        parts.append(
            Text(
                f"\nForwarded to {forward.get('url')}: {forward.get('status')} "
                f"in {forward.get('elapsed_ms')} ms {forward.get('error') or ''}"
            )
        )
    return Group(*parts)


def _item_block(index: int, item: Mapping[str, Any]) -> RenderableType:
    table = _kv_table()
    table.add_row(f"{index}. {item.get('kind', '?')}", Text(str(item.get("line", "")), style="bold"))
    for key, value in item.items():
        if key in ("kind", "line") or value in ("", None, (), [], False):
            continue
        if key == "errors":
            for error in value:
                table.add_row("  error", f"{error.get('code')} {error.get('title', '')} {error.get('details', '')}")
            continue
        table.add_row(f"  {key}", str(value))
    return table


def _signature_text(record: Mapping[str, Any]) -> Text:
    verdict = str(record.get("signature", "unchecked"))
    style = {"valid": "green", "invalid": "bold red", "missing": "yellow"}.get(verdict, "dim")
    text = Text(verdict.upper(), style=style)
    detail = record.get("signature_detail") or SIGNATURE_MEANING.get(verdict, "")
    return text.append(f"  {detail}", style="")


def body_renderable(record: Mapping[str, Any], raw: bool) -> RenderableType:
    """Pretty JSON with highlighting, or the exact bytes as received (escapes and all)."""
    request = record.get("request") or {}
    try:
        body = request_body(request)
    except ValueError as exc:
        return Text(f"(body unreadable: {exc})", style="red")
    if not body:
        return Text("(empty body)", style="dim")
    if "body_b64" in request:
        return Text(f"(not UTF-8: {len(body)} bytes, shown as hex)\n{body[:4096].hex(' ')}")
    text = body.decode("utf-8")
    note = (
        " (truncated: only the start of an oversized body is recorded)" if record.get("request_body_truncated") else ""
    )
    if raw:
        return Group(Text(f"{len(body)} bytes, exactly as received{note}", style="dim"), Text(text))
    try:
        pretty = json.dumps(json.loads(text), indent=2, ensure_ascii=False)
    except ValueError:
        return Group(Text(f"not JSON{note}", style="dim"), Text(text))
    except RecursionError:  # a hostile body nested ~1000 deep: show it as it came
        return Group(Text(f"{len(body)} bytes, nested too deeply to pretty-print{note}", style="dim"), Text(text))
    return Group(
        Text(f"{len(body)} bytes, pretty-printed (b: raw bytes){note}", style="dim"),
        Syntax(pretty, "json", word_wrap=True, theme="ansi_dark"),
    )


def headers_renderable(record: Mapping[str, Any]) -> RenderableType:
    """Request headers in arrival order, and what we answered."""
    request = record.get("request") or {}
    table = _kv_table()
    for name, value in request.get("headers") or []:
        table.add_row(str(name), str(value))
    response = record.get("response") or {}
    answer = _kv_table()
    answer.add_row("Status", str(response.get("status", "")))
    answer.add_row("Content-Type", "text/plain; charset=utf-8")
    answer.add_row("Body", str(response.get("body", "")))
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
            Text(f"Handshake FAILED: {verify.get('reason', '')}", style="bold red"),
            Text(
                'Meta would show only "The callback URL or verify token couldn\'t be validated". '
                "The expected token is never shown here; compare it with WHATSAPP_VERIFY_TOKEN."
            ),
        )
    if record.get("kind") != "event":
        return Text("Not a webhook request: no signature applies.", style="dim")
    verdict = str(record.get("signature", "unchecked"))
    return Group(_signature_text(record), Text(SIGNATURE_MEANING.get(verdict, ""), style="dim"))
