"""Contract validation throughput (pandera, polars back end) against one DuckDB scan."""

from __future__ import annotations

import shutil
import time
from pathlib import Path

import duckdb

from elt_demo.synthetic import SyntheticSpec, generate_frames
from elt_platform.checks.contract import check_contract
from elt_platform.project.contracts.from_dbt import contracts_for
from elt_platform.settings import load_settings
from elt_platform.store.warehouse import Warehouse


def run(results_dir: Path, rows: int = 10_000_000) -> list[dict]:
    work = results_dir.parent / "work" / f"contracts_{rows}"
    shutil.rmtree(work, ignore_errors=True)
    wh = Warehouse(work)
    orders = generate_frames(SyntheticSpec(rows=rows, seed=3))["orders"]
    con = duckdb.connect()
    try:
        con.register("orders_frame", orders)
        version = wh.versions.write_query(
            con, "raw/orders", "SELECT * FROM orders_frame", environment="staging"
        )
        contract = contracts_for(load_settings())["raw/orders"]  # the demo project's dbt YAML
        started = time.perf_counter()
        outcome = check_contract(version, contract)
        validate_s = time.perf_counter() - started
        if not outcome.passed:
            raise RuntimeError(f"benchmark data violates its contract: {outcome.description}")
        # Baseline: one DuckDB pass that must read every value (hash sums; counts come from stats).
        aggregates = ", ".join(f"sum(hash({c[0]}))" for c in version.schema)
        started = time.perf_counter()
        con.execute(f"SELECT {aggregates} FROM {version.scan_sql}").fetchall()
        scan_s = time.perf_counter() - started
    finally:
        con.close()
        shutil.rmtree(work, ignore_errors=True)
    n = version.rows
    return [
        {
            "name": "contracts",
            "metric": f"validate@{n:,}",
            "value": round(n / validate_s / 1e6, 2),
            "unit": "M rows/s",
            "baseline": round(n / scan_s / 1e6, 2),
            "ratio": round(scan_s / validate_s, 3),
            "notes": f"pandera/polars, all column checks of raw/orders ({validate_s:.2f} s incl. "
            f"Parquet read); baseline = one DuckDB scan ({scan_s:.2f} s); target 5 M rows/s",
        },
    ]
