"""Write selected recorded events as fixture files plus a manifest, scrubbed unless asked otherwise.

A scrubbed fixture is re-serialised in Meta's style (compact, non-ASCII escaped, "\\/"), so it looks
like what Meta sends; an unscrubbed one is the exact recorded bytes, so its old signature still holds.
Every file is private to its owner (0600, in a 0700 directory when we create it), scrubbed or not:
even scrubbed, a fixture is the business's traffic, and --no-scrub writes customers' data as is.
"""

from __future__ import annotations

import json
import os
import tempfile
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from wa_devtunnel import __version__
from wa_devtunnel.engine.export.earlier import EarlierExport, earlier_export
from wa_devtunnel.engine.export.naming import MANIFEST_NAME, FixtureNamer, fixture_stem
from wa_devtunnel.engine.replay.source import RecordedExchange
from wa_devtunnel.rules.decode.payload import decode_payload
from wa_devtunnel.rules.samples.payloads import meta_json
from wa_devtunnel.rules.scrub.payload import Scrubber

MANIFEST_FORMAT = 1
GENERATOR = f"wa-devtunnel {__version__}"
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
    kept: int = 0  # earlier fixtures left as they were (listed in the manifest again)
    removed: int = 0  # earlier fixtures --clean removed


def prepare_out_dir(out_dir: Path, clean: bool = False) -> EarlierExport:
    """Create the directory (0700); say what an earlier export left there (with `clean`: remove its files)."""
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
    try:
        return earlier_export(out_dir, clean)
    except OSError as exc:
        raise ExportError(f"--out {out_dir}: cannot read it ({exc.strerror or exc})") from exc


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
    event: RecordedExchange, out_dir: Path, namer: FixtureNamer, scrubber: Scrubber | None, earlier: EarlierExport
) -> ExportedFixture | str:
    """Write one fixture; return its manifest entry, or why the event cannot be one."""
    data = _fixture_bytes(event.body, scrubber)
    if isinstance(data, str):
        return data
    summary = decode_payload(data)
    if not summary.ok:
        return summary.problem
    items = summary.to_dict()["items"]
    record_id = str(event.record.get("id", ""))
    name = namer.name(fixture_stem(items, summary.fields), earlier.names_by_id.get(record_id))
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
        id=record_id,
        scrubbed=scrubber is not None,
    )


def export_fixtures(
    events: Sequence[RecordedExchange],
    out_dir: Path,
    *,
    scrub: bool = True,
    keep_text: bool = False,
    progress: ProgressCallback | None = None,
    earlier: EarlierExport | None = None,
) -> ExportResult:
    """Write one file per event and manifest.json, keeping what `earlier` (from prepare_out_dir) found there."""
    earlier = earlier if earlier is not None else earlier_export(out_dir, clean=False)
    scrubber = Scrubber(keep_text=keep_text) if scrub else None
    if scrubber is not None:
        _learn_everyone(events, scrubber)
    namer = FixtureNamer(taken=earlier.present)
    fixtures: list[ExportedFixture] = []
    skipped: list[str] = []
    total = len(events)
    for done, event in enumerate(events, start=1):
        outcome = _export_one(event, out_dir, namer, scrubber, earlier)
        if isinstance(outcome, ExportedFixture):
            fixtures.append(outcome)
        else:
            skipped.append(f"{event.session.name} seq {event.record.get('seq')}: {outcome}")
        if progress is not None:
            progress(done, total)
    manifest = out_dir / MANIFEST_NAME
    entries = _merged_entries(earlier.entries, fixtures)
    write_private(manifest, _manifest_text(entries, scrub, keep_text).encode("ascii"))
    kept = len(entries) - len(fixtures)
    return ExportResult(out_dir, manifest, tuple(fixtures), tuple(skipped), scrub, keep_text, kept, earlier.removed)


def _merged_entries(earlier: Sequence[dict[str, Any]], fixtures: Sequence[ExportedFixture]) -> list[dict[str, Any]]:
    """The earlier fixtures still there (a rewritten one in its place, with what it holds now), then the new."""
    written = {fixture.name: fixture.to_dict() for fixture in fixtures}
    entries = [written.pop(entry["name"], entry) for entry in earlier]
    return entries + list(written.values())


def _manifest_text(fixtures: Sequence[dict[str, Any]], scrub: bool, keep_text: bool) -> str:
    """Indented JSON with one line per fixture, so a re-export reads well in a git diff."""
    head = {
        "generator": GENERATOR,
        "format": MANIFEST_FORMAT,
        "scrubbed": scrub,
        "keep_text": keep_text and scrub,
        "count": len(fixtures),
    }
    lines = [f"  {json.dumps(key)}: {json.dumps(value)}," for key, value in head.items()]
    entries = ",\n".join(f"    {json.dumps(entry, ensure_ascii=True)}" for entry in fixtures)
    body = f'  "fixtures": [\n{entries}\n  ]' if fixtures else '  "fixtures": []'
    return "{\n" + "\n".join(lines) + "\n" + body + "\n}\n"
