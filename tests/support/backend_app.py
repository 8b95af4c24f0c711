"""The developer's backend in tests: a real aiohttp app that checks X-Hub-Signature-256 with its own secret."""

from __future__ import annotations

import asyncio
import hashlib
import hmac
from dataclasses import dataclass, field

from aiohttp import web


@dataclass
class ReceivedByBackend:
    """One request exactly as the backend saw it."""

    method: str
    path_qs: str
    headers: dict[str, str]
    body: bytes
    signature_ok: bool | None


@dataclass
class BackendBehaviour:
    """Knobs a test turns: the backend's secret, verify token, status to answer, delay."""

    app_secret: str = "backend-app-secret"
    verify_token: str = "backend-verify-token"
    status: int = 200
    delay_s: float = 0.0
    reject_bad_signature: bool = True
    received: list[ReceivedByBackend] = field(default_factory=list)


BEHAVIOUR = web.AppKey("behaviour", BackendBehaviour)


async def _webhook(request: web.Request) -> web.Response:
    behaviour = request.app[BEHAVIOUR]
    body = await request.read()
    header = request.headers.get("X-Hub-Signature-256")
    signature_ok: bool | None = None
    if request.method == "POST":
        expected = "sha256=" + hmac.new(behaviour.app_secret.encode(), body, hashlib.sha256).hexdigest()
        signature_ok = header is not None and hmac.compare_digest(header.encode(), expected.encode())
    behaviour.received.append(
        ReceivedByBackend(request.method, request.path_qs, dict(request.headers), body, signature_ok)
    )
    if behaviour.delay_s:
        await asyncio.sleep(behaviour.delay_s)
    if request.method == "GET":
        query = request.query
        if query.get("hub.mode") == "subscribe" and query.get("hub.verify_token") == behaviour.verify_token:
            return web.Response(text=query.get("hub.challenge", ""), content_type="text/plain")
        return web.Response(status=403, text="backend: bad verify token")
    if behaviour.reject_bad_signature and not signature_ok:
        return web.Response(status=403, text="backend: invalid signature")
    return web.Response(status=behaviour.status, text=f"backend says {behaviour.status}")


def create_backend_app(behaviour: BackendBehaviour) -> web.Application:
    """Serve /webhook/whatsapp like a typical developer's app."""
    app = web.Application(handler_args={"auto_decompress": False})
    app[BEHAVIOUR] = behaviour
    app.router.add_route("*", "/webhook/whatsapp", _webhook)
    return app
