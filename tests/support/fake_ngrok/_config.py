"""The agent's configuration file, read as strictly as ngrok does: an unknown key stops the agent with its Go error."""

from __future__ import annotations

import os
import platform
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import yaml
from _ngrok_errors import FIRST_V3_CONFIG
from _schema import ENDPOINT_FIELDS, ENDPOINT_TYPE, TUNNEL_FIELDS, UPSTREAM_FIELDS, UPSTREAM_TYPE

V3_TOP = frozenset({"version", "agent", "endpoints", "tunnels"})
V3_AGENT = frozenset(
    {
        "api_key",
        "authtoken",
        "connect_cas",
        "connect_interface",
        "connect_timeout",
        "connect_url",
        "console_ui",
        "console_ui_color",
        "crl_noverify",
        "crl_url",
        "description",
        "dns_resolver_ips",
        "heartbeat_interval",
        "heartbeat_tolerance",
        "inspect_db_size",
        "local_storage",
        "log",
        "log_format",
        "log_level",
        "metadata",
        "proxy_url",
        "remote_management",
        "update_channel",
        "update_check",
        "web_addr",
        "web_allow_hosts",
    }
)
V2_TOP = frozenset(
    {
        "version",
        "authtoken",
        "api_key",
        "connect_timeout",
        "console_ui",
        "console_ui_color",
        "dns_resolver_ips",
        "heartbeat_interval",
        "heartbeat_tolerance",
        "inspect_db_size",
        "log",
        "log_format",
        "log_level",
        "metadata",
        "proxy_url",
        "region",
        "remote_management",
        "root_cas",
        "server_addr",
        "tunnels",
        "update_channel",
        "update_check",
        "web_addr",
        "web_allow_hosts",
    }
)
VERSION_REQUIRED = (
    "`version` property is required.\n\nIf you're upgrading from an older version of ngrok, you can run:\n\n"
    "    ngrok config upgrade\n\nto upgrade to the new format and add the version number."
)


class ConfigError(Exception):
    """What ngrok prints as ``ERROR:`` lines before exiting 1."""


def default_config_path() -> Path:
    home = Path.home()
    if platform.system() == "Darwin":
        return home / "Library" / "Application Support" / "ngrok" / "ngrok.yml"
    base = os.environ.get("XDG_CONFIG_HOME") or str(home / ".config")
    return Path(base) / "ngrok" / "ngrok.yml"


def config_paths(given: list[str]) -> tuple[list[Path], bool]:
    """The config files to read and whether they were named on the command line (then they must exist)."""
    named = [p for value in given for p in value.split(",") if p]
    if named:
        return [Path(p) for p in named], True
    return [default_config_path()], False


def load_config(paths: list[Path], explicit: bool, agent_version: tuple[int, ...]) -> dict[str, Any]:
    """Merge the files in order; each is checked like ngrok checks it (version, then every key)."""
    merged: dict[str, Any] = {}
    for path in paths:
        if not path.exists():
            if explicit:
                raise ConfigError(f"open {path}: no such file or directory")
            continue
        data = _read_one(path, agent_version)
        _merge(merged, data)
    return merged


def _read_one(path: Path, agent_version: tuple[int, ...]) -> dict[str, Any]:
    prefix = f"Error reading configuration file '{path}': "
    text = path.read_text(encoding="utf-8")
    try:
        node = yaml.compose(text)
        data = yaml.safe_load(text) or {}
    except (yaml.YAMLError, ValueError) as exc:
        raise ConfigError(f"{prefix}YAML parsing error: {exc}") from exc
    if not isinstance(data, dict):
        raise ConfigError(f"{prefix}YAML parsing error: yaml: unmarshal errors:\n  line 1: not a mapping")
    version = str(data.get("version", ""))
    if not version:
        raise ConfigError(prefix + VERSION_REQUIRED)
    valid = ["1", "2", "3"] if agent_version >= FIRST_V3_CONFIG else ["1", "2"]
    if version not in valid:
        raise ConfigError(f"{prefix}unknown version '{version}'. valid versions are: [{' '.join(valid)}]")
    unknown = sorted(_unknown_v3(node) if version == "3" else _unknown_v2(node))  # Go reports in file order
    if unknown:
        lines = "\n".join(f"  line {line}: field {key} not found in type {go_type}" for line, key, go_type in unknown)
        raise ConfigError(f"{prefix}YAML parsing error: yaml: unmarshal errors:\n{lines}")
    return data


Unknown = Iterator[tuple[int, str, str]]


def _keys(node: Any, known: frozenset[str], go_type: str) -> Unknown:
    """(line, key, type) of every key of a YAML mapping that ``known`` lacks, in file order."""
    if not isinstance(node, yaml.MappingNode):
        return
    for key, _ in node.value:
        if isinstance(key, yaml.ScalarNode) and key.value not in known:
            yield key.start_mark.line + 1, key.value, go_type


def _child(node: Any, name: str) -> Any:
    if isinstance(node, yaml.MappingNode):
        for key, value in node.value:
            if isinstance(key, yaml.ScalarNode) and key.value == name:
                return value
    return None


def _unknown_v3(root: Any) -> Unknown:
    yield from _keys(root, V3_TOP, "config.v3yamlConfig")
    yield from _keys(_child(root, "agent"), V3_AGENT, "config.Agent")
    endpoints = _child(root, "endpoints")
    for item in endpoints.value if isinstance(endpoints, yaml.SequenceNode) else []:
        yield from _keys(item, ENDPOINT_FIELDS, ENDPOINT_TYPE)
        yield from _keys(_child(item, "upstream"), UPSTREAM_FIELDS, UPSTREAM_TYPE)
    yield from _unknown_tunnels(_child(root, "tunnels"))


def _unknown_v2(root: Any) -> Unknown:
    yield from _keys(root, V2_TOP, "config.v2yamlConfig")
    yield from _unknown_tunnels(_child(root, "tunnels"))


def _unknown_tunnels(tunnels: Any) -> Unknown:
    for _, item in tunnels.value if isinstance(tunnels, yaml.MappingNode) else []:
        proto = _child(item, "proto")
        kind = proto.value if isinstance(proto, yaml.ScalarNode) else "http"
        if kind in TUNNEL_FIELDS:
            known, go_type = TUNNEL_FIELDS[kind]
            yield from _keys(item, known, go_type)


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


def save_setting(path: Path, key: str, value: str) -> Path:
    """``ngrok config add-authtoken`` / ``add-api-key``: update one agent field, file mode 0600."""
    config: dict[str, Any] = {}
    if path.exists():
        config = yaml.safe_load(path.read_text(encoding="utf-8")) or {}
    config.setdefault("version", "3")
    if str(config["version"]) == "3":
        config["agent"] = config.get("agent") or {}
        config["agent"][key] = value
    else:
        config[key] = value
    path.parent.mkdir(parents=True, exist_ok=True)
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w", encoding="utf-8") as handle:
        yaml.safe_dump(config, handle)
    return path
