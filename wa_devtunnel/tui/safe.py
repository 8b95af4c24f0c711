"""Request text for the inspector's widgets: rich `Text` through `visible`, never markup, actions or links.

Textual parses markup in a str given to Static.update, to a DataTable cell, to notify() and to a rich
Table cell; `[/x]` in a path then crashes the app and `[@click=...]` in a message becomes an action.
Everything here returns Text (or a str for APIs told not to parse markup), with controls escaped.
"""

from __future__ import annotations

from rich.style import StyleType
from rich.text import Text

from wa_devtunnel.rules.untrusted import one_line, visible


def shown(value: object, limit: int = 0) -> str:
    """One line of request data, escapes shown (`\\x1b`), cut to `limit` characters when given."""
    return one_line(str(value), limit)


def data(value: object, style: StyleType = "", limit: int = 0) -> Text:
    """One line of request data as Text: Rich never parses it, so `[/x]` is just five characters."""
    return Text(shown(value, limit), style=style)


def data_block(value: object, style: StyleType = "") -> Text:
    """Several lines of request data (a raw body): line feeds and tabs stay, every other control is escaped."""
    return Text(visible(str(value), keep_newlines=True), style=style)


def toast_message(value: object) -> str:
    """A notification's text: our own line breaks stay, a `\\r` or an escape sequence from a request does not."""
    return visible(str(value), keep_newlines=True)
