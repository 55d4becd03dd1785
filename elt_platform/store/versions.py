"""Immutable table versions: Parquet files addressed by a content hash, never overwritten. Each
file's size and checksum are recorded at commit and re-checked before an existing version's
files are trusted again (`checksums.py`). With an object store (`objects.py`) a commit uploads the
files before recording the version, and a version missing from the local folder is fetched and
verified when it is looked up (`get`)."""

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
from elt_platform.store.objects import ObjectStore
from elt_platform.store.parts import (
    PARTS_FILE,
    PartStats,
    combined_content_id,
    content_fingerprint,
    directory_part_stats,
    link_or_copy,
    parquet_schema,
    part_fingerprints,
    rename_into_place,
)
from elt_platform.store.version_files import VersionFiles


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


class VersionStore:
    """Writes, finds and deletes immutable versions under `<root>/versions` (with an object
    store: a local cache of the versions kept there)."""

    def __init__(self, root: Path, meta: MetadataStore, objects: ObjectStore | None = None) -> None:
        self.root = Path(root)
        self.meta = meta
        self.versions_dir = self.root / "versions"
        self.pending_dir = self.versions_dir / "_pending"
        self.files = VersionFiles(self.versions_dir, self.pending_dir, meta, objects)

    def version_dir(self, asset: str, version_id: str) -> Path:
        return self.files.version_dir(asset, version_id)

    def ensure_local(self, version: Version) -> Version:
        """The version with its files in the local folder (fetched and verified if needed)."""
        self.files.ensure_local(version.asset, version.version_id)
        return version

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
        final = self.version_dir(asset, version_id) / "data.parquet"
        reused, stored = self.files.place(asset, version_id)
        if reused:
            pending.unlink(missing_ok=True)
            self._check_reused(con, asset, version_id, final.parent)  # tampered -> refused
        else:
            final.parent.mkdir(parents=True, exist_ok=True)
            os.replace(pending, final)
        if not stored:
            self.files.upload(asset, version_id, installed=not reused)
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
        return self.ensure_local(self._from_row(row, reused, build_id))

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
            return [self._from_row(r) for r in con.execute(sql + " ORDER BY created_at", args)]

    def delete(self, asset: str, version_id: str) -> None:
        """Remove a version's record, then its files; callers must check it is unreferenced."""
        self.record(asset, version_id)  # unknown -> UnknownVersion
        with self.meta.transaction() as tx:
            tx.execute(
                "DELETE FROM versions WHERE asset = ? AND version_id = ?", (asset, version_id)
            )
            delete_builds_of(tx, [(asset, version_id)])
        self.discard_files(asset, version_id)

    def discard_files(self, asset: str, version_id: str) -> None:
        """Remove the files of a version whose record is already deleted (GC, retention, prune),
        locally and in the object store; a version still recorded keeps its files."""
        with self.meta.read() as con:
            row = con.execute(
                "SELECT 1 FROM versions WHERE asset = ? AND version_id = ?", (asset, version_id)
            ).fetchone()
        if row is not None:
            raise ValueError(f"version {version_id} of {asset} is still recorded")
        self.files.discard(asset, version_id)

    def new_pending_dir(self) -> Path:
        """A private folder on the store's filesystem for parts being prepared."""
        return self.files.new_pending_dir()

    def part_files(self, version: Version) -> list[Path]:
        return sorted(self.ensure_local(version).directory.glob("*.parquet"))

    def part_stats(self, con: duckdb.DuckDBPyConnection, version: Version) -> dict[str, PartStats]:
        """Per-part stats of a version by file name (from its sidecar; scanned for old versions)."""
        return directory_part_stats(con, self.ensure_local(version).directory, version.schema)

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
        final_dir = self.version_dir(asset, version_id)
        reused, stored = self.files.place(asset, version_id)
        installed = False
        if not reused:
            reused = self._install_parts(final_dir, entries, schema)
            installed = not reused
        if reused:
            self._check_reused(con, asset, version_id, final_dir)
        if not stored:
            self.files.upload(asset, version_id, installed=installed)
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
            if not rename_into_place(staging, final_dir):
                shutil.rmtree(staging, ignore_errors=True)
                return True
        except BaseException:
            shutil.rmtree(staging, ignore_errors=True)
            raise
        return False

    def _from_row(self, row, reused: bool = False, build_id: str | None = None) -> Version:
        """A version whose path is in this installation's folder, whichever machine wrote it."""
        directory = self.version_dir(row["asset"], row["version_id"])
        return _version(row, directory / Path(row["path"]).name, reused, build_id)


def _version(row, path: Path, reused: bool, build_id: str | None) -> Version:
    return Version(
        asset=row["asset"],
        version_id=row["version_id"],
        path=path,
        rows=row["rows"],
        bytes=row["bytes"],
        schema=tuple(tuple(x) for x in json.loads(row["schema_json"])),
        created_at=row["created_at"],
        reused=reused,
        build_id=build_id,
    )
