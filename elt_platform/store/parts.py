"""Parts of a multi-part version: per-part row-hash stats that add up to the version's content id,
kept in a `_parts.json` sidecar so a new version can reuse old parts without re-reading them."""

from __future__ import annotations

import hashlib
import json
import os
import shutil
from dataclasses import dataclass
from pathlib import Path

import duckdb

from elt_platform.sqlident import quote_ident, sql_literal

PARTS_FILE = "_parts.json"  # per-part stats of a multi-part version, next to its Parquet parts


@dataclass(frozen=True)
class PartStats:
    """Row count and row-hash sums of one Parquet part; they add up to the version's content id."""

    rows: int
    h1: int
    h2: int


def part_fingerprints(
    con: duckdb.DuckDBPyConnection, files: list[Path], schema: tuple[tuple[str, str], ...]
) -> dict[Path, PartStats]:
    """Stats of Parquet files sharing `schema`, in one parallel scan (same hashes as
    content_fingerprint: `hash()` of the row struct equals `hash(t)` of the row)."""
    if not files:
        return {}
    listing = "[" + ", ".join(sql_literal(str(f)) for f in files) + "]"
    row = "{" + ", ".join(f"{sql_literal(c)}: {quote_ident(c)}" for c, _ in schema) + "}"
    found = {
        r[0]: PartStats(int(r[1]), int(r[2]), int(r[3]))
        for r in con.execute(
            "SELECT _elt_part, count(*), coalesce(sum(hash(r)::HUGEINT), 0),"
            " coalesce(sum(hash(r, 'elt')::HUGEINT), 0)"
            f" FROM (SELECT _elt_part, {row} AS r"
            f" FROM read_parquet({listing}, filename = '_elt_part')) GROUP BY _elt_part"
        ).fetchall()
    }
    return {f: found.get(str(f), PartStats(0, 0, 0)) for f in files}


def combined_content_id(schema: tuple[tuple[str, str], ...], stats: list[PartStats]) -> str:
    """The content id of a version made of parts: equal to content_fingerprint of one file
    holding the same rows, whatever the split into parts."""
    rows = sum(s.rows for s in stats)
    h1, h2 = sum(s.h1 for s in stats), sum(s.h2 for s in stats)
    blob = json.dumps([[list(c) for c in schema], rows, str(h1), str(h2)])
    return hashlib.sha256(blob.encode()).hexdigest()[:16]


def link_or_copy(source: Path, target: Path) -> None:
    """Hard-link an immutable part into another version (a copy across filesystems)."""
    try:
        os.link(source, target)
    except OSError:
        shutil.copyfile(source, target)


def rename_into_place(staging: Path, final: Path) -> bool:
    """Move a finished folder to its content-addressed place; False when a concurrent writer of
    the same content got there first (the caller discards its own copy)."""
    final.parent.mkdir(parents=True, exist_ok=True)
    try:
        os.rename(staging, final)
    except OSError:
        if not final.exists():
            raise
        return False
    return True


def directory_part_stats(
    con: duckdb.DuckDBPyConnection, directory: Path, schema: tuple
) -> dict[str, PartStats]:
    sidecar = directory / PARTS_FILE
    if sidecar.exists():
        parts = json.loads(sidecar.read_text())["parts"]
        return {n: PartStats(int(p["rows"]), int(p["h1"]), int(p["h2"])) for n, p in parts.items()}
    files = sorted(directory.glob("*.parquet"))
    return {f.name: s for f, s in part_fingerprints(con, files, tuple(schema)).items()}


def content_fingerprint(con: duckdb.DuckDBPyConnection, parquet: Path) -> tuple[str, int, tuple]:
    """Order-independent content id of a Parquet file: schema, row count and two row-hash sums."""
    src = f"read_parquet({sql_literal(str(parquet))})"
    schema = tuple(
        (row[0], row[1]) for row in con.execute(f"DESCRIBE SELECT * FROM {src}").fetchall()
    )
    rows, h1, h2 = con.execute(
        f"SELECT count(*), coalesce(sum(hash(t)::HUGEINT), 0), "
        f"coalesce(sum(hash(t, 'elt')::HUGEINT), 0) FROM {src} AS t"
    ).fetchone()
    digest = hashlib.sha256(json.dumps([schema, rows, str(h1), str(h2)]).encode()).hexdigest()
    return digest[:16], int(rows), schema


def parquet_schema(con: duckdb.DuckDBPyConnection, path: Path) -> tuple[tuple[str, str], ...]:
    """Column names and DuckDB types of one Parquet file (reads only its footer)."""
    sql = f"DESCRIBE SELECT * FROM read_parquet({sql_literal(str(path))})"
    return tuple((row[0], row[1]) for row in con.execute(sql).fetchall())
