"""Data integrity (`elt audit verify --data`): re-hash the content of every version a live
environment or release points at and compare it with the version id (the content hash it was
committed under), naming each mismatch, the file that changed and who serves it."""

from __future__ import annotations

import json
import random
import time
from dataclasses import dataclass, field
from pathlib import Path

import duckdb

from elt_platform.sqlident import sql_literal
from elt_platform.store.checksums import file_problems, recorded_files
from elt_platform.store.metadata import MetadataStore
from elt_platform.store.parts import (
    PARTS_FILE,
    PartStats,
    combined_content_id,
    parquet_schema,
    part_fingerprints,
)
from elt_platform.store.versions import VersionStore

_LIVE_SQL = """
SELECT asset, version_id, group_concat(place, ', ') FROM (
    SELECT asset, version_id, environment AS place FROM env_pointers
    UNION
    SELECT e.asset, e.version_id, 'release ' || e.release_id FROM release_entries e
    JOIN releases r USING (release_id) WHERE r.collected_at IS NULL
) AS live GROUP BY asset, version_id ORDER BY asset, version_id
"""


@dataclass
class DataReport:
    live_versions: int
    checked: int = 0
    rows: int = 0
    bytes: int = 0
    seconds: float = 0.0
    mismatches: list[str] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return not self.mismatches

    @property
    def rows_per_second(self) -> float:
        return self.rows / self.seconds if self.seconds else 0.0


def live_versions(meta: MetadataStore) -> list[tuple[str, str, str]]:
    """(asset, version id, who serves it) of every version an environment or kept release uses."""
    with meta.read() as con:
        return [(r[0], r[1], r[2]) for r in con.execute(_LIVE_SQL)]


def verify_data(
    meta: MetadataStore, versions: VersionStore, *, sample: float | None = None, seed: int = 0
) -> DataReport:
    """Re-hash every live version (or a seeded random `sample` fraction of them, at least one)."""
    live = live_versions(meta)
    report = DataReport(live_versions=len(live))
    chosen = live
    if sample is not None and live:
        count = max(1, round(len(live) * sample))
        chosen = sorted(random.Random(seed).sample(live, min(count, len(live))))
    started = time.perf_counter()
    con = duckdb.connect()
    try:
        for asset, version_id, places in chosen:
            problem = _check_version(con, meta, versions, asset, version_id, report)
            if problem:
                report.mismatches.append(f"{asset}@{version_id} (used by {places}): {problem}")
            report.checked += 1
    finally:
        con.close()
    report.seconds = time.perf_counter() - started
    return report


def _check_version(
    con: duckdb.DuckDBPyConnection,
    meta: MetadataStore,
    versions: VersionStore,
    asset: str,
    version_id: str,
    report: DataReport,
) -> str | None:
    version = versions.get(asset, version_id)
    directory = version.directory
    files = sorted(directory.glob("*.parquet"))
    if not files:
        return f"no data files in {directory}"
    recorded = recorded_files(meta, asset, version_id)
    changed = file_problems(directory, recorded) if recorded is not None else []
    report.bytes += sum(f.stat().st_size for f in files)
    try:
        changed += [
            f"{f.name} has columns {list(schema)}, recorded {[list(c) for c in version.schema]}"
            for f in files
            if (schema := parquet_schema(con, f)) != version.schema
        ]
        rows, actual = _content_id(con, files, version.schema)
    except duckdb.Error as exc:
        first = str(exc).strip().splitlines()[0]
        return "; ".join([*changed, f"its files cannot be read ({first})"])
    report.rows += rows
    if actual == version_id and not changed:
        return None
    details = changed or _changed_parts(directory, part_fingerprints(con, files, version.schema))
    verdict = f"content hashes to {actual}" if actual != version_id else "content hash matches"
    return "; ".join([verdict, *details])


def _content_id(
    con: duckdb.DuckDBPyConnection, files: list[Path], schema: tuple
) -> tuple[int, str]:
    """(rows, content id) of a version's files in one scan: the row-hash sums of every part
    add up to those of the whole (per-part stats are computed only to name a damaged part)."""
    listing = "[" + ", ".join(sql_literal(str(f)) for f in files) + "]"
    rows, h1, h2 = con.execute(
        "SELECT count(*), coalesce(sum(hash(t)::HUGEINT), 0),"
        f" coalesce(sum(hash(t, 'elt')::HUGEINT), 0) FROM read_parquet({listing}) AS t"
    ).fetchone()
    return int(rows), combined_content_id(schema, [PartStats(int(rows), int(h1), int(h2))])


def _changed_parts(directory: Path, stats: dict) -> list[str]:
    """Which parts differ from the stats their version's sidecar recorded (when it has one)."""
    sidecar = directory / PARTS_FILE
    if not sidecar.exists():
        return [f"{p.name} was changed" for p in stats] if len(stats) == 1 else []
    recorded = json.loads(sidecar.read_text())["parts"]
    out = []
    for path, s in stats.items():
        want = recorded.get(path.name)
        if want is None:
            out.append(f"{path.name} was added")
        elif (s.rows, str(s.h1), str(s.h2)) != (int(want["rows"]), want["h1"], want["h2"]):
            out.append(f"{path.name} was changed")
    return out
