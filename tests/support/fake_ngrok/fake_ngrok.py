"""A fake ngrok v3 agent for offline tests, driven by real pyngrok (runs as a process, with the venv's python).

It answers the subcommands pyngrok runs (``--version``, ``update``, ``config add-authtoken``,
``start --none --log stdout --config ...``), prints ngrok's logfmt lines, serves the agent API and really
forwards each endpoint's HTTPS listener to its upstream. It is as strict as the real agent: an unknown key in
the config file stops it with ngrok's YAML error, an unknown field in an API body is a 400, and it outlives
its parent as the real agent does (no watchdog unless FAKE_NGROK_WATCH_PID is set).

Knobs (environment):
    FAKE_NGROK_MODE       comma-separated:
        ok                    healthy (the default)
        no-authtoken, bad-authtoken, session-limit, too-old
                              the session is refused (ERR_NGROK_4018/105/108/121): error lines, exit 1
        domain-not-yours, domain-not-reserved
                              an endpoint on a requested domain fails (ERR_NGROK_320/319, API 502)
        interstitial          the free plan's browser warning (ERR_NGROK_6024, 200 text/html) for a GET
                              from a browser User-Agent (Mozilla/...) without ngrok-skip-browser-warning
        silent                prints nothing and never serves (a hung agent)
        no-endpoints-api      no /api/endpoints (404 "Not Found"), as agents before 3.30
        version=<x.y.z>       what `ngrok version` prints (default 3.30.0); < 3.30: no /api/endpoints;
                              < 3.16: a v3 config is "unknown version '3'" (exit 1)
        die-after=<s>         s seconds after start the agent exits 1
        drop-after=<s>        s seconds after the session is established it drops, the process lives on:
                              "session closed, starting reconnect loop", then "failed to reconnect session"
                              every FAKE_NGROK_RECONNECT_S; the public side answers 404 ERR_NGROK_3200; the
                              API still lists the endpoints
        drop-heartbeat        with drop-after: the drop is a heartbeat timeout (its line, err="session closed")
        recover-after=<s>     with drop-after: s seconds after the drop the session is back
                              ("client session established"), same endpoints, same URLs
        restart-after=<s>     s seconds after start the agent re-execs itself (same PID, same argv, same API
                              port) as a dashboard "Restart" does: a fresh start, no endpoints (once)
    Signals (test controls, any mode, once the session is up): SIGUSR1 drops the session now (as drop-after),
    SIGUSR2 brings it back (as recover-after), SIGHUP restarts the agent in place now (as restart-after).
        offline               the API starts, the session never comes up: "failed to reconnect session"
                              with FAKE_NGROK_RECONNECT_ERR every FAKE_NGROK_RECONNECT_S, forever
    FAKE_NGROK_RECONNECT_S    seconds between redials while down or offline (default 0.5)
    FAKE_NGROK_RECONNECT_ERR  the redial error (default: DNS lookup of connect.ngrok-agent.com fails)
    FAKE_NGROK_DROP_ERR       the error of the drop line (default: connection reset by peer)
    FAKE_NGROK_DEV_DOMAIN     the account's dev domain, used by an http(s) endpoint asked for without a URL
                              (default: derived from the authtoken, *.ngrok-free.dev, stable across restarts)
    FAKE_NGROK_STATE_DIR      shared by fake agents of one account: an endpoint URL already online in any of
                              them is ERR_NGROK_334; a URL keeps its local port across restarts when free
    FAKE_NGROK_PUBLIC_HOST    host used in every public URL instead of the endpoint's domain (e.g. localhost,
                              for clients that resolve names through real DNS)
    FAKE_NGROK_API_LOG        append {"pid", "method", "path", "body", "status"} per API call that is not a GET
    FAKE_NGROK_CERT/KEY       PEM files for the public HTTPS listeners
    FAKE_NGROK_ARGV_LOG       append {"pid", "argv", "restarts"} as a JSON line per start (and restart)
    FAKE_NGROK_ENV_LOG        append {"pid", "env"} (the environment it was started with) per invocation
    FAKE_NGROK_WATCH_PID      exit when this process ends (unset: never; the real agent outlives its parent)
"""

from __future__ import annotations

import asyncio
import json
import os
import re
import signal
import sys
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))

from _agent import Agent, ApiError, Settings
from _config import ConfigError, agent_section, config_paths, load_config, save_setting
from _logfmt import Logger
from _ngrok_errors import AGENT_VERSION, AUTH_ERRORS, OFFLINE_ERR, TOO_OLD_VERSION, dev_domain_for
from _registry import Registry
from _session import Session

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
_TIMED = ("die-after", "drop-after", "recover-after", "restart-after")


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
    timers: dict[str, float]
    version: str

    @classmethod
    def from_env(cls, raw: str) -> Modes:
        names: set[str] = set()
        timers: dict[str, float] = {}
        version = ""
        for token in (t.strip() for t in raw.split(",")):
            key, eq, value = token.partition("=")
            if eq and key in _TIMED:
                timers[key] = float(value)
            elif eq and key == "version":
                version = value
            elif token:
                names.add(token)
        if not version:
            version = TOO_OLD_VERSION if "too-old" in names else AGENT_VERSION
        return cls(frozenset(names), timers, version)


def version_tuple(text: str) -> tuple[int, ...]:
    return tuple(int(part) for part in re.findall(r"\d+", text)[:3])


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


def resolve_authtoken(cli: Cli, config: dict[str, Any]) -> tuple[str | None, str]:
    """Like ngrok: --authtoken beats $NGROK_AUTHTOKEN beats the config file."""
    if cli.flag("authtoken"):
        return cli.flag("authtoken"), "argv"
    if os.environ.get("NGROK_AUTHTOKEN"):
        return os.environ["NGROK_AUTHTOKEN"], "env"
    token = agent_section(config).get("authtoken")
    return (str(token), "config") if token else (None, "none")


def _append_json(variable: str, entry: dict[str, Any]) -> None:
    target = os.environ.get(variable)
    if not target:
        return
    fd = os.open(target, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o600)
    try:
        os.write(fd, (json.dumps(entry) + "\n").encode())
    finally:
        os.close(fd)


def print_error(message: str) -> None:
    for line in message.replace("\r", "").split("\n"):
        print(f"ERROR:  {line}".rstrip(), file=sys.stderr)


def main(argv: list[str]) -> int:
    restarts = int(os.environ.get("FAKE_NGROK_RESTARTS", "0"))
    _append_json("FAKE_NGROK_ARGV_LOG", {"pid": os.getpid(), "argv": argv, "restarts": restarts})
    _append_json("FAKE_NGROK_ENV_LOG", {"pid": os.getpid(), "env": dict(os.environ)})
    modes = Modes.from_env(os.environ.get("FAKE_NGROK_MODE", ""))
    cli = parse_cli(argv)
    command = cli.command
    try:
        if cli.flag("version") or command == ["version"]:
            print(f"ngrok version {modes.version}")
            return 0
        if not command or cli.flag("help") or command == ["help"]:
            print("NAME:\n  ngrok - tunnel local ports to public URLs (fake agent for tests)")
            return 0
        paths, explicit = config_paths(cli.flags.get("config", []))
        if command[:2] in (["config", "add-authtoken"], ["config", "add-api-key"]) and len(command) == 3:
            key = "authtoken" if command[1] == "add-authtoken" else "api_key"
            path = save_setting(paths[0], key, command[2])
            print(f"{'Authtoken' if key == 'authtoken' else 'API key'} saved to configuration file: {path}")
            return 0
        if command[0] == "api":
            raise Usage("the fake ngrok agent cannot reach the ngrok API (offline test double)")
        if command[0] not in ("start", "http", "tcp", "tls", "update") and command != ["config", "check"]:
            raise Usage(f'unknown command "{command[0]}" for "ngrok"')
        config = load_config(paths, explicit, version_tuple(modes.version))
        if command == ["update"]:
            print("No update available, this is the latest version.")
            return 0
        if command == ["config", "check"]:
            print(f"Valid configuration file at {paths[0]}")
            return 0
        return asyncio.run(run_agent(cli, modes, config, paths, explicit, restarts))
    except (Usage, ConfigError) as exc:
        print_error(str(exc))
        return 1


async def run_agent(
    cli: Cli, modes: Modes, config: dict[str, Any], paths: list[Path], explicit: bool, restarts: int
) -> int:
    watched = os.environ.get("FAKE_NGROK_WATCH_PID")
    if watched:
        asyncio.get_running_loop().create_task(_exit_with_process(int(watched)))
    forever = asyncio.Event()
    if "silent" in modes.names:
        await forever.wait()
    section = agent_section(config)
    log = Logger(cli.flag("log") or section.get("log"))
    if explicit:
        for path in paths:
            log("info", "open config file", path=str(path), err="<nil>")
    else:
        log("info", "no configuration paths supplied")
    token, source = resolve_authtoken(cli, config)
    registry = Registry(os.environ.get("FAKE_NGROK_STATE_DIR"))
    registry.forget_own()
    settings = Settings(
        version=version_tuple(modes.version),
        version_text=modes.version,
        modes=modes.names,
        public_host=os.environ.get("FAKE_NGROK_PUBLIC_HOST"),
        cert_file=os.environ.get("FAKE_NGROK_CERT"),
        key_file=os.environ.get("FAKE_NGROK_KEY"),
        region=cli.flag("region") or str(section.get("region") or "us"),
        authtoken_source=source,
        config_paths=[str(p) for p in paths],
        dev_domain=os.environ.get("FAKE_NGROK_DEV_DOMAIN") or dev_domain_for(token),
        api_log=os.environ.get("FAKE_NGROK_API_LOG"),
        registry=registry,
    )
    session = Session(
        log,
        reconnect_s=float(os.environ.get("FAKE_NGROK_RECONNECT_S", "0.5")),
        reconnect_err=os.environ.get("FAKE_NGROK_RECONNECT_ERR") or OFFLINE_ERR,
        **({"drop_err": os.environ["FAKE_NGROK_DROP_ERR"]} if os.environ.get("FAKE_NGROK_DROP_ERR") else {}),
    )
    agent = Agent(settings, log, session)
    web_addr = os.environ.get("FAKE_NGROK_RESTART_WEB_ADDR") or str(section.get("web_addr") or "")
    host, _, port = (web_addr or "127.0.0.1:4040").rpartition(":")
    try:
        bound = await agent.start_api(host or "127.0.0.1", int(port), fallback=not web_addr)
    except (OSError, ValueError) as exc:
        err = f"failed to start web service: {exc}"
        log("crit", "command failed", err=err)
        print_error(err)
        return 1
    log("info", "starting web service", obj="web", addr=bound, allow_hosts="[]")
    loop = asyncio.get_running_loop()
    loop.add_signal_handler(signal.SIGUSR1, _drop, session, modes)
    loop.add_signal_handler(signal.SIGUSR2, session.recover)
    loop.add_signal_handler(signal.SIGHUP, _restart, log, bound, restarts)
    timers = modes.timers
    if "restart-after" in timers and restarts == 0:
        loop.call_later(timers["restart-after"], _restart, log, bound, restarts)
    if "die-after" in timers:
        loop.call_later(timers["die-after"], _die, log, timers["die-after"])
    if "offline" in modes.names:
        await session.redial_forever()
    failure = _auth_failure(modes, token)
    if failure:
        return _fail_session(log, session, failure)
    session.establish()
    try:
        await _start_configured(agent, cli, config)
    except ApiError as exc:
        return _fail_session(log, session, exc.err, closing_only=True)
    if "drop-after" in timers:
        loop.call_later(timers["drop-after"], _drop, session, modes)
    await forever.wait()
    return 0


def _auth_failure(modes: Modes, token: str | None) -> str | None:
    for mode in ("no-authtoken", "bad-authtoken", "session-limit", "too-old"):
        if mode in modes.names:
            code, text = AUTH_ERRORS[mode]
            return f"authentication failed: {text.format(token=token, version=modes.version)}\r\n\r\n{code}\r\n"
    if not token:
        code, text = AUTH_ERRORS["no-authtoken"]
        return f"authentication failed: {text}\r\n\r\n{code}\r\n"
    return None


def _fail_session(log: Logger, session: Session, err: str, *, closing_only: bool = False) -> int:
    """A permanent session error: the agent logs why, prints ngrok's ERROR: lines and exits 1."""
    if not closing_only:
        log("eror", "failed to reconnect session", obj="tunnels.session", obj_2="csess", id=session.id, err=err)
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


def _drop(session: Session, modes: Modes) -> None:
    if not session.up:
        return
    session.drop(heartbeat="drop-heartbeat" in modes.names)
    if "recover-after" in modes.timers:
        asyncio.get_running_loop().call_later(modes.timers["recover-after"], session.recover)


def _restart(log: Logger, api_addr: str, restarts: int) -> None:
    """A dashboard "Restart": the agent re-execs itself in place (same PID and argv) and starts afresh."""
    log("info", "received stop request", obj="app", stopReq="{err:<nil> restart:true}")
    sys.stdout.flush()
    env = {**os.environ, "FAKE_NGROK_RESTARTS": str(restarts + 1), "FAKE_NGROK_RESTART_WEB_ADDR": api_addr}
    os.execve(sys.executable, sys.orig_argv, env)


def _die(log: Logger, seconds: float) -> None:
    err = f"session closed by the fake agent after {seconds:g}s (die-after)"
    log("eror", "session closing", obj="tunnels.session", err=err)
    log("crit", "command failed", err=err)
    os._exit(1)


async def _exit_with_process(pid: int) -> None:
    """Outlive our parent (like the real agent), but never the process a test names."""
    while True:
        await asyncio.sleep(0.5)
        try:
            os.kill(pid, 0)
        except ProcessLookupError:
            os._exit(0)


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
