"""`wa-devtunnel trigger`: every kind reaches a real receiver and our own decoder reads it as that kind."""

from __future__ import annotations

import asyncio
import json
import os
import socket
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from random import Random
from typing import Any

import pytest

from tests.support.cli_process import APP_SECRET as CLI_APP_SECRET
from tests.support.cli_process import run_cli, running_cli
from tests.support.constants import APP_SECRET
from tests.support.meta_client import meta_signature
from tests.support.receiver_harness import ReceiverHarness
from wa_devtunnel.cli.main import main
from wa_devtunnel.engine.recording import request_body
from wa_devtunnel.rules.decode.payload import FieldUpdate, InboundMessage, StatusUpdate, WebhookSummary, decode_payload
from wa_devtunnel.rules.samples import catalogue
from wa_devtunnel.rules.samples.payloads import meta_json

SETTING_PREFIXES = ("WHATSAPP_", "WA_DEVTUNNEL_", "NGROK_", "META_", "PYNGROK_")

# What our decoder must make of each kind, written out here rather than read from the catalogue:
# (item class, message type / status / field, interactive-or-other subtype / field event; None = any).
EXPECTED: dict[str, tuple[type, str, str | None]] = {
    "text": (InboundMessage, "text", ""),
    "image": (InboundMessage, "image", ""),
    "audio": (InboundMessage, "audio", ""),
    "voice": (InboundMessage, "audio", "voice"),
    "video": (InboundMessage, "video", ""),
    "document": (InboundMessage, "document", "invoice-2026-001.pdf"),
    "sticker": (InboundMessage, "sticker", ""),
    "location": (InboundMessage, "location", None),
    "contacts": (InboundMessage, "contacts", ""),
    "button_reply": (InboundMessage, "interactive", "button_reply"),
    "list_reply": (InboundMessage, "interactive", "list_reply"),
    "flow_reply": (InboundMessage, "interactive", "nfm_reply"),
    "template_button": (InboundMessage, "button", "attend-yes"),
    "reaction": (InboundMessage, "reaction", ""),
    "reaction_removed": (InboundMessage, "reaction", "removed"),
    "order": (InboundMessage, "order", None),
    "system": (InboundMessage, "system", "user_changed_number"),
    "request_welcome": (InboundMessage, "request_welcome", ""),
    "unsupported": (InboundMessage, "unsupported", "video_note"),
    "ad_referral": (InboundMessage, "text", ""),
    "status_sent": (StatusUpdate, "sent", None),
    "status_delivered": (StatusUpdate, "delivered", None),
    "status_read": (StatusUpdate, "read", None),
    "status_played": (StatusUpdate, "played", None),
    "status_failed": (StatusUpdate, "failed", None),
    "template_approved": (FieldUpdate, "message_template_status_update", "APPROVED"),
    "template_rejected": (FieldUpdate, "message_template_status_update", "REJECTED"),
    "template_paused": (FieldUpdate, "message_template_status_update", "PAUSED"),
    "template_disabled": (FieldUpdate, "message_template_status_update", "DISABLED"),
    "template_quality": (FieldUpdate, "message_template_quality_update", "YELLOW"),
    "template_category": (FieldUpdate, "template_category_update", "MARKETING"),
    "account_update": (FieldUpdate, "account_update", "ACCOUNT_VIOLATION"),
    "phone_number_quality_update": (FieldUpdate, "phone_number_quality_update", "UPGRADE"),
    "phone_number_name_update": (FieldUpdate, "phone_number_name_update", "APPROVED"),
    "security": (FieldUpdate, "security", "PIN_CHANGED"),
}


@pytest.fixture(autouse=True)
def workdir(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Path]:
    """An empty current directory and no settings leaking in from the developer's shell."""
    for name in list(os.environ):
        if name.startswith(SETTING_PREFIXES):
            monkeypatch.delenv(name)
    monkeypatch.chdir(tmp_path)
    yield tmp_path


def url_of(receiver: ReceiverHarness, path: str = "/webhook/whatsapp") -> str:
    return str(receiver.client.make_url(path))


async def trigger(capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[int, str, str]:
    """Run the real CLI in a thread (it owns its event loop) while the receiver serves on this one."""
    code = await asyncio.to_thread(main, ["trigger", *argv])
    out, err = capsys.readouterr()
    return code, out, err


def decoded(record: dict[str, Any]) -> WebhookSummary:
    return decode_payload(request_body(record["request"]))


def classify(item: Any) -> tuple[type, str, str]:
    if isinstance(item, InboundMessage):
        return InboundMessage, item.type, item.subtype
    if isinstance(item, StatusUpdate):
        return StatusUpdate, item.status, ""
    return type(item), item.field, item.event


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def test_the_expectations_cover_the_whole_catalogue() -> None:
    assert set(EXPECTED) == set(catalogue.KINDS_BY_NAME)


@pytest.mark.parametrize("kind", [k.name for k in catalogue.KINDS])
async def test_every_kind_arrives_signed_and_decodes_as_that_kind(
    kind: str, make_receiver: Callable[..., Any], capsys: pytest.CaptureFixture[str]
) -> None:
    receiver = await make_receiver()
    code, out, err = await trigger(capsys, kind, "--to", url_of(receiver), "--app-secret", APP_SECRET)
    assert code == 0, err
    assert err == ""
    [record] = receiver.records()
    assert record["response"]["status"] == 200
    assert record["signature"] == "valid"
    # Marked as a sample, but no running instance vouches for it with its key: not taken as ours.
    assert record["origin"] != "sample"
    assert ["X-WA-Devtunnel-Origin", "sample"] in record["request"]["headers"]
    body = request_body(record["request"])
    headers = {name.lower(): value for name, value in record["request"]["headers"]}
    assert headers["x-hub-signature-256"] == meta_signature(body, APP_SECRET)
    assert headers["user-agent"] == "facebookexternalua"
    assert body == meta_json(json.loads(body)), "the body is not in Meta's byte style"
    summary = decoded(record)
    assert summary.ok and summary.flags == ()
    [item] = summary.items
    cls, name, sub = EXPECTED[kind]
    got = classify(item)
    assert got[:2] == (cls, name)
    if sub is not None:
        assert got[2] == sub
    if kind == "ad_referral":
        assert isinstance(item, InboundMessage) and item.referral
    assert kind in out and " 200 " in out


async def test_options_shape_the_payload(make_receiver: Callable[..., Any], capsys: pytest.CaptureFixture[str]) -> None:
    receiver = await make_receiver()
    url = url_of(receiver)
    common = ["--to", url, "--app-secret", APP_SECRET, "--sender", "4915112345678", "--phone-number-id", "999"]
    assert (await trigger(capsys, "text", *common, "--text", "Grüße 👋", "--message-id", "wamid.MINE"))[0] == 0
    assert (await trigger(capsys, "status_failed", *common, "--error-code", "131026"))[0] == 0
    assert (await trigger(capsys, "reaction", *common, "--text", "❤️"))[0] == 0
    text, failed, reaction = (decoded(r).items[0] for r in receiver.records())
    assert isinstance(text, InboundMessage) and isinstance(failed, StatusUpdate)
    assert (text.text, text.message_id, text.sender, text.phone_number_id) == (
        "Grüße 👋",
        "wamid.MINE",
        "4915112345678",
        "999",
    )
    assert b"\\u00fc" in request_body(receiver.records()[0]["request"]), "non-ASCII must be escaped like Meta does"
    assert (failed.recipient_id, [e.code for e in failed.errors]) == ("4915112345678", [131026])
    assert isinstance(reaction, InboundMessage) and reaction.text == "❤️"
    assert abs(int(text.timestamp) - time.time()) < 60, "timestamps are now, so a backend sorting by them works"


@pytest.mark.parametrize(("kind", "container"), [("text", "messages"), ("status_read", "statuses")])
async def test_batch_puts_n_items_in_one_change(
    kind: str, container: str, make_receiver: Callable[..., Any], capsys: pytest.CaptureFixture[str]
) -> None:
    receiver = await make_receiver()
    code, out, _ = await trigger(capsys, kind, "--batch", "7", "--to", url_of(receiver), "--app-secret", APP_SECRET)
    assert code == 0
    assert f"{kind} x7" in out
    [record] = receiver.records()
    document = json.loads(request_body(record["request"]))
    [change] = document["entry"][0]["changes"]
    assert len(change["value"][container]) == 7
    summary = decoded(record)
    assert len(summary.items) == 7 and "batch" in summary.flags and "duplicate" not in summary.flags
    ids = {getattr(item, "message_id", "") or getattr(item, "status_id", "") for item in summary.items}
    assert len(ids) == 7, "every item of a batch has its own id"


async def test_batch_of_a_field_kind_sends_n_changes(
    make_receiver: Callable[..., Any], capsys: pytest.CaptureFixture[str]
) -> None:
    receiver = await make_receiver()
    assert (await trigger(capsys, "template_approved", "--batch", "3", "--to", url_of(receiver)))[0] == 0
    [record] = receiver.records()
    assert len(json.loads(request_body(record["request"]))["entry"][0]["changes"]) == 3
    assert [classify(i)[1] for i in decoded(record).items] == ["message_template_status_update"] * 3


async def test_duplicate_sends_the_same_bytes_twice(
    make_receiver: Callable[..., Any], capsys: pytest.CaptureFixture[str]
) -> None:
    receiver = await make_receiver()
    code, out, _ = await trigger(
        capsys, "button_reply", "--duplicate", "--to", url_of(receiver), "--app-secret", APP_SECRET
    )
    assert code == 0
    assert "(same bytes again)" in out and "2 POSTs: 2 answered 2xx" in out
    first, second = receiver.records()
    assert request_body(first["request"]) == request_body(second["request"])
    assert first["signature"] == second["signature"] == "valid"
    assert "duplicate" not in first["summary"]["flags"]
    assert "duplicate" in second["summary"]["flags"]


async def test_repeat_sends_fresh_events(make_receiver: Callable[..., Any], capsys: pytest.CaptureFixture[str]) -> None:
    receiver = await make_receiver()
    code, out, _ = await trigger(capsys, "text", "--repeat", "3", "--to", url_of(receiver))
    assert code == 0 and "3 POSTs: 3 answered 2xx" in out
    records = receiver.records()
    ids = {decoded(r).items[0].message_id for r in records}  # type: ignore[union-attr]
    assert len(records) == 3 and len(ids) == 3
    assert all("duplicate" not in r["summary"]["flags"] for r in records)


def statuses_of(records: list[dict[str, Any]]) -> list[StatusUpdate]:
    items = [decoded(r).items for r in records]
    assert all(len(i) == 1 and isinstance(i[0], StatusUpdate) for i in items)
    return [i[0] for i in items]  # type: ignore[misc]


async def test_sequence_is_sent_delivered_read_of_one_message(
    make_receiver: Callable[..., Any], capsys: pytest.CaptureFixture[str]
) -> None:
    receiver = await make_receiver()
    code, out, _ = await trigger(capsys, "--sequence", "--to", url_of(receiver), "--app-secret", APP_SECRET)
    assert code == 0
    statuses = statuses_of(receiver.records())
    assert [s.status for s in statuses] == ["sent", "delivered", "read"]
    assert len({s.status_id for s in statuses}) == 1
    assert [int(s.timestamp) for s in statuses] == sorted(int(s.timestamp) for s in statuses)
    assert out.index("status_sent") < out.index("status_delivered") < out.index("status_read")


async def test_shuffled_sequence_is_out_of_order_and_reproducible(
    make_receiver: Callable[..., Any], capsys: pytest.CaptureFixture[str]
) -> None:
    receiver = await make_receiver()
    url = url_of(receiver)
    for _ in range(2):
        assert (await trigger(capsys, "--sequence", "--shuffle", "--seed", "7", "--to", url))[0] == 0
    assert (await trigger(capsys, "--sequence", "--shuffle", "--seed", "8", "--to", url))[0] == 0
    statuses = statuses_of(receiver.records())
    runs = [statuses[i : i + 3] for i in (0, 3, 6)]
    orders = [[s.status for s in run] for run in runs]
    assert orders[0] != ["sent", "delivered", "read"]
    assert sorted(orders[0]) == ["delivered", "read", "sent"]
    assert orders[0] == orders[1], "the same seed gives the same order"
    assert runs[0][0].status_id == runs[1][0].status_id, "the same seed gives the same ids"
    assert runs[2][0].status_id != runs[0][0].status_id
    by_time = sorted(runs[0], key=lambda s: int(s.timestamp))
    assert [s.status for s in by_time] == ["sent", "delivered", "read"], "timestamps still tell the true order"


def test_out_of_order_never_returns_the_original_order() -> None:
    items = ["sent", "delivered", "read"]
    orders = {tuple(catalogue.out_of_order(items, Random(seed))) for seed in range(200)}
    assert tuple(items) not in orders
    assert len(orders) == 5, "every other order of three is reachable"


async def test_without_a_secret_it_sends_unsigned_and_warns(
    make_receiver: Callable[..., Any], capsys: pytest.CaptureFixture[str]
) -> None:
    receiver = await make_receiver()
    code, out, err = await trigger(capsys, "text", "--to", url_of(receiver))
    assert code == 0
    assert "(unsigned)" in out and "warning: no App Secret" in err
    [record] = receiver.records()
    assert record["signature"] == "missing"


async def test_secret_and_target_come_from_settings(
    make_receiver: Callable[..., Any], capsys: pytest.CaptureFixture[str], workdir: Path
) -> None:
    receiver = await make_receiver()
    port = receiver.client.server.port
    (workdir / ".env").write_text(f"WHATSAPP_APP_SECRET={APP_SECRET}\nWA_DEVTUNNEL_PORT={port}\n", encoding="utf-8")
    code, out, _ = await trigger(capsys, "text")
    assert code == 0
    assert f"POST http://127.0.0.1:{port}/webhook/whatsapp  (signed with WHATSAPP_APP_SECRET)" in out
    [record] = receiver.records()
    assert record["signature"] == "valid"


async def test_forward_target_is_the_default_when_set(
    make_receiver: Callable[..., Any], capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    receiver = await make_receiver()
    monkeypatch.setenv("WA_DEVTUNNEL_FORWARD_TO", url_of(receiver, "/backend/hook"))
    monkeypatch.setenv("WA_DEVTUNNEL_PORT", str(free_port()))
    code, out, _ = await trigger(capsys, "text")
    assert code == 1
    [record] = receiver.records()
    assert record["request"]["path"] == "/backend/hook"
    assert "404" in out and "answered: Not Found" in out


async def test_list_shows_every_kind(capsys: pytest.CaptureFixture[str]) -> None:
    code, out, _ = await trigger(capsys, "--list")
    assert code == 0
    listed = {line.split()[0] for line in out.splitlines() if line.startswith("  ")}
    assert listed == set(catalogue.KINDS_BY_NAME)
    assert "--sequence" in out


@pytest.mark.parametrize(
    ("typed", "suggested"),
    [("txt", "text"), ("status_faild", "status_failed"), ("templte_approved", "template_approved")],
)
async def test_unknown_kind_is_a_usage_error_with_suggestions(
    typed: str, suggested: str, capsys: pytest.CaptureFixture[str]
) -> None:
    code, out, err = await trigger(capsys, typed)
    assert code == 2 and out == ""
    assert f"unknown kind '{typed}'" in err and "did you mean" in err and suggested in err


async def test_the_docs_show_the_misspelled_kind_as_it_is_printed(capsys: pytest.CaptureFixture[str]) -> None:
    """docs/commands/trigger.md's `trigger txt` example is this run's stderr, pointing to trigger's own help."""
    code, _, err = await trigger(capsys, "txt")
    assert code == 2
    *lines, last = err.splitlines()
    assert last == "Try 'wa-devtunnel trigger --help'."
    docs = (Path(__file__).parents[2] / "docs" / "commands" / "trigger.md").read_text(encoding="utf-8")
    shown = "\n".join(f"    {line}" for line in [*lines, f"{last}   (exit 2)"])
    assert f"    $ wa-devtunnel trigger txt\n{shown}\n" in docs


def test_aliases_and_spelling_variants_find_the_kind() -> None:
    assert catalogue.find_kind("nfm_reply") is catalogue.KINDS_BY_NAME["flow_reply"]
    assert catalogue.find_kind("Status-Read") is catalogue.KINDS_BY_NAME["status_read"]
    assert catalogue.find_kind("failed") is catalogue.KINDS_BY_NAME["status_failed"]


@pytest.mark.parametrize(
    "argv",
    [
        [],
        ["text", "--shuffle"],
        ["text", "--sequence"],
        ["--sequence", "--batch", "2"],
        ["text", "--error-code", "131026"],
        ["text", "--batch", "0"],
        ["text", "--batch", "1001"],
        ["text", "--repeat", "many"],
        ["text", "--repeat", "1000", "--batch", "1000"],
        ["text", "--to", "ftp://example.com/x"],
    ],
)
async def test_contradictions_are_usage_errors(argv: list[str], capsys: pytest.CaptureFixture[str]) -> None:
    code, _, err = await trigger(capsys, *argv)
    assert code == 2
    assert err.startswith("wa-devtunnel trigger") and "Traceback" not in err


async def test_nothing_listening_exits_1_with_a_clear_message(capsys: pytest.CaptureFixture[str]) -> None:
    url = f"http://127.0.0.1:{free_port()}/webhook/whatsapp"
    code, out, err = await trigger(capsys, "text", "--repeat", "3", "--to", url)
    assert code == 1
    assert "connection refused" in out
    assert f"error: cannot connect to {url} (connection refused): start `wa-devtunnel` first" in err
    assert "3 POSTs: 0 answered 2xx, 1 failed, 2 not sent" in out


async def test_a_refusing_target_exits_1_and_shows_its_answer(
    make_receiver: Callable[..., Any], capsys: pytest.CaptureFixture[str]
) -> None:
    receiver = await make_receiver(require_signature=True)
    code, out, _ = await trigger(capsys, "text", "--to", url_of(receiver), "--app-secret", "not-the-app-secret")
    assert code == 1
    assert "403" in out and "answered: Forbidden" in out  # the target tells a sender nothing more
    [record] = receiver.records()
    assert record["signature_detail"] == "no configured App Secret matches (is WHATSAPP_APP_SECRET this app's secret?)"


async def test_dry_run_prints_meta_style_bodies_and_sends_nothing(capsys: pytest.CaptureFixture[str]) -> None:
    url = f"http://127.0.0.1:{free_port()}/webhook/whatsapp"
    code, out, _ = await trigger(capsys, "--sequence", "--duplicate", "--dry-run", "--to", url)
    assert code == 0
    lines = out.encode("utf-8").splitlines()
    assert len(lines) == 6 and lines[0] == lines[1]
    assert all(line == meta_json(json.loads(line)) for line in lines)


def test_trigger_against_a_running_wa_devtunnel(tmp_path: Path) -> None:
    """The README scenario: both sides are the real command line."""
    with running_cli(tmp_path) as cli:
        sent = run_cli(tmp_path, "trigger", "status_failed", "--to", cli.callback_url)
        deadline = time.monotonic() + 10
        while ": 131049 " not in cli.stdout() and time.monotonic() < deadline:
            time.sleep(0.05)
        shown = cli.stdout()
    assert sent.returncode == 0, sent.stderr
    assert "(signed with WHATSAPP_APP_SECRET)" in sent.stdout
    assert CLI_APP_SECRET not in sent.stdout + sent.stderr
    assert "sig=valid  messages: failed wamid.…" in shown
    assert " to 16505551234: 131049 This message was not delivered" in shown
    assert shown.rstrip().endswith("(sample)")
