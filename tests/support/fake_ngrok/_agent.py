"""The running fake agent: its local API (/api/tunnels, /api/endpoints) and the endpoints it serves.

JSON shapes follow ngrok's agent API documentation; one registry backs both the v2 ``tunnels`` view and the
v3 ``endpoints`` view, as in the real agent. Bodies are decoded as strictly as ngrok does (an unknown field is
a 400), every request is logged as the agent logs it (``msg=start`` / ``msg=end``), and every request that is
not a GET is appended to FAKE_NGROK_API_LOG. The API is an aiohttp.web app.
"""

from __future__ import annotations

import asyncio
import json
import os
import secrets
import ssl
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import urlsplit

from _ngrok_errors import (
    ACCOUNT,
    DOMAIN_ERRORS,
    FIRST_ENDPOINTS_API,
    SESSION_NOT_READY,
    already_online,
    unknown_fields,
)
from _proxy import public_app, serve_tcp
from _registry import AlreadyOnline, Registry
from _schema import ENDPOINT_FIELDS, ENDPOINT_TYPE, TUNNEL_FIELDS, UPSTREAM_FIELDS, UPSTREAM_TYPE
from _session import Session
from aiohttp import web

Log = Callable[..., None]


class ApiError(Exception):
    """An agent API failure, as ngrok renders it: error_code, status_code, msg, details.err."""

    def __init__(self, status: int, code: int, msg: str, err: str, *, details: dict[str, Any] | None = None) -> None:
        super().__init__(err)
        self.status, self.code, self.msg, self.err = status, code, msg, err
        self.details = details if details is not None else {"err": err}

    def response(self) -> web.Response:
        data = {"error_code": self.code, "status_code": self.status, "msg": self.msg, "details": self.details}
        return web.json_response(status=self.status, data=data)


@dataclass
class Settings:
    """What the agent needs besides its endpoints, built from argv, environment and config."""

    version: tuple[int, ...]
    version_text: str
    modes: frozenset[str]
    public_host: str | None
    cert_file: str | None
    key_file: str | None
    region: str
    authtoken_source: str
    config_paths: list[str]
    dev_domain: str
    api_log: str | None = None
    registry: Registry = field(default_factory=lambda: Registry(None))

    @property
    def has_endpoints_api(self) -> bool:
        return self.version >= FIRST_ENDPOINTS_API and "no-endpoints-api" not in self.modes


@dataclass
class Endpoint:
    name: str
    id: str
    scheme: str
    public_url: str
    upstream_url: str
    upstream_host: str
    upstream_port: int
    upstream_tls: bool
    inspect: bool
    options: dict[str, Any]
    claimed: str | None = None  # the URL held on the edge (ERR_NGROK_334 for a second one)
    stop: Callable[[], Awaitable[None]] | None = None
    conns: int = 0
    requests: int = 0

    def metrics(self) -> dict[str, Any]:
        zeros = {"rate1": 0, "rate5": 0, "rate15": 0, "p50": 0, "p90": 0, "p95": 0, "p99": 0}
        return {
            "conns": {"count": self.conns, "gauge": 0, **zeros},
            "http": {"count": self.requests, **zeros},
        }

    def as_tunnel(self) -> dict[str, Any]:
        return {
            "ID": self.id,
            "name": self.name,
            "uri": f"/api/tunnels/{self.name}",
            "public_url": self.public_url,
            "proto": self.scheme,
            "config": {"addr": self.upstream_url, "inspect": self.inspect},
            "metrics": self.metrics(),
        }

    def as_endpoint(self) -> dict[str, Any]:
        upstream = self.options.get("upstream") if isinstance(self.options.get("upstream"), dict) else {}
        return {
            "id": self.id,
            "name": self.name,
            "uri": f"/api/endpoints/{self.name}",
            "url": self.public_url,
            "upstream": {"url": self.upstream_url, "protocol": upstream.get("protocol", "http1")},
            "inspect": self.inspect,
            "traffic_policy": self.options.get("traffic_policy", ""),
            "pooling_enabled": bool(self.options.get("pooling_enabled", False)),
            "metrics": self.metrics(),
        }


class Agent:
    def __init__(self, settings: Settings, log: Log, session: Session) -> None:
        self.settings = settings
        self.log = log
        self.session = session
        self.endpoints: dict[str, Endpoint] = {}

    async def start_api(self, host: str, port: int, *, fallback: bool) -> str:
        """Bind the local API; like ngrok, walk up from 4040 when the default port is taken."""
        app = web.Application()
        app.router.add_route("*", "/{tail:.*}", self._serve_api)
        runner = web.AppRunner(app, access_log=None)
        await runner.setup()
        attempts = 10 if fallback else 1
        for offset in range(attempts):
            try:
                await web.TCPSite(runner, host, port + offset).start()
                break
            except OSError:
                if offset == attempts - 1:
                    raise
        bound = runner.addresses[0]
        return f"{bound[0]}:{bound[1]}"

    async def _serve_api(self, request: web.Request) -> web.Response:
        rid = secrets.token_hex(8)
        started = time.perf_counter()
        self.log("info", "start", pg=request.path, id=rid)
        body = await request.read()
        try:
            response = await self._route(request, body)
        except ApiError as exc:
            self._log_failure(request.path, rid, exc)
            response = exc.response()
        dur = f"{(time.perf_counter() - started) * 1e6:.3f}µs"
        self.log("info", "end", pg=request.path, id=rid, status=response.status, dur=dur)
        if request.method != "GET":
            self._record(request, body, response.status)
        return response

    def _log_failure(self, path: str, rid: str, exc: ApiError) -> None:
        if exc.status == 404:
            self.log("warn", "Not Found", pg=path, id=rid, path=path)
        else:
            self.log("warn", exc.msg, pg=path, id=rid, err=exc.err)

    def _record(self, request: web.Request, body: bytes, status: int) -> None:
        """One JSON line per API call, so a test can assert exactly what the provider sent."""
        if not self.settings.api_log:
            return
        try:
            parsed: Any = json.loads(body) if body else None
        except ValueError:
            parsed = body.decode("utf-8", "replace")
        entry = {"pid": os.getpid(), "method": request.method, "path": request.path, "body": parsed, "status": status}
        fd = os.open(self.settings.api_log, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o600)
        try:
            os.write(fd, (json.dumps(entry) + "\n").encode())
        finally:
            os.close(fd)

    async def _route(self, request: web.Request, body: bytes) -> web.Response:
        parts = request.path.strip("/").split("/")
        method = request.method
        if parts in (["api"], [""]):
            return _json(200, {"uri": "/api", "tunnels_uri": "/api/tunnels", "endpoints_uri": "/api/endpoints"})
        if parts == ["api", "status"] and method == "GET":
            return _json(200, self._status())
        if len(parts) >= 2 and parts[:2] == ["api", "requests"]:
            return self._requests(method, parts)
        if parts[1:2] == ["endpoints"] and not self.settings.has_endpoints_api:
            raise _not_found(request.path)
        if len(parts) in (2, 3) and parts[1] in ("tunnels", "endpoints"):
            return await self._resource(method, body, parts[1], parts[2] if len(parts) == 3 else None)
        raise _not_found(request.path)

    def _status(self) -> dict[str, Any]:
        return {
            "status": self.session.status(),
            "agent_version": self.settings.version_text,
            "session": {"legs": [{"region": self.settings.region, "latency": "1ms"}]},
            "uri": "/api/status",
            "fake": {
                "authtoken_source": self.settings.authtoken_source,
                "config_paths": self.settings.config_paths,
                "modes": sorted(self.settings.modes),
            },
        }

    def _requests(self, method: str, parts: list[str]) -> web.Response:
        if method == "GET" and len(parts) == 3:
            return _json(200, {"uri": "/api/requests/http", "requests": []})
        if method == "DELETE":
            return _json(204, None)
        raise ApiError(404, 100, "not found", "the fake agent keeps no captured requests")

    async def _resource(self, method: str, body: bytes, kind: str, name: str | None) -> web.Response:
        view = Endpoint.as_tunnel if kind == "tunnels" else Endpoint.as_endpoint
        if name is None and method == "GET":
            return _json(200, {kind: [view(e) for e in self.endpoints.values()], "uri": f"/api/{kind}"})
        if name is None and method == "POST":
            endpoint = await self.create(_json_body(body), kind)
            return _json(201, view(endpoint))
        if name is not None and method == "GET":
            return _json(200, view(self._get(name)))
        if name is not None and method == "DELETE":
            await self.delete(self._get(name).name)
            return _json(204, None)
        if name is not None and method == "PUT" and kind == "endpoints":
            existed = name in self.endpoints
            if existed:
                await self.delete(name)
            endpoint = await self.create({**_json_body(body), "name": name}, kind)
            return _json(200 if existed else 201, view(endpoint))
        raise ApiError(405, 101, "method not allowed", f"{method} is not allowed here")

    def _get(self, name: str) -> Endpoint:
        if name not in self.endpoints:
            raise ApiError(404, 100, "tunnel not found", f"tunnel '{name}' not found")
        return self.endpoints[name]

    async def create(self, body: dict[str, Any], kind: str) -> Endpoint:
        """Check the body like ngrok, hold the URL on the (shared) edge, then listen and forward."""
        _check_fields(body, kind)
        if not self.session.up:
            err = SESSION_NOT_READY if self.session.state == "connecting" else "session closed"
            raise ApiError(502, 103, "failed to start tunnel", err)
        name = str(body.get("name") or f"command_line-{secrets.token_hex(4)}")
        if name in self.endpoints:
            raise ApiError(
                400, 102, "invalid tunnel configuration", f"a tunnel named '{name}' is already running"
            )
        scheme, domain = _public_side(body, kind)
        raw_upstream = _upstream_of(body)
        if raw_upstream is None:
            raise ApiError(
                400, 102, "invalid tunnel configuration", "an upstream address (upstream.url / addr) is required"
            )
        upstream_scheme, host, port = _parse_upstream(str(raw_upstream), scheme)
        if domain:
            self._check_domain(domain)
        elif scheme in ("http", "https"):
            domain = self.settings.dev_domain  # the free plan: no URL asked for means the account's dev domain
        claimed = f"{scheme}://{domain}" if domain else None
        if claimed:
            try:
                self.settings.registry.claim(claimed, name, bool(body.get("pooling_enabled")))
            except AlreadyOnline:
                raise ApiError(502, 103, "failed to start tunnel", already_online(claimed)) from None
        netloc = f"[{host}]:{port}" if ":" in host else f"{host}:{port}"
        endpoint = Endpoint(
            name=name,
            id=f"ep_{secrets.token_hex(12)}",
            scheme=scheme,
            public_url="",
            upstream_url=f"{upstream_scheme}://{netloc}",
            upstream_host=host,
            upstream_port=port,
            upstream_tls=upstream_scheme in ("https", "tls"),
            inspect=bool(body.get("inspect", scheme in ("http", "https"))),
            options={k: v for k, v in body.items() if k in ("traffic_policy", "pooling_enabled", "upstream")},
            claimed=claimed,
        )
        try:
            endpoint.stop, port_bound = await self._listen(endpoint)
        except BaseException:
            if claimed:
                self.settings.registry.release(claimed, name)
            raise
        public_host = self.settings.public_host or domain or "localhost"
        endpoint.public_url = f"{scheme}://{public_host}:{port_bound}"
        self.endpoints[name] = endpoint
        self.log(
            "info", "started tunnel", obj="tunnels", name=name, addr=endpoint.upstream_url, url=endpoint.public_url
        )
        return endpoint

    def _check_domain(self, domain: str) -> None:
        for mode, (code, text) in DOMAIN_ERRORS.items():
            if mode in self.settings.modes:
                err = text.format(domain=domain, account=ACCOUNT) + f"\r\n\r\n{code}\r\n"
                raise ApiError(502, 103, "failed to start tunnel", err)

    async def _listen(self, endpoint: Endpoint) -> tuple[Callable[[], Awaitable[None]], int]:
        """Open the endpoint's public listener on the URL's previous port if free; return its stop and port."""
        registry = self.settings.registry
        wanted = registry.port_for(endpoint.claimed) if endpoint.claimed else 0
        try:
            stop, port = await self._open(endpoint, wanted)
        except OSError:
            stop, port = await self._open(endpoint, 0)
        if endpoint.claimed:
            registry.remember_port(endpoint.claimed, port)
        return stop, port

    async def _open(self, endpoint: Endpoint, port: int) -> tuple[Callable[[], Awaitable[None]], int]:
        if endpoint.scheme == "tcp":

            def tcp_handler(r: asyncio.StreamReader, w: asyncio.StreamWriter) -> Any:
                return serve_tcp(endpoint, self.session, r, w)

            server = await asyncio.start_server(tcp_handler, "127.0.0.1", port)

            async def stop_tcp() -> None:
                server.close()

            return stop_tcp, server.sockets[0].getsockname()[1]
        tls = self._tls_context() if endpoint.scheme in ("https", "tls") else None
        app = public_app(
            endpoint, self.session, interstitial="interstitial" in self.settings.modes, log=self.log
        )
        runner = web.AppRunner(app, access_log=None, shutdown_timeout=0.5)
        await runner.setup()
        try:
            await web.TCPSite(runner, "127.0.0.1", port, ssl_context=tls).start()
        except OSError:
            await runner.cleanup()
            raise
        return runner.cleanup, runner.addresses[0][1]

    def _tls_context(self) -> ssl.SSLContext:
        cert, key = self.settings.cert_file, self.settings.key_file
        if not cert:
            raise ApiError(
                502,
                103,
                "failed to start tunnel",
                "fake ngrok: no certificate; set FAKE_NGROK_CERT (and FAKE_NGROK_KEY)",
            )
        context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
        context.load_cert_chain(cert, key or None)
        context.set_alpn_protocols(["http/1.1"])
        return context

    async def delete(self, name: str) -> None:
        endpoint = self.endpoints.pop(name)
        if endpoint.stop is not None:
            await endpoint.stop()
        if endpoint.claimed:
            self.settings.registry.release(endpoint.claimed, name)
        self.log("info", "stopped tunnel", obj="tunnels", name=name)


def _json(status: int, payload: Any) -> web.Response:
    """ngrok's API answers JSON, and 204 with no body at all."""
    return web.Response(status=204) if status == 204 else web.json_response(payload, status=status)


def _not_found(path: str) -> ApiError:
    """An API path this agent does not have (/api/endpoints before 3.30), logged as ``msg="Not Found"``."""
    return ApiError(404, 100, "Not Found", "Not Found", details={"path": path})


def _json_body(raw: bytes) -> dict[str, Any]:
    try:
        body = json.loads(raw or b"{}")
    except (json.JSONDecodeError, UnicodeDecodeError) as exc:
        raise ApiError(400, 100, "invalid request body", str(exc)) from exc
    if not isinstance(body, dict):
        raise ApiError(400, 100, "invalid request body", "expected a JSON object")
    return body


def _check_fields(body: dict[str, Any], kind: str) -> None:
    """An unknown field is a 400 naming it, as ngrok's strict decode of the body does (pyngrok 7.2-8.x `url`)."""
    if kind == "endpoints":
        unknown = [(k, ENDPOINT_TYPE) for k in body if k not in ENDPOINT_FIELDS]
        upstream = body.get("upstream")
        if isinstance(upstream, dict):
            unknown += [(k, UPSTREAM_TYPE) for k in upstream if k not in UPSTREAM_FIELDS]
    else:
        proto = str(body.get("proto") or "http")
        if proto not in TUNNEL_FIELDS:
            raise ApiError(400, 102, "invalid tunnel configuration", f"Invalid protocol name '{proto}'")
        known, go_type = TUNNEL_FIELDS[proto]
        unknown = [(k, go_type) for k in body if k not in known]
    if unknown:
        raise ApiError(400, 102, "invalid tunnel configuration", unknown_fields(unknown))


def _public_side(body: dict[str, Any], kind: str) -> tuple[str, str | None]:
    """The public scheme and the requested domain (None: the dev domain for http(s), random for tcp)."""
    url = str(body.get("url") or "")
    if kind == "tunnels" and not url:
        proto = str(body.get("proto") or "http")
        schemes = body.get("schemes") or ["https"]
        scheme = {"http": "https" if "https" in schemes else "http"}.get(proto, proto)
        host = body.get("domain") or body.get("hostname")
        if not host and body.get("subdomain"):
            host = f"{body['subdomain']}.ngrok-free.app"
        return scheme, str(host) if host else None
    if url and "://" not in url:
        url = f"https://{url}"
    parsed = urlsplit(url) if url else None
    scheme = parsed.scheme if parsed else "https"
    host = parsed.hostname if parsed else None
    if scheme not in ("http", "https", "tcp", "tls"):
        raise ApiError(400, 102, "invalid tunnel configuration", f"unsupported scheme '{scheme}'")
    return scheme, host or None


def _upstream_of(body: dict[str, Any]) -> Any:
    upstream = body.get("upstream")
    if isinstance(upstream, dict) and upstream.get("url") is not None:
        return upstream["url"]
    if isinstance(upstream, (str, int)):
        return upstream
    return body.get("addr")


def _parse_upstream(raw: str, public_scheme: str) -> tuple[str, str, int]:
    default_scheme = "tcp" if public_scheme in ("tcp", "tls") else "http"
    try:
        if raw.isdigit():
            return default_scheme, "localhost", int(raw)
        if "://" not in raw:
            raw = f"{default_scheme}://{raw}"
        parsed = urlsplit(raw)
        port = parsed.port or {"https": 443, "http": 80}.get(parsed.scheme)
    except ValueError as exc:
        raise ApiError(400, 102, "invalid tunnel configuration", str(exc)) from exc
    if parsed.scheme not in ("http", "https", "tcp", "tls") or not parsed.hostname or not port:
        raise ApiError(400, 102, "invalid tunnel configuration", f"bad upstream url '{raw}'")
    return parsed.scheme, parsed.hostname, port
