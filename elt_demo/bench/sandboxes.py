"""Sandbox creation against copying the tables, and `elt diff` against a bare DuckDB hash-join diff.

Creation: a warehouse whose release is shaped like the demo's (12 assets: orders-sized tables of
`rows` rows, customer tables with PII of rows/10); platform time of `create_sandbox` (pointer
copy, masked catalog, experiment record, audit entry) is compared with copying the release's
tables (CTAS into a DuckDB file), which is what a copy-based sandbox would have to do.
Diff: two versions of an orders table (1 % changed, 0.5 % added, 0.5 % removed); `diff_relations`
(counts, per-column counts, examples) is compared with a bare script that joins per-row hashes on
the key, both reading the same Parquet files.
"""

from __future__ import annotations

import os
import resource
import shutil
import statistics
import tempfile
import time
from dataclasses import replace
from pathlib import Path

import duckdb

from elt_platform.access.facade import GovernedWarehouse, open_warehouse
from elt_platform.sandboxes.row_diff import diff_relations
from elt_platform.settings import load_settings
from elt_platform.sqlident import sql_literal
from elt_platform.store.versions import Version

ORDERS = """
SELECT range AS order_id, (range * 7919) % {customers} AS customer_id, range % 5000 AS product_id,
       (range % 10 + 1)::INTEGER AS quantity, ((range % 997) / 10.0)::DECIMAL(18, 2) AS unit_price,
       ['placed', 'shipped', 'delivered', 'returned', 'cancelled'][range % 5 + 1] AS status,
       TIMESTAMP '2024-01-01' + to_seconds(range) AS ordered_at,
       TIMESTAMP '2024-01-01' + to_seconds(range * 2) AS updated_at
FROM range({rows})
"""
CUSTOMERS = """
SELECT range AS customer_id, 'First' || range AS first_name, 'Last' || (range % 977) AS last_name,
       'first.last' || range || '@example.com' AS email, '+1-555-01' || lpad((range % 100)::VARCHAR,
       2, '0') || '-' || lpad((range % 10000)::VARCHAR, 4, '0') AS phone,
       DATE '1950-01-01' + (range % 20000)::INTEGER AS birth_date, 'north' AS region
FROM range({rows})
"""
# 0.5 % removed (id % 200 = 1), 1 % changed (id % 100 = 2), 0.5 % added (new ids).
RIGHT = """
SELECT order_id, customer_id, product_id,
       CASE WHEN order_id % 100 = 2 THEN quantity + 1 ELSE quantity END AS quantity, unit_price,
       CASE WHEN order_id % 300 = 2 THEN 'returned' ELSE status END AS status,
       ordered_at, updated_at
FROM read_parquet({left}) WHERE order_id % 200 <> 1
UNION ALL
SELECT {rows} + range, range, 1, 1, 1.00, 'placed', TIMESTAMP '2025-01-01', TIMESTAMP '2025-01-01'
FROM range({added})
"""
BARE_DIFF = """
WITH l AS (SELECT order_id, hash({cols}) AS h FROM read_parquet({left})),
     r AS (SELECT order_id, hash({cols}) AS h FROM read_parquet({right}))
SELECT count(*) FILTER (WHERE l.order_id IS NULL) AS added,
       count(*) FILTER (WHERE r.order_id IS NULL) AS removed,
       count(*) FILTER (WHERE l.h <> r.h) AS changed
FROM l FULL OUTER JOIN r USING (order_id)
"""
VALUE_COLUMNS = "customer_id, product_id, quantity, unit_price, status, ordered_at, updated_at"


def _entry(
    metric: str, value: float, unit: str, baseline: float | None, ratio: float | None, notes: str
) -> dict:
    return {
        "name": "sandboxes",
        "metric": metric,
        "value": round(value, 4),
        "unit": unit,
        "baseline": None if baseline is None else round(baseline, 4),
        "ratio": None if ratio is None else round(ratio, 2),
        "notes": notes,
    }


# The demo project's assets, each at the size it has when the orders table has `rows` rows.
RELEASE = {
    "raw/orders": "orders",
    "stg_orders": "orders",
    "int_orders_enriched": "orders",
    "orders": "orders",
    "raw/payments": "orders",
    "stg_payments": "orders",
    "raw/customers": "customers",
    "stg_customers": "customers",
    "customers": "customers",
    "raw/products": "small",
    "stg_products": "small",
    "daily_revenue": "small",
}


def _release(wh: GovernedWarehouse, rows: int) -> dict[str, str]:
    """A published release shaped like the demo's (12 assets); tables of one shape share their
    content (each asset still gets its own version files), so building it stays quick."""
    con = duckdb.connect()
    try:
        con.execute("SET enable_progress_bar = false")
        shapes = {
            "orders": ORDERS.format(rows=rows, customers=max(rows // 10, 1)),
            "customers": CUSTOMERS.format(rows=max(rows // 10, 1)),
            "small": ORDERS.format(rows=min(rows, 5_000), customers=100),
        }
        first: dict[str, Version] = {}
        versions = {}
        for asset, shape in RELEASE.items():
            if shape not in first:
                first[shape] = wh.versions.write_query(
                    con, asset, shapes[shape], environment="staging"
                )
                versions[asset] = first[shape]
                continue
            pending = wh.versions.new_pending_path()
            shutil.copyfile(first[shape].path, pending)
            versions[asset] = wh.versions.commit_file(con, asset, pending, environment="staging")
    finally:
        con.close()
    wh.commit_pointers("staging", versions, run_id="bench")
    return wh.publish("staging", triggered_by="bench").release.manifest


def _copy_seconds(wh: GovernedWarehouse, manifest: dict[str, str], target: Path) -> float:
    """What a copy-based sandbox would pay: CTAS of every release table into a DuckDB file."""
    target.unlink(missing_ok=True)
    con = duckdb.connect(str(target))
    try:
        con.execute("SET enable_progress_bar = false")
        started = time.perf_counter()
        for i, (asset, vid) in enumerate(sorted(manifest.items())):
            con.execute(
                f"CREATE TABLE t{i} AS SELECT * FROM {wh.versions.get(asset, vid).scan_sql}"
            )
        con.execute("CHECKPOINT")
        return time.perf_counter() - started
    finally:
        con.close()
        target.unlink(missing_ok=True)


def measure_create(root: Path, rows: int) -> list[dict]:
    from elt_platform.access.masking_policy import save_masking_policy
    from elt_platform.sandboxes.create import create_sandbox

    shutil.rmtree(root, ignore_errors=True)
    settings = replace(load_settings(), home=root)
    wh = open_warehouse(settings)
    manifest = _release(wh, rows)
    # The demo project's declarations, so the sandbox catalog really masks raw/customers.
    save_masking_policy(
        wh.meta,
        {
            "raw/customers": {
                c: "auto" for c in ("first_name", "last_name", "email", "phone", "birth_date")
            }
        },
    )
    files_before = sorted(p for p in (root / "warehouse" / "versions").rglob("*") if p.is_file())
    cold = create_sandbox(wh, "bench_cold").seconds
    samples = [create_sandbox(wh, f"bench_{i}").seconds for i in range(5)]
    files_after = sorted(p for p in (root / "warehouse" / "versions").rglob("*") if p.is_file())
    assert files_before == files_after, "sandbox creation wrote version files"
    warm = statistics.median(samples)
    import dagster as dg

    from elt_platform.orchestration.partitions import sync_environment_partitions

    with tempfile.TemporaryDirectory() as home:
        instance = dg.DagsterInstance.local_temp(home)
        sync_environment_partitions(instance, [])
        started = time.perf_counter()
        sync_environment_partitions(instance, ["bench_partition"])
        partition_s = time.perf_counter() - started
        instance.dispose()
    copy_s = _copy_seconds(wh, manifest, root / "copy.duckdb")
    shutil.rmtree(root, ignore_errors=True)
    size = (
        f"release of {len(manifest)} tables ({rows:,}-row orders, {max(rows // 10, 1):,} customers)"
    )
    return [
        _entry(
            f"create_sandbox@{rows:,}",
            warm,
            "s",
            copy_s,
            copy_s / warm,
            f"{size}; platform time (pointers, masked catalog, record, audit), median of 5 in "
            f"a warm process (first in process: {cold:.3f} s); baseline = CTAS copy of the "
            "tables; ratio = times faster (target >= 100x, <= 0.2 s)",
        ),
        _entry(
            f"create_sandbox_partition@{rows:,}",
            partition_s,
            "s",
            None,
            None,
            "adding the Dagster partition (SQLite instance), not included above",
        ),
    ]


def measure_diff(root: Path, rows: int, repeat: int = 3) -> list[dict]:
    shutil.rmtree(root, ignore_errors=True)
    root.mkdir(parents=True)
    left, right = root / "left.parquet", root / "right.parquet"
    con = duckdb.connect()
    try:
        con.execute("SET enable_progress_bar = false")
        copy = "(FORMAT parquet, COMPRESSION zstd, ROW_GROUP_SIZE 1000000)"
        orders = ORDERS.format(rows=rows, customers=max(rows // 10, 1))
        con.execute(f"COPY ({orders}) TO {sql_literal(str(left))} {copy}")
        right_sql = RIGHT.format(left=sql_literal(str(left)), rows=rows, added=rows // 200)
        con.execute(f"COPY ({right_sql}) TO {sql_literal(str(right))} {copy}")
    finally:
        con.close()
    bare_sql = BARE_DIFF.format(
        cols=VALUE_COLUMNS, left=sql_literal(str(left)), right=sql_literal(str(right))
    )
    left_sql = f"SELECT * FROM read_parquet({sql_literal(str(left))})"
    right_rel = f"SELECT * FROM read_parquet({sql_literal(str(right))})"
    ours, bare, ours_cpu, bare_cpu, result, counts = [], [], [], [], None, None
    for _ in range(repeat):  # interleaved, so load from other processes hits both alike
        con = duckdb.connect()
        try:
            con.execute("SET enable_progress_bar = false")
            started, cpu = time.perf_counter(), _cpu_seconds()
            counts = con.execute(bare_sql).fetchone()
            bare.append(time.perf_counter() - started)
            bare_cpu.append(_cpu_seconds() - cpu)
        finally:
            con.close()
        con = duckdb.connect()
        try:
            con.execute("SET enable_progress_bar = false")
            started, cpu = time.perf_counter(), _cpu_seconds()
            result = diff_relations(con, "orders", left_sql, right_rel, key=["order_id"])
            ours.append(time.perf_counter() - started)
            ours_cpu.append(_cpu_seconds() - cpu)
        finally:
            con.close()
    assert (result.added, result.removed, result.changed) == tuple(counts), (result, counts)
    shutil.rmtree(root, ignore_errors=True)
    ours_s, bare_s = statistics.median(ours), statistics.median(bare)
    return [
        _entry(
            f"diff@{rows:,}",
            ours_s,
            "s",
            bare_s,
            ours_s / bare_s,
            f"{rows:,} vs {rows:,} rows ({result.changed:,} changed, {result.added:,} added, "
            f"{result.removed:,} removed); ours adds per-column counts and example rows; "
            f"baseline = bare DuckDB per-row-hash join on the key over the same Parquet; "
            f"ratio = ours / bare (target <= 1.5); median of {repeat}, {os.cpu_count()} cores; "
            f"CPU-time ratio {statistics.median(ours_cpu) / statistics.median(bare_cpu):.2f} "
            "(less sensitive to other processes on a shared machine)",
        ),
    ]


def _cpu_seconds() -> float:
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime


def run(results_dir: Path, rows: int = 10_000_000) -> list[dict]:
    work = results_dir.parent / "work"
    return measure_create(work / "sandboxes_create", rows) + measure_diff(
        work / "sandboxes_diff", rows
    )
