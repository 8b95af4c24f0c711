"""ngrok's own words for the failures the fake agent simulates (error codes and texts as the real agent prints them)."""

from __future__ import annotations

import hashlib
import html

AGENT_VERSION = "3.30.0"
# Speaks config v3 (>= 3.16) but is below the account minimum of ERR_NGROK_121 and has no /api/endpoints (< 3.30).
TOO_OLD_VERSION = "3.19.1"
FIRST_V3_CONFIG = (3, 16, 0)
FIRST_ENDPOINTS_API = (3, 30, 0)
CONNECT_ADDR = "connect.ngrok-agent.com:443"
# What a machine without DNS or network sees, every time the agent redials.
OFFLINE_ERR = (
    f'failed to dial ngrok server with address "{CONNECT_ADDR}": dial tcp: lookup connect.ngrok-agent.com: no such host'
)
# A Wi-Fi change or sleep: the session's TCP connection is reset.
DROP_ERR = "read tcp 192.168.1.23:52144->3.125.223.134:443: read: connection reset by peer"
# ngrok-go's ErrSessionNotReady: an endpoint asked for while the session is not up.
SESSION_NOT_READY = "an ngrok tunnel session has not yet been established"

AUTH_ERRORS = {
    "no-authtoken": (
        "ERR_NGROK_4018",
        "Usage of ngrok requires a verified account and authtoken.\n\n"
        "Sign up for an account: https://dashboard.ngrok.com/signup\n"
        "Install your authtoken: https://dashboard.ngrok.com/get-started/your-authtoken",
    ),
    "bad-authtoken": (
        "ERR_NGROK_105",
        "The authtoken you specified does not look like a proper ngrok tunnel authtoken.\n"
        "Your authtoken: {token}\n"
        "Instructions to install your authtoken are on your ngrok dashboard:\n"
        "https://dashboard.ngrok.com/get-started/your-authtoken",
    ),
    "session-limit": (
        "ERR_NGROK_108",
        "Your account is limited to 1 simultaneous ngrok agent sessions.\n"
        "You can run multiple simultaneous tunnels from a single agent session by defining the "
        "tunnels in your agent configuration file and starting them with the command "
        "`ngrok start --all`.\n"
        "Read more about the agent configuration file: "
        "https://ngrok.com/docs/secure-tunnels/ngrok-agent/reference/config\n"
        "You can view your current agent sessions in the dashboard:\n"
        "https://dashboard.ngrok.com/agents",
    ),
    "too-old": (
        "ERR_NGROK_121",
        'Your ngrok-agent version "{version}" is too old. The minimum supported agent '
        'version for your account is "3.20.0". Please update to a newer version with '
        "`ngrok update`, by downloading from https://ngrok.com/download, or by updating your SDK "
        "version. Paid accounts are currently excluded from minimum agent version requirements. "
        "To begin handling traffic immediately without updating your agent, upgrade to a paid "
        "plan: https://dashboard.ngrok.com/billing/subscription.",
    ),
}

ACCOUNT = "Fake Developer"
DOMAIN_ERRORS = {
    "domain-not-yours": (
        "ERR_NGROK_320",
        "This domain is reserved for another account.\n"
        "Failed to create an endpoint with the domain '{domain}' for the account '{account}'.\n"
        "\n"
        "If you have reserved this name, make sure that you are using an\n"
        "authtoken credential for the appropriate account.\n"
        "\n"
        "Reserve a name on your dashboard: https://dashboard.ngrok.com/domains/new",
    ),
    "domain-not-reserved": (
        "ERR_NGROK_319",
        "You must reserve a custom hostname for your account before it can be used to create "
        "endpoints.\n"
        "Failed to create an endpoint with the domain '{domain}' for the account '{account}'.\n"
        "\n"
        "Reserve this name on your dashboard: https://dashboard.ngrok.com/domains/new",
    ),
}


def already_online(url: str) -> str:
    """ERR_NGROK_334 as the agent reports it (agent API ``details.err`` and its log)."""
    return (
        f"failed to start tunnel: The endpoint '{url}' is already online. Either\n"
        "1. stop your existing endpoint first, or\n"
        "2. start both endpoints with `--pooling-enabled` to load balance between them.\r\n\r\nERR_NGROK_334\r\n"
    )


def unknown_fields(fields: list[tuple[str, str]]) -> str:
    """A strict YAML decode of a JSON body (one line) naming every (field, Go type) the agent does not know."""
    lines = (f"  line 1: field {name} not found in type {go_type}" for name, go_type in fields)
    return "yaml: unmarshal errors:\n" + "\n".join(lines)


def dev_domain_for(authtoken: str | None) -> str:
    """The free plan's one dev domain: fixed per account (here: per authtoken), the same across restarts."""
    digest = hashlib.sha256((authtoken or "").encode()).hexdigest()[:10]
    return f"fake-dev-{digest}.ngrok-free.dev"


def offline_page(host: str) -> str:
    """ERR_NGROK_3200, served by ngrok's edge with HTTP 404 when no agent session holds the endpoint."""
    host = html.escape(host)
    return (
        "<!DOCTYPE html><html><head><title>ngrok - ERR_NGROK_3200</title></head><body>"
        f"<h1>The endpoint {host} is offline.</h1>"
        "<p>This means your ngrok agent is not online or could not be reached.</p>"
        f"<p>ERR_NGROK_3200</p><p>https://ngrok.com/docs/errors/err_ngrok_3200</p></body></html>"
    )


def upstream_failed_page(upstream_url: str, err: str) -> str:
    """ERR_NGROK_8012 (HTTP 502): the tunnel works but nothing answers on the upstream address."""
    return (
        "<!DOCTYPE html><html><head><title>ngrok - ERR_NGROK_8012</title></head><body>"
        "<p>Traffic was successfully tunneled to the ngrok agent, but the agent failed to "
        f"establish a connection to the upstream web service at {html.escape(upstream_url)}.</p>"
        f"<p>The error encountered was: {html.escape(err)}</p>"
        "<p>ERR_NGROK_8012</p></body></html>"
    )


def browser_warning_page(host: str) -> str:
    """ERR_NGROK_6024 (HTTP 200, text/html): the free plan's warning in front of a browser's request."""
    host = html.escape(host)
    return (
        "<!DOCTYPE html><html><head><title>ngrok - Visit Site</title></head><body>"
        f"<h1>You are about to visit:</h1><p>{host}</p>"
        "<p>This website is served for free through ngrok.com. You should only visit this website "
        "if you trust whoever sent the link to you.</p>"
        "<p>To remove this page, set and send an <code>ngrok-skip-browser-warning</code> "
        "request header with any value, or use a non-browser User-Agent.</p>"
        '<form method="GET"><button type="submit">Visit Site</button></form>'
        "<p>ERR_NGROK_6024</p></body></html>"
    )
