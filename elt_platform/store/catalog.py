"""Environment catalogs: small DuckDB files of views over version Parquet files.

A catalog is derived data: it is rebuilt from the metadata store into a temp file and atomically
renamed into place, so a reader sees the old catalog or the new one, never a mix, and never holds
a lock that a writer needs.
"""

from __future__ import annotations

import os
import uuid
from collections.abc import Callable
from pathlib import Path

import duckdb

from elt_platform.environments import EnvironmentKind
from elt_platform.sqlident import quote_ident
from elt_platform.store.metadata import MetadataStore
from elt_platform.store.pointers import EnvironmentRecord, EnvironmentRegistry, pointers_token
from elt_platform.store.versions import Version, VersionStore

RelationSql = Callable[[str, Version], str]
# Given the metadata store, how a sandbox's views read versions (the access layer masks PII).
SandboxRelations = Callable[[MetadataStore], RelationSql]
META_SCHEMA = "_elt"


def relation_for_asset(asset: str) -> tuple[str, str]:
    """(schema, name) of an asset's view: `raw/orders` -> raw.orders; `orders` -> main.orders."""
    parts = asset.split("/")
    if len(parts) == 1:
        return "main", parts[0]
    return parts[-2], parts[-1]


def default_relation_sql(asset: str, version: Version) -> str:
    return f"SELECT * FROM {version.scan_sql}"


class CatalogStore:
    """Builds and opens per-environment catalogs."""

    def __init__(
        self,
        catalogs_dir: Path,
        registry: EnvironmentRegistry,
        versions: VersionStore,
        relation_sql: RelationSql = default_relation_sql,
        sandbox_relations: SandboxRelations | None = None,
    ) -> None:
        self.dir = Path(catalogs_dir)
        self.registry = registry
        self.versions = versions
        self.relation_sql = relation_sql
        self.sandbox_relations = sandbox_relations

    def path(self, environment: str) -> Path:
        return self.dir / f"{environment}.duckdb"

    def rebuild(self, environment: str) -> Path:
        """Write a fresh catalog for `environment` and swap it in atomically."""
        record = self.registry.get(environment)
        pointers = self.registry.pointers(environment)
        relation_sql = self.relation_sql_for(record)
        self.dir.mkdir(parents=True, exist_ok=True)
        tmp = self.dir / f".{environment}.{uuid.uuid4().hex}.tmp.duckdb"
        try:
            con = duckdb.connect(str(tmp))
            try:
                con.execute("BEGIN")
                con.execute(f"CREATE SCHEMA {META_SCHEMA}")
                con.execute(
                    f"CREATE TABLE {META_SCHEMA}.catalog_info (environment VARCHAR,"
                    " release_id VARCHAR, pointers_token VARCHAR)"
                )
                con.execute(
                    f"INSERT INTO {META_SCHEMA}.catalog_info VALUES (?, ?, ?)",
                    [environment, record.current_release, pointers_token(pointers)],
                )
                con.execute(
                    f"CREATE TABLE {META_SCHEMA}.pointers (asset VARCHAR, version_id VARCHAR,"
                    " relation VARCHAR)"
                )
                schemas: set[str] = set()
                for asset, version_id in pointers.items():
                    schema, name = relation_for_asset(asset)
                    if schema not in schemas and schema != "main":
                        con.execute(f"CREATE SCHEMA IF NOT EXISTS {quote_ident(schema)}")
                    schemas.add(schema)
                    version = self.versions.get(asset, version_id)
                    rel = f"{quote_ident(schema)}.{quote_ident(name)}"
                    con.execute(f"CREATE VIEW {rel} AS {relation_sql(asset, version)}")
                    con.execute(
                        f"INSERT INTO {META_SCHEMA}.pointers VALUES (?, ?, ?)",
                        [asset, version_id, f"{schema}.{name}"],
                    )
                con.execute("COMMIT")
            finally:
                con.close()
            os.replace(tmp, self.path(environment))
        finally:
            tmp.unlink(missing_ok=True)
            Path(str(tmp) + ".wal").unlink(missing_ok=True)
        return self.path(environment)

    def relation_sql_for(self, record: EnvironmentRecord) -> RelationSql:
        """How each view of `record`'s catalog reads its version. A sandbox's views must mask what
        it may not show: without an injected policy its catalog is refused (fails closed)."""
        if record.environment.kind is not EnvironmentKind.SANDBOX:
            return self.relation_sql
        if self.sandbox_relations is None:
            raise RuntimeError(
                f"no masking policy was given for sandbox catalogs (building {record.name!r})"
            )
        return self.sandbox_relations(self.versions.meta)

    def is_fresh(self, environment: str) -> bool:
        path = self.path(environment)
        if not path.exists():
            return False
        expected = pointers_token(self.registry.pointers(environment))
        try:
            con = duckdb.connect(str(path), read_only=True)
            try:
                token = con.execute(
                    f"SELECT pointers_token FROM {META_SCHEMA}.catalog_info"
                ).fetchone()[0]
            finally:
                con.close()
        except duckdb.Error:
            return False
        return token == expected

    def ensure_fresh(self, environment: str) -> Path:
        """Rebuild the catalog if it is missing or behind the metadata store (after a crash)."""
        if not self.is_fresh(environment):
            return self.rebuild(environment)
        return self.path(environment)

    def connect(self, environment: str) -> duckdb.DuckDBPyConnection:
        """A read-only connection to an up-to-date catalog of `environment`."""
        return duckdb.connect(str(self.ensure_fresh(environment)), read_only=True)

    def drop(self, environment: str) -> None:
        self.path(environment).unlink(missing_ok=True)
