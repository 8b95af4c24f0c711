"""What ngrok's own error words mean for a WhatsApp developer: one table of advice, and the agent's words kept.

Every failure of the ngrok provider quotes what the agent said (its startup error, its last log lines,
the tail of its stderr) and adds one line of advice found here, by ERR_NGROK code or by the words of
a network failure. The text is the agent's: callers redact secrets, and it is shown with every
control character escaped.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Sequence
from typing import Protocol

from wa_devtunnel.engine.tunnel.provider import TunnelError
from wa_devtunnel.rules.untrusted import visible

AUTHTOKEN_URL = "https://dashboard.ngrok.com/get-started/your-authtoken"
DOMAINS_URL = "https://dashboard.ngrok.com/domains"
AGENTS_URL = "https://dashboard.ngrok.com/agents"
USAGE_URL = "https://dashboard.ngrok.com/usage"
DOWNLOAD_URL = "https://ngrok.com/download"
# ngrok's free-plan quotas (ERR_NGROK_725 / 727 / 734), for the agent's errors and the edge's error pages.
FREE_DATA_PER_MONTH = "1 GB"
FREE_REQUESTS_PER_MONTH = "20,000"
FREE_REQUESTS_PER_MINUTE = "4,000"
WORDS_LIMIT = 600  # characters of the agent's own words quoted in one message
_CODE = re.compile(r"ERR_NGROK_\d+")
_STAMP = re.compile(r"^t=\S+\s+")


def update_advice(binary: str) -> str:
    """How to get a current agent, naming the exact binary we run."""
    return (
        f"Update it: run `{binary} update`, or download a current ngrok from {DOWNLOAD_URL} and set "
        "PYNGROK_NGROK_PATH=/path/to/ngrok in .env (or delete it so pyngrok downloads a current one)."
    )


_PAID_DOMAINS = (
    "Custom and random domains are paid ngrok features; the free plan serves your account's dev domain. "
    "Leave NGROK_DOMAIN empty to use it (it stays the same across restarts), or set NGROK_DOMAIN to a domain "
    f"listed at {DOMAINS_URL}."
)
_QUOTA = "see {usage}; it resets {when}, or upgrade your ngrok plan (Meta retries a failed delivery for up to 7 days)."
ADVICE: dict[str, str] = {
    "ERR_NGROK_4018": f"ngrok needs an authtoken: get one at {AUTHTOKEN_URL} and add "
    "NGROK_AUTHTOKEN=<token> to .env (or run with --tunnel none).",
    "ERR_NGROK_105": f"The authtoken is not valid: copy it again from {AUTHTOKEN_URL} into NGROK_AUTHTOKEN.",
    "ERR_NGROK_107": f"The authtoken was revoked or is wrong: copy a current one from {AUTHTOKEN_URL}.",
    "ERR_NGROK_108": "Your ngrok account already runs as many agents as its plan allows (the free plan allows 3): "
    f"stop one (`ngrok` in another terminal? another wa-devtunnel?), or end it at {AGENTS_URL}.",
    "ERR_NGROK_313": _PAID_DOMAINS,
    "ERR_NGROK_314": _PAID_DOMAINS,
    "ERR_NGROK_319": _PAID_DOMAINS,
    "ERR_NGROK_354": _PAID_DOMAINS,
    "ERR_NGROK_320": f"NGROK_DOMAIN belongs to another ngrok account: use a domain listed at {DOMAINS_URL}, "
    "or leave NGROK_DOMAIN empty for your account's dev domain.",
    "ERR_NGROK_334": "Your dev domain is already online in another ngrok: stop it (`ngrok http` in another "
    f"terminal? another wa-devtunnel?), or end it at {AGENTS_URL}.",
    "ERR_NGROK_725": f"Your ngrok account used up its data transfer for the month (free plan: {FREE_DATA_PER_MONTH}): "
    + _QUOTA.format(usage=USAGE_URL, when="on the 1st of the month"),
    "ERR_NGROK_727": "Your ngrok account used up its HTTP requests for the month "
    f"(free plan: {FREE_REQUESTS_PER_MONTH}): "
    + _QUOTA.format(usage=USAGE_URL, when="on the 1st of the month"),
    "ERR_NGROK_734": "Your ngrok account sent more requests than its plan allows per minute "
    f"(free plan: {FREE_REQUESTS_PER_MINUTE}): "
    + _QUOTA.format(usage=USAGE_URL, when="within a minute"),
}
_VERSION_CODES = ("ERR_NGROK_120", "ERR_NGROK_121")
_DOMAIN_ADVICE = (
    f"NGROK_DOMAIN must be a domain of your ngrok account ({DOMAINS_URL}); leave it empty for your dev domain."
)
_PROXY_WORDS = ("proxy", "x509", "certificate signed by unknown authority", "tls: ")
_PROXY_ADVICE = (
    "A proxy or a TLS-inspecting firewall stands between this machine and ngrok: set HTTPS_PROXY "
    "(wa-devtunnel passes it on to the agent), or have connect.ngrok-agent.com:443 allowed directly."
)
_NETWORK_WORDS = (
    "dial tcp",
    "lookup ",
    "no such host",
    "network is unreachable",
    "i/o timeout",
    "connection refused",
    "connection reset",
    "failed to dial ngrok server",
)
_NETWORK_ADVICE = (
    "This machine cannot reach ngrok's servers: check the network (offline? DNS? VPN? a firewall blocking "
    "connect.ngrok-agent.com:443?), then start wa-devtunnel again."
)


class AgentLog(Protocol):
    """What pyngrok's NgrokLog gives us for one agent log line."""

    line: str
    lvl: str
    msg: str | None
    err: str | None


def advice_for(text: str, binary: str = "ngrok") -> tuple[str, str]:
    """The ERR_NGROK code in the agent's words (or "") and what to do about it (or "")."""
    match = _CODE.search(text)
    code = match.group(0) if match else ""
    if code in _VERSION_CODES:
        return code, f"The ngrok agent at {binary} is too old for ngrok's service. {update_advice(binary)}"
    if code in ADVICE:
        return code, ADVICE[code]
    lowered = text.lower()
    if any(word in lowered for word in _PROXY_WORDS):
        return code, _PROXY_ADVICE
    if any(word in lowered for word in _NETWORK_WORDS):
        return code, _NETWORK_ADVICE
    if code and "domain" in lowered:
        return code, _DOMAIN_ADVICE
    return code, ""


def explain(words: str, binary: str = "ngrok", summary: str = "ngrok refused to start") -> TunnelError:
    """A TunnelError quoting the agent's words, with its code and what to do."""
    text = one_line(words)
    code, advice = advice_for(text, binary)
    return TunnelError(f"{summary}: {text}" if text else summary, advice, code)


def one_line(text: str, limit: int = WORDS_LIMIT) -> str:
    """Agent text on one line: escaped newlines and runs of space folded, controls made visible, cut after
    a whole word (never half of one, unless a single word is longer than the limit)."""
    folded = " ".join(text.replace("\\r", " ").replace("\\n", " ").split())
    shown = visible(folded)
    if len(shown) <= limit:
        return shown
    cut = shown[: limit - 1]
    space = cut.rfind(" ")
    if space > limit // 2:  # a word boundary that keeps most of the words
        cut = cut[:space]
    return cut.rstrip(" ,;:.") + "…"


def describe(log: AgentLog) -> str:
    """One agent log line as words: `msg: err`, else the line without its timestamp."""
    if log.msg:
        err = (log.err or "").strip()
        return f"{log.msg}: {err}" if err and err != "nil" else log.msg
    return _STAMP.sub("", log.line)


def agent_words(startup_error: str | None, logs: Sequence[AgentLog], stderr_tail: Iterable[str]) -> str:
    """What the agent said, most telling first: its startup error, its last warnings/errors, its stderr."""
    said: list[str] = []
    if startup_error:
        said.append(startup_error)
    complaints = [log for log in logs if log.lvl in ("WARNING", "ERROR", "CRITICAL")]
    said += [describe(log) for log in (complaints or list(logs))[-3:]]
    said += [line for line in stderr_tail if line.strip()]
    kept: list[str] = []
    for piece in (" ".join(text.split()) for text in said if text.strip()):
        if not any(piece in other for other in kept):  # the same words quoted twice (error, then log)
            kept = [other for other in kept if other not in piece] + [piece]
    return " | ".join(kept)


def tail_lines(text: str, lines: int = 5, max_chars: int = 4096) -> list[str]:
    """The last non-empty lines of a text (an agent's stderr log), oldest first."""
    kept = [line.strip() for line in text[-max_chars:].splitlines() if line.strip()]
    return kept[-lines:]
