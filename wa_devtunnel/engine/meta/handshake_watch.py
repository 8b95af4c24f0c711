"""Did Meta's handshake reach this receiver? Said when it does, and after a registration, when it does not.

Meta's dashboard only says "The callback URL or verify token couldn't be validated"; our self-test cannot see
a refusal on Meta's side (ngrok's guide says Meta may refuse free ngrok domains). What reached the receiver
is the one fact we have: a verify request from Meta after "Verify and save" or a registration, or none.
"""

from __future__ import annotations

import asyncio
import contextlib

from wa_devtunnel.engine.events import EngineEvent, EventBus, ExchangeRecorded, Notice, WebhookQuiet
from wa_devtunnel.engine.origin import META

# How long after a registration a missing handshake is worth a warning (tests pass a shorter one).
HANDSHAKE_WAIT_S = 60.0
TOPIC = "handshake"
QUIET_CHECKS = (
    "is the field `messages` subscribed (`wa-devtunnel meta status`)? Is the app subscribed to the WABA "
    "(`wa-devtunnel doctor`)? With a test number, did you message it from a number on its recipient list?"
)
NGROK_FREE_DOMAIN_CAVEAT = (
    "With ngrok, Meta may refuse free ngrok domains: ngrok's WhatsApp guide says a paid plan is needed "
    '"because Meta validates your ngrok domain and certificate" (community reports are mixed). '
    "Try `--tunnel cloudflared`, or a paid ngrok plan with a domain of your own (NGROK_DOMAIN)."
)
OTHER_TUNNEL_ADVICE = (
    "Check that the URL answers from another network (`wa-devtunnel doctor --url <it>`), or try another "
    "tunnel (`--tunnel ngrok` or `--tunnel cloudflared`)."
)


def handshake_missing_text(provider: str, callback_url: str, seconds: float, *, accepted: bool) -> str:
    """What no handshake after a registration means, and what to try."""
    if accepted:
        what = (
            f"No handshake from Meta reached this receiver within {seconds:g} s of registering {callback_url}, "
            "although Meta accepted it: something else answers at this URL (another agent serving the same "
            "domain?), so Meta's deliveries may not arrive here either."
        )
    else:
        what = (
            f"Meta refused {callback_url} and its handshake never reached this receiver: Meta did not reach "
            "this URL (the verify request never came through the tunnel)."
        )
    # The paid-plan caveat is about Meta refusing a free ngrok domain: not what happened when Meta accepted it.
    advice = NGROK_FREE_DOMAIN_CAVEAT if provider == "ngrok" and not accepted else OTHER_TUNNEL_ADVICE
    return f"{what} {advice}"


def quiet_after_handshake_text(seconds: float, callback_url: str) -> str:
    """What to check when Meta verified the URL but no webhook followed."""
    return f"No webhook from Meta in {seconds:g} s since its handshake on {callback_url}. Check: {QUIET_CHECKS}"


class HandshakeWatch:
    """A bus listener: counts Meta's verify requests and says what a new outcome means, once per URL and outcome."""

    def __init__(self, bus: EventBus, provider: str, quiet_after_s: float = 0.0) -> None:
        self.bus = bus
        self.provider = provider
        self.callback_url = ""
        self.arrived = 0
        self._said: bool | None = None  # the outcome last announced for this URL
        self._arrival = asyncio.Event()
        # After Meta's handshake, no webhook from Meta within this long is a lasting state (0: never said).
        self.quiet_after_s = quiet_after_s
        self.quiet: WebhookQuiet | None = None  # the state said, until Meta's next event clears it
        self._quiet_timer: asyncio.TimerHandle | None = None

    def expect(self, callback_url: str) -> None:
        """A (new) public URL was announced: the next handshake from Meta is news again."""
        if callback_url != self.callback_url:
            self.callback_url, self._said = callback_url, None

    def observe(self, event: EngineEvent) -> None:
        """Inline on every event: only Meta's verify requests count (ours carry the session's origin key)."""
        if event.__class__ is not ExchangeRecorded:
            return
        if event.origin not in (META, ""):  # type: ignore[union-attr]  # the event's fields: no line, no decoding
            return
        kind = event.kind  # type: ignore[union-attr]
        if kind == "event":
            if self._quiet_timer is not None or self.quiet is not None:  # the hot path: two tests, no call
                self._webhook_arrived()
            return
        if kind != "verify" or not self.callback_url:
            return
        self.arrived += 1
        self._arrival.set()
        verify = event.line.get("verify") or {}  # type: ignore[union-attr]  # a handshake: rare, decoded
        ok = bool(verify.get("ok"))
        if ok:
            self._expect_webhook()
        if ok == self._said:
            return
        self._said = ok
        self.bus.publish(self._arrived_notice(ok, str(verify.get("reason") or "")))

    def _expect_webhook(self) -> None:
        """Meta verified the URL: a webhook should follow; say so if none has within `quiet_after_s`."""
        if self.quiet_after_s <= 0:
            return
        try:
            loop = asyncio.get_running_loop()
        except RuntimeError:  # published outside the engine's loop (a test): nothing to time
            return
        if self._quiet_timer is not None:
            self._quiet_timer.cancel()
        url, seconds = self.callback_url, self.quiet_after_s
        self._quiet_timer = loop.call_later(
            seconds, lambda: self.went_quiet(seconds, url, "handshake", quiet_after_handshake_text(seconds, url))
        )

    def went_quiet(self, seconds: float, callback_url: str, since: str, hint: str) -> None:
        """No webhook from Meta for `seconds`: a lasting state, said once until Meta's next event clears it."""
        self._quiet_timer = None
        if self.quiet is not None:
            return
        self.quiet = WebhookQuiet(True, seconds, callback_url, since, hint)
        self.bus.publish(self.quiet)

    def _webhook_arrived(self) -> None:
        """An event from Meta: no more waiting, and a quiet state said earlier is over."""
        if self._quiet_timer is not None:
            self._quiet_timer.cancel()
            self._quiet_timer = None
        quiet, self.quiet = self.quiet, None
        if quiet is not None:
            self.bus.publish(WebhookQuiet(False, quiet.seconds, quiet.callback_url, quiet.since))

    def close(self) -> None:
        """The engine stops: no timer outlives it."""
        if self._quiet_timer is not None:
            self._quiet_timer.cancel()
            self._quiet_timer = None

    def _arrived_notice(self, ok: bool, reason: str) -> Notice:
        if ok:
            text = (
                f"Meta's handshake arrived and was answered with the challenge: Meta accepts {self.callback_url} "
                "and your verify token."
            )
            return Notice("info", text, topic=TOPIC)
        text = (
            f"Meta's handshake arrived but failed: {reason or 'refused'}. Meta only says \"The callback URL or "
            'verify token couldn\'t be validated"; fix this and click "Verify and save" again.'
        )
        return Notice("warning", text, topic=TOPIC)

    async def arrived_since(self, mark: int, timeout_s: float) -> bool:
        """True as soon as a handshake from Meta came after `mark` (a value of `arrived`), False after `timeout_s`."""
        loop = asyncio.get_running_loop()
        deadline = loop.time() + timeout_s
        while self.arrived == mark:
            remaining = deadline - loop.time()
            if remaining <= 0:
                return False
            self._arrival.clear()
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._arrival.wait(), remaining)
        return True

    def missing(self, callback_url: str, seconds: float, *, accepted: bool) -> Notice:
        """The warning for a registration no handshake followed."""
        text = handshake_missing_text(self.provider, callback_url, seconds, accepted=accepted)
        return Notice("warning", text, topic=TOPIC)
