"""What an earlier export left in --out: kept unless --clean, and never overwritten by another event.

The earlier manifest.json (written by wa-devtunnel) says which files are ours and which recorded
exchange each holds. A new export writes the same exchange under the same name again (re-exports
give clean diffs), takes new names for new events around every file already there (ours or not),
and lists the earlier fixtures it kept in the new manifest. `--clean` removes the earlier manifest's
files first, and nothing else.
"""

from __future__ import annotations

import json
import os
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from wa_devtunnel.engine.export.naming import MANIFEST_NAME

# What an older export of ours may have written: only such names are ever removed.
_OUR_FILE = re.compile(r"[a-z0-9_][a-z0-9_.-]*\.json")


@dataclass(frozen=True, slots=True)
class EarlierExport:
    """The directory as the new export finds it."""

    entries: tuple[dict[str, Any], ...] = ()  # the earlier manifest's entries whose file is still there
    present: frozenset[str] = frozenset()  # every name in the directory: a new fixture never takes one
    removed: int = 0  # files --clean removed
    names_by_id: Mapping[str, str] = field(default_factory=dict)  # recorded exchange id -> its earlier name


def earlier_export(out_dir: Path, clean: bool) -> EarlierExport:
    """Read the earlier manifest; with `clean`, remove the files it lists (ours by name and manifest)."""
    entries = _manifest_entries(out_dir / MANIFEST_NAME)
    removed = 0
    if clean:
        for entry in entries:
            path = out_dir / entry["name"]
            if path.is_file() and not path.is_symlink():
                path.unlink()
                removed += 1
        entries = []
    present = frozenset(os.listdir(out_dir)) - {MANIFEST_NAME}
    kept = tuple(entry for entry in entries if entry["name"] in present)
    by_id = {str(entry["id"]): entry["name"] for entry in kept if isinstance(entry.get("id"), str) and entry["id"]}
    return EarlierExport(kept, present, removed, by_id)


def _manifest_entries(manifest: Path) -> list[dict[str, Any]]:
    """The entries of a manifest wa-devtunnel wrote, with names that can only be our fixtures' names."""
    try:
        data = json.loads(manifest.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return []
    if not isinstance(data, dict) or not str(data.get("generator", "")).startswith("wa-devtunnel"):
        return []
    entries = data.get("fixtures")
    if not isinstance(entries, list):
        return []
    found: dict[str, dict[str, Any]] = {}
    for entry in entries:
        name = entry.get("name") if isinstance(entry, dict) else None
        if isinstance(name, str) and name != MANIFEST_NAME and _OUR_FILE.fullmatch(name):
            found.setdefault(name, entry)
    return list(found.values())
