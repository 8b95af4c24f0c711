"""Property tests: whatever arrives (bytes, JSON, headers, methods, paths), never a 500, always one record.

Requests are written as raw HTTP/1.1 over a socket so paths, queries, header names and values reach
the receiver exactly as generated, without a client normalising them. Generated request targets and
headers stay within what HTTP allows: a request the HTTP parser itself refuses never reaches the
receiver, so no app could record it.
"""

from __future__ import annotations

import asyncio
import gzip
import json
import math
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, event, example, given, settings
from hypothesis import strategies as st

from tests.support.constants import APP_SECRET, VERIFY_TOKEN
from tests.support.meta_client import meta_signature
from tests.support.receiver_harness import ReceiverTestServer
from wa_devtunnel.engine.events import EventBus
from wa_devtunnel.engine.exchange import REDACTED_HEADERS
from wa_devtunnel.engine.receiver import ReceiverConfig, create_receiver_app
from wa_devtunnel.engine.recording import SessionRecorder, request_body
from wa_devtunnel.rules.samples import payloads as samples

WEBHOOK = "/webhook/whatsapp"
DOCUMENTED_STATUSES = frozenset({200, 400, 401, 403, 404, 405, 413})
MAX_BODY = 2048
SIGNATURE_HEADER = b"X-Hub-Signature-256"
PROPERTY_SETTINGS = settings(
    max_examples=250,
    deadline=None,
    derandomize=True,
    database=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
)


@dataclass
class Answer:
    status: int
    body: bytes


class LiveReceiver:
    """The receiver app on a real 127.0.0.1 port, driven from sync code (one loop per test)."""

    def __init__(self, directory: Path, **overrides: Any) -> None:
        options: dict[str, Any] = {
            "path": WEBHOOK,
            "handshake_tokens": (("default", VERIFY_TOKEN),),
            "signature_secrets": (("default", APP_SECRET),),
            "wrong_signing_keys": (("the verify token", VERIFY_TOKEN),),
            "max_body_bytes": MAX_BODY,
        }
        options.update(overrides)
        self.recorder = SessionRecorder(directory)
        bus = EventBus()
        app = create_receiver_app(ReceiverConfig(**options), bus, self.recorder)
        self.loop = asyncio.new_event_loop()
        self.server = ReceiverTestServer(app, bus)
        self.loop.run_until_complete(self.server.start_server())
        self._offset = 0
        self.last_seq = 0

    def close(self) -> None:
        try:
            self.loop.run_until_complete(self.server.close())
        finally:
            self.loop.close()
            self.recorder.close()

    def send(self, method: str, target: str, headers: list[tuple[bytes, bytes]], body: bytes) -> Answer:
        return self.loop.run_until_complete(self._send(method, target, headers, body))

    async def _send(self, method: str, target: str, headers: list[tuple[bytes, bytes]], body: bytes) -> Answer:
        reader, writer = await asyncio.open_connection("127.0.0.1", self.server.port)
        try:
            head = [f"{method} {target} HTTP/1.1".encode("ascii"), b"Host: 127.0.0.1"]
            head += [name + b": " + value for name, value in headers]
            head += [b"Content-Length: %d" % len(body), b"Connection: close"]
            writer.write(b"\r\n".join(head) + b"\r\n\r\n" + body)
            await writer.drain()
            raw = await asyncio.wait_for(reader.read(), timeout=10)
        finally:
            writer.close()
            await writer.wait_closed()
        status_line, _, rest = raw.partition(b"\r\n")
        assert status_line.startswith(b"HTTP/1.1 "), raw[:200]
        return Answer(int(status_line.split()[1]), rest.partition(b"\r\n\r\n")[2])

    def new_records(self) -> list[dict[str, Any]]:
        """The lines appended since the last call; each must be one complete JSON object."""
        data = self.recorder.path.read_bytes()[self._offset :]
        self._offset += len(data)
        assert data == b"" or data.endswith(b"\n"), "a record line was left unterminated"
        return [json.loads(line) for line in data.splitlines()]

    def one_new_record(self, answer: Answer) -> dict[str, Any]:
        """Exactly one record per request, numbered in order, holding the answer actually sent."""
        records = self.new_records()
        assert len(records) == 1, f"expected exactly one new record, got {len(records)}"
        (record,) = records
        assert record["seq"] == self.last_seq + 1
        self.last_seq = record["seq"]
        assert record["response"]["status"] == answer.status
        assert record["response"]["body"].encode("utf-8") == answer.body
        return record


@pytest.fixture
def live_receiver(tmp_path: Path) -> Iterator[Callable[..., LiveReceiver]]:
    made: list[LiveReceiver] = []

    def factory(**overrides: Any) -> LiveReceiver:
        receiver = LiveReceiver(tmp_path / f"recordings{len(made)}", **overrides)
        made.append(receiver)
        return receiver

    yield factory
    for receiver in made:
        receiver.close()


# --- JSON documents ---------------------------------------------------------------------------

WHATSAPP_KEYS = [
    "type", "from", "id", "text", "body", "status", "errors", "code", "value", "field",
    "metadata", "phone_number_id", "contacts", "wa_id", "profile",
]  # fmt: skip
MESSAGE_KEYS = [
    "from", "id", "timestamp", "type", "text", "image", "context", "errors", "interactive",
    "reaction", "status", "recipient_id", "conversation",
]  # fmt: skip

json_values = st.recursive(
    st.none()
    | st.booleans()
    | st.integers()
    | st.floats()
    | st.text(max_size=20)
    | st.sampled_from(["text", "image", "statuses", "messages", "read", "failed", "whatsapp"]),
    lambda children: (
        st.lists(children, max_size=4)
        | st.dictionaries(st.one_of(st.text(max_size=8), st.sampled_from(WHATSAPP_KEYS)), children, max_size=4)
    ),
    max_leaves=25,
)
message_like = st.dictionaries(st.sampled_from(MESSAGE_KEYS), json_values, max_size=6)
change_value = st.fixed_dictionaries(
    {},
    optional={
        "messaging_product": st.just("whatsapp"),
        "metadata": json_values,
        "contacts": st.lists(json_values, max_size=2),
        "messages": st.lists(message_like, max_size=3) | json_values,
        "statuses": st.lists(message_like, max_size=3) | json_values,
        "errors": json_values,
    },
)
meta_shaped = st.builds(
    lambda field, value, waba: {
        "object": "whatsapp_business_account",
        "entry": [{"id": waba, "changes": [{"field": field, "value": value}]}],
    },
    st.sampled_from(["messages", "message_template_status_update", "calls"]) | st.text(max_size=8),
    change_value | json_values,
    json_values,
)
documents = st.one_of(
    json_values,
    json_values.map(lambda entry: {"object": "whatsapp_business_account", "entry": entry}),
    meta_shaped,
)


def encode(document: Any, style: str) -> bytes:
    """Meta's escaped compact bytes, or raw UTF-8 as other senders write it."""
    if style == "meta":
        return samples.meta_json(document)
    return json.dumps(document, ensure_ascii=False).encode("utf-8")


# --- requests ---------------------------------------------------------------------------------

TCHAR = "!#$%&'*+-.^_`|~0123456789abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ"
# Headers that change how the message is framed or decoded are the harness's business
# (Content-Encoding has its own test below).
FRAMING_HEADERS = frozenset(
    {
        "host", "content-length", "transfer-encoding", "connection", "expect", "upgrade",
        "content-encoding", "te", "trailer", "keep-alive",
    }
)  # fmt: skip
# aiohttp's parser itself refuses a repeated Content-Type, User-Agent... (RFC 9110 singletons).
SINGLETON_HEADERS = frozenset(
    {
        "content-location", "content-range", "content-type", "etag", "max-forwards", "server",
        "user-agent",
    }
)  # fmt: skip
INTERESTING_HEADERS = [
    "X-Hub-Signature-256",
    "X-Hub-Signature",
    "X-WA-Devtunnel-Origin",
    "Content-Type",
    "Authorization",
    "Cookie",
    "User-Agent",
]
PCHAR = "abcXYZ019-._~!$&'()*+,;=:@"
HEX = "0123456789ABCDEFabcdef"

header_names = st.one_of(
    st.sampled_from(INTERESTING_HEADERS),
    st.text(alphabet=TCHAR, min_size=1, max_size=24),
).filter(lambda name: name.lower() not in FRAMING_HEADERS)
# field-value: visible ASCII and obs-text, inner spaces/tabs, no surrounding whitespace.
_visible = st.sampled_from([bytes([b]) for b in [*range(0x21, 0x7F), *range(0x80, 0x100)]])
_inner = st.one_of(_visible, st.sampled_from([b" ", b"\t"]))
header_values = st.one_of(
    st.just(b""),
    _visible,
    st.builds(
        lambda first, middle, last: first + b"".join(middle) + last,
        _visible,
        st.lists(_inner, max_size=40),
        _visible,
    ),
    st.builds(lambda h: b"sha256=" + h.encode(), st.text(alphabet=HEX, max_size=70)),
)


def drop_repeated_singletons(headers: list[tuple[bytes, bytes]]) -> list[tuple[bytes, bytes]]:
    seen: set[bytes] = set()
    kept = []
    for name, value in headers:
        key = name.lower()
        if key.decode("ascii") in SINGLETON_HEADERS and key in seen:
            continue
        seen.add(key)
        kept.append((name, value))
    return kept


headers_strategy = st.lists(
    st.tuples(header_names.map(lambda name: name.encode("ascii")), header_values), max_size=8
).map(drop_repeated_singletons)

_pct = st.builds(lambda a, b: "%" + a + b, st.sampled_from(HEX), st.sampled_from(HEX))
_path_piece = st.one_of(st.sampled_from(list(PCHAR + "/")), _pct)
paths = st.one_of(
    st.just(WEBHOOK),
    st.just(WEBHOOK + "/"),
    st.sampled_from(["/", "/webhook", "/WEBHOOK/whatsapp", "//" + WEBHOOK, WEBHOOK + "/x"]),
    st.lists(_path_piece, max_size=30).map(lambda pieces: "/" + "".join(pieces)),
)
_query_piece = st.one_of(st.sampled_from(list(PCHAR + "/?")), _pct)
_hub_value = st.lists(_query_piece, max_size=12).map("".join)
queries = st.one_of(
    st.just(""),
    st.lists(_query_piece, max_size=40).map("".join),
    st.builds(
        lambda *parts: "&".join(part for part in parts if part),
        st.sampled_from(["", "hub.mode=subscribe", "hub.mode=unsubscribe", "hub.mode="]),
        st.one_of(st.just(""), _hub_value.map(lambda v: "hub.challenge=" + v)),
        st.one_of(
            st.just(""),
            st.just("hub.verify_token=" + VERIFY_TOKEN),
            _hub_value.map(lambda v: "hub.verify_token=" + v),
        ),
        st.one_of(st.just(""), _hub_value),
    ),
    _hub_value.map(lambda v: f"hub.mode=subscribe&hub.challenge={v}&hub.verify_token={VERIFY_TOKEN}"),
)
# Meta only sends GET and POST, so those come up more often.
methods = st.sampled_from(["GET", "POST", "GET", "POST", "POST", "PUT", "DELETE", "PATCH"])
bodies = st.one_of(
    st.binary(max_size=300),
    st.binary(min_size=MAX_BODY - 8, max_size=MAX_BODY + 600),
    st.sampled_from([samples.text_message_payload(), samples.dashboard_test_sample(), b"{}"]),
    st.builds(encode, documents, st.sampled_from(["meta", "utf-8"])),
)


def target_of(path: str, query: str) -> str:
    return f"{path}?{query}" if query else path


def signed_headers(headers: list[tuple[bytes, bytes]], body: bytes) -> list[tuple[bytes, bytes]]:
    """Replace any generated X-Hub-Signature-256 by Meta's, so valid signatures come up too."""
    kept = [(name, value) for name, value in headers if name.lower() != SIGNATURE_HEADER.lower()]
    return [*kept, (SIGNATURE_HEADER, meta_signature(body, APP_SECRET).encode("ascii"))]


def is_subsequence(needles: list[list[str]], haystack: list[list[str]]) -> bool:
    remaining = iter(haystack)
    return all(any(item == candidate for candidate in remaining) for item in needles)


def expected_header_pairs(headers: list[tuple[bytes, bytes]]) -> list[list[str]]:
    pairs = []
    for name, value in headers:
        text = name.decode("latin-1")
        shown = "REDACTED" if text.lower() in REDACTED_HEADERS else value.decode("latin-1")
        pairs.append([text, shown])
    return pairs


def check_round_trip(
    record: dict[str, Any],
    method: str,
    query: str,
    headers: list[tuple[bytes, bytes]],
    body: bytes,
) -> None:
    request = record["request"]
    assert request["method"] == method
    if record.get("request_body_truncated"):
        # Only an event is refused for its size; a GET or a stray PUT keeps its usual answer.
        assert record["kind"] != "event" or record["response"]["status"] == 413
        assert record["request_body_size"] == len(body)
        assert body.startswith(request_body(request))
    else:
        assert request_body(request) == body
    if "hub.verify_token" not in query:
        assert request["query"] == query
    elif record["kind"] == "verify":
        assert VERIFY_TOKEN not in request["query"]
    assert is_subsequence(expected_header_pairs(headers), request["headers"]), request["headers"]


# --- properties -------------------------------------------------------------------------------


@pytest.mark.parametrize("require_signature", [False, True], ids=["lenient", "strict"])
def test_any_request_is_answered_with_a_documented_status_and_recorded(
    live_receiver: Callable[..., LiveReceiver], require_signature: bool
) -> None:
    receiver = live_receiver(require_signature=require_signature)

    @PROPERTY_SETTINGS
    @given(
        method=methods,
        path=paths,
        query=queries,
        headers=headers_strategy,
        body=bodies,
        signed=st.booleans(),
    )
    @example(method="POST", path=WEBHOOK, query="", headers=[], body=b"\xff\xfe\x00", signed=True)
    @example(method="PUT", path=WEBHOOK, query="", headers=[], body=b"{}", signed=False)
    @example(method="GET", path="/%00%ff/../a", query="%ZZ", headers=[], body=b"", signed=False)
    @example(
        method="POST",
        path=WEBHOOK,
        query="",
        headers=[(SIGNATURE_HEADER, b"sha256=" + b"0" * 64), (b"X-Test", b"caf\xe9")],
        body=samples.text_message_payload(),
        signed=False,
    )
    def check(
        method: str,
        path: str,
        query: str,
        headers: list[tuple[bytes, bytes]],
        body: bytes,
        signed: bool,
    ) -> None:
        if signed:
            headers = signed_headers(headers, body)
        answer = receiver.send(method, target_of(path, query), headers, body)
        assert answer.status in DOCUMENTED_STATUSES, (answer.status, answer.body[:300])
        event(f"{method} {answer.status}")
        record = receiver.one_new_record(answer)
        check_round_trip(record, method, query, headers, body)

    check()


def test_any_signed_json_is_decoded_without_a_crash(
    live_receiver: Callable[..., LiveReceiver],
) -> None:
    receiver = live_receiver(max_body_bytes=1024 * 1024)

    @PROPERTY_SETTINGS
    @given(document=documents, style=st.sampled_from(["meta", "utf-8"]))
    @example(document={"object": "whatsapp_business_account", "entry": [None]}, style="meta")
    @example(document=[math.nan, math.inf], style="utf-8")
    def check(document: Any, style: str) -> None:
        body = encode(document, style)
        headers = signed_headers([(b"Content-Type", b"application/json")], body)
        answer = receiver.send("POST", WEBHOOK, headers, body)
        assert answer.status == (200 if isinstance(document, dict) else 400), answer.body[:300]
        record = receiver.one_new_record(answer)
        assert request_body(record["request"]) == body
        assert record["kind"] == "event"
        assert record["signature"] == "valid"
        summary = record["summary"]
        assert isinstance(summary, dict)
        assert isinstance(summary.get("headline", ""), str)
        event(f"{answer.status}, items: {min(len(summary.get('items') or ()), 3)}")

    check()


DEEP = 50_000
DEEP_BODIES = {
    "deep-array": b"[" * DEEP + b"]" * DEEP,
    "deep-object-in-entry": b'{"object":"whatsapp_business_account","entry":'
    + b'{"a":' * DEEP
    + b"1"
    + b"}" * DEEP
    + b"}",
    "deep-in-message-text": b'{"object":"whatsapp_business_account","entry":[{"id":"1","changes":'
    b'[{"field":"messages","value":{"messages":[{"from":"1","id":"w","type":"text","text":'
    + b"[" * 900
    + b"]" * 900
    + b"}]}}]}]}",
    "unclosed": b'{"object":"whatsapp_business_account","entry":' + b"[" * DEEP,
}


@pytest.mark.parametrize("body", list(DEEP_BODIES.values()), ids=list(DEEP_BODIES))
def test_deeply_nested_json_is_answered_and_recorded(live_receiver: Callable[..., LiveReceiver], body: bytes) -> None:
    receiver = live_receiver(max_body_bytes=1024 * 1024)
    answer = receiver.send("POST", WEBHOOK, signed_headers([], body), body)
    assert answer.status in {200, 400}
    record = receiver.one_new_record(answer)
    assert request_body(record["request"]) == body
    assert record["signature"] == "valid"


CONTENT_ENCODED = {
    "gzip-not-gzip": ("gzip", b"{}"),
    "gzip-valid": ("gzip", gzip.compress(samples.text_message_payload(), mtime=0)),
    "deflate-not-deflate": ("deflate", b"{}"),
    "br-unsupported": ("br", samples.text_message_payload()),
}


@pytest.mark.parametrize(("encoding", "body"), list(CONTENT_ENCODED.values()), ids=list(CONTENT_ENCODED))
def test_content_encoded_body_is_answered_and_recorded_as_sent(
    live_receiver: Callable[..., LiveReceiver], encoding: str, body: bytes
) -> None:
    """aiohttp would decode Content-Encoding itself (a 500 on bad gzip, its own unrecorded 400 on
    br); the receiver must see, answer and record the bytes exactly as they were sent."""
    receiver = live_receiver()
    headers = signed_headers([(b"Content-Encoding", encoding.encode("ascii"))], body)
    answer = receiver.send("POST", WEBHOOK, headers, body)
    assert answer.status in DOCUMENTED_STATUSES, answer.body[:300]
    record = receiver.one_new_record(answer)
    assert request_body(record["request"]) == body
    assert record["signature"] == "valid"


@pytest.mark.parametrize(
    ("method", "path"),
    [("GET", "/webhook"), ("GET", "/"), ("POST", WEBHOOK), ("PUT", WEBHOOK)],
    ids=["wrong-path", "root", "post", "put"],
)
def test_verify_token_is_redacted_whatever_the_path_or_method(
    live_receiver: Callable[..., LiveReceiver], method: str, path: str
) -> None:
    receiver = live_receiver()
    query = f"hub.mode=subscribe&hub.challenge=1158201444&hub.verify_token={VERIFY_TOKEN}"
    answer = receiver.send(method, target_of(path, query), [], b"")
    record = receiver.one_new_record(answer)
    assert VERIFY_TOKEN not in json.dumps(record)
    assert "hub.verify_token=REDACTED" in record["request"]["query"]
