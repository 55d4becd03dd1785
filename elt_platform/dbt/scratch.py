"""An environment's scratch DuckDB file (`work/<env>/dbt.duckdb`), made ready for one dbt run.

dbt owns the relations it builds: views stay views, seeds and tables stay tables, and nothing of
the platform's replaces them. Before a run:
- an asset dbt does not rebuild is mounted as a view over the version the environment serves
  (masked in sandboxes), unless the scratch already holds exactly that version as a table;
- an incremental model or snapshot dbt rebuilds gets a real table holding the environment's
  current version (`{{ this }}` must see its own previous content; a sandbox's first build starts
  from its release's version, masked), copied only when the table does not hold it already;
- any other asset dbt rebuilds loses the platform's view, so dbt creates its own relation.
What each relation holds is tracked in `_elt.scratch_relations`; a claim is dropped before dbt
may change the relation and written again after the build is exported.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field

import duckdb

from elt_platform.sqlident import quote_ident
from elt_platform.store.catalog import RelationSql, relation_for_asset
from elt_platform.store.versions import Version

STATE = "_elt.scratch_relations"
MOUNT, COPY, BUILT = "mount", "copy", "built"  # platform view; platform table; dbt's table


@dataclass(frozen=True)
class Held:
    asset: str
    version_id: str
    kind: str
    source_sql: str


@dataclass
class ScratchReport:
    mounted: list[str] = field(default_factory=list)
    copied: list[str] = field(default_factory=list)
    kept: list[str] = field(default_factory=list)
    cleared: list[str] = field(default_factory=list)


def _rel(schema: str, name: str) -> str:
    return f"{quote_ident(schema)}.{quote_ident(name)}"


def _ensure_state(con: duckdb.DuckDBPyConnection) -> dict[tuple[str, str], Held]:
    con.execute("CREATE SCHEMA IF NOT EXISTS _elt")
    con.execute(
        f"CREATE TABLE IF NOT EXISTS {STATE} (schema_name VARCHAR, name VARCHAR, asset VARCHAR,"
        " version_id VARCHAR, kind VARCHAR, source_sql VARCHAR, PRIMARY KEY (schema_name, name))"
    )
    rows = con.execute(
        f"SELECT schema_name, name, asset, version_id, kind, source_sql FROM {STATE}"
    ).fetchall()
    return {(r[0], r[1]): Held(r[2], r[3], r[4], r[5] or "") for r in rows}


def _existing(con: duckdb.DuckDBPyConnection) -> dict[tuple[str, str], str]:
    rows = con.execute(
        "SELECT table_schema, table_name, table_type FROM information_schema.tables"
        " WHERE table_catalog = current_database()"
    ).fetchall()
    return {(r[0], r[1]): r[2] for r in rows}


def _drop(con, schema: str, name: str, kind: str | None) -> None:
    if kind == "VIEW":
        con.execute(f"DROP VIEW IF EXISTS {_rel(schema, name)}")
    elif kind is not None:
        con.execute(f"DROP TABLE IF EXISTS {_rel(schema, name)}")


def _claim(con, schema: str, name: str, held: Held | None) -> None:
    con.execute(f"DELETE FROM {STATE} WHERE schema_name = ? AND name = ?", [schema, name])
    if held is not None:
        con.execute(
            f"INSERT INTO {STATE} VALUES (?, ?, ?, ?, ?, ?)",
            [schema, name, held.asset, held.version_id, held.kind, held.source_sql],
        )


def prepare_scratch(
    con: duckdb.DuckDBPyConnection,
    pointers: Mapping[str, Version],
    relations: Mapping[str, tuple[str, str]],
    *,
    rebuild: set[str],
    stateful: set[str],
    relation_sql: RelationSql,
) -> ScratchReport:
    """Make the scratch hold what dbt must see for a run that rebuilds `rebuild` (see module)."""
    report = ScratchReport()
    state = _ensure_state(con)
    existing = _existing(con)
    con.execute("BEGIN")
    try:
        for asset in sorted(set(pointers) | rebuild):
            schema, name = relations.get(asset) or relation_for_asset(asset)
            con.execute(f"CREATE SCHEMA IF NOT EXISTS {quote_ident(schema)}")
            found, held = existing.get((schema, name)), state.get((schema, name))
            version = pointers.get(asset)
            if asset in rebuild and not (asset in stateful and version is not None):
                # dbt builds its own relation; a platform view or table would be in its way.
                if found == "VIEW" or (held is not None and held.kind in {MOUNT, COPY}):
                    _drop(con, schema, name, found)
                    report.cleared.append(asset)
                _claim(con, schema, name, None)
                continue
            assert version is not None
            sql = relation_sql(asset, version)
            table = asset in rebuild  # a stateful rebuild reads its previous content as a table
            if _holds(held, found, version.version_id, sql, table):
                report.kept.append(asset)
                if table:  # dbt is about to change it: the claim holds again after export
                    _claim(con, schema, name, None)
                continue
            _drop(con, schema, name, found)
            if table:
                con.execute(f"CREATE TABLE {_rel(schema, name)} AS {sql}")
                report.copied.append(asset)
                _claim(con, schema, name, None)
            else:
                con.execute(f"CREATE VIEW {_rel(schema, name)} AS {sql}")
                report.mounted.append(asset)
                _claim(con, schema, name, Held(asset, version.version_id, MOUNT, sql))
        con.execute("COMMIT")
    except BaseException:
        con.execute("ROLLBACK")
        raise
    return report


def _holds(held: Held | None, found: str | None, version_id: str, sql: str, table: bool) -> bool:
    """Does the relation already give exactly what a reader of `version_id` must see?"""
    if held is None or found is None or held.version_id != version_id:
        return False
    if held.kind == BUILT:  # dbt's table holding the version it was exported as
        return found == "BASE TABLE"
    return not table and held.kind == MOUNT and found == "VIEW" and held.source_sql == sql


def record_built(
    con: duckdb.DuckDBPyConnection, asset: str, schema: str, name: str, version_id: str
) -> None:
    """After export: dbt's relation holds `version_id` (only a table's content is stable; a
    view's depends on its inputs, so it is not claimed and gets mounted when it is reused)."""
    _ensure_state(con)
    kind = _existing(con).get((schema, name))
    _claim(con, schema, name, Held(asset, version_id, BUILT, "") if kind == "BASE TABLE" else None)
