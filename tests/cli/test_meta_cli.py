"""`wa-devtunnel meta status|subscribe|unsubscribe` and `up --register`, against the fake Graph API and ngrok agent."""

from __future__ import annotations

import json
import os
import re
import signal
import subprocess
import sys
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from tests.support.cli_process import registering_env, wait_for
from tests.support.constants import VERIFY_TOKEN
from tests.support.engine_thread import EngineThread
from tests.support.fake_graph import EXPIRED_TOKEN, PHONE_NUMBER_ID, WABA_ID, FakeGraph
from tests.support.fake_ngrok import FakeNgrok, MakeFakeNgrok
from wa_devtunnel.cli.main import main
from wa_devtunnel.cli.meta import NOT_RUNNING
from wa_devtunnel.engine.instance import RunningInstance, write_instance
from wa_devtunnel.engine.meta.errors import NETWORK_FIX
from wa_devtunnel.engine.service import WebhookService
from wa_devtunnel.engine.tunnel.ngrok import NgrokTunnel
from wa_devtunnel.project_state import STATE_DIR_VARIABLE
from wa_devtunnel.settings import load_settings

SETTING_PREFIXES = ("WHATSAPP_", "WA_DEVTUNNEL_", "NGROK_", "META_", "PYNGROK_")
PUBLIC_CALLBACK = re.compile(r"Callback URL: (https://\S+)")


@pytest.fixture
def graph_env(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, threaded_fake_graph: FakeGraph) -> Callable[..., None]:
    """Point the in-process CLI at the fake Graph API; call it again to change a setting."""
    for name in list(os.environ):
        if name.startswith(SETTING_PREFIXES):
            monkeypatch.delenv(name)
    monkeypatch.chdir(tmp_path)

    def configure(**env: str) -> None:
        for key, value in threaded_fake_graph.env(**{"WHATSAPP_VERIFY_TOKEN": VERIFY_TOKEN, **env}).items():
            monkeypatch.setenv(key, value)

    configure()
    return configure


@pytest.fixture
def running_up(tmp_path: Path, fake_ngrok: FakeNgrok, threaded_fake_graph: FakeGraph) -> Iterator[WebhookService]:
    """A live `wa-devtunnel up` in this process (its own thread), tunnelled, announced in recordings/."""
    settings = load_settings(
        {"port": "0", "tunnel": "ngrok"},
        environ=threaded_fake_graph.env(WHATSAPP_VERIFY_TOKEN=VERIFY_TOKEN),
        cwd=tmp_path,
    )
    tunnel = NgrokTunnel("fake-authtoken", ngrok_path=str(fake_ngrok.ngrok_path))
    engine = EngineThread(WebhookService(settings, tunnel=tunnel, selftest_ssl=fake_ngrok.ssl_context()))
    engine.start(timeout=20)
    try:
        yield engine.service
    finally:
        engine.stop()


def meta(capsys: pytest.CaptureFixture[str], *args: str) -> tuple[int, str, str]:
    code = main(["meta", *args])
    out, err = capsys.readouterr()
    return code, out, err


def test_subscribe_status_unsubscribe_against_the_running_instance(
    graph_env: Callable[..., None],
    running_up: WebhookService,
    threaded_fake_graph: FakeGraph,
    capsys: pytest.CaptureFixture[str],
) -> None:
    url = running_up.callback_url
    code, out, err = meta(capsys, "subscribe")
    assert (code, err) == (0, "")
    assert out.splitlines() == [
        f"Meta verified {url} and now sends webhooks for phone number {PHONE_NUMBER_ID} (phone number override) there.",
        "Undo with: wa-devtunnel meta unsubscribe --scope phone",
        f"`messages` for {PHONE_NUMBER_ID} now go to {url} (phone number override)",
    ]
    assert threaded_fake_graph.handshakes[-1].ok

    code, out, _ = meta(capsys, "status")
    assert code == 0
    assert f"Phone number {PHONE_NUMBER_ID} override: {url}" in out
    assert f"This wa-devtunnel ({url}) receives them" in out
    assert f"WABA {WABA_ID} override: none  [app subscribed]" in out

    code, out, _ = meta(capsys, "unsubscribe")
    assert code == 0
    assert out.splitlines()[0] == f"removed the phone number override of {PHONE_NUMBER_ID}"
    assert threaded_fake_graph.state.phone_overrides == {}
    code, out, _ = meta(capsys, "status", "--json")
    status = json.loads(out)
    assert status["phone"]["override_callback_uri"] is None
    assert status["effective"] == {"callback_url": None, "level": "nothing configured"}


def test_subscribe_without_a_running_instance_exits_2(
    graph_env: Callable[..., None], threaded_fake_graph: FakeGraph, capsys: pytest.CaptureFixture[str]
) -> None:
    code, _out, err = meta(capsys, "subscribe")
    assert code == 2
    assert err.strip() == f"error: {NOT_RUNNING}"
    assert threaded_fake_graph.requests == []


def test_wrong_verify_token_prints_metas_2200_verbatim(
    graph_env: Callable[..., None],
    running_up: WebhookService,
    threaded_fake_graph: FakeGraph,
    capsys: pytest.CaptureFixture[str],
) -> None:
    graph_env(WHATSAPP_VERIFY_TOKEN="not-the-running-instances-token")
    code, _out, err = meta(capsys, "subscribe")
    assert code == 1
    lines = err.splitlines()
    assert lines[0] == (
        "Meta refused: (#2200) Callback verification failed with the following errors: "
        "HTTP Status Code = 403; HTTP Message = Forbidden"
    )
    assert re.fullmatch(r"  \(OAuthException, code 2200, fbtrace_id \S+\)", lines[1])
    assert lines[2].startswith("  fix: Meta could not verify the callback")
    assert threaded_fake_graph.state.phone_overrides == {}


def test_waba_override_before_the_app_is_subscribed_prints_error_100(
    graph_env: Callable[..., None],
    running_up: WebhookService,
    threaded_fake_graph: FakeGraph,
    capsys: pytest.CaptureFixture[str],
) -> None:
    threaded_fake_graph.state.app_subscribed_to_waba = False
    code, out, _err = meta(capsys, "subscribe", "--scope", "waba", "--json")
    assert code == 1
    report = json.loads(out)
    assert report["error"]["message"] == "(#100) Before override the current callback uri, your app must be subscribed"
    assert report["error"]["code"] == 100 and report["error"]["type"] == "OAuthException"
    assert f"/{WABA_ID}/subscribed_apps" in report["fix"]


def test_expired_token_exits_1_with_metas_message(
    graph_env: Callable[..., None], threaded_fake_graph: FakeGraph, capsys: pytest.CaptureFixture[str]
) -> None:
    graph_env(WHATSAPP_ACCESS_TOKEN=EXPIRED_TOKEN)
    code, out, err = meta(capsys, "subscribe", "--url", "https://x.ngrok-free.app/webhook/whatsapp")
    assert code == 1
    assert err.startswith("Meta refused: Error validating access token: Session has expired on ")
    assert "fix: the access token is invalid or expired" in err
    code, out, _ = meta(capsys, "status")
    assert code == 1
    assert f"Phone number {PHONE_NUMBER_ID} override: Meta refused: Error validating access token" in out


def test_app_scope_unsubscribe_restores_the_callback_it_replaced(
    graph_env: Callable[..., None],
    running_up: WebhookService,
    threaded_fake_graph: FakeGraph,
    capsys: pytest.CaptureFixture[str],
) -> None:
    graph_env(WA_DEVTUNNEL_RESTORE_VERIFY_TOKEN=VERIFY_TOKEN)
    previous = running_up.local_url  # stands in for production: it answers the handshake too
    threaded_fake_graph.state.app_subscription = {
        "object": "whatsapp_business_account",
        "callback_url": previous,
        "active": True,
        "fields": [{"name": "messages", "version": "v23.0"}, {"name": "account_update", "version": "v23.0"}],
    }
    assert meta(capsys, "subscribe", "--scope", "app")[0] == 0
    assert threaded_fake_graph.state.app_subscription["callback_url"] == running_up.callback_url
    code, out, _ = meta(capsys, "unsubscribe", "--scope", "app")
    assert code == 0
    assert out.splitlines()[0] == f"restored the app callback of 1234567890123456 to {previous}"
    assert threaded_fake_graph.state.app_subscription["callback_url"] == previous
    assert [f["name"] for f in threaded_fake_graph.state.app_subscription["fields"]] == ["messages", "account_update"]
    code, _, err = meta(capsys, "unsubscribe", "--scope", "app")
    assert code == 2 and "nothing to restore" in err


def test_unsubscribe_leaves_someone_elses_override(
    graph_env: Callable[..., None],
    running_up: WebhookService,
    threaded_fake_graph: FakeGraph,
    capsys: pytest.CaptureFixture[str],
) -> None:
    threaded_fake_graph.state.phone_overrides[PHONE_NUMBER_ID] = "https://colleague.example/webhook"
    code, _, err = meta(capsys, "unsubscribe")
    assert code == 2
    assert "points to https://colleague.example/webhook, not to https://localhost:" in err
    assert threaded_fake_graph.state.phone_overrides[PHONE_NUMBER_ID] == "https://colleague.example/webhook"


def test_meta_needs_its_settings(graph_env: Callable[..., None], capsys: pytest.CaptureFixture[str]) -> None:
    graph_env(WHATSAPP_PHONE_NUMBER_ID="")
    code, _, err = meta(capsys, "subscribe", "--url", "https://x.ngrok-free.app/webhook/whatsapp")
    assert code == 2 and err.strip() == "meta subscribe --scope phone needs WHATSAPP_PHONE_NUMBER_ID"


def test_up_register_follows_the_tunnel_and_cleans_up_on_exit(
    tmp_path: Path, make_fake_ngrok: MakeFakeNgrok, threaded_fake_graph: FakeGraph
) -> None:
    fake = make_fake_ngrok(mode="die-after=3")
    env = registering_env(tmp_path, fake, threaded_fake_graph)
    argv = [sys.executable, "-m", "wa_devtunnel", "up", "--headless", "--port", "0", "--register", "phone"]
    out_path, err_path = tmp_path / "up.stdout", tmp_path / "up.stderr"
    overrides = threaded_fake_graph.state.phone_overrides
    with open(out_path, "wb") as out, open(err_path, "wb") as err:
        proc = subprocess.Popen(argv, cwd=tmp_path, env=env, stdout=out, stderr=err, start_new_session=True)
    try:
        wait_for(lambda: PUBLIC_CALLBACK.search(out_path.read_text()), "the public Callback URL", 20)
        # the reconnected agent stays up, on another domain (the free plan's dev domain would come back the same)
        fake.set_mode("ok", FAKE_NGROK_DEV_DOMAIN="another-dev-domain.ngrok-free.dev")
        first = PUBLIC_CALLBACK.findall(out_path.read_text())[0]
        wait_for(lambda: overrides.get(PHONE_NUMBER_ID) == first, "the first registration", 15)
        wait_for(lambda: overrides.get(PHONE_NUMBER_ID) not in (None, first), "the re-registration", 30)
        second = overrides[PHONE_NUMBER_ID]
        wait_for(lambda: second in PUBLIC_CALLBACK.findall(out_path.read_text()), "the new Callback URL line", 5)
        proc.send_signal(signal.SIGTERM)
        assert proc.wait(timeout=20) == 0
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait(timeout=10)
    stdout, stderr = out_path.read_text(), err_path.read_text()
    assert overrides == {}, stderr
    assert f"Registered {first} as phone number {PHONE_NUMBER_ID}" in stdout, stdout
    assert f"Re-registered {second} as phone number {PHONE_NUMBER_ID}" in stdout, stdout
    assert f"Registration undone: removed the phone number override of {PHONE_NUMBER_ID}" in stderr
    assert [h.ok for h in threaded_fake_graph.handshakes] == [True, True]


def test_meta_status_without_any_id_exits_2(graph_env: Callable[..., None], capsys: pytest.CaptureFixture[str]) -> None:
    graph_env(META_APP_ID="", WHATSAPP_BUSINESS_ACCOUNT_ID="", WHATSAPP_PHONE_NUMBER_ID="")
    code, _, err = meta(capsys, "status")
    assert code == 2 and err.startswith("meta status needs META_APP_ID, WHATSAPP_BUSINESS_ACCOUNT_ID or")


def test_subscribe_refuses_a_local_only_instance(
    tmp_path: Path, graph_env: Callable[..., None], threaded_fake_graph: FakeGraph, capsys: pytest.CaptureFixture[str]
) -> None:
    local = "http://127.0.0.1:8765/webhook/whatsapp"
    write_instance(tmp_path / "recordings", RunningInstance(os.getpid(), local, local, None, None, None))
    code, _, err = meta(capsys, "subscribe")
    assert code == 2
    assert err.strip() == (
        f"error: the running wa-devtunnel is local-only ({local}): Meta cannot reach it; "
        "set NGROK_AUTHTOKEN and restart it (or pass --url)"
    )
    assert threaded_fake_graph.requests == []


def test_meta_not_reached_is_named_as_the_network_never_as_metas_refusal(
    graph_env: Callable[..., None],
    threaded_fake_graph: FakeGraph,
    unused_tcp_port: int,
    capsys: pytest.CaptureFixture[str],
) -> None:
    """A closed port where the Graph API should be: `could not reach`, the network's fix, exit 1 (a failed check)."""
    graph_env(META_GRAPH_URL=f"http://127.0.0.1:{unused_tcp_port}")
    unreachable = (
        f"could not reach 127.0.0.1:{unused_tcp_port}: connection refused "
        "(no answer from Meta; check your network/proxy)"
    )
    code, out, err = meta(capsys, "subscribe", "--url", "https://x.ngrok-free.app/webhook/whatsapp")
    assert (code, out) == (1, "")
    assert err.splitlines() == [unreachable, f"  fix: {NETWORK_FIX}"]
    assert "Meta refused" not in err and "see Meta's message" not in err

    code, out, _ = meta(capsys, "subscribe", "--url", "https://x.ngrok-free.app/webhook/whatsapp", "--json")
    assert code == 1
    assert json.loads(out) == {
        "ok": False,
        "unreachable": {"host": f"127.0.0.1:{unused_tcp_port}", "kind": "refused", "cause": "connection refused"},
        "message": unreachable,
        "fix": NETWORK_FIX,
    }

    code, out, _ = meta(capsys, "status")
    assert code == 1
    assert f"App 1234567890123456 callback: {unreachable}" in out
    assert f"Phone number {PHONE_NUMBER_ID} override: {unreachable}" in out
    assert "Meta refused" not in out
    assert threaded_fake_graph.requests == []


def test_subscribe_refuses_a_plain_http_url_before_calling_meta(
    graph_env: Callable[..., None], threaded_fake_graph: FakeGraph, capsys: pytest.CaptureFixture[str]
) -> None:
    local = "http://127.0.0.1:8765/webhook/whatsapp"
    code, out, err = meta(capsys, "subscribe", "--url", local)
    assert (code, out) == (2, "")
    assert err.strip() == (
        f"error: {local} is not an https URL: Meta calls only https callback URLs with a publicly trusted "
        "certificate (use the https Callback URL wa-devtunnel prints when it runs with a tunnel)"
    )
    assert threaded_fake_graph.requests == []


def test_the_action_and_the_scopes_are_shown_by_their_choices(
    graph_env: Callable[..., None], capsys: pytest.CaptureFixture[str]
) -> None:
    assert _exit_code(["meta"]) == 2
    assert "the following arguments are required: {status,subscribe,unsubscribe}" in capsys.readouterr().err
    assert _exit_code(["meta", "--help"]) == 0
    usage = " ".join(capsys.readouterr().out.split())
    assert "--scope {phone,waba,app}" in usage and "[--json] {status,subscribe,unsubscribe}" in usage
    assert "status: where Meta sends webhooks now; subscribe: point Meta at this tunnel; unsubscribe: undo it" in usage


def _exit_code(argv: list[str]) -> int | str | None:
    """main's exit code, whether argparse returned it or exited."""
    try:
        return main(argv)
    except SystemExit as exited:
        return exited.code


def test_subscribe_uses_the_token_kept_for_this_folder(
    tmp_path: Path,
    graph_env: Callable[..., None],
    fake_ngrok: FakeNgrok,
    threaded_fake_graph: FakeGraph,
    capsys: pytest.CaptureFixture[str],
) -> None:
    """No WHATSAPP_VERIFY_TOKEN anywhere: `up` and `meta` in the same project folder share the kept token."""
    settings = load_settings({"port": "0", "tunnel": "ngrok"}, environ=threaded_fake_graph.env(), cwd=tmp_path)
    assert settings.verify_token_source == "project-state"
    tunnel = NgrokTunnel("fake-authtoken", ngrok_path=str(fake_ngrok.ngrok_path))
    engine = EngineThread(WebhookService(settings, tunnel=tunnel, selftest_ssl=fake_ngrok.ssl_context()))
    engine.start(timeout=20)
    try:
        graph_env(WHATSAPP_VERIFY_TOKEN="")
        code, out, err = meta(capsys, "subscribe")
    finally:
        engine.stop()
    assert (code, err) == (0, ""), err
    assert out.startswith(f"Meta verified {engine.service.callback_url}")
    assert threaded_fake_graph.handshakes[-1].ok


def test_subscribe_refuses_when_the_running_instances_token_is_temporary(
    tmp_path: Path,
    graph_env: Callable[..., None],
    threaded_fake_graph: FakeGraph,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    blocked = tmp_path / "state"
    (blocked / "state.json").mkdir(parents=True)  # nothing can be kept: each run makes up its own token
    monkeypatch.setenv(STATE_DIR_VARIABLE, str(blocked))
    graph_env(WHATSAPP_VERIFY_TOKEN="")
    code, out, err = meta(capsys, "subscribe", "--url", "https://x.ngrok-free.app/webhook/whatsapp")
    assert (code, out) == (2, "")
    assert err.strip() == (
        "error: WHATSAPP_VERIFY_TOKEN is not set and none is kept for this folder, so the running wa-devtunnel's "
        "token is unknown: set it in .env (`wa-devtunnel token --write-env`) and restart wa-devtunnel "
        "(or use `wa-devtunnel up --register`)"
    )
    assert threaded_fake_graph.requests == []


def test_the_docs_show_up_register_as_it_now_speaks(
    graph_env: Callable[..., None], capsys: pytest.CaptureFixture[str]
) -> None:
    """docs/commands/meta.md: the registration's own lines, and --tunnel none refused at start with this message."""
    docs = (Path(__file__).parents[2] / "docs" / "commands" / "meta.md").read_text(encoding="utf-8")
    section = docs[docs.index("## `wa-devtunnel up --register") :]
    url = r"https://localhost:\d+/webhook/whatsapp"
    for line in (
        rf"Registering {url} with Meta as phone number {PHONE_NUMBER_ID}'s webhook\.\.\.",
        rf"Registered {url} as phone number {PHONE_NUMBER_ID}'s webhook \(was: none\); undone on exit",
        rf"Undoing the registration of {url}\.\.\.",
        rf"Registration undone: removed the phone number override of {PHONE_NUMBER_ID}",
    ):
        assert re.search(rf"^    {line}$", section, re.MULTILINE), line
    assert "[info] Meta verified" not in section and "[info] --register" not in section, "the old notices"
    assert _exit_code(["up", "--headless", "--tunnel", "none", "--register", "phone"]) == 2
    [refused] = capsys.readouterr().err.splitlines()
    assert f"    $ wa-devtunnel --headless --tunnel none --register phone\n    {refused}\n" in section
