"""Scrubbing, payload by payload: calls, history, errors, groups, 2026 user ids, vCards, the business's side.

Each test reads like one thing a developer would check by hand in an exported fixture.
"""

from __future__ import annotations

import base64
import json
from pathlib import Path
from typing import Any

from tests.support.scrub_payloads import (
    Person,
    call_connect,
    contacts_card,
    group_participants,
    history_thread,
    roster,
)
from wa_devtunnel.engine.exchange_view import view_from_record
from wa_devtunnel.engine.export.writer import export_fixtures, prepare_out_dir
from wa_devtunnel.engine.replay.source import RecordedExchange
from wa_devtunnel.rules.samples import payloads as samples
from wa_devtunnel.rules.scrub.payload import Scrubber

SHEENA = Person(
    country="1",
    national="6505551234",
    name="Sheena Nelson",
    handle="sheena_n",
    email="sheena.nelson@example.net",
    ipv4="81.2.69.142",
    ipv6="2a00:1450:4001:82a::200e",
    user_id="US.13491208655302741918",
)


def _value(payload: dict[str, Any]) -> dict[str, Any]:
    return payload["entry"][0]["changes"][0]["value"]


def _scrub_all(*payloads: dict[str, Any], keep_text: bool = False) -> list[dict[str, Any]]:
    """Like an export: learn everyone first, then scrub each payload."""
    scrubber = Scrubber(keep_text=keep_text)
    for payload in payloads:
        scrubber.learn(payload)
    return [scrubber.scrub(payload, learned=True) for payload in payloads]


def _number_in(wa_id: str) -> str:
    raw = base64.b64decode(wa_id[6:] + "=" * (-len(wa_id[6:]) % 4))
    return raw[3 : 3 + raw[2]].decode()


def test_call_sdp_loses_the_number_and_addresses_but_keeps_its_shape() -> None:
    _, scrubbed = _scrub_all(roster([SHEENA]), call_connect(SHEENA, "e164"))
    call = _value(scrubbed)["calls"][0]
    fake = call["from"]
    sdp = call["session"]["sdp"]
    original = _value(call_connect(SHEENA, "e164"))["calls"][0]["session"]["sdp"]
    for secret in (SHEENA.number, SHEENA.ipv4, SHEENA.ipv6):
        assert secret not in sdp
    assert sdp.count("\r\n") == original.count("\r\n")
    assert [line[:2] for line in sdp.split("\r\n")] == [line[:2] for line in original.split("\r\n")]
    assert f"o={fake} 4611731400430051336 2 IN IP4 192.0.2.1" in sdp
    assert "c=IN IP4 192.0.2.1" in sdp and "2001:db8::1 3478 typ srflx raddr 0.0.0.0 rport 0" in sdp
    assert "a=fingerprint:sha-256 AB:CD:EF" in sdp and "a=rtpmap:111 opus/48000/2" in sdp
    assert call["id"].startswith("wacid.") and _number_in(call["id"]) == fake
    assert call["to"] == samples.DISPLAY_PHONE_NUMBER


def test_history_thread_id_is_the_customers_fake_number() -> None:
    first, scrubbed = _scrub_all(roster([SHEENA]), history_thread(SHEENA, "bracketed"), keep_text=True)
    fake = _value(first)["contacts"][0]["wa_id"]
    thread = _value(scrubbed)["history"][0]["threads"][0]
    assert thread["id"] == thread["messages"][0]["from"] == fake != SHEENA.number
    assert _number_in(thread["messages"][0]["id"]) == fake
    assert thread["messages"][0]["text"]["body"] == f"my number is ({fake[1:4]}) {fake[4:7]}-{fake[7:]}"


def test_error_details_keep_metas_words_and_lose_the_customer() -> None:
    status = samples.status("failed", recipient_id=SHEENA.number, error_code=131047)
    details = (
        "Message to +1 650-555-1234 or (650) 555 1234 failed at 2026-11-26 21:55:00 after 24 hours; "
        f"contact {SHEENA.name} <{SHEENA.email}> from {SHEENA.ipv4}, error 131047, ref #20261126"
    )
    status["errors"][0]["error_data"]["details"] = details
    first, scrubbed = _scrub_all(roster([SHEENA]), samples.envelope([samples.messages_change(statuses=[status])]))
    fake = _value(first)["contacts"][0]["wa_id"]
    error = _value(scrubbed)["statuses"][0]["errors"][0]
    assert error["title"] == samples.ERRORS[131047][0] and error["code"] == 131047
    assert error["error_data"]["details"] == (
        f"Message to +1 {fake[1:4]}-{fake[4:7]}-{fake[7:]} or ({fake[1:4]}) {fake[4:7]} {fake[7:]} failed at "
        "2026-11-26 21:55:00 after 24 hours; contact Customer 1 <person1@example.com> from 192.0.2.1, "
        "error 131047, ref #20261126"
    )


def test_group_participant_input_and_wa_id_are_one_fake() -> None:
    first, scrubbed = _scrub_all(roster([SHEENA]), group_participants(SHEENA, "spaced"))
    fake = _value(first)["contacts"][0]["wa_id"]
    participant = _value(scrubbed)["groups"][0]["added_participants"][0]
    assert participant == {"input": f"+1 {fake[1:4]} {fake[4:7]} {fake[7:]}", "wa_id": fake}


def test_business_scoped_user_ids_keep_their_shape_and_link_up() -> None:
    parent = "US.ENT.11815799212886844830"
    system = samples.system_message("User changed their user id", system_type="user_changed_user_id")
    system.pop("from", None)
    system["from_user_id"] = SHEENA.user_id
    system["system"].update({"user_id": SHEENA.user_id, "new_user_id": "US.99991208655302741918"})
    contact = samples.contact(SHEENA.name, None, user_id=SHEENA.user_id, username="@sheena_n")
    contact["parent_user_id"] = parent
    change = samples.messages_change([system], contacts=[contact])
    change["value"]["note"] = f"moved from {SHEENA.user_id} (parent {parent})"
    (scrubbed,) = _scrub_all(samples.envelope([change]))
    value = _value(scrubbed)
    user_id = value["contacts"][0]["user_id"]
    assert user_id != SHEENA.user_id and len(user_id) == len(SHEENA.user_id) and user_id[2] == "."
    assert value["messages"][0]["from_user_id"] == value["messages"][0]["system"]["user_id"] == user_id
    assert value["messages"][0]["system"]["new_user_id"] not in (user_id, "US.99991208655302741918")
    fake_parent = value["contacts"][0]["parent_user_id"]
    assert fake_parent[2:7] == ".ENT." or fake_parent.count(".") == 2
    assert value["note"] == f"moved from {user_id} (parent {fake_parent})"
    assert "sheena" not in json.dumps(scrubbed).lower()


def test_contact_cards_and_vcards_lose_names_numbers_and_addresses() -> None:
    first, scrubbed = _scrub_all(roster([SHEENA]), contacts_card(SHEENA, "e164"))
    fake = _value(first)["contacts"][0]["wa_id"]
    card = _value(scrubbed)["messages"][0]["contacts"][0]
    assert card["name"] == {"formatted_name": "Customer 1", "first_name": "Customer 2", "last_name": "Customer 3"}
    assert card["phones"] == [{"phone": f"+1 {fake[1:4]} {fake[4:7]} {fake[7:]}", "wa_id": fake, "type": "CELL"}]
    assert card["org"] == {"company": "Company 1", "title": "Title 1"}
    assert card["addresses"][0]["type"] == "HOME" and "Nelson" not in card["addresses"][0]["street"]
    assert card["vcard"] == (
        f"BEGIN:VCARD\r\nFN:Customer 1\r\nN:Customer 3;Customer 2;;;\r\nTEL;waid={fake}:+{fake}\r\n"
        "EMAIL:person1@example.com\r\nEND:VCARD"
    )


def test_the_business_keeps_its_own_number_and_ids_everywhere() -> None:
    business = samples.DISPLAY_PHONE_NUMBER
    status = samples.status("failed", recipient_id=SHEENA.number, error_code=131026)
    status["errors"][0]["error_data"]["details"] = (
        f"from +{business} (or {business[1:4]}-{business[4:7]}-{business[7:]})"
    )
    reply = samples.button_reply("Yes", reply_to=samples.REPLIED_WAMID, sender=SHEENA.number)
    payload = samples.envelope([samples.messages_change([reply], [status])])
    (scrubbed,) = _scrub_all(payload)
    value = _value(scrubbed)
    assert scrubbed["entry"][0]["id"] == samples.WABA_ID
    assert value["metadata"] == {"display_phone_number": business, "phone_number_id": samples.PHONE_NUMBER_ID}
    assert value["messages"][0]["context"]["from"] == business
    assert value["statuses"][0]["errors"][0]["error_data"]["details"] == status["errors"][0]["error_data"]["details"]


def test_numbers_that_are_not_people_stay() -> None:
    order = samples.order_message(sender=SHEENA.number)
    template = samples.template_status_update("order_update_2026", "REJECTED", reason="INCORRECT_CATEGORY")
    (scrubbed_order,) = _scrub_all(samples.envelope([samples.messages_change([order])]))
    (scrubbed_template,) = _scrub_all(samples.envelope([template]))
    assert _value(scrubbed_order)["messages"][0]["order"]["product_items"] == order["order"]["product_items"]
    assert _value(scrubbed_order)["messages"][0]["timestamp"] == order["timestamp"]
    assert _value(scrubbed_template) == _value(samples.envelope([template]))


def _exchange(session: str, seq: int, payload: dict[str, Any]) -> RecordedExchange:
    record = {"v": 1, "id": f"{seq:032x}", "seq": seq, "kind": "event", "request": {"method": "POST", "body": ""}}
    return RecordedExchange(Path(session), record, view_from_record(record), samples.meta_json(payload))


def test_export_finds_a_name_from_a_later_file_and_clears_the_manifest(tmp_path: Path) -> None:
    status = samples.status("failed", recipient_id=SHEENA.number, error_code=131026)
    status["errors"][0]["error_data"]["details"] = f"{SHEENA.name} blocked this business"
    earlier = samples.envelope([samples.messages_change(statuses=[status])])
    session = f"20261126-215500-{SHEENA.number}.jsonl"
    events = [_exchange(session, 1, earlier), _exchange(session, 2, roster([SHEENA]))]
    out = tmp_path / "fixtures"
    prepare_out_dir(out)
    result = export_fixtures(events, out, keep_text=True)
    everything = b"".join(path.read_bytes() for path in out.iterdir())
    assert SHEENA.name.encode() not in everything and SHEENA.number.encode() not in everything
    details = json.loads((out / "statuses.failed-131026.json").read_bytes())
    assert _value(details)["statuses"][0]["errors"][0]["error_data"]["details"] == "Customer 1 blocked this business"
    fake = _value(json.loads((out / "messages.text.json").read_bytes()))["contacts"][0]["wa_id"]
    assert [fixture.session for fixture in result.fixtures] == [f"20261126-215500-{fake}.jsonl"] * 2


def _arabic_indic(text: str) -> str:
    return text.translate(str.maketrans("0123456789", "".join(chr(0x660 + digit) for digit in range(10))))


def test_numbers_in_other_scripts_and_formats_are_found() -> None:
    arabic = _arabic_indic("00" + SHEENA.number)
    status = samples.status("failed", recipient_id=SHEENA.number, error_code=131026)
    status["errors"][0]["error_data"]["details"] = f"call {arabic}, wa.me/{SHEENA.number} or tel:{SHEENA.number}"
    card = samples.contacts_message(sender=SHEENA.number)
    card["contacts"][0]["phones"] = [{"phone": _arabic_indic("+1 650 555 1234"), "type": "HOME"}]
    payload = samples.envelope([samples.messages_change([card], [status], contacts=[samples.contact()])])
    (scrubbed,) = _scrub_all(payload)
    value = _value(scrubbed)
    fake = value["contacts"][0]["wa_id"]
    details = value["statuses"][0]["errors"][0]["error_data"]["details"]
    assert details == f"call 00{fake}, wa.me/{fake} or tel:{fake}"
    assert value["messages"][0]["contacts"][0]["phones"][0]["phone"] == f"+{fake[0]} {fake[1:4]} {fake[4:7]} {fake[7:]}"


def test_a_body_too_deep_to_scrub_is_skipped_not_a_crash(tmp_path: Path) -> None:
    deep: dict[str, Any] = {"note": SHEENA.number}
    for _ in range(700):
        deep = {"x": deep}
    payload = samples.envelope([samples.field_change("brand_new_field", deep)])
    out = tmp_path / "fixtures"
    prepare_out_dir(out)
    result = export_fixtures([_exchange("s.jsonl", 1, payload), _exchange("s.jsonl", 2, roster([SHEENA]))], out)
    assert [fixture.seq for fixture in result.fixtures] == [2]
    assert result.skipped == ("s.jsonl seq 1: body is nested too deeply to scrub",)
    assert SHEENA.number.encode() not in b"".join(path.read_bytes() for path in out.iterdir())


def test_an_ipv6_candidate_after_a_priority_is_replaced_whole_and_the_sdp_numbers_stay() -> None:
    sdp = (
        "v=0\r\no=- 4611731400430051336 2 IN IP6 2607:fb90:1234:5678:abcd:ef01:2345:6789\r\nt=0 0\r\n"
        "m=audio 54401 UDP/TLS/RTP/SAVPF 111\r\nc=IN IP6 2607:fb90:1234:5678:abcd:ef01:2345:6789\r\n"
        "a=rtcp:54402 IN IP6 2607:FB90:1234:5678:ABCD:EF01:2345:6789\r\n"
        "a=candidate:1467250027 1 udp 2122260223 2607:fb90:1234:5678:abcd:ef01:2345:6789 54401 typ host\r\n"
        "a=candidate:842163049 1 udp 1677729535 ::ffff:81.2.69.142 54402 typ srflx raddr 10.0.0.2 rport 54401 "
        "generation 0 network-id 2\r\n"
        "a=candidate:3 1 tcp 1518280447 fe80::1%eth0 9 typ host tcptype active\r\n"
        "a=ssrc-group:FID 3087315823 2122260223\r\na=ssrc:3087315823 cname:Yx3pQmVbW2kT8sLf\r\n"
    )
    call = {"id": SHEENA.wacid(), "from": SHEENA.number, "event": "connect", "session": {"sdp": sdp}}
    (scrubbed,) = _scrub_all(samples.envelope([samples.field_change("calls", {"calls": [call]})]))
    assert _value(scrubbed)["calls"][0]["session"]["sdp"] == (
        "v=0\r\no=- 4611731400430051336 2 IN IP6 2001:db8::1\r\nt=0 0\r\n"
        "m=audio 54401 UDP/TLS/RTP/SAVPF 111\r\nc=IN IP6 2001:db8::1\r\n"
        "a=rtcp:54402 IN IP6 2001:db8::1\r\n"
        "a=candidate:1467250027 1 udp 2122260223 2001:db8::1 54401 typ host\r\n"
        "a=candidate:842163049 1 udp 1677729535 ::ffff:192.0.2.1 54402 typ srflx raddr 192.0.2.2 rport 54401 "
        "generation 0 network-id 2\r\n"
        "a=candidate:3 1 tcp 1518280447 2001:db8::2%eth0 9 typ host tcptype active\r\n"
        "a=ssrc-group:FID 3087315823 2122260223\r\na=ssrc:3087315823 cname:Yx3pQmVbW2kT8sLf\r\n"
    )


def test_a_trickled_candidate_outside_an_sdp_is_read_the_same_way() -> None:
    candidate = "candidate:1467250027 1 udp 2122260223 2804:14c:65:8a3b:9d1:77ff:fe12:3456 54401 typ host"
    payload = samples.envelope([samples.field_change("calls", {"ice": {"candidate": candidate}})])
    (scrubbed,) = _scrub_all(payload)
    assert _value(scrubbed)["ice"]["candidate"] == "candidate:1467250027 1 udp 2122260223 2001:db8::1 54401 typ host"


def test_a_message_text_shaped_like_a_candidate_is_still_a_message_text() -> None:
    said = "candidate:1 1 udp 16505559876 81.2.69.142 54401 typ host"
    payload = samples.envelope([samples.messages_change([samples.text_message(said, sender=SHEENA.number)])])
    (lorem,) = _scrub_all(payload)
    (kept,) = _scrub_all(payload, keep_text=True)
    assert "16505559876" not in str(lorem) and "81.2.69.142" not in str(lorem)
    body = _value(kept)["messages"][0]["text"]["body"]  # read as a text: the number there is a phone number
    assert body.startswith("candidate:1 1 udp 1555") and body.endswith(" 192.0.2.1 54401 typ host")


def test_ip_addresses_in_any_form_are_replaced_whole_in_texts() -> None:
    details = (
        "host 54400 2607:fb90:1234:5678:abcd:ef01:2345:6789 54401; 2607:FB90:1234:5678:ABCD:EF01:2345:6789; "
        "[2600:1700:1:2::3]:443; 2600:1700:0001:0002:0000:0000:0000:0003, fe80::1%eth0 and fe80::1%25wlan0; "
        "via ::ffff:81.2.69.142, ::FFFF:5102:458E, 81.2.69.142; kept: 0.0.0.0, ::1, 127.0.0.1, "
        "10:30:45, 999.1.2.3, AB:CD:EF:01"
    )
    status = samples.status("failed", recipient_id=SHEENA.number, error_code=131026)
    status["errors"][0]["error_data"]["details"] = details
    (scrubbed,) = _scrub_all(samples.envelope([samples.messages_change(statuses=[status])]))
    assert _value(scrubbed)["statuses"][0]["errors"][0]["error_data"]["details"] == (
        "host 54400 2001:db8::1 54401; 2001:db8::1; [2001:db8::2]:443; 2001:db8::2, 2001:db8::3%eth0 and "
        "2001:db8::3%25wlan0; via ::ffff:192.0.2.1, ::ffff:c000:201, 192.0.2.1; kept: 0.0.0.0, ::1, "
        "127.0.0.1, 10:30:45, 999.1.2.3, AB:CD:EF:01"
    )


def test_keep_text_replaces_a_name_in_any_case_and_part_by_part() -> None:
    jane = samples.contact("Jane Quixote", "16505551234")
    said = "Jane here; Quixote family; jane quixote; JANE QUIXOTE; quixotes and janet stay"
    message = samples.text_message(said, sender="16505551234")
    payloads = [samples.envelope([samples.messages_change([message], contacts=[jane])])]
    (scrubbed,) = _scrub_all(*payloads, keep_text=True)
    body = _value(scrubbed)["messages"][0]["text"]["body"]
    assert body == "Customer here; 1 family; Customer 1; Customer 1; quixotes and janet stay"


def test_a_name_part_met_whole_in_a_field_keeps_that_fields_fake() -> None:
    card = samples.contacts_message(sender=SHEENA.number)
    card["contacts"][0]["name"] = {"formatted_name": "Jane Quixote", "first_name": "Jane", "last_name": "Quixote"}
    card["contacts"][0]["note"] = "JANE wrote; the quixote family; Jane Quixote"
    (scrubbed,) = _scrub_all(samples.envelope([samples.messages_change([card])]))
    contact = _value(scrubbed)["messages"][0]["contacts"][0]
    names = contact["name"]
    assert names == {"formatted_name": "Customer 2", "first_name": "Customer 3", "last_name": "Customer 4"}
    assert contact["note"] == "Customer 3 wrote; the Customer 4 family; Customer 2"


def test_a_schema_keyword_that_is_also_a_customers_name_part_stays() -> None:
    grace = samples.contact("Grace Read", SHEENA.number)
    read = samples.status("read", recipient_id=SHEENA.number)
    read["note"] = "Grace has read it"
    message = samples.text_message("hi", sender=SHEENA.number)
    (scrubbed,) = _scrub_all(samples.envelope([samples.messages_change([message], [read], contacts=[grace])]))
    value = _value(scrubbed)
    assert value["statuses"][0]["status"] == "read" and value["messages"][0]["type"] == "text"
    assert value["statuses"][0]["note"] == "Customer has 1 it"  # in a text, the word goes with the name


def test_numbers_split_by_invisible_characters_slashes_or_unicode_dashes_are_found() -> None:
    forms = (
        "1650\u200b555\u200b1234",
        "+1\u2060650\u200c555\u200d1234",
        "\u200e+1 650 555 1234\u200f",
        "+1\u00a0650\u2011555\u20111234",
        "+1 650\u202f555\u202f1234",
        "+1 (650) 555\u20131234",
        "650/555-1234",
        "1/650/555/1234",
    )
    status = samples.status("failed", recipient_id=SHEENA.number, error_code=131026)
    status["errors"][0]["error_data"]["details"] = " | ".join(forms) + " | 11/26/2026 and 2026/11/26 stay"
    (scrubbed,) = _scrub_all(samples.envelope([samples.messages_change(statuses=[status])]))
    fake = _value(scrubbed)["statuses"][0]["recipient_id"]
    details = _value(scrubbed)["statuses"][0]["errors"][0]["error_data"]["details"]
    *found_forms, dates = details.split(" | ")
    assert dates == "11/26/2026 and 2026/11/26 stay"
    for original, found in zip(forms, found_forms, strict=True):
        expected = fake if original.replace("/", "").startswith(("1", "+", "\u200e")) else fake[1:]
        assert "".join(char for char in found if char.isdigit()) == expected, (original, found)
        assert [char for char in found if not char.isdigit()] == [char for char in original if not char.isdigit()]


def test_a_phone_field_written_with_invisible_characters_is_the_same_number() -> None:
    card = samples.contacts_message(sender=SHEENA.number)
    card["contacts"][0]["phones"] = [{"phone": "+1\u200b650\u200b555\u200b1234", "type": "CELL"}]
    (scrubbed,) = _scrub_all(samples.envelope([samples.messages_change([card])]))
    value = _value(scrubbed)
    fake = value["messages"][0]["from"]
    phone = value["messages"][0]["contacts"][0]["phones"][0]["phone"]
    assert phone == f"+{fake[0]}\u200b{fake[1:4]}\u200b{fake[4:7]}\u200b{fake[7:]}" and fake != SHEENA.number
