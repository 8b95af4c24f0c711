"""NGROK_DOMAIN as people paste it (a URL, a trailing dot or slash) becomes the host ngrok wants, or a clear error."""

from __future__ import annotations

from pathlib import Path

import pytest

from wa_devtunnel.settings import ConfigError, load_settings


def _domain(tmp_path: Path, value: str) -> str | None:
    environ = {"NGROK_DOMAIN": value, "NGROK_AUTHTOKEN": "2fakeAuthtoken0123456789"}
    return load_settings({}, environ=environ, cwd=tmp_path).ngrok_domain


@pytest.mark.parametrize(
    ("value", "host"),
    [
        ("https://x.ngrok-free.app/", "x.ngrok-free.app"),
        ("x.ngrok-free.app.", "x.ngrok-free.app"),
        ("  HTTP://X.Ngrok-Free.App:443/webhook/whatsapp?x=1 ", "x.ngrok-free.app"),
        ("https://x.ngrok-free.dev", "x.ngrok-free.dev"),
        ("hooks.bücher.example", "hooks.xn--bcher-kva.example"),
        ("", None),
    ],
)
def test_a_pasted_url_becomes_its_host(tmp_path: Path, value: str, host: str | None) -> None:
    assert _domain(tmp_path, value) == host


@pytest.mark.parametrize(
    "value",
    [
        "localhost",
        "ftp://x.example",
        "x y.example",
        "-x.example",
        "*.x.example",
        "user@x.example",
        "https://",
        "[::1]",
        "x.example:port",
    ],
)
def test_anything_else_is_a_settings_error_naming_the_value(tmp_path: Path, value: str) -> None:
    with pytest.raises(ConfigError) as raised:
        _domain(tmp_path, value)
    assert raised.value.setting == "NGROK_DOMAIN"
    assert repr(value.strip()) in raised.value.message
    assert "leave it empty for your account's dev domain" in raised.value.message
