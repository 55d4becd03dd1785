"""The queryable catalog: SQL views in the metadata store over platform state and metadata derived
from code (contracts, dbt, lineage) and from Dagster (runs, check results).

Derived rows live in `cat_*` tables that `refresh_catalog` rewrites in one transaction; stewards
change them through contract files, never in the database. `query_catalog` is read-only.
"""

from __future__ import annotations

import sqlite3
from pathlib import Path
from typing import Any

from elt_platform.access.query_guard import CheckedQuery, QueryResult, check_select
from elt_platform.errors import InvalidQuery
from elt_platform.project.column_lineage import ColumnRef
from elt_platform.project.lineage import LineageGraph

TABLES = """
CREATE TABLE IF NOT EXISTS cat_assets (asset TEXT PRIMARY KEY, kind TEXT, layer TEXT, owner TEXT,
    description TEXT, objective TEXT, sensitivity TEXT, retention TEXT, contract_version TEXT);
CREATE TABLE IF NOT EXISTS cat_columns (asset TEXT, column_name TEXT, data_type TEXT,
    description TEXT, sensitivity TEXT, effective_sensitivity TEXT,
    PRIMARY KEY (asset, column_name));
CREATE TABLE IF NOT EXISTS cat_table_edges (upstream TEXT, downstream TEXT);
CREATE TABLE IF NOT EXISTS cat_column_edges (source_asset TEXT, source_column TEXT,
    target_asset TEXT, target_column TEXT, kind TEXT, transformation TEXT);
CREATE TABLE IF NOT EXISTS cat_runs (run_id TEXT PRIMARY KEY, job_name TEXT, status TEXT,
    environment TEXT, release_id TEXT, started_at TEXT, ended_at TEXT, tags_json TEXT);
CREATE TABLE IF NOT EXISTS cat_check_results (run_id TEXT, asset TEXT, check_name TEXT,
    passed INTEGER, severity TEXT, at TEXT, environment TEXT);
"""

VIEWS = {
    "assets": "SELECT * FROM cat_assets",
    "owners": "SELECT owner, asset, kind, layer FROM cat_assets WHERE owner IS NOT NULL",
    "asset_columns": "SELECT * FROM cat_columns",
    "lineage_edges": "SELECT * FROM cat_table_edges",
    "column_lineage": "SELECT * FROM cat_column_edges",
    # Transitive closure: every column computed (directly or not) from another column.
    "column_derivations": """
        WITH RECURSIVE d(source_asset, source_column, target_asset, target_column) AS (
            SELECT source_asset, source_column, target_asset, target_column FROM cat_column_edges
            UNION
            SELECT d.source_asset, d.source_column, e.target_asset, e.target_column
            FROM d JOIN cat_column_edges e
              ON e.source_asset = d.target_asset AND e.source_column = d.target_column
        ) SELECT * FROM d""",
    "release_contents": """
        SELECT r.release_id, r.seq, r.created_at, r.source_environment, r.code_version,
               r.triggered_by, e.asset, e.version_id,
               (r.release_id = (SELECT current_release FROM environments WHERE name = 'prod'))
                   AS is_current_prod
        FROM releases r JOIN release_entries e USING (release_id)""",
    "environment_versions": """
        SELECT p.environment, p.asset, p.version_id, v.rows, v.bytes, v.created_at, v.run_id
        FROM env_pointers p LEFT JOIN versions v USING (asset, version_id)""",
    "runs": "SELECT * FROM cat_runs",
    "check_results": "SELECT * FROM cat_check_results",
    "quality_scores": """
        SELECT asset, run_id, environment, min(at) AS at, avg(passed) AS score,
               count(*) AS checks FROM cat_check_results GROUP BY asset, run_id, environment""",
    "audit_log": "SELECT seq, at, kind, actor, environment, run_id, code_version, params_json,"
    " assets_json FROM ledger",
}
# Platform tables a catalog query may read besides the views (what `export_to_duckdb` copies).
TABLES_READABLE = ("versions", "releases", "release_entries", "environments")
# Relations that expose the audit ledger: reading them needs the read_ledger action.
LEDGER_RELATIONS = frozenset({"audit_log"})


def catalog_relations() -> set[str]:
    return {*VIEWS, *TABLES_READABLE}


def ensure_views(con: sqlite3.Connection) -> None:
    con.executescript(TABLES)
    for name, sql in VIEWS.items():
        con.execute(f"DROP VIEW IF EXISTS {name}")
        con.execute(f"CREATE VIEW {name} AS {sql}")


def refresh_catalog(
    metadata_path: Path,
    graph: LineageGraph,
    runs: list[dict[str, Any]],
    checks: list[dict[str, Any]],
) -> None:
    """Rewrite the derived catalog rows from code and Dagster history, in one transaction."""
    con = sqlite3.connect(metadata_path, timeout=30.0, isolation_level=None)
    try:
        con.execute("PRAGMA busy_timeout=30000")
        ensure_views(con)
        con.execute("BEGIN IMMEDIATE")
        for table in (
            "cat_assets",
            "cat_columns",
            "cat_table_edges",
            "cat_column_edges",
            "cat_runs",
            "cat_check_results",
        ):
            con.execute(f"DELETE FROM {table}")
        _insert_graph(con, graph)
        con.executemany(
            "INSERT OR REPLACE INTO cat_runs VALUES (:run_id, :job_name, :status, :environment,"
            " :release_id, :started_at, :ended_at, :tags_json)",
            runs,
        )
        con.executemany(
            "INSERT INTO cat_check_results VALUES (:run_id, :asset, :check_name, :passed,"
            " :severity, :at, :environment)",
            checks,
        )
        con.execute("COMMIT")
    finally:
        con.close()


def _insert_graph(con: sqlite3.Connection, graph: LineageGraph) -> None:
    for a in graph.assets.values():
        con.execute(
            "INSERT INTO cat_assets VALUES (?,?,?,?,?,?,?,?,?)",
            (
                a.key,
                a.kind,
                a.layer,
                a.owner,
                a.description,
                a.objective,
                a.sensitivity,
                a.retention,
                a.contract_version,
            ),
        )
        for c in a.columns.values():
            ref = ColumnRef(a.key, c.name)
            con.execute(
                "INSERT INTO cat_columns VALUES (?,?,?,?,?,?)",
                (
                    a.key,
                    c.name,
                    c.data_type,
                    c.description,
                    c.sensitivity,
                    graph.effective_sensitivity(ref),
                ),
            )
    con.executemany("INSERT INTO cat_table_edges VALUES (?,?)", graph.table_edges())
    con.executemany(
        "INSERT INTO cat_column_edges VALUES (?,?,?,?,?,?)",
        [
            (
                e.source.asset,
                e.source.column,
                e.target.asset,
                e.target.column,
                e.kind,
                e.transformation,
            )
            for e in graph.edges
        ],
    )


def check_catalog_query(sql: str) -> CheckedQuery:
    """`sql` as one read-only SELECT over the catalog's views and readable tables (the same
    validator as `elt sql`); anything else raises QueryRefused."""
    return check_select(sql, catalog_relations(), dialect="sqlite")


def query_catalog(
    metadata_path: Path, sql: str | CheckedQuery, *, limit: int | None = None
) -> QueryResult:
    """Run one checked read-only SELECT against the catalog (the file is opened read-only)."""
    checked = sql if isinstance(sql, CheckedQuery) else check_catalog_query(sql)
    if not Path(metadata_path).exists():
        raise InvalidQuery(f"no metadata store at {metadata_path}")
    con = sqlite3.connect(f"file:{metadata_path}?mode=ro", uri=True, timeout=30.0)
    try:
        con.execute("PRAGMA query_only=ON")
        try:
            cursor = con.execute(checked.sql)
            rows = cursor.fetchmany(limit) if limit else cursor.fetchall()
        except sqlite3.Error as exc:
            raise InvalidQuery(f"catalog query failed: {exc}") from None
        return QueryResult([d[0] for d in cursor.description or []], rows)
    finally:
        con.close()


def export_to_duckdb(metadata_path: Path, target: Path) -> Path:
    """Copy every catalog view into a DuckDB file (DuckDB cannot read SQLite offline)."""
    import os

    import duckdb
    import pyarrow as pa

    tmp = target.with_name(f".{target.name}.tmp")
    tmp.unlink(missing_ok=True)
    out = duckdb.connect(str(tmp))
    try:
        for name in [*VIEWS, "versions", "releases", "release_entries", "environments"]:
            result = query_catalog(metadata_path, f"SELECT * FROM {name}")
            columns = list(zip(*result.rows, strict=True)) if result.rows else []
            table = pa.table(
                {
                    c: _arrow_column(list(columns[i]) if columns else [])
                    for i, c in enumerate(result.columns)
                }
            )
            out.register("src", table)
            out.execute(f"CREATE TABLE {name} AS SELECT * FROM src")
            out.unregister("src")
    finally:
        out.close()
    os.replace(tmp, target)
    return target


def _arrow_column(values: list[Any]):
    import pyarrow as pa

    try:
        return pa.array(values) if values else pa.array([], type=pa.string())
    except (pa.ArrowInvalid, pa.ArrowTypeError):  # SQLite allows mixed types in one column
        return pa.array([None if v is None else str(v) for v in values], type=pa.string())
