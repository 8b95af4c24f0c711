"""Message lifecycle: statuses joined to the message they report on, and each contact's thread.

Meta reports what happened to a message the business sent as separate `statuses[]` items, often in
other deliveries, out of order, skipped (`delivered` is implied by `read`) and repeated (retries for
up to 7 days). The book joins them by wamid, in status order, without duplicates, with pricing,
conversation, `biz_opaque_callback_data` and the errors of a failure; inbound messages and business-app
echoes make each contact's thread. Pure: fed decoded items (the decoder's NamedTuples or the recorded
summary's dicts), no I/O. Memory is bounded: the newest MESSAGE_LIMIT messages are kept.
"""

from __future__ import annotations

import base64
import binascii
import sys
from collections import OrderedDict
from collections.abc import Iterable, Iterator, Mapping
from datetime import datetime, tzinfo
from typing import Any, NamedTuple

from wa_devtunnel.rules.decode.fields import whole_number
from wa_devtunnel.rules.decode.items import InboundMessage, StatusUpdate, one_line, short_id
from wa_devtunnel.rules.decode.payload import decode_payload

MESSAGE_LIMIT = 50_000  # newest messages kept (about 1.1 KB each with 3 statuses: 55 MB at the cap); oldest forgotten
STATUS_LIMIT = 64  # statuses kept per message (a group message gets one per member and status)
TEXT_KEPT = 200  # characters of a message's text kept for its thread
# Meta's order of a message's life; anything else (a status Meta adds later) sorts after them by time.
STATUS_RANKS = {"sent": 1, "delivered": 2, "read": 3, "played": 4, "failed": 5, "deleted": 6}
_OTHER_RANK = 5


def _get(item: Any, name: str) -> Any:
    """A field of a decoded item: a NamedTuple (live) or its summary dict (a recording, maybe older)."""
    if isinstance(item, Mapping):
        return item.get(name)
    return getattr(item, name, None)


def _text(value: Any) -> str:
    """A string field whatever a recording holds there (a number, null, something odd)."""
    if isinstance(value, str):
        return value
    if value is None or isinstance(value, bool | dict | list | tuple):
        return ""
    return str(value)


def _kind(item: Any) -> str:
    if isinstance(item, Mapping):
        return _text(item.get("kind"))
    if isinstance(item, InboundMessage):
        return "message"
    return "status" if isinstance(item, StatusUpdate) else ""


def _epoch(received_at: str) -> float | None:
    """The record's ISO time (`2026-12-07T08:12:34.123456Z`) as Unix seconds."""
    try:
        return datetime.fromisoformat(received_at.replace("Z", "+00:00")).timestamp()
    except (ValueError, TypeError):
        return None


def _shared(text: str) -> str:
    """Ids, numbers and names repeat across thousands of messages: one copy each."""
    return sys.intern(text) if len(text) <= 64 else text


def item_line(item: Any) -> str:
    """The decoder's one line for an item (the summary dict carries it; a NamedTuple computes it)."""
    if isinstance(item, Mapping):
        return _text(item.get("line"))
    line = getattr(item, "line", None)
    return line() if callable(line) else ""


class MetaProblem(NamedTuple):
    """An error of a status: Meta's code (what its error table is keyed by) and title."""

    code: int | None
    title: str

    def text(self) -> str:
        """`131049 This message was not delivered ...` as one terminal-safe line."""
        words = ("" if self.code is None else str(self.code), one_line(self.title, 120))
        return " ".join(w for w in words if w) or "error without code or title"


class StatusSeen(NamedTuple):
    """One status of a message: Meta's time for it, and when (and in which exchange) it reached us."""

    status: str
    timestamp: int | None
    received: float | None
    seq: int
    participant: str
    problems: tuple[MetaProblem, ...]

    @property
    def when(self) -> float | None:
        """Meta's time; our receiving time when Meta gave none."""
        return self.timestamp if self.timestamp is not None else self.received

    def order(self) -> tuple[int, float, int]:
        return (STATUS_RANKS.get(self.status, _OTHER_RANK), self.when or 0.0, self.seq)


def _problems(raw: Any) -> tuple[MetaProblem, ...]:
    if not isinstance(raw, list | tuple):
        return ()
    problems = []
    for error in raw[:3]:
        code = _get(error, "code")
        code = whole_number(code)
        title = _text(_get(error, "title")) or _text(_get(error, "message")) or _text(_get(error, "details"))
        problems.append(MetaProblem(code, title[:TEXT_KEPT]))
    return tuple(problems)


class TrackedMessage:
    """One wamid: which way it went, to or from whom, and (sent by the business) everything Meta reported."""

    __slots__ = (
        "billable",
        "biz_opaque_callback_data",
        "business",
        "contact",
        "context_id",
        "conversation_category",
        "conversation_expiration",
        "conversation_id",
        "copies",
        "direction",
        "group_id",
        "pricing_category",
        "pricing_model",
        "pricing_type",
        "received",
        "seq",
        "statuses",
        "statuses_cut",
        "text",
        "timestamp",
        "type",
        "wamid",
    )

    def __init__(self, wamid: str, direction: str, seq: int, received: float | None) -> None:
        self.wamid = wamid
        self.direction = direction  # "from" a user, "to" a user (seen by its statuses), "echo" (business app)
        self.seq = seq
        self.received = received
        self.contact = self.group_id = self.business = ""
        self.type = self.text = self.context_id = ""
        self.timestamp: int | None = None
        self.biz_opaque_callback_data = ""
        self.pricing_category = self.pricing_model = self.pricing_type = ""
        self.billable: bool | None = None
        self.conversation_id = self.conversation_expiration = self.conversation_category = ""
        self.statuses: list[StatusSeen] = []
        self.statuses_cut = 0
        self.copies = 0  # deliveries of something already known (Meta's retries)

    @property
    def outgoing(self) -> bool:
        return self.direction != "from"

    @property
    def thread_key(self) -> str:
        """Whose thread it is in: the group's, else the user's."""
        return f"group {self.group_id}" if self.group_id else self.contact

    @property
    def when(self) -> float:
        """When it was sent: its own timestamp, else its first status's, else when we first heard of it."""
        if self.timestamp is not None:
            return float(self.timestamp)
        times = [s.when for s in self.statuses if s.when is not None]
        if times:
            return float(min(times))
        return self.received or 0.0

    @property
    def current(self) -> str:
        """The furthest status (a late `delivered` never undoes a `read`)."""
        return self.statuses[-1].status if self.statuses else ""

    @property
    def problems(self) -> tuple[MetaProblem, ...]:
        """The errors of its failure (or of any status that carried some)."""
        return tuple(p for s in self.statuses for p in s.problems)


class Joined(NamedTuple):
    """An item fed to the book and the message it concerns (None: not a message or status, or no id)."""

    item: Any
    message: TrackedMessage | None


class LifecycleBook:
    """Every message seen, by wamid, with its statuses; each contact's (or group's) thread in and out.

    Not thread-safe: one owner feeds and reads it (a front end guards it with a lock).
    """

    def __init__(self, limit: int = MESSAGE_LIMIT) -> None:
        if limit < 1:
            raise ValueError("limit must be at least 1")
        self.limit = limit
        self._messages: OrderedDict[str, TrackedMessage] = OrderedDict()
        self._threads: dict[str, dict[str, None]] = {}
        self.dropped = 0  # messages forgotten to stay within `limit`
        self.outgoing_count = 0

    def __len__(self) -> int:
        return len(self._messages)

    def message(self, wamid: str) -> TrackedMessage | None:
        return self._messages.get(wamid)

    def add_record(self, record: Mapping[str, Any]) -> list[Joined]:
        """Feed one recorded exchange (a POST event): its summary's items, or its body decoded again."""
        if not isinstance(record, Mapping) or record.get("kind") != "event":
            return []
        seq = record.get("seq")
        return self.add(
            record_items(record),
            received_at=_text(record.get("received_at")),
            seq=seq if isinstance(seq, int) and not isinstance(seq, bool) else 0,
        )

    def add(self, items: Iterable[Any], received_at: str = "", seq: int = 0) -> list[Joined]:
        """Feed the items of one delivery, in order; says which message each one joined."""
        received = _epoch(received_at) if received_at else None
        joined = []
        for item in items:
            kind = _kind(item)
            message = None
            if kind == "message":
                message = self._inbound(item, received, seq)
            elif kind == "status":
                message = self._status(item, received, seq)
            joined.append(Joined(item, message))
        return joined

    def _entry(self, wamid: str, direction: str, received: float | None, seq: int) -> tuple[TrackedMessage, bool]:
        message = self._messages.get(wamid)
        if message is not None:
            return message, False
        message = self._messages[wamid] = TrackedMessage(wamid, direction, seq, received)
        if message.outgoing:
            self.outgoing_count += 1
        if len(self._messages) > self.limit:
            self._forget(self._messages.popitem(last=False)[1])
        return message, True

    def _forget(self, message: TrackedMessage) -> None:
        self.dropped += 1
        if message.outgoing:
            self.outgoing_count -= 1
        thread = self._threads.get(message.thread_key)
        if thread is not None:
            thread.pop(message.wamid, None)
            if not thread:
                del self._threads[message.thread_key]

    def _in_thread(self, message: TrackedMessage) -> None:
        if message.contact or message.group_id:
            self._threads.setdefault(message.thread_key, {})[message.wamid] = None

    def _inbound(self, item: Any, received: float | None, seq: int) -> TrackedMessage | None:
        wamid = _text(_get(item, "message_id"))
        if not wamid:
            return None
        echo = _text(_get(item, "direction")) == "echo"
        message, _new = self._entry(wamid, "echo" if echo else "from", received, seq)
        if message.type:  # known from a message item already: Meta delivered it again
            message.copies += 1
            return message
        if echo and message.direction == "to":  # its statuses came first
            message.direction = "echo"
        if not (message.contact or message.group_id):
            contact = _text(_get(item, "recipient")) if echo else _text(_get(item, "sender"))
            message.contact = _shared(contact)
            message.group_id = _shared(_text(_get(item, "group_id")))
            self._in_thread(message)
        business = _text(_get(item, "display_phone_number")) or _text(_get(item, "phone_number_id"))
        message.business = message.business or _shared(business)
        message.type = _shared(_text(_get(item, "type")) or "message")
        message.text = _text(_get(item, "text"))[:TEXT_KEPT] or _text(_get(item, "subtype"))[:TEXT_KEPT]
        message.context_id = _text(_get(item, "context_id"))
        message.timestamp = whole_number(_get(item, "timestamp"))
        return message

    def _status(self, item: Any, received: float | None, seq: int) -> TrackedMessage | None:
        wamid = _text(_get(item, "status_id"))
        if not wamid:
            return None
        message, new = self._entry(wamid, "to", received, seq)
        if new:
            message.contact = _shared(_text(_get(item, "recipient_id")))
            message.group_id = _shared(_text(_get(item, "group_id")))
            message.business = _shared(
                _text(_get(item, "display_phone_number")) or _text(_get(item, "phone_number_id"))
            )
            self._in_thread(message)
        elif not message.outgoing:
            return message  # a status about a message a user sent: nothing of ours to join
        status = _shared(_text(_get(item, "status")) or "status")
        participant = _shared(_text(_get(item, "participant")))
        self._update(message, item)
        for seen in message.statuses:
            if seen.status == status and seen.participant == participant:
                message.copies += 1
                return message
        if len(message.statuses) >= STATUS_LIMIT:
            message.statuses_cut += 1
            return message
        timestamp = whole_number(_get(item, "timestamp"))
        seen = StatusSeen(status, timestamp, received, seq, participant, _problems(_get(item, "errors")))
        message.statuses.append(seen)
        message.statuses.sort(key=StatusSeen.order)
        return message

    @staticmethod
    def _update(message: TrackedMessage, item: Any) -> None:
        """What a status tells about its message; a value a later status leaves out is kept."""
        for name in (
            "biz_opaque_callback_data",
            "pricing_category",
            "pricing_model",
            "pricing_type",
            "conversation_id",
            "conversation_expiration",
            "conversation_category",
        ):
            value = _text(_get(item, name))
            if value:
                setattr(message, name, _shared(value[:TEXT_KEPT]))
        billable = _get(item, "billable")
        if isinstance(billable, bool):
            message.billable = billable

    def outgoing(self, limit: int | None = None) -> Iterator[TrackedMessage]:
        """Messages the business sent, newest (first heard of) first."""
        count = 0
        for message in reversed(self._messages.values()):
            if limit is not None and count >= limit:
                return
            if message.outgoing:
                count += 1
                yield message

    def thread(self, key: str) -> list[TrackedMessage]:
        """A contact's (or `group <id>`'s) messages in and out, oldest first."""
        messages = self._messages
        found = [messages[wamid] for wamid in self._threads.get(key, ())]
        return sorted(found, key=lambda m: (m.when, m.seq))

    def threads(self) -> int:
        return len(self._threads)


def record_items(record: Mapping[str, Any]) -> list[Any]:
    """The decoded items of a recorded event: summary.items, else its body decoded again (derived data)."""
    summary = record.get("summary")
    items = summary.get("items") if isinstance(summary, Mapping) else None
    if isinstance(items, list):
        return items
    request = record.get("request")
    if not isinstance(request, Mapping):
        return []
    try:
        if isinstance(request.get("body"), str):
            body = request["body"].encode("utf-8", "surrogatepass")
        elif isinstance(request.get("body_b64"), str):
            body = base64.b64decode(request["body_b64"], validate=True)
        else:
            return []
    except (binascii.Error, ValueError):
        return []
    return list(decode_payload(body, values=False).items)


# Rendering ---------------------------------------------------------------------------------------


def clock(seconds: float, tz: tzinfo | None = None) -> str:
    """HH:MM:SS in `tz` (None: the local time zone)."""
    try:
        return datetime.fromtimestamp(seconds, tz).strftime("%H:%M:%S")
    except (OverflowError, OSError, ValueError):
        return "?"


def moment(seconds: float, tz: tzinfo | None = None) -> str:
    """YYYY-MM-DD HH:MM:SS in `tz` (None: local), for times that may be another day (an expiry)."""
    try:
        return datetime.fromtimestamp(seconds, tz).strftime("%Y-%m-%d %H:%M:%S")
    except (OverflowError, OSError, ValueError):
        return "?"


def elapsed(seconds: float) -> str:
    """`+2s`, `+3m05s`, `+1h02m`, `+2d03h` (`-` when a status is timed before the first)."""
    sign = "-" if seconds < 0 else "+"
    total = int(abs(seconds))
    if total < 60:
        return f"{sign}{total}s"
    if total < 3600:
        return f"{sign}{total // 60}m{total % 60:02d}s"
    if total < 86400:
        return f"{sign}{total // 3600}h{total % 3600 // 60:02d}m"
    return f"{sign}{total // 86400}d{total % 86400 // 3600:02d}h"


def chain_steps(message: TrackedMessage, tz: tzinfo | None = None) -> list[str]:
    """`sent 10:00:01`, `delivered +2s`, `read +40s x3` (a group's members): each status once, timed
    from the first; a status Meta did not time shows when it reached us."""
    steps: list[str] = []
    counts: dict[str, int] = {}
    firsts: dict[str, StatusSeen] = {}
    for seen in message.statuses:
        counts[seen.status] = counts.get(seen.status, 0) + 1
        firsts.setdefault(seen.status, seen)
    start: float | None = None
    for status, seen in firsts.items():
        when = seen.when
        name = one_line(status, 30)
        if when is None:
            step = name
        elif start is None:
            start = when
            step = f"{name} {clock(when, tz)}"
        else:
            step = f"{name} {elapsed(when - start)}"
        if counts[status] > 1:
            step += f" x{counts[status]}"
        steps.append(step)
    if message.statuses_cut:
        steps.append(f"(+{message.statuses_cut} more)")
    return steps


def chain_text(message: TrackedMessage, tz: tzinfo | None = None) -> str:
    """`sent 10:00:01 -> delivered +2s -> read +40s`, or `(no status yet)`."""
    return " -> ".join(chain_steps(message, tz)) or "(no status yet)"


def failure_text(message: TrackedMessage) -> str:
    """`131049 This message was not delivered ...` (and how many more errors), or empty."""
    problems = message.problems
    if not problems:
        return ""
    more = f" (+{len(problems) - 1} more)" if len(problems) > 1 else ""
    return problems[0].text() + more


def pricing_text(message: TrackedMessage) -> str:
    """`marketing, billable, PMP regular`: what Meta says this message costs."""
    billable = "" if message.billable is None else "billable" if message.billable else "not billable"
    model = " ".join(w for w in (message.pricing_model, message.pricing_type) if w)
    words = [one_line(w, 40) for w in (message.pricing_category, billable, model) if w]
    return ", ".join(words)


def party_text(message: TrackedMessage) -> str:
    """The other side: `16505551234`, `group 1203...`, or `?`."""
    if message.group_id:
        return one_line(f"group {message.group_id}", 60)
    return one_line(message.contact, 60) or "?"


def status_note(message: TrackedMessage, tz: tzinfo | None = None) -> str:
    """What a status line joins to, for headless: `(sent 10:00:01, delivered +2s, read +40s; callback "o-42")`.

    The chain once a second status is known (a lone `sent` is the line itself); the callback data and an
    echo's text whenever known; empty when there is nothing to add.
    """
    words = [", ".join(chain_steps(message, tz))] if len(message.statuses) > 1 else []
    if message.biz_opaque_callback_data:
        words.append(f'callback "{one_line(message.biz_opaque_callback_data, 60)}"')
    if message.direction == "echo" and message.text:
        words.append(f'"{one_line(message.text, 40)}"')
    return f"({'; '.join(words)})" if words else ""


def thread_line(message: TrackedMessage, tz: tzinfo | None = None) -> str:
    """One line of a thread: `10:00:00 <- text "hi"` in, `10:00:05 -> ...e0A= read (sent ...)` out."""
    when = clock(message.when, tz) if message.when else "--:--:--"
    kind = one_line(message.type, 20)
    text = f'"{one_line(message.text, 60)}"' if message.text else ""
    if not message.outgoing:
        return " ".join(w for w in (when, "<-", kind or "message", text) if w)
    arrow = "-> (echo)" if message.direction == "echo" else "->"
    words = [when, arrow, short_id(message.wamid), kind, text, chain_text(message, tz)]
    failure = failure_text(message)
    if failure:
        words.append(f"[{failure}]")
    return " ".join(w for w in words if w)
