"""Typed Graph API answers about webhook routing: token, app subscription, WABA and phone number levels."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime


@dataclass(frozen=True, slots=True)
class TokenInfo:
    """What /debug_token says about the access token (expires_at None: it never expires)."""

    valid: bool
    app_id: str
    application: str
    type: str
    expires_at: datetime | None
    scopes: tuple[str, ...]
    error: str = ""
    expiry_known: bool = True

    def expiry_text(self, now: datetime | None = None) -> str:
        """`never expires` / `expires 2026-12-01 10:00 UTC (in 3 days)` / `expired ...`."""
        if not self.expiry_known:
            return "expiry unknown (/debug_token refused, /me answered)"
        if self.expires_at is None:
            return "never expires"
        now = now or datetime.now(UTC)
        when = self.expires_at.strftime("%Y-%m-%d %H:%M UTC")
        if self.expires_at <= now:
            return f"expired {when}"
        left = self.expires_at - now
        span = f"{left.days} days" if left.days >= 2 else f"{left.total_seconds() / 3600:.0f} hours"
        return f"expires {when} (in {span})"


@dataclass(frozen=True, slots=True)
class SubscribedField:
    """One webhook field of the app subscription and the Graph version its payloads use."""

    name: str
    version: str


@dataclass(frozen=True, slots=True)
class AppSubscription:
    """The app-level webhook: where Meta sends everything without an override."""

    object: str
    callback_url: str
    active: bool
    fields: tuple[SubscribedField, ...]

    @property
    def field_names(self) -> tuple[str, ...]:
        """Just the names, for `messages in ...` checks."""
        return tuple(f.name for f in self.fields)


@dataclass(frozen=True, slots=True)
class WabaApp:
    """An app subscribed to the WABA, with its WABA-level override if any."""

    app_id: str
    name: str
    override_callback_uri: str | None


@dataclass(frozen=True, slots=True)
class PhoneWebhookConfiguration:
    """The three levels Meta resolves for one phone number, most specific first."""

    phone_number_id: str
    phone_number: str | None
    whatsapp_business_account: str | None
    application: str | None

    def effective(self) -> tuple[str | None, str]:
        """Where `messages` for this number go, and which level decided it."""
        if self.phone_number:
            return self.phone_number, "phone number override"
        if self.whatsapp_business_account:
            return self.whatsapp_business_account, "WABA override"
        if self.application:
            return self.application, "app callback"
        return None, "nothing configured"


@dataclass(frozen=True, slots=True)
class PhoneNumber:
    """A business phone number of the WABA."""

    id: str
    display_phone_number: str
    verified_name: str
