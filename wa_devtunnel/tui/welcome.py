"""The start-up panel: what to do next, especially when Meta cannot reach us yet."""

from __future__ import annotations

from rich.text import Text

from wa_devtunnel.engine.events import ReceiverStarted
from wa_devtunnel.tui.header import mask_token
from wa_devtunnel.tui.safe import data_block, shown

AUTHTOKEN_URL = "https://dashboard.ngrok.com/get-started/your-authtoken"
# The failure whose fix is the authtoken steps below (ngrok's own code for "no authtoken").
NO_AUTHTOKEN = "ERR_NGROK_4018"


def welcome_text(started: ReceiverStarted, tunnel: str) -> Text:
    """Local-only: how to get a public URL (or, when the tunnel failed, its reason and its own fix).
    Tunnelled: what to paste into Meta."""
    text = Text()
    if started.public_url:
        text.append("Ready for Meta.\n\n", style="bold green")
        text.append("1. App Dashboard > WhatsApp > Configuration > Edit\n")
        text.append("2. Callback URL: ", style="")
        text.append(f"{shown(started.callback_url)}\n", style="bold")
        text.append("   Verify token: press t to copy it (r shows it)\n")
        text.append("3. Verify and save: the handshake appears here at once, with the reason if it fails.\n")
        text.append("4. Subscribe to the 'messages' field, then message your test number.\n\n")
    else:
        text.append("Local only: Meta cannot reach ", style="bold yellow")
        text.append(f"{shown(started.callback_url)}\n\n", style="bold")
        failed = tunnel != "none" and started.tunnel_state == "failed"
        if failed:
            _tunnel_failure(text, started, tunnel)
        if not failed or NO_AUTHTOKEN in started.tunnel_reason:
            text.append("To get a public HTTPS URL Meta accepts:\n")
            text.append(f"1. Get a free authtoken: {AUTHTOKEN_URL}\n")
            text.append("2. Add it to .env:  NGROK_AUTHTOKEN=<token>\n")
            text.append("3. Restart wa-devtunnel: the URL is your account's dev domain, the same at every start.\n")
        text.append("   (No ngrok? --tunnel cloudflared gives a quick tunnel, a new URL each start.)\n\n")
    _token_source(text, started)
    text.append("Press ", style="")
    text.append("s", style="bold reverse")
    text.append(" to send a signed sample event to this receiver and see the whole flow.\n")
    text.append("Press ", style="")
    text.append("?", style="bold reverse")
    text.append(" for every key; / filters (e.g. kind:event sig:invalid), x shows all again, ctrl+l clears the list.\n")
    if not started.signatures_checked:
        text.append("\nSignatures are not checked: set WHATSAPP_APP_SECRET in .env.\n", style="yellow")
    return text


def _tunnel_failure(text: Text, started: ReceiverStarted, tunnel: str) -> None:
    """The whole reason (the header cuts it at a word) and the fix for this very failure."""
    text.append(f"The {tunnel} tunnel did not start", style="bold red")
    if started.tunnel_reason:
        text.append(": ", style="bold red")
        text.append_text(data_block(started.tunnel_reason))
    text.append("\n")
    if started.tunnel_advice:
        text.append("What to do: ", style="bold")
        text.append_text(data_block(started.tunnel_advice))
        text.append("\n")
    text.append("\n")


def _token_source(text: Text, started: ReceiverStarted) -> None:
    """A temporary token is said plainly: Meta keeps the one pasted, and the next run would have another."""
    if started.verify_token_source == "generated":
        text.append("The verify token is temporary: ", style="bold yellow")
        text.append("this run only, and Meta keeps the one you paste. ")
        text.append("wa-devtunnel token --write-env", style="bold")
        text.append(" keeps one in .env.\n\n")
    if started.accounts:
        names = ", ".join(f"{shown(name)} ({mask_token(token)})" for name, token in started.accounts)
        where = f" from {shown(started.accounts_file)}" if started.accounts_file else ""
        text.append(f"Accounts{where}: {names}. Each answers Meta's handshake with its own verify token.\n\n")
