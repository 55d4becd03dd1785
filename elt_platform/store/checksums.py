"""File checksums of committed versions: recorded at commit (size and SHA-256 of every Parquet
file), re-checked before a version's files are trusted again (reused by a later build, hard-linked
into a new version) and by `elt audit verify --data`."""

from __future__ import annotations

import hashlib
import json
from collections.abc import Iterable
from pathlib import Path

from elt_platform.errors import VersionTampered
from elt_platform.store.metadata import MetadataStore

FileEntries = dict[str, list]  # file name -> [size in bytes, sha256 hex]


def file_sha256(path: Path) -> str:
    with path.open("rb") as fh:
        return hashlib.file_digest(fh, "sha256").hexdigest()


def file_entries(paths: Iterable[Path]) -> FileEntries:
    """What to record for `paths`: each file's size and checksum, by name."""
    return {p.name: [p.stat().st_size, file_sha256(p)] for p in sorted(paths)}


def parse_entries(raw: str | None) -> FileEntries | None:
    return json.loads(raw) if raw else None


def file_problems(directory: Path, recorded: FileEntries, names: Iterable[str] | None = None):
    """One phrase per file of `directory` (or only `names`) that differs from its record:
    missing, another size (checked first, it costs nothing), another checksum; or unexpected."""
    problems = []
    wanted = sorted(recorded) if names is None else sorted(names)
    for name in wanted:
        path = directory / name
        if name not in recorded:
            problems.append(f"{name} is not recorded")
        elif not path.exists():
            problems.append(f"{name} is missing")
        elif path.stat().st_size != recorded[name][0]:
            problems.append(f"{name} has {path.stat().st_size} bytes, {recorded[name][0]} recorded")
        elif file_sha256(path) != recorded[name][1]:
            problems.append(f"{name} does not match its recorded checksum")
    if names is None:
        extra = sorted(p.name for p in directory.glob("*.parquet") if p.name not in recorded)
        problems += [f"{name} was added after commit" for name in extra]
    return problems


def refuse_damaged(
    asset: str, version_id: str, directory: Path | str, problems: list[str], *, stored=False
) -> None:
    """Fail closed: a version whose files changed after commit is never trusted again
    (`stored`: `directory` is its place in the object store, fetched from there)."""
    if problems:
        where = f"in the object store ({directory})" if stored else "on disk"
        raise VersionTampered(
            f"version {version_id} of {asset} was changed {where} after it was committed: "
            + "; ".join(problems),
            hint=f"`elt audit verify --data` lists every damaged version; move {directory} "
            "aside (keep it as evidence) and build again to rewrite it",
        )


def recorded_files(meta: MetadataStore, asset: str, version_id: str) -> FileEntries | None:
    """Size and checksum of each file of a version as recorded at commit (None: unknown)."""
    with meta.read() as con:
        row = con.execute(
            "SELECT files_json FROM versions WHERE asset = ? AND version_id = ?",
            (asset, version_id),
        ).fetchone()
    return parse_entries(row[0]) if row is not None else None


def check_files(
    meta: MetadataStore,
    asset: str,
    version_id: str,
    directory: Path,
    names: Iterable[str] | None = None,
) -> bool:
    """Refuse (VersionTampered) files of a version that differ from their record; False when
    nothing is recorded to compare with."""
    recorded = recorded_files(meta, asset, version_id)
    if recorded is None:
        return False
    refuse_damaged(asset, version_id, directory, file_problems(directory, recorded, names))
    return True


def record_files(tx, asset: str, version_id: str, files: Iterable[Path], *, fresh: bool) -> None:
    """Record size and checksum of a version's files: always for files just written (also a
    version rewritten after its damaged folder was moved aside), for reused ones only if none
    are recorded yet (stores from before checksums)."""
    condition = "" if fresh else " AND files_json IS NULL"
    tx.execute(
        f"UPDATE versions SET files_json = ? WHERE asset = ? AND version_id = ?{condition}",
        (json.dumps(file_entries(files), sort_keys=True), asset, version_id),
    )
