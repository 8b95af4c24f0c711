"""What cloudflared's own log says: the quick tunnel's URL, its metrics address, and whether its edge connection is up.

cloudflared writes zerolog's console format to stderr, `2025-01-01T00:00:00Z INF <message> key=value ...`;
a fatal error ends the run with one plain line (urfave/cli's, e.g. `failed to unmarshal quick Tunnel: ...`).
Every line is untrusted text: it is parsed here and only ever shown through `one_line`.
"""

from __future__ import annotations

import re
from collections import deque
from dataclasses import dataclass, field

from wa_devtunnel.rules.untrusted import one_line

INSTALL_URL = "https://developers.cloudflare.com/cloudflare-one/connections/connect-networks/downloads/"
FIREWALL_URL = "https://developers.cloudflare.com/cloudflare-one/connections/connect-networks/configure-tunnels/tunnel-with-firewall/"
SHOWN_LINE = 300  # characters of one cloudflared line we ever keep or show
SHOWN_REASON = 240

_ANSI = re.compile(r"\x1b\[[0-9;?]*[A-Za-z]")
_LINE = re.compile(
    r"^(?P<time>\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(?:\.\d+)?Z) (?P<level>DBG|INF|WRN|ERR|FTL) ?(?P<text>.*)$"
)
# The URL inside the box "|  https://<words>.trycloudflare.com  |" (a port only ever appears in tests).
_URL = re.compile(r"^\|\s+(https://[a-z0-9-]+(?:\.[a-z0-9-]+)*\.trycloudflare\.com(?::\d{1,5})?)\s+\|$")
_METRICS = re.compile(r"^Starting metrics server on ((?:127\.0\.0\.1|\[::1\]|localhost):\d{1,5})/metrics$")
_FIELD_START = re.compile(r" (?=[A-Za-z_][\w.-]*=)")
_CONN_INDEX = re.compile(r"\bconnIndex=(\d{1,3})\b")
_ERROR_FIELD = re.compile(r'\berror="((?:[^"\\]|\\.)*)"|\berror=(\S+)')
# Messages that mean an edge connection is gone (cloudflared then retries by itself, with backoff).
_LOST = (
    "Connection terminated",
    "Serve tunnel error",
    "failed to serve tunnel connection",
    "Retrying connection in up to",
    "Failed to dial a quic connection",
    "Failed to dial a http2 connection",
    "Unable to establish connection",
    "Register tunnel error from server side",
    "Unregistered tunnel connection",
    "Lost connection with the edge",
)
_EDGE_TROUBLE = re.compile(r"\b(?:dial|edge|quic|http2)\b|7844|no recent network activity")
# After a long sleep Cloudflare forgets a quick tunnel; cloudflared then retries forever in vain.
_GONE = "Tunnel not found"


def _message_and_fields(text: str) -> tuple[str, str]:
    """zerolog puts the message first, then ` key=value` fields."""
    parts = _FIELD_START.split(text, maxsplit=1)
    return parts[0].strip(), parts[1] if len(parts) > 1 else ""


def _error_field(fields: str) -> str:
    match = _ERROR_FIELD.search(fields)
    if match is None:
        return ""
    quoted, bare = match.groups()
    if quoted is None:
        return bare
    return quoted.replace('\\"', '"').replace("\\\\", "\\")


@dataclass
class CloudflaredLog:
    """The state one cloudflared run has told us about, line by line (`feed`)."""

    url: str | None = None
    metrics: str | None = None
    connections: set[int] = field(default_factory=set)
    ever_connected: bool = False
    down_reason: str = ""
    gone_reason: str = ""
    last_plain: str = ""
    tail: deque[str] = field(default_factory=lambda: deque(maxlen=40))
    problems: deque[str] = field(default_factory=lambda: deque(maxlen=8))

    @property
    def session_up(self) -> bool:
        """At least one registered connection to Cloudflare's edge."""
        return bool(self.connections)

    def feed(self, raw: str) -> None:
        """Take one line of cloudflared's output."""
        line = _ANSI.sub("", raw).rstrip("\r\n").strip()
        if not line:
            return
        shown = one_line(line, SHOWN_LINE)
        self.tail.append(shown)
        match = _LINE.match(line)
        if match is None:  # urfave/cli's final error, "Incorrect Usage: ...", a Go panic
            self.last_plain = shown
            self.problems.append(shown)
            return
        level, (message, fields) = match["level"], _message_and_fields(match["text"])
        if level in ("WRN", "ERR", "FTL") and message:
            error = _error_field(fields)
            self.problems.append(one_line(f"{message}: {error}" if error else message, SHOWN_REASON))
        self._follow(message, fields)

    def _follow(self, message: str, fields: str) -> None:
        if self.url is None and (url := _URL.match(message)):
            self.url = url.group(1)
        elif self.metrics is None and (metrics := _METRICS.match(message)):
            self.metrics = metrics.group(1)
        elif message.startswith("Registered tunnel connection"):
            self.connections.add(self._conn_index(fields))
            self.ever_connected = True
            self.down_reason = ""
        elif message.startswith(_LOST):
            index = _CONN_INDEX.search(fields)
            if index is None:
                self.connections.clear()
            else:
                self.connections.discard(int(index.group(1)))
            error = _error_field(fields)
            if error or not self.down_reason:
                self.down_reason = one_line(error or message, SHOWN_REASON)
            if _GONE in error and self.ever_connected:
                self.gone_reason = one_line(error, SHOWN_REASON)

    @staticmethod
    def _conn_index(fields: str) -> int:
        index = _CONN_INDEX.search(fields)
        return int(index.group(1)) if index else 0

    def words(self) -> str:
        """Everything cloudflared complained about, for choosing advice."""
        return " ".join((*self.problems, self.last_plain))

    def reason(self) -> str:
        """cloudflared's own last words on what went wrong ("" if it said nothing useful)."""
        if self.last_plain:
            return self.last_plain
        if self.problems:
            return self.problems[-1]
        return self.tail[-1] if self.tail else ""


def advice_for(text: str) -> str:
    """What to do about cloudflared's own error text ("" when we know nothing better than its words)."""
    lowered = text.lower()
    if "429" in text or "1015" in text or "too many requests" in lowered:
        return (
            "Cloudflare limits how often one address may create quick tunnels (HTTP 429, error 1015): wait a "
            "few minutes before starting again, or use ngrok (--tunnel ngrok with NGROK_AUTHTOKEN)."
        )
    if "incorrect usage" in lowered or "flag provided but not defined" in lowered:
        return f"This cloudflared is too old for the options wa-devtunnel passes: update it ({INSTALL_URL})."
    if "failed to request quick tunnel" in lowered or "api.trycloudflare.com" in lowered:
        return (
            "cloudflared could not reach Cloudflare's quick tunnel service (api.trycloudflare.com): offline, "
            "DNS, a firewall or a proxy (it honours HTTPS_PROXY)? Or use --tunnel ngrok."
        )
    if _GONE.lower() in lowered:
        return "Cloudflare dropped this quick tunnel (it does after a long disconnection): a new one gets a new URL."
    if _EDGE_TROUBLE.search(lowered):
        return (
            "cloudflared reached Cloudflare's API but not its edge: outbound port 7844 (UDP for QUIC, TCP for "
            f"HTTP/2) seems blocked by a firewall or VPN; see {FIREWALL_URL}"
        )
    return ""
