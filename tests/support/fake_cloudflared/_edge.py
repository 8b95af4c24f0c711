"""The fake's two servers: Cloudflare's side of a quick tunnel (HTTPS in, HTTP to --url) and cloudflared's metrics.

The public side answers as Cloudflare does: the origin's answer with `Server: cloudflare` and a `CF-RAY`;
530 with the "Error 1033" page while cloudflared has no edge connection; 502 "Bad gateway" when the
origin refuses; an ingress rule from a config file wins over --url (its `http_status:404` catch-all
answers every request). The metrics server has /ready (200 or 503, JSON without a content type, as Go
writes it), /quicktunnel, /healthcheck and /metrics.
"""

from __future__ import annotations

import fnmatch
import html
import json
import secrets
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import aiohttp
from aiohttp import web
from yarl import URL

Log = Callable[..., None]
MAX_BODY = 100 * 1024 * 1024  # Cloudflare's free plan limit for a request body
HOP_BY_HOP = frozenset(
    {
        "connection",
        "keep-alive",
        "proxy-connection",
        "proxy-authenticate",
        "proxy-authorization",
        "te",
        "trailer",
        "transfer-encoding",
        "upgrade",
    }
)
_NOT_FORWARDED = HOP_BY_HOP | {"content-length", "expect", "x-forwarded-for", "x-forwarded-proto"}
_CLIENT_EXTRAS = ("User-Agent", "Content-Type", "Accept", "Accept-Encoding")
EDGE_IP = "198.41.200.23"
EDGE_LOCATION = "fra08"


@dataclass
class EdgeState:
    """What Cloudflare's edge knows of this cloudflared: its quick hostname and whether a connection is registered."""

    hostname: str
    tunnel_id: str
    connector_id: str
    upstream_url: str
    ingress: list[dict[str, Any]] = field(default_factory=list)
    connected: bool = False
    gone: bool = False
    requests: int = 0


def ray_id() -> str:
    return f"{secrets.token_hex(8)}-FRA"


def public_app(state: EdgeState, log: Log) -> web.Application:
    """Every method and path of the quick hostname, answered as Cloudflare would."""
    upstream = aiohttp.ClientSession(
        timeout=aiohttp.ClientTimeout(total=100),
        auto_decompress=False,
        skip_auto_headers=_CLIENT_EXTRAS,
    )

    async def forward(request: web.Request) -> web.StreamResponse:
        ray = ray_id()
        if not state.connected or state.gone:
            return tunnel_error_page(request.host, ray)
        service = _service_for(state, request.host.split(":")[0])
        if service.startswith("http_status:"):
            return web.Response(status=int(service.split(":", 1)[1]), headers=_cf_headers(ray))
        body = await request.read()
        state.requests += 1
        url = URL(service.rstrip("/") + request.raw_path, encoded=True)
        headers = _origin_headers(request, body, ray)
        try:
            async with upstream.request(
                request.method, url, headers=headers, data=body or None, allow_redirects=False
            ) as answer:
                return await _relay(request, answer, ray)
        except (TimeoutError, aiohttp.ClientError, OSError) as exc:
            return _bad_gateway(request, state, service, exc, ray, log)

    async def close_upstream(app: web.Application) -> None:
        await upstream.close()

    app = web.Application(client_max_size=MAX_BODY)
    app.router.add_route("*", "/{tail:.*}", forward)
    app.on_cleanup.append(close_upstream)
    return app


def _service_for(state: EdgeState, host: str) -> str:
    """The first ingress rule matching the host (a config file's), else --url: cloudflared's order."""
    for rule in state.ingress:
        pattern = str(rule.get("hostname") or "")
        if not pattern or fnmatch.fnmatch(host, pattern):
            return str(rule.get("service") or "http_status:503")
    return state.upstream_url


def _cf_headers(ray: str) -> dict[str, str]:
    return {"Server": "cloudflare", "CF-RAY": ray}


def _origin_headers(request: web.Request, body: bytes, ray: str) -> list[tuple[str, str]]:
    """The visitor's headers in order (Host included), then what Cloudflare adds for the origin."""
    raw = [(name.decode("latin-1"), value.decode("latin-1")) for name, value in request.raw_headers]
    headers = [(name, value) for name, value in raw if name.lower() not in _NOT_FORWARDED]
    client_ip = request.remote or "127.0.0.1"
    headers += [
        ("Cf-Connecting-Ip", client_ip),
        ("Cf-Ipcountry", "XX"),
        ("Cf-Ray", ray),
        ("Cf-Visitor", '{"scheme":"https"}'),
        ("Cdn-Loop", "cloudflare; loops=1"),
        ("X-Forwarded-For", client_ip),
        ("X-Forwarded-Proto", "https"),
    ]
    if body or request.method in ("POST", "PUT", "PATCH"):
        headers.append(("Content-Length", str(len(body))))
    return headers


async def _relay(request: web.Request, answer: aiohttp.ClientResponse, ray: str) -> web.StreamResponse:
    response = web.StreamResponse(status=answer.status, reason=answer.reason)
    for name, value in answer.raw_headers:
        key = name.decode("latin-1")
        if key.lower() not in HOP_BY_HOP | {"server"}:
            response.headers.add(key, value.decode("latin-1"))
    response.headers.update(_cf_headers(ray))
    await response.prepare(request)
    async for chunk in answer.content.iter_any():
        await response.write(chunk)
    await response.write_eof()
    return response


def _bad_gateway(
    request: web.Request, state: EdgeState, service: str, exc: BaseException, ray: str, log: Log
) -> web.Response:
    """cloudflared's two log lines and Cloudflare's 502 page when nothing answers on the origin."""
    target = URL(service)
    refused = isinstance(getattr(exc, "os_error", exc), ConnectionRefusedError)
    reason = "connect: connection refused" if refused else (str(exc) or type(exc).__name__)
    error = (
        "Unable to reach the origin service. The service may be down or it may not be responding to traffic "
        f"from cloudflared: dial tcp {target.host}:{target.port}: {reason}"
    )
    log("ERR", "", error=error, connIndex=0, event=1, ingressRule=0, originService=service)
    dest = f"https://{request.host}{request.raw_path}"
    log("ERR", "Request failed", error=error, connIndex=0, dest=dest, event=0, ip=EDGE_IP, type="http")
    page = _error_page(502, "Bad gateway", request.host, ray, "The web server reported a bad gateway error.")
    return web.Response(status=502, text=page, content_type="text/html", headers=_cf_headers(ray))


def tunnel_error_page(host: str, ray: str) -> web.Response:
    """HTTP 530, error 1033: the hostname is a tunnel, but no cloudflared is connected for it."""
    shown = html.escape(host.split(":")[0])
    text = (
        f"You've requested a page on a website ({shown}) that is on the Cloudflare network. The host ({shown}) "
        "is configured as a Cloudflare Tunnel, and Cloudflare is currently unable to resolve it."
    )
    page = _error_page(1033, "Cloudflare Tunnel error", host, ray, text)
    return web.Response(status=530, text=page, content_type="text/html", headers=_cf_headers(ray))


def _error_page(code: int, title: str, host: str, ray: str, what: str) -> str:
    shown = html.escape(host.split(":")[0])
    return (
        f'<!DOCTYPE html><html lang="en-US"><head><title>{html.escape(title)} | {shown} | Cloudflare</title>'
        f"</head><body><h1><span>Error</span> <span>{code}</span></h1><p>Ray ID: {ray[:16]}</p>"
        f"<h2>{html.escape(title)}</h2><h2>What happened?</h2><p>{what}</p>"
        "<h2>What can I do?</h2><p>If you are the owner of this website: ensure that cloudflared is "
        "running and can reach the network.</p></body></html>"
    )


def metrics_app(state: EdgeState) -> web.Application:
    """cloudflared's metrics server, as far as a readiness probe uses it."""

    async def ready(request: web.Request) -> web.Response:
        up = state.connected and not state.gone
        status = 200 if up else 503
        body = json.dumps(
            {"status": status, "readyConnections": 1 if up else 0, "connectorId": state.connector_id},
            separators=(",", ":"),
        )
        return web.Response(status=status, body=body.encode(), headers={"Content-Type": "text/plain; charset=utf-8"})

    async def quicktunnel(request: web.Request) -> web.Response:
        return web.Response(
            body=f'{{"hostname":"{state.hostname}"}}'.encode(),
            headers={"Content-Type": "text/plain; charset=utf-8"},
        )

    async def healthcheck(request: web.Request) -> web.Response:
        return web.Response(text="OK\n")

    async def metrics(request: web.Request) -> web.Response:
        lines = [
            "# HELP cloudflared_tunnel_ha_connections Number of active ha connections",
            "# TYPE cloudflared_tunnel_ha_connections gauge",
            f"cloudflared_tunnel_ha_connections {1 if state.connected and not state.gone else 0}",
            f"cloudflared_tunnel_total_requests {state.requests}",
        ]
        return web.Response(text="\n".join(lines) + "\n")

    app = web.Application()
    app.router.add_get("/ready", ready)
    app.router.add_get("/quicktunnel", quicktunnel)
    app.router.add_get("/healthcheck", healthcheck)
    app.router.add_get("/metrics", metrics)
    return app
