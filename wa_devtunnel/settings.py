"""Settings: process environment, then `.env`, then command-line flags (flags win)."""

from __future__ import annotations

import os
import secrets
import tomllib
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

from dotenv import dotenv_values

DEFAULT_PORT = 8765
DEFAULT_HOST = "127.0.0.1"
DEFAULT_PATH = "/webhook/whatsapp"
DEFAULT_RECORDINGS_DIR = "recordings"
DEFAULT_ACCOUNTS_FILE = "wa-devtunnel.toml"
DEFAULT_GRAPH_URL = "https://graph.facebook.com"
DEFAULT_GRAPH_VERSION = "v23.0"
REGISTER_SCOPES = ("phone", "waba", "app")
DEFAULT_QUIET_AFTER_REGISTER_S = 120.0
# Meta documents payloads of up to 3 MB; leave headroom so a real delivery is never refused.
DEFAULT_MAX_BODY_BYTES = 3 * 1024 * 1024 + 512 * 1024
PRIMARY_ACCOUNT = "default"
# Limits for a public URL: generous for Meta's real traffic, tight enough that strangers can't starve us.
DEFAULT_MAX_SESSION_BYTES = 512 * 1024 * 1024
DEFAULT_MAX_CONNECTIONS = 256
DEFAULT_HEADER_TIMEOUT_S = 10.0
DEFAULT_BODY_TIMEOUT_S = 30.0
DEFAULT_IDLE_TIMEOUT_S = 15.0
DEFAULT_ACK_FIRST_BACKLOG_BYTES = 64 * 1024 * 1024
DEFAULT_BODY_MEMORY_BYTES = 128 * 1024 * 1024


class ConfigError(Exception):
    """A setting is malformed; the CLI prints it and exits 2 instead of a traceback."""

    def __init__(self, setting: str, message: str) -> None:
        super().__init__(f"{setting}: {message}")
        self.setting = setting
        self.message = message


@dataclass(frozen=True, slots=True)
class Account:
    """One WhatsApp number the developer receives webhooks for."""

    name: str
    phone_number_id: str
    verify_token: str
    app_secret: str | None = None


@dataclass(frozen=True, slots=True)
class Settings:
    """Everything the engine and front ends need, already validated."""

    host: str = DEFAULT_HOST
    port: int = DEFAULT_PORT
    path: str = DEFAULT_PATH
    verify_token: str = ""
    verify_token_generated: bool = False
    app_secret: str | None = None
    accounts: tuple[Account, ...] = ()
    accounts_file: Path | None = None
    tunnel: str = "none"
    ngrok_authtoken: str | None = None
    ngrok_domain: str | None = None
    ngrok_path: str | None = None
    tunnel_timeout_s: float = 20.0
    forward_to: str | None = None
    forward_timeout_s: float = 10.0
    ack_first: bool = False
    recordings_dir: Path = Path(DEFAULT_RECORDINGS_DIR)
    record: bool = True
    max_body_bytes: int = DEFAULT_MAX_BODY_BYTES
    require_signature: bool = False
    env_file: Path | None = None
    app_id: str | None = None
    access_token: str | None = None
    waba_id: str | None = None
    phone_number_id: str | None = None
    graph_url: str = DEFAULT_GRAPH_URL
    graph_version: str = DEFAULT_GRAPH_VERSION
    register: str | None = None
    quiet_after_register_s: float = DEFAULT_QUIET_AFTER_REGISTER_S
    restore_verify_token: str | None = None
    max_session_bytes: int = DEFAULT_MAX_SESSION_BYTES
    max_connections: int = DEFAULT_MAX_CONNECTIONS
    header_timeout_s: float = DEFAULT_HEADER_TIMEOUT_S
    body_timeout_s: float = DEFAULT_BODY_TIMEOUT_S
    idle_timeout_s: float = DEFAULT_IDLE_TIMEOUT_S
    ack_first_backlog_bytes: int = DEFAULT_ACK_FIRST_BACKLOG_BYTES
    body_memory_bytes: int = DEFAULT_BODY_MEMORY_BYTES

    def handshake_tokens(self) -> list[tuple[str, str]]:
        """Every (account, token) pair the handshake accepts."""
        pairs = [(PRIMARY_ACCOUNT, self.verify_token)]
        pairs += [(a.name, a.verify_token) for a in self.accounts if a.verify_token]
        return pairs

    def signature_secrets(self) -> list[tuple[str, str]]:
        """Every (label, app secret) a signature may be made with."""
        pairs = [(PRIMARY_ACCOUNT, self.app_secret)] if self.app_secret else []
        pairs += [(a.name, a.app_secret) for a in self.accounts if a.app_secret]
        return pairs

    def wrong_signing_keys(self) -> list[tuple[str, str]]:
        """Keys developers mistakenly sign with, to diagnose a mismatch."""
        keys = [("the verify token", token) for _, token in self.handshake_tokens()]
        if self.access_token:
            keys.append(("the access token", self.access_token))
        return keys

    def accounts_by_phone_number_id(self) -> dict[str, str]:
        """Which account label each configured phone_number_id belongs to."""
        mapping = {a.phone_number_id: a.name for a in self.accounts}
        if self.phone_number_id:
            mapping.setdefault(self.phone_number_id, PRIMARY_ACCOUNT)
        return mapping

    @property
    def local_callback_url(self) -> str:
        """The URL of the receiver on this machine (before any tunnel)."""
        host = "127.0.0.1" if self.host in ("0.0.0.0", "") else self.host
        if ":" in host:
            host = f"[{host}]"
        return f"http://{host}:{self.port}{self.path}"


def mask(secret: str) -> str:
    """Enough to recognise a secret, never enough to use it (doctor, token, meta)."""
    if len(secret) < 12:
        return f"…{len(secret)} chars"
    return f"{secret[:4]}…{secret[-2:]}"


def generate_verify_token() -> str:
    """A strong, URL- and dashboard-safe token for one session."""
    return "wa-" + secrets.token_urlsafe(24).replace("-", "x").replace("_", "y")


def read_environment(env_file: Path | None, environ: Mapping[str, str] | None = None) -> dict[str, str]:
    """Merge `.env` under the process environment (a variable already set wins, as with dotenv)."""
    merged: dict[str, str] = {}
    if env_file is not None and env_file.is_file():
        try:
            values = dotenv_values(env_file)
        except (OSError, UnicodeDecodeError) as exc:
            raise ConfigError("--env-file", f"cannot read {env_file}: {exc}") from exc
        merged.update({k: v for k, v in values.items() if v is not None})
    merged.update(os.environ if environ is None else environ)
    return merged


def _port(value: Any, setting: str) -> int:
    try:
        port = int(str(value).strip())
    except ValueError:
        raise ConfigError(setting, f"{value!r} is not a port number (0-65535)") from None
    if not 0 <= port <= 65535:
        raise ConfigError(setting, f"{port} is out of range (0-65535; 0 picks a free port)")
    return port


def _positive_int(value: Any, setting: str) -> int:
    try:
        number = int(str(value).strip())
    except ValueError:
        raise ConfigError(setting, f"{value!r} is not a whole number") from None
    if number <= 0:
        raise ConfigError(setting, f"{number} must be greater than 0")
    return number


def _seconds(value: Any, setting: str) -> float:
    try:
        seconds = float(str(value).strip())
    except ValueError:
        raise ConfigError(setting, f"{value!r} is not a number of seconds") from None
    if not 0 < seconds <= 600:
        raise ConfigError(setting, f"{seconds} must be between 0 and 600 seconds")
    return seconds


def _limit(env: Mapping[str, str], name: str, default: int) -> int:
    """A resource limit from the environment (a positive whole number), or its default."""
    raw = env.get(name, "").strip()
    return _positive_int(raw, name) if raw else default


def _limit_seconds(env: Mapping[str, str], name: str, default: float) -> float:
    raw = env.get(name, "").strip()
    return _seconds(raw, name) if raw else default


def http_url(value: str, setting: str) -> str:
    parts = urlsplit(value.strip())
    if parts.scheme not in ("http", "https") or not parts.netloc:
        raise ConfigError(setting, f"{value!r} is not an http:// or https:// URL")
    return value.strip()


def _webhook_path(value: str, setting: str) -> str:
    path = value.strip()
    if not path.startswith("/") or "?" in path or "#" in path or " " in path:
        raise ConfigError(setting, f"{value!r} must be a URL path starting with '/', e.g. {DEFAULT_PATH}")
    return path


def _token(value: str, setting: str) -> str:
    if value != value.strip():
        raise ConfigError(
            setting,
            "has leading/trailing whitespace; Meta would send the token without it, "
            "so the handshake would fail. Remove the spaces (check quotes in .env).",
        )
    if not value:
        raise ConfigError(setting, "is empty")
    return value


def _quiet_seconds(value: str) -> float:
    """0 turns the "no events since registering" hint off."""
    try:
        seconds = float(value.strip())
    except ValueError:
        raise ConfigError("WA_DEVTUNNEL_QUIET_AFTER_REGISTER", f"{value!r} is not a number of seconds") from None
    if not 0 <= seconds <= 86400:
        raise ConfigError("WA_DEVTUNNEL_QUIET_AFTER_REGISTER", f"{seconds:g} must be between 0 and 86400 seconds")
    return seconds


def missing_for_scope(settings: Settings, scope: str) -> list[str]:
    """The settings a registration at `scope` needs and does not have."""
    token = ("WHATSAPP_ACCESS_TOKEN", settings.access_token)
    needed = {
        "phone": [token, ("WHATSAPP_PHONE_NUMBER_ID", settings.phone_number_id)],
        "waba": [token, ("WHATSAPP_BUSINESS_ACCOUNT_ID", settings.waba_id)],
        "app": [("META_APP_ID", settings.app_id), ("WHATSAPP_APP_SECRET", settings.app_secret)],
    }[scope]
    return [name for name, value in needed if not value]


def _optional(env: Mapping[str, str], name: str) -> str | None:
    value = env.get(name, "").strip()
    return value or None


def load_accounts(path: Path, setting: str = "--accounts") -> tuple[Account, ...]:
    """Read several WhatsApp accounts from a TOML file with [[account]] tables."""
    try:
        data = tomllib.loads(path.read_text(encoding="utf-8"))
    except OSError as exc:
        raise ConfigError(setting, f"cannot read {path}: {exc.strerror or exc}") from exc
    except (tomllib.TOMLDecodeError, UnicodeDecodeError) as exc:
        raise ConfigError(setting, f"{path} is not valid TOML: {exc}") from exc
    tables = data.get("account", [])
    if not isinstance(tables, list):
        raise ConfigError(setting, f"{path}: use [[account]] tables, one per WhatsApp number")
    accounts: list[Account] = []
    for index, table in enumerate(tables, start=1):
        where = f"{path}: account #{index}"
        if not isinstance(table, dict):
            raise ConfigError(setting, f"{where} is not a table")
        values: dict[str, str] = {}
        for key in ("name", "phone_number_id", "verify_token", "app_secret"):
            raw = table.get(key)
            if raw is None:
                continue
            if not isinstance(raw, str | int) or isinstance(raw, bool):
                raise ConfigError(setting, f"{where}: {key} must be a string")
            values[key] = str(raw)
        for key in ("name", "phone_number_id", "verify_token"):
            if not values.get(key, "").strip():
                raise ConfigError(setting, f"{where} is missing {key}")
        token = _token(values["verify_token"], f"{where} verify_token")
        if any(a.name == values["name"] for a in accounts) or values["name"] == PRIMARY_ACCOUNT:
            raise ConfigError(setting, f"{where}: name {values['name']!r} is used twice or reserved")
        accounts.append(
            Account(
                name=values["name"].strip(),
                phone_number_id=values["phone_number_id"].strip(),
                verify_token=token,
                app_secret=values.get("app_secret") or None,
            )
        )
    return tuple(accounts)


def load_settings(
    flags: Mapping[str, Any] | None = None,
    *,
    environ: Mapping[str, str] | None = None,
    cwd: Path | None = None,
) -> Settings:
    """Build validated Settings; raise ConfigError naming the bad setting."""
    flags = {k: v for k, v in (flags or {}).items() if v is not None}
    base = cwd or Path.cwd()
    env_file = Path(flags.get("env_file") or base / ".env")
    if "env_file" in flags and not env_file.is_file():
        raise ConfigError("--env-file", f"{env_file} does not exist")
    env = read_environment(env_file, environ)

    port = (
        _port(flags["port"], "--port")
        if "port" in flags
        else (_port(env["WA_DEVTUNNEL_PORT"], "WA_DEVTUNNEL_PORT") if env.get("WA_DEVTUNNEL_PORT") else DEFAULT_PORT)
    )
    path = _webhook_path(flags.get("path", DEFAULT_PATH), "--path")
    forward_raw = flags.get("forward_to") or env.get("WA_DEVTUNNEL_FORWARD_TO", "").strip() or None
    forward_setting = "--forward-to" if flags.get("forward_to") else "WA_DEVTUNNEL_FORWARD_TO"
    forward_to = http_url(forward_raw, forward_setting) if forward_raw else None
    recordings_dir = Path(
        flags.get("recordings_dir")
        or env.get("WA_DEVTUNNEL_RECORDINGS_DIR", "").strip()
        or base / DEFAULT_RECORDINGS_DIR
    )
    max_body = (
        _positive_int(flags["max_body_bytes"], "--max-body-bytes")
        if "max_body_bytes" in flags
        else _positive_int(env["WA_DEVTUNNEL_MAX_BODY_BYTES"], "WA_DEVTUNNEL_MAX_BODY_BYTES")
        if env.get("WA_DEVTUNNEL_MAX_BODY_BYTES")
        else DEFAULT_MAX_BODY_BYTES
    )

    accounts_setting = "--accounts" if flags.get("accounts") else "WA_DEVTUNNEL_ACCOUNTS"
    accounts_raw = flags.get("accounts") or env.get("WA_DEVTUNNEL_ACCOUNTS", "").strip()
    accounts_file: Path | None = None
    if accounts_raw:
        accounts_file = Path(accounts_raw)
        if not accounts_file.is_file():
            raise ConfigError(accounts_setting, f"{accounts_file} does not exist")
    elif (base / DEFAULT_ACCOUNTS_FILE).is_file():
        accounts_file = base / DEFAULT_ACCOUNTS_FILE
    accounts = load_accounts(accounts_file, accounts_setting) if accounts_file else ()

    token_raw = flags.get("verify_token") or env.get("WHATSAPP_VERIFY_TOKEN")
    token_setting = "--verify-token" if flags.get("verify_token") else "WHATSAPP_VERIFY_TOKEN"
    generated = False
    if token_raw:
        verify_token = _token(token_raw, token_setting)
    elif accounts:
        verify_token = accounts[0].verify_token
    else:
        verify_token, generated = generate_verify_token(), True

    authtoken = _optional(env, "NGROK_AUTHTOKEN")
    tunnel = flags.get("tunnel") or ("ngrok" if authtoken else "none")
    if tunnel not in ("ngrok", "none"):
        raise ConfigError("--tunnel", f"{tunnel!r} is not a tunnel provider (ngrok or none)")

    app_secret = flags.get("app_secret") or _optional(env, "WHATSAPP_APP_SECRET")
    require_signature = bool(flags.get("require_signature"))
    settings = Settings(
        host=str(flags.get("host", DEFAULT_HOST)),
        port=port,
        path=path,
        verify_token=verify_token,
        verify_token_generated=generated,
        app_secret=app_secret,
        accounts=accounts,
        accounts_file=accounts_file,
        tunnel=tunnel,
        ngrok_authtoken=authtoken,
        ngrok_domain=_optional(env, "NGROK_DOMAIN"),
        ngrok_path=_optional(env, "PYNGROK_NGROK_PATH"),
        tunnel_timeout_s=_seconds(env.get("WA_DEVTUNNEL_TUNNEL_TIMEOUT", "20"), "WA_DEVTUNNEL_TUNNEL_TIMEOUT"),
        forward_to=forward_to,
        forward_timeout_s=_seconds(flags["forward_timeout"], "--forward-timeout")
        if "forward_timeout" in flags
        else _seconds(env.get("WA_DEVTUNNEL_FORWARD_TIMEOUT", "10"), "WA_DEVTUNNEL_FORWARD_TIMEOUT"),
        ack_first=bool(flags.get("ack_first")),
        recordings_dir=recordings_dir,
        record=not flags.get("no_record", False),
        max_body_bytes=max_body,
        require_signature=require_signature,
        env_file=env_file if env_file.is_file() else None,
        app_id=_optional(env, "META_APP_ID"),
        access_token=_optional(env, "WHATSAPP_ACCESS_TOKEN"),
        waba_id=_optional(env, "WHATSAPP_BUSINESS_ACCOUNT_ID"),
        phone_number_id=_optional(env, "WHATSAPP_PHONE_NUMBER_ID"),
        graph_url=(_optional(env, "META_GRAPH_URL") or DEFAULT_GRAPH_URL).rstrip("/"),
        graph_version=_optional(env, "META_GRAPH_VERSION") or DEFAULT_GRAPH_VERSION,
        register=flags.get("register") or None,
        quiet_after_register_s=_quiet_seconds(
            env.get("WA_DEVTUNNEL_QUIET_AFTER_REGISTER", "") or str(DEFAULT_QUIET_AFTER_REGISTER_S)
        ),
        restore_verify_token=_optional(env, "WA_DEVTUNNEL_RESTORE_VERIFY_TOKEN"),
        max_session_bytes=_limit(env, "WA_DEVTUNNEL_MAX_SESSION_BYTES", DEFAULT_MAX_SESSION_BYTES),
        max_connections=_limit(env, "WA_DEVTUNNEL_MAX_CONNECTIONS", DEFAULT_MAX_CONNECTIONS),
        header_timeout_s=_limit_seconds(env, "WA_DEVTUNNEL_HEADER_TIMEOUT", DEFAULT_HEADER_TIMEOUT_S),
        body_timeout_s=_limit_seconds(env, "WA_DEVTUNNEL_BODY_TIMEOUT", DEFAULT_BODY_TIMEOUT_S),
        idle_timeout_s=_limit_seconds(env, "WA_DEVTUNNEL_IDLE_TIMEOUT", DEFAULT_IDLE_TIMEOUT_S),
        ack_first_backlog_bytes=_limit(env, "WA_DEVTUNNEL_ACK_FIRST_BACKLOG_BYTES", DEFAULT_ACK_FIRST_BACKLOG_BYTES),
        body_memory_bytes=_limit(env, "WA_DEVTUNNEL_BODY_MEMORY_BYTES", DEFAULT_BODY_MEMORY_BYTES),
    )
    if settings.register is not None:
        if settings.register not in REGISTER_SCOPES:
            raise ConfigError("--register", f"{settings.register!r} is not a scope (phone, waba or app)")
        missing = missing_for_scope(settings, settings.register)
        if missing:
            raise ConfigError("--register", f"{settings.register} needs {' and '.join(missing)} (see .env.example)")
    if require_signature and not settings.signature_secrets():
        raise ConfigError(
            "--require-signature",
            "needs an App Secret: set WHATSAPP_APP_SECRET (App Dashboard > App settings > Basic)",
        )
    if settings.graph_url != DEFAULT_GRAPH_URL:
        http_url(settings.graph_url, "META_GRAPH_URL")
    return settings
