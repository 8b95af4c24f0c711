"""How one exchange reads as a row of the live list (rich Text, no widgets)."""

from __future__ import annotations

from rich.text import Text

from wa_devtunnel.engine.events import ExchangeView
from wa_devtunnel.headless import forward_note, local_clock
from wa_devtunnel.tui.model import is_problem

# Summary last: it is the only long column, so a long one never pushes the others off screen.
COLUMNS = ("Time", "Kind", "HTTP", "Sig", "Account", "Field", "ms", "Summary")
SIGNATURE_BADGES = {
    "valid": ("✓ ok", "green"),
    "invalid": ("✗ BAD", "bold red"),
    "missing": ("! none", "yellow"),
    "unchecked": ("· off", "dim"),
}


def summary_text(view: ExchangeView) -> str:
    """The one-line WhatsApp summary, with our own traffic labelled."""
    text = view.headline
    if len(view.fields) == 1 and text.startswith(f"{view.fields[0]}: "):
        text = text[len(view.fields[0]) + 2 :]
    notable = [flag for flag in view.flags if flag != "batch"]
    if view.kind == "event" and notable:
        text += "  [" + ", ".join(notable) + "]"
    if view.origin != "meta":
        text = f"({view.origin}) {text}"
    return text + forward_note(view.forward_status, view.forward_error, view.forward_pending)


def columns(with_accounts: bool) -> tuple[str, ...]:
    """The list's columns; Account only when several accounts are configured."""
    return COLUMNS if with_accounts else tuple(c for c in COLUMNS if c != "Account")


def row_cells(view: ExchangeView, with_accounts: bool = True) -> tuple[Text, ...]:
    """Cells for the DataTable; failed handshakes and other problems stand out in red."""
    problem = is_problem(view)
    base = "bold red" if view.verify_ok is False else ("red" if problem else "")
    badge, badge_style = SIGNATURE_BADGES.get(view.signature, (view.signature, ""))
    if view.kind != "event":
        badge, badge_style = "", ""
    field = view.fields[0] if view.fields else ""
    if len(view.fields) > 1:
        field += f" +{len(view.fields) - 1}"
    status_style = "green" if 200 <= view.status < 300 else "bold red" if view.status >= 400 else ""
    cells = (
        Text(local_clock(view.received_at), style=base or "dim"),
        Text(view.kind, style=base or ("cyan" if view.kind == "verify" else "")),
        Text(str(view.status), style=base or status_style),
        Text(badge, style=badge_style),
        Text(view.account or "", style=base),
        Text(field, style=base),
        Text(f"{view.elapsed_ms:.1f}", style="dim", justify="right"),
        Text(summary_text(view), style=base),
    )
    return cells if with_accounts else cells[:4] + cells[5:]
