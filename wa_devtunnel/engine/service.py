"""The service: wires settings, recorder and receiver, and publishes what happens to front ends."""

from __future__ import annotations

from dataclasses import replace

from aiohttp import web

from wa_devtunnel.engine.events import EventBus, Notice, ReceiverStarted, ReceiverStopped
from wa_devtunnel.engine.receiver import RECEIVER_STATE, ReceiverConfig, create_receiver_app
from wa_devtunnel.engine.recording import SessionRecorder
from wa_devtunnel.settings import Settings


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
    )


class WebhookService:
    """Starts and stops the receiver (and later the tunnel); front ends only subscribe to `bus`."""

    def __init__(self, settings: Settings, bus: EventBus | None = None) -> None:
        self.settings = settings
        self.bus = bus or EventBus()
        self.recorder: SessionRecorder | None = None
        self._runner: web.AppRunner | None = None
        self._app: web.Application | None = None
        self.port = 0
        self.callback_url = ""
        self.local_url = ""

    async def start(self) -> ReceiverStarted:
        """Open the recording, bind the port (0 = any free one) and announce the callback URL."""
        if self.settings.record:
            self.recorder = SessionRecorder(self.settings.recordings_dir)
        self._app = create_receiver_app(receiver_config(self.settings), self.bus, self.recorder)
        self._runner = web.AppRunner(self._app, access_log=None, handle_signals=False)
        await self._runner.setup()
        site = web.TCPSite(self._runner, self.settings.host, self.settings.port)
        try:
            await site.start()
        except OSError as exc:
            await self._cleanup()
            raise OSError(
                exc.errno,
                f"cannot listen on {self.settings.host}:{self.settings.port}: {exc.strerror}"
                " (is another wa-devtunnel running? use --port 0 for any free port)",
            ) from exc
        addresses = self._runner.addresses
        self.port = addresses[0][1] if addresses else self.settings.port
        self.local_url = replace(self.settings, port=self.port).local_callback_url
        self.callback_url = self.local_url
        started = ReceiverStarted(
            callback_url=self.callback_url,
            local_url=self.local_url,
            verify_token=self.settings.verify_token,
            verify_token_generated=self.settings.verify_token_generated,
            recording_path=self.recorder.path if self.recorder else None,
            port=self.port,
        )
        self.bus.publish(started)
        if self.settings.tunnel == "none" and self.settings.ngrok_authtoken is None:
            self.bus.publish(
                Notice(
                    "info",
                    "Local only: Meta cannot reach this URL. Set NGROK_AUTHTOKEN "
                    "(https://dashboard.ngrok.com/get-started/your-authtoken) for a public HTTPS URL.",
                )
            )
        return started

    @property
    def exchanges(self) -> int:
        """How many requests this session answered."""
        return self._app[RECEIVER_STATE].exchanges if self._app else 0

    async def _cleanup(self) -> None:
        if self._runner is not None:
            await self._runner.cleanup()
            self._runner = None
        if self.recorder is not None:
            self.recorder.close()

    async def stop(self) -> None:
        """Stop accepting requests, close the recording and say so."""
        if self._runner is None:
            return
        exchanges = self.exchanges
        await self._cleanup()
        self.bus.publish(
            ReceiverStopped(
                recording_path=self.recorder.path if self.recorder else None,
                exchanges=exchanges,
            )
        )
