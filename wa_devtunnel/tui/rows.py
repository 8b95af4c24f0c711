"""How one exchange reads as a row of the live list (rich Text through tui.safe, no widgets)."""

from __future__ import annotations

from collections.abc import Sequence

from rich.cells import cell_len, set_cell_size
from rich.style import StyleType
from rich.text import Text

from wa_devtunnel.engine.exchange_view import ExchangeView, forward_note, local_clock
from wa_devtunnel.tui.model import is_problem
from wa_devtunnel.tui.safe import data

# Summary last: it is the only long column, so a long one never pushes the others off screen.
COLUMNS = ("Time", "Kind", "HTTP", "Sig", "Account", "Field", "ms", "Summary")
SIGNATURE_BADGES = {
    "valid": ("✓ ok", "green"),
    "invalid": ("✗ BAD", "bold red"),
    "missing": ("! none", "yellow"),
    "unchecked": ("· off", "dim"),
}


# Long field names shortened for the list (the detail shows the full name).
SHORT_FIELDS = {
    "message_template_status_update": "template_status",
    "message_template_quality_update": "template_quality",
    "message_template_components_update": "template_comp",
    "template_category_update": "template_category",
    "phone_number_quality_update": "phone_quality",
    "phone_number_name_update": "phone_name",
    "business_capability_update": "capability",
    "account_review_update": "account_review",
}
FIELD_WIDTH = 16
SUMMARY_LIMIT = 300  # nothing wider is ever on screen: an 8 KB path is not copied into every redraw
# The list's columns have fixed widths (nothing is measured per row); Summary takes the rest of the line.
COLUMN_WIDTHS = {"Time": 8, "Kind": 6, "HTTP": 4, "Sig": 6, "Account": 12, "Field": FIELD_WIDTH + 2, "ms": 7}
COLUMN_GAP = 2


def short_field(field: str) -> str:
    """A field name that fits the column."""
    short = SHORT_FIELDS.get(field, field)
    return short if len(short) <= FIELD_WIDTH else short[: FIELD_WIDTH - 1] + "…"


# Flags as the list says them (the filter's `flag:` values stay Meta-like: flag:unknown-phone-number-id).
FLAG_WORDS = {"unknown-phone-number-id": "unknown phone_number_id", "dashboard-test": "dashboard test"}


def summary_text(view: ExchangeView, with_field: bool = False) -> str:
    """The one-line WhatsApp summary: our own and other non-Meta traffic labelled first (`(sample) text from
    ...`), then the field when no column shows it, the headline, its flags in words and the backend's answer."""
    text = view.headline
    field = view.fields[0] if view.fields else ""
    if len(view.fields) == 1 and text.startswith(f"{field}: "):
        text = text[len(field) + 2 :]
    if with_field and field and field != "messages" and not text.startswith(("batch", field)):
        text = f"{short_field(field)}: {text}"
    notable = [FLAG_WORDS.get(flag, flag) for flag in view.flags if flag != "batch"]
    if view.kind == "event" and notable:
        text += "  [" + ", ".join(notable) + "]"
    if view.origin != "meta":
        text = f"({view.origin}) {text}"
    return text + forward_note(view.forward_status, view.forward_error, view.forward_pending)


NARROW_WIDTH = 110


def columns(with_accounts: bool, narrow: bool = False) -> tuple[str, ...]:
    """The list's columns: Account only with several accounts; a narrow terminal keeps the essentials."""
    dropped = set() if with_accounts else {"Account"}
    if narrow:
        dropped |= {"Kind", "Field", "ms"}
    return tuple(c for c in COLUMNS if c not in dropped)


def row_cells(view: ExchangeView, shown: tuple[str, ...] = COLUMNS) -> tuple[Text, ...]:
    """Cells for the list (Text: a str would be parsed as markup); problems stand out in red."""
    problem = is_problem(view)
    base = "bold red" if view.verify_ok is False else ("red" if problem else "")
    badge, badge_style = SIGNATURE_BADGES.get(view.signature, (view.signature, ""))
    if view.kind != "event":
        badge, badge_style = "", ""
    field = short_field(view.fields[0]) if view.fields else ""
    if len(view.fields) > 1:
        field += f" +{len(view.fields) - 1}"
    status_style = "green" if 200 <= view.status < 300 else "bold red" if view.status >= 400 else ""
    summary = summary_text(view, with_field="Field" not in shown)
    cells = {
        "Time": data(local_clock(view.received_at), style=base or "dim"),
        "Kind": data(view.kind, style=base or ("cyan" if view.kind == "verify" else "")),
        "HTTP": Text(str(view.status), style=base or status_style),
        "Sig": data(badge, style=badge_style),
        "Account": data(view.account or "", style=base),
        "Field": data(field, style=base),
        "ms": Text(f"{view.elapsed_ms:.1f}", style="dim", justify="right"),
        "Summary": data(summary, style=base, limit=SUMMARY_LIMIT),
    }
    return tuple(cells[name] for name in shown)


def fit(text: str, room: int, right: bool = False) -> str:
    """`text` exactly `room` cells wide: cut with … (wide characters counted as two), padded with spaces."""
    length = cell_len(text)
    if length > room:
        text = set_cell_size(text, room - 1) + "…" if room > 1 else set_cell_size(text, room)
        length = room
    padding = " " * (room - length)
    return padding + text if right else text + padding


def line_pieces(cells: Sequence[Text], shown: tuple[str, ...], width: int) -> list[tuple[str, StyleType]]:
    """One line of the list as (text, style) pieces, `width` cells in all: one space in front, each cell cut or
    padded to its column, two spaces between, Summary taking the rest. Cells are one-style Text (as `row_cells`
    makes them), so nothing here measures more than the characters on screen."""
    pieces: list[tuple[str, StyleType]] = [(" ", "")]
    used = 1
    for name, cell in zip(shown, cells, strict=True):
        room = min(COLUMN_WIDTHS.get(name, width), width - used)
        if room <= 0:
            break
        pieces.append((fit(cell.plain, room, cell.justify == "right"), cell.style))
        used += room
        gap = min(COLUMN_GAP, width - used)
        pieces.append((" " * gap, ""))
        used += gap
    if used < width:
        pieces.append((" " * (width - used), ""))
    return pieces


def line_text(cells: Sequence[Text], shown: tuple[str, ...], width: int, style: StyleType = "") -> Text:
    """One line of the list as rich Text (the list draws the same pieces straight into segments)."""
    line = Text(style=style, end="", no_wrap=True)
    for text, piece_style in line_pieces(cells, shown, width):
        line.append(text, piece_style or None)
    return line
