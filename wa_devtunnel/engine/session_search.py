"""Free-text search over every file of a session: the recording, not a front end's memory, is the whole truth."""

from __future__ import annotations

from collections.abc import Iterable
from pathlib import Path

from wa_devtunnel.engine.exchange_view import text_in_record
from wa_devtunnel.engine.recording import read_recording


def search_recordings(parts: Iterable[Path], text: str) -> set[str]:
    """Ids of the exchanges whose body, path or diagnosis contains `text` (case-insensitive), in every part."""
    return {
        str(record.get("id"))
        for path in parts
        if path.exists()
        for record in read_recording(path).records
        if text_in_record(record, text)
    }
