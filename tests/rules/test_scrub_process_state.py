"""`export` scrubs the same session to the same bytes whatever ran before it in the process.

The scrub property test once failed only after another test file had imported `rules.lifecycle`. The
export was never at fault: Hypothesis also draws the literals of every project module imported so far,
so the derandomized examples changed and one put free text under an "sdp" key, which the test took for a
call's offer (that case is now an explicit example there). This keeps the exporter's side of it checked:
the lifecycle book interns the ids, numbers and names it is fed, and none of that may change an export.
"""

from __future__ import annotations

import json
import subprocess
import sys
import tempfile
from pathlib import Path

from tests.rules.test_scrub_properties import Session, _export
from tests.support.scrub_payloads import (
    Person,
    call_connect,
    failed_status,
    nested_field,
    roster,
    unknown_field,
)
from wa_devtunnel.rules.samples import payloads as samples

ROOT = Path(__file__).resolve().parents[2]


def _session() -> Session:
    people = [
        Person(
            country="44",
            national="7700900123",
            name="Zqéloma0 Xvéruti",
            handle="u_abcdef0",
            email="m0.klmn@mail-0.example.org",
            ipv4="81.2.69.160",
            ipv6="2607:fb90:1234:5678:abcd:ef01:2345:6789",
            user_id="GB.123456789012345678",
        ),
        Person(
            country="1",
            national="4155550132",
            name="Zqébeda1 Xvézomi",
            handle="u_hgfedc1",
            email="m1.ponm@mail-1.example.org",
            ipv4="8.8.4.4",
            ipv6="2804:14c:5b71:8000:1234:5678:9abc:def0",
            user_id="US.987654321098765432",
            ref="p1",
        ),
    ]
    payloads = [roster(people), call_connect(people[0], "e164"), failed_status(people[1], "dashed")]
    payloads += [nested_field(people[1], "spaced", ("calls", "sdp")), unknown_field(people[0], "national")]
    return Session(people, payloads, keep_text=True)


def _exported() -> dict[str, str]:
    with tempfile.TemporaryDirectory() as temp:
        files = _export(_session(), Path(temp) / "fixtures")
    return {name: data.decode("utf-8") for name, data in sorted(files.items())}


def test_export_after_the_lifecycle_book_is_the_export_of_a_fresh_process() -> None:
    script = (
        "import json, sys\n"
        "from tests.rules.test_scrub_process_state import _exported\n"
        "assert 'wa_devtunnel.rules.lifecycle' not in sys.modules\n"
        "print(json.dumps(_exported()))\n"
    )
    fresh = subprocess.run([sys.executable, "-c", script], cwd=ROOT, capture_output=True, text=True, check=True)

    from wa_devtunnel.rules.lifecycle import LifecycleBook  # the book interns what it is fed

    book = LifecycleBook()
    for seq, payload in enumerate(_session().payloads, start=1):
        body = samples.meta_json(payload)
        text = body.decode() if isinstance(body, bytes) else body
        book.add_record({"kind": "event", "seq": seq, "received_at": "2026-11-26T21:55:00Z", "request": {"body": text}})
    assert len(book) > 0
    after = _exported()
    assert after == json.loads(fresh.stdout)
    sdps = [value for name, data in after.items() if name != "manifest.json" for value in _sdps(json.loads(data))]
    offers = [sdp for sdp in sdps if sdp.startswith("v=0\r\no=")]  # the call's offer, its numbers kept
    assert len(sdps) == 2 and len(offers) == 1 and "54402 typ srflx" in offers[0], sdps
    assert not any(word in sdp for sdp in sdps for word in ("Xvézomi", "4155550132", "8.8.4.4")), sdps


def _sdps(node: object) -> list[str]:
    if isinstance(node, dict):
        return [v for k, v in node.items() if k == "sdp" and isinstance(v, str)] + [
            found for k, v in node.items() if k != "sdp" for found in _sdps(v)
        ]
    if isinstance(node, list):
        return [found for item in node for found in _sdps(item)]
    return []
