"""The tables behind scrubbing: one real value, one fake, for a whole export.

Pure. Numbers are keyed by their digits, so "+1 (650) 555-1234" in a text and "16505551234" in
`from` are one person; a national or 00-prefixed form of a number already seen gets the matching
part of that number's fake. Names and other words met in fields are also found inside texts, in
any letter case, and a person's name part by part ("jane", "QUIXOTE"), except in a text that is one
keyword of the payload's schema ("read", "USER_INITIATED"), which only its exact spelling replaces.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterable
from typing import Any

from wa_devtunnel.rules.scrub.fakes import fake_phone

_MAX_TRIES = 10_000
_TAIL = 7  # the shortest national number we link to a full one
_COUNTRY_CODE_MAX = 3
# Shorter words would replace parts of ordinary text; longer ones are replaced in their own field only.
_WORD_MIN, _WORD_MAX = 3, 64
_NAME_PART = re.compile(r"\w+")
# A text that is one lower- or upper-case keyword is a value of the schema (a status "read", a type
# "text"), not prose: a customer whose name has a part "Read" must not rename every read receipt.
_KEYWORD = re.compile(r"[a-z][a-z0-9_]*|[A-Z][A-Z0-9_]*")

Make = Callable[[int, str], str]


class Pseudonyms:
    """Real value -> fake value, per kind of value (phone, name, user, email, ip ...)."""

    def __init__(self) -> None:
        self._tables: dict[str, dict[str, str]] = {}
        self._used: dict[str, set[str]] = {}
        self._counters: dict[str, int] = {}
        self._business: set[str] = set()
        self._tails: dict[str, list[str]] = {}
        self._words: dict[str, str] = {}  # case-folded word -> fake
        self._spellings: dict[str, str] = {}  # case-folded word -> its lower-case form, for the pattern
        self._exact: dict[str, str] = {}  # a whole value met in a field, as written -> fake
        self._parts: set[str] = set()  # case-folded words that are only a part of a name
        self._words_pattern: re.Pattern[str] | None = None
        self._pending: list[str] = []
        self.collecting = False  # while learning: numbers wait for settle(), so full forms get fakes first

    def known(self, table: str, real: str) -> str | None:
        """The fake already given for a real value, if any."""
        return self._tables.get(table, {}).get(real)

    def is_fake(self, table: str, value: str) -> bool:
        """True when the value is a fake this export made (scanning it again must not re-fake it)."""
        return value in self._used.get(table, ())

    def fake(self, table: str, real: str, make: Make, *, unique: bool = True) -> str:
        """The fake for `real`, made once; `unique` fakes never stand for two real values."""
        known = self.known(table, real)
        if known is not None:
            return known
        mapping = self._tables.setdefault(table, {})
        used = self._used.setdefault(table, set())
        n = self._counters.get(table, 0) + 1
        fake = make(n, real)
        for _ in range(_MAX_TRIES if unique else 0):
            if self._free(table, real, fake):
                break
            n += 1
            fake = make(n, real)
        self._counters[table] = n
        mapping[real] = fake
        used.add(fake)
        return fake

    def label(
        self, table: str, real: str, make: Callable[[int], str], *, word: bool = False, parts: bool = False
    ) -> str:
        """A numbered fake ("Customer 3"); a `word` (a name, a place) is also replaced inside texts, its `parts` too."""
        fake = self.fake(table, real, lambda n, _real: make(n))
        if word:
            self.add_word(real, fake, parts=parts)
        return fake

    def _free(self, table: str, real: str, fake: str) -> bool:
        taken = fake in self._used.get(table, ()) or fake in self._tables.get(table, {})
        return fake != real and not taken and fake not in self._business

    def note_business(self, digits: str) -> None:
        """The business's own number: kept wherever it appears, never handed out as a fake."""
        if digits and digits not in self._business:
            self._business.add(digits)
            self._index_tail(digits)

    def phone(self, digits: str) -> str:
        """The fake for a customer's number (its digits only); the business's number stays."""
        if self.collecting:
            self._pending.append(digits)
            return digits
        known = self.known_phone(digits)
        if known is not None:
            return known
        derived = self._variant(digits)
        if derived is not None and digits in self._business:
            return digits
        if derived is not None and self._free("phone", digits, derived):
            self._tables.setdefault("phone", {})[digits] = derived
            self._used.setdefault("phone", set()).add(derived)
            return derived
        self._index_tail(digits)
        return self.fake("phone", digits, fake_phone)

    def settle(self) -> None:
        """Give the numbers collected by learning their fakes: full numbers first, then their national forms."""
        pending, self._pending = list(dict.fromkeys(self._pending)), []
        tails: dict[str, list[str]] = {}
        for digits in pending:
            tails.setdefault(digits[-_TAIL:], []).append(digits)
        shorter = [digits for digits in pending if _longer_form(digits, tails) is not None]
        for digits in [d for d in pending if d not in set(shorter)] + shorter:
            self.phone(digits)

    def known_phone(self, digits: str) -> str | None:
        """The fake of a number already met (no new fake): for ids, where a digit run may be anything."""
        return digits if digits in self._business else self.known("phone", digits)

    def linked_phone(self, digits: str) -> str | None:
        """Like known_phone, and also a national or 00-form of a number already met."""
        known = self.known_phone(digits)
        return known if known is not None or self._variant(digits) is None else self.phone(digits)

    def _index_tail(self, digits: str) -> None:
        if len(digits) >= _TAIL:
            self._tails.setdefault(digits[-_TAIL:], []).append(digits)

    def _variant(self, digits: str) -> str | None:
        """A national ("0650...", "650...") or "00"-prefixed form of a number met before: its fake's tail."""
        match = _longer_form(digits, self._tails)
        if match is None:
            return None
        full, prefix, extra = match
        if full in self._business:
            self._business.add(digits)
            return digits
        return prefix + self._tables["phone"][full][extra:]

    def add_word(self, real: str, fake: str, *, parts: bool = False) -> None:
        """A name (or username, place ...) that texts may quote, in any case: replaced there too, its `parts` too."""
        if _WORD_MIN <= len(real) <= _WORD_MAX and real != fake:
            self._exact[real] = fake
            self._add_word(real, fake, part=False)
        for part, fake_part in _name_parts(real, fake) if parts else ():
            self._add_word(part, fake_part, part=True)

    def _add_word(self, real: str, fake: str, *, part: bool) -> None:
        """A whole value met in a field wins over a part of a name; of two parts, the first met stays."""
        key = real.casefold()
        if not _WORD_MIN <= len(real) <= _WORD_MAX or key == fake.casefold():
            return
        if part and key in self._words:
            return
        if part:
            self._parts.add(key)
        elif key in self._parts:
            self._parts.discard(key)
        elif self._words.get(key) == fake:
            return
        self._words[key] = fake
        self._spellings[key] = real.lower()
        self._words_pattern = None

    def replace_words(self, text: str) -> str:
        """Every known word in the text, as a whole word in any letter case, swapped for its fake (longest first)."""
        if not self._words:
            return text
        if _KEYWORD.fullmatch(text):
            return self._exact.get(text, text)
        if self._words_pattern is None:
            trie = _trie_pattern(self._spellings.values())
            self._words_pattern = re.compile(rf"(?<!\w)(?:{trie})(?!\w)", re.IGNORECASE)
        return self._words_pattern.sub(self._word_fake, text)

    def _word_fake(self, match: re.Match[str]) -> str:
        """The fake of the word matched; the regex may fold a letter that casefold() does not (rare)."""
        found = match.group(0)
        fake = self._words.get(found.casefold())
        if fake is None:
            keys = (key for key, word in self._spellings.items() if re.fullmatch(re.escape(word), found, re.I))
            fake = self._words.get(next(keys, ""), found)
        return fake


def _longer_form(digits: str, tails: dict[str, list[str]]) -> tuple[str, str, int] | None:
    """The number `digits` is a national, trunk-0 or 00-prefixed form of: (that number, prefix, its extra digits)."""
    for prefix in ("00", "0", ""):
        core = digits[len(prefix) :] if digits.startswith(prefix) else ""
        if len(core) < _TAIL:
            continue
        for full in tails.get(core[-_TAIL:], ()):
            extra = len(full) - len(core)
            if 0 <= extra <= _COUNTRY_CODE_MAX and (prefix or extra) and full.endswith(core):
                return full, prefix, extra
    return None


def _name_parts(real: str, fake: str) -> list[tuple[str, str]]:
    """Each word of a name with 3+ letters, and the fake's matching word: the first to the first, others to the last."""
    words, fakes = _NAME_PART.findall(real), fake.split() or [fake]
    return [
        (word, fakes[0] if index == 0 else fakes[-1])
        for index, word in enumerate(words)
        if word != real and sum(char.isalpha() for char in word) >= _WORD_MIN
    ]


def _trie_pattern(words: Iterable[str]) -> str:
    """One regex for many words, shaped as a trie so matching costs the text's length, not the word count."""
    trie: dict[str, Any] = {}
    for word in words:
        node = trie
        for char in word:
            node = node.setdefault(char, {})
        node[""] = {}
    return _node_pattern(trie)


def _node_pattern(node: dict[str, Any]) -> str:
    branches = [re.escape(char) + _node_pattern(child) for char, child in sorted(node.items()) if char]
    if not branches:
        return ""
    body = branches[0] if len(branches) == 1 else "(?:" + "|".join(branches) + ")"
    return f"(?:{body})?" if "" in node else body
