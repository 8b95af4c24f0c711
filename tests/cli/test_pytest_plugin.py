"""The pytest plugin, as a developer meets it: installed, loaded in their own project, signing fixtures."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from tests.support.export_conversation import record_conversation
from wa_devtunnel.cli.main import main
from wa_devtunnel.pytest_plugin import META_USER_AGENT, load_payload, signed_webhook
from wa_devtunnel.rules.samples import payloads as samples
from wa_devtunnel.rules.signature import SignatureVerdict, check_signature

EXAMPLE = Path(__file__).parents[1] / "examples" / "aiohttp_webhook_example.py"
DOCS_PAGE = Path(__file__).parents[2] / "docs" / "testing.md"
# In-process runs are fast. Plugins with session-wide state (snapshots), a slow finish (hypothesis) or
# ini warnings (asyncio) stay out of these small synchronous projects.
INPROCESS = ("-p", "no:cacheprovider", "-p", "no:textual-snapshot", "-p", "no:hypothesispytest")
INPROCESS += ("-p", "no:aiohttp", "-p", "no:asyncio")
FAILED = samples.meta_json(samples.envelope([samples.messages_change(statuses=[samples.status("failed")])]))


async def test_readme_example_passes_in_a_fresh_project(
    make_receiver: Callable[..., Any], pytester: pytest.Pytester, capsys: pytest.CaptureFixture[str]
) -> None:
    recorded = await record_conversation(await make_receiver())
    assert main(["export", str(recorded.path), "--out", str(pytester.path / "tests/fixtures/whatsapp")]) == 0
    capsys.readouterr()
    pytester.makeini("[pytest]\n")
    (pytester.path / "tests" / "test_webhook.py").write_text(EXAMPLE.read_text())
    result = pytester.runpytest_subprocess("-p", "no:cacheprovider")
    result.assert_outcomes(passed=4)


def test_readme_shows_the_example_verbatim() -> None:
    assert EXAMPLE.read_text() in DOCS_PAGE.read_text()


def _project(pytester: pytest.Pytester, fixtures_dir: str) -> None:
    directory = pytester.path / fixtures_dir
    directory.mkdir(parents=True)
    (directory / "statuses.failed-131049.json").write_bytes(FAILED)
    pytester.makepyfile(
        test_it="""
        from wa_devtunnel.rules.decode.payload import decode_payload

        def test_loads(whatsapp_payload, whatsapp_webhook):
            body = whatsapp_payload("statuses.failed-131049")
            assert decode_payload(body).items[0].status == "failed"
            signed, headers = whatsapp_webhook("statuses.failed-131049.json", "s3cret")
            assert signed == body and headers["X-Hub-Signature-256"].startswith("sha256=")
        """
    )


def test_fixtures_dir_from_the_command_line(pytester: pytest.Pytester) -> None:
    _project(pytester, "elsewhere/payloads")
    pytester.makeini("[pytest]\n")
    result = pytester.runpytest(*INPROCESS, "--whatsapp-fixtures", "elsewhere/payloads")
    result.assert_outcomes(passed=1)


def test_fixtures_dir_from_the_ini_file(pytester: pytest.Pytester) -> None:
    _project(pytester, "payloads")
    pytester.makeini("[pytest]\nwhatsapp_fixtures = payloads\n")
    result = pytester.runpytest(*INPROCESS)
    result.assert_outcomes(passed=1)


def test_a_misspelt_fixture_name_suggests_the_right_one(pytester: pytest.Pytester) -> None:
    _project(pytester, "tests/fixtures/whatsapp")
    pytester.makeini("[pytest]\n")
    pytester.makepyfile(test_typo="def test_typo(whatsapp_payload):\n    whatsapp_payload('statuses.faild-131049')\n")
    result = pytester.runpytest(*INPROCESS, "test_typo.py")
    result.assert_outcomes(failed=1)
    result.stdout.fnmatch_lines(["*no WhatsApp fixture 'statuses.faild-131049'*did you mean statuses.failed-131049?*"])


def test_plugin_is_loaded_in_our_own_run(pytestconfig: pytest.Config, whatsapp_fixtures_dir: Path) -> None:
    assert pytestconfig.pluginmanager.has_plugin("wa_devtunnel")
    assert whatsapp_fixtures_dir == pytestconfig.rootpath / "tests" / "fixtures" / "whatsapp"


def test_signed_webhook_signs_like_meta(tmp_path: Path) -> None:
    (tmp_path / "statuses.failed-131049.json").write_bytes(FAILED)
    body, headers = signed_webhook("statuses.failed-131049", "s3cret", fixtures_dir=tmp_path)
    assert body == FAILED
    assert headers == {
        "Content-Type": "application/json",
        "X-Hub-Signature-256": headers["X-Hub-Signature-256"],
        "User-Agent": META_USER_AGENT,
    }
    check = check_signature(body, headers["X-Hub-Signature-256"], [("app", "s3cret")])
    assert check.verdict is SignatureVerdict.VALID
    assert signed_webhook(FAILED, "s3cret")[1] == headers
    assert signed_webhook(FAILED.decode(), "s3cret")[0] == FAILED
    edited = samples.envelope([samples.messages_change([samples.text_message("Grüße / ok")])])
    assert signed_webhook(edited, "s3cret")[0] == samples.meta_json(edited)  # a dict is serialised as Meta does
    with pytest.raises(TypeError):
        signed_webhook(42, "s3cret")


def test_load_payload_refuses_paths_outside_the_directory(tmp_path: Path) -> None:
    (tmp_path / "inner").mkdir()
    (tmp_path / "secret.json").write_text("{}")
    with pytest.raises(FileNotFoundError, match="holds no fixtures"):
        load_payload("../secret", tmp_path / "inner")
