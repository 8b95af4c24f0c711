"""Settings precedence, generated tokens, several accounts, and clear errors for bad values."""

from __future__ import annotations

from pathlib import Path

import pytest

from wa_devtunnel.settings import SETTINGS, ConfigError, Setting, Settings, load_settings


def test_defaults_generate_a_strong_token_kept_for_the_project(tmp_path: Path) -> None:
    settings = load_settings({}, environ={}, cwd=tmp_path)
    assert settings.port == 8765
    assert settings.path == "/webhook/whatsapp"
    assert settings.tunnel == "none"
    assert settings.verify_token_generated
    assert (settings.verify_token_source, settings.verify_token_new) == ("project-state", True)
    assert len(settings.verify_token) >= 24
    again = load_settings({}, environ={}, cwd=tmp_path)
    assert (again.verify_token, again.verify_token_source, again.verify_token_new) == (
        settings.verify_token,
        "project-state",
        False,
    )
    assert settings.recordings_dir == tmp_path / "recordings"


def test_env_file_then_process_environment_then_flags(tmp_path: Path) -> None:
    (tmp_path / ".env").write_text(
        "WHATSAPP_VERIFY_TOKEN=from-dotenv\nWA_DEVTUNNEL_PORT=9000\nWHATSAPP_APP_SECRET=s3cret\n"
    )
    from_file = load_settings({}, environ={}, cwd=tmp_path)
    assert (from_file.verify_token, from_file.port, from_file.app_secret) == (
        "from-dotenv",
        9000,
        "s3cret",
    )
    assert not from_file.verify_token_generated

    process_wins = load_settings({}, environ={"WA_DEVTUNNEL_PORT": "9100"}, cwd=tmp_path)
    assert process_wins.port == 9100

    flag_wins = load_settings({"port": "0"}, environ={"WA_DEVTUNNEL_PORT": "9100"}, cwd=tmp_path)
    assert flag_wins.port == 0


def test_explicit_env_file_must_exist(tmp_path: Path) -> None:
    with pytest.raises(ConfigError) as error:
        load_settings({"env_file": tmp_path / "missing.env"}, environ={}, cwd=tmp_path)
    assert error.value.setting == "--env-file"


def test_ngrok_is_the_default_tunnel_when_an_authtoken_is_set(tmp_path: Path) -> None:
    settings = load_settings({}, environ={"NGROK_AUTHTOKEN": "2abc"}, cwd=tmp_path)
    assert settings.tunnel == "ngrok"
    assert (
        load_settings({"tunnel": "none"}, environ={"NGROK_AUTHTOKEN": "2abc"}, cwd=tmp_path).tunnel
        == "none"
    )


@pytest.mark.parametrize(
    ("flags", "environ", "setting"),
    [
        ({}, {"WA_DEVTUNNEL_PORT": "eighty"}, "WA_DEVTUNNEL_PORT"),
        ({"port": "70000"}, {}, "--port"),
        ({}, {"WA_DEVTUNNEL_FORWARD_TO": "localhost:8000"}, "WA_DEVTUNNEL_FORWARD_TO"),
        ({"forward_to": "ftp://x"}, {}, "--forward-to"),
        ({"path": "webhook"}, {}, "--path"),
        ({}, {"WHATSAPP_VERIFY_TOKEN": "token "}, "WHATSAPP_VERIFY_TOKEN"),
        ({"tunnel": "carrier-pigeon"}, {}, "--tunnel"),
        ({"max_body_bytes": "-1"}, {}, "--max-body-bytes"),
        ({"require_signature": True}, {}, "--require-signature"),
        ({"accounts": "nope.toml"}, {}, "--accounts"),
    ],
)
def test_malformed_settings_name_the_setting(
    tmp_path: Path, flags: dict[str, object], environ: dict[str, str], setting: str
) -> None:
    with pytest.raises(ConfigError) as error:
        load_settings(flags, environ=environ, cwd=tmp_path)
    assert error.value.setting == setting
    assert setting in str(error.value)


def test_several_accounts_from_toml(tmp_path: Path) -> None:
    (tmp_path / "wa-devtunnel.toml").write_text(
        '[[account]]\nname = "shop"\nphone_number_id = "106540352242922"\nverify_token = "shop-token"\n'
        'app_secret = "shop-secret"\n\n'
        '[[account]]\nname = "support"\nphone_number_id = 123456789\nverify_token = "support-token"\n'
    )
    settings = load_settings({}, environ={"WHATSAPP_VERIFY_TOKEN": "main"}, cwd=tmp_path)
    assert [a.name for a in settings.accounts] == ["shop", "support"]
    assert settings.handshake_tokens() == [
        ("default", "main"),
        ("shop", "shop-token"),
        ("support", "support-token"),
    ]
    assert settings.signature_secrets() == [("shop", "shop-secret")]
    assert settings.accounts_by_phone_number_id() == {
        "106540352242922": "shop",
        "123456789": "support",
    }
    # Without a primary token, the first account's token is shown rather than a generated one.
    assert load_settings({}, environ={}, cwd=tmp_path).verify_token == "shop-token"


@pytest.mark.parametrize(
    ("content", "message"),
    [
        ('[[account]]\nname = "a"\nverify_token = "t"\n', "missing phone_number_id"),
        ("[[account]\n", "not valid TOML"),
        ('account = "x"\n', "[[account]] tables"),
        ('[[account]]\nname="a"\nphone_number_id="1"\nverify_token=" t"\n', "whitespace"),
        (
            '[[account]]\nname="a"\nphone_number_id="1"\nverify_token="t"\n'
            '[[account]]\nname="a"\nphone_number_id="2"\nverify_token="u"\n',
            "used twice",
        ),
    ],
)
def test_bad_accounts_file_is_a_clear_error(tmp_path: Path, content: str, message: str) -> None:
    path = tmp_path / "accounts.toml"
    path.write_text(content)
    with pytest.raises(ConfigError) as error:
        load_settings({"accounts": str(path)}, environ={}, cwd=tmp_path)
    assert message in str(error.value)


def test_wrong_signing_keys_include_tokens_for_diagnosis(tmp_path: Path) -> None:
    settings = load_settings(
        {}, environ={"WHATSAPP_VERIFY_TOKEN": "vt", "WHATSAPP_ACCESS_TOKEN": "EAAG"}, cwd=tmp_path
    )
    assert ("the verify token", "vt") in settings.wrong_signing_keys()
    assert ("the access token", "EAAG") in settings.wrong_signing_keys()


def _example_variables() -> set[str]:
    example = (Path(__file__).resolve().parents[2] / ".env.example").read_text(encoding="utf-8")
    return {line.split("=", 1)[0] for line in example.splitlines() if line and not line.startswith("#")}


def test_env_example_lists_every_variable_of_the_table_and_no_other() -> None:
    assert _example_variables() == {row.env for row in SETTINGS if row.env}


def test_every_row_names_a_settings_field_once() -> None:
    fields = [row.field for row in SETTINGS]
    assert len(fields) == len(set(fields))
    assert set(fields) <= set(Settings.__dataclass_fields__)


@pytest.mark.parametrize("row", [row for row in SETTINGS if row.env and row.flag], ids=lambda row: row.field)
def test_a_flag_beats_its_variable_which_beats_the_default(tmp_path: Path, row: Setting) -> None:
    samples = {
        "port": ("9001", "9002"),
        "forward_to": ("http://flag.test/h", "http://env.test/h"),
        "recordings_dir": ("flag-dir", "env-dir"),
        "max_body_bytes": ("1001", "1002"),
        "verify_token": ("flag-token", "env-token"),
        "app_secret": ("flag-secret", "env-secret"),
        "forward_timeout_s": ("3", "4"),
    }
    if row.field == "accounts_file":
        for name in ("flag", "env"):
            (tmp_path / f"{name}.toml").write_text("")
        samples["accounts_file"] = (str(tmp_path / "flag.toml"), str(tmp_path / "env.toml"))
    flag_value, env_value = samples[row.field]
    key = row.flag_key or ""
    from_flag = load_settings({key: flag_value}, environ={row.env or "": env_value}, cwd=tmp_path)
    from_env = load_settings({}, environ={row.env or "": env_value}, cwd=tmp_path)
    default = load_settings({}, environ={}, cwd=tmp_path)
    assert getattr(from_flag, row.field) == row.check(flag_value, "flag")
    assert getattr(from_env, row.field) == row.check(env_value, "env")
    assert getattr(default, row.field) != getattr(from_env, row.field)


@pytest.mark.parametrize("row", [row for row in SETTINGS if row.env], ids=lambda row: row.env or "")
def test_an_empty_variable_is_unset(tmp_path: Path, row: Setting) -> None:
    """`NAME=` (as in .env.example) means the default, for every variable alike."""
    blank = load_settings({}, environ={row.env or "": ""}, cwd=tmp_path)
    default = load_settings({}, environ={}, cwd=tmp_path)
    if row.field == "verify_token":  # unset: the project's kept token
        assert blank.verify_token_generated and blank.verify_token_source == "project-state"
    else:
        assert getattr(blank, row.field) == getattr(default, row.field)


@pytest.mark.parametrize(
    ("environ", "message"),
    [
        ({"WA_DEVTUNNEL_PORT": "70000"}, "WA_DEVTUNNEL_PORT: 70000 is out of range (0-65535; 0 picks a free port)"),
        ({"WA_DEVTUNNEL_MAX_CONNECTIONS": "0"}, "WA_DEVTUNNEL_MAX_CONNECTIONS: 0 must be greater than 0"),
        ({"WA_DEVTUNNEL_IDLE_TIMEOUT": "soon"}, "WA_DEVTUNNEL_IDLE_TIMEOUT: 'soon' is not a number of seconds"),
        ({"WA_DEVTUNNEL_TUNNEL_TIMEOUT": "700"}, "WA_DEVTUNNEL_TUNNEL_TIMEOUT: 700 must be between 0 and 600 seconds"),
        ({"WA_DEVTUNNEL_QUIET_AFTER_REGISTER": "-1"}, "-1 must be between 0 and 86400 seconds"),
        ({"META_GRAPH_URL": "graph.facebook.com"}, "META_GRAPH_URL: 'graph.facebook.com' is not an http:// or https://"),
    ],
)
def test_one_wording_per_kind_of_value(tmp_path: Path, environ: dict[str, str], message: str) -> None:
    with pytest.raises(ConfigError) as error:
        load_settings({}, environ=environ, cwd=tmp_path)
    assert message in str(error.value)


def test_graph_url_loses_its_trailing_slash(tmp_path: Path) -> None:
    settings = load_settings({}, environ={"META_GRAPH_URL": "http://127.0.0.1:9/"}, cwd=tmp_path)
    assert settings.graph_url == "http://127.0.0.1:9"


@pytest.mark.parametrize("name", ["WA_DEVTUNNEL_BODY_TIMEOUT", "WA_DEVTUNNEL_MAX_CONNECTIONS", "WA_DEVTUNNEL_PORT"])
def test_a_blank_number_is_unset(tmp_path: Path, name: str) -> None:
    """`WA_DEVTUNNEL_BODY_TIMEOUT=" "` in .env means the default, as an empty value does."""
    settings = load_settings(environ={name: "  "}, cwd=tmp_path)
    default = load_settings(environ={}, cwd=tmp_path)
    assert (settings.body_timeout_s, settings.max_connections, settings.port) == (
        default.body_timeout_s,
        default.max_connections,
        default.port,
    )


@pytest.mark.parametrize(
    ("flags", "shown"),
    [({"port": "99999999999"}, "99999999999 is out of range"), ({"forward_timeout": "1e9"}, "1000000000 ")],
)
def test_big_numbers_are_shown_as_typed_not_in_scientific_notation(
    tmp_path: Path, flags: dict[str, str], shown: str
) -> None:
    with pytest.raises(ConfigError) as error:
        load_settings(flags, environ={}, cwd=tmp_path)
    assert shown in str(error.value) and "e+" not in str(error.value)


# --- where the verify token came from, and .env lines python-dotenv would skip ---------------------------


def test_the_verify_token_source_is_named(tmp_path: Path) -> None:
    (tmp_path / ".env").write_text("WHATSAPP_VERIFY_TOKEN=wa-from-dotenv-0123456789\n")
    token = "wa-0123456789abcdef"
    cases = [
        ({"verify_token": token}, {"WHATSAPP_VERIFY_TOKEN": "wa-from-env"}, "flag"),
        ({}, {"WHATSAPP_VERIFY_TOKEN": token}, "environment"),
        ({}, {}, "env-file"),
    ]
    for flags, environ, source in cases:
        settings = load_settings(flags, environ=environ, cwd=tmp_path)
        assert (settings.verify_token_source, settings.verify_token_new, settings.state_path) == (source, False, None)
        assert not settings.verify_token_generated
    accounts = tmp_path / "wa-devtunnel.toml"
    accounts.write_text('[[account]]\nname = "shop"\nphone_number_id = "1"\nverify_token = "shop-token"\n')
    (tmp_path / ".env").unlink()
    assert load_settings({}, environ={}, cwd=tmp_path).verify_token_source == "accounts"


def test_an_empty_variable_in_the_environment_hides_the_env_file_token(tmp_path: Path) -> None:
    """As with every setting, a variable set (even empty) wins over .env: the project's kept token is used."""
    (tmp_path / ".env").write_text("WHATSAPP_VERIFY_TOKEN=wa-from-dotenv-0123456789\n")
    settings = load_settings({}, environ={"WHATSAPP_VERIFY_TOKEN": ""}, cwd=tmp_path)
    assert settings.verify_token_source == "project-state"


@pytest.mark.parametrize(
    ("line", "message"),
    [
        ("BROKEN LINE", "the line has no '=' (write NAME=value); python-dotenv skips the whole line, so nothing"),
        ('WHATSAPP_APP_SECRET="0123abcd', "WHATSAPP_APP_SECRET has a quoted value that is not closed"),
        ("WA_DEVTUNNEL_PORT='9000' # ok\nexport WA_DEVTUNNEL_PORT 9001", "WA_DEVTUNNEL_PORT has no '='"),
        ("MY APP=1", "the line has no single-word name before '='"),
        ("=value", "the line has no single-word name before '='"),
    ],
)
def test_a_line_dotenv_would_skip_stops_naming_file_and_line(tmp_path: Path, line: str, message: str) -> None:
    env = tmp_path / ".env"
    env.write_text(f"# settings\nA=1\n{line}\n")
    with pytest.raises(ConfigError) as error:
        load_settings({}, environ={}, cwd=tmp_path)
    number = 3 + line.count("\n")
    assert error.value.setting == f"{env}:{number}"
    assert str(error.value).startswith(f"{env}:{number}: {message}")


def test_a_skipped_line_never_shows_its_value(tmp_path: Path) -> None:
    secret = "EAAGm0PX4ZCpsBAabc123secret"
    (tmp_path / ".env").write_text(f"{secret} pasted\nWHATSAPP_ACCESS_TOKEN = '{secret}\n")
    with pytest.raises(ConfigError) as error:
        load_settings({}, environ={}, cwd=tmp_path)
    assert secret not in str(error.value)
    assert str(error.value).endswith("(also line 2)")


def test_doctor_may_read_past_skipped_lines(tmp_path: Path) -> None:
    (tmp_path / ".env").write_text("BROKEN LINE\nWA_DEVTUNNEL_PORT=9000\n")
    assert load_settings({}, environ={}, cwd=tmp_path, skip_unparsed_env_lines=True).port == 9000
