"""`doctor`: every check, in the order a developer would fix them."""

from __future__ import annotations

from wa_devtunnel.engine.doctor.checks import (
    check_app_secret,
    check_ngrok_authtoken,
    check_ngrok_binary,
    check_settings_file,
    check_verify_token,
)
from wa_devtunnel.engine.doctor.cloudflared import check_cloudflared
from wa_devtunnel.engine.doctor.meta import graph_checks
from wa_devtunnel.engine.doctor.reach import check_port, check_public_url
from wa_devtunnel.engine.doctor.report import CheckResult, DoctorInput


async def run_doctor(inp: DoctorInput, *, graph: bool = True) -> list[CheckResult]:
    """Every check, in the order a developer would fix them."""
    results = [
        check_settings_file(inp),
        check_verify_token(inp),
        check_app_secret(inp),
        # The agent of the tunnel in use: cloudflared needs no ngrok account or binary.
        *(
            [await check_cloudflared(inp)]
            if inp.settings.tunnel == "cloudflared"
            else [check_ngrok_authtoken(inp), await check_ngrok_binary(inp)]
        ),
        check_port(inp),
        await check_public_url(inp),
    ]
    if graph:
        our_url = inp.url or (inp.instance.callback_url if inp.instance else None)
        results += await graph_checks(inp.settings, our_url)
    return results
