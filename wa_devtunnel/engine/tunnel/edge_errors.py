"""What a tunnel's edge means by its own error page: ngrok names it in the `ngrok-error-code` header.

An answer that came from ngrok's edge (or Cloudflare's), not from the receiver, says nothing about the
receiver: the self-test names the real cause instead of guessing from the HTML.
"""

from __future__ import annotations

import re

from wa_devtunnel.engine.tunnel.ngrok_errors import (
    FREE_DATA_PER_MONTH,
    FREE_REQUESTS_PER_MINUTE,
    FREE_REQUESTS_PER_MONTH,
)

NGROK_ERROR_HEADER = "ngrok-error-code"
NGROK_CODE = re.compile(r"\bERR_NGROK_(\d{1,6})\b")
BILLING = "https://dashboard.ngrok.com/billing"
QUOTA = "free-plan quota reached: "
ANOTHER_TUNNEL = f"upgrade the plan ({BILLING}) or use --tunnel cloudflared"

# One table: the code, then what it means for Meta's deliveries and what to do.
NGROK_EDGE_ERRORS: dict[str, str] = {
    "ERR_NGROK_3200": (
        "the endpoint is offline: the agent's session with ngrok is down (the agent reconnects by itself: "
        "network, sleep, proxy?) or the agent stopped; Meta's deliveries fail until it is back"
    ),
    "ERR_NGROK_8012": (
        "ngrok reached the agent, but the agent cannot connect to the receiver's port (is the receiver "
        "listening on the address the tunnel forwards to? check --host and --port)"
    ),
    "ERR_NGROK_725": (
        f"{QUOTA}the account's data transfer for the month ({FREE_DATA_PER_MONTH} on the free plan) is used up; "
        "ngrok refuses "
        f"every request until the month resets: {ANOTHER_TUNNEL}"
    ),
    "ERR_NGROK_727": (
        f"{QUOTA}the account's HTTP requests for the month ({FREE_REQUESTS_PER_MONTH} on the free plan) are used "
        "up; ngrok "
        f"refuses every request until the month resets: {ANOTHER_TUNNEL}"
    ),
    "ERR_NGROK_734": (
        f"{QUOTA}too many requests this minute ({FREE_REQUESTS_PER_MINUTE} a minute on the free plan); it resets "
        "within a minute"
    ),
    "ERR_NGROK_6024": (
        "ngrok showed its browser warning page (interstitial) instead of forwarding: Meta would see that "
        "page, not the challenge (ngrok shows it to browser User-Agents only)"
    ),
}
BROWSER_WARNING = "ERR_NGROK_6024"
# What ngrok's browser warning page says; no other error page of ngrok says it.
_BROWSER_WARNING_WORDS = ("you are about to visit", "ngrok-skip-browser-warning")


def ngrok_error_code(header: str | None, body: str = "") -> str:
    """`ERR_NGROK_3200` from the header (the body only when the header is missing), else ""."""
    for text in (header or "", body if not header else ""):
        match = NGROK_CODE.search(text)
        if match:
            return f"ERR_NGROK_{match.group(1)}"
    return ""


def is_browser_warning(body: str) -> bool:
    """ngrok's real browser warning page (the interstitial), not any HTML page that names ngrok."""
    lowered = body.lower()
    return any(words in lowered for words in _BROWSER_WARNING_WORDS)


def edge_error(status: int, code: str, body: str) -> str:
    """Why the tunnel's edge answered instead of the receiver, or "" when the answer came from the receiver."""
    if code:
        meaning = NGROK_EDGE_ERRORS.get(code)
        if meaning is None:
            number = code.removeprefix("ERR_NGROK_")
            meaning = f"see https://ngrok.com/docs/errors/err_ngrok_{number}"
        return f"HTTP {status} {code} from ngrok, not from the receiver: {meaning}"
    if is_browser_warning(body):
        return f"HTTP {status} {BROWSER_WARNING} from ngrok: {NGROK_EDGE_ERRORS[BROWSER_WARNING]}"
    if status == 530 and "1033" in body:
        return (
            "HTTP 530 from Cloudflare (error 1033): the tunnel's connector is offline, cloudflared is not "
            "connected; Meta's deliveries fail until it is back"
        )
    return ""
