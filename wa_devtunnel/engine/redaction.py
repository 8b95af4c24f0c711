"""One redactor for every message we print: the session's secrets never reach a screen or a log.

Libraries and agents echo secrets in their own ways (ngrok's ERR_NGROK_105 repeats the authtoken,
a URL carries `access_token=` percent-encoded, an error string JSON- or repr-escapes it, a long
line gets cut mid-token), so each secret is masked in all those forms, and any long fragment of it.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterable, Mapping
from dataclasses import replace
from urllib.parse import quote, quote_plus

from wa_devtunnel.engine.events import (
    EngineEvent,
    Notice,
    ReceiverStarted,
    RecordingHealth,
    RegistrationChanged,
    SelfTestFinished,
    TunnelChanged,
    WebhookQuiet,
)
from wa_devtunnel.settings import PRIMARY_ACCOUNT, Settings

# The settings that hold secrets. The verify token is not one: it is shown to the developer by design.
SECRET_SETTINGS = ("NGROK_AUTHTOKEN", "NGROK_API_KEY", "WHATSAPP_APP_SECRET", "WHATSAPP_ACCESS_TOKEN")
MIN_SECRET_LENGTH = 6  # shorter values would mask ordinary words; no real secret is that short
FRAGMENT_LENGTH = 12  # a cut-off piece this long of a random secret is still worth hiding
MIN_FRAGMENTED_LENGTH = 16
# Event fields that carry engine text; URLs and the verify token are shown exactly, by design.
_TEXT_FIELDS: dict[type, tuple[str, ...]] = {
    Notice: ("text",),
    TunnelChanged: ("reason", "advice"),
    ReceiverStarted: ("tunnel_reason", "tunnel_advice"),
    SelfTestFinished: ("detail",),
    RecordingHealth: ("reason",),
    RegistrationChanged: ("detail", "previous"),
    WebhookQuiet: ("hint",),
}


def _forms(secret: str) -> set[str]:
    """The secret as libraries print it: raw, URL-encoded, JSON-, repr- and Go-quoted."""
    forms = {
        secret,
        quote(secret, safe=""),
        quote_plus(secret, safe=""),
        json.dumps(secret)[1:-1],
        repr(secret)[1:-1],
        secret.replace("\\", "\\\\").replace('"', '\\"'),
    }
    forms |= {re.sub(r"%[0-9A-F]{2}", lambda m: m.group(0).lower(), form) for form in list(forms)}
    return {form for form in forms if form}


class Redactor:
    """Knows this session's secrets (label -> value) and masks them in any text."""

    def __init__(self, secrets: Iterable[tuple[str, str | None]] = ()) -> None:
        labels: dict[str, str] = {}
        fragments: dict[str, str] = {}
        for label, secret in secrets:
            if not secret or len(secret) < MIN_SECRET_LENGTH:
                continue
            for form in _forms(secret):
                labels.setdefault(form, label)
            if len(secret) >= MIN_FRAGMENTED_LENGTH:
                for start in range(len(secret) - FRAGMENT_LENGTH + 1):
                    fragments.setdefault(secret[start : start + FRAGMENT_LENGTH], label)
        self._labels = labels
        self._fragments = fragments
        ordered = sorted(labels, key=len, reverse=True)  # the longest form wins where forms overlap
        self._pattern = re.compile("|".join(map(re.escape, ordered))) if ordered else None

    def __bool__(self) -> bool:
        return self._pattern is not None

    @classmethod
    def for_settings(cls, settings: Settings) -> Redactor:
        """Every secret a running session holds: authtoken, App Secrets (all accounts), access token."""
        pairs: list[tuple[str, str | None]] = [
            ("NGROK_AUTHTOKEN", settings.ngrok_authtoken),
            ("WHATSAPP_ACCESS_TOKEN", settings.access_token),
        ]
        pairs += [
            ("WHATSAPP_APP_SECRET" if label == PRIMARY_ACCOUNT else f"app secret of {label}", secret)
            for label, secret in settings.signature_secrets()
        ]
        return cls(pairs)

    @classmethod
    def from_environment(cls, environ: Mapping[str, str]) -> Redactor:
        """For messages printed before settings exist (a configuration error)."""
        return cls((name, environ.get(name)) for name in SECRET_SETTINGS)

    def text(self, text: str) -> str:
        """`text` with every form and long fragment of a secret replaced by `<redacted NAME>`."""
        if self._pattern is None or not text:
            return text
        text = self._pattern.sub(lambda match: f"<redacted {self._labels[match.group(0)]}>", text)
        return self._mask_fragments(text) if self._fragments else text

    def _mask_fragments(self, text: str) -> str:
        size, fragments = FRAGMENT_LENGTH, self._fragments
        pieces: list[str] = []
        kept = start = 0
        while start <= len(text) - size:
            label = fragments.get(text[start : start + size])
            if label is None:
                start += 1
                continue
            end = start + size
            while end < len(text) and text[end - size + 1 : end + 1] in fragments:
                end += 1
            pieces += [text[kept:start], f"<redacted {label}>"]
            kept = start = end
        return "".join(pieces) + text[kept:] if pieces else text

    def event(self, event: EngineEvent) -> EngineEvent:
        """The event with its text fields redacted (the same object when there was nothing to hide)."""
        names = _TEXT_FIELDS.get(type(event))
        if not names or self._pattern is None:
            return event
        changes = {}
        for name in names:
            value = getattr(event, name)
            clean = self.text(value) if isinstance(value, str) else value
            if clean != value:
                changes[name] = clean
        return replace(event, **changes) if changes else event  # type: ignore[type-var]
