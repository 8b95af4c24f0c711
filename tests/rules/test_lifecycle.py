"""The lifecycle book joins Meta's statuses to the message they report on, as Meta sends them: out of order,
repeated, skipped, with pricing, callback data and errors; and keeps each contact's thread, bounded."""

from __future__ import annotations

import json
from datetime import UTC
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from wa_devtunnel.rules.decode.payload import decode_payload
from wa_devtunnel.rules.lifecycle import (
    LifecycleBook,
    TrackedMessage,
    chain_text,
    elapsed,
    failure_text,
    pricing_text,
    status_note,
    thread_line,
)
from wa_devtunnel.rules.untrusted import visible

USER, OTHER = "16505551234", "447700900123"
BUSINESS = "15550783881"
# Our own wamids: same user prefix (the user's number), distinct tails.
WAMID_A = "wamid.HBgLMTY1MDU1NTEyMzQVAgARGBI0QTg5RjJDMUQ3RTZCNTA5QjMA"
WAMID_B = "wamid.HBgLMTY1MDU1NTEyMzQVAgARGBJDMDhFNzQ2QjE1RkEyOTlEMjAA"
WAMID_IN = "wamid.HBgLMTY1MDU1NTEyMzQVAgASGBQzRUIwQjdDNTlBNEY2RDgyMUU3NQA="
GROUP = "120363041234567890"
T0 = 1796637601  # 2026-12-07 10:00:01 UTC


def status(name: str, wamid: str = WAMID_A, at: int = T0, recipient: str = USER, **extra: Any) -> dict[str, Any]:
    """A statuses[] item as Meta sends it; `sent` carries conversation and pricing."""
    item: dict[str, Any] = {"id": wamid, "status": name, "timestamp": str(at), "recipient_id": recipient}
    if name == "sent":
        item["conversation"] = {
            "id": "b8e1c0d2a7f34e5c9d6b0a1f2e3c4d5a",
            "expiration_timestamp": str(at + 86400),
            "origin": {"type": "utility"},
        }
        item["pricing"] = {"billable": True, "pricing_model": "PMP", "category": "utility", "type": "regular"}
    item.update(extra)
    return item


def text_in(text: str, wamid: str = WAMID_IN, sender: str = USER, at: int = T0, **extra: Any) -> dict[str, Any]:
    return {"from": sender, "id": wamid, "timestamp": str(at), "type": "text", "text": {"body": text}, **extra}


def body(statuses: list[dict[str, Any]] = (), messages: list[dict[str, Any]] = ()) -> bytes:  # type: ignore[assignment]
    value: dict[str, Any] = {
        "messaging_product": "whatsapp",
        "metadata": {"display_phone_number": BUSINESS, "phone_number_id": "106540352242922"},
    }
    if messages:
        value["contacts"] = [{"profile": {"name": "Sheena"}, "wa_id": m["from"]} for m in messages]
        value["messages"] = list(messages)
    if statuses:
        value["statuses"] = list(statuses)
    change = {"value": value, "field": "messages"}
    return json.dumps({"object": "whatsapp_business_account", "entry": [{"id": "1", "changes": [change]}]}).encode()


@pytest.fixture(params=["decoded", "recorded"])
def form(request: pytest.FixtureRequest) -> str:
    """Live items (the decoder's NamedTuples) and recorded ones (the summary's dicts) join the same way."""
    return str(request.param)


def feed(book: LifecycleBook, form: str, payload: bytes, seq: int = 1, received_at: str = "") -> list[Any]:
    summary = decode_payload(payload)
    items = list(summary.items) if form == "decoded" else summary.to_dict()["items"]
    return book.add(items, received_at=received_at, seq=seq)


def one(book: LifecycleBook, wamid: str = WAMID_A) -> TrackedMessage:
    message = book.message(wamid)
    assert message is not None
    return message


def test_statuses_join_their_message_in_order_with_times(form: str) -> None:
    book = LifecycleBook()
    feed(book, form, body([status("sent")]), 1)
    feed(book, form, body([status("delivered", at=T0 + 2)]), 2)
    joined = feed(book, form, body([status("read", at=T0 + 40)]), 3)
    message = one(book)
    assert joined[0].message is message
    assert message.outgoing and message.direction == "to" and message.contact == USER
    assert [s.status for s in message.statuses] == ["sent", "delivered", "read"]
    assert message.current == "read"
    assert chain_text(message, UTC) == "sent 10:00:01 -> delivered +2s -> read +40s"
    assert status_note(message, UTC) == "(sent 10:00:01, delivered +2s, read +40s)"
    assert [m.wamid for m in book.outgoing()] == [WAMID_A]


def test_out_of_order_statuses_are_shown_in_meta_order_and_a_late_one_undoes_nothing(form: str) -> None:
    book = LifecycleBook()
    feed(book, form, body([status("read", at=T0 + 40)]), 1)
    assert one(book).current == "read"
    feed(book, form, body([status("delivered", at=T0 + 2), status("sent")]), 2)
    message = one(book)
    assert message.current == "read"
    assert chain_text(message, UTC) == "sent 10:00:01 -> delivered +2s -> read +40s"
    assert message.contact == USER and pricing_text(message) == "utility, billable, PMP regular"


def test_delivered_may_be_skipped(form: str) -> None:
    book = LifecycleBook()
    feed(book, form, body([status("sent"), status("read", at=T0 + 185)]))
    assert chain_text(one(book), UTC) == "sent 10:00:01 -> read +3m05s"


def test_retries_and_repeated_statuses_are_counted_not_repeated(form: str) -> None:
    book = LifecycleBook()
    payload = body([status("sent"), status("delivered", at=T0 + 2)])
    feed(book, form, payload, 1)
    feed(book, form, payload, 2)  # Meta's retry of the same delivery
    feed(book, form, body([status("delivered", at=T0 + 9)]), 3)  # a second delivered: still one step
    message = one(book)
    assert [s.status for s in message.statuses] == ["sent", "delivered"]
    assert message.statuses[1].timestamp == T0 + 2 and message.copies == 3
    assert chain_text(message, UTC) == "sent 10:00:01 -> delivered +2s"


def test_a_failure_keeps_meta_code_and_title(form: str) -> None:
    error = {
        "code": 131049,
        "title": "This message was not delivered to maintain healthy ecosystem engagement.",
        "message": "This message was not delivered to maintain healthy ecosystem engagement.",
        "error_data": {"details": "In order to maintain a healthy ecosystem engagement, the message failed."},
    }
    book = LifecycleBook()
    feed(book, form, body([status("sent")]), 1)
    feed(book, form, body([status("failed", at=T0 + 3, errors=[error])]), 2)
    message = one(book)
    assert message.current == "failed"
    assert chain_text(message, UTC) == "sent 10:00:01 -> failed +3s"
    assert failure_text(message) == "131049 This message was not delivered to maintain healthy ecosystem engagement."
    assert message.problems[0].code == 131049
    line = thread_line(message, UTC)
    assert "sent 10:00:01 -> failed +3s" in line and "[131049 This message" in line


def test_pricing_conversation_and_callback_data_survive_statuses_that_leave_them_out(form: str) -> None:
    book = LifecycleBook()
    feed(book, form, body([status("sent", biz_opaque_callback_data="order-42")]), 1)
    feed(book, form, body([status("read", at=T0 + 40)]), 2)
    message = one(book)
    assert message.biz_opaque_callback_data == "order-42"
    assert pricing_text(message) == "utility, billable, PMP regular"
    assert message.conversation_id == "b8e1c0d2a7f34e5c9d6b0a1f2e3c4d5a"
    assert message.conversation_expiration == str(T0 + 86400)
    assert message.conversation_category == "utility"
    assert status_note(message, UTC) == '(sent 10:00:01, read +40s; callback "order-42")'


def test_a_free_message_says_so() -> None:
    book = LifecycleBook()
    pricing = {"billable": False, "pricing_model": "PMP", "category": "service", "type": "free_customer_service"}
    feed(book, "decoded", body([status("delivered", pricing=pricing)]))
    assert pricing_text(one(book)) == "service, not billable, PMP free_customer_service"


def test_an_echo_is_outgoing_to_its_recipient_and_its_statuses_join_it() -> None:
    book = LifecycleBook()
    echo = decode_payload(body(messages=[text_in("On my way", wamid=WAMID_B, sender=BUSINESS)])).items[0]
    echo = echo._replace(direction="echo", recipient=USER)
    book.add([echo], seq=1)
    book.add([{"kind": "status", "status_id": WAMID_B, "status": "read", "recipient_id": USER, "timestamp": T0}])
    message = one(book, WAMID_B)
    assert message.direction == "echo" and message.outgoing and message.contact == USER
    assert message.text == "On my way" and message.current == "read"
    assert [m.wamid for m in book.thread(USER)] == [WAMID_B]
    assert thread_line(message, UTC).startswith("10:00:01 -> (echo) wamid.…")
    assert status_note(message, UTC) == '("On my way")'  # a lone status is the line itself


def test_statuses_first_then_the_echo_fills_the_message_in() -> None:
    book = LifecycleBook()
    book.add([{"kind": "status", "status_id": WAMID_B, "status": "sent", "recipient_id": USER, "timestamp": "1"}])
    book.add(
        [
            {
                "kind": "message",
                "message_id": WAMID_B,
                "direction": "echo",
                "recipient": USER,
                "type": "text",
                "text": "hello",
            }
        ]
    )
    message = one(book, WAMID_B)
    assert message.direction == "echo" and message.text == "hello" and book.outgoing_count == 1


def test_a_contact_thread_has_messages_in_and_out_in_time_order(form: str) -> None:
    book = LifecycleBook()
    feed(book, form, body(messages=[text_in("Is it in blue?", at=T0 - 60)]), 1)
    feed(book, form, body([status("sent"), status("sent", wamid=WAMID_B, recipient=OTHER)]), 2)
    feed(book, form, body(messages=[text_in("Great, thanks", wamid=WAMID_IN + "2", at=T0 + 30)]), 3)
    thread = book.thread(USER)
    assert [m.wamid for m in thread] == [WAMID_IN, WAMID_A, WAMID_IN + "2"]
    assert [m.outgoing for m in thread] == [False, True, False]
    assert thread_line(thread[0], UTC) == '09:59:01 <- text "Is it in blue?"'
    assert [m.wamid for m in book.thread(OTHER)] == [WAMID_B]
    assert [m.wamid for m in book.outgoing()] == [WAMID_B, WAMID_A]  # newest first
    assert book.threads() == 2 and book.outgoing_count == 2


def test_a_status_about_a_users_message_joins_nothing_of_ours(form: str) -> None:
    book = LifecycleBook()
    feed(book, form, body(messages=[text_in("hi")]))
    feed(book, form, body([status("read", wamid=WAMID_IN)]))
    assert one(book, WAMID_IN).statuses == [] and book.outgoing_count == 0


def test_group_messages_make_the_groups_thread_and_members_statuses_are_counted() -> None:
    book = LifecycleBook()
    book.add(
        [
            {
                "kind": "message",
                "message_id": WAMID_IN,
                "sender": USER,
                "group_id": GROUP,
                "type": "text",
                "text": "Who is in?",
                "timestamp": str(T0 - 10),
            }
        ]
    )
    for member, at in ((USER, 2), (OTHER, 5)):
        for name, delay in (("delivered", at), ("read", at + 40)):
            book.add(
                [
                    {
                        "kind": "status",
                        "status_id": WAMID_A,
                        "status": name,
                        "recipient_id": GROUP,
                        "group_id": GROUP,
                        "participant": member,
                        "timestamp": str(T0 + delay),
                    }
                ]
            )
    book.add(
        [
            {
                "kind": "status",
                "status_id": WAMID_A,
                "status": "sent",
                "recipient_id": GROUP,
                "group_id": GROUP,
                "timestamp": str(T0),
            }
        ]
    )
    message = one(book)
    assert chain_text(message, UTC) == "sent 10:00:01 -> delivered +2s x2 -> read +42s x2"
    assert [m.wamid for m in book.thread(f"group {GROUP}")] == [WAMID_IN, WAMID_A]
    assert book.thread(USER) == []


def test_memory_is_bounded_to_the_newest_messages() -> None:
    book = LifecycleBook(limit=3)
    for n in range(5):
        book.add([{"kind": "status", "status_id": f"wamid.{n}", "status": "sent", "recipient_id": f"1555000{n}"}])
    assert len(book) == 3 and book.dropped == 2 and book.outgoing_count == 3
    assert book.message("wamid.0") is None and book.message("wamid.4") is not None
    assert book.thread("15550000") == [] and book.threads() == 3
    assert [m.wamid for m in book.outgoing(limit=2)] == ["wamid.4", "wamid.3"]
    with pytest.raises(ValueError):
        LifecycleBook(limit=0)


def test_records_feed_the_book_from_their_summary_or_their_body() -> None:
    payload = body([status("sent", biz_opaque_callback_data="cb-1")])
    with_summary = {
        "kind": "event",
        "seq": 4,
        "received_at": "2026-12-07T10:00:02.5Z",
        "summary": decode_payload(payload).to_dict(),
    }
    without = {"kind": "event", "seq": 5, "request": {"body": body([status("read", at=T0 + 9)]).decode()}}
    book = LifecycleBook()
    assert len(book.add_record(with_summary)) == 1
    assert len(book.add_record(without)) == 1
    assert book.add_record({"kind": "verify", "seq": 6}) == []
    assert book.add_record({"kind": "event", "request": {"body_b64": "%%%"}}) == []
    message = one(book)
    assert message.biz_opaque_callback_data == "cb-1" and chain_text(message, UTC) == "sent 10:00:01 -> read +9s"
    assert message.statuses[0].received == T0 + 1.5 and message.statuses[0].seq == 4


def test_a_status_without_a_time_shows_when_it_reached_us() -> None:
    book = LifecycleBook()
    book.add([{"kind": "status", "status_id": WAMID_A, "status": "sent"}], received_at="2026-12-07T10:00:01Z")
    book.add([{"kind": "status", "status_id": WAMID_A, "status": "delivered"}], received_at="2026-12-07T10:00:04Z")
    assert chain_text(one(book), UTC) == "sent 10:00:01 -> delivered +3s"


@pytest.mark.parametrize(
    ("seconds", "text"),
    [(0, "+0s"), (59, "+59s"), (60, "+1m00s"), (185, "+3m05s"), (3720, "+1h02m"), (183600, "+2d03h"), (-4, "-4s")],
)
def test_elapsed(seconds: int, text: str) -> None:
    assert elapsed(seconds) == text


_HOSTILE = st.sampled_from(["[red]x[/red]", "\x1b[2J", "\u202e", "\n", "", "sent", "read", "failed"]) | st.text(
    max_size=6
)
_VALUE = _HOSTILE | st.integers() | st.none() | st.booleans() | st.lists(st.integers(), max_size=2)
_ITEM = st.fixed_dictionaries(
    {"kind": st.sampled_from(["message", "status", "field", "error"]) | _HOSTILE},
    optional={
        name: _VALUE
        for name in [
            "message_id",
            "status_id",
            "status",
            "sender",
            "recipient_id",
            "recipient",
            "direction",
            "group_id",
            "participant",
            "timestamp",
            "text",
            "type",
            "biz_opaque_callback_data",
            "billable",
            "pricing_category",
            "errors",
        ]
    },
)


@settings(max_examples=80, deadline=None)
@given(st.lists(_ITEM, max_size=12), st.text(max_size=30))
def test_any_item_shape_is_taken_and_rendered_as_one_safe_line(items: list[dict[str, Any]], received: str) -> None:
    book = LifecycleBook(limit=4)
    book.add(items, received_at=received, seq=1)
    for message in [m for out in book.outgoing() for m in book.thread(out.thread_key)]:
        for text in (
            chain_text(message, UTC),
            status_note(message, UTC),
            thread_line(message, UTC),
            pricing_text(message),
            failure_text(message),
        ):
            assert "\n" not in text and visible(text) == text
