"""`wa-devtunnel watch`: viewers attach to a running engine (found through the instance file) and detach freely."""

from __future__ import annotations

import asyncio
import json
import signal
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import aiohttp
import pytest

from tests.support.cli_process import minimal_env
from tests.support.constants import APP_SECRET
from tests.support.engine_host import HostedEngine, hosted_engine
from tests.support.inspector import inspector_settings
from tests.support.meta_client import MetaLikeSender
from wa_devtunnel.cli.main import main
from wa_devtunnel.rules.samples import payloads as samples

WAIT_S = 15.0


@pytest.fixture
def hosted(tmp_path: Path) -> Iterator[HostedEngine]:
    with hosted_engine(inspector_settings(tmp_path)) as engine:
        yield engine


def _deliver(url: str, text: str) -> int:
    async def post() -> int:
        async with aiohttp.ClientSession() as session:
            body = samples.text_message_payload(text=text, message_id=f"wamid.{text}")
            return (await MetaLikeSender(session, url, APP_SECRET).deliver(body, attempts=1))[-1]

    return asyncio.run(post())


def _wait_for(path: Path, condition: Callable[[str], bool], what: str) -> str:
    deadline = time.monotonic() + WAIT_S
    while True:
        text = path.read_text(encoding="utf-8", errors="replace")
        if condition(text):
            return text
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what}; got:\n{text}")
        time.sleep(0.05)


def _watch(tmp_path: Path, *args: str) -> tuple[subprocess.Popen[bytes], Path, Path]:
    name = "-".join(arg.strip("-") for arg in args)
    out, err = tmp_path / f"watch-{name}.out", tmp_path / f"watch-{name}.err"
    with open(out, "wb") as stdout, open(err, "wb") as stderr:
        proc = subprocess.Popen(
            [sys.executable, "-m", "wa_devtunnel", "watch", "--recordings-dir", "rec", *args],
            cwd=tmp_path,
            env=minimal_env(tmp_path),
            stdout=stdout,
            stderr=stderr,
        )
    return proc, out, err


def test_two_headless_watchers_print_every_exchange_and_detaching_leaves_the_engine(
    hosted: HostedEngine, tmp_path: Path
) -> None:
    text_watch, text_out, text_err = _watch(tmp_path, "--headless")
    json_watch, json_out, _ = _watch(tmp_path, "--json")
    try:
        _wait_for(text_out, lambda t: "Callback URL: http://127.0.0.1:" in t, "the start-up lines")
        _wait_for(json_out, lambda t: '"event":"started"' in t.replace(" ", ""), "the started line")
        assert _deliver(hosted.started.callback_url, "hola") == 200
        _wait_for(text_out, lambda t: 'text from 16505551234: "hola"' in t, "the exchange line")
        lines = _wait_for(json_out, lambda t: "wamid.hola" in t, "the exchange as JSON").splitlines()
        exchange = next(json.loads(line) for line in lines if '"exchange"' in line)
        assert exchange["event"] == "exchange" and exchange["signature"] == "valid"

        text_watch.send_signal(signal.SIGINT)
        assert text_watch.wait(WAIT_S) == 0
        assert "Detached; the engine goes on." in text_err.read_text()
        assert _deliver(hosted.started.callback_url, "still") == 200  # the engine did not stop
        _wait_for(json_out, lambda t: "wamid.still" in t, "the JSON watcher still attached")
    finally:
        for proc in (text_watch, json_watch):
            if proc.poll() is None:
                proc.kill()
                proc.wait(WAIT_S)


def test_watch_without_a_running_engine_says_how_to_start_one(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.chdir(tmp_path)
    assert main(["watch", "--headless"]) == 2
    err = capsys.readouterr().err
    assert "no running engine found" in err and "wa-devtunnel up --headless" in err


def test_watch_at_an_explicit_address_needs_the_secret(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.chdir(tmp_path)
    monkeypatch.delenv("WA_DEVTUNNEL_ENGINE_SECRET", raising=False)
    assert main(["watch", "--headless", "--address", str(tmp_path / "engine.sock")]) == 2
    assert "WA_DEVTUNNEL_ENGINE_SECRET" in capsys.readouterr().err
    monkeypatch.setenv("WA_DEVTUNNEL_ENGINE_SECRET", "s")
    assert main(["watch", "--headless", "--address", str(tmp_path / "engine.sock")]) == 2
    assert "no engine listens at" in capsys.readouterr().err


def test_an_engine_that_could_not_open_its_channel_is_said_to_accept_no_watchers(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    deep = tmp_path / ("d" * 60) / ("e" * 60)  # past the 108 bytes a Unix socket path may have
    deep.mkdir(parents=True)
    monkeypatch.setattr(tempfile, "tempdir", str(deep))
    with hosted_engine(inspector_settings(tmp_path)) as engine:
        assert not engine.channel.listening
        monkeypatch.chdir(tmp_path)
        assert main(["watch", "--headless", "--recordings-dir", "rec"]) == 2
    assert "accepts no watchers" in capsys.readouterr().err


def test_an_engine_started_by_a_tui_prints_no_exchange_lines_but_still_its_notices() -> None:
    import io

    from wa_devtunnel.cli.headless import HeadlessPrinter
    from wa_devtunnel.engine.events import ExchangeRecorded, Notice

    out, err = io.StringIO(), io.StringIO()
    printer = HeadlessPrinter(out, err, json_lines=False, exchanges=False)  # its stdout is /dev/null
    record = {"id": "x", "seq": 1, "kind": "event", "request": {"method": "POST"}, "response": {"status": 200}}
    printer.render(ExchangeRecorded(None, record))
    printer.render(Notice("error", "Tunnel lost: ERR_NGROK_3200"))
    assert out.getvalue() == "" and "Tunnel lost: ERR_NGROK_3200" in err.getvalue()
