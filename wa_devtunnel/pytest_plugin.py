"""pytest plugin (entry point `pytest11`): exported WhatsApp webhooks as fixtures, signed like Meta signs them.

Loaded into every pytest run of everyone who installs wa-devtunnel, so it imports only the pure
rules (no aiohttp, no Textual) and adds nothing but one option and three fixtures.

    def test_failed_status(whatsapp_webhook):
        body, headers = whatsapp_webhook("statuses.failed-131049", "my-app-secret")
        response = client.post("/webhook/whatsapp", content=body, headers=headers)
"""

from __future__ import annotations

import difflib
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

import pytest

from wa_devtunnel.rules.samples.payloads import meta_json
from wa_devtunnel.rules.signature import SIGNATURE_HEADER, sign_body

DEFAULT_FIXTURES_DIR = "tests/fixtures/whatsapp"
META_USER_AGENT = "facebookexternalua"
_OPTION = "--whatsapp-fixtures"
_INI = "whatsapp_fixtures"

PayloadLoader = Callable[[str], bytes]
WebhookSigner = Callable[[Any, str], tuple[bytes, dict[str, str]]]


def load_payload(name: str, fixtures_dir: Path | str = DEFAULT_FIXTURES_DIR) -> bytes:
    """The exact bytes of an exported fixture, by name with or without `.json`."""
    directory = Path(fixtures_dir)
    file_name = name if name.endswith(".json") else f"{name}.json"
    path = directory / file_name
    if Path(file_name).name != file_name or not path.is_file():
        available = sorted(p.name.removesuffix(".json") for p in directory.glob("*.json") if p.name != "manifest.json")
        close = difflib.get_close_matches(name.removesuffix(".json"), available, n=3)
        hint = f"; did you mean {', '.join(close)}?" if close else ""
        if not available:
            hint = f"; {directory} holds no fixtures: run `wa-devtunnel export --out {directory}`"
        raise FileNotFoundError(f"no WhatsApp fixture {name!r} in {directory}{hint}")
    return path.read_bytes()


def _body(payload: Any, fixtures_dir: Path | str) -> bytes:
    if isinstance(payload, bytes | bytearray | memoryview):
        return bytes(payload)
    if isinstance(payload, Mapping):
        return meta_json(payload)  # an edited payload: serialised the way Meta would send it
    if isinstance(payload, str):
        if payload.lstrip().startswith("{"):
            return payload.encode("utf-8")
        return load_payload(payload, fixtures_dir)
    raise TypeError(f"expected bytes, a dict, JSON text or a fixture name, not {type(payload).__name__}")


def signed_webhook(
    payload: Any, app_secret: str, *, fixtures_dir: Path | str = DEFAULT_FIXTURES_DIR
) -> tuple[bytes, dict[str, str]]:
    """(body, headers) of a POST as Meta sends it, signed with `app_secret`, for any test client.

    `payload` is the body as bytes, a dict (serialised in Meta's style), JSON text, or the name of an
    exported fixture in `fixtures_dir`. Send the body as raw bytes: re-encoding it breaks the signature.
    """
    body = _body(payload, fixtures_dir)
    headers = {
        "Content-Type": "application/json",
        SIGNATURE_HEADER: sign_body(body, app_secret),
        "User-Agent": META_USER_AGENT,
    }
    return body, headers


def pytest_addoption(parser: pytest.Parser) -> None:
    """Where exported fixtures live: `--whatsapp-fixtures DIR`, or `whatsapp_fixtures` in the ini file."""
    group = parser.getgroup("wa-devtunnel", "WhatsApp webhook fixtures (wa-devtunnel)")
    group.addoption(
        _OPTION,
        dest="whatsapp_fixtures",
        metavar="DIR",
        default=None,
        help=f"directory of fixtures written by `wa-devtunnel export` (default {DEFAULT_FIXTURES_DIR})",
    )
    parser.addini(_INI, help="directory of fixtures written by `wa-devtunnel export`", default=DEFAULT_FIXTURES_DIR)


@pytest.fixture
def whatsapp_fixtures_dir(pytestconfig: pytest.Config) -> Path:
    """The fixtures directory; relative paths are taken from the project's rootdir, not the cwd."""
    configured = pytestconfig.getoption("whatsapp_fixtures") or pytestconfig.getini(_INI) or DEFAULT_FIXTURES_DIR
    path = Path(configured)
    return path if path.is_absolute() else pytestconfig.rootpath / path


@pytest.fixture
def whatsapp_payload(whatsapp_fixtures_dir: Path) -> PayloadLoader:
    """`whatsapp_payload("statuses.failed-131049")` -> the exported bytes."""

    def load(name: str) -> bytes:
        return load_payload(name, whatsapp_fixtures_dir)

    return load


@pytest.fixture
def whatsapp_webhook(whatsapp_fixtures_dir: Path) -> WebhookSigner:
    """`whatsapp_webhook("messages.text", secret)` -> (body, headers), fixture names from the configured dir."""

    def sign(payload: Any, app_secret: str) -> tuple[bytes, dict[str, str]]:
        return signed_webhook(payload, app_secret, fixtures_dir=whatsapp_fixtures_dir)

    return sign
