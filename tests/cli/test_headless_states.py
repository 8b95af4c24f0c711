"""Headless words for the lasting states and a few lines that read badly: where the token comes from, the
accounts and their file, `--register` from start to undo, no webhook from Meta, a 413's numbers, the
`--ack-first` follow-up under its `#seq`, an unknown number's signing account, and who sent a request."""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import json
import re
from io import StringIO
from pathlib import Path
from typing import Any

import aiohttp
from aiohttp import web

from tests.support.cli_process import run_cli, running_cli
from tests.support.constants import APP_SECRET, VERIFY_TOKEN
from tests.support.engine_host import hosted_engine
from tests.support.inspector import inspector_settings
from tests.support.meta_client import MetaLikeSender
from wa_devtunnel.cli.headless import HeadlessPrinter, format_exchange_line, startup_lines
from wa_devtunnel.cli.watch import watch_headless
from wa_devtunnel.engine.events import (
    ExchangeRecorded,
    ForwardCompleted,
    Notice,
    ReceiverStarted,
    ReceiverStopped,
    RegistrationChanged,
    WebhookQuiet,
)
from wa_devtunnel.engine.exchange_view import view_from_record
from wa_devtunnel.engine.service import WebhookService
from wa_devtunnel.rules.samples import payloads as samples
from wa_devtunnel.settings import load_settings

LOCAL = "http://127.0.0.1:8765/webhook/whatsapp"
PUBLIC = "https://dev-domain.ngrok-free.app/webhook/whatsapp"
NUMBER = "106540352242922"


def printed(*events: Any, json_lines: bool = False) -> tuple[str, str]:
    out, err = StringIO(), StringIO()
    printer = HeadlessPrinter(out, err, json_lines)
    for event in events:
        printer.render(event)
    return out.getvalue(), err.getvalue()


def started(source: str, **fields: Any) -> ReceiverStarted:
    return ReceiverStarted(LOCAL, LOCAL, "wa-token", False, None, 8765, verify_token_source=source, **fields)


# Start-up --------------------------------------------------------------------------------------------


def test_the_token_line_stays_bare_and_the_next_says_where_it_comes_from() -> None:
    cases = {
        "project-state": "  (kept in .wa-devtunnel/state.json)",
        "env-file": "  (from .env)",
        "environment": "  (from WHATSAPP_VERIFY_TOKEN in the environment)",
        "flag": "  (from --verify-token)",
        "generated": "  (temporary: this run only; wa-devtunnel token --write-env keeps one)",
    }
    for source, words in cases.items():
        lines = startup_lines(started(source))
        assert lines[1] == "Verify token: wa-token", "scripts copy the token from this line"
        assert lines[2] == words, source
    first = startup_lines(started("project-state", verify_token_new=True))
    assert first[2] == "  (new, kept in .wa-devtunnel/state.json: the same at every start in this folder)"


def test_the_accounts_are_announced_with_their_file_and_masked_tokens() -> None:
    accounts = (("shop", "shop-verify-token-0001"), ("support", "support-verify-token-02"))
    lines = startup_lines(started("accounts", accounts=accounts, accounts_file="/p/wa-devtunnel.toml"))
    assert "Accounts from /p/wa-devtunnel.toml: 2, each answering Meta's handshake with its own token" in lines
    assert "  shop: verify token shop...01" in lines and "  support: verify token supp...02" in lines
    assert not any("shop-verify-token-0001" in line for line in lines)


def test_a_real_start_names_the_accounts_file_it_found(tmp_path: Path) -> None:
    (tmp_path / "wa-devtunnel.toml").write_text(
        '[[account]]\nname = "shop"\nphone_number_id = "111"\nverify_token = "shop-verify-token-0001"\n',
        encoding="utf-8",
    )
    with running_cli(tmp_path) as cli:
        cli.stop()
    out = cli.stdout()
    assert re.search(r"^Accounts from \S*wa-devtunnel\.toml: 1, each answering", out, re.MULTILINE), out
    assert "  shop: verify token shop...01" in out


def test_json_start_says_the_source_and_the_accounts() -> None:
    out, _ = printed(started("env-file", accounts=(("shop", "t1"),), accounts_file="/p/a.toml"), json_lines=True)
    first = json.loads(out.splitlines()[0])
    assert first["verify_token_source"] == "env-file"
    assert first["accounts"] == [{"name": "shop", "verify_token": "t1"}] and first["accounts_file"] == "/p/a.toml"


# --register ------------------------------------------------------------------------------------------


def test_register_from_start_to_undo_in_lines_and_its_notices_not_repeated() -> None:
    out, err = printed(
        RegistrationChanged("registering", "phone", PUBLIC, target=NUMBER),
        Notice("info", f"Meta verified {PUBLIC} and now sends webhooks ... (undone on exit)", topic="register"),
        RegistrationChanged("registered", "phone", PUBLIC, "Meta verified it", "https://old.example/w", NUMBER),
        RegistrationChanged("registered", "phone", PUBLIC + "2", "again", PUBLIC, NUMBER),
        RegistrationChanged("undoing", "phone", PUBLIC + "2", target=NUMBER),
        RegistrationChanged("undone", "phone", PUBLIC + "2", f"removed the phone number override of {NUMBER}"),
    )
    assert out.splitlines() == [
        f"Registered {PUBLIC} as phone number {NUMBER}'s webhook (was: https://old.example/w); undone on exit",
        f"Re-registered {PUBLIC}2 as phone number {NUMBER}'s webhook (the tunnel URL changed; was: {PUBLIC}); "
        "undone on exit",
    ]
    assert err.splitlines() == [
        f"Registering {PUBLIC} with Meta as phone number {NUMBER}'s webhook...",
        f"Undoing the registration of {PUBLIC}2...",
        f"Registration undone: removed the phone number override of {NUMBER}",
    ]


def test_a_first_registration_says_none_was_there_and_failures_are_loud() -> None:
    out, err = printed(
        RegistrationChanged("registered", "app", PUBLIC, "ok", "", "1234567890123456"),
        RegistrationChanged("failed", "waba", PUBLIC, "Meta refused it: (#100) subscribe the app first"),
        RegistrationChanged("undo-failed", "app", PUBLIC, "timed out. Meta still sends webhooks to it: run `x`."),
    )
    assert out.strip() == f"Registered {PUBLIC} as app 1234567890123456's callback URL (was: none); undone on exit"
    assert err.splitlines() == [
        "[error] Registration FAILED: Meta refused it: (#100) subscribe the app first",
        "Registration NOT undone: timed out. Meta still sends webhooks to it: run `x`.",
    ]


def test_registration_in_json_lines() -> None:
    event = RegistrationChanged("undone", "phone", PUBLIC, "removed it", "", NUMBER)
    out, err = printed(event, json_lines=True)
    assert json.loads(out) == {"event": "registration"} | dataclasses.asdict(event)
    assert err == ""


def test_metas_words_in_a_registration_line_are_shown_never_obeyed() -> None:
    _, err = printed(RegistrationChanged("failed", "phone", PUBLIC, "bad\x1b[2J\r\nline"))
    assert "\x1b" not in err and "\r" not in err and err.count("\n") == 1


# No webhook from Meta ----------------------------------------------------------------------------------


def test_no_webhook_then_one_arrives() -> None:
    hint = f"No webhook from Meta in 120 s since its handshake on {PUBLIC}. Check: is `messages` subscribed?"
    _, err = printed(
        WebhookQuiet(True, 120.0, PUBLIC, "handshake", hint),
        Notice("warning", "No webhook from Meta in 120 s since registering ...", topic="quiet"),
        WebhookQuiet(False, 120.0, PUBLIC, "handshake"),
    )
    assert err.splitlines() == [f"[warning] {hint}", "[info] A webhook from Meta arrived: the routing works."]


# Exchange lines --------------------------------------------------------------------------------------


def _settings(tmp_path: Path, **flags: Any) -> Any:
    return load_settings(
        {"port": "0", "recordings_dir": str(tmp_path / "rec"), "tunnel": "none", **flags},
        environ={"WHATSAPP_VERIFY_TOKEN": VERIFY_TOKEN, "WHATSAPP_APP_SECRET": APP_SECRET},
        cwd=tmp_path,
    )


async def test_a_413_line_says_how_big_against_what_limit(tmp_path: Path) -> None:
    service = WebhookService(_settings(tmp_path, max_body_bytes="1000"))
    events = service.bus.subscribe()
    await service.start()
    try:
        async with aiohttp.ClientSession() as session, session.post(service.local_url, data=b"x" * 4000) as answer:
            assert answer.status == 413
    finally:
        await service.stop()
    [exchange] = [e for e in events.drain() if isinstance(e, ExchangeRecorded)]
    line = format_exchange_line(exchange.view)
    assert "  413  event" in line
    assert "body too large: 4,000 bytes > 1,000 limit (not read; --max-body-bytes raises it)" in line


def test_a_413_without_numbers_still_has_a_summary() -> None:
    view = view_from_record({"id": "x", "seq": 1, "kind": "event", "response": {"status": 413}})
    assert "body too large for --max-body-bytes (413, not read)" in format_exchange_line(view)


async def test_ack_first_the_follow_up_names_the_seq_its_exchange_line_printed(tmp_path: Path) -> None:
    async def slow_backend(request: web.Request) -> web.Response:
        await asyncio.sleep(0.05)
        return web.Response(text="ok")

    backend = web.Application()
    backend.router.add_post("/hook", slow_backend)
    runner = web.AppRunner(backend)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    url = f"http://127.0.0.1:{runner.addresses[0][1]}/hook"
    service = WebhookService(_settings(tmp_path, forward_to=url, ack_first=True))
    events = service.bus.subscribe()
    late: list[ForwardCompleted] = []
    service.bus.add_listener(lambda event: late.append(event) if isinstance(event, ForwardCompleted) else None)
    await service.start()
    try:
        async with aiohttp.ClientSession() as session:
            sender = MetaLikeSender(session, service.local_url, APP_SECRET)
            for _ in range(2):
                assert await sender.deliver(samples.text_message_payload()) == [200]
        for _ in range(200):
            if len(late) == 2:
                break
            await asyncio.sleep(0.02)
    finally:
        await service.stop()
        await runner.cleanup()
    out, _ = printed(*(e for e in events.drain() if isinstance(e, ExchangeRecorded | ForwardCompleted)))
    lines = out.splitlines()
    numbers = [int(n) for line in lines for n in re.findall(r"backend pending \(#(\d+), acknowledged first\)", line)]
    assert len(numbers) == 2, lines
    follow_ups = [line for line in lines if "↳" in line]
    assert [int(re.search(r"↳ #(\d+) ", line).group(1)) for line in follow_ups] == numbers  # type: ignore[union-attr]
    assert all(re.fullmatch(r" {10}↳ #\d+ forwarded: 200 in \d+ ms", line) for line in follow_ups), follow_ups
    for number in numbers:  # each follow-up comes after the line that printed its number
        printed_at = next(i for i, line in enumerate(lines) if f"(#{number}, acknowledged first)" in line)
        assert printed_at < next(i for i, line in enumerate(lines) if f"↳ #{number} " in line)


def test_a_failed_late_forward_says_why() -> None:
    out, _ = printed(
        ForwardCompleted("x", 12, {"status": None, "error": "backend unreachable: refused", "elapsed_ms": 3})
    )
    assert out == " " * 10 + "↳ #12 forward failed in 3 ms: backend unreachable: refused\n"


def _event_record(**fields: Any) -> dict[str, Any]:
    return {
        "id": "x",
        "seq": 3,
        "kind": "event",
        "request": {"method": "POST", "path": "/webhook/whatsapp"},
        "response": {"status": 200},
        "summary": {"headline": "messages: text from 16505551234: hi"},
        **fields,
    }


def test_an_unknown_number_names_the_account_that_signed_it() -> None:
    record = _event_record(
        signature="valid",
        account="shop",
        summary={"headline": "messages: text", "flags": ["unknown-phone-number-id"]},
    )
    line = format_exchange_line(view_from_record(record))
    assert line.endswith("messages: text  [unknown-phone-number-id]  (signed by account shop)")
    known = format_exchange_line(view_from_record(_event_record(signature="valid", account="shop")))
    assert known.endswith("  (account shop)")


def test_origins_ours_by_name_others_with_their_client_address() -> None:
    view = view_from_record(_event_record(origin="sample"))
    assert format_exchange_line(view).endswith("hi  (sample)")
    assert format_exchange_line(view_from_record(_event_record(origin="meta"))).endswith(": hi")
    for origin in ("local", "other"):
        bare = view_from_record(_event_record(origin=origin))
        assert format_exchange_line(bare).endswith(f"hi  ({origin})")
        with_client = _with_client(bare, "203.0.113.9")
        assert format_exchange_line(with_client).endswith(f"hi  ({origin} from 203.0.113.9)")


def _with_client(view: Any, client: str) -> Any:
    """The view with its real client address (engine/exchange_view.py's `client`, or a stand-in before it)."""
    if "client" in {field.name for field in dataclasses.fields(view)}:
        return dataclasses.replace(view, client=client)

    class WithClient:
        def __init__(self) -> None:
            self.client = client

        def __getattr__(self, name: str) -> Any:
            return getattr(view, name)

    return WithClient()


def test_a_forward_to_the_receiver_itself_exits_2_before_any_loop(tmp_path: Path) -> None:
    import socket

    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    target = f"http://127.0.0.1:{port}/webhook/whatsapp"
    done = run_cli(
        tmp_path, "up", "--headless", "--tunnel", "none", "--port", str(port), "--forward-to", target, timeout=30
    )
    assert done.returncode == 2, done.stderr
    assert f"configuration error: --forward-to: {target} is this receiver itself (port {port}" in done.stderr
    assert done.stdout == "", "nothing was received or forwarded"
    assert list((tmp_path / "recordings").glob("*.jsonl")) == []


async def test_watch_headless_attaching_later_prints_the_lasting_states(tmp_path: Path) -> None:
    """`wa-devtunnel watch --headless` started after --register and a quiet spell still says both."""
    registered = RegistrationChanged("registered", "phone", PUBLIC, "Meta verified it", "", NUMBER)
    quiet = WebhookQuiet(True, 120.0, PUBLIC, "handshake", "No webhook from Meta in 120 s since its handshake.")
    with hosted_engine(inspector_settings(tmp_path)) as hosted:

        async def publish() -> None:
            hosted.engine.service.bus.publish(registered)
            hosted.engine.service.bus.publish(quiet)

        hosted.engine.submit(publish()).result(5)
        for _ in range(250):  # the channel keeps them once its pump took them from the bus
            if quiet in hosted.channel.server._state.values():
                break
            await asyncio.sleep(0.02)
        out, err = StringIO(), StringIO()
        watching = asyncio.ensure_future(watch_headless(hosted.attach(records=False), out=out, err=err))
        for _ in range(250):
            if "No webhook from Meta" in err.getvalue():
                break
            await asyncio.sleep(0.02)
        watching.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await watching
    assert f"Registered {PUBLIC} as phone number {NUMBER}'s webhook (was: none); undone on exit" in out.getvalue()
    assert "[warning] No webhook from Meta in 120 s since its handshake." in err.getvalue()


def test_a_run_that_recorded_nothing_says_so_at_the_end(tmp_path: Path) -> None:
    _, err = printed(ReceiverStopped(tmp_path / "20261207-130000.jsonl", 0, ()))
    assert err == "Stopped after 0 exchange(s). Nothing recorded (no session file written).\n"
    _, err = printed(ReceiverStopped(None, 0, ()))
    assert err == "Stopped after 0 exchange(s).\n"
