"""Bare-DuckDB load of the landing sources, run as a script in a fresh process (start-up counts).

The baseline of the build_promote benchmark: every raw table the dbt project reads through
`source('raw', ...)` becomes a table `raw.<name>` in one DuckDB file, read the way the platform's
connectors read it, minus everything the platform adds (versions, checks, audit, Dagster):
customers from the SQLite database (Python's sqlite3: DuckDB's sqlite extension cannot be
downloaded here), products from the CSV, orders from the Parquet files, payments from the Parquet
files the demo HTTP API serves them from (the HTTP payload's equivalent). A plain `dbt build` of
the unmodified project then runs on that file.

Arguments: landing folder, DuckDB file, tables (comma-separated, default all four).
Prints `RESULT {"seconds": ..., "rows": {...}}` (seconds inside the script, after imports).
"""

from __future__ import annotations

import json
import sqlite3
import sys
import time
from pathlib import Path

import duckdb
import pyarrow as pa

from elt_demo.sources import DATABASE
from elt_demo.synthetic.generator import SCHEMAS
from elt_demo.synthetic.landing import _duckdb_type, raw_views_sql

TABLES = ("customers", "products", "orders", "payments")


def _customers_from_sqlite(con: duckdb.DuckDBPyConnection, landing: Path) -> int:
    """raw.customers from the SQLite source, typed like the generated schema."""
    src = sqlite3.connect(f"file:{landing / DATABASE}?mode=ro", uri=True)
    try:
        cur = src.execute("select * from customers")
        names = [d[0] for d in cur.description]
        rows = cur.fetchall()
    finally:
        src.close()
    columns = list(zip(*rows, strict=True)) if rows else [[] for _ in names]
    fetched = pa.table({n: pa.array(c) for n, c in zip(names, columns, strict=True)})  # noqa: F841
    types = {f.name: _duckdb_type(f.type) for f in SCHEMAS["customers"]}
    select = ", ".join(f'cast("{n}" as {types[n]}) as "{n}"' for n in names)
    (count,) = con.execute(f"create table raw.customers as select {select} from fetched").fetchone()
    return int(count)


def load(landing: Path, db_path: Path, tables: tuple[str, ...] = TABLES) -> dict[str, int]:
    db_path.parent.mkdir(parents=True, exist_ok=True)
    con = duckdb.connect(str(db_path))
    rows: dict[str, int] = {}
    try:
        con.execute("set enable_progress_bar = false")
        for statement in raw_views_sql(landing, schema="landing"):  # views over the files
            con.execute(statement)
        con.execute("create schema if not exists raw")
        for table in tables:
            if table == "customers":
                rows[table] = _customers_from_sqlite(con, landing)
                continue
            (count,) = con.execute(
                f"create table raw.{table} as select * from landing.{table}"
            ).fetchone()
            rows[table] = int(count)
        con.execute("drop schema landing cascade")
        con.execute("checkpoint")
    finally:
        con.close()
    return rows


def main() -> None:
    landing, db_path = Path(sys.argv[1]), Path(sys.argv[2])
    tables = tuple(sys.argv[3].split(",")) if len(sys.argv) > 3 and sys.argv[3] else TABLES
    started = time.perf_counter()
    rows = load(landing, db_path, tables)
    print(
        "RESULT " + json.dumps({"seconds": round(time.perf_counter() - started, 3), "rows": rows})
    )


if __name__ == "__main__":
    main()
