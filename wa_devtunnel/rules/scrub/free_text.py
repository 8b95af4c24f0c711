"""Personal data inside any text: numbers in any format, e-mails, IPv4/IPv6, user ids, wamids, names.

Pure. A text is whatever a key rule does not replace whole: Meta's error details, a call's SDP,
a history thread, an unknown new field, or message text kept with --keep-text. Values replaced
whole (IP addresses, e-mails, wamids) are found first, so neither a number pattern nor a name can
take a piece of one ("2122260223 2607:fb90::1" is no phone number); between them, names met in
fields are replaced, then one regex pass finds the other candidates, so a fake is never scanned
again; dates are matched first so they are never mistaken for numbers. A call's SDP is read field
by field: its ports, priorities and ids are numbers of the protocol, not people's.
"""

from __future__ import annotations

import ipaddress
import re
from collections.abc import Callable

from wa_devtunnel.rules.scrub.fakes import fake_email, fake_ipv4, fake_ipv6, shaped
from wa_devtunnel.rules.scrub.pseudonyms import Pseudonyms
from wa_devtunnel.rules.scrub.wa_ids import rewrite_wa_id

# What people put between a number's digits: spaces of any width, dashes of any kind, dots, "/", and
# the invisible format characters (zero-width space, joiners, direction marks) that copy-paste leaves.
_GAPS = " \t\u00a0\u1680\u2000-\u200a\u202f\u205f\u3000"
_INVISIBLE = "\u00ad\u061c\u180e\u200b-\u200f\u202a-\u202e\u2060-\u2064\u2066-\u206f\ufeff"
_DASHES = "\\-\u2010-\u2015\u2212\ufe58\ufe63\uff0d"
NUMBER_SEPARATORS = _GAPS + _INVISIBLE + _DASHES + "./"  # the inside of a regex character class
_SEPARATOR = f"[{NUMBER_SEPARATORS}()]"
_IPV6 = (
    r"(?<![\w:.])(?:[0-9A-Fa-f]{0,4}:){2,7}(?:\d{1,3}(?:\.\d{1,3}){3}|[0-9A-Fa-f]{1,4})?"
    r"(?:%[\w.\-]+)?(?![\w:]|\.\d)"  # a zone id (fe80::1%eth0) belongs to the address
)
_IPV4 = r"(?<![\w.])\d{1,3}(?:\.\d{1,3}){3}(?!\w|\.\d)"
_WAID = r"\bwa[mc]id\.[A-Za-z0-9+/_=-]+"
_EMAIL = r"(?<![\w.%+-])[\w.%+-]{1,64}@[A-Za-z0-9-]{1,63}(?:\.[A-Za-z0-9-]{1,63}){0,8}\.[A-Za-z]{2,24}\b"
_WHOLE = re.compile(f"(?P<waid>{_WAID})|(?P<email>{_EMAIL})|(?P<ipv6>{_IPV6})|(?P<ipv4>{_IPV4})")
_DAY, _MONTH, _YEAR = r"(?:0?[1-9]|[12]\d|3[01])", r"(?:0?[1-9]|1[0-2])", r"(?:19|20)\d{2}"
_CANDIDATES = re.compile(
    r"(?P<keep>\b\d{4}-\d{2}-\d{2}(?:[T ]\d{2}:\d{2}(?::\d{2}(?:\.\d+)?)?)?\b|\b\d{8}-\d{6}\b"
    rf"|(?<![\d/]){_YEAR}/{_MONTH}/{_DAY}\b(?!/\d)|(?<![\d/]){_DAY}/{_DAY}/{_YEAR}\b(?!/\d))"
    f"|(?P<ipish>{_IPV6}|{_IPV4})"  # shaped like an address but not one (12:30:45, 999.1.2.3): kept
    r"|(?P<user>\b[A-Z]{2}\.(?:ENT\.)?[A-Za-z0-9]{6,128}\b)"
    rf"|(?P<phone>(?<![\w+#.{_DASHES}])\+?\(?\d(?:{_SEPARATOR}{{0,2}}\d){{6,14}}(?!\w|[{NUMBER_SEPARATORS}]\d))"
    r"|(?P<digits>(?<![0-9])[0-9]{7,15}(?![0-9]))"  # anywhere else, only a number already met
)
_ANY_DIGIT = re.compile(r"\d")
_NOT_DIGIT = re.compile(r"\D")
_SDP_TOKENS = re.compile(r"(\s+)")
_SDP_PEERS = ("rport", "generation", "network-id", "network-cost")


def _candidate_number(index: int, tokens: list[str]) -> bool:
    """<foundation> <component> <transport> <priority> <address> <port> typ <type> [raddr <a> rport <port>] ..."""
    return index in (0, 1, 3, 5) or (index > 6 and index % 2 == 1 and tokens[index - 1].lower() in _SDP_PEERS)


# The SDP lines read field by field, and which fields are numbers of the protocol (index among the
# line's fields after the prefix); every other field is scrubbed on its own, so no number pattern
# joins two fields. Any other line is a text.
_SDP_NUMBERS: dict[str, Callable[[int, list[str]], bool]] = {
    "o=": lambda index, _tokens: index in (1, 2),  # <username> <sess-id> <sess-version> IN IP4 <address>
    "c=": lambda _index, _tokens: False,  # IN IP4 <address>[/<ttl>]
    "m=": lambda index, _tokens: index == 1,  # <media> <port>[/<count>] <proto> <fmt> ...
    "t=": lambda _index, _tokens: True,  # <start> <stop>, and the repeat times and zone adjustments
    "r=": lambda _index, _tokens: True,
    "z=": lambda _index, _tokens: True,
    "a=rtcp:": lambda index, _tokens: index == 0,  # <port> [IN IP4 <address>]
    "a=candidate:": _candidate_number,
    "candidate:": _candidate_number,  # a trickled candidate outside an SDP
    "a=remote-candidates:": lambda index, _tokens: index % 3 != 1,  # (<component> <address> <port>) ...
    "a=ssrc:": lambda index, _tokens: index == 0,  # <ssrc-id> <attribute>[:<value>]
    "a=ssrc-group:": lambda index, _tokens: index > 0,  # <semantics> <ssrc-id> ...
}
_PHONE_ONLY = re.compile(r"\+?\d{7,15}")
_MIN_DIGITS_FORMATTED, _MIN_DIGITS_BARE, _MAX_DIGITS = 7, 8, 15
_USER_ID_MIN_DIGITS = 6
_VCARD_NAMES = frozenset({"FN", "N", "NICKNAME"})
_VCARD_ORG = frozenset({"ORG", "TITLE", "ROLE"})
_VCARD_ADDRESS = frozenset({"ADR", "LABEL"})


def digits_of(text: str) -> str:
    """The decimal digits of a text as ASCII; Arabic-Indic and other scripts' digits count too."""
    digits = _NOT_DIGIT.sub("", text)
    return digits if digits.isascii() else "".join(str(int(char)) for char in digits)


def reshape(template: str, digits: str) -> str:
    """Fake digits where the real ones were; "+", spaces, dashes and brackets stay."""
    supply = iter(digits)
    return _ANY_DIGIT.sub(lambda _match: next(supply, "0"), template)


class FreeText:
    """Scrubs personal data out of texts, sharing one set of pseudonyms with the field rules."""

    def __init__(self, pseudonyms: Pseudonyms) -> None:
        self._p = pseudonyms

    def scrub(self, text: str, *, detect_phones: bool = True) -> str:
        """The text with every personal value replaced; `detect_phones` off only replaces numbers met before."""
        pieces, done = [], 0
        for match in _WHOLE.finditer(text):
            fake = self._whole(match.group(0), match.lastgroup)
            if fake is not None:
                pieces += [self._between(text[done : match.start()], detect_phones), fake]
                done = match.end()
        pieces.append(self._between(text[done:], detect_phones))
        return "".join(pieces)

    def _whole(self, found: str, kind: str | None) -> str | None:
        """The fake for a value replaced whole; None when it is not one after all (2001:db8:::1)."""
        if kind == "waid":
            return self.wa_id(found)
        if kind == "email":
            return self.email(found)
        return self._ipv6(found) if kind == "ipv6" else self._ipv4(found)

    def _between(self, text: str, detect_phones: bool) -> str:
        """Text between values replaced whole: names first (fakes made below are never scanned again), then the rest."""
        if not text:
            return text
        named = self._p.replace_words(text)
        return _CANDIDATES.sub(lambda match: self._candidate(match, detect_phones), named)

    def _candidate(self, match: re.Match[str], detect_phones: bool) -> str:
        found, kind = match.group(0), match.lastgroup
        if kind == "user":
            return self.user_id(found) if len(digits_of(found)) >= _USER_ID_MIN_DIGITS else found
        if kind == "phone":
            return self._phone(found, detect_phones)
        if kind == "digits":
            return self._p.known_phone(found) or found
        return found

    def wa_id(self, value: str) -> str:
        """A wamid/wacid with the customer's number inside it replaced."""
        cached = self._p.known("wa_id", value)
        if cached is None:
            cached = rewrite_wa_id(value, self._fake_phone_digits, self._p.known_phone)
            if not self._p.collecting:  # while learning, numbers have no fakes yet
                self._p.fake("wa_id", value, lambda _n, _real: cached, unique=False)
        return cached

    def email(self, value: str) -> str:
        """person<n>@example.com; the same address in any letter case is one person."""
        return self._faked("email", value.lower(), fake_email, value)

    def user_id(self, value: str) -> str:
        """A business-scoped user id (US.13491208655302741918): same shape, other characters."""
        return self._faked("user", value, lambda n, real: shaped(real, f"user:{n}"))

    def _faked(self, table: str, key: str, make: Callable[[int, str], str], shown: str | None = None) -> str:
        """A fake met again in a text (a manifest headline quotes the scrubbed payload) is not faked twice."""
        return (shown or key) if self._p.is_fake(table, key) else self._p.fake(table, key, make)

    def _fake_phone_digits(self, digits: str) -> str:
        return digits if self._p.is_fake("phone", digits) else self._p.phone(digits)

    def phone(self, value: str) -> str:
        """A number written any way: fake digits in the same format (business number kept)."""
        return reshape(value, self._p.phone(digits_of(value)))

    def _phone(self, found: str, detect: bool) -> str:
        digits = digits_of(found)
        bare = found.isdecimal()
        if not (_MIN_DIGITS_BARE if bare else _MIN_DIGITS_FORMATTED) <= len(digits) <= _MAX_DIGITS:
            return found
        fake = self._p.linked_phone(digits)
        if fake is None and detect and not self._p.is_fake("phone", digits):
            fake = self._p.phone(digits)
        return found if fake is None else reshape(found, fake)

    def _ipv4(self, found: str) -> str | None:
        """The fake for an IPv4 address, the address itself when it names no one, None when it is not one."""
        octets = [int(part) for part in found.split(".")]
        if max(octets) > 255:
            return None
        if octets == [0, 0, 0, 0] or octets[0] == 127:
            return found
        return self._faked("ipv4", ".".join(map(str, octets)), fake_ipv4, found)

    def _ipv6(self, found: str) -> str | None:
        written, percent, zone = found.partition("%")
        try:
            address = ipaddress.IPv6Address(written)
        except ValueError:
            return None
        if address.is_unspecified or address.is_loopback:
            return found
        mapped = address.ipv4_mapped
        if mapped is not None:  # ::ffff:a.b.c.d is the customer's IPv4 address: the same fake
            fake = ipaddress.IPv4Address(self._ipv4(str(mapped)) or str(mapped))
            if "." in written:
                return written[: written.rindex(":") + 1] + str(fake) + percent + zone
            return f"::ffff:{int(fake) >> 16:x}:{int(fake) & 0xFFFF:x}{percent}{zone}"
        return self._faked("ipv6", address.compressed, fake_ipv6, written) + percent + zone

    def sdp(self, text: str) -> str:
        """A call's session description, line by line: its own numbers stay, its addresses and user name do not."""
        return "".join(self._sdp_line(line) for line in text.splitlines(keepends=True))

    def _sdp_line(self, line: str) -> str:
        content = line.rstrip("\r\n")
        prefix = next((key for key in _SDP_NUMBERS if content.startswith(key)), None)
        if prefix is None:
            head = content[:2] if content[1:2] == "=" else ""
            return head + self.scrub(line[len(head) :])
        parts = _SDP_TOKENS.split(content[len(prefix) :])
        tokens = parts[::2]
        is_number = _SDP_NUMBERS[prefix]
        for index, token in enumerate(tokens):
            if prefix == "o=" and index == 0:
                parts[0] = self._sdp_user(token)
            elif token:
                parts[2 * index] = self.scrub(token, detect_phones=not is_number(index, tokens))
        return prefix + "".join(parts) + line[len(content) :]

    def _sdp_user(self, user: str) -> str:
        """The origin's user name: "-" when the client hides it, else a number or an id of the customer."""
        if user in ("-", ""):
            return user
        return self.phone(user) if _PHONE_ONLY.fullmatch(user) else self.user_id(user)

    def vcard(self, text: str, label: Callable[[str, str], str]) -> str:
        """A vCard line by line: names, organisations and addresses by property, the rest as text."""
        return "".join(self._vcard_line(line, label) for line in text.splitlines(keepends=True))

    def _vcard_line(self, line: str, label: Callable[[str, str], str]) -> str:
        content = line.rstrip("\r\n")
        head, colon, value = content.partition(":")
        prop = head.split(";")[0].rsplit(".", 1)[-1].upper()
        table = "name" if prop in _VCARD_NAMES else "company" if prop in _VCARD_ORG else "address"
        if not colon or prop not in _VCARD_NAMES | _VCARD_ORG | _VCARD_ADDRESS | {"BDAY"}:
            return self.scrub(line)
        parts = value.split(";")
        fake = "2000-01-01" if prop == "BDAY" else ";".join(label(table, part) if part else "" for part in parts)
        return head + colon + fake + line[len(content) :]
