"""Realistic webhook payloads full of one person's data, for the scrubbing tests.

Shapes follow Meta's webhook references: calls carry an SDP offer in `session.sdp`, history threads
are keyed by the customer's number, failed statuses quote it in `error_data.details`, groups list
participants by `input` and `wa_id`, 2026 payloads add business-scoped `user_id`s and usernames.
Wherever a number is written in a text, a {"ref", "format", "line"} object marks it, so a test can
check that it became the same fake as the person's `wa_id`.
"""

from __future__ import annotations

import base64
from dataclasses import dataclass
from typing import Any

from wa_devtunnel.rules.samples import payloads as samples

FORMATS = ("e164", "spaced", "dashed", "intl00", "national", "bracketed", "trunk", "zerowidth", "slashed")


@dataclass(frozen=True)
class Person:
    """One customer and every personal value a payload may carry about them."""

    country: str
    national: str
    name: str
    handle: str
    email: str
    ipv4: str
    ipv6: str
    user_id: str
    ref: str = "p0"

    @property
    def number(self) -> str:
        return self.country + self.national

    @property
    def ipv4_mapped(self) -> str:
        """The IPv4 address as a dual-stack socket reports it."""
        return f"::ffff:{self.ipv4}"

    def written(self, fmt: str) -> str:
        """The number as people write it: +44 650-555-1234, (650) 555-1234, 0650 5551234 ..."""
        n, cc = self.national, self.country
        return {
            "e164": f"+{cc}{n}",
            "spaced": f"+{cc} {n[:3]} {n[3:6]} {n[6:]}",
            "dashed": f"+{cc} {n[:3]}-{n[3:6]}-{n[6:]}",
            "intl00": f"00{cc} {n}",
            "national": f"{n[:3]} {n[3:6]} {n[6:]}",
            "bracketed": f"({n[:3]}) {n[3:6]}-{n[6:]}",
            "trunk": f"0{n[:3]} {n[3:]}",
            "zerowidth": f"{cc}{n[:3]}\u200b{n[3:6]}\u2060{n[6:]}",
            "slashed": f"{n[:3]}/{n[3:6]}-{n[6:]}",
        }[fmt]

    def mention(self, fmt: str) -> dict[str, str]:
        """A marked text quoting the number, as in a note or an error's details."""
        return {"ref": self.ref, "format": fmt, "line": f"please call me at {self.written(fmt)} tomorrow"}

    def wamid(self, serial: int = 0) -> str:
        return _wa_id("wamid.", self.number, serial)

    def wacid(self) -> str:
        return _wa_id("wacid.", self.number, 99)


def _wa_id(prefix: str, number: str, serial: int) -> str:
    """Shaped like Meta's: base64 of 0x1c 0x18, a length, the number, then a hex message id."""
    hex_id = f"3A4A6599AEE0381014{serial:02d}"
    raw = b"\x1c\x18" + bytes([len(number)]) + number.encode() + b"\x15\x02\x00\x12\x18\x14" + hex_id.encode() + b"\x00"
    return prefix + base64.b64encode(raw).decode()


def _metadata() -> dict[str, str]:
    return {"display_phone_number": samples.DISPLAY_PHONE_NUMBER, "phone_number_id": samples.PHONE_NUMBER_ID}


def _change(field: str, value: dict[str, Any]) -> dict[str, Any]:
    return samples.envelope(
        [{"value": {"messaging_product": "whatsapp", "metadata": _metadata(), **value}, "field": field}]
    )


def _contact(person: Person) -> dict[str, Any]:
    profile = {"name": person.name, "username": "@" + person.handle}
    return {"profile": profile, "wa_id": person.number, "user_id": person.user_id}


def roster(people: list[Person]) -> dict[str, Any]:
    """Everyone writes in: contacts with profile names, usernames, wa_ids and business-scoped ids."""
    messages = [
        samples.text_message(f"Hi, {p.name} here, mail me at {p.email}", sender=p.number, message_id=p.wamid(index))
        for index, p in enumerate(people)
    ]
    for person, message in zip(people, messages, strict=True):
        message["from_user_id"] = person.user_id
    return samples.envelope([samples.messages_change(messages, contacts=[_contact(p) for p in people])])


def failed_status(person: Person, fmt: str) -> dict[str, Any]:
    details = f"{person.written(fmt)} ({person.name}, {person.email}) could not be reached from {person.ipv4}"
    error = samples.meta_error(131026, details=details)
    error["error_data"]["context"] = person.mention(fmt)
    status = samples.status("failed", recipient_id=person.number, message_id=person.wamid(1), error_code=131026)
    status["errors"] = [error]
    status["recipient_user_id"] = person.user_id
    return samples.envelope([samples.messages_change(statuses=[status])])


def sdp_offer(person: Person) -> str:
    lines = (
        "v=0",
        f"o={person.number} 4611731400430051336 2 IN IP4 {person.ipv4}",
        "s=-",
        "t=0 0",
        "m=audio 9 UDP/TLS/RTP/SAVPF 111",
        f"c=IN IP4 {person.ipv4}",
        "a=rtcp:9 IN IP4 0.0.0.0",
        f"a=candidate:1 1 udp 2122260223 {person.ipv4} 54400 typ host",
        f"a=candidate:2 1 udp 1686052607 {person.ipv6} 3478 typ srflx raddr 0.0.0.0 rport 0",
        f"a=candidate:1467250027 1 udp 2122260223 {person.ipv6} 54401 typ host generation 0 network-id 2",
        f"a=candidate:842163049 1 udp 1677729535 {person.ipv4_mapped} 54402 typ srflx raddr {person.ipv6} rport 54401",
        "a=ice-ufrag:cloRuCCQaPtDYlxC",
        "a=fingerprint:sha-256 AB:CD:EF:01:23:45:67:89:AB:CD:EF:01:23:45:67:89:AB:CD:EF:01:23:45:67:89:AB:CD:EF:01",
        "a=rtpmap:111 opus/48000/2",
        "a=ssrc:3087315823 cname:Yx3pQmVbW2kT8sLf",
        "m=video 54403 UDP/TLS/RTP/SAVPF 96",
        f"a=rtcp:54404 IN IP6 {person.ipv6}",
    )
    return "\r\n".join(lines) + "\r\n"


def call_connect(person: Person, fmt: str) -> dict[str, Any]:
    call = {
        "id": person.wacid(),
        "to": samples.DISPLAY_PHONE_NUMBER,
        "from": person.number,
        "from_user_id": person.user_id,
        "event": "connect",
        "timestamp": samples.TIMESTAMP,
        "direction": "USER_INITIATED",
        "session": {"sdp_type": "offer", "sdp": sdp_offer(person)},
        "biz_opaque_callback_data": person.mention(fmt),
    }
    return _change("calls", {"contacts": [_contact(person)], "calls": [call]})


def history_thread(person: Person, fmt: str) -> dict[str, Any]:
    message = samples.text_message(f"my number is {person.written(fmt)}", sender=person.number)
    message["id"] = person.wamid(2)
    message["history_context"] = {"status": "READ"}
    thread = {"id": person.number, "messages": [message], "context": person.mention(fmt)}
    chunk = {"metadata": {"phase": 0, "chunk_order": 1, "progress": 100}, "threads": [thread]}
    return _change("history", {"history": [chunk]})


def contacts_card(person: Person, fmt: str) -> dict[str, Any]:
    first, last = person.name.split()
    card = {
        "name": {"formatted_name": person.name, "first_name": first, "last_name": last},
        "phones": [{"phone": person.written("spaced"), "wa_id": person.number, "type": "CELL"}],
        "emails": [{"email": person.email, "type": "WORK"}],
        "addresses": [{"street": f"7 {last} Lane", "city": "Zéville", "zip": "94301", "type": "HOME"}],
        "org": {"company": f"{last} & Söhne", "title": "Owner"},
        "vcard": f"BEGIN:VCARD\r\nFN:{person.name}\r\nN:{last};{first};;;\r\nTEL;waid={person.number}:"
        f"{person.written('e164')}\r\nEMAIL:{person.email}\r\nEND:VCARD",
        "note": person.mention(fmt),
    }
    message = samples.contacts_message(sender=person.number, message_id=person.wamid(3))
    message["contacts"] = [card]
    return samples.envelope([samples.messages_change([message], contacts=[_contact(person)])])


def group_participants(person: Person, fmt: str) -> dict[str, Any]:
    group = {
        "timestamp": samples.TIMESTAMP,
        "group_id": "Y2FwaV9ncm91cDoxNzA1NTU1MDEzOToxMjAzNjM0MDQ2OTQyMzM4MjAZD",
        "type": "group_participants_add",
        "initiated_by": "invite_link",
        "added_participants": [{"input": person.written(fmt), "wa_id": person.number}],
        "context": person.mention(fmt),
    }
    return _change("group_participants_update", {"groups": [group]})


def state_sync(person: Person, fmt: str) -> dict[str, Any]:
    contact = {"full_name": person.name, "first_name": person.name.split()[0], "phone_number": person.number}
    item = {"type": "contact", "contact": contact, "action": "add", "metadata": {"timestamp": samples.TIMESTAMP}}
    return _change("smb_app_state_sync", {"state_sync": [item], "context": person.mention(fmt)})


def user_preferences(person: Person, fmt: str) -> dict[str, Any]:
    preference = {
        "wa_id": person.number,
        "user_id": person.user_id,
        "detail": f"User {person.name} ({person.written(fmt)}) requested to stop marketing messages",
        "category": "marketing_messages",
        "value": "stop",
        "timestamp": int(samples.TIMESTAMP),
        "context": person.mention(fmt),
    }
    return _change("user_preferences", {"user_preferences": [preference]})


def unknown_field(person: Person, fmt: str) -> dict[str, Any]:
    """A field this tool has never heard of, with a person's data nested at every depth."""
    free_text = (
        f"{person.name} <{person.email}> wrote from {person.ipv4} and [{person.ipv6}]:443 (host 54400 "
        f"{person.ipv6} 54401, via {person.ipv4_mapped}), "
        f"reach @{person.handle} on {person.written(fmt)} or as {person.user_id}; https://wa.me/{person.number}"
    )
    nested = {
        "summary": free_text,
        "levels": [[{"deeper": {"text_like": free_text, "msisdn": int(person.number)}}], person.mention(fmt)],
        "participant": {"addr": person.ipv6, "mail": person.email.upper(), "who": person.user_id},
    }
    return _change("brand_new_field_2027", {"payload": nested})


def nested_field(person: Person, fmt: str, path: tuple[str, ...]) -> dict[str, Any]:
    """A person's data under any chain of keys (the test draws them): no key may let it through."""
    free_text = f"{person.name} ({person.email}, {person.written(fmt)}, {person.ipv4}, {person.user_id})"
    node: Any = {path[-1]: free_text, "context": person.mention(fmt)}
    for key in reversed(path[:-1]):
        node = {key: node}
    return _change("field_from_the_future", node)


def name_mentions(person: Person, fmt: str) -> dict[str, Any]:
    """The customer's name in other letter cases and in parts: a message (kept with --keep-text) and Meta's details."""
    first, last = person.name.split()
    said = (
        f"{first} here; {last} family; {person.name.lower()}; {person.name.upper()}; "
        f"{last.lower()}, {first.upper()}: {person.written(fmt)}"
    )
    message = samples.text_message(said, sender=person.number, message_id=person.wamid(4))
    message["context_note"] = person.mention(fmt)
    status = samples.status("failed", recipient_id=person.number, message_id=person.wamid(5), error_code=131026)
    status["errors"] = [samples.meta_error(131026, details=f"{first.lower()} {last.upper()} blocked; {said}")]
    return samples.envelope([samples.messages_change([message], [status], contacts=[_contact(person)])])
