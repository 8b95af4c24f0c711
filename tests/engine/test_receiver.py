"""The receiver answers like a correct WhatsApp app and records every request, good or bad."""

from __future__ import annotations

import base64
import json
from typing import Any

import pytest

from tests.support.constants import APP_SECRET, VERIFY_TOKEN
from tests.support.meta_client import MetaLikeSender, meta_signature
from tests.support.receiver_harness import ReceiverHarness
from wa_devtunnel.engine.events import ExchangeRecorded
from wa_devtunnel.engine.recording import request_body, with_full_summary
from wa_devtunnel.rules.samples import payloads as samples

WEBHOOK = "/webhook/whatsapp"


async def test_handshake_echoes_challenge_verbatim_as_text_plain(receiver: ReceiverHarness) -> None:
    sender = MetaLikeSender(receiver.client.session, str(receiver.client.make_url(WEBHOOK)))
    result = await sender.handshake(VERIFY_TOKEN, challenge="1158201444")
    assert result.accepted, result
    (record,) = receiver.records()
    assert record["kind"] == "verify"
    assert record["verify"] == {"ok": True, "reason": ""}
    assert record["response"] == {"status": 200, "body": "1158201444"}
    assert VERIFY_TOKEN not in json.dumps(record)
    assert "hub.verify_token=REDACTED" in record["request"]["query"]


async def test_refused_handshake_is_403_with_diagnosis(receiver: ReceiverHarness) -> None:
    sender = MetaLikeSender(receiver.client.session, str(receiver.client.make_url(WEBHOOK)))
    result = await sender.handshake(VERIFY_TOKEN + " ")
    assert not result.accepted
    assert result.status == 403
    (record,) = receiver.records()
    assert record["verify"]["ok"] is False
    assert "whitespace" in record["verify"]["reason"]
    assert VERIFY_TOKEN not in json.dumps(record)


async def test_signed_event_is_200_decoded_and_byte_exact_on_disk(
    receiver: ReceiverHarness,
) -> None:
    body = samples.text_message_payload(text="Größe? 😮 https://shop.example/a/b")
    assert b"\\u00f6" in body and b"\\ud83d\\ude2e" in body and b"\\/" in body
    sender = MetaLikeSender(
        receiver.client.session, str(receiver.client.make_url(WEBHOOK)), APP_SECRET
    )
    assert await sender.deliver(body) == [200]
    (record,) = receiver.records()
    assert record["kind"] == "event"
    assert record["signature"] == "valid"
    stored = request_body(record["request"])
    assert stored == body
    assert (
        meta_signature(stored, APP_SECRET)
        == dict((k.lower(), v) for k, v in record["request"]["headers"])["x-hub-signature-256"]
    )
    assert record["summary"] == {"partial": True, "flags": []}  # the rest is derived data, decoded by readers
    full = with_full_summary(record)["summary"]
    assert full["fields"] == ["messages"]
    assert "text from 16505551234" in full["headline"]


async def test_event_published_to_subscribers(receiver: ReceiverHarness) -> None:
    subscription = receiver.bus.subscribe()
    body = samples.text_message_payload()
    await MetaLikeSender(
        receiver.client.session, str(receiver.client.make_url(WEBHOOK)), APP_SECRET
    ).deliver(body)
    event = await subscription.get()
    assert isinstance(event, ExchangeRecorded)
    assert event.view.kind == "event"
    assert event.view.signature == "valid"
    assert event.view.status == 200


async def test_invalid_signature_is_diagnosed_but_accepted_by_default(
    receiver: ReceiverHarness,
) -> None:
    body = samples.text_message_payload()
    sender = MetaLikeSender(
        receiver.client.session, str(receiver.client.make_url(WEBHOOK)), VERIFY_TOKEN
    )
    assert await sender.deliver(body) == [200]
    (record,) = receiver.records()
    assert record["signature"] == "invalid"
    assert "verify token" in record["signature_detail"]


@pytest.mark.parametrize(
    ("secret", "status", "verdict"), [(None, 401, "missing"), ("wrong", 403, "invalid")]
)
async def test_require_signature_refuses_like_a_strict_app(
    make_receiver: Any, secret: str | None, status: int, verdict: str
) -> None:
    harness = await make_receiver(require_signature=True)
    sender = MetaLikeSender(harness.client.session, str(harness.client.make_url(WEBHOOK)), secret)
    assert await sender.deliver(samples.text_message_payload(), attempts=1) == [status]
    (record,) = harness.records()
    assert record["signature"] == verdict
    assert record["response"]["status"] == status


async def test_dashboard_test_sample_is_labelled(receiver: ReceiverHarness) -> None:
    body = samples.dashboard_test_sample()
    await MetaLikeSender(
        receiver.client.session, str(receiver.client.make_url(WEBHOOK)), APP_SECRET
    ).deliver(body)
    (record,) = receiver.records()
    assert "dashboard-test" in with_full_summary(record)["summary"]["flags"]


async def test_redelivery_is_flagged_duplicate(receiver: ReceiverHarness) -> None:
    body = samples.text_message_payload()
    sender = MetaLikeSender(
        receiver.client.session, str(receiver.client.make_url(WEBHOOK)), APP_SECRET
    )
    await sender.deliver(body)
    await sender.deliver(body)
    first, second = receiver.records()
    assert "duplicate" not in first["summary"]["flags"]
    assert "duplicate" in second["summary"]["flags"]
    assert [first["seq"], second["seq"]] == [1, 2]


async def test_unknown_phone_number_id_is_flagged(make_receiver: Any) -> None:
    harness = await make_receiver(accounts_by_phone_number_id={"999": "shop"})
    await MetaLikeSender(
        harness.client.session, str(harness.client.make_url(WEBHOOK)), APP_SECRET
    ).deliver(samples.text_message_payload())
    (record,) = harness.records()
    assert "unknown-phone-number-id" in record["summary"]["flags"]


async def test_event_labelled_with_its_account(make_receiver: Any) -> None:
    harness = await make_receiver(accounts_by_phone_number_id={"106540352242922": "shop"})
    await MetaLikeSender(
        harness.client.session, str(harness.client.make_url(WEBHOOK)), APP_SECRET
    ).deliver(samples.text_message_payload())
    (record,) = harness.records()
    assert record["account"] == "shop"


BAD_BODIES: list[tuple[str, bytes, int]] = [
    ("empty", b"", 400),
    ("invalid json", b'{"object": "whatsapp_business_account", ', 400),
    ("not utf-8", b"\xff\xfe{\x00\x80", 400),
    ("json array", b"[1, 2, 3]", 400),
    ("json string", b'"hello"', 400),
    ("wrong object", b'{"object":"page","entry":[]}', 200),
    ("no entry", b'{"object":"whatsapp_business_account"}', 200),
]


@pytest.mark.parametrize(("name", "body", "status"), BAD_BODIES, ids=[b[0] for b in BAD_BODIES])
async def test_bad_bodies_get_a_clear_status_and_are_recorded(
    receiver: ReceiverHarness, name: str, body: bytes, status: int
) -> None:
    response = await receiver.client.post(WEBHOOK, data=body)
    assert response.status == status
    text = await response.text()
    (record,) = receiver.records()
    assert record["response"] == {"status": status, "body": text}
    assert request_body(record["request"]) == body
    if status == 400:
        assert record["summary"]["ok"] is False
    if name == "not utf-8":
        assert base64.b64decode(record["request"]["body_b64"]) == body


async def test_missing_headers_still_recorded(receiver: ReceiverHarness) -> None:
    body = samples.text_message_payload()
    response = await receiver.client.post(
        WEBHOOK, data=body, skip_auto_headers=["Content-Type", "User-Agent"]
    )
    assert response.status == 200
    (record,) = receiver.records()
    assert record["signature"] == "missing"


async def test_huge_body_is_413_and_still_recorded(make_receiver: Any) -> None:
    harness = await make_receiver(max_body_bytes=1000)
    body = b'{"object":"whatsapp_business_account","entry":[' + b" " * 5000 + b"]}"
    response = await harness.client.post(WEBHOOK, data=body)
    assert response.status == 413
    (record,) = harness.records()
    assert record["response"]["status"] == 413
    assert record["request_body_truncated"] is True
    assert record["request_body_size"] == len(body)
    assert body.startswith(request_body(record["request"]))


async def test_huge_chunked_body_is_413(make_receiver: Any) -> None:
    harness = await make_receiver(max_body_bytes=1000)

    async def chunks() -> Any:
        for _ in range(10):
            yield b"x" * 500

    response = await harness.client.post(WEBHOOK, data=chunks())
    assert response.status == 413
    (record,) = harness.records()
    assert record["request_body_truncated"] is True


async def test_default_limit_accepts_a_3mb_meta_payload(receiver: ReceiverHarness) -> None:
    padding = "x" * (3 * 1024 * 1024 - 400)
    body = samples.text_message_payload(text=padding)
    sender = MetaLikeSender(
        receiver.client.session, str(receiver.client.make_url(WEBHOOK)), APP_SECRET
    )
    assert await sender.deliver(body) == [200]
    (record,) = receiver.records()
    assert request_body(record["request"]) == body


async def test_duplicate_query_parameters_refused_and_recorded(receiver: ReceiverHarness) -> None:
    query = (
        f"hub.mode=subscribe&hub.challenge=1&hub.verify_token={VERIFY_TOKEN}&hub.verify_token=other"
    )
    response = await receiver.client.get(f"{WEBHOOK}?{query}")
    assert response.status == 403
    (record,) = receiver.records()
    assert "duplicate" in record["verify"]["reason"]
    assert VERIFY_TOKEN not in record["request"]["query"]


async def test_other_paths_and_methods_are_recorded_as_other(receiver: ReceiverHarness) -> None:
    scan = await receiver.client.get("/wp-login.php?x=1")
    assert scan.status == 404
    assert await scan.text() == "Not Found"  # a scanner learns nothing, not even the webhook path
    put = await receiver.client.put(WEBHOOK, data=b"{}")
    assert put.status == 405
    assert put.headers["Allow"] == "GET, POST"
    assert await put.text() == "Method Not Allowed"
    first, second = receiver.records()
    assert first["reason"] == "not the webhook path (/webhook/whatsapp)"
    assert second["reason"].startswith("method PUT not allowed")
    assert (first["kind"], first["request"]["path"], first["request"]["query"]) == (
        "other",
        "/wp-login.php",
        "x=1",
    )
    assert (second["kind"], second["response"]["status"]) == ("other", 405)
    assert request_body(second["request"]) == b"{}"


async def test_trailing_slash_is_the_same_webhook(receiver: ReceiverHarness) -> None:
    response = await receiver.client.get(
        f"{WEBHOOK}/?hub.mode=subscribe&hub.challenge=42&hub.verify_token={VERIFY_TOKEN}"
    )
    assert (response.status, await response.text()) == (200, "42")


async def test_credentials_in_headers_are_redacted(receiver: ReceiverHarness) -> None:
    await receiver.client.post(
        WEBHOOK, data=samples.text_message_payload(), headers={"Authorization": "Bearer EAAGsecret"}
    )
    (record,) = receiver.records()
    assert "EAAGsecret" not in json.dumps(record)


async def test_selftest_origin_is_marked(receiver: ReceiverHarness) -> None:
    await receiver.client.get(
        f"{WEBHOOK}?hub.mode=subscribe&hub.challenge=7&hub.verify_token={VERIFY_TOKEN}",
        headers=receiver.origin("selftest"),
    )
    (record,) = receiver.records()
    assert record["origin"] == "selftest"
    # The session key proves the label; it is never written down.
    assert ["X-WA-Devtunnel-Origin", "selftest"] in record["request"]["headers"]
    assert receiver.config.origin_key not in json.dumps(record)


@pytest.mark.parametrize(
    "claim", ["selftest", "replay", "sample", "replay; key=guess", "replay; key=", "sample; key=x; key=y"]
)
async def test_a_stranger_cannot_label_requests_as_ours(receiver: ReceiverHarness, claim: str) -> None:
    """The URL is public: an origin label without this session's key counts for nothing."""
    response = await receiver.client.post(WEBHOOK, data=b"{}", headers={"X-WA-Devtunnel-Origin": claim})
    assert response.status == 200
    through = {"X-WA-Devtunnel-Origin": claim, "X-Forwarded-For": "203.0.113.9", "User-Agent": "facebookexternalua"}
    assert (await receiver.client.post(WEBHOOK, data=b"{}", headers=through)).status == 200
    assert [r["origin"] for r in receiver.records()] == ["local", "meta"]


async def test_every_item_of_a_batch_is_in_the_summary(receiver: ReceiverHarness) -> None:
    body = samples.meta_json(
        samples.envelope(
            [
                samples.messages_change(messages=[samples.text_message(), samples.reaction()]),
                samples.messages_change(
                    statuses=[samples.status("read"), samples.status("failed", error_code=131049)]
                ),
            ]
        )
    )
    await MetaLikeSender(
        receiver.client.session, str(receiver.client.make_url(WEBHOOK)), APP_SECRET
    ).deliver(body)
    (record,) = receiver.records()
    summary: dict[str, Any] = with_full_summary(record)["summary"]
    assert len(summary["items"]) == 4
    assert "batch" in summary["flags"]
    assert summary["headline"].startswith("batch: 2 messages, 2 statuses")
