"""The service: wires settings, recorder, receiver and tunnel, and publishes what happens to front ends."""

from __future__ import annotations

import asyncio
import contextlib
import ipaddress
import os
import socket
import ssl
import sys
from collections.abc import Mapping
from dataclasses import replace
from pathlib import Path
from typing import Any, TextIO
from urllib.parse import urlsplit

from aiohttp import web

from wa_devtunnel.engine.channel.address import ChannelAddress
from wa_devtunnel.engine.events import (
    EventBus,
    Notice,
    ReceiverStarted,
    ReceiverStopped,
    SelfTestFinished,
    TunnelChanged,
    tunnel_down_text,
)
from wa_devtunnel.engine.forwarder import Forwarder, ForwardResult
from wa_devtunnel.engine.http_server import LISTEN_BACKLOG, ReceiverRunner, ServerLimits
from wa_devtunnel.engine.instance import RunningInstance, remove_instance, write_instance
from wa_devtunnel.engine.leftovers import clear_leftovers
from wa_devtunnel.engine.meta.handshake_watch import HandshakeWatch
from wa_devtunnel.engine.meta.registration import Registrar, registrar_for
from wa_devtunnel.engine.processes import process_identity
from wa_devtunnel.engine.receiver import RECEIVER_STATE, ReceiverConfig, create_receiver_app
from wa_devtunnel.engine.recording import SessionRecorder, read_record_at
from wa_devtunnel.engine.redaction import Redactor
from wa_devtunnel.engine.replay.live import replay_through_receiver
from wa_devtunnel.engine.replay.source import ReplayError
from wa_devtunnel.engine.sample import send_sample_event
from wa_devtunnel.engine.session_search import search_recordings
from wa_devtunnel.engine.tunnel.provider import NoTunnel, TunnelError, TunnelHealth, TunnelProvider
from wa_devtunnel.engine.tunnel.selftest import run_selftest
from wa_devtunnel.engine.unknown_numbers import UnknownNumberHints
from wa_devtunnel.settings import ConfigError, Settings

LOCAL_ONLY_HINT = (
    "Local only: Meta cannot reach this URL. Set NGROK_AUTHTOKEN "
    "(https://dashboard.ngrok.com/get-started/your-authtoken) for a public HTTPS URL."
)
WATCH_INTERVAL_S = 1.0
SETTLE_RETRY_S = 2.0
# The provider's slower cross-check (its agent API): every ~10 s, every second while it disagrees.
CHECK_INTERVAL_S = 10.0
CHECK_TIMEOUT_S = 5.0
URL_CHANGED = "the public URL changed: update the Callback URL in Meta"
REPLAYABLE_KINDS = ("event", "verify")
MAX_BACKOFF_S = 30.0


def failure_summary(error: TunnelError) -> str:
    """A tunnel failure's first part (with its ERR_NGROK code), without the advice that follows it."""
    return str(error).split("\n", 1)[0]


def receiver_config(settings: Settings) -> ReceiverConfig:
    """Translate user settings into the receiver's rules."""
    return ReceiverConfig(
        path=settings.path,
        handshake_tokens=tuple(settings.handshake_tokens()),
        signature_secrets=tuple(settings.signature_secrets()),
        wrong_signing_keys=tuple(settings.wrong_signing_keys()),
        accounts_by_phone_number_id=settings.accounts_by_phone_number_id(),
        max_body_bytes=settings.max_body_bytes,
        require_signature=settings.require_signature,
        ack_first=settings.ack_first,
        ack_first_backlog_bytes=settings.ack_first_backlog_bytes,
        body_memory_bytes=settings.body_memory_bytes,
    )


def register_refusal(settings: Settings, tunnel: str, local_url: str) -> ConfigError | None:
    """`--register` without a tunnel: Meta calls only public HTTPS URLs, so nothing is sent to it."""
    if not settings.register or tunnel != "none":
        return None
    return ConfigError(
        "--register",
        f"Meta only calls public HTTPS URLs and --tunnel none serves {local_url} (local only): nothing was "
        "sent to Meta. Use a tunnel (NGROK_AUTHTOKEN in .env, or --tunnel cloudflared), or drop --register.",
    )


def _addresses(host: str) -> set[ipaddress.IPv4Address | ipaddress.IPv6Address]:
    """The addresses `host` names (blocking: a DNS lookup unless it is one), empty when it does not resolve."""
    try:
        if _is_ip(host.split("%", 1)[0]):
            names = {host}
        else:
            names = {str(info[4][0]) for info in socket.getaddrinfo(host, None, proto=socket.IPPROTO_TCP)}
    except (OSError, UnicodeError):
        return set()
    found = set()
    for name in names:
        with contextlib.suppress(ValueError):
            ip = ipaddress.ip_address(name.split("%", 1)[0])
            mapped = getattr(ip, "ipv4_mapped", None)
            found.add(mapped if mapped is not None else ip)
    return found


def _is_ip(text: str) -> bool:
    try:
        ipaddress.ip_address(text)
    except ValueError:
        return False
    return True


def forward_loop_error(forward_to: str, bound_host: str, port: int, path: str) -> ConfigError | None:
    """--forward-to naming this very receiver (the bound port and webhook path, at an address that reaches
    it): every request would be forwarded to itself, again and again. Checked once the real port is known;
    blocking (it may look a name up)."""
    try:
        target = urlsplit(forward_to)
        target_port = target.port or (443 if target.scheme == "https" else 80)
    except ValueError:
        return None
    if target_port != port or (target.path or "/").rstrip("/") != path.rstrip("/") or not target.hostname:
        return None
    bound = _addresses(bound_host or "0.0.0.0")
    everywhere = any(ip.is_unspecified for ip in bound)
    machine = _addresses(socket.gethostname()) if everywhere else set()
    for ip in _addresses(target.hostname):
        if ip in bound or (everywhere and (ip.is_loopback or ip.is_unspecified or ip in machine)):
            break
        if ip.is_unspecified and any(b.is_loopback for b in bound):  # connecting to 0.0.0.0 reaches localhost
            break
    else:
        return None
    return ConfigError(
        "--forward-to",
        f"{forward_to} is this receiver itself (port {port}, path {path}): each request would be forwarded "
        "to itself over and over. Point --forward-to at your backend (another port, e.g. "
        "http://127.0.0.1:8000/webhook), or drop it to answer Meta here.",
    )


def tunnel_for(settings: Settings) -> TunnelProvider:
    """The provider the settings ask for (ngrok is imported only when used)."""
    if settings.tunnel == "ngrok":
        from wa_devtunnel.engine.tunnel.ngrok import NgrokTunnel

        return NgrokTunnel(
            settings.ngrok_authtoken,
            settings.ngrok_domain,
            settings.ngrok_path,
            start_deadline_s=settings.tunnel_timeout_s,
            upstream_host=settings.host,
        )
    if settings.tunnel == "cloudflared":
        from wa_devtunnel.engine.tunnel.cloudflared import CloudflaredTunnel

        return CloudflaredTunnel(
            settings.cloudflared_path, start_deadline_s=settings.tunnel_timeout_s, upstream_host=settings.host
        )
    return NoTunnel()


class WebhookService:
    """Starts and stops receiver and tunnel; front ends subscribe to `bus` and call the methods below."""

    def __init__(
        self,
        settings: Settings,
        bus: EventBus | None = None,
        tunnel: TunnelProvider | None = None,
        selftest_ssl: ssl.SSLContext | None = None,
        registrar: Registrar | None = None,
    ) -> None:
        self.settings = settings
        self.bus = bus or EventBus()
        self.redactor = Redactor.for_settings(settings)
        self.bus.set_redactor(self.redactor.event if self.redactor else None)
        self.tunnel = tunnel or tunnel_for(settings)
        self.selftest_ssl = selftest_ssl
        self.recorder: SessionRecorder | None = None
        self.forwarder: Forwarder | None = None
        self._runner: web.AppRunner | None = None
        self._app: web.Application | None = None
        self._tasks: set[asyncio.Task[None]] = set()
        self._probe: asyncio.Task[None] | None = None  # the self-test sent when the session dropped
        self.port = 0
        self.public_url: str | None = None
        self.callback_url = ""
        self.local_url = ""
        self.tunnel_state = "local-only"
        self.started: ReceiverStarted | None = None
        # Why the tunnel did not start (prepare's failure is kept for start to report, not retried).
        self._prepare_failure: TunnelError | None = None
        self._tunnel_failure: TunnelError | None = None
        # Where front ends attach (engine/channel); announced in the instance file with its secret.
        self.channel: ChannelAddress | None = None
        known_numbers = settings.accounts_by_phone_number_id()
        if known_numbers:  # the decoder flags unknown numbers only against configured ones
            self.bus.add_listener(UnknownNumberHints(self.bus, known_numbers))
        # Says when Meta's handshake reaches the public URL ("Verify and save", --register), or does not, and
        # when no webhook followed it.
        self.handshakes = HandshakeWatch(self.bus, self.tunnel.name, settings.quiet_after_register_s)
        self.bus.add_listener(self.handshakes.observe)
        self.registrar = registrar or registrar_for(settings)
        if self.registrar is not None:
            self.registrar.attach(self.bus, self.handshakes)

    async def prepare(self, progress: TextIO | None = None) -> None:
        """Slow one-time work before any UI exists (the ngrok download); failures surface at start."""
        try:
            await self.tunnel.prepare(progress or sys.stderr)
        except TunnelError as exc:  # said at start, without trying (downloading) a second time
            self._prepare_failure = exc

    async def start(self) -> ReceiverStarted:
        """Bind the receiver, open the tunnel (or explain why not), announce the callback URL."""
        left_behind = await asyncio.to_thread(clear_leftovers, self.settings.recordings_dir)
        if left_behind:  # before our tunnel opens: a stale agent would hold the ngrok session
            self.bus.publish(Notice("warning", left_behind, topic="leftovers"))
        await self._start_receiver()
        if self.tunnel.name != "none":
            await self._open_tunnel()
        failure = self._tunnel_failure
        settings = self.settings
        started = ReceiverStarted(
            callback_url=self.callback_url,
            local_url=self.local_url,
            verify_token=settings.verify_token,
            verify_token_generated=settings.verify_token_generated,
            recording_path=self.recorder.path if self.recorder else None,
            port=self.port,
            signatures_checked=bool(settings.signature_secrets()),
            tunnel_state=self.tunnel_state,
            public_url=self.public_url,
            forward_to=settings.forward_to,
            verify_token_source=settings.verify_token_source,
            verify_token_new=settings.verify_token_new,
            state_path=str(settings.state_path or ""),
            accounts=tuple((account.name, account.verify_token) for account in settings.accounts),
            accounts_file=str(settings.accounts_file) if settings.accounts and settings.accounts_file else "",
            tunnel_reason=failure_summary(failure) if failure is not None else "",
            tunnel_advice=failure.advice if failure is not None else "",
        )
        self.started = started
        self.bus.publish(started)
        if self.recorder is not None and self.recorder.directory_warning:
            self.bus.publish(Notice("warning", self.recorder.directory_warning, topic="recordings"))
        state_warning = self.settings.state_warning
        if state_warning:  # why the verify token is temporary, or what was fixed in the project state file
            self.bus.publish(Notice("warning", state_warning, topic="state"))
        self.announce_instance()
        if self.tunnel.name == "none" and self.settings.ngrok_authtoken is None:
            self.bus.publish(Notice("info", LOCAL_ONLY_HINT, topic="local-only"))
        if self.registrar is not None and not self.public_url:
            self.registrar.unavailable(self.tunnel_state, self.callback_url)
        if self.public_url:
            self._spawn(self._selftest())
        if self.tunnel.name != "none":
            self._spawn(self._watch_tunnel())
        return started

    async def _start_receiver(self) -> None:
        if self.settings.record:
            self.recorder = SessionRecorder(self.settings.recordings_dir, max_bytes=self.settings.max_session_bytes)
        if self.settings.forward_to:
            self.forwarder = Forwarder(self.settings.forward_to, self.settings.forward_timeout_s)
        self._app = create_receiver_app(receiver_config(self.settings), self.bus, self.recorder, self.forwarder)
        # Timeouts, a connection cap and recorded rejections: the URL is public.
        limits = ServerLimits.from_settings(self.settings)
        self._runner = ReceiverRunner(self._app, limits, self.bus, forwarding=self.forwarder is not None)
        await self._runner.setup()
        site = web.TCPSite(self._runner, self.settings.host, self.settings.port, backlog=LISTEN_BACKLOG)
        try:
            await site.start()
        except OSError as exc:
            await self._cleanup()  # stop listening (a session file exists only from its first record)
            raise OSError(
                exc.errno,
                f"cannot listen on {self.settings.host}:{self.settings.port}: address already in use or "
                "not available (is another wa-devtunnel running? use --port 0 for any free port)",
            ) from exc
        addresses = self._runner.addresses
        self.port = addresses[0][1] if addresses else self.settings.port
        self.local_url = replace(self.settings, port=self.port).local_callback_url
        self.callback_url = self.local_url
        refusal = register_refusal(self.settings, self.tunnel.name, self.local_url)
        if refusal is None and self.settings.forward_to:  # the real port is known only now (--port 0)
            refusal = await asyncio.to_thread(
                forward_loop_error, self.settings.forward_to, self.settings.host, self.port, self.settings.path
            )
        if refusal is not None:  # a configuration error: nothing answered, nothing left behind
            await self._cleanup()  # stop listening (a session file exists only from its first record)
            raise refusal

    def _set_public_url(self, public_url: str | None) -> None:
        self.public_url = public_url.rstrip("/") if public_url else None
        self.callback_url = f"{self.public_url}{self.settings.path}" if self.public_url else self.local_url
        if self.public_url:
            self.handshakes.expect(self.callback_url)

    def announce_instance(self) -> None:
        """(Re)write the instance file, so other commands (replay, trigger, meta, watch) find this engine."""
        instance = RunningInstance(
            pid=os.getpid(),
            local_url=self.local_url,
            callback_url=self.callback_url,
            public_url=self.public_url,
            forward_to=self.settings.forward_to,
            recording=str(self.recorder.path) if self.recorder else None,
            origin_key=self.origin_key,
            identity=process_identity(os.getpid()) or "",
            agent=self.tunnel.footprint(),
            channel=str(self.channel.socket) if self.channel else None,
            channel_secret=self.channel.secret if self.channel else None,
        )
        with contextlib.suppress(OSError):
            write_instance(self.settings.recordings_dir, instance)

    def _publish_tunnel(self, state: str, reason: str = "", advice: str = "") -> None:
        if state == "up" and self.local_url:
            self.announce_instance()
        self.tunnel_state = state
        self.bus.publish(TunnelChanged(state, self.tunnel.name, self.public_url, self.callback_url, reason, advice))

    async def _open_tunnel(self) -> None:
        self._publish_tunnel("starting")
        try:
            if self._prepare_failure is not None:
                raise self._prepare_failure
            await self.tunnel.prepare(sys.stderr)
            self._set_public_url(await self.tunnel.start(self.port))
        except TunnelError as exc:
            self._set_public_url(None)
            self._tunnel_failure = exc
            # `reason` keeps the whole text (summary, then advice) for older readers; `advice` is the fix alone.
            self._publish_tunnel("failed", str(exc), exc.advice)
            self.bus.publish(Notice("error", f"Tunnel failed: {exc}\n  Continuing local-only."))
            return
        self._publish_tunnel("up")

    def _spawn(self, coroutine: object) -> None:
        task = asyncio.ensure_future(coroutine)  # type: ignore[arg-type]
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    async def _selftest(self, register: bool = True) -> None:
        loop = asyncio.get_running_loop()
        settle_until = loop.time() + self.tunnel.settle_s
        while True:
            result = await run_selftest(
                self.callback_url, self.settings.verify_token, ssl_context=self.selftest_ssl, origin_key=self.origin_key
            )
            if result.ok or result.reached or loop.time() + SETTLE_RETRY_S > settle_until:
                break
            await asyncio.sleep(SETTLE_RETRY_S)  # a fresh hostname not resolvable yet, or its edge not ready
        self.bus.publish(SelfTestFinished(result.ok, result.url, result.elapsed_ms, result.detail))
        if register and self.registrar is not None:  # after the self-test: Meta's own handshake comes next
            await self.registrar.ensure(self.callback_url)

    async def _watch_tunnel(self) -> None:
        """Every second: restart a dead agent, show a dropped session until it is back, follow a new URL."""
        loop = asyncio.get_running_loop()
        next_check, recheck = loop.time() + CHECK_INTERVAL_S, False
        while True:
            await asyncio.sleep(WATCH_INTERVAL_S)
            if self.tunnel_state == "failed":
                continue
            health = self.tunnel.health()
            if health.alive and health.session_up and (recheck or loop.time() >= next_check):
                next_check = loop.time() + CHECK_INTERVAL_S
                health = await self._cross_check(health)
                recheck = not (health.alive and health.session_up)
            if not health.alive:
                recheck = False
                await self._restart_tunnel(health)
            elif not health.session_up:
                self._session_down(health)
            elif self.tunnel_state == "down":
                self._session_back(health)
            elif health.public_url and health.public_url.rstrip("/") != self.public_url:
                self._set_public_url(health.public_url)
                self._publish_tunnel("up", URL_CHANGED)
                self._spawn(self._selftest())

    async def _cross_check(self, health: TunnelHealth) -> TunnelHealth:
        """The provider's slower check (its agent API, say); when the check itself fails, `health` stands."""
        try:
            return await asyncio.wait_for(self.tunnel.check(), CHECK_TIMEOUT_S)
        except Exception:  # a broken cross-check must not end the watching
            return health

    def _session_down(self, health: TunnelHealth) -> None:
        """Once per episode: the agent runs but its session is down; it reconnects by itself, so no restart."""
        if self.tunnel_state == "down":
            return
        reason = health.detail or "the agent lost its session and is reconnecting"
        self._publish_tunnel("down", reason)
        self.bus.publish(Notice("error", tunnel_down_text(self.tunnel.name, reason), topic="tunnel-down"))
        # The light probe: what Meta gets now (ngrok's edge names it, e.g. ERR_NGROK_3200), no registration.
        self._probe = asyncio.create_task(self._selftest(register=False))
        self._tasks.add(self._probe)
        self._probe.add_done_callback(self._tasks.discard)

    def _end_probe(self) -> None:
        """A probe still waiting on a dead URL would report after the fresh self-test: its answer is stale."""
        if self._probe is not None:
            self._probe.cancel()
            self._probe = None

    def _session_back(self, health: TunnelHealth) -> None:
        """The session is back: up (on the same URL, or a new one to paste into Meta) and a fresh self-test."""
        self._end_probe()
        url = health.public_url.rstrip("/") if health.public_url else self.public_url
        changed = url != self.public_url
        if changed:
            self._set_public_url(url)
        self._publish_tunnel("up", URL_CHANGED if changed else "reconnected")
        self._spawn(self._selftest())

    async def _restart_tunnel(self, health: TunnelHealth) -> None:
        """The agent is gone (or lost our endpoint): say so loudly, then stop and start it with backoff."""
        self._end_probe()
        previous = self.public_url
        self._publish_tunnel("reconnecting", health.detail)
        self.bus.publish(
            Notice(
                "error",
                f"Tunnel lost: {health.detail}. Meta's deliveries fail "
                "until it is back (Meta retries for up to 7 days).",
                topic="tunnel-down",  # headless already printed it as TUNNEL DOWN
            )
        )
        backoff = 1.0
        while True:
            await self.tunnel.stop()
            try:
                self._set_public_url(await self.tunnel.start(self.port))
                break
            except TunnelError as exc:
                self._publish_tunnel("reconnecting", f"{exc.summary}; retrying in {backoff:.0f} s")
                await asyncio.sleep(backoff)
                backoff = min(backoff * 2, MAX_BACKOFF_S)
        changed = self.public_url != previous
        self._publish_tunnel("up", URL_CHANGED if changed else "reconnected")
        self._spawn(self._selftest())

    @property
    def origin_key(self) -> str | None:
        """The key our own requests carry so the receiver labels them (and nobody else's)."""
        return self._app[RECEIVER_STATE].config.origin_key if self._app else None

    @property
    def exchanges(self) -> int:
        """How many requests this session answered."""
        return self._app[RECEIVER_STATE].exchanges if self._app else 0

    @property
    def last_seq(self) -> int:
        """The seq of the last exchange answered (0 before the first): where a front end's stream takes over."""
        return self._app[RECEIVER_STATE].last_seq if self._app else 0

    # What front ends ask of the engine ----------------------------------------------------------

    async def send_sample(self) -> int:
        """POST a signed sample event to our own receiver; the origin key labels it (sample). Returns the status."""
        return await send_sample_event(self.local_url, self.settings.app_secret, origin_key=self.origin_key)

    async def replay_exchange(self, record: Mapping[str, Any], edited_body: bytes | None = None) -> ForwardResult:
        """Send a recorded exchange again through our receiver (recorded, forwarded); an edit is re-signed."""
        if record.get("kind") not in REPLAYABLE_KINDS:
            raise ReplayError(
                f"only events and handshakes can be replayed, not a {str(record.get('kind', 'record'))[:40]!r} record"
            )
        return await replay_through_receiver(
            record, self.settings, self.local_url, edited_body, origin_key=self.origin_key
        )

    def read_record(self, path: Path, offset: int) -> dict[str, Any] | None:
        """The whole record behind a view (front ends keep only views and a few records); safe from any thread."""
        return read_record_at(path, offset)

    def search_bodies(self, text: str) -> set[str]:
        """Ids of this session's exchanges whose body, path or diagnosis contains `text`, in every part of it."""
        return search_recordings(self.recorder.paths if self.recorder is not None else (), text)

    async def _cleanup(self) -> None:
        if self._runner is not None:
            await self._runner.cleanup()
            self._runner = None
        if self._app is not None:
            pending = self._app[RECEIVER_STATE].background
            if pending:  # --ack-first forwards still in flight: let them finish and be recorded
                await asyncio.wait(list(pending), timeout=self.settings.forward_timeout_s + 1)
        if self.forwarder is not None:
            await self.forwarder.close()
        if self.recorder is not None:
            self.recorder.close()

    async def stop(self) -> None:
        """Stop watching, close the tunnel (no orphan agent), stop the receiver, close the recording."""
        for task in list(self._tasks):
            task.cancel()
        for task in list(self._tasks):
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await task
        self.handshakes.close()
        if self.registrar is not None:  # before the tunnel goes: undo what Meta routes to it
            await self.registrar.close()
        await self.tunnel.stop()
        if self._runner is None:
            return
        remove_instance(self.settings.recordings_dir)
        exchanges = self.exchanges
        await self._cleanup()
        self.bus.publish(
            ReceiverStopped(
                recording_path=self.recorder.path if self.recorder else None,
                exchanges=exchanges,
                recording_parts=tuple(self.recorder.paths) if self.recorder else (),
            )
        )
