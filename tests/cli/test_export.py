"""`wa-devtunnel export`: recorded webhooks become scrubbed, Meta-style fixtures a backend accepts."""

from __future__ import annotations

import base64
import json
import os
import stat
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from tests.support.backend_app import BackendBehaviour, create_backend_app
from tests.support.export_conversation import (
    ALICE,
    ALICE_NAME,
    BOB,
    BUTTON_TITLE,
    EXPECTED_NAMES,
    OUTGOING,
    PERSONAL,
    SECOND_TEXT,
    TEXT,
    RecordedConversation,
    record_conversation,
)
from wa_devtunnel.cli.main import main
from wa_devtunnel.engine.export.naming import FixtureNamer, fixture_stem
from wa_devtunnel.engine.export.writer import export_fixtures, prepare_out_dir
from wa_devtunnel.engine.recording import request_body, with_full_summary
from wa_devtunnel.pytest_plugin import signed_webhook
from wa_devtunnel.rules.decode.payload import decode_payload
from wa_devtunnel.rules.samples import payloads as samples
from wa_devtunnel.rules.scrub.payload import Scrubber

NEW_SECRET = "the-backend-has-another-secret"


@pytest.fixture
async def recorded(make_receiver: Callable[..., Any]) -> RecordedConversation:
    return await record_conversation(await make_receiver())


def export(recording: Path, out: Path, capsys: pytest.CaptureFixture[str], *flags: str) -> tuple[int, str, str]:
    code = main(["export", str(recording), "--out", str(out), *flags])
    captured = capsys.readouterr()
    return code, captured.out, captured.err


def fixture_files(out: Path) -> dict[str, bytes]:
    return {path.name: path.read_bytes() for path in sorted(out.iterdir()) if path.name != "manifest.json"}


def manifest(out: Path) -> dict[str, Any]:
    return json.loads((out / "manifest.json").read_text())


def by_name(out: Path) -> dict[str, dict[str, Any]]:
    """Each fixture as parsed JSON, by file name."""
    return {name: json.loads(data) for name, data in fixture_files(out).items()}


def forms(value: str) -> set[bytes]:
    """Every way a string can appear in JSON bytes: raw UTF-8, \\u-escaped, with "/" escaped or not."""
    escaped = json.dumps(value)[1:-1]
    found = {value.encode("utf-8"), escaped.encode("ascii")}
    return found | {form.replace(b"/", b"\\/") for form in found}


def essence(summary: dict[str, Any]) -> list[tuple[Any, ...]]:
    """What a handler branches on; scrubbing must leave it unchanged."""
    out = []
    for item in summary["items"]:
        subtype = item.get("subtype") if item.get("type") in ("interactive", "system", "unsupported") else None
        codes = tuple(e.get("code") for e in item.get("errors", ()))
        out.append(
            (item["kind"], item.get("type"), subtype, item.get("status"), item["field"], item.get("event"), codes)
        )
    return out


async def test_round_trip_recording_fixture_plugin_backend(
    recorded: RecordedConversation, tmp_path: Path, capsys: pytest.CaptureFixture[str], aiohttp_client: Any
) -> None:
    out = tmp_path / "tests" / "fixtures" / "whatsapp"
    code, stdout, stderr = export(recorded.path, out, capsys)
    assert code == 0, stderr
    assert stdout == f"Exported {len(EXPECTED_NAMES)} fixtures to {out} (personal data scrubbed) + manifest.json\n"
    assert "skipped" in stderr and "expected 'whatsapp_business_account'" in stderr  # the non-WhatsApp POST

    behaviour = BackendBehaviour(app_secret=NEW_SECRET)
    backend = await aiohttp_client(create_backend_app(behaviour))
    records = {record["seq"]: record for record in recorded.records}
    for entry in manifest(out)["fixtures"]:
        body, headers = signed_webhook(entry["name"].removesuffix(".json"), NEW_SECRET, fixtures_dir=out)
        assert headers["User-Agent"] == "facebookexternalua"
        response = await backend.post("/webhook/whatsapp", data=body, headers=headers)
        assert response.status == 200, entry["name"]
        received = behaviour.received[-1]
        assert received.signature_ok and received.body == body
        decoded = decode_payload(received.body)
        assert decoded.ok
        assert essence(decoded.to_dict()) == essence(with_full_summary(records[entry["seq"]])["summary"]), entry["name"]


async def test_scrubbing_leaves_no_personal_data_in_any_file(
    recorded: RecordedConversation, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    out = tmp_path / "fixtures"
    assert export(recorded.path, out, capsys)[0] == 0
    everything = b"".join(path.read_bytes() for path in out.iterdir())
    for value in PERSONAL:
        for form in forms(value):
            assert form not in everything, f"{value!r} found as {form!r}"
    for token in (ALICE, BOB):  # not even inside the base64 of a wamid
        for data in fixture_files(out).values():
            for wamid in _wamids(json.loads(data)):
                assert token.encode() not in base64.b64decode(wamid.removeprefix("wamid."))
    kept = by_name(out)["messages.text.json"]["entry"][0]
    assert kept["id"] == samples.WABA_ID
    assert kept["changes"][0]["value"]["metadata"]["phone_number_id"] == samples.PHONE_NUMBER_ID
    assert kept["changes"][0]["value"]["metadata"]["display_phone_number"] == samples.DISPLAY_PHONE_NUMBER


def _wamids(node: Any) -> list[str]:
    if isinstance(node, dict):
        return [w for value in node.values() for w in _wamids(value)]
    if isinstance(node, list):
        return [w for value in node for w in _wamids(value)]
    return [node] if isinstance(node, str) and node.startswith("wamid.") else []


def _value(payload: dict[str, Any]) -> dict[str, Any]:
    return payload["entry"][0]["changes"][0]["value"]


async def test_scrubbed_values_still_link_across_files(
    recorded: RecordedConversation, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    out = tmp_path / "fixtures"
    assert export(recorded.path, out, capsys)[0] == 0
    files = by_name(out)
    text = _value(files["messages.text.json"])
    alice = text["messages"][0]["from"]
    assert alice != ALICE and len(alice) == len(ALICE) and alice.isdigit()
    assert text["contacts"][0]["wa_id"] == alice
    name = text["contacts"][0]["profile"]["name"]
    assert name != ALICE_NAME
    statuses = [_value(files[f"statuses.{s}.json"])["statuses"][0] for s in ("sent", "delivered", "read")]
    assert {s["recipient_id"] for s in statuses} == {alice}
    outgoing = {s["id"] for s in statuses}
    assert len(outgoing) == 1 and OUTGOING not in outgoing
    reaction = _value(files["messages.reaction.json"])["messages"][0]
    button = _value(files["messages.interactive-button_reply.json"])["messages"][0]
    assert reaction["reaction"]["message_id"] == button["context"]["id"] == next(iter(outgoing))
    assert button["context"]["from"] == samples.DISPLAY_PHONE_NUMBER  # the business's own number is kept
    assert reaction["reaction"]["emoji"] == "\U0001f62e"
    for message in (reaction, button, _value(files["messages.image.json"])["messages"][0]):
        assert message["from"] == alice
    wamid_bytes = base64.b64decode(next(iter(outgoing)).removeprefix("wamid."))
    assert alice.encode() in wamid_bytes  # the fake number is inside the fake wamid too
    failed = _value(files["statuses.failed-131049.json"])["statuses"][0]
    batch = _value(files["batch.2-items.json"])
    assert failed["recipient_id"] == batch["statuses"][0]["recipient_id"] == batch["messages"][0]["from"] != alice
    assert failed["id"] == batch["statuses"][0]["id"]


async def test_scrubbing_preserves_shapes_and_types(
    recorded: RecordedConversation, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    out = tmp_path / "fixtures"
    assert export(recorded.path, out, capsys)[0] == 0
    files = by_name(out)
    text = _value(files["messages.text.json"])["messages"][0]["text"]["body"]
    assert len(text) == len(TEXT) and text != TEXT
    location = _value(files["messages.location.json"])["messages"][0]["location"]
    assert isinstance(location["latitude"], float) and isinstance(location["longitude"], float)
    image = _value(files["messages.image.json"])["messages"][0]["image"]
    assert len(image["id"]) == 16 and image["id"].isdigit()
    assert len(image["sha256"]) == len(samples.MEDIA_SHA256) and base64.b64decode(image["sha256"])
    assert image["mime_type"] == "image/jpeg"
    document = _value(files["messages.document.json"])["messages"][0]["document"]
    assert document["filename"].endswith(".pdf")
    card = _value(files["messages.contacts.json"])["messages"][0]["contacts"][0]["phones"][0]
    assert card["phone"].startswith("+1 (") and card["phone"][-5] == "-"
    assert card["wa_id"] == "".join(ch for ch in card["phone"] if ch.isdigit())
    error = _value(files["statuses.failed-131049.json"])["statuses"][0]["errors"][0]
    assert error["title"] == samples.ERRORS[131049][0]


async def test_no_scrub_keeps_the_recorded_bytes(
    recorded: RecordedConversation, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    out = tmp_path / "raw"
    code, stdout, _ = export(recorded.path, out, capsys, "--no-scrub")
    assert code == 0
    assert "NOT scrubbed" in stdout
    records = {record["seq"]: record for record in recorded.records}
    entries = manifest(out)["fixtures"]
    assert len(entries) == len(EXPECTED_NAMES)
    for entry in entries:
        assert entry["scrubbed"] is False
        assert (out / entry["name"]).read_bytes() == request_body(records[entry["seq"]]["request"])
    everything = b"".join(fixture_files(out).values())
    for value in PERSONAL:  # the search the scrubbing test relies on does find each value when it is there
        assert any(form in everything for form in forms(value)), value


async def test_keep_text_keeps_message_text_but_not_people(
    recorded: RecordedConversation, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    out = tmp_path / "kept"
    code, stdout, _ = export(recorded.path, out, capsys, "--keep-text")
    assert code == 0
    assert "message text kept" in stdout
    files = by_name(out)
    assert _value(files["messages.text.json"])["messages"][0]["text"]["body"] == TEXT
    assert _value(files["messages.text-2.json"])["messages"][0]["text"]["body"] == SECOND_TEXT
    button = _value(files["messages.interactive-button_reply.json"])["messages"][0]
    assert BUTTON_TITLE == "Yes please, Zoë"  # her first name alone: replaced as the first part of her fake name
    assert button["interactive"]["button_reply"]["title"] == "Yes please, Customer"
    everything = b"".join(fixture_files(out).values())
    for value in (ALICE, BOB, ALICE_NAME, "Zoë", "Quarterman", "Xylo"):
        assert not any(form in everything for form in forms(value)), value


async def test_fixture_names_say_what_each_payload_is(
    recorded: RecordedConversation, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    out = tmp_path / "fixtures"
    assert export(recorded.path, out, capsys)[0] == 0
    assert set(fixture_files(out)) == EXPECTED_NAMES


async def test_manifest_lists_every_file_with_its_source(
    recorded: RecordedConversation, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    out = tmp_path / "fixtures"
    assert export(recorded.path, out, capsys)[0] == 0
    data = manifest(out)
    assert data["generator"].startswith("wa-devtunnel ") and data["format"] == 1
    assert data["scrubbed"] is True and data["count"] == len(EXPECTED_NAMES)
    entries = {entry["name"]: entry for entry in data["fixtures"]}
    assert set(entries) == EXPECTED_NAMES
    records = {record["seq"]: record for record in recorded.records}
    for entry in entries.values():
        assert entry["session"] == recorded.path.name
        assert entry["id"] == records[entry["seq"]]["id"]
        assert entry["scrubbed"] is True
    assert entries["messages.text.json"]["seq"] == 1
    assert entries["messages.text.json"]["kinds"] == ["message"]
    assert entries["messages.text.json"]["field"] == "messages"
    assert entries["batch.2-items.json"]["kinds"] == ["message", "status"]
    assert entries["batch.2-items.json"]["items"] == 2
    failed = entries["statuses.failed-131049.json"]["headline"]
    assert failed.startswith("messages: failed wamid.") and ": 131049 " in failed
    assert entries["message_template_status_update.approved.json"]["field"] == "message_template_status_update"
    assert entries["messages.text-2.json"]["seq"] > entries["messages.text.json"]["seq"]


async def test_exported_bytes_are_in_metas_style(
    recorded: RecordedConversation, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    out = tmp_path / "fixtures"
    assert export(recorded.path, out, capsys)[0] == 0
    for name, data in fixture_files(out).items():
        assert data.isascii(), name  # non-ASCII escaped, emoji as surrogate pairs
        assert data.count(b"/") == data.count(b"\\/"), name  # every "/" escaped
        assert samples.meta_json(json.loads(data)) == data, name  # compact, Meta's separators
    assert b"\\ud83d\\ude2e" in (out / "messages.reaction.json").read_bytes()


async def test_selection_options_pick_the_events(
    recorded: RecordedConversation, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    code, stdout, _ = export(recorded.path, tmp_path / "a", capsys, "--status", "failed")
    assert code == 0 and stdout.startswith("Exported 1 fixture to ")
    assert set(fixture_files(tmp_path / "a")) == {"statuses.failed-131049.json"}
    assert export(recorded.path, tmp_path / "b", capsys, "--type", "text", "--last", "1")[0] == 0
    assert set(fixture_files(tmp_path / "b")) == {"messages.text.json"}
    assert manifest(tmp_path / "b")["fixtures"][0]["seq"] == 14
    assert export(recorded.path, tmp_path / "c", capsys, "--seq", "8-10")[0] == 0
    assert set(fixture_files(tmp_path / "c")) == {"statuses.sent.json", "statuses.delivered.json", "statuses.read.json"}


async def test_a_second_export_keeps_every_earlier_fixture(
    recorded: RecordedConversation, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """The issue: `export --out fx --type text` after a full export removed 9 of 12 files."""
    out = tmp_path / "fixtures"
    assert export(recorded.path, out, capsys)[0] == 0
    first = fixture_files(out)
    (out / "hand_written.json").write_text("{}")
    code, stdout, _ = export(recorded.path, out, capsys, "--status", "read")
    assert code == 0
    rewritten = {"statuses.read.json", "batch.2-items.json"}  # the same events, written again in place
    now = fixture_files(out)
    assert set(now) == {*first, "hand_written.json"}, "nothing removed, no second name for the same event"
    assert {name: data for name, data in now.items() if name not in rewritten} == {
        **{name: data for name, data in first.items() if name not in rewritten},
        "hand_written.json": b"{}",
    }, "every other file exactly as it was"
    kept = len(first) - len(rewritten)
    assert stdout.rstrip().endswith(f"; {kept} earlier fixtures kept (--clean removes them first)")
    assert sorted(e["name"] for e in manifest(out)["fixtures"]) == sorted(first), "the manifest lists them all"
    assert manifest(out)["count"] == len(first)


async def test_reexporting_the_same_events_rewrites_them_in_place(
    recorded: RecordedConversation, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """The same recorded event keeps its name (clean diffs): no messages.text-2.json on a second run."""
    out = tmp_path / "fixtures"
    assert export(recorded.path, out, capsys)[0] == 0
    first, first_manifest = fixture_files(out), manifest(out)
    code, stdout, _ = export(recorded.path, out, capsys)
    assert code == 0 and "earlier" not in stdout
    assert fixture_files(out) == first and manifest(out) == first_manifest


async def test_a_name_taken_by_a_file_we_did_not_write_is_never_overwritten(
    recorded: RecordedConversation, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    out = tmp_path / "fixtures"
    out.mkdir()
    (out / "statuses.read.json").write_text('{"mine": true}')
    assert export(recorded.path, out, capsys, "--status", "read")[0] == 0
    assert (out / "statuses.read.json").read_text() == '{"mine": true}'
    names = {entry["name"] for entry in manifest(out)["fixtures"]}
    assert names == {"statuses.read-2.json", "batch.2-items.json"}
    assert (out / "statuses.read-2.json").exists()


async def test_clean_removes_only_the_earlier_manifests_files_and_says_how_many(
    recorded: RecordedConversation, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    out = tmp_path / "fixtures"
    assert export(recorded.path, out, capsys)[0] == 0
    earlier = len(fixture_files(out))
    (out / "hand_written.json").write_text("{}")
    (out / "messages.text.json.orig").write_text("a backup")
    code, stdout, _ = export(recorded.path, out, capsys, "--status", "read", "--clean")
    assert code == 0
    assert stdout.splitlines()[0] == f"Removed {earlier} earlier fixtures from {out} (--clean)"
    assert set(fixture_files(out)) == {"statuses.read.json", "batch.2-items.json", "hand_written.json"} | {
        "messages.text.json.orig"
    }
    assert manifest(out)["count"] == 2
    code, stdout, _ = export(recorded.path, tmp_path / "new", capsys, "--status", "read", "--clean")
    assert code == 0 and stdout.startswith(f"Removed 0 earlier fixtures from {tmp_path / 'new'} (--clean)")


def _mode(path: Path) -> int:
    return stat.S_IMODE(path.lstat().st_mode)


async def test_exports_are_private_even_unscrubbed(
    recorded: RecordedConversation, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    previous = os.umask(0o022)  # a usual umask would leave new files 0644
    try:
        for flags, out in (((), tmp_path / "new" / "fixtures"), (("--no-scrub",), tmp_path / "raw")):
            assert export(recorded.path, out, capsys, *flags)[0] == 0
            assert _mode(out) == 0o700
            assert {_mode(path) for path in out.iterdir()} == {0o600}, flags
            assert not [path.name for path in out.iterdir() if path.name.startswith(".")]  # no temporary left
    finally:
        os.umask(previous)


async def test_export_keeps_an_existing_directorys_mode_and_never_follows_a_planted_link(
    recorded: RecordedConversation, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    out = tmp_path / "fixtures"
    out.mkdir()
    out.chmod(0o755)  # the developer's own tests/fixtures directory
    assert export(recorded.path, out, capsys, "--no-scrub")[0] == 0
    victim = tmp_path / "victim.txt"
    victim.write_text("not yours")
    (out / "messages.text.json").unlink()
    (out / "messages.text.json").symlink_to(victim)  # planted at a name our manifest lists: rewritten next time
    (out / "statuses.read.json").chmod(0o644)
    assert export(recorded.path, out, capsys, "--no-scrub")[0] == 0
    assert _mode(out) == 0o755
    assert victim.read_text() == "not yours"
    assert not (out / "messages.text.json").is_symlink()
    assert {_mode(path) for path in out.iterdir()} == {0o600}


def test_usage_errors_exit_2(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)
    code, _, err = export(tmp_path / "missing.jsonl", tmp_path / "out", capsys)
    assert code == 2 and "no recording" in err
    assert main(["export", "--out", "x", "--recordings-dir", str(tmp_path / "none")]) == 2
    assert "no recordings in" in capsys.readouterr().err
    session = tmp_path / "20261126-000000.jsonl"
    session.write_text("")
    assert export(session, tmp_path / "out", capsys)[0] == 2
    assert main(["export", str(session)]) == 2  # --out is required
    assert "--out" in capsys.readouterr().err


async def test_bad_out_and_no_match_exit_2(
    recorded: RecordedConversation, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    a_file = tmp_path / "file.txt"
    a_file.write_text("not a directory")
    code, _, err = export(recorded.path, a_file, capsys)
    assert code == 2 and "is not a directory" in err
    code, _, err = export(recorded.path, tmp_path / "out", capsys, "--status", "played")
    assert code == 2 and "no event matches" in err and not (tmp_path / "out").exists()
    assert export(recorded.path, tmp_path / "out", capsys, "--seq", "9-3")[0] == 2


async def test_progress_is_reported_for_every_event(recorded: RecordedConversation, tmp_path: Path) -> None:
    from wa_devtunnel.engine.replay.source import Selection, load_recordings, select

    events = select(load_recordings([recorded.path]).exchanges, Selection(kind="event"))
    calls: list[tuple[int, int]] = []
    prepare_out_dir(tmp_path / "out")
    result = export_fixtures(events, tmp_path / "out", progress=lambda done, total: calls.append((done, total)))
    assert calls == [(n, len(events)) for n in range(1, len(events) + 1)]
    assert len(result.fixtures) == len(EXPECTED_NAMES) and len(result.skipped) == 1


def test_same_value_same_fake_across_payloads() -> None:
    scrubber = Scrubber()
    first = scrubber.scrub(samples.envelope([samples.messages_change([samples.text_message("hi")])]))
    second = scrubber.scrub(samples.envelope([samples.messages_change(statuses=[samples.status("read")])]))
    fake = _value(first)["messages"][0]["from"]
    assert fake == _value(second)["statuses"][0]["recipient_id"] == scrubber.fake_for("phone", samples.USER_WA_ID)
    assert fake == "15550000001"
    again = Scrubber().scrub(samples.envelope([samples.messages_change([samples.text_message("hi")])]))
    assert again == first  # deterministic: an export run twice gives the same files


def test_scrubber_keeps_types_and_never_mutates_its_input() -> None:
    message = samples.text_message("hello")
    message["from"] = 16505551234
    document = samples.envelope([samples.messages_change([message])])
    snapshot = json.dumps(document)
    scrubbed = Scrubber().scrub(document)
    assert json.dumps(document) == snapshot
    sender = _value(scrubbed)["messages"][0]["from"]
    assert isinstance(sender, int) and len(str(sender)) == 11 and sender != 16505551234


def test_scrubber_handles_2026_user_ids_and_flows() -> None:
    contact = samples.contact("Sheena Nelson", None, user_id="US.13491208655302741918", username="@sheena")
    flow = samples.flow_reply({"flow_token": "tok-1", "email": "sheena@example.net", "phone": samples.USER_WA_ID})
    message = dict(flow, from_user_id="US.13491208655302741918")
    message.pop("from")
    scrubbed = Scrubber().scrub(samples.envelope([samples.messages_change([message], contacts=[contact])]))
    value = _value(scrubbed)
    user_id = value["contacts"][0]["user_id"]
    assert user_id != "US.13491208655302741918" and len(user_id) == 23 and user_id[2] == "."
    assert value["messages"][0]["from_user_id"] == user_id
    assert value["contacts"][0]["profile"]["username"].startswith("@customer_")
    answers = json.loads(value["messages"][0]["interactive"]["nfm_reply"]["response_json"])
    assert answers["flow_token"] == "tok-1"
    assert "sheena" not in json.dumps(answers) and answers["phone"].startswith("1555")
    assert "Sheena" not in json.dumps(scrubbed)


def test_keep_text_still_replaces_known_numbers_and_names_inside_text() -> None:
    body = samples.system_message(f"User {samples.USER_NAME} changed from {samples.USER_WA_ID} to 16505559876")
    document = samples.envelope([samples.messages_change([body], contacts=[samples.contact()])])
    text = _value(Scrubber(keep_text=True).scrub(document))["messages"][0]["system"]["body"]
    assert samples.USER_NAME not in text and samples.USER_WA_ID not in text and "16505559876" not in text
    assert text.startswith("User Customer 1 changed from 1555")


@pytest.mark.parametrize(
    ("items", "stem"),
    [
        ([{"kind": "message", "type": "text", "subtype": ""}], "messages.text"),
        ([{"kind": "message", "type": "interactive", "subtype": "button_reply"}], "messages.interactive-button_reply"),
        ([{"kind": "message", "type": "document", "subtype": "secret-name.pdf"}], "messages.document"),
        ([{"kind": "message", "type": "reaction", "subtype": "removed"}], "messages.reaction-removed"),
        ([{"kind": "status", "status": "read", "errors": []}], "statuses.read"),
        ([{"kind": "status", "status": "failed", "errors": [{"code": 131049}]}], "statuses.failed-131049"),
        (
            [{"kind": "field", "field": "message_template_status_update", "event": "APPROVED"}],
            "message_template_status_update.approved",
        ),
        (
            [{"kind": "field", "field": "account_update", "event": "ACCOUNT_VIOLATION"}],
            "account_update.account_violation",
        ),
        ([{"kind": "error", "field": "messages", "error": {"code": 131000}}], "messages.error-131000"),
        ([{"kind": "status", "status": "read"}] * 3, "batch.3-items"),
        ([{"kind": "field", "field": "../../etc/passwd", "event": "x/../y"}], "etc_passwd.x_y"),
        ([], "event.empty"),
    ],
)
def test_fixture_stem(items: list[dict[str, Any]], stem: str) -> None:
    assert fixture_stem(items) == stem


def test_namer_numbers_repeats_and_never_collides() -> None:
    namer = FixtureNamer()
    names = [namer.name(stem) for stem in ("messages.text", "messages.text", "messages.text-2", "messages.text")]
    assert names == ["messages.text.json", "messages.text-2.json", "messages.text-2-2.json", "messages.text-3.json"]
    assert namer.name("manifest") == "manifest-2.json"


def test_namer_goes_around_files_already_there_and_gives_an_event_its_earlier_name() -> None:
    namer = FixtureNamer(taken={"messages.text.json", "messages.text-2.json", "statuses.read.json"})
    assert namer.name("messages.text") == "messages.text-3.json", "never a name already in the directory"
    assert namer.name("statuses.read", earlier="statuses.read.json") == "statuses.read.json", "the same event"
    assert namer.name("statuses.read", earlier="statuses.read.json") == "statuses.read-2.json", "handed out once"
    assert namer.name("messages.image", earlier="statuses.read.json") == "messages.image.json", "it no longer fits"


def test_fixtures_and_plugin_import_neither_aiohttp_nor_textual() -> None:
    modules = [
        "wa_devtunnel.rules.scrub.payload",
        "wa_devtunnel.engine.export.naming",
        "wa_devtunnel.engine.export.writer",
        "wa_devtunnel.cli.export",
        "wa_devtunnel.pytest_plugin",
    ]
    code = f"import importlib, sys\nfor m in {modules!r}: importlib.import_module(m)\nprint(' '.join(sys.modules))"
    loaded = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout.split()
    assert not [m for m in loaded if m.split(".")[0] in ("aiohttp", "textual")]


def test_export_is_listed_in_the_help(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit):
        main(["--help"])
    assert "export" in capsys.readouterr().out
    with pytest.raises(SystemExit):
        main(["export", "--help"])
    text = capsys.readouterr().out
    for flag in ("--out", "--no-scrub", "--keep-text", "--last", "--field", "--type", "--status", "--seq"):
        assert flag in text
