"""A fake `cloudflared` for offline tests: prints what the real one prints and really serves a quick tunnel.

`cloudflared --version` prints the version line; `cloudflared tunnel --url http://host:port ...` logs the
real startup lines to stderr (zerolog's console format: `2025-01-01T00:00:00Z INF ...`), including the
box with `https://<four-words>.trycloudflare.com:<port>` (the port is the fake's: the tests' resolver
maps every *.trycloudflare.com to 127.0.0.1), starts its metrics server where --metrics says and logs
`Starting metrics server on <addr>/metrics`, then `Registered tunnel connection connIndex=0 ...`.
Like the real one it reads ~/.cloudflared/config.yml when no --config is given (a `tunnel:` key refuses
a quick tunnel; ingress rules take over its traffic), rejects unknown flags as urfave/cli does, has
no parent watchdog, and shuts down on SIGTERM/SIGINT.

Knobs (environment):
    FAKE_CLOUDFLARED_MODE     comma-separated: ok, rate-limited (api.trycloudflare.com answers 429/1015;
                              exit 1), offline (the API cannot be reached; exit 1), silent (never gets
                              an answer from the API, never prints a URL), no-edge (the URL, then
                              only failed dials to the edge), drop-after=<s> (the edge connection drops
                              s seconds after it came up; retries logged every FAKE_CLOUDFLARED_RETRY_S),
                              recover-after=<s> (with drop-after: registered again s seconds later),
                              expire-after=<s> (Cloudflare forgets the quick tunnel: "Unauthorized:
                              Tunnel not found" forever), ignore-term (only SIGKILL ends it),
                              version=<x.y.z>
    FAKE_CLOUDFLARED_CERT/KEY PEM files for the public HTTPS listener (a *.trycloudflare.com certificate)
    FAKE_CLOUDFLARED_RETRY_S  seconds between reconnect attempts after a drop (default 0.5)
    FAKE_CLOUDFLARED_ARGV_LOG append {"pid", "argv"} as a JSON line per invocation
    FAKE_CLOUDFLARED_ENV_LOG  append {"pid", "env"} (the environment it was started with) per invocation
"""

from __future__ import annotations

import asyncio
import json
import os
import platform
import re
import secrets
import signal
import ssl
import sys
import uuid
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import yaml
from aiohttp import web

sys.path.insert(0, str(Path(__file__).resolve().parent))

from _edge import EDGE_IP, EDGE_LOCATION, EdgeState, metrics_app, public_app

DEFAULT_VERSION = "2025.8.1"
BUILT = "2025-08-21-1535 UTC"
DISCLAIMER = (
    "Thank you for trying Cloudflare Tunnel. Doing so, without a Cloudflare account, is a quick way to "
    "experiment and try it out. However, be aware that these account-less Tunnels have no uptime guarantee, "
    "are subject to the Cloudflare Online Services Terms of Use (https://www.cloudflare.com/website-terms/), "
    "and Cloudflare reserves the right to investigate your use of Tunnels for violations of such terms. If you "
    "intend to use Tunnels in production you should use a pre-created named tunnel by following: "
    "https://developers.cloudflare.com/cloudflare-one/connections/connect-apps"
)
CONFIG_FILES = ("config.yml", "config.yaml")
CONFIG_DIRS = (
    "~/.cloudflared",
    "~/.cloudflare-warp",
    "~/cloudflare-warp",
    "/etc/cloudflared",
    "/usr/local/etc/cloudflared",
)
NO_CONFIG = (
    "Cannot determine default configuration path. No file [config.yml config.yaml] in "
    "[~/.cloudflared ~/.cloudflare-warp ~/cloudflare-warp /etc/cloudflared /usr/local/etc/cloudflared]"
)
VALUE_FLAGS = frozenset(
    {
        "url",
        "metrics",
        "config",
        "protocol",
        "loglevel",
        "transport-loglevel",
        "logfile",
        "pidfile",
        "grace-period",
        "edge-ip-version",
        "region",
        "hostname",
        "name",
        "origincert",
        "autoupdate-freq",
        "quick-service",
        "http-host-header",
        "origin-server-name",
        "unix-socket",
        "tag",
        "retries",
        "output",
    }
)
BOOL_FLAGS = frozenset({"no-autoupdate", "no-tls-verify", "hello-world", "post-quantum", "no-chunked-encoding"})
WORDS = ("subsidiary", "bride", "joan", "rotation", "oklahoma", "solo", "younger", "truck", "devoted", "kansas")
WORDS += ("prescription", "direct", "specified", "calcium", "intervals", "river", "copper", "lantern", "orbit")


class Usage(Exception):
    """urfave/cli's "Incorrect Usage: ..." (exit 1)."""


@dataclass
class Cli:
    command: list[str] = field(default_factory=list)
    flags: dict[str, str] = field(default_factory=dict)


@dataclass
class Modes:
    names: frozenset[str]
    timings: dict[str, float]
    version: str

    @classmethod
    def from_env(cls, raw: str) -> Modes:
        names: set[str] = set()
        timings: dict[str, float] = {}
        version = DEFAULT_VERSION
        for token in (t.strip() for t in raw.split(",")):
            name, _, value = token.partition("=")
            if name == "version":
                version = value
            elif value:
                timings[name] = float(value)
            elif name:
                names.add(name)
        return cls(frozenset(names), timings, version)


def parse_cli(argv: list[str]) -> Cli:
    """urfave/cli v2: `--flag value`, `--flag=value`, `-flag value`; flags and arguments mixed."""
    cli = Cli()
    tokens = iter(argv)
    for token in tokens:
        if token in ("-v", "-V", "--version", "-version"):
            cli.flags["version"] = "true"
        elif token.startswith("-") and token.strip("-"):
            name, eq, value = token.lstrip("-").partition("=")
            if name in BOOL_FLAGS:
                cli.flags[name] = value or "true"
            elif name in VALUE_FLAGS:
                cli.flags[name] = value if eq else next(tokens, "")
            else:
                raise Usage(f"flag provided but not defined: -{name}")
        else:
            cli.command.append(token)
    return cli


def log(level: str, message: str, **fields: Any) -> None:
    """zerolog's console writer without colours, on stderr as the real one writes it."""
    stamp = datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
    parts = [stamp, level, message, *(f"{key}={_value(value)}" for key, value in fields.items())]
    _write(" ".join(parts))


def plain(text: str) -> None:
    """urfave/cli's last line when the command fails."""
    _write(text)


def _write(line: str) -> None:
    try:
        sys.stderr.write(line + "\n")
        sys.stderr.flush()
    except (BrokenPipeError, ValueError):
        pass


def _value(value: Any) -> str:
    text = str(value)
    if text and re.fullmatch(r"[^\s\"=]+", text):
        return text
    return json.dumps(text)


def record_invocation() -> None:
    for variable, entry in (
        ("FAKE_CLOUDFLARED_ARGV_LOG", {"pid": os.getpid(), "argv": sys.argv[1:]}),
        ("FAKE_CLOUDFLARED_ENV_LOG", {"pid": os.getpid(), "env": dict(os.environ)}),
    ):
        path = os.environ.get(variable)
        if path:
            with open(path, "a", encoding="utf-8") as handle:
                handle.write(json.dumps(entry) + "\n")


def find_config(cli: Cli) -> tuple[Path | None, dict[str, Any]]:
    """--config, else the first default location that has a file (the trap wa-devtunnel must avoid)."""
    if "config" in cli.flags:
        candidates = [Path(cli.flags["config"]).expanduser()]
    else:
        candidates = [Path(d).expanduser() / name for d in CONFIG_DIRS for name in CONFIG_FILES]
    for path in candidates:
        if path.is_file():
            document = yaml.safe_load(path.read_text(encoding="utf-8"))
            return path, document if isinstance(document, dict) else {}
    return None, {}


def hostname() -> str:
    return "-".join(secrets.choice(WORDS) for _ in range(4)) + ".trycloudflare.com"


def ascii_box(lines: list[str], padding: int = 2) -> list[str]:
    """quick_tunnel.go's AsciiBox."""
    width = max(len(line) for line in lines)
    spacer = " " * padding
    border = "+" + "-" * (width + 2 * padding) + "+"
    return [border, *(f"|{spacer}{line}{' ' * (width - len(line))}{spacer}|" for line in lines), border]


class FakeCloudflared:
    """One `cloudflared tunnel --url ...` run."""

    def __init__(self, cli: Cli, modes: Modes) -> None:
        self.cli = cli
        self.modes = modes
        self.retry_s = float(os.environ.get("FAKE_CLOUDFLARED_RETRY_S", "0.5"))
        self.stopping = asyncio.Event()
        self.runners: list[web.AppRunner] = []
        self.state: EdgeState | None = None
        self.connection_ip = EDGE_IP

    async def run(self) -> int:
        config_path, config = find_config(self.cli)
        if config.get("tunnel"):
            plain(f"Use `cloudflared tunnel run` to start tunnel {config['tunnel']}")
            return 1
        self._handle_signals()
        log("INF", DISCLAIMER)
        log("INF", "Requesting new quick Tunnel on trycloudflare.com...")
        if "silent" in self.modes.names:
            await self.stopping.wait()
            return 0
        await asyncio.sleep(0.05)
        if "offline" in self.modes.names:
            plain(
                'failed to request quick Tunnel: Post "https://api.trycloudflare.com/tunnel": dial tcp: lookup '
                "api.trycloudflare.com on 127.0.0.53:53: server misbehaving"
            )
            return 1
        if "rate-limited" in self.modes.names:
            log(
                "ERR",
                "Error unmarshaling QuickTunnel response: error code: 1015",
                error="invalid character 'e' looking for beginning of value",
                status_code="429 Too Many Requests",
            )
            plain("failed to unmarshal quick Tunnel: invalid character 'e' looking for beginning of value")
            return 1
        upstream = self.cli.flags.get("url") or (self.cli.command[1] if len(self.cli.command) > 1 else "")
        upstream = upstream or "http://localhost:8080"
        if "://" not in upstream:
            upstream = f"http://{upstream}"
        ingress = config.get("ingress") if isinstance(config.get("ingress"), list) else []
        self.state = EdgeState(hostname(), str(uuid.uuid4()), str(uuid.uuid4()), upstream, ingress)
        port = await self._serve_public()
        url = f"https://{self.state.hostname}:{port}"
        for line in ascii_box(
            ["Your quick Tunnel has been created! Visit it at (it may take some time to be reachable):", url]
        ):
            log("INF", line)
        self._startup_lines(config_path, upstream)
        await self._serve_metrics()
        await self._run_connection()
        return 0

    def _handle_signals(self) -> None:
        loop = asyncio.get_running_loop()
        for signum, name in ((signal.SIGTERM, "terminated"), (signal.SIGINT, "interrupt")):
            if "ignore-term" in self.modes.names:
                loop.add_signal_handler(signum, lambda: None)
            else:
                loop.add_signal_handler(signum, self._shutdown, name)

    def _shutdown(self, name: str) -> None:
        log("INF", f"Initiating graceful shutdown due to signal {name} ...")
        self.stopping.set()

    def _startup_lines(self, config_path: Path | None, upstream: str) -> None:
        if config_path is None:
            log("INF", NO_CONFIG)
        log("INF", f"Version {self.modes.version} (Checksum {secrets.token_hex(32)})")
        log("INF", f"GOOS: {platform.system().lower()}, GOVersion: go1.24.4, GoArch: amd64")
        settings = {"ha-connections": "1", "protocol": "quic", "url": upstream}
        settings.update({k: v for k, v in self.cli.flags.items() if k in ("config", "metrics", "no-autoupdate")})
        log("INF", "Settings: map[" + " ".join(f"{k}:{v}" for k, v in sorted(settings.items())) + "]")
        if "no-autoupdate" not in self.cli.flags:
            log("INF", "cloudflared will not automatically update when run from the shell.")
        log("INF", f"Generated Connector ID: {self.state.connector_id if self.state else ''}")
        log("INF", "Initial protocol quic")
        log("INF", "ICMP proxy will use 127.0.0.1 as source for IPv4")

    async def _serve_public(self) -> int:
        assert self.state is not None
        context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
        context.load_cert_chain(os.environ["FAKE_CLOUDFLARED_CERT"], os.environ["FAKE_CLOUDFLARED_KEY"])
        runner = web.AppRunner(public_app(self.state, log), access_log=None)
        await runner.setup()
        site = web.TCPSite(runner, "127.0.0.1", 0, ssl_context=context)
        await site.start()
        self.runners.append(runner)
        return runner.addresses[0][1]

    async def _serve_metrics(self) -> None:
        assert self.state is not None
        address = self.cli.flags.get("metrics") or "127.0.0.1:0"
        host, _, port = address.rpartition(":")
        host = host.strip("[]") or "127.0.0.1"
        host = "127.0.0.1" if host == "localhost" else host
        runner = web.AppRunner(metrics_app(self.state), access_log=None)
        await runner.setup()
        site = web.TCPSite(runner, host, int(port or 0))
        await site.start()
        self.runners.append(runner)
        bound = runner.addresses[0]
        shown = f"[{bound[0]}]:{bound[1]}" if ":" in bound[0] else f"{bound[0]}:{bound[1]}"
        log("INF", f"Starting metrics server on {shown}/metrics")

    def _conn_fields(self) -> dict[str, Any]:
        return {"connIndex": 0, "event": 0, "ip": self.connection_ip}

    async def _sleep(self, seconds: float) -> bool:
        """False once we are stopping."""
        try:
            await asyncio.wait_for(self.stopping.wait(), seconds)
        except TimeoutError:
            return True
        return False

    async def _run_connection(self) -> None:
        assert self.state is not None
        if not await self._sleep(0.1):
            return await self._stop()
        if "no-edge" in self.modes.names:
            while await self._dial_failed():
                pass
            return await self._stop()
        self._register()
        timings = self.modes.timings
        if "drop-after" in timings and await self._sleep(timings["drop-after"]):
            await self._drop("timeout: no recent network activity", timings.get("recover-after"))
        elif "expire-after" in timings and await self._sleep(timings["expire-after"]):
            await self._expire()
        await self.stopping.wait()
        await self._stop()

    def _register(self) -> None:
        assert self.state is not None
        log("INF", "Tunnel connection curve preferences: [X25519MLKEM768 CurveP256]", **self._conn_fields())
        log(
            "INF",
            "Registered tunnel connection",
            connIndex=0,
            connection=str(uuid.uuid4()),
            event=0,
            ip=self.connection_ip,
            location=EDGE_LOCATION,
            protocol="quic",
        )
        self.state.connected = True

    async def _dial_failed(self) -> bool:
        error = "failed to dial to edge with quic: timeout: no recent network activity"
        log("WRN", "Failed to dial a quic connection", error=error, **self._conn_fields())
        log("INF", "Retrying connection in up to 2s", **self._conn_fields())
        log("WRN", "Connection terminated", error=error, connIndex=0)
        return await self._sleep(self.retry_s)

    async def _drop(self, error: str, recover_after: float | None) -> None:
        """The edge connection is lost; the process stays and retries, as cloudflared does."""
        assert self.state is not None
        self.state.connected = False
        log("ERR", "failed to serve tunnel connection", error=error, **self._conn_fields())
        log("ERR", "Serve tunnel error", error=error, **self._conn_fields())
        log("INF", "Retrying connection in up to 1s", **self._conn_fields())
        log("ERR", "Connection terminated", error=error, connIndex=0)
        loop = asyncio.get_running_loop()
        recover_at = loop.time() + recover_after if recover_after is not None else None
        while await self._sleep(self.retry_s):
            if recover_at is not None and loop.time() >= recover_at:
                self.connection_ip = "198.41.192.227"
                self._register()
                return
            await self._dial_failed_quietly()

    async def _dial_failed_quietly(self) -> None:
        error = "failed to dial to edge with quic: timeout: no recent network activity"
        log("WRN", "Failed to dial a quic connection", error=error, **self._conn_fields())
        log("INF", "Retrying connection in up to 2s", **self._conn_fields())

    async def _expire(self) -> None:
        """After a long disconnection Cloudflare forgets the quick tunnel: cloudflared retries in vain."""
        assert self.state is not None
        self.state.connected, self.state.gone = False, True
        error = "Unauthorized: Tunnel not found"
        log("ERR", "Connection terminated", error="timeout: no recent network activity", connIndex=0)
        while True:
            log("ERR", "Register tunnel error from server side", error=error, **self._conn_fields())
            log("ERR", "Connection terminated", error=error, connIndex=0)
            log("INF", "Retrying connection in up to 1m4s", **self._conn_fields())
            if not await self._sleep(self.retry_s):
                return

    async def _stop(self) -> None:
        if self.state is not None and self.state.connected:
            log("INF", "Unregistered tunnel connection", **self._conn_fields())
        log("INF", "Tunnel server stopped")
        for runner in reversed(self.runners):
            await runner.cleanup()
        log("INF", "Metrics server stopped")


def main() -> int:
    record_invocation()
    modes = Modes.from_env(os.environ.get("FAKE_CLOUDFLARED_MODE", "ok"))
    try:
        cli = parse_cli(sys.argv[1:])
    except Usage as exc:
        plain(f"Incorrect Usage: {exc}")
        return 1
    if "version" in cli.flags or cli.command[:1] == ["version"]:
        print(f"cloudflared version {modes.version} (built {BUILT})", flush=True)
        return 0
    if cli.command[:1] != ["tunnel"]:
        plain("Use `cloudflared tunnel --url http://localhost:PORT` for a quick tunnel (fake cloudflared)")
        return 1
    return asyncio.run(FakeCloudflared(cli, modes).run())


if __name__ == "__main__":
    sys.exit(main())
