"""The start-up panel: what to do next, especially when Meta cannot reach us yet."""

from __future__ import annotations

from rich.text import Text

from wa_devtunnel.engine.events import ReceiverStarted
from wa_devtunnel.tui.safe import shown


def welcome_text(started: ReceiverStarted, tunnel: str) -> Text:
    """Local-only: how to get a public URL. Tunnelled: what to paste into Meta."""
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
        if tunnel != "none":
            text.append("The tunnel did not start (see the notification). ", style="bold red")
        text.append("To get a public HTTPS URL Meta accepts:\n")
        text.append("1. Get a free authtoken: https://dashboard.ngrok.com/get-started/your-authtoken\n")
        text.append("2. Add it to .env:  NGROK_AUTHTOKEN=<token>\n")
        text.append("3. Restart wa-devtunnel: the URL is your account's dev domain, the same at every start.\n")
        text.append("   (No ngrok? --tunnel cloudflared gives a quick tunnel, a new URL each start.)\n\n")
    text.append("Press ", style="")
    text.append("s", style="bold reverse")
    text.append(" to send a signed sample event to this receiver and see the whole flow.\n")
    text.append("Press ", style="")
    text.append("?", style="bold reverse")
    text.append(" for every key; / filters (e.g. kind:event sig:invalid), x clears.\n")
    if not started.signatures_checked:
        text.append("\nSignatures are not checked: set WHATSAPP_APP_SECRET in .env.\n", style="yellow")
    return text
