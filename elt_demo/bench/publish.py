"""Publish / rollback / repoint latency at several table sizes, against copying the tables."""

from __future__ import annotations

import itertools
import shutil
import statistics
import time
from pathlib import Path

import duckdb

from elt_platform.store.warehouse import Warehouse

TABLES = ("raw/orders", "stg_orders", "orders")


def _median_seconds(fn, repeat: int = 5) -> float:
    samples = []
    for _ in range(repeat):
        started = time.perf_counter()
        fn()
        samples.append(time.perf_counter() - started)
    return statistics.median(samples)


def _stage(wh: Warehouse, rows: int, salt: int) -> dict[str, str]:
    con = duckdb.connect()
    try:
        versions = {
            asset: wh.versions.write_query(
                con,
                asset,
                f"SELECT range AS id, (range * {salt + i + 1}) % 1000003 AS amount, "
                f"'s' || (range % 97) AS status FROM range({rows})",
                environment="staging",
            )
            for i, asset in enumerate(TABLES)
        }
    finally:
        con.close()
    wh.commit_pointers("staging", versions, run_id=f"bench-{salt}")
    return {a: v.version_id for a, v in versions.items()}


def _copy_seconds(wh: Warehouse, manifest: dict[str, str], target: Path) -> float:
    """The baseline: materialize the same tables as copies (CTAS) in a DuckDB file."""
    target.unlink(missing_ok=True)
    con = duckdb.connect(str(target))
    try:
        started = time.perf_counter()
        for i, (asset, vid) in enumerate(manifest.items()):
            version = wh.versions.get(asset, vid)
            con.execute(f"CREATE TABLE t{i} AS SELECT * FROM {version.scan_sql}")
        con.execute("CHECKPOINT")
        return time.perf_counter() - started
    finally:
        con.close()
        target.unlink(missing_ok=True)


def _measure(root: Path, rows: int) -> list[dict]:
    shutil.rmtree(root, ignore_errors=True)
    wh = Warehouse(root)
    first = _stage(wh, rows, 1)
    wh.publish("staging", triggered_by="bench")
    r1 = wh.releases.current().release_id
    second = _stage(wh, rows, 2)
    started = time.perf_counter()
    wh.publish("staging", triggered_by="bench")
    publish_s = time.perf_counter() - started
    r2 = wh.releases.current().release_id
    targets = itertools.cycle([r1, r2])  # alternate, so every rollback moves prod
    rollback_s = _median_seconds(lambda: wh.rollback(next(targets), actor="bench"))
    first_versions = {a: wh.versions.get(a, v) for a, v in first.items()}
    repoint_s = _median_seconds(
        lambda: wh.commit_pointers("staging", first_versions, run_id="bench")
    )
    copy_s = _copy_seconds(wh, second, root / "copy.duckdb")
    shutil.rmtree(root, ignore_errors=True)
    entries = []
    for metric, value in (
        ("publish", publish_s),
        ("rollback", rollback_s),
        ("repoint_staging", repoint_s),
    ):
        entries.append(
            {
                "name": "publish_latency",
                "metric": f"{metric}@{rows:,}",
                "value": round(value, 4),
                "unit": "s",
                "baseline": round(copy_s, 3),
                "ratio": round(copy_s / value, 1) if value else None,
                "notes": f"{len(TABLES)} tables of {rows:,} rows; baseline = CTAS copy of them; "
                "ratio = times faster than copying",
            }
        )
    return entries


def run(results_dir: Path, sizes: tuple[int, ...] = (10_000, 1_000_000, 10_000_000)) -> list[dict]:
    entries = []
    for rows in sizes:
        entries += _measure(results_dir.parent / "work" / f"publish_{rows}", rows)
    return entries
