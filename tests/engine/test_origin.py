"""Origins say what a request is: Meta through the tunnel, someone else through it, this machine, or our tools.

The labels come from two headers (the tunnel agent's forwarded header, Meta's user agent) and are labels
only: everything arrives on loopback from the agent, so a local client can forge both, and the signature
(not the label) is what proves an event is Meta's.
"""

from __future__ import annotations

import asyncio
import json
from pathlib import Path
from typing import Any

import aiohttp
import pytest
from hypothesis import given
from hypothesis import strategies as st
from multidict import CIMultiDict

from tests.support.constants import APP_SECRET, VERIFY_TOKEN
from tests.support.fake_cloudflared import FakeCloudflared
from tests.support.fake_ngrok import FakeNgrok
from tests.support.meta_client import MetaLikeSender
from tests.support.receiver_harness import ReceiverHarness
from wa_devtunnel.cli.terminal_text import line
from wa_devtunnel.engine.events import SelfTestFinished, Subscription
from wa_devtunnel.engine.exchange_view import view_from_record, view_from_values, view_values
from wa_devtunnel.engine.origin import (
    MAX_CLIENT_CHARS,
    META_HANDSHAKE_USER_AGENT,
    META_USER_AGENT,
    ORIGIN_HEADER,
    ORIGINS,
    origin_header,
    request_origin,
)
from wa_devtunnel.engine.recording import read_recording
from wa_devtunnel.engine.service import WebhookService
from wa_devtunnel.rules.samples import payloads as samples
from wa_devtunnel.settings import load_settings
from wa_devtunnel.tui.safe import data

KEY = "the-session-key"
WEBHOOK = "/webhook/whatsapp"
META_IP = "173.252.79.113"


def origin_of(*headers: tuple[str, str]) -> tuple[str, str | None]:
    return request_origin(CIMultiDict(headers), KEY)


# --- the labels, from the headers alone -----------------------------------------------------------


def test_metas_user_agents_through_ngrok_or_cloudflared_are_meta() -> None:
    ngrok = (("User-Agent", META_USER_AGENT), ("X-Forwarded-For", META_IP), ("X-Forwarded-Proto", "https"))
    assert origin_of(*ngrok) == ("meta", META_IP)
    # Meta's verification GET has its own user agent (observed: facebookplatform/1.0).
    cloudflare = (
        ("User-Agent", META_HANDSHAKE_USER_AGENT),
        ("Cf-Connecting-Ip", META_IP),
        ("X-Forwarded-For", f"10.0.0.1, {META_IP}"),
    )
    assert origin_of(*cloudflare) == ("meta", META_IP)
    assert origin_of(("User-Agent", "FacebookExternalUA"), ("X-Forwarded-For", META_IP)) == ("meta", META_IP)


@pytest.mark.parametrize("agent", ["curl/8.5.0", "Mozilla/5.0 (zgrab/0.x)", "", "facebookexternalhit/1.1"])
def test_anything_else_through_the_tunnel_is_other(agent: str) -> None:
    assert origin_of(("User-Agent", agent), ("X-Forwarded-For", "198.51.100.7")) == ("other", "198.51.100.7")
    assert origin_of(("X-Forwarded-For", "198.51.100.7")) == ("other", "198.51.100.7")  # no user agent at all


def test_without_a_forwarded_header_it_is_local_even_with_metas_user_agent() -> None:
    """A Meta-like sender on this machine (a test, `curl -A facebookexternalua`) is not Meta."""
    assert origin_of(("User-Agent", META_USER_AGENT)) == ("local", None)
    assert origin_of() == ("local", None)


def test_our_keyed_tools_keep_their_labels_wherever_they_come_from() -> None:
    for label in ("selftest", "sample", "replay"):
        keyed = (ORIGIN_HEADER, origin_header(label, KEY))
        assert origin_of(keyed) == (label, None)
        assert origin_of(keyed, ("User-Agent", META_USER_AGENT), ("X-Forwarded-For", META_IP)) == (label, META_IP)
    # A claim without the key counts for nothing: the request is labelled by what it is.
    assert origin_of((ORIGIN_HEADER, "replay"), ("X-Forwarded-For", META_IP)) == ("other", META_IP)
    assert origin_of((ORIGIN_HEADER, "replay; key=guess")) == ("local", None)


def test_the_client_is_the_hop_the_tunnel_added_not_the_senders_claim() -> None:
    """ngrok and cloudflared append the address they saw: what comes before it is the sender's own words."""
    assert origin_of(("X-Forwarded-For", "10.0.0.1, 203.0.113.5")) == ("other", "203.0.113.5")
    assert origin_of(("X-Forwarded-For", "10.0.0.1"), ("X-Forwarded-For", "203.0.113.5")) == ("other", "203.0.113.5")
    # cloudflared: Cloudflare appends the visitor to X-Forwarded-For and sets Cf-Connecting-Ip to the same.
    cloudflare = (("X-Forwarded-For", "10.0.0.1, 203.0.113.6"), ("Cf-Connecting-Ip", "203.0.113.6"))
    assert origin_of(*cloudflare) == ("other", "203.0.113.6")
    # Through ngrok a Cf-Connecting-Ip is the sender's own words: ngrok's X-Forwarded-For entry wins.
    assert origin_of(("Cf-Connecting-Ip", "6.6.6.6"), ("X-Forwarded-For", "203.0.113.5")) == ("other", "203.0.113.5")
    assert origin_of(("Cf-Connecting-Ip", "203.0.113.7")) == ("other", "203.0.113.7")
    assert origin_of(("X-Forwarded-For", " ")) == ("other", "")  # through a tunnel, address unknown


def test_every_label_is_one_origins_lists() -> None:
    assert set(ORIGINS) == {"meta", "other", "local", "selftest", "sample", "replay"}


@given(
    st.lists(
        st.tuples(st.sampled_from(["X-Forwarded-For", "Cf-Connecting-Ip", "User-Agent", ORIGIN_HEADER, "X"]), st.text())
    )
)
def test_any_headers_give_a_known_label_and_a_short_client(headers: list[tuple[str, str]]) -> None:
    label, client = request_origin(CIMultiDict(headers), KEY)
    assert label in ORIGINS
    assert client is None or len(client) <= MAX_CLIENT_CHARS


# --- through the receiver ------------------------------------------------------------------------


async def test_the_receiver_records_the_label_and_the_client_only_when_tunnelled(receiver: ReceiverHarness) -> None:
    url = str(receiver.client.make_url(WEBHOOK))
    sender = MetaLikeSender(receiver.client.session, url, APP_SECRET)
    await sender.deliver(samples.text_message_payload())  # Meta's headers, but straight from this machine
    forged = {"X-Forwarded-For": META_IP, "User-Agent": META_USER_AGENT}
    await receiver.client.post(WEBHOOK, data=samples.text_message_payload(), headers=forged)
    local, tunnelled = receiver.records()
    assert (local["origin"], "client" in local) == ("local", False)
    assert (tunnelled["origin"], tunnelled["client"], tunnelled["remote"]) == ("meta", META_IP, "127.0.0.1")
    # A label, never a proof: the forged request's signature is still checked and found missing.
    assert (local["signature"], tunnelled["signature"]) == ("valid", "missing")


async def test_a_label_never_lets_an_unsigned_event_through(make_receiver: Any) -> None:
    strict = await make_receiver(require_signature=True)
    forged = {"X-Forwarded-For": META_IP, "User-Agent": META_USER_AGENT}
    response = await strict.client.post(WEBHOOK, data=samples.text_message_payload(), headers=forged)
    assert response.status == 401
    assert strict.records()[0]["origin"] == "meta"


async def test_a_forged_client_address_is_recorded_as_data_and_cut(receiver: ReceiverHarness) -> None:
    """Request-derived text: markup, a C1 control and a bidi override reach a terminal escaped; it is capped."""
    hostile = "[bold red]\x9b31m\u202e<script>1.2.3.4 " + "9" * 200
    url = receiver.client.make_url("/")
    reader, writer = await asyncio.open_connection(url.host, url.port)
    head = f"GET /probe HTTP/1.1\r\nHost: x\r\nConnection: close\r\nUser-Agent: zgrab\r\nX-Forwarded-For: {hostile}\r\n"
    head += "\r\n"
    writer.write(head.encode("utf-8"))  # the HTTP parser refuses ASCII controls; these bytes pass it
    await writer.drain()
    assert (await reader.read()).startswith(b"HTTP/1.1 404 ")
    writer.close()
    await writer.wait_closed()
    (record,) = receiver.records()
    assert record["origin"] == "other"
    assert len(record["client"]) == MAX_CLIENT_CHARS and record["client"].startswith("[bold red]")
    view = view_from_record(record)
    assert view.client == record["client"]
    shown = line(view.client)
    assert "\x9b" not in shown and "\u202e" not in shown and "\\x9b" in shown
    assert data(view.client).plain == shown  # the TUI's Text: never parsed as markup
    assert data(view.client).spans == []


# --- the view front ends show --------------------------------------------------------------------


def test_the_view_has_the_client_and_older_records_read_as_before() -> None:
    record: dict[str, Any] = {"id": "a", "seq": 1, "kind": "event", "origin": "meta", "remote": "127.0.0.1"}
    assert view_from_record(record).client == "127.0.0.1"  # recordings before `client`: the socket peer
    assert view_from_record({**record, "client": META_IP}).client == META_IP
    assert view_from_record({"id": "b", "seq": 2}).client == ""
    assert view_from_record({**record, "client": ["not", "text"]}).client == "127.0.0.1"
    view = view_from_record({**record, "client": META_IP}, offset=7, recording=Path("s.jsonl"))
    assert view_from_values(json.loads(json.dumps(view_values(view)))) == view  # the channel's wire form


# --- end to end through the fake agents ----------------------------------------------------------


async def _selftest(events: Subscription) -> SelfTestFinished:
    async def wait() -> SelfTestFinished:
        while not isinstance(event := await events.get(), SelfTestFinished):
            pass
        return event

    return await asyncio.wait_for(wait(), 15)


async def test_through_ngrok_meta_and_a_scanner_are_told_apart(
    tunnelled_service: WebhookService, fake_ngrok: FakeNgrok
) -> None:
    url = tunnelled_service.callback_url
    async with fake_ngrok.client_session() as session:
        sender = MetaLikeSender(session, url, APP_SECRET)
        assert await sender.deliver(samples.text_message_payload()) == [200]
        async with session.get(url.replace("/webhook/whatsapp", "/.env"), headers={"User-Agent": "curl/8"}) as scan:
            assert scan.status == 404
    assert tunnelled_service.recorder is not None
    records = read_recording(tunnelled_service.recorder.path).records
    assert [(r["origin"], r.get("client")) for r in records] == [
        ("selftest", "127.0.0.1"),  # the fake edge sees this machine
        ("meta", "127.0.0.1"),
        ("other", "127.0.0.1"),
    ]


@pytest.mark.usefixtures("trycloudflare_dns")
async def test_through_cloudflared_the_connecting_ip_names_the_client(
    fake_cloudflared: FakeCloudflared, tmp_path: Path
) -> None:
    settings = load_settings(
        {"port": "0", "recordings_dir": str(tmp_path / "rec"), "tunnel": "cloudflared"},
        environ={
            "WHATSAPP_VERIFY_TOKEN": VERIFY_TOKEN,
            "WHATSAPP_APP_SECRET": APP_SECRET,
            "CLOUDFLARED_PATH": str(fake_cloudflared.path),
        },
        cwd=tmp_path,
    )
    service = WebhookService(settings, selftest_ssl=fake_cloudflared.ssl_context())
    events = service.bus.subscribe()
    started = await service.start()
    try:
        assert (await _selftest(events)).ok
        connector = aiohttp.TCPConnector(ssl=fake_cloudflared.ssl_context())
        async with aiohttp.ClientSession(connector=connector) as session:
            sender = MetaLikeSender(session, started.callback_url, APP_SECRET)
            assert await sender.deliver(samples.text_message_payload()) == [200]
    finally:
        await service.stop()
    records = read_recording(started.recording_path).records
    assert [(r["origin"], r.get("client")) for r in records] == [("selftest", "127.0.0.1"), ("meta", "127.0.0.1")]
