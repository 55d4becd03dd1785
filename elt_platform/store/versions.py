"""Immutable table versions: Parquet files addressed by a content hash, never overwritten."""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import uuid
from dataclasses import dataclass
from pathlib import Path

import duckdb

from elt_platform.errors import UnknownVersion
from elt_platform.store.metadata import MetadataStore, utc_now


@dataclass(frozen=True)
class Version:
    asset: str
    version_id: str
    path: Path
    rows: int
    bytes: int
    schema: tuple[tuple[str, str], ...]
    created_at: str
    reused: bool = False

    @property
    def schema_dict(self) -> dict[str, str]:
        return dict(self.schema)

    @property
    def directory(self) -> Path:
        return self.path.parent

    @property
    def scan_sql(self) -> str:
        """A DuckDB table function reading every Parquet part of this version."""
        return f"read_parquet({sql_literal(str(self.directory / '*.parquet'))})"


def asset_dir_name(asset: str) -> str:
    """Filesystem-safe folder for an asset key string such as `raw/orders`."""
    return asset.replace("/", "__")


def sql_literal(value: str) -> str:
    return "'" + value.replace("'", "''") + "'"


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


class VersionStore:
    """Writes, finds and deletes immutable versions under `<root>/versions`."""

    def __init__(self, root: Path, meta: MetadataStore) -> None:
        self.root = Path(root)
        self.meta = meta
        self.versions_dir = self.root / "versions"
        self.pending_dir = self.versions_dir / "_pending"

    def new_pending_path(self) -> Path:
        self.pending_dir.mkdir(parents=True, exist_ok=True)
        return self.pending_dir / f"{uuid.uuid4().hex}.parquet"

    def write_query(
        self,
        con: duckdb.DuckDBPyConnection,
        asset: str,
        select_sql: str,
        **record: object,
    ) -> Version:
        """Materialize `select_sql` into a new version of `asset` (or reuse identical content)."""
        pending = self.new_pending_path()
        try:
            con.execute(
                f"COPY ({select_sql}) TO {sql_literal(str(pending))} "
                "(FORMAT parquet, COMPRESSION zstd, ROW_GROUP_SIZE 1000000)"
            )
            return self.commit_file(con, asset, pending, **record)
        finally:
            pending.unlink(missing_ok=True)

    def commit_file(
        self,
        con: duckdb.DuckDBPyConnection,
        asset: str,
        pending: Path,
        *,
        environment: str,
        run_id: str | None = None,
        code_version: str | None = None,
        inputs: dict[str, str] | None = None,
        params: dict[str, object] | None = None,
    ) -> Version:
        """Move a finished Parquet file into the store under its content hash and record it."""
        version_id, rows, schema = content_fingerprint(con, pending)
        final = self.versions_dir / asset_dir_name(asset) / version_id / "data.parquet"
        reused = final.exists()
        if reused:
            pending.unlink(missing_ok=True)
        else:
            final.parent.mkdir(parents=True, exist_ok=True)
            os.replace(pending, final)
        size = final.stat().st_size
        now = utc_now()
        with self.meta.transaction() as tx:
            tx.execute(
                "INSERT OR IGNORE INTO versions (asset, version_id, path, rows, bytes, schema_json,"
                " created_at, environment, run_id, code_version, inputs_json, params_json)"
                " VALUES (?,?,?,?,?,?,?,?,?,?,?,?)",
                (
                    asset, version_id, str(final), rows, size, json.dumps(schema), now,
                    environment, run_id, code_version, json.dumps(inputs or {}, sort_keys=True),
                    json.dumps(params or {}, sort_keys=True, default=str),
                ),
            )  # fmt: skip
            tx.execute(
                "INSERT INTO materializations (asset, version_id, environment, run_id, created_at,"
                " reused) VALUES (?,?,?,?,?,?)",
                (asset, version_id, environment, run_id, now, int(reused)),
            )
        return self.get(asset, version_id, reused=reused)

    def get(self, asset: str, version_id: str, *, reused: bool = False) -> Version:
        with self.meta.read() as con:
            row = con.execute(
                "SELECT * FROM versions WHERE asset = ? AND version_id = ?", (asset, version_id)
            ).fetchone()
        if row is None:
            raise UnknownVersion(f"no version {version_id!r} of asset {asset!r}")
        return _version_from_row(row, reused)

    def list(self, asset: str | None = None) -> list[Version]:
        sql, args = "SELECT * FROM versions", ()
        if asset is not None:
            sql, args = sql + " WHERE asset = ?", (asset,)
        with self.meta.read() as con:
            return [_version_from_row(r) for r in con.execute(sql + " ORDER BY created_at", args)]

    def delete(self, asset: str, version_id: str) -> None:
        """Remove a version's files and record; callers must check it is unreferenced."""
        version = self.get(asset, version_id)
        with self.meta.transaction() as tx:
            tx.execute(
                "DELETE FROM versions WHERE asset = ? AND version_id = ?", (asset, version_id)
            )
        shutil.rmtree(version.path.parent, ignore_errors=True)


def _version_from_row(row, reused: bool = False) -> Version:
    return Version(
        asset=row["asset"],
        version_id=row["version_id"],
        path=Path(row["path"]),
        rows=row["rows"],
        bytes=row["bytes"],
        schema=tuple(tuple(x) for x in json.loads(row["schema_json"])),
        created_at=row["created_at"],
        reused=reused,
    )
