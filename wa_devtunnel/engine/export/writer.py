"""Write selected recorded events as fixture files plus a manifest, scrubbed unless asked otherwise.

A scrubbed fixture is re-serialised in Meta's style (compact, non-ASCII escaped, "\\/"), so it looks
like what Meta sends; an unscrubbed one is the exact recorded bytes, so its old signature still holds.
Every file is private to its owner (0600, in a 0700 directory when we create it), scrubbed or not:
even scrubbed, a fixture is the business's traffic, and --no-scrub writes customers' data as is.
"""

from __future__ import annotations

import json
import os
import re
import tempfile
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from wa_devtunnel import __version__
from wa_devtunnel.engine.export.naming import MANIFEST_NAME, FixtureNamer, fixture_stem
from wa_devtunnel.engine.replay.source import RecordedExchange
from wa_devtunnel.rules.decode.payload import decode_payload
from wa_devtunnel.rules.samples.payloads import meta_json
from wa_devtunnel.rules.scrub.payload import Scrubber

MANIFEST_FORMAT = 1
GENERATOR = f"wa-devtunnel {__version__}"
# What an older export of ours may have written: removed before a new export, nothing else is.
_OUR_FILE = re.compile(r"[a-z0-9_][a-z0-9_.-]*\.json")
PRIVATE_DIR, PRIVATE_FILE = 0o700, 0o600

ProgressCallback = Callable[[int, int], None]


class ExportError(Exception):
    """The output directory cannot be used (exit 2: bad usage, nothing written)."""


@dataclass(frozen=True, slots=True)
class ExportedFixture:
    """One manifest entry: what the file holds and where it was recorded."""

    name: str
    field: str
    kinds: tuple[str, ...]
    items: int
    headline: str
    session: str
    seq: int | None
    id: str
    scrubbed: bool

    def to_dict(self) -> dict[str, Any]:
        """The manifest's JSON form."""
        return {
            "name": self.name,
            "field": self.field,
            "kinds": list(self.kinds),
            "items": self.items,
            "headline": self.headline,
            "session": self.session,
            "seq": self.seq,
            "id": self.id,
            "scrubbed": self.scrubbed,
        }


@dataclass(frozen=True, slots=True)
class ExportResult:
    """What was written, and which selected events could not become fixtures (and why)."""

    out_dir: Path
    manifest: Path
    fixtures: tuple[ExportedFixture, ...]
    skipped: tuple[str, ...]
    scrubbed: bool
    keep_text: bool


def prepare_out_dir(out_dir: Path) -> None:
    """Create the directory (0700), and remove the files a previous export listed in its manifest."""
    if out_dir.exists() and not out_dir.is_dir():
        raise ExportError(f"--out {out_dir} exists and is not a directory")
    try:
        if not out_dir.exists():
            out_dir.mkdir(mode=PRIVATE_DIR, parents=True)
            out_dir.chmod(PRIVATE_DIR)  # whatever the umask; an existing directory keeps the mode its owner chose
    except FileExistsError:
        pass
    except OSError as exc:
        raise ExportError(f"--out {out_dir}: cannot create it ({exc.strerror or exc})") from exc
    for name in _previous_export(out_dir / MANIFEST_NAME):
        (out_dir / name).unlink(missing_ok=True)


def _previous_export(manifest: Path) -> list[str]:
    try:
        data = json.loads(manifest.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return []
    if not isinstance(data, dict) or not str(data.get("generator", "")).startswith("wa-devtunnel"):
        return []
    entries = data.get("fixtures")
    names = [entry.get("name") for entry in entries if isinstance(entry, dict)] if isinstance(entries, list) else []
    return [n for n in names if isinstance(n, str) and n != MANIFEST_NAME and _OUR_FILE.fullmatch(n)]


def write_private(path: Path, data: bytes) -> None:
    """Owner-only (0600) through a file renamed into place: never half-read, a planted symlink not followed."""
    handle, temporary = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(handle, "wb") as file:
            file.write(data)
        os.chmod(temporary, PRIVATE_FILE)
        os.replace(temporary, path)
    except BaseException:
        Path(temporary).unlink(missing_ok=True)
        raise


def _document(body: bytes) -> dict[str, Any] | str:
    """The parsed payload, or why this event cannot be a fixture."""
    try:
        document = json.loads(body)
    except (ValueError, RecursionError):
        return "body is not JSON"
    return document if isinstance(document, dict) else "body is not a JSON object"


def _learn_everyone(events: Sequence[RecordedExchange], scrubber: Scrubber) -> None:
    """Meet every customer of the export first: a name seen in file 9 is then also found in file 1's texts."""
    for event in events:
        document = _document(event.body)
        if isinstance(document, dict):
            try:
                scrubber.learn(document)
            except RecursionError:
                continue


def _fixture_bytes(body: bytes, scrubber: Scrubber | None) -> bytes | str:
    """The bytes to write, or why this event cannot be a fixture."""
    if scrubber is None:
        return body
    document = _document(body)
    if isinstance(document, str):
        return document
    try:
        return meta_json(scrubber.scrub(document, learned=True))
    except RecursionError:
        return "body is nested too deeply to scrub"


def _kinds(items: Sequence[dict[str, Any]]) -> tuple[str, ...]:
    return tuple(dict.fromkeys(str(item.get("kind")) for item in items))


def _export_one(
    event: RecordedExchange, out_dir: Path, namer: FixtureNamer, scrubber: Scrubber | None
) -> ExportedFixture | str:
    """Write one fixture; return its manifest entry, or why the event cannot be one."""
    data = _fixture_bytes(event.body, scrubber)
    if isinstance(data, str):
        return data
    summary = decode_payload(data)
    if not summary.ok:
        return summary.problem
    items = summary.to_dict()["items"]
    name = namer.name(fixture_stem(items, summary.fields))
    write_private(out_dir / name, data)
    seq = event.record.get("seq")
    cleared = scrubber.scrub_text if scrubber is not None else str
    return ExportedFixture(
        name=name,
        field=",".join(summary.fields),
        kinds=_kinds(items),
        items=len(items),
        headline=summary.headline,
        session=cleared(event.session.name),
        seq=seq if isinstance(seq, int) else None,
        id=str(event.record.get("id", "")),
        scrubbed=scrubber is not None,
    )


def export_fixtures(
    events: Sequence[RecordedExchange],
    out_dir: Path,
    *,
    scrub: bool = True,
    keep_text: bool = False,
    progress: ProgressCallback | None = None,
) -> ExportResult:
    """Write one file per event and manifest.json; the caller ran prepare_out_dir first."""
    scrubber = Scrubber(keep_text=keep_text) if scrub else None
    if scrubber is not None:
        _learn_everyone(events, scrubber)
    namer = FixtureNamer()
    fixtures: list[ExportedFixture] = []
    skipped: list[str] = []
    total = len(events)
    for done, event in enumerate(events, start=1):
        outcome = _export_one(event, out_dir, namer, scrubber)
        if isinstance(outcome, ExportedFixture):
            fixtures.append(outcome)
        else:
            skipped.append(f"{event.session.name} seq {event.record.get('seq')}: {outcome}")
        if progress is not None:
            progress(done, total)
    manifest = out_dir / MANIFEST_NAME
    write_private(manifest, _manifest_text(fixtures, scrub, keep_text).encode("ascii"))
    return ExportResult(out_dir, manifest, tuple(fixtures), tuple(skipped), scrub, keep_text)


def _manifest_text(fixtures: Sequence[ExportedFixture], scrub: bool, keep_text: bool) -> str:
    """Indented JSON with one line per fixture, so a re-export reads well in a git diff."""
    head = {
        "generator": GENERATOR,
        "format": MANIFEST_FORMAT,
        "scrubbed": scrub,
        "keep_text": keep_text and scrub,
        "count": len(fixtures),
    }
    lines = [f"  {json.dumps(key)}: {json.dumps(value)}," for key, value in head.items()]
    entries = ",\n".join(f"    {json.dumps(f.to_dict(), ensure_ascii=True)}" for f in fixtures)
    body = f'  "fixtures": [\n{entries}\n  ]' if fixtures else '  "fixtures": []'
    return "{\n" + "\n".join(lines) + "\n" + body + "\n}\n"
