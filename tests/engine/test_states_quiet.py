"""No webhook from Meta after its handshake: a lasting state (WebhookQuiet), said once, cleared by Meta's next event."""

from __future__ import annotations

import asyncio
from pathlib import Path

from tests.support.constants import VERIFY_TOKEN
from tests.support.fake_graph import PHONE_NUMBER_ID
from wa_devtunnel.engine.events import EventBus, ExchangeRecorded, Notice, RegistrationChanged, WebhookQuiet
from wa_devtunnel.engine.http_client import Failure, RequestFailure
from wa_devtunnel.engine.meta.errors import GraphUnreachable
from wa_devtunnel.engine.meta.handshake_watch import HandshakeWatch
from wa_devtunnel.engine.meta.registration import Registrar
from wa_devtunnel.settings import load_settings

URL = "https://dev-domain.ngrok-free.app/webhook/whatsapp"
QUIET_S = 0.1


def verify(origin: str = "meta", ok: bool = True) -> ExchangeRecorded:
    record = {"id": "v", "seq": 1, "kind": "verify", "origin": origin, "verify": {"ok": ok, "reason": ""}}
    return ExchangeRecorded(None, record)


def event(origin: str = "meta") -> ExchangeRecorded:
    return ExchangeRecorded(None, {"id": "e", "seq": 2, "kind": "event", "origin": origin})


def watching(quiet_after_s: float = QUIET_S) -> tuple[EventBus, HandshakeWatch, list[WebhookQuiet]]:
    bus = EventBus()
    watch = HandshakeWatch(bus, "ngrok", quiet_after_s)
    bus.add_listener(watch.observe)
    said: list[WebhookQuiet] = []
    bus.add_listener(lambda e: said.append(e) if isinstance(e, WebhookQuiet) else None)
    watch.expect(URL)
    return bus, watch, said


async def until(condition: object, timeout: float = 5.0) -> None:
    async def wait() -> None:
        while not condition():  # type: ignore[operator]
            await asyncio.sleep(0.01)

    await asyncio.wait_for(wait(), timeout)


async def test_no_webhook_after_metas_handshake_is_a_lasting_state_cleared_by_metas_next_event() -> None:
    bus, watch, said = watching()
    bus.publish(verify())
    await until(lambda: said)
    [quiet] = said
    assert (quiet.quiet, quiet.seconds, quiet.callback_url, quiet.since) == (True, QUIET_S, URL, "handshake")
    assert quiet.hint.startswith(f"No webhook from Meta in {QUIET_S:g} s since its handshake on {URL}. Check: ")
    assert "field `messages` subscribed" in quiet.hint
    for ours in ("selftest", "sample", "replay", "local", "other"):  # nobody else's request ends it
        bus.publish(event(ours))
    await asyncio.sleep(QUIET_S * 2)
    assert len(said) == 1, "said once, not again every period"
    bus.publish(event("meta"))
    assert [q.quiet for q in said] == [True, False]
    assert said[1].callback_url == URL
    bus.publish(event("meta"))
    assert len(said) == 2, "cleared once"
    watch.close()


async def test_an_event_in_time_says_nothing_and_a_failed_handshake_starts_no_wait() -> None:
    bus, watch, said = watching()
    bus.publish(verify())
    bus.publish(event())
    bus.publish(verify(ok=False))
    await asyncio.sleep(QUIET_S * 3)
    assert said == []
    watch.close()


async def test_zero_turns_it_off_and_close_cancels_a_pending_wait() -> None:
    bus, watch, said = watching(quiet_after_s=0)
    bus.publish(verify())
    await asyncio.sleep(QUIET_S * 2)
    assert said == []
    bus, watch, said = watching()
    bus.publish(verify())
    watch.close()  # the engine stops before the wait is over
    await asyncio.sleep(QUIET_S * 3)
    assert said == []


class StubGraph:
    """A phone-scope registration Meta accepts; its handshake arrives during the call, as Meta's does."""

    def __init__(self, bus: EventBus) -> None:
        self.bus = bus

    async def __aenter__(self) -> StubGraph:
        return self

    async def __aexit__(self, *exc: object) -> None:
        return None

    async def phone_webhook_configuration(self, target: str) -> object:
        raise OSError("not reachable")  # reading the old routing fails: registering goes on ("was: unknown")

    async def set_phone_override(self, target: str, url: str, token: str) -> None:
        self.bus.publish(verify())


async def test_after_a_registration_both_waits_say_it_once(tmp_path: Path) -> None:
    settings = load_settings(
        {"recordings_dir": str(tmp_path / "rec"), "register": "phone"},
        environ={
            "WHATSAPP_VERIFY_TOKEN": VERIFY_TOKEN,
            "WHATSAPP_ACCESS_TOKEN": "EAAGstubToken0123456789",
            "WHATSAPP_PHONE_NUMBER_ID": PHONE_NUMBER_ID,
        },
        cwd=tmp_path,
    )
    bus, watch, said = watching()
    registrar = Registrar(
        settings,
        "phone",
        graph_factory=lambda: StubGraph(bus),  # type: ignore[arg-type,return-value]
        quiet_after_s=QUIET_S,
        handshake_wait_s=QUIET_S,
    )
    registrar.attach(bus, watch)
    states: list[RegistrationChanged] = []
    bus.add_listener(lambda e: states.append(e) if isinstance(e, RegistrationChanged) else None)
    await registrar.ensure(URL)
    assert [(s.state, s.previous) for s in states] == [("registering", ""), ("registered", "unknown")]
    assert registrar._quiet is not None
    await asyncio.wait_for(registrar._quiet, 5)
    await asyncio.sleep(QUIET_S * 2)
    assert len(said) == 1 and said[0].quiet, said  # the handshake's wait and the registration's: one state
    assert said[0].since in ("handshake", "registration")
    bus.publish(event())
    assert [q.quiet for q in said] == [True, False]
    watch.close()


class UnreachableGraph(StubGraph):
    """Meta not reachable at all: no answer is not a refusal."""

    async def set_phone_override(self, target: str, url: str, token: str) -> None:
        raise GraphUnreachable("graph.facebook.com", RequestFailure(Failure.UNREACHABLE, "Name or service not known"))


async def test_a_registration_meta_never_answered_is_not_called_a_refusal(tmp_path: Path) -> None:
    settings = load_settings(
        {"recordings_dir": str(tmp_path / "rec"), "register": "phone"},
        environ={
            "WHATSAPP_VERIFY_TOKEN": VERIFY_TOKEN,
            "WHATSAPP_ACCESS_TOKEN": "EAAGstubToken0123456789",
            "WHATSAPP_PHONE_NUMBER_ID": PHONE_NUMBER_ID,
        },
        cwd=tmp_path,
    )
    bus, watch, _ = watching()
    registrar = Registrar(settings, "phone", graph_factory=lambda: UnreachableGraph(bus))  # type: ignore[arg-type,return-value]
    registrar.attach(bus, watch)
    states: list[RegistrationChanged] = []
    bus.add_listener(lambda e: states.append(e) if isinstance(e, RegistrationChanged) else None)
    events = bus.subscribe()
    await registrar.ensure(URL)
    failed = states[-1]
    assert failed.state == "failed"
    assert failed.detail.startswith("could not reach graph.facebook.com: ") and "refused" not in failed.detail
    [notice] = [e for e in events.drain() if isinstance(e, Notice) and e.topic == "register"]
    assert notice.text.startswith("--register phone failed: could not reach graph.facebook.com")
    watch.close()
