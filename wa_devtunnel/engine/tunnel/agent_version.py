"""Which ngrok agent we run: the real binary (never pyngrok's Python wrapper), and one new enough for pyngrok 9.

pyngrok 9 drives the agent through `/api/endpoints`, which agents before 3.30 do not have: with an
older one the start would hang until our deadline. So the agent's `--version` is asked first (a
fraction of a second) and an old agent is refused at once, with the exact binary to update.
"""

from __future__ import annotations

import os
import re
import signal
import subprocess
from collections.abc import Mapping
from dataclasses import dataclass

from wa_devtunnel.engine.tunnel.agent_group import signal_group
from wa_devtunnel.engine.tunnel.ngrok_errors import DOWNLOAD_URL, one_line, update_advice
from wa_devtunnel.engine.tunnel.provider import TunnelError

VERSION_FLOOR = (3, 30, 0)  # the first agent with /api/endpoints (pyngrok 9's API)
PROBE_TIMEOUT_S = 5.0
_VERSION = re.compile(r"\bversion\s+v?(\d+)\.(\d+)(?:\.(\d+))?")
_WRAPPER_HEAD_BYTES = 4096
_IMPORTS_PYNGROK = re.compile(rb"^[ \t]*(?:from|import)[ \t]+pyngrok\b", re.MULTILINE)


@dataclass(frozen=True, slots=True)
class AgentVersion:
    """What `<binary> --version` said, and the version number in it."""

    binary: str
    said: str
    number: tuple[int, int, int]

    @property
    def text(self) -> str:
        """`3.30.0`."""
        return ".".join(map(str, self.number))

    @property
    def supported(self) -> bool:
        """New enough for pyngrok 9's `/api/endpoints`."""
        return self.number >= VERSION_FLOOR


def floor_text() -> str:
    """`3.30`."""
    return ".".join(map(str, VERSION_FLOOR[:2]))


def parse_version(output: str) -> tuple[int, int, int] | None:
    """The version in `ngrok version 3.30.0` (None when the text has none)."""
    match = _VERSION.search(output)
    if match is None:
        return None
    major, minor, patch = match.groups()
    return int(major), int(minor), int(patch or 0)


def is_pyngrok_wrapper(binary: str) -> bool:
    """pyngrok's own `ngrok` console script (a Python file in a venv's bin/ importing pyngrok), not the agent."""
    try:
        with open(binary, "rb") as handle:
            head = handle.read(_WRAPPER_HEAD_BYTES)
    except OSError:
        return False
    return head.startswith(b"#!") and _IMPORTS_PYNGROK.search(head) is not None


def wrapper_error(binary: str, real_agent: str) -> TunnelError:
    """Why pyngrok's wrapper cannot stand in for the agent, and where the real one is."""
    return TunnelError(
        f"{binary} is pyngrok's Python wrapper script, not the ngrok agent",
        f"Point PYNGROK_NGROK_PATH at the real agent binary: pyngrok's download at {real_agent}, or ngrok "
        f"from {DOWNLOAD_URL}; or remove PYNGROK_NGROK_PATH so pyngrok downloads it.",
    )


def _run_version(binary: str, env: Mapping[str, str], timeout: float) -> str:
    """`<binary> --version` in its own process group (killed whole on timeout); its output."""
    try:
        proc = subprocess.Popen(
            [binary, "--version"],
            stdin=subprocess.DEVNULL,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            env=dict(env),
            start_new_session=os.name == "posix",
        )
    except OSError as exc:
        raise TunnelError(
            f"cannot run the ngrok agent {binary}: {exc.strerror or exc}",
            f"Reinstall ngrok ({DOWNLOAD_URL}) or fix PYNGROK_NGROK_PATH.",
        ) from None
    try:
        output, _ = proc.communicate(timeout=timeout)
    except subprocess.TimeoutExpired:
        if not signal_group(proc.pid, signal.SIGKILL):
            proc.kill()
        proc.communicate()
        raise TunnelError(
            f"the ngrok agent {binary} did not answer `--version` within {timeout:g} s",
            f"Check that it is a working ngrok agent (run `{binary} --version`), or reinstall it ({DOWNLOAD_URL}).",
        ) from None
    text = output.decode("utf-8", errors="replace")
    if proc.returncode != 0:
        raise TunnelError(
            f"the ngrok agent {binary} failed `--version` (exit {proc.returncode}): {one_line(text, 200)}",
            f"Reinstall ngrok ({DOWNLOAD_URL}) or fix PYNGROK_NGROK_PATH.",
        )
    return text


def vet_agent(binary: str, env: Mapping[str, str], real_agent: str, timeout: float = PROBE_TIMEOUT_S) -> AgentVersion:
    """The agent's version, or a TunnelError when it is pyngrok's wrapper, broken, silent or older than 3.30."""
    if is_pyngrok_wrapper(binary):
        raise wrapper_error(binary, real_agent)
    said = _run_version(binary, env, timeout)
    number = parse_version(said)
    if number is None:
        raise TunnelError(
            f"{binary} does not answer `--version` like an ngrok agent: {one_line(said, 200) or '(nothing)'}",
            f"Point PYNGROK_NGROK_PATH at the ngrok agent ({DOWNLOAD_URL}).",
        )
    version = AgentVersion(binary, one_line(said, 200), number)
    if not version.supported:
        raise TunnelError(
            f"the ngrok agent at {binary} is version {version.text}; wa-devtunnel needs {floor_text()} or newer",
            update_advice(binary),
        )
    return version
