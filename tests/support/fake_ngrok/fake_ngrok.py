"""A fake ngrok v3 agent for offline tests, driven by real pyngrok (runs as a process, with the venv's python).

It answers the subcommands pyngrok runs (``--version``, ``update``, ``config add-authtoken``,
``start --none --log stdout --config ...``), prints ngrok's logfmt startup lines, serves the agent
API and really forwards each endpoint's HTTPS listener to its upstream.

Knobs (environment):
    FAKE_NGROK_MODE       comma-separated: ok, no-authtoken, bad-authtoken, silent,
                          session-limit, too-old, domain-not-yours, domain-not-reserved,
                          interstitial, no-endpoints-api, die-after=<seconds>
    FAKE_NGROK_CERT/KEY   PEM files for the public HTTPS listeners
    FAKE_NGROK_PUBLIC_HOST  host used in every public URL (default: the requested domain,
                          else "localhost")
    FAKE_NGROK_ARGV_LOG   append {"pid", "argv"} as a JSON line per invocation
    FAKE_NGROK_ENV_LOG    append {"pid", "env"} (the environment it was started with) per invocation
    FAKE_NGROK_WATCH_PID  exit when this process ends (default: the parent). Set it to the test
                          process to outlive a killed wa-devtunnel, as the real agent does.
"""

from __future__ import annotations

import asyncio
import json
import os
import platform
import re
import secrets
import sys
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any, TextIO

import yaml

sys.path.insert(0, str(Path(__file__).resolve().parent))

from _agent import Agent, ApiError, Settings
from _ngrok_errors import AGENT_VERSION, AUTH_ERRORS, TOO_OLD_VERSION

VALUE_FLAGS = frozenset(
    {
        "config",
        "log",
        "log-format",
        "log-level",
        "authtoken",
        "region",
        "url",
        "domain",
        "api-key",
        "host-header",
        "metadata",
        "description",
        "upstream-protocol",
        "binding",
        "traffic-policy-file",
        "basic-auth",
    }
)


class Usage(Exception):
    """A command-line or configuration problem; printed as ngrok's ``ERROR:`` lines, exit 1."""


@dataclass
class Cli:
    command: list[str] = field(default_factory=list)
    flags: dict[str, list[str]] = field(default_factory=dict)

    def flag(self, name: str) -> str | None:
        values = self.flags.get(name)
        return values[-1] if values else None


@dataclass
class Modes:
    names: frozenset[str]
    die_after: float | None

    @classmethod
    def from_env(cls, raw: str) -> Modes:
        names: set[str] = set()
        die_after = None
        for token in (t.strip() for t in raw.split(",")):
            if token.startswith("die-after="):
                die_after = float(token.split("=", 1)[1])
            elif token:
                names.add(token)
        return cls(frozenset(names), die_after)


class Logger:
    """ngrok's logfmt: ``t=... lvl=info msg="..." key=value``; Go-quoted values with \\n escapes."""

    def __init__(self, target: str | None) -> None:
        self.stream: TextIO | None = None
        if target == "stdout":
            self.stream = sys.stdout
        elif target == "stderr":
            self.stream = sys.stderr
        elif target and target != "false":
            self.stream = open(target, "a", encoding="utf-8")  # noqa: SIM115

    def __call__(self, lvl: str, msg: str, **fields: Any) -> None:
        if self.stream is None:
            return
        stamp = datetime.now().astimezone().strftime("%Y-%m-%dT%H:%M:%S%z")
        parts = [f"t={stamp}", f"lvl={lvl}", f"msg={_quote(msg, force=True)}"]
        parts += [f"{key}={_quote(str(value))}" for key, value in fields.items()]
        try:
            self.stream.write(" ".join(parts) + "\n")
            self.stream.flush()
        except (BrokenPipeError, ValueError):
            self.stream = None


def _quote(value: str, *, force: bool = False) -> str:
    if not force and value and re.fullmatch(r"[^\s\"\\=]+", value):
        return value
    escaped = value.replace("\\", "\\\\").replace('"', '\\"')
    return '"' + escaped.replace("\n", "\\n").replace("\r", "\\r").replace("\t", "\\t") + '"'


def parse_cli(argv: list[str]) -> Cli:
    cli = Cli()
    tokens = iter(argv)
    for token in tokens:
        if token in ("-v",):
            cli.flags.setdefault("version", []).append("true")
        elif token in ("-h",):
            cli.flags.setdefault("help", []).append("true")
        elif token.startswith("--") and len(token) > 2:
            name, eq, value = token[2:].partition("=")
            if not eq:
                value = next(tokens, "") if name in VALUE_FLAGS else "true"
            cli.flags.setdefault(name, []).append(value)
        else:
            cli.command.append(token)
    return cli


def default_config_path() -> Path:
    home = Path.home()
    if platform.system() == "Darwin":
        return home / "Library" / "Application Support" / "ngrok" / "ngrok.yml"
    base = os.environ.get("XDG_CONFIG_HOME") or str(home / ".config")
    return Path(base) / "ngrok" / "ngrok.yml"


def config_paths(cli: Cli) -> tuple[list[Path], bool]:
    """The config files to read and whether they were given explicitly (then they must exist)."""
    given = [p for value in cli.flags.get("config", []) for p in value.split(",") if p]
    if given:
        return [Path(p) for p in given], True
    return [default_config_path()], False


def load_config(paths: list[Path], explicit: bool) -> dict[str, Any]:
    merged: dict[str, Any] = {}
    for path in paths:
        if not path.exists():
            if explicit:
                raise Usage(f"open {path}: no such file or directory")
            continue
        try:
            data = yaml.safe_load(path.read_text(encoding="utf-8")) or {}
        except (yaml.YAMLError, ValueError) as exc:
            raise Usage(f"Error reading configuration file '{path}': {exc}") from exc
        if not isinstance(data, dict):
            raise Usage(f"Error reading configuration file '{path}': not a mapping")
        _merge(merged, data)
    return merged


def _merge(into: dict[str, Any], data: dict[str, Any]) -> None:
    for key, value in data.items():
        if isinstance(value, dict) and isinstance(into.get(key), dict):
            _merge(into[key], value)
        else:
            into[key] = value


def agent_section(config: dict[str, Any]) -> dict[str, Any]:
    if str(config.get("version", "2")) == "3":
        return config.get("agent") or {}
    return config


def resolve_authtoken(cli: Cli, config: dict[str, Any]) -> tuple[str | None, str]:
    """Like ngrok: --authtoken beats $NGROK_AUTHTOKEN beats the config file."""
    if cli.flag("authtoken"):
        return cli.flag("authtoken"), "argv"
    if os.environ.get("NGROK_AUTHTOKEN"):
        return os.environ["NGROK_AUTHTOKEN"], "env"
    token = agent_section(config).get("authtoken")
    return (str(token), "config") if token else (None, "none")


def save_setting(cli: Cli, key: str, value: str) -> Path:
    """``ngrok config add-authtoken`` / ``add-api-key``: update one agent field, file mode 0600."""
    paths, _ = config_paths(cli)
    path = paths[0]
    config = load_config([path], explicit=False)
    config.setdefault("version", "3")
    if str(config["version"]) == "3":
        config.setdefault("agent", {})
        config["agent"] = config["agent"] or {}
        config["agent"][key] = value
    else:
        config[key] = value
    path.parent.mkdir(parents=True, exist_ok=True)
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w", encoding="utf-8") as handle:
        yaml.safe_dump(config, handle)
    return path


def record_argv(argv: list[str]) -> None:
    target = os.environ.get("FAKE_NGROK_ARGV_LOG")
    if not target:
        return
    line = json.dumps({"pid": os.getpid(), "argv": argv}) + "\n"
    fd = os.open(target, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o600)
    try:
        os.write(fd, line.encode())
    finally:
        os.close(fd)


def record_env() -> None:
    target = os.environ.get("FAKE_NGROK_ENV_LOG")
    if not target:
        return
    line = json.dumps({"pid": os.getpid(), "env": dict(os.environ)}) + "\n"
    fd = os.open(target, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o600)
    try:
        os.write(fd, line.encode())
    finally:
        os.close(fd)


def print_error(message: str) -> None:
    for line in message.replace("\r", "").split("\n"):
        print(f"ERROR:  {line}".rstrip(), file=sys.stderr)


def main(argv: list[str]) -> int:
    record_argv(argv)
    record_env()
    modes = Modes.from_env(os.environ.get("FAKE_NGROK_MODE", ""))
    version = TOO_OLD_VERSION if "too-old" in modes.names else AGENT_VERSION
    cli = parse_cli(argv)
    command = cli.command
    try:
        if cli.flag("version") or command == ["version"]:
            print(f"ngrok version {version}")
            return 0
        if not command or cli.flag("help") or command == ["help"]:
            print("NAME:\n  ngrok - tunnel local ports to public URLs (fake agent for tests)")
            return 0
        if command == ["update"]:
            print("No update available, this is the latest version.")
            return 0
        if command[:2] == ["config", "add-authtoken"] and len(command) == 3:
            path = save_setting(cli, "authtoken", command[2])
            print(f"Authtoken saved to configuration file: {path}")
            return 0
        if command[:2] == ["config", "add-api-key"] and len(command) == 3:
            path = save_setting(cli, "api_key", command[2])
            print(f"API key saved to configuration file: {path}")
            return 0
        if command == ["config", "check"]:
            paths, explicit = config_paths(cli)
            load_config(paths, explicit)
            print(f"Valid configuration file at {paths[0]}")
            return 0
        if command[0] == "api":
            raise Usage("the fake ngrok agent cannot reach the ngrok API (offline test double)")
        if command[0] in ("start", "http", "tcp", "tls"):
            return asyncio.run(run_agent(cli, modes, version))
        raise Usage(f'unknown command "{command[0]}" for "ngrok"')
    except Usage as exc:
        print_error(str(exc))
        return 1


async def run_agent(cli: Cli, modes: Modes, version: str) -> int:
    watched = os.environ.get("FAKE_NGROK_WATCH_PID")
    watchdog = asyncio.get_running_loop().create_task(
        _exit_with_parent(os.getppid()) if not watched else _exit_with_process(int(watched))
    )
    if "silent" in modes.names:
        await watchdog
    paths, explicit = config_paths(cli)
    config = load_config(paths, explicit)
    section = agent_section(config)
    log = Logger(cli.flag("log") or section.get("log"))
    if explicit:
        for path in paths:
            log("info", "open config file", path=str(path), err="nil")
    else:
        log("info", "no configuration paths supplied")
    token, source = resolve_authtoken(cli, config)
    settings = Settings(
        version=version,
        modes=modes.names,
        public_host=os.environ.get("FAKE_NGROK_PUBLIC_HOST"),
        cert_file=os.environ.get("FAKE_NGROK_CERT"),
        key_file=os.environ.get("FAKE_NGROK_KEY"),
        region=cli.flag("region") or str(section.get("region") or "us"),
        authtoken_source=source,
        config_paths=[str(p) for p in paths],
    )
    agent = Agent(settings, log)
    web_addr = str(section.get("web_addr") or "")
    host, _, port = (web_addr or "127.0.0.1:4040").rpartition(":")
    try:
        bound = await agent.start_api(host or "127.0.0.1", int(port), fallback=not web_addr)
    except (OSError, ValueError) as exc:
        err = f"failed to start web service: {exc}"
        log("crit", "command failed", err=err)
        print_error(err)
        return 1
    log("info", "starting web service", obj="web", addr=bound, allow_hosts="[]")
    failure = _auth_failure(modes, token)
    if failure:
        return _fail_session(log, failure)
    log("info", "tunnel session started", obj="tunnels.session")
    log("info", "client session established", obj="csess", id=secrets.token_hex(6))
    try:
        await _start_configured(agent, cli, config)
    except ApiError as exc:
        log("crit", "command failed", err=exc.err)
        print_error(exc.err.rstrip())
        return 1
    if modes.die_after is not None:
        asyncio.get_running_loop().call_later(modes.die_after, _die, log, modes.die_after)
    await watchdog
    return 0


def _auth_failure(modes: Modes, token: str | None) -> str | None:
    for mode in ("no-authtoken", "bad-authtoken", "session-limit", "too-old"):
        if mode in modes.names:
            code, text = AUTH_ERRORS[mode]
            return f"authentication failed: {text.format(token=token)}\r\n\r\n{code}\r\n"
    if not token:
        code, text = AUTH_ERRORS["no-authtoken"]
        return f"authentication failed: {text}\r\n\r\n{code}\r\n"
    return None


def _fail_session(log: Logger, err: str) -> int:
    log("eror", "failed to reconnect session", obj="csess", id=secrets.token_hex(6), err=err)
    log("eror", "session closing", obj="tunnels.session", err=err)
    log("info", "received stop request", obj="app", stopReq="{err:<nil> restart:false}")
    log("eror", "terminating with error", obj="app", err=err)
    log("crit", "command failed", err=err)
    print_error(err.rstrip())
    code = re.search(r"ERR_NGROK_\d+", err)
    if code:
        print_error(f"https://ngrok.com/docs/errors/{code.group(0).lower()}")
    return 1


async def _start_configured(agent: Agent, cli: Cli, config: dict[str, Any]) -> None:
    """``start NAME...``/``--all`` from the config's endpoints/tunnels; ``http ADDR`` from argv."""
    command = cli.command
    if command[0] in ("http", "tcp", "tls") and len(command) > 1:
        url = cli.flag("url") or cli.flag("domain") or ("tcp://" if command[0] == "tcp" else "")
        body = {"name": "command_line", "upstream": {"url": command[1]}, "url": url}
        await agent.create(body, "endpoints")
        return
    definitions: list[tuple[dict[str, Any], str]] = []
    for item in config.get("endpoints") or []:
        definitions.append((dict(item), "endpoints"))
    for name, item in (config.get("tunnels") or {}).items():
        definitions.append(({**item, "name": name}, "tunnels"))
    wanted = set(command[1:])
    for body, kind in definitions:
        if cli.flag("all") or body.get("name") in wanted:
            await agent.create(body, kind)


def _die(log: Logger, seconds: float) -> None:
    err = f"session closed by the fake agent after {seconds:g}s (die-after)"
    log("eror", "session closing", obj="tunnels.session", err=err)
    log("crit", "command failed", err=err)
    os._exit(1)


async def _exit_with_parent(parent: int) -> None:
    """Never outlive the test process that started us, even if it forgot to kill us."""
    while True:
        await asyncio.sleep(0.5)
        if os.getppid() != parent:
            os._exit(0)


async def _exit_with_process(pid: int) -> None:
    """Outlive our parent (like the real agent), but never the test process named by the test."""
    while True:
        await asyncio.sleep(0.5)
        try:
            os.kill(pid, 0)
        except ProcessLookupError:
            os._exit(0)


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
