"""ngrok's own words for the failures the fake agent simulates (error codes and texts as the real agent prints them)."""

from __future__ import annotations

AGENT_VERSION = "3.30.0"
TOO_OLD_VERSION = "3.1.0"
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
        f'Your ngrok-agent version "{TOO_OLD_VERSION}" is too old. The minimum supported agent '
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
