"""Consistent pseudonymisation of customers' data in decoded webhook payloads, so fixtures can be committed.

Pure (no I/O). One Scrubber serves a whole export: learn() every payload, then scrub() each, and the
same real value becomes the same fake everywhere: a number in `from`, in `wa_id`, inside a wamid, as a
history thread id and quoted in a text ("call me at +1 650-555-1234") is one fake number.
Field rules replace what a key says a value is (a number, a name, a user id, media, a place, message
text); every other string goes through FreeText (numbers in any format, e-mails, IP addresses, ids,
names met in fields), so Meta's error details, call SDP and fields added after this was written are
scrubbed too. Object keys, shapes and JSON types are kept.

Kept on purpose: the business's own identifiers (WABA id, phone_number_id, and its display_phone_number
wherever that number appears, in any format). They are not a customer's data, and a test needs them
to match the business's configuration.
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable
from typing import Any

from wa_devtunnel.rules.scrub.fakes import extension, fake_sha256, lorem, shaped
from wa_devtunnel.rules.scrub.free_text import NUMBER_SEPARATORS, FreeText, digits_of
from wa_devtunnel.rules.scrub.pseudonyms import Pseudonyms
from wa_devtunnel.rules.scrub.wa_ids import is_wa_id

# Keys holding a customer's number (context.from holds the business's: kept as the business number).
PHONE_KEYS = frozenset({"wa_id", "from", "recipient_id", "phone", "to", "customer", "new_wa_id", "phone_number"})
USER_ID_KEYS = frozenset({"ctwa_clid"})  # and every key ending in "user_id"
BUSINESS_KEYS = frozenset({"display_phone_number", "phone_number_id"})
TEXT_KEYS = frozenset({"body", "caption", "title", "description", "text", "headline"})
URL_KEYS = frozenset({"url", "link", "source_url", "image_url", "video_url", "thumbnail_url"})
MEDIA_KEYS = frozenset({"image", "video", "audio", "document", "sticker", "voice"})
NAME_KEYS = frozenset(
    {"formatted_name", "first_name", "last_name", "middle_name", "full_name", "display_name", "profile_name"}
    | {"nickname", "push_name", "pushname"}
)
CARD_NAME_PARTS = frozenset({"prefix", "suffix"})
# Where "name" or "title" is the business's word (a Flow, a template), not a person or their text.
BUSINESS_PARENTS = frozenset({"nfm_reply", "template", "other_info"})
ADDRESS_KEYS = frozenset({"street", "city", "zip", "postal_code", "address"})
ORG_KEYS = frozenset({"company", "department", "title"})
ERROR_KEYS = frozenset({"errors", "error"})
# Flow answers are the customer's words, except the token the business put in the Flow itself.
FLOW_KEPT_KEYS = frozenset({"flow_token"})
# Ids and times: a digit run there is only replaced when it is a number already met.
_OPAQUE_SUFFIXES = ("_id", "_ids", "timestamp", "_time")

# Any script's digits, any separators (zero-width too): a contact card is typed by people.
_PHONE_SHAPE = re.compile(rf"\+?\d[\d(){NUMBER_SEPARATORS}]*")
# A session description, or an ICE candidate trickled outside one, under any key but a message text's:
# read field by field, so its ports, priorities and ids stay.
_SDP_SHAPE = re.compile(
    r"v=0\r?\no=|(?:a=)?candidate:\d+ \d+ [A-Za-z]+ \d+ \S+ \d+ typ [a-z]+(?: \S+ \S+)*\s*\Z", re.ASCII
)
Rule = Callable[[str], str]


class Scrubber:
    """Replaces customers' data with stable fakes; keep one instance for every file of an export."""

    def __init__(self, *, keep_text: bool = False) -> None:
        self.keep_text = keep_text
        self._p = Pseudonyms()
        self._text = FreeText(self._p)
        self._learning = False

    def learn(self, document: Any) -> None:
        """Meet the people of a payload before any text is scrubbed, so a later file's names are found too."""
        self._note_business_numbers(document)
        self._learning = self._p.collecting = True
        try:
            self._value(document, "", "", self.keep_text)
        finally:
            self._learning = self._p.collecting = False

    def scrub(self, document: Any, *, learned: bool = False) -> Any:
        """A scrubbed copy of one decoded payload; the input is not modified."""
        if not learned:
            self.learn(document)
        self._p.settle()
        return self._value(document, "", "", self.keep_text)

    def scrub_text(self, text: str) -> str:
        """A text written beside the payloads (a manifest headline, a file name) cleared the same way."""
        self._p.settle()
        return self._text.scrub(text)

    def fake_for(self, table: str, real: str) -> str | None:
        """The fake already given for a real value (tables: phone, name, user, email, ipv4, wa_id ...)."""
        return self._p.known(table, real)

    def _note_business_numbers(self, document: Any) -> None:
        """The business's own number stays, wherever it appears (metadata, context.from of replies)."""
        entries = document.get("entry") if isinstance(document, dict) else None
        for entry in entries if isinstance(entries, list) else ():
            changes = entry.get("changes") if isinstance(entry, dict) else None
            for change in changes if isinstance(changes, list) else ():
                value = change.get("value") if isinstance(change, dict) else None
                if not isinstance(value, dict):
                    continue
                metadata = value.get("metadata")
                for holder in (metadata if isinstance(metadata, dict) else {}, value):
                    number = holder.get("display_phone_number")
                    if isinstance(number, str | int) and not isinstance(number, bool):
                        self._p.note_business(digits_of(str(number)))

    def _value(self, value: Any, key: str, parent: str, keep: bool) -> Any:
        """`keep` is true where text is kept and only cleared of personal data (errors, --keep-text)."""
        if isinstance(value, dict):
            inner = keep or key in ERROR_KEYS
            return {child_key: self._value(child, child_key, key, inner) for child_key, child in value.items()}
        if isinstance(value, list):
            inner = keep or key in ERROR_KEYS
            return [self._value(child, key, parent, inner) for child in value]
        if isinstance(value, str):
            return self._string(value, key, parent, keep)
        if value is None or isinstance(value, bool):
            return value
        return self._number(value, key, parent)

    def _string(self, value: str, key: str, parent: str, keep: bool) -> str:
        """The one place that decides, by key and parent key, what a string is."""
        if key in BUSINESS_KEYS or not value:
            return value
        if is_wa_id(value):
            return self._text.wa_id(value)
        rule = self._person_rule(key, parent) or self._belongings_rule(key, parent)
        if rule is not None:
            return rule(value)
        if key == "vcard" or value.startswith("BEGIN:VCARD"):
            return self._text.vcard(value, self._card_part)
        if self._learning:
            return value
        return self._text_rule(value, key, parent, keep)

    def _person_rule(self, key: str, parent: str) -> Rule | None:
        """What a key says about a person: their number, id, name, address or organisation."""
        if key in PHONE_KEYS or (key == "id" and parent == "threads"):
            return self._phone
        if key.endswith("user_id") or key in USER_ID_KEYS:
            return self._text.user_id
        if key in ("username", "email"):
            return self._username if key == "username" else self._text.email
        if parent == "location" and key in ("name", "address"):
            return self._place if key == "name" else self._street
        if key in NAME_KEYS or (key == "name" and parent not in BUSINESS_PARENTS):
            return self._name
        if parent == "name" and key in CARD_NAME_PARTS:
            return self._name
        if key in ADDRESS_KEYS or (parent == "addresses" and key == "state") or (parent == "org" and key in ORG_KEYS):
            return lambda value: self._p.label(key, value, lambda n: f"{key.title()} {n}", word=key != "title")
        return None

    def _belongings_rule(self, key: str, parent: str) -> Rule | None:
        """What a customer shared: media ids and digests, links, file names, a birthday, a location."""
        if key == "id" and parent in MEDIA_KEYS:
            return lambda value: self._token("media", value)
        if key == "sha256":
            return lambda value: self._p.fake("sha256", value, fake_sha256)
        if key in URL_KEYS:
            return lambda value: self._p.label("url", value, lambda n: f"https://example.com/scrubbed/{n}")
        if key == "filename":
            return lambda value: self._p.label("file", value, lambda n: f"file-{n}{extension(value)}")
        if key == "birthday":
            return lambda _value: "2000-01-01"
        if key in ("latitude", "longitude"):
            return lambda value: self._coordinate(key, value)
        return None

    def _text_rule(self, value: str, key: str, parent: str, keep: bool) -> str:
        if key == "response_json":
            return self._flow_response(value, keep)
        if key == "sdp":
            return self._text.sdp(value)
        if key in TEXT_KEYS:
            return self._lorem(value) if not keep and parent not in BUSINESS_PARENTS else self._text.scrub(value)
        if _SDP_SHAPE.match(value):
            return self._text.sdp(value)
        return self._text.scrub(value, detect_phones=not _opaque(key))

    def _number(self, value: int | float, key: str, parent: str) -> Any:
        if key in ("latitude", "longitude"):
            return self._coordinate(key, value)
        if isinstance(value, float) or key in BUSINESS_KEYS:
            return value
        if key in PHONE_KEYS or (key == "id" and parent == "threads"):
            return int(self._p.phone(str(value)))
        if key.endswith("user_id") or key in USER_ID_KEYS or (key == "id" and parent in MEDIA_KEYS):
            return self._token("user" if key != "id" else "media", value)
        known = self._p.known_phone(str(value))
        return int(known) if known is not None else value

    def _phone(self, value: str) -> str:
        if not _PHONE_SHAPE.fullmatch(value):
            return self._text.user_id(value)  # a business-scoped user id where a number used to be
        return self._text.phone(value)

    def _name(self, value: str) -> str:
        return self._p.label("name", value, lambda n: f"Customer {n}", word=True, parts=True)

    def _username(self, value: str) -> str:
        lead = "@" if value.startswith("@") else ""
        return lead + self._p.label("username", value.removeprefix("@"), lambda n: f"customer_{n}", word=True)

    def _place(self, value: str) -> str:
        return self._p.label("name", value, lambda n: f"Place {n}", word=True)

    def _street(self, value: str) -> str:
        return self._p.label("address", value, lambda n: f"{n} Example Street", word=True)

    def _card_part(self, table: str, value: str) -> str:
        """A vCard's name, organisation or address part, named like the same part of a contacts card."""
        if table == "name":
            return self._name(value)
        return self._p.label(table, value, lambda n: f"{table.title()} {n}", word=True)

    def _token(self, table: str, value: str | int) -> Any:
        fake = self._p.fake(table, str(value), lambda n, real: shaped(real, f"{table}:{n}"))
        if isinstance(value, int):
            return int(fake) if fake[0] != "0" else int("1" + fake[1:])
        return fake

    def _coordinate(self, key: str, value: Any) -> Any:
        """A point near "Null Island" (0, 0): obviously fake, still a valid coordinate of the same type."""
        if isinstance(value, bool) or not isinstance(value, str | int | float):
            return value
        fake = self._p.fake(key, str(value), lambda n, _real: repr(round(n * 0.001, 6)))
        return fake if isinstance(value, str) else float(fake)

    def _flow_response(self, value: str, keep: bool) -> str:
        """A Flow's answers arrive as a JSON string: scrub the answers, keep the JSON."""
        try:
            answers = json.loads(value)
        except (ValueError, RecursionError):
            return self._text.scrub(value) if keep else self._lorem(value)
        separators = (", ", ": ") if ", " in value or ": " in value else (",", ":")
        scrubbed = self._value(answers, "", "", True) if keep else self._flow_tree(answers, "")
        return json.dumps(scrubbed, separators=separators)

    def _flow_tree(self, value: Any, key: str) -> Any:
        if isinstance(value, dict):
            return {k: self._flow_tree(v, k) for k, v in value.items()}
        if isinstance(value, list):
            return [self._flow_tree(v, key) for v in value]
        if not isinstance(value, str) or key in FLOW_KEPT_KEYS or not value:
            return value
        if key in PHONE_KEYS or key == "email":
            return self._phone(value) if key != "email" else self._text.email(value)
        return self._lorem(value)

    def _lorem(self, value: str) -> str:
        """Placeholder words of the same length: message text says nothing a test should keep."""
        return self._p.fake("text", value, lambda n, real: lorem(n, len(real)), unique=False)


def _opaque(key: str) -> bool:
    """Ids and times, where an unknown digit run is not taken for a phone number."""
    return key == "id" or key == "time" or key.endswith(_OPAQUE_SUFFIXES)
