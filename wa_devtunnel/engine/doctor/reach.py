"""`doctor`'s reachability checks: the ngrok agent runs, the port is free, the public URL answers like Meta wants."""

from __future__ import annotations

import socket

from yarl import URL

from wa_devtunnel.engine.doctor.report import CheckResult, DoctorInput, Status
from wa_devtunnel.engine.tunnel.selftest import THROUGH_THE_TUNNEL, meta_cannot_reach, run_selftest


def check_port(inp: DoctorInput) -> CheckResult:
    """A busy port makes `wa-devtunnel up` stop at once."""
    host, port = inp.settings.host, inp.settings.port
    if port == 0:
        return CheckResult("receiver port", Status.PASS, "port 0: a free port is picked at start")
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    with socket.socket(family, socket.SOCK_STREAM) as probe:
        probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            probe.bind((host, port))
        except OSError as exc:
            if inp.instance is not None and inp.instance.local_url.startswith(f"http://{host}:{port}/"):
                return CheckResult(
                    "receiver port",
                    Status.PASS,
                    f"{host}:{port} is the running wa-devtunnel's (pid {inp.instance.pid})",
                )
            return CheckResult(
                "receiver port",
                Status.FAIL,
                f"{host}:{port} is not available: {exc.strerror or exc}",
                "stop the program using it, or use --port 0 (any free port) / WA_DEVTUNNEL_PORT",
            )
    return CheckResult("receiver port", Status.PASS, f"{host}:{port} is free")


_SELFTEST_FIXES = (
    ("403", "the URL answers with another verify token: use the same WHATSAPP_VERIFY_TOKEN for both"),
    ("404", "the path does not reach the receiver: check --path and the end of the URL"),
    ("interstitial", "the tunnel shows a warning page: use ngrok through wa-devtunnel (it is skipped there)"),
    ("TLS", "Meta needs a publicly trusted certificate: use the ngrok URL wa-devtunnel prints"),
    ("6 s", "the URL is too slow: Meta gives up after about 6 s"),
    ("unreachable", "nothing answers at that URL: start `wa-devtunnel` and use the Callback URL it prints"),
)
PUBLIC_URL_FIX = (
    "give Meta the public https Callback URL wa-devtunnel prints when it runs with a tunnel "
    "(NGROK_AUTHTOKEN, or --tunnel cloudflared)"
)


def _route(url: str, inp: DoctorInput) -> tuple[str, str]:
    """Where an answer from `url` comes from, in words, and why Meta could not call it ("" when it could)."""
    instance = inp.instance
    if instance is not None and instance.public_url and url == instance.callback_url:
        return THROUGH_THE_TUNNEL, ""
    local = meta_cannot_reach(url)
    if local:
        return f"locally (not through a tunnel: {local})", local
    return "", ""  # a public https URL, maybe not a tunnel at all (the production webhook)


def _origin_key(url: str, inp: DoctorInput) -> str | None:
    """The running instance's key when `url` is that instance: its log then says (selftest), not Meta."""
    instance = inp.instance
    if instance is None or not instance.origin_key:
        return None
    try:
        ours = {URL(known).origin() for known in (instance.local_url, instance.callback_url) if known}
        return instance.origin_key if URL(url).origin() in ours else None
    except ValueError:  # not an absolute URL: the handshake itself says what is wrong with it
        return None


async def check_public_url(inp: DoctorInput) -> CheckResult:
    """Meta's exact handshake against the public URL (--url, else the running instance's)."""
    name = "public URL handshake"
    instance = inp.instance
    url = inp.url or (instance.callback_url if instance and instance.public_url else None)
    if url is None:
        if instance is not None:
            return CheckResult(
                name, Status.SKIP, "the running wa-devtunnel is local-only", "set NGROK_AUTHTOKEN and restart it"
            )
        return CheckResult(
            name, Status.SKIP, "no tunnel running and no --url", "start `wa-devtunnel`, or pass --url https://..."
        )
    if inp.settings.verify_token_source == "generated":  # temporary: the running instance made up its own
        return CheckResult(
            name,
            Status.SKIP,
            "WHATSAPP_VERIFY_TOKEN is not set and none is kept for this folder, so the running instance's token "
            "is unknown",
            "set WHATSAPP_VERIFY_TOKEN in .env (`wa-devtunnel token --write-env`) and restart wa-devtunnel",
        )
    route, local = _route(url, inp)
    result = await run_selftest(
        url, inp.settings.verify_token, ssl_context=inp.ssl_context, origin_key=_origin_key(url, inp), route=route
    )
    if result.ok and local:  # the receiver is right, but Meta can never call this URL
        return CheckResult(name, Status.WARN, f"{url}: {result.detail} ({result.elapsed_ms:.0f} ms)", PUBLIC_URL_FIX)
    if result.ok:
        return CheckResult(name, Status.PASS, f"{url}: {result.detail} ({result.elapsed_ms:.0f} ms)")
    fix = next((f for key, f in _SELFTEST_FIXES if key in result.detail), "see the detail; then rerun doctor")
    return CheckResult(name, Status.FAIL, f"{url}: {result.detail}", fix)
