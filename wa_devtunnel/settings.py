"""Settings: process environment, then `.env`, then command-line flags (flags win), from one table."""

from __future__ import annotations

import io
import logging
import os
import re
import secrets
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

from wa_devtunnel.project_state import load_or_create, state_directory, state_file

DEFAULT_PORT = 8765
DEFAULT_HOST = "127.0.0.1"
DEFAULT_PATH = "/webhook/whatsapp"
DEFAULT_RECORDINGS_DIR = "recordings"
DEFAULT_ACCOUNTS_FILE = "wa-devtunnel.toml"
DEFAULT_GRAPH_URL = "https://graph.facebook.com"
DEFAULT_GRAPH_VERSION = "v23.0"
REGISTER_SCOPES = ("phone", "waba", "app")
TUNNEL_PROVIDERS = ("ngrok", "cloudflared", "none")
DEFAULT_TUNNEL_TIMEOUT_S = 20.0
DEFAULT_FORWARD_TIMEOUT_S = 10.0
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
VERIFY_TOKEN_VARIABLE = "WHATSAPP_VERIFY_TOKEN"
# Where the verify token came from (Settings.verify_token_source), the first that has one wins:
# --verify-token, the process environment, .env, the accounts file, the project state file; "generated"
# when none has one and the state file cannot keep it (new this run, temporary).
VERIFY_TOKEN_SOURCES = ("flag", "environment", "env-file", "accounts", "project-state", "generated")


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
    verify_token_generated: bool = False  # made up by wa-devtunnel: "project-state" or "generated"
    verify_token_source: str = "flag"  # one of VERIFY_TOKEN_SOURCES
    verify_token_new: bool = False  # generated on this run (the first in this project, or temporary)
    state_path: Path | None = None  # the project state file keeping the token (None: not kept there)
    state_warning: str = ""  # a problem with the state file, in words, for the start-up text
    app_secret: str | None = None
    accounts: tuple[Account, ...] = ()
    accounts_file: Path | None = None
    tunnel: str = "none"
    ngrok_authtoken: str | None = None
    ngrok_domain: str | None = None
    ngrok_path: str | None = None
    cloudflared_path: str | None = None
    tunnel_timeout_s: float = DEFAULT_TUNNEL_TIMEOUT_S
    forward_to: str | None = None
    forward_timeout_s: float = DEFAULT_FORWARD_TIMEOUT_S
    ack_first: bool = False
    recordings_dir: Path = Path(DEFAULT_RECORDINGS_DIR)
    record: bool = True
    max_body_bytes: int = DEFAULT_MAX_BODY_BYTES
    require_signature: bool = False
    env_file: Path | None = None  # the .env read (None: there is none)
    env_file_path: Path | None = None  # the .env read, or where it would be: what the offer to keep a token edits
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
    """A strong, URL- and dashboard-safe token (kept in the project state file by load_settings)."""
    return "wa-" + secrets.token_urlsafe(24).replace("-", "x").replace("_", "y")


def read_environment(env_file: Path | None, environ: Mapping[str, str] | None = None) -> dict[str, str]:
    """Merge `.env` under the process environment (a variable already set wins, as with dotenv)."""
    merged: dict[str, str] = {}
    if env_file is not None and env_file.is_file():
        from dotenv import dotenv_values  # only when there is a .env: start-up of every command pays nothing

        try:
            values = _quietly(lambda: dotenv_values(env_file))
        except (OSError, UnicodeDecodeError) as exc:
            raise ConfigError("--env-file", f"cannot read {env_file}: {exc}") from exc
        merged.update({k: v for k, v in values.items() if v is not None})
    merged.update(os.environ if environ is None else environ)
    return merged


def unparsed_env_lines(env_file: Path) -> list[tuple[int, str]]:
    """Lines python-dotenv skips with only a log warning: (line number, what is wrong), never a value."""
    from dotenv.parser import parse_stream  # imported when a .env is read (see read_environment)

    text = env_file.read_bytes().decode("utf-8")
    return [
        (binding.original.line, _what_is_wrong(binding.original.string))
        for binding in parse_stream(io.StringIO(text))
        if binding.error
    ]


def _what_is_wrong(statement: str) -> str:
    """Why dotenv cannot read a line, naming the variable only when it is one of ours (a value may be a secret)."""
    line = (statement.splitlines() or [""])[0]
    before, equal, after = line.partition("=")
    head = re.sub(r"^\s*(?:export\s+)?", "", before).strip()
    name = head.split()[0] if head else ""
    known = name in _VARIABLE_NAMES
    subject = name if known else "the line"
    if not equal:
        problem = "has no '=' (write NAME=value)"
    elif not head or name != head:
        problem = "has no single-word name before '='"
    elif after.lstrip()[:1] in ("'", '"'):
        problem = "has a quoted value that is not closed, or text after its closing quote"
    else:
        problem = "is not NAME=value"
    skipped = f"so {name} is not set" if known else "so nothing on it is set"
    return f"{subject} {problem}; python-dotenv skips the whole line, {skipped}"


def _quietly(read: Callable[[], dict[str, str | None]]) -> dict[str, str | None]:
    """python-dotenv logs skipped lines without the file name; load_settings names file and line instead."""
    logger = logging.getLogger("dotenv.main")
    disabled, logger.disabled = logger.disabled, True
    try:
        return read()
    finally:
        logger.disabled = disabled


# --- the validator family: (raw value, the flag or variable it came from) -> value, None when blank ---

Check = Callable[[Any, str], Any]


def _number(convert: type[int] | type[float], noun: str, accepts: Callable[[float], bool], limits: str) -> Check:
    """Ports, counts and durations differ only in their type, range and the words of their errors."""

    def check(value: Any, setting: str) -> int | float | None:
        text = str(value).strip()
        if not text:  # blank, like unset: the default applies
            return None
        try:
            number = convert(text)
        except ValueError:
            raise ConfigError(setting, f"{value!r} is not {noun}") from None
        if not accepts(number):
            shown = str(int(number)) if float(number).is_integer() else repr(number)  # 700, 99999999999, 0.5
            raise ConfigError(setting, f"{shown} {limits}")
        return number

    return check


port = _number(
    int, "a port number (0-65535)", lambda n: 0 <= n <= 65535, "is out of range (0-65535; 0 picks a free port)"
)
count = _number(int, "a whole number", lambda n: n > 0, "must be greater than 0")
seconds = _number(float, "a number of seconds", lambda n: 0 < n <= 600, "must be between 0 and 600 seconds")
hint_delay = _number(float, "a number of seconds", lambda n: 0 <= n <= 86400, "must be between 0 and 86400 seconds")


def http_url(value: str, setting: str) -> str:
    """An absolute http(s) URL (also `replay --to`)."""
    parts = urlsplit(value.strip())
    if parts.scheme not in ("http", "https") or not parts.netloc:
        raise ConfigError(setting, f"{value!r} is not an http:// or https:// URL")
    return value.strip()


def url(value: Any, setting: str) -> str | None:
    return http_url(str(value), setting) if str(value).strip() else None


def base_url(value: Any, setting: str) -> str | None:
    """A URL that paths are appended to: no trailing slash."""
    checked = url(value, setting)
    return checked.rstrip("/") if checked else None


def webhook_path(value: Any, setting: str) -> str:
    path = str(value).strip()
    if not path.startswith("/") or "?" in path or "#" in path or " " in path:
        raise ConfigError(setting, f"{value!r} must be a URL path starting with '/', e.g. {DEFAULT_PATH}")
    return path


def token(value: Any, setting: str) -> str:
    """Never stripped: Meta sends the token without the spaces, so a padded one must be an error."""
    value = str(value)
    if value != value.strip():
        raise ConfigError(
            setting,
            "has leading/trailing whitespace; Meta would send the token without it, "
            "so the handshake would fail. Remove the spaces (check quotes in .env).",
        )
    if not value:
        raise ConfigError(setting, "is empty")
    return value


def text(value: Any, setting: str) -> str | None:
    return str(value).strip() or None


_DNS_LABEL = re.compile(r"(?!-)[a-z0-9-]{1,63}(?<!-)")


def domain_name(value: Any, setting: str) -> str | None:
    """A host name as ngrok wants it: `https://x.ngrok-free.app:443/` becomes `x.ngrok-free.app`."""
    raw = str(value).strip()
    if not raw:
        return None
    problem = (
        f"{raw!r} is not a domain name (e.g. your-name.ngrok.app, a paid domain; "
        "leave it empty for your account's dev domain)"
    )
    scheme, sep, rest = raw.partition("://")
    if sep and scheme.lower() not in ("http", "https"):
        raise ConfigError(setting, problem)
    host = (rest if sep else raw).split("/", 1)[0].split("?", 1)[0].split("#", 1)[0]
    if "@" in host or host.startswith("["):
        raise ConfigError(setting, problem)
    name, colon, port_text = host.rpartition(":")
    if colon and port_text.isdigit():
        host = name
    try:
        host = host.rstrip(".").lower().encode("idna").decode("ascii")
    except UnicodeError:
        raise ConfigError(setting, problem) from None
    labels = host.split(".")
    if len(host) > 253 or len(labels) < 2 or not all(_DNS_LABEL.fullmatch(label) for label in labels):
        raise ConfigError(setting, problem)
    return host


def as_given(value: Any, setting: str) -> str:
    return str(value)


def one_of(noun: str, choices: tuple[str, ...]) -> Check:
    """One of a few words; the error lists them ("phone, waba or app")."""
    listed = f"{', '.join(choices[:-1])} or {choices[-1]}"

    def check(value: Any, setting: str) -> str:
        if value not in choices:
            raise ConfigError(setting, f"{value!r} is not a {noun} ({listed})")
        return str(value)

    return check


def path(value: Any, setting: str) -> Path | None:
    return Path(str(value).strip()) if str(value).strip() else None


def existing_file(value: Any, setting: str) -> Path | None:
    file = path(value, setting)
    if file is not None and not file.is_file():
        raise ConfigError(setting, f"{file} does not exist")
    return file


def switch(value: Any, setting: str) -> bool:
    return bool(value)


def switch_off(value: Any, setting: str) -> bool:
    return not value


def _in_working_dir(name: str, *, if_present: bool = False) -> Callable[[Path], Path | None]:
    """A default relative to the working directory (`load_settings(cwd=...)`), not to the process's."""
    return lambda cwd: None if if_present and not (cwd / name).is_file() else cwd / name


@dataclass(frozen=True, slots=True)
class Setting:
    """One row: the Settings field, where it is read (flag, then variable, then default), its check."""

    field: str
    env: str | None
    flag: str | None
    check: Check
    default: Any
    help: str

    @property
    def flag_key(self) -> str | None:
        """The key of `flags` (argparse's dest) for this row's flag."""
        return self.flag[2:].replace("-", "_") if self.flag else None


S = Setting
RECORDINGS_IN_CWD = _in_working_dir(DEFAULT_RECORDINGS_DIR)
ACCOUNTS_IN_CWD = _in_working_dir(DEFAULT_ACCOUNTS_FILE, if_present=True)
# Checked in this order (the first bad value is the one reported). Derived values (the generated token, the
# accounts read from the accounts file, the tunnel's default) are settled after the table, in load_settings.
SETTINGS: tuple[Setting, ...] = (
    S("port", "WA_DEVTUNNEL_PORT", "--port", port, DEFAULT_PORT, "receiver's local port; 0 picks one"),
    S("path", None, "--path", webhook_path, DEFAULT_PATH, "webhook path of the callback URL"),
    S("forward_to", "WA_DEVTUNNEL_FORWARD_TO", "--forward-to", url, None, "the developer's backend"),
    S("recordings_dir", "WA_DEVTUNNEL_RECORDINGS_DIR", "--recordings-dir", path, RECORDINGS_IN_CWD, "sessions"),
    S("max_body_bytes", "WA_DEVTUNNEL_MAX_BODY_BYTES", "--max-body-bytes", count, DEFAULT_MAX_BODY_BYTES, "413 above"),
    S("accounts_file", "WA_DEVTUNNEL_ACCOUNTS", "--accounts", existing_file, ACCOUNTS_IN_CWD, "several accounts"),
    S("verify_token", "WHATSAPP_VERIFY_TOKEN", "--verify-token", token, None, "Meta sends it in the handshake"),
    S("ngrok_authtoken", "NGROK_AUTHTOKEN", None, text, None, "ngrok account token: a tunnel opens"),
    S("tunnel", None, "--tunnel", one_of("tunnel provider", TUNNEL_PROVIDERS), None, "default: ngrok with a token"),
    S("app_secret", "WHATSAPP_APP_SECRET", "--app-secret", text, None, "checks and makes signatures"),
    S("require_signature", None, "--require-signature", switch, False, "refuse unsigned events"),
    S("host", None, "--host", as_given, DEFAULT_HOST, "address the receiver listens on"),
    S("ngrok_domain", "NGROK_DOMAIN", None, domain_name, None, "a domain of the ngrok account (empty: its dev domain)"),
    S("ngrok_path", "PYNGROK_NGROK_PATH", None, text, None, "an ngrok binary already installed"),
    S("cloudflared_path", "CLOUDFLARED_PATH", None, text, None, "cloudflared for --tunnel cloudflared (default: PATH)"),
    S("tunnel_timeout_s", "WA_DEVTUNNEL_TUNNEL_TIMEOUT", None, seconds, DEFAULT_TUNNEL_TIMEOUT_S, "tunnel start"),
    S("forward_timeout_s", "WA_DEVTUNNEL_FORWARD_TIMEOUT", "--forward-timeout", seconds, DEFAULT_FORWARD_TIMEOUT_S, "backend"),  # noqa: E501
    S("ack_first", None, "--ack-first", switch, False, "answer Meta before the backend does"),
    S("record", None, "--no-record", switch_off, True, "record sessions"),
    S("app_id", "META_APP_ID", None, text, None, "app subscriptions"),
    S("access_token", "WHATSAPP_ACCESS_TOKEN", None, text, None, "system-user token for the Graph API"),
    S("waba_id", "WHATSAPP_BUSINESS_ACCOUNT_ID", None, text, None, "WhatsApp Business Account ID"),
    S("phone_number_id", "WHATSAPP_PHONE_NUMBER_ID", None, text, None, "phone number ID"),
    S("graph_url", "META_GRAPH_URL", None, base_url, DEFAULT_GRAPH_URL, "Graph API base URL"),
    S("graph_version", "META_GRAPH_VERSION", None, text, DEFAULT_GRAPH_VERSION, "Graph API version"),
    S("quiet_after_register_s", "WA_DEVTUNNEL_QUIET_AFTER_REGISTER", None, hint_delay, DEFAULT_QUIET_AFTER_REGISTER_S, "hint"),  # noqa: E501
    S("restore_verify_token", "WA_DEVTUNNEL_RESTORE_VERIFY_TOKEN", None, text, None, "production's token"),
    S("max_session_bytes", "WA_DEVTUNNEL_MAX_SESSION_BYTES", None, count, DEFAULT_MAX_SESSION_BYTES, "roll over"),
    S("max_connections", "WA_DEVTUNNEL_MAX_CONNECTIONS", None, count, DEFAULT_MAX_CONNECTIONS, "open at once"),
    S("header_timeout_s", "WA_DEVTUNNEL_HEADER_TIMEOUT", None, seconds, DEFAULT_HEADER_TIMEOUT_S, "to send headers"),
    S("body_timeout_s", "WA_DEVTUNNEL_BODY_TIMEOUT", None, seconds, DEFAULT_BODY_TIMEOUT_S, "to send a body"),
    S("idle_timeout_s", "WA_DEVTUNNEL_IDLE_TIMEOUT", None, seconds, DEFAULT_IDLE_TIMEOUT_S, "idle keep-alive"),
    S("ack_first_backlog_bytes", "WA_DEVTUNNEL_ACK_FIRST_BACKLOG_BYTES", None, count, DEFAULT_ACK_FIRST_BACKLOG_BYTES, "waiting"),  # noqa: E501
    S("body_memory_bytes", "WA_DEVTUNNEL_BODY_MEMORY_BYTES", None, count, DEFAULT_BODY_MEMORY_BYTES, "being read"),
    S("register", None, "--register", one_of("scope", REGISTER_SCOPES), None, "point Meta at this tunnel"),
)


def _resolve(row: Setting, flags: Mapping[str, Any], env: Mapping[str, str], cwd: Path) -> tuple[Any, str]:
    """The row's value and the name it came from: the flag, else the variable, else the default."""
    for name, raw in ((row.flag, flags.get(row.flag_key or "")), (row.env, env.get(row.env or ""))):
        if name is not None and raw not in (None, ""):
            value = row.check(raw, name)
            if value is not None:
                return value, name
    default = row.default(cwd) if callable(row.default) else row.default
    return default, row.env or row.flag or row.field


_VARIABLE_NAMES = frozenset(row.env for row in SETTINGS if row.env)


def missing_for_scope(settings: Settings, scope: str) -> list[str]:
    """The settings a registration at `scope` needs and does not have."""
    access_token = ("WHATSAPP_ACCESS_TOKEN", settings.access_token)
    needed = {
        "phone": [access_token, ("WHATSAPP_PHONE_NUMBER_ID", settings.phone_number_id)],
        "waba": [access_token, ("WHATSAPP_BUSINESS_ACCOUNT_ID", settings.waba_id)],
        "app": [("META_APP_ID", settings.app_id), ("WHATSAPP_APP_SECRET", settings.app_secret)],
    }[scope]
    return [name for name, value in needed if not value]


def load_accounts(file: Path, setting: str = "--accounts") -> tuple[Account, ...]:
    """Read several WhatsApp accounts from a TOML file with [[account]] tables."""
    import tomllib  # only with --accounts (start-up of every command pays nothing)

    try:
        data = tomllib.loads(file.read_text(encoding="utf-8"))
    except OSError as exc:
        raise ConfigError(setting, f"cannot read {file}: {exc.strerror or exc}") from exc
    except (tomllib.TOMLDecodeError, UnicodeDecodeError) as exc:
        raise ConfigError(setting, f"{file} is not valid TOML: {exc}") from exc
    tables = data.get("account", [])
    if not isinstance(tables, list):
        raise ConfigError(setting, f"{file}: use [[account]] tables, one per WhatsApp number")
    accounts: list[Account] = []
    for index, table in enumerate(tables, start=1):
        where = f"{file}: account #{index}"
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
        checked_token = token(values["verify_token"], f"{where} verify_token")
        if any(a.name == values["name"] for a in accounts) or values["name"] == PRIMARY_ACCOUNT:
            raise ConfigError(setting, f"{where}: name {values['name']!r} is used twice or reserved")
        accounts.append(
            Account(
                name=values["name"].strip(),
                phone_number_id=values["phone_number_id"].strip(),
                verify_token=checked_token,
                app_secret=values.get("app_secret") or None,
            )
        )
    return tuple(accounts)


def _refuse_unparsed_lines(env_file: Path) -> None:
    """A line python-dotenv would skip is a setting the developer believes set: stop, naming file and line."""
    try:
        unparsed = unparsed_env_lines(env_file)
    except (OSError, UnicodeDecodeError):
        return  # read_environment has read it; a race is not worth a second message
    if unparsed:
        (line, problem), *others = unparsed
        also = f" (also line{'s' if len(others) > 1 else ''} {', '.join(str(n) for n, _ in others)})" if others else ""
        raise ConfigError(f"{env_file}:{line}", f"{problem}{also}")


def _verify_token(
    given: str | None,
    source: str,
    accounts: tuple[Account, ...],
    environ: Mapping[str, str] | None,
    env_file: Path,
) -> dict[str, Any]:
    """The token and where it came from; none given: the project's kept one, else a new one kept for next time."""
    if given is not None:
        process = os.environ if environ is None else environ
        origin = "flag" if source == "--verify-token" else "environment" if process.get(source) else "env-file"
        return {"verify_token": given, "verify_token_source": origin}
    if accounts:
        return {"verify_token": accounts[0].verify_token, "verify_token_source": "accounts"}
    directory = state_directory(env_file.parent)
    kept, created, read = load_or_create(directory, generate_verify_token)
    if kept is None or kept.verify_token is None:
        temporary = f"the verify token is new for this run only (set {VERIFY_TOKEN_VARIABLE} in .env to keep one)"
        return {
            "verify_token": generate_verify_token(),
            "verify_token_source": "generated",
            "verify_token_generated": True,
            "verify_token_new": True,
            "state_warning": f"{read.warning}; {temporary}" if read.warning else temporary,
        }
    return {
        "verify_token": kept.verify_token,
        "verify_token_source": "project-state",
        "verify_token_generated": True,
        "verify_token_new": created,
        "state_path": state_file(directory),
        "state_warning": read.warning,
    }


def load_settings(
    flags: Mapping[str, Any] | None = None,
    *,
    environ: Mapping[str, str] | None = None,
    cwd: Path | None = None,
    skip_unparsed_env_lines: bool = False,
) -> Settings:
    """Build validated Settings from the table; raise ConfigError naming the bad flag, variable or .env line.

    `skip_unparsed_env_lines`: do as python-dotenv does with a line it cannot parse (skip it) instead of
    stopping; for `doctor`, which reports those lines itself.
    """
    flags = {k: v for k, v in (flags or {}).items() if v is not None}
    base = cwd or Path.cwd()
    env_file = Path(flags.get("env_file") or base / ".env")
    if "env_file" in flags and not env_file.is_file():
        raise ConfigError("--env-file", f"{env_file} does not exist")
    env = read_environment(env_file, environ)
    if env_file.is_file() and not skip_unparsed_env_lines:
        _refuse_unparsed_lines(env_file)

    values: dict[str, Any] = {}
    sources: dict[str, str] = {}
    for row in SETTINGS:
        values[row.field], sources[row.field] = _resolve(row, flags, env, base)

    accounts = load_accounts(values["accounts_file"], sources["accounts_file"]) if values["accounts_file"] else ()
    token_fields = _verify_token(values["verify_token"], sources["verify_token"], accounts, environ, env_file)
    values["verify_token"] = token_fields.pop("verify_token")
    if values["tunnel"] is None:
        values["tunnel"] = "ngrok" if values["ngrok_authtoken"] else "none"
    settings = Settings(
        **values,
        **token_fields,
        accounts=accounts,
        env_file=env_file if env_file.is_file() else None,
        env_file_path=env_file,
    )
    if settings.register is not None:
        missing = missing_for_scope(settings, settings.register)
        if missing:
            raise ConfigError("--register", f"{settings.register} needs {' and '.join(missing)} (see .env.example)")
    if settings.require_signature and not settings.signature_secrets():
        raise ConfigError(
            "--require-signature",
            "needs an App Secret: set WHATSAPP_APP_SECRET (App Dashboard > App settings > Basic)",
        )
    return settings
