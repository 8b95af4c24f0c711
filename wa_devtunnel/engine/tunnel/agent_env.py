"""The ngrok agent gets only the environment it needs: our App Secret and access token stay with us.

pyngrok starts the agent with `subprocess.Popen` and our whole environment; our launcher script
sits in between and re-executes the agent under `env -i` with an allowlist. Values are read from
the environment at exec time, so none of them (a proxy password, say) is ever written to disk.
"""

from __future__ import annotations

import os
import re
import shlex
import shutil
from collections.abc import Iterable, Mapping

# What a Go program that dials ngrok's servers (maybe through a proxy) and writes logs may read.
# NGROK_AUTHTOKEN is left out on purpose: the agent reads the token from its private config file.
AGENT_ENV_NAMES = frozenset(
    {
        "PATH",
        "HOME",
        "USER",
        "LOGNAME",
        "TMPDIR",
        "TZ",
        "LANG",
        "LANGUAGE",
        "SSL_CERT_FILE",
        "SSL_CERT_DIR",
        "XDG_CONFIG_HOME",
        "XDG_CACHE_HOME",
        "HTTP_PROXY",
        "HTTPS_PROXY",
        "NO_PROXY",
        "ALL_PROXY",
        "http_proxy",
        "https_proxy",
        "no_proxy",
        "all_proxy",
    }
)
AGENT_ENV_PREFIXES = ("LC_",)
_SHELL_NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")


def agent_env_names(names: Iterable[str]) -> list[str]:
    """The variables (of those set) that the agent may see."""
    return sorted(
        name
        for name in names
        if _SHELL_NAME.fullmatch(name) and (name in AGENT_ENV_NAMES or name.startswith(AGENT_ENV_PREFIXES))
    )


def agent_environment(environ: Mapping[str, str]) -> dict[str, str]:
    """The allowlisted part of `environ`, for running the agent directly (its `--version`)."""
    return {name: environ[name] for name in agent_env_names(environ)}


def agent_env_launcher_line(names: Iterable[str], binary: str) -> str:
    """`exec env -i NAME="$NAME"... <binary>` for a POSIX sh launcher script (arguments follow)."""
    env = "/usr/bin/env" if os.path.exists("/usr/bin/env") else shutil.which("env") or "env"
    keep = [f'${{{name}+"{name}=${name}"}}' for name in agent_env_names(names)]
    # env would read a path holding "=" as one more variable: let sh run such a path instead.
    target = [shlex.quote(binary)]
    if "=" in binary:
        target = ["/bin/sh", "-c", shlex.quote('exec "$0" "$@"'), *target]
    return " ".join(["exec", shlex.quote(env), "-i", *keep, *target])
