"""After a kill -9 the next start stops the agent the dead instance left and deletes its token files."""

from __future__ import annotations

import contextlib
import os
import shutil
import stat
from pathlib import Path

from wa_devtunnel.engine.channel.address import CHANNEL_DIR_PREFIX
from wa_devtunnel.engine.instance import is_alive, load_instance, remove_instance
from wa_devtunnel.engine.processes import command_line, is_same_process, process_identity, stop_recorded_process
from wa_devtunnel.engine.tunnel.agent_group import group_members, stop_group
from wa_devtunnel.engine.tunnel.provider import AGENT_WORKDIR_PREFIX, LEGACY_AGENT_WORKDIR_PREFIX, AgentFootprint

AGENT_WORKDIR_PREFIXES = (AGENT_WORKDIR_PREFIX, LEGACY_AGENT_WORKDIR_PREFIX)


def _our_workdir(path: Path, prefix: str | tuple[str, ...] = AGENT_WORKDIR_PREFIXES) -> bool:
    """Only a real directory we created (name, owner): a tampered instance file deletes nothing else."""
    try:
        info = path.lstat()
    except OSError:
        return False
    owner_ok = not hasattr(os, "getuid") or info.st_uid == os.getuid()
    return stat.S_ISDIR(info.st_mode) and path.name.startswith(prefix) and owner_ok


def _remove_files(agent: AgentFootprint) -> bool:
    """Delete the agent's temp files and directory; True if anything was there."""
    workdir = Path(agent.workdir)
    if not _our_workdir(workdir):
        return False
    for name in agent.files:
        path = Path(name)
        if path.parent == workdir:
            path.unlink(missing_ok=True)
    shutil.rmtree(workdir, ignore_errors=True)
    return True


def _leads_its_group(pid: int) -> bool:
    with contextlib.suppress(OSError):
        return os.getpgid(pid) == pid
    return False


def _stop_agent(agent: AgentFootprint) -> bool | None:
    """Stop the agent and all it started (its process group); None if nothing of it runs any more.

    The recorded pid must still be the very process we started (start time and marker) before its
    group is signalled; if it is gone, only members of its group carrying our marker are stopped.
    """
    leader = is_same_process(agent.pid, agent.identity, agent.marker)
    strays = [pid for pid in group_members(agent.pid) if pid != agent.pid and agent.marker in command_line(pid)]
    if not leader and not strays:
        return None
    if leader and _leads_its_group(agent.pid):
        return stop_group(agent.pid)
    stopped = stop_recorded_process(agent.pid, agent.identity, agent.marker) if leader else True
    for pid in strays:
        identity = process_identity(pid)
        stopped = (identity is not None and stop_recorded_process(pid, identity, agent.marker)) and stopped
    return stopped


def clear_leftovers(recordings_dir: Path) -> str | None:
    """Clean up after a dead instance of this project; what to tell the developer, or None if nothing."""
    instance = load_instance(recordings_dir)
    if instance is None or is_alive(instance):
        return None  # nothing recorded, or another wa-devtunnel is running here: leave it all alone
    done: list[str] = []
    agent = instance.agent
    stopped = _stop_agent(agent) if agent is not None and agent.pid > 0 and agent.marker else None
    if agent is not None and stopped:
        done.append(f"stopped its tunnel agent (pid {agent.pid}), which was still serving its public URL")
    elif agent is not None and stopped is False:
        done.append(f"could not stop its tunnel agent (pid {agent.pid}): stop it yourself (kill -- -{agent.pid})")
    if agent is not None and _remove_files(agent):
        done.append("deleted its tunnel agent's private files")
    if instance.channel and _our_workdir(Path(instance.channel).parent, CHANNEL_DIR_PREFIX):
        shutil.rmtree(Path(instance.channel).parent, ignore_errors=True)  # its socket: nobody listens there now
    remove_instance(recordings_dir, owner=instance.pid)
    if not done:
        done.append("removed its stale instance file")
    return f"A previous wa-devtunnel (pid {instance.pid}) ended without cleaning up: {'; '.join(done)}."
