"""Immutable table versions: Parquet files addressed by a content hash, never overwritten. Each
file's size and checksum are recorded at commit and re-checked before an existing version's
files are trusted again (`checksums.py`)."""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import duckdb

from elt_platform.errors import UnknownVersion
from elt_platform.sqlident import sql_literal
from elt_platform.store.builds import delete_builds_of, insert_build
from elt_platform.store.checksums import check_files, record_files, refuse_damaged
from elt_platform.store.metadata import MetadataStore, utc_now
from elt_platform.store.parts import (
    PARTS_FILE,
    PartStats,
    combined_content_id,
    directory_part_stats,
    link_or_copy,
    part_fingerprints,
)


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
    build_id: str | None = None  # set on the Version a commit returns: the build it recorded

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
        masked: bool = False,
    ) -> Version:
        """Move a finished Parquet file into the store under its content hash and record it
        (the version once, the build every time; `masked`: computed from masked inputs)."""
        version_id, rows, schema = content_fingerprint(con, pending)
        final = self.versions_dir / asset_dir_name(asset) / version_id / "data.parquet"
        reused = final.exists()
        if reused:
            pending.unlink(missing_ok=True)
            self._check_reused(con, asset, version_id, final.parent)  # tampered -> refused
        else:
            final.parent.mkdir(parents=True, exist_ok=True)
            os.replace(pending, final)
        build_id = self._record(
            asset,
            version_id,
            path=final,
            rows=rows,
            size=final.stat().st_size,
            schema=schema,
            environment=environment,
            run_id=run_id,
            code_version=code_version,
            inputs=inputs,
            params=params,
            masked=masked,
            files=[final],
            reused=reused,
        )
        return self.get(asset, version_id, reused=reused, build_id=build_id)

    def _record(
        self,
        asset: str,
        version_id: str,
        *,
        path: Path,
        rows: int,
        size: int,
        schema: tuple,
        environment: str,
        run_id: str | None,
        code_version: str | None,
        inputs: dict[str, str] | None,
        params: dict[str, object] | None,
        masked: bool,
        files: list[Path],
        reused: bool,
    ) -> str:
        """The version row (first commit wins: content is content), the size and checksum of its
        files, and a build row, together."""
        with self.meta.transaction() as tx:
            tx.execute(
                "INSERT OR IGNORE INTO versions (asset, version_id, path, rows, bytes, schema_json,"
                " created_at, environment, run_id, code_version, inputs_json, params_json)"
                " VALUES (?,?,?,?,?,?,?,?,?,?,?,?)",
                (
                    asset,
                    version_id,
                    str(path),
                    rows,
                    size,
                    json.dumps(schema),
                    utc_now(),
                    environment,
                    run_id,
                    code_version,
                    json.dumps(inputs or {}, sort_keys=True),
                    json.dumps(params or {}, sort_keys=True, default=str),
                ),
            )
            record_files(tx, asset, version_id, files, fresh=not reused)
            return insert_build(
                tx,
                asset=asset,
                version_id=version_id,
                environment=environment,
                run_id=run_id,
                code_version=code_version,
                inputs=inputs,
                params=params,
                masked=masked,
            )

    def _check_reused(
        self, con: duckdb.DuckDBPyConnection, asset: str, version_id: str, directory: Path
    ) -> None:
        """Before trusting files already in the store: their recorded size and checksum, or
        (nothing recorded: a crash before the record, or an older store) their content hash."""
        if check_files(self.meta, asset, version_id, directory):
            return
        files = sorted(directory.glob("*.parquet"))
        schema = parquet_schema(con, files[0]) if files else ()
        actual = combined_content_id(schema, list(part_fingerprints(con, files, schema).values()))
        if actual != version_id:
            refuse_damaged(asset, version_id, directory, [f"its content hashes to {actual}"])

    def get(
        self, asset: str, version_id: str, *, reused: bool = False, build_id: str | None = None
    ) -> Version:
        with self.meta.read() as con:
            row = con.execute(
                "SELECT * FROM versions WHERE asset = ? AND version_id = ?", (asset, version_id)
            ).fetchone()
        if row is None:
            raise UnknownVersion(f"no version {version_id!r} of asset {asset!r}")
        return _version_from_row(row, reused, build_id)

    def record(self, asset: str, version_id: str) -> dict:
        """Provenance of a version's first build: run, code version, input versions, parameters
        (a later build of the same content has its own record: see `store/builds.py`)."""
        with self.meta.read() as con:
            row = con.execute(
                "SELECT environment, run_id, code_version, inputs_json, params_json, created_at"
                " FROM versions WHERE asset = ? AND version_id = ?",
                (asset, version_id),
            ).fetchone()
        if row is None:
            raise UnknownVersion(f"no version {version_id!r} of asset {asset!r}")
        return {
            "environment": row["environment"],
            "run_id": row["run_id"],
            "code_version": row["code_version"],
            "inputs": json.loads(row["inputs_json"] or "{}"),
            "params": json.loads(row["params_json"] or "{}"),
            "created_at": row["created_at"],
        }

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
            delete_builds_of(tx, [(asset, version_id)])
        shutil.rmtree(version.path.parent, ignore_errors=True)

    def new_pending_dir(self) -> Path:
        """A private folder on the store's filesystem for parts being prepared."""
        path = self.pending_dir / uuid.uuid4().hex
        path.mkdir(parents=True)
        return path

    def part_files(self, version: Version) -> list[Path]:
        return sorted(version.directory.glob("*.parquet"))

    def part_stats(self, con: duckdb.DuckDBPyConnection, version: Version) -> dict[str, PartStats]:
        """Per-part stats of a version by file name (from its sidecar; scanned for old versions)."""
        return directory_part_stats(con, version.directory, version.schema)

    def commit_parts(
        self,
        con: duckdb.DuckDBPyConnection,
        asset: str,
        new_parts: Sequence[Path],
        reused_parts: Sequence[Path] = (),
        *,
        environment: str,
        run_id: str | None = None,
        code_version: str | None = None,
        inputs: dict[str, str] | None = None,
        params: dict[str, object] | None = None,
        masked: bool = False,
    ) -> Version:
        """Commit a version made of new Parquet parts (moved in) plus parts of earlier versions
        (hard-linked, their stats read from the sidecar), so its cost is O(new data)."""
        if not new_parts and not reused_parts:
            raise ValueError("a version needs at least one part")
        schema = parquet_schema(con, (list(new_parts) or list(reused_parts))[0])
        for part in new_parts:
            if parquet_schema(con, part) != schema:
                raise ValueError(f"part {part} does not have the schema {schema}")
        new_stats = part_fingerprints(con, list(new_parts), schema)
        old_stats: dict[Path, PartStats] = {}
        for directory in {p.parent for p in reused_parts}:
            # Parts hard-linked into the new version must still be the files recorded for the
            # version they come from (their stats are read from its sidecar, not the data).
            linked = [p.name for p in reused_parts if p.parent == directory]
            check_files(self.meta, asset, directory.name, directory, linked)
            by_name = directory_part_stats(con, directory, schema)
            old_stats.update({p: by_name[p.name] for p in reused_parts if p.parent == directory})
        # Empty new parts add nothing but files; keep one only if it carries the whole schema.
        kept_new = [p for p in new_parts if new_stats[p].rows] or (
            [] if reused_parts else [new_parts[0]]
        )
        entries: dict[str, tuple[Path, PartStats, bool]] = {
            p.name: (p, old_stats[p], True) for p in reused_parts
        }
        for part in kept_new:
            stats = new_stats[part]
            base = hashlib.sha256(f"{stats.rows}:{stats.h1}:{stats.h2}".encode()).hexdigest()[:16]
            name, n = f"part-{base}.parquet", 1
            while name in entries:
                n += 1
                name = f"part-{base}-{n}.parquet"
            entries[name] = (part, stats, False)
        version_id = combined_content_id(schema, [e[1] for e in entries.values()])
        final_dir = self.versions_dir / asset_dir_name(asset) / version_id
        reused = final_dir.exists()
        if not reused:
            reused = self._install_parts(final_dir, entries, schema)
        if reused:
            self._check_reused(con, asset, version_id, final_dir)
        for part in new_parts:
            part.unlink(missing_ok=True)
        files = sorted(final_dir.glob("*.parquet"))
        stats_all = [e[1] for e in entries.values()]
        build_id = self._record(
            asset,
            version_id,
            path=files[0],
            rows=sum(s.rows for s in stats_all),
            size=sum(f.stat().st_size for f in files),
            schema=schema,
            environment=environment,
            run_id=run_id,
            code_version=code_version,
            inputs=inputs,
            params=params,
            masked=masked,
            files=files,
            reused=reused,
        )
        return self.get(asset, version_id, reused=reused, build_id=build_id)

    def _install_parts(
        self, final_dir: Path, entries: dict[str, tuple[Path, PartStats, bool]], schema: tuple
    ) -> bool:
        """Assemble the parts in a private folder, then rename it into place in one step.
        Returns True if an identical version appeared meanwhile (then nothing is installed)."""
        staging = self.new_pending_dir()
        try:
            for name, (source, _, is_old) in entries.items():
                if is_old:
                    link_or_copy(source, staging / name)
                else:
                    shutil.move(source, staging / name)
            sidecar = {
                "schema": [list(c) for c in schema],
                "parts": {
                    name: {"rows": s.rows, "h1": str(s.h1), "h2": str(s.h2)}
                    for name, (_, s, _) in sorted(entries.items())
                },
            }
            (staging / PARTS_FILE).write_text(json.dumps(sidecar, indent=1))
            final_dir.parent.mkdir(parents=True, exist_ok=True)
            try:
                os.rename(staging, final_dir)
            except OSError:
                if not final_dir.exists():
                    raise
                shutil.rmtree(staging, ignore_errors=True)
                return True
        except BaseException:
            shutil.rmtree(staging, ignore_errors=True)
            raise
        return False


def _version_from_row(row, reused: bool = False, build_id: str | None = None) -> Version:
    return Version(
        asset=row["asset"],
        version_id=row["version_id"],
        path=Path(row["path"]),
        rows=row["rows"],
        bytes=row["bytes"],
        schema=tuple(tuple(x) for x in json.loads(row["schema_json"])),
        created_at=row["created_at"],
        reused=reused,
        build_id=build_id,
    )
