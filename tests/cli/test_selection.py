"""`replay` and `export` pick the same sessions and the same exchanges from the same words.

One selection-flags helper and one session-name reader serve both; these tests run both commands
on the same recordings with the same arguments and compare what each picked.
"""

from __future__ import annotations

import argparse
import json
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest

from wa_devtunnel.__main__ import main
from wa_devtunnel.cli.options import add_selection_arguments, recordings_from_args, selection_from_args
from wa_devtunnel.engine.exchange_view import view_from_record
from wa_devtunnel.engine.origin import ORIGINS
from wa_devtunnel.engine.recording import RECORDING_VERSION, SessionRecorder, encode_body
from wa_devtunnel.engine.sessions import SessionNotFound, find_session
from wa_devtunnel.rules.decode.payload import decode_payload
from wa_devtunnel.rules.samples import messages
from wa_devtunnel.rules.samples import payloads as samples

FIRST = datetime(2026, 11, 26, 21, 55, 0, tzinfo=UTC)
SECOND = datetime(2026, 11, 27, 8, 30, 0, tzinfo=UTC)
TARGET = "http://127.0.0.1:9/webhook/whatsapp"
# seq -> body: a text, an image, a read status, a video
BODIES = {
    1: samples.meta_json(samples.envelope([samples.messages_change([samples.text_message("hi")])])),
    2: samples.meta_json(samples.envelope([samples.messages_change([samples.image_message("look")])])),
    3: samples.meta_json(samples.envelope([samples.messages_change(statuses=[samples.status("read")])])),
    4: samples.meta_json(samples.envelope([samples.messages_change([samples.video_message("clip")])])),
}


def event(seq: int, body: bytes) -> dict[str, Any]:
    return {
        "v": RECORDING_VERSION,
        "id": f"rec-{seq}",
        "seq": seq,
        "received_at": f"2026-11-26T21:55:{seq:02d}.000000Z",
        "kind": "event",
        "request": {"method": "POST", "path": "/webhook/whatsapp", "query": "", "headers": [], **encode_body(body)},
        "response": {"status": 200, "body": "EVENT_RECEIVED"},
        "signature": "unchecked",
        "summary": decode_payload(body).to_dict(),
    }


def record_session(directory: Path, started: datetime) -> Path:
    with SessionRecorder(directory, now=lambda: started) as recorder:
        for seq, body in BODIES.items():
            recorder.append(event(seq, body))
    return recorder.path


@pytest.fixture
def recordings(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """Two sessions (20261126-215500.jsonl, 20261127-083000.jsonl) in ./rec, the working directory elsewhere."""
    monkeypatch.chdir(tmp_path)
    directory = tmp_path / "rec"
    record_session(directory, FIRST)
    record_session(directory, SECOND)
    return directory


def replayed(capsys: pytest.CaptureFixture[str], recordings: Path, *argv: str) -> list[tuple[str, int]]:
    """(session, seq) of what `replay --dry-run --json` would send."""
    code = main(["replay", *argv, "--to", TARGET, "--recordings-dir", str(recordings), "--dry-run", "--json"])
    out, err = capsys.readouterr()
    assert code == 0, err
    return [(row["session"], row["seq"]) for row in json.loads(out)["plan"]]


def exported(capsys: pytest.CaptureFixture[str], recordings: Path, *argv: str) -> list[tuple[str, int]]:
    """(session, seq) of what `export` wrote, from its manifest."""
    out_dir = recordings.parent / f"out-{len(list(recordings.parent.glob('out-*')))}"
    code = main(["export", *argv, "--out", str(out_dir), "--recordings-dir", str(recordings)])
    _, err = capsys.readouterr()
    assert code == 0, err
    fixtures = json.loads((out_dir / "manifest.json").read_text())["fixtures"]
    return [(Path(entry["session"]).name, entry["seq"]) for entry in fixtures]


def both(capsys: pytest.CaptureFixture[str], recordings: Path, *argv: str) -> list[tuple[str, int]]:
    """What both commands picked; the test fails if they disagree."""
    picked = replayed(capsys, recordings, *argv)
    assert exported(capsys, recordings, *argv) == picked, argv
    return picked


LATEST = "20261127-083000.jsonl"
OLDER = "20261126-215500.jsonl"


@pytest.mark.parametrize(
    "flags",
    [
        ["--type", "text,image"],
        ["--type", "text", "--type", "image"],
        ["--type", " text , image "],
        ["--type", "TEXT,Image"],
    ],
    ids=["commas", "repeated", "spaces", "any-case"],
)
def test_commas_mean_or_in_both(capsys: pytest.CaptureFixture[str], recordings: Path, flags: list[str]) -> None:
    assert both(capsys, recordings, *flags) == [(LATEST, 1), (LATEST, 2)]


def test_other_flags_combine_with_and_in_both(capsys: pytest.CaptureFixture[str], recordings: Path) -> None:
    assert both(capsys, recordings, "--field", "messages", "--status", "read,failed") == [(LATEST, 3)]
    assert both(capsys, recordings, "--type", "text,video", "--last", "1") == [(LATEST, 4)]
    assert both(capsys, recordings, "--seq", "2,4", "--id", "rec-4") == [(LATEST, 2), (LATEST, 4)]


@pytest.mark.parametrize(
    "name",
    [
        "rec/20261126-215500.jsonl",  # a path
        OLDER,  # a file name as `sessions` lists it
        "20261126-215500",  # ... without .jsonl
        "20261126",  # the start of exactly one session's name
    ],
)
def test_both_read_session_names_the_same_way(capsys: pytest.CaptureFixture[str], recordings: Path, name: str) -> None:
    assert both(capsys, recordings, name, "--type", "text") == [(OLDER, 1)]


def test_a_directory_means_its_sessions_in_order(capsys: pytest.CaptureFixture[str], recordings: Path) -> None:
    assert both(capsys, recordings, str(recordings), "--type", "image") == [(OLDER, 2), (LATEST, 2)]


def test_the_default_is_the_latest_session(capsys: pytest.CaptureFixture[str], recordings: Path) -> None:
    assert both(capsys, recordings, "--seq", "1") == [(LATEST, 1)]


@pytest.mark.parametrize(
    ("name", "message"),
    [
        ("nowhere", "no recording nowhere (not a file, nor a session in rec)"),
        ("2026112", "2026112 matches 2 sessions in rec (20261126-215500.jsonl, 20261127-083000.jsonl): name one"),
        (".", "no .jsonl session in ."),
    ],
)
def test_both_refuse_an_unknown_or_ambiguous_name_alike(
    capsys: pytest.CaptureFixture[str], recordings: Path, name: str, message: str
) -> None:
    replay_code = main(["replay", name, "--to", TARGET, "--recordings-dir", "rec", "--dry-run"])
    replay_err = capsys.readouterr().err
    export_code = main(["export", name, "--out", "out", "--recordings-dir", "rec"])
    export_err = capsys.readouterr().err
    assert (replay_code, export_code) == (2, 2)
    assert replay_err == f"wa-devtunnel replay: {message}\n"
    assert export_err == f"wa-devtunnel export: {message}\n"


def test_find_session_prefers_an_existing_path(tmp_path: Path) -> None:
    directory = tmp_path / "rec"
    session = record_session(directory, FIRST)
    assert find_session(str(session), directory) == [session]
    assert find_session(session.stem, directory) == [session]
    with pytest.raises(SessionNotFound):
        find_session("", directory)
    assert recordings_from_args([], directory, ("event",), "Replaying").paths == [session]


def test_selection_from_args_reads_every_flag() -> None:
    parser = argparse.ArgumentParser()
    add_selection_arguments(parser, "selection", "origin")
    flags = "--id ab,cd --seq 1-3 --seq 7 --field messages --origin meta,sample --signature valid --status read"
    args = parser.parse_args([*flags.split(), "--since", "2026-11-26", "--last", "2"])
    selection = selection_from_args(args, "all")
    assert selection.ids == ("ab", "cd") and selection.seqs == ((1, 3), (7, 7))
    assert selection.origins == ("meta", "sample") and selection.fields == ("messages",)
    assert (selection.last, selection.kind, selection.since) == (2, "all", datetime(2026, 11, 26, tzinfo=UTC))


# The kinds a WhatsApp developer routes on --------------------------------------------------------

GROUP_CHANGE = {
    "field": "group_participants_update",
    "value": {
        "messaging_product": "whatsapp",
        "metadata": {"display_phone_number": "15550783881", "phone_number_id": "106540352242922"},
        "groups": [
            {
                "timestamp": "1765268400",
                "group_id": "Y2FwaV9ncm91cDoxNTU1MDc4Mzg4MToxMjAzNjMzOTk5OTk4ODc3",
                "type": "group_participants_add",
                "reason": "invite_link",
                "added_participants": [{"input": "+16505551234", "wa_id": "16505551234"}],
            }
        ],
    },
}
# What the business typed in the WhatsApp Business app, echoed to the API (smb_message_echoes).
ECHO_CHANGE = {
    "field": "smb_message_echoes",
    "value": {
        "messaging_product": "whatsapp",
        "metadata": {"display_phone_number": "15550783881", "phone_number_id": "106540352242922"},
        "message_echoes": [
            {
                "from": "15550783881",
                "to": "16505551234",
                "id": "wamid.HBgLMTY1MDU1NTEyMzQVAgARGBI5QjFDMkQzRTRGNUE2QjdDOEQA",
                "timestamp": "1765268500",
                "type": "text",
                "text": {"body": "Your order shipped this morning"},
            }
        ],
    },
}
UNKNOWN_CHANGE = {"field": "partner_solution_something_new", "value": {"solution_id": "7731", "status": "ACTIVE"}}
KIND_BODIES = {
    1: samples.meta_json(samples.envelope([samples.messages_change([messages.list_reply()])])),
    2: samples.meta_json(samples.envelope([samples.messages_change([messages.button_reply()])])),
    3: samples.meta_json(samples.envelope([samples.messages_change([messages.flow_reply()])])),
    4: samples.meta_json(samples.envelope([samples.messages_change([messages.template_button()])])),
    5: samples.meta_json(samples.envelope([GROUP_CHANGE])),
    6: samples.meta_json(samples.envelope([UNKNOWN_CHANGE])),
    7: samples.meta_json(samples.envelope([samples.messages_change(statuses=[samples.status("failed")])])),
    8: samples.meta_json(samples.envelope([ECHO_CHANGE])),
}


@pytest.fixture
def kinds(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """One session of the kinds above; seq 6 was recorded without a summary (it is derived data)."""
    monkeypatch.chdir(tmp_path)
    directory = tmp_path / "rec"
    with SessionRecorder(directory, now=lambda: FIRST) as recorder:
        for seq, body in KIND_BODIES.items():
            record = event(seq, body)
            if seq == 6:
                del record["summary"]
            recorder.append(record)
    return directory


@pytest.mark.parametrize(
    ("flags", "seqs"),
    [
        (["--type", "list_reply"], [1]),
        (["--type", "button_reply,nfm_reply"], [2, 3]),
        (["--type", "interactive"], [1, 2, 3]),
        (["--type", "button"], [4]),  # a template's quick-reply button, not an interactive button_reply
        (["--field", "group_participants_update"], [5]),
        (["--field", "group_*"], [5]),
        (["--field", "partner_solution_something_new"], [6]),
        (["--status", "failed"], [7]),
        (["--type", "echo"], [8]),
        (["--field", "smb_message_echoes", "--type", "text"], [8]),
    ],
)
def test_types_fields_and_statuses_of_every_kind(
    capsys: pytest.CaptureFixture[str], kinds: Path, flags: list[str], seqs: list[int]
) -> None:
    assert both(capsys, kinds, *flags) == [(OLDER, seq) for seq in seqs]


HAS = (
    "this session (rec/20261126-215500.jsonl) has 8 events: types interactive 3, list_reply 1, button_reply 1, "
    "nfm_reply 1, button 1, text 1, echo 1; statuses failed 1; fields messages 5, group_participants_update 1, "
    "partner_solution_something_new 1, smb_message_echoes 1"
)


@pytest.mark.parametrize(
    ("flags", "cause"),
    [
        (["--type", "bogus"], "--type bogus"),
        (["--status", "read"], "--status read"),
        (["--field", "flows"], "--field flows"),
        (["--type", "list_reply", "--status", "failed"], "(kind event, type list_reply, status failed)"),
        (["--signature", "invalid"], "--signature invalid"),
    ],
)
def test_a_selection_matching_nothing_names_the_cause_and_counts_what_the_session_has(
    capsys: pytest.CaptureFixture[str], kinds: Path, flags: list[str], cause: str
) -> None:
    assert main(["replay", *flags, "--to", TARGET, "--recordings-dir", "rec", "--dry-run"]) == 2
    replay_err = capsys.readouterr().err.splitlines()[-1]
    assert main(["export", *flags, "--out", "out", "--recordings-dir", "rec"]) == 2
    export_err = capsys.readouterr().err.splitlines()[-1]
    has = HAS + ("; signatures unchecked 8" if "--signature" in flags else "")
    assert replay_err == f"wa-devtunnel replay: no exchanges match {cause}: {has}"
    assert export_err == f"wa-devtunnel export: no event matches {cause}: {has}"
    assert "--kind all" not in replay_err, "kind is not the problem here"


def test_kind_all_is_suggested_only_when_it_would_match(capsys: pytest.CaptureFixture[str], kinds: Path) -> None:
    verify = {**event(9, b""), "kind": "verify", "request": {"method": "GET", "path": "/webhook/whatsapp", "body": ""}}
    with SessionRecorder(kinds, now=lambda: SECOND) as recorder:
        recorder.append(verify)
    argv = ["--kind", "event", "--to", TARGET, "--recordings-dir", "rec", "--dry-run"]
    assert main(["replay", "20261127", *argv]) == 2
    assert capsys.readouterr().err == (
        "wa-devtunnel replay: no exchanges match: this session (rec/20261127-083000.jsonl) has no events, "
        "only 1 handshake (try --kind all)\n"
    )
    assert main(["replay", "rec", "--seq", "9", *argv]) == 2
    assert capsys.readouterr().err.rstrip().endswith(
        "no exchanges match (kind event, seq 9): these 2 sessions (20261126-215500.jsonl, 20261127-083000.jsonl) "
        "have 8 events: types interactive 3, list_reply 1, button_reply 1, nfm_reply 1, button 1, text 1, echo 1; "
        "statuses failed 1; fields messages 5, group_participants_update 1, partner_solution_something_new 1, "
        "smb_message_echoes 1 (try --kind all)"
    )


def test_hostile_values_in_the_hint_are_shown_as_data(capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    """Types and fields come from the request: a control character in one must not reach the terminal."""
    monkeypatch_dir = tmp_path / "rec"
    hostile = {"field": "evil\x1b[31m\nfield", "value": {"x": 1}}
    with SessionRecorder(monkeypatch_dir, now=lambda: FIRST) as recorder:
        recorder.append(event(1, samples.meta_json(samples.envelope([hostile]))))
    assert main(["replay", "--type", "x", "--to", TARGET, "--recordings-dir", str(monkeypatch_dir), "--dry-run"]) == 2
    err = capsys.readouterr().err
    assert "\x1b" not in err and err.count("\n") == 2, err
    assert "fields evil\\x1b[31m\\x0afield 1" in err


def test_echoes_and_interactive_subtypes_are_message_types() -> None:
    items = [
        {"kind": "message", "type": "text", "direction": "echo"},
        {"kind": "message", "type": "interactive", "subtype": "list_reply"},
        {"kind": "message", "type": "system", "subtype": "user_changed_number"},
        {"kind": "message", "type": "document", "subtype": "invoice.pdf"},  # a file name, not a type
        {"kind": "message", "type": "button", "subtype": "attend-yes"},  # a payload, not a type
        {"kind": "status", "status": "read"},
    ]
    view = view_from_record({"kind": "event", "summary": {"items": items}})
    assert view.message_types == (
        *("text", "echo", "interactive", "list_reply", "system", "user_changed_number", "document", "button"),
    )
    assert view.statuses == ("read",)


@pytest.mark.parametrize(("command", "verb"), [("replay", "replayed"), ("export", "exported")])
def test_origin_help_lists_every_origin_a_record_can_have(
    command: str, verb: str, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("COLUMNS", "200")
    with pytest.raises(SystemExit) as exited:
        main([command, "--help"])
    assert exited.value.code == 0
    help_line = next(line for line in capsys.readouterr().out.splitlines() if line.strip().startswith("--origin"))
    shown = help_line.split("--origin ORIGIN", 1)[1].strip()
    assert shown == f"who sent it: {', '.join(ORIGINS)} (self-tests are never {verb})"
    assert ", ".join(ORIGINS) == "meta, other, local, selftest, sample, replay"
