"""Decode a webhook body into a typed summary of EVERY entry, change, message and status.

Most handlers read only entry[0].changes[0]; an inspector shows all of it and never crashes on
what arrives (this runs on every request, on bytes from anyone).
"""

from __future__ import annotations

import json
from collections import OrderedDict
from collections.abc import Mapping
from itertools import islice
from typing import Any, NamedTuple

import orjson

from wa_devtunnel.rules.decode.fields import (
    _LIST_READERS,
    _VALUE_READERS,
    Update,
    _list,
    _obj,
    _str,
    field_updates,
    history_chunk,
)
from wa_devtunnel.rules.decode.items import (
    _ITEM_DICTS,
    _ITEM_DICTS_WITHOUT_VALUES,
    TEXT_LIMIT,
    ChangeError,
    FieldUpdate,
    InboundMessage,
    Item,
    MetaError,
    StatusUpdate,
    one_line,
    short_id,
)
from wa_devtunnel.rules.decode.leaves import MAX_VALUES, leaf_values
from wa_devtunnel.rules.decode.messages import Content, _contacts_by_id, _inbound, _meta_error, _status, _Where

__all__ = [
    "DASHBOARD_TEST_ENTRY_ID",
    "DASHBOARD_TEST_MESSAGE_ID",
    "DASHBOARD_TEST_PHONE_NUMBER_ID",
    "TEXT_LIMIT",
    "WHATSAPP_OBJECT",
    "AckFacts",
    "ChangeError",
    "Content",
    "FieldUpdate",
    "InboundMessage",
    "Item",
    "MetaError",
    "SeenIds",
    "StatusUpdate",
    "Update",
    "WebhookSummary",
    "ack_facts",
    "decode_payload",
    "field_updates",
    "full_summary",
    "message_key",
    "one_line",
    "phone_number_ids",
    "short_id",
    "status_key",
]

WHATSAPP_OBJECT = "whatsapp_business_account"
DASHBOARD_TEST_ENTRY_ID = "0"
DASHBOARD_TEST_PHONE_NUMBER_ID = "123456123"
DASHBOARD_TEST_MESSAGE_ID = "ABGGFlA5Fpa"
_MAX_RAW_KEYS = 50
# orjson parses in a third of the time but reads integers beyond 64 bits as floats: a body where
# a run of 19 digits may be a number goes to json.loads. (Deeper than 1024, orjson sends it there too.)
_DIGITS_AS_ZERO = bytes.maketrans(b"123456789", b"000000000")
_LONG_NUMBER = b"0" * 19
_BEFORE_A_NUMBER = frozenset(b":,[ \t\r\n")


class WebhookSummary(NamedTuple):
    """The WhatsApp view of one POST body: every item in order, plus what is odd about it."""

    ok: bool
    problem: str
    object: str
    fields: tuple[str, ...]
    items: tuple[Item, ...]
    flags: tuple[str, ...]
    headline: str
    lines: tuple[str, ...] = ()  # item.line() of each item, computed once by the decoder
    with_values: bool = True  # False: decoded with values=False, the items' `values` were not walked

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready, stable keys: this is the `summary` of a recorded exchange. Decoded with
        values=False, items have no `values` key and the summary says `"values_omitted": true`."""
        ok, problem, obj, fields, items, flags, headline, lines, with_values = self
        if len(lines) != len(items):
            lines = tuple([item.line() for item in items])
        dicts = _ITEM_DICTS if with_values else _ITEM_DICTS_WITHOUT_VALUES
        listed = [dicts[item.__class__](item, line) for item, line in zip(items, lines, strict=True)]
        document = _new(_SummaryKeys if with_values else _LeanSummaryKeys)  # see items._compile_dict
        document.ok, document.problem, document.object, document.fields = ok, problem, obj, list(fields)
        document.flags, document.headline, document.items = list(flags), headline, listed
        if not with_values:
            document.values_omitted = True
        return document.__dict__  # type: ignore[no-any-return]


class _SummaryKeys:
    """A summary's dict is the __dict__ of one of these: one shared key table (items._compile_dict)."""


class _LeanSummaryKeys:
    """The same, with `values_omitted` last (values=False)."""


_new = object.__new__


class SeenIds:
    """Bounded FIFO memory of delivered ids: Meta retries for days and apps must de-duplicate."""

    __slots__ = ("_keys", "limit")

    def __init__(self, limit: int = 100_000) -> None:
        if limit < 1:
            raise ValueError("limit must be at least 1")
        self.limit = limit
        self._keys: OrderedDict[str, None] = OrderedDict()

    def seen_before(self, key: str) -> bool:
        """Record `key`; True when it was already recorded (and not yet evicted)."""
        if key in self._keys:
            return True
        self._keys[key] = None
        if len(self._keys) > self.limit:
            self._keys.popitem(last=False)
        return False

    def seen_any(self, keys: list[str]) -> bool:
        """seen_before for each of `keys` in order, in one call; True when any was already recorded."""
        known, limit, repeated = self._keys, self.limit, False
        for key in keys:
            if key in known:
                repeated = True
                continue
            known[key] = None
            if len(known) > limit:
                known.popitem(last=False)
        return repeated

    def __contains__(self, key: object) -> bool:
        return key in self._keys

    def __len__(self) -> int:
        return len(self._keys)


def message_key(message_id: str) -> str:
    """What SeenIds remembers of a message (an echo too): the decoder and the receiver's cheap pass both use it."""
    return f"message:{message_id}"


def status_key(status_id: str, status: str) -> str:
    """What SeenIds remembers of a status: the same id with another status is news, not a retry."""
    return f"status:{status_id}:{status}"


class _Decoder:
    """Walks entry[] x changes[] once, collecting items and flags (runs on every request: kept lean)."""

    __slots__ = ("accounts", "errors", "fields", "flags", "items", "seen", "values")

    def __init__(self, accounts: Mapping[str, str] | None, seen: SeenIds | None, values: bool = True) -> None:
        self.accounts = accounts or {}
        self.seen = seen
        self.values = values
        self.items: list[Item] = []
        self.fields: dict[str, None] = {}
        self.flags: set[str] = set()
        self.errors = 0  # ChangeError items: they never make a batch

    def entry(self, raw: Any) -> None:
        if not isinstance(raw, dict):
            self.malformed("", "", f"entry is {type(raw).__name__}, not an object")
            return
        waba_id = _str(raw.get("id"))
        if waba_id == DASHBOARD_TEST_ENTRY_ID:
            self.flags.add("dashboard-test")
        for change in _list(raw.get("changes")):
            if isinstance(change, dict):
                self.change(change, waba_id)
            else:
                self.malformed("", waba_id, f"change is {type(change).__name__}, not an object")

    def malformed(self, field: str, waba_id: str, detail: str) -> None:
        self.items.append(FieldUpdate(field, waba_id, "", "", detail, ()))

    def change(self, change: dict[str, Any], waba_id: str) -> None:
        field, value = _str(change.get("field")), change.get("value")
        if field:
            self.fields[field] = None
        if not isinstance(value, dict):
            kind = type(value).__name__ if "value" in change else "missing"
            self.malformed(field, waba_id, f"value is {kind}, not an object")
            return
        metadata = value.get("metadata")
        if metadata.__class__ is dict:
            phone_number_id, display = metadata.get("phone_number_id"), metadata.get("display_phone_number")
            if phone_number_id.__class__ is not str:
                phone_number_id = _str(phone_number_id)
            if display.__class__ is not str:
                display = _str(display)
        else:
            phone_number_id = display = ""
        if phone_number_id == DASHBOARD_TEST_PHONE_NUMBER_ID:
            self.flags.add("dashboard-test")
        accounts = self.accounts
        if accounts and phone_number_id and phone_number_id not in accounts:
            self.flags.add("unknown-phone-number-id")
        account = accounts.get(phone_number_id) if accounts and phone_number_id else None
        where = _new_tuple(_Where, (field, waba_id, phone_number_id, display, account))
        if field == "messages":
            self.messages(value, where)
        else:
            self.other_field(field, value, where)
        errors = value.get("errors")
        if errors:
            for error in _list(errors):
                if _is_meta_error(error):
                    self.error(field, waba_id, error)

    def error(self, field: str, waba_id: str, error: Any) -> None:
        leaves = leaf_values(error) if self.values else ()
        self.items.append(ChangeError(field, waba_id, _meta_error(error), leaves))
        self.errors += 1

    def other_field(self, field: str, value: dict[str, Any], where: _Where) -> None:
        """Any field but `messages`: its messages, statuses, echoes and history threads are decoded as
        messages and statuses; everything else through fields.field_updates."""
        echoes = value.get("message_echoes")
        history = value.get("history") if field == "history" else None
        has_messages = bool(value.get("messages") or value.get("statuses"))
        has_history = bool(history) and isinstance(history, list)
        decoded = has_messages or bool(echoes) or has_history
        raw_keys = tuple(islice(value, _MAX_RAW_KEYS))
        values, waba_id, items = self.values, where.waba_id, self.items
        contacts = _list(value.get("contacts")) if values and not has_messages and not echoes else []
        by_id = _contacts_by_id(contacts) if contacts else {}
        matched: set[int] = set()
        first = len(items)
        for event, subject, detail, raw, direction in field_updates(field, value, decoded):
            leaves = leaf_values(raw) if values else ()
            contact = by_id.get(subject) if by_id and subject else None
            if contact is not None:  # the user a call or a preference is about: their contacts[] entry
                matched.add(id(contact))
                leaves = _with(leaves, "contact.", contact)
            items.append(FieldUpdate(field, waba_id, event, subject, detail, raw_keys, leaves, direction))
        if contacts and len(items) > first:  # contacts no update names: kept on the change's last update
            last = items[-1]
            leaves = last.values
            for index, contact in enumerate(contacts):
                if id(contact) not in matched:
                    leaves = _with(leaves, f"contacts[{index}].", contact)
            items[-1] = last._replace(values=leaves)
        if has_messages:
            self.messages(value, where)
        if echoes:
            self.messages(value, where, _list(echoes), echo=True)
        if has_history:
            self.history(value, history, where)

    def history(self, value: dict[str, Any], chunks: list[Any], where: _Where) -> None:
        """`history` (WhatsApp Business app coexistence): per chunk its progress, then the messages of
        its threads (each with its history_context.status), then its errors."""
        contacts = _list(value.get("contacts"))
        by_id = _contacts_by_id(contacts) if contacts else {}
        raw_keys = tuple(islice(value, _MAX_RAW_KEYS))
        business = where.display_phone_number
        for chunk in map(_obj, chunks):
            shown = {k: v for k, v in chunk.items() if k not in ("threads", "errors")}
            if shown or not chunk.get("errors"):  # a chunk that only says "declined" is its error
                event, subject, detail, _, _ = history_chunk(chunk)
                leaves = leaf_values(shown) if self.values else ()
                self.items.append(FieldUpdate(where.field, where.waba_id, event, subject, detail, raw_keys, leaves))
            for thread in map(_obj, _list(chunk.get("threads"))):
                user = _str(thread.get("id"))
                for raw in map(_obj, _list(thread.get("messages"))):
                    status = _str(_obj(raw.get("history_context")).get("status"))
                    sender = _str(raw.get("from"))
                    echo = (
                        "to" in raw or bool(business and sender == business) or bool(user and sender and sender != user)
                    )
                    message = _inbound(raw, where, [], by_id, 0, self.values, echo, status)
                    if echo and not message.recipient and user:
                        message = message._replace(recipient=user)
                    self.items.append(message)
            for error in _list(chunk.get("errors")):
                if _is_meta_error(error):
                    self.error(where.field, where.waba_id, error)

    def messages(self, value: dict[str, Any], where: _Where, messages: Any = None, *, echo: bool = False) -> None:
        items, seen, values = self.items, self.seen, self.values
        keys: list[str] = []  # what `seen` records, in item order
        statuses = None
        if messages is None:
            messages, statuses = value.get("messages"), value.get("statuses")
        if messages:
            messages = _list(messages)
            contacts = _list(value.get("contacts"))
            by_id = _contacts_by_id(contacts) if contacts else {}
            for index, raw in enumerate(messages):
                message = _inbound(raw if raw.__class__ is dict else {}, where, contacts, by_id, index, values, echo)
                message_id = message.message_id
                if message_id:
                    if message_id == DASHBOARD_TEST_MESSAGE_ID:
                        self.flags.add("dashboard-test")
                    if seen is not None:
                        keys.append(message_key(message_id))
                items.append(message)
        if statuses:
            for raw in _list(statuses):
                status = _status(raw if raw.__class__ is dict else {}, where, values)
                if seen is not None and status.status_id:
                    keys.append(status_key(status.status_id, status.status))
                items.append(status)
        if keys and seen.seen_any(keys):  # type: ignore[union-attr]  # keys only when seen is not None
            self.flags.add("duplicate")




def _with(leaves: tuple[tuple[str, Any], ...], prefix: str, node: Any) -> tuple[tuple[str, Any], ...]:
    """`leaves` and then those of `node` under `prefix`, within MAX_VALUES."""
    more = tuple((f"{prefix}{path}", value) for path, value in leaf_values(node))
    return leaves + more[: max(0, MAX_VALUES - len(leaves))]


_ERROR_KEYS = ("code", "title", "message", "error_data", "details")


def _is_meta_error(error: Any) -> bool:
    """An item of Meta's errors[] (or something malformed in its place); not a field's own list named
    `errors` (flows' endpoint alerts list error types and rates), which that field's reader shows."""
    return not isinstance(error, dict) or not error or any(key in error for key in _ERROR_KEYS)


# Meta's field names (those the decoder reads by name): clean words, shown as they are.
_META_FIELDS = frozenset({"messages", "history", "smb_message_echoes", *_VALUE_READERS, *_LIST_READERS})
_FLAG_ORDER = ("batch", "dashboard-test", "unknown-phone-number-id", "duplicate")


def _plural(count: int, noun: str, plural: str) -> str:
    return f"{count} {noun if count == 1 else plural}"


# How a batch headline counts an item: by kind, a field update by its field (calls as calls).
_NOUNS = {
    "message": ("message", "messages"),
    "echo": ("echo", "echoes"),
    "status": ("status", "statuses"),
    "error": ("error", "errors"),
    "calls": ("call", "calls"),
}


def _count_words(key: str, count: int) -> str:
    nouns = _NOUNS.get(key)
    return _plural(count, *nouns) if nouns else f"{count} {one_line(key, 40) or 'change'}"


def _headline(
    items: list[Item], lines: tuple[str, ...], fields_seen: tuple[str, ...], entries: int, errors: int
) -> str:
    """One item (its own errors aside): its line, led by its field. More: `batch: ` and counts.
    `errors`: how many of the items are ChangeError."""
    if not items:
        if "messages" in fields_seen:
            return "messages: no messages or statuses"
        if fields_seen:
            return f"{', '.join(one_line(f, 40) for f in fields_seen)}: nothing to decode"
        return "entry[] is empty" if entries == 0 else "no changes in entry[]"
    if len(items) == 1:
        return _led(items[0], lines[0])
    if len(items) - errors <= 1:
        main = [i for i, item in enumerate(items) if item.__class__ is not ChangeError]
        first_error = next(i for i, item in enumerate(items) if item.__class__ is ChangeError)
        if not main:
            return f"{_led(items[first_error], lines[first_error])} (+{_count_words('error', errors - 1)})"
        more = lines[first_error] if errors == 1 else f"{_count_words('error', errors)}: {lines[first_error]}"
        return f"{_led(items[main[0]], lines[main[0]])} + {more}"
    # A batch: items counted by kind, a field update by its field (calls as calls). One loop, no call
    # per item: a batch holds up to 1000 of them.
    counts: dict[str, int] = {}
    for item in items:
        cls = item.__class__
        if cls is InboundMessage:
            key = "echo" if item.direction == "echo" else "message"
        elif cls is StatusUpdate:
            key = "status"
        elif cls is FieldUpdate:
            key = item.field
        else:
            key = "error"
        counts[key] = counts.get(key, 0) + 1
    parts = [_count_words(k, counts.pop(k)) for k in ("message", "echo", "status") if k in counts]
    counts.pop("error", None)
    parts += [_count_words(key, n) for key, n in counts.items()]
    if errors:
        parts.append(_count_words("error", errors))
    return f"batch: {', '.join(parts)}"


def _led(item: Item, line: str) -> str:
    field = item.field
    if field not in _META_FIELDS:  # Meta's own field names need no cleaning
        field = one_line(field, 60) or "change"
    return line if line == field or line.startswith(f"{field} ") else f"{field}: {line}"


def _refused(problem: str, obj: str = "") -> WebhookSummary:
    return WebhookSummary(False, problem, obj, (), (), (), problem)


def decode_payload(
    body: bytes,
    *,
    accounts_by_phone_number_id: Mapping[str, str] | None = None,
    seen: SeenIds | None = None,
    values: bool = True,
) -> WebhookSummary:
    """Decode every item of a POST body; never raises, whatever the bytes or the JSON shape.

    values=False leaves every item's `values` empty (cheaper; the named fields and lines are the same)."""
    try:
        return _decode(body, accounts_by_phone_number_id, seen, values)
    except Exception as exc:
        return _refused(f"decoder error: {type(exc).__name__}")


def may_hold_a_big_integer(body: bytes) -> bool:
    """A run of 19+ digits where a JSON number can start (orjson would read it as a float: json.loads must);
    runs inside ids ("US.1234...") don't count. A translation and a find: no regular expression per line."""
    digits = body.translate(_DIGITS_AS_ZERO)
    start = digits.find(_LONG_NUMBER)
    while start != -1:
        before = start - 1 if start and digits[start - 1] == 45 else start  # 45: a minus sign
        if before == 0 or digits[before - 1] in _BEFORE_A_NUMBER:
            return True
        start = digits.find(_LONG_NUMBER, start + len(_LONG_NUMBER))
    return False


def _load_json(body: bytes) -> Any:
    """What json.loads(body) gives, with two differences: lone surrogates (from "\\ud800" escapes,
    in keys and values) become "?" so the summary always encodes; and bodies orjson reads parse up to
    its 1024 levels of nesting, where json.loads gives up near 1000 (less on a deep stack). Bodies
    only json.loads reads (NaN, a BOM, UTF-16, integers beyond 64 bits) keep its limit."""
    if not may_hold_a_big_integer(body):
        try:
            return orjson.loads(body)  # orjson refuses lone surrogates, so its strings are always clean
        except orjson.JSONDecodeError:
            pass  # NaN, a BOM, UTF-16, lone surrogates, too deep... or invalid: json.loads decides and explains
    document = json.loads(body)
    text = json.dumps(document, ensure_ascii=False)
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:  # the summary must always encode as UTF-8
        return json.loads(text.encode("utf-8", "replace"))
    return document


def _decode(body: bytes, accounts: Mapping[str, str] | None, seen: SeenIds | None, values: bool) -> WebhookSummary:
    if not body:
        return _refused("body is not JSON: empty body")
    try:
        document = _load_json(body)
    except RecursionError:
        return _refused("body is not JSON: nested too deeply")
    except ValueError as exc:
        return _refused(f"body is not JSON: {one_line(str(exc), 120)}")
    if not isinstance(document, dict):
        return _refused(f"JSON is not an object ({type(document).__name__})")
    obj = _str(document.get("object"))
    problem = ""
    if obj != WHATSAPP_OBJECT:
        shown = f"'{one_line(obj, 40)}'" if obj else "missing"
        problem = f"object is {shown}, expected '{WHATSAPP_OBJECT}'"
    entries = document.get("entry")
    if not isinstance(entries, list):
        problem = problem or ("no entry[]" if entries is None else "entry is not a list")
        entries = []
    decoder = _Decoder(accounts, seen, values)
    for entry in entries:
        decoder.entry(entry)
    items = decoder.items
    if len(items) - decoder.errors > 1:
        decoder.flags.add("batch")  # an item's own errors never make a batch
    fields_seen = tuple(decoder.fields)
    lines = tuple([item.line() for item in items])
    headline = problem or _headline(items, lines, fields_seen, len(entries), decoder.errors)
    flags = tuple([flag for flag in _FLAG_ORDER if flag in decoder.flags]) if decoder.flags else ()
    return _new_tuple(
        WebhookSummary, (not problem, problem, obj, fields_seen, tuple(items), flags, headline, lines, values)
    )


_new_tuple = tuple.__new__  # a NamedTuple built from a tuple, without its Python-level __new__


class AckFacts(NamedTuple):
    """What the receiver must know before it answers, from one parse and no decoding (see ack_facts)."""

    refused: WebhookSummary | None  # an empty body, not JSON or not an object: the 400's summary
    flags: tuple[str, ...]  # what only the receiver knows: unknown-phone-number-id, duplicate (in _FLAG_ORDER)
    accounts: dict[str, str]  # phone_number_id -> account, for the configured numbers the body names
    item_accounts: tuple[str, ...]  # the accounts its messages and statuses are labelled with (distinct)

    def partial_summary(self) -> dict[str, Any]:
        """The recorded `summary` of an accepted body: the receiver's own knowledge, the rest derived by readers
        (full_summary) from request.body. docs/recording-format.md describes the shape."""
        summary: dict[str, Any] = {"partial": True, "flags": list(self.flags)}
        if self.accounts:
            summary["accounts"] = self.accounts
        return summary


_NO_FACTS = AckFacts(None, (), {}, ())


def ack_facts(
    body: bytes, *, accounts_by_phone_number_id: Mapping[str, str] | None = None, seen: SeenIds | None = None
) -> AckFacts:
    """One parse of a POST body, no decoding: the 400 (as decode_payload words it), the flags only the receiver
    can know (`seen` records the same keys, in the same order, as decode_payload's) and the accounts.
    Never raises."""
    try:
        return _ack_facts(body, accounts_by_phone_number_id or {}, seen)
    except Exception:
        return _NO_FACTS


def _ack_facts(body: bytes, accounts: Mapping[str, str], seen: SeenIds | None) -> AckFacts:
    if not body:
        return AckFacts(_refused("body is not JSON: empty body"), (), {}, ())
    try:
        document = _load_json(body)
    except RecursionError:
        return AckFacts(_refused("body is not JSON: nested too deeply"), (), {}, ())
    except ValueError as exc:
        return AckFacts(_refused(f"body is not JSON: {one_line(str(exc), 120)}"), (), {}, ())
    if not isinstance(document, dict):
        return AckFacts(_refused(f"JSON is not an object ({type(document).__name__})"), (), {}, ())
    # A parsed document holds exact dicts and lists: class tests instead of isinstance(), no helper calls.
    entries = document.get("entry")
    if entries.__class__ is not list:
        return _NO_FACTS
    keys: list[str] | None = [] if seen is not None else None
    named: dict[str, str] = {}
    item_accounts: dict[str, None] = {}
    unknown = False
    for entry in entries:
        changes = entry.get("changes") if entry.__class__ is dict else None
        if changes.__class__ is not list:
            continue
        for change in changes:
            value = change.get("value") if change.__class__ is dict else None
            if value.__class__ is not dict:
                continue
            metadata = value.get("metadata")
            number = _str(metadata.get("phone_number_id")) if metadata.__class__ is dict else ""
            account = None
            if accounts and number:
                account = accounts.get(number)
                if account is None:
                    unknown = True
                else:
                    named[number] = account
            if keys is None and account is None:
                continue
            if _deliveries(_str(change.get("field")), value, keys) and account is not None:
                item_accounts[account] = None
    duplicate = bool(keys) and seen.seen_any(keys)  # type: ignore[union-attr,arg-type]  # keys only with seen
    flags = (("unknown-phone-number-id",) if unknown else ()) + (("duplicate",) if duplicate else ())
    return AckFacts(None, flags, named, tuple(item_accounts))


def _deliveries(field: str, value: dict[str, Any], keys: list[str] | None) -> bool:
    """Adds the change's SeenIds keys in _Decoder's order (messages, statuses, echoes); True when the decoder
    makes message or status items of it (they carry the change's account)."""
    messages, statuses = value.get("messages"), value.get("statuses")
    messages = messages if messages.__class__ is list else []
    statuses = statuses if statuses.__class__ is list else []
    echoes = _list(value.get("message_echoes")) if field != "messages" else []
    if keys is not None:
        for raw in messages:
            _message_key_into(keys, raw)
        for raw in statuses:
            raw = raw if raw.__class__ is dict else {}
            status_id = _str(raw.get("id"))
            if status_id:
                keys.append(status_key(status_id, _str(raw.get("status"))))
        for raw in echoes:
            _message_key_into(keys, raw)
    if messages or statuses or echoes:
        return True
    history = value.get("history") if field == "history" else None
    if not history or not isinstance(history, list):
        return False
    return any(_list(_obj(thread).get("messages")) for chunk in history for thread in _list(_obj(chunk).get("threads")))


def _message_key_into(keys: list[str], raw: Any) -> None:
    message_id = raw.get("id") if raw.__class__ is dict else ""
    if message_id.__class__ is not str:
        message_id = _str(message_id)
    if message_id:
        keys.append(message_key(message_id))


def phone_number_ids(body: bytes) -> tuple[str, ...]:
    """The distinct metadata.phone_number_id of a body's changes, in order (() when it has none or is not JSON)."""
    try:
        document = _load_json(body)
    except (ValueError, RecursionError):
        return ()
    numbers: dict[str, None] = {}
    for entry in _list(document.get("entry")) if isinstance(document, dict) else ():
        for change in _list(_obj(entry).get("changes")):
            metadata = _obj(_obj(_obj(change).get("value")).get("metadata"))
            number = _str(metadata.get("phone_number_id"))
            if number:
                numbers[number] = None
    return tuple(numbers)


_RECEIVER_FLAGS = frozenset({"unknown-phone-number-id", "duplicate"})


def full_summary(partial: Mapping[str, Any], body: bytes) -> dict[str, Any]:
    """The summary the receiver used to write, from a partial one (AckFacts.partial_summary) and the body:
    decoded as the receiver decodes (values=False, the configured numbers it recorded), with its flags."""
    accounts = partial.get("accounts")
    summary = decode_payload(
        body, accounts_by_phone_number_id=accounts if isinstance(accounts, dict) else None, values=False
    ).to_dict()
    summary["flags"] = merged_flags(
        [flag for flag in summary["flags"] if flag not in _RECEIVER_FLAGS], partial.get("flags")
    )
    return summary


def partial_of(summary: Mapping[str, Any]) -> dict[str, Any]:
    """What only the receiver knew of a summary, partial or whole (AckFacts.partial_summary's form): its flags
    (duplicate, unknown-phone-number-id) and the configured accounts of the numbers it named. full_summary of
    it and the same body gives the whole summary back; another body gets that body's own summary."""
    if summary.get("partial") is True:
        accounts = summary.get("accounts")
    else:
        items = summary.get("items")
        accounts = {
            str(item.get("phone_number_id")): item["account"]
            for item in (items if isinstance(items, list) else ())
            if isinstance(item, Mapping) and isinstance(item.get("account"), str) and item.get("phone_number_id")
        }
    flags = summary.get("flags")
    partial: dict[str, Any] = {
        "partial": True,
        "flags": [str(flag) for flag in flags if flag in _RECEIVER_FLAGS] if isinstance(flags, list) else [],
    }
    if isinstance(accounts, Mapping) and accounts:
        partial["accounts"] = dict(accounts)
    return partial


def merged_flags(decoded: list[str], recorded: Any) -> list[str]:
    """A summary decoded again keeps the flags only the receiver knew; known flags in their usual order."""
    if not isinstance(recorded, list) or not recorded:
        return decoded
    together = dict.fromkeys([*decoded, *(str(flag) for flag in recorded)])
    ordered = [flag for flag in _FLAG_ORDER if flag in together]
    return ordered + [flag for flag in together if flag not in _FLAG_ORDER]
