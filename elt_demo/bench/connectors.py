"""Connector benchmarks: file loads against bare DuckDB, incremental against full, HTTP rows/s.

- Parquet and CSV: `load_source` (extract, merge, commit, catalog) of `rows` orders into a fresh
  warehouse, against `CREATE TABLE ... AS SELECT * FROM read_parquet/read_csv(...)` of the same
  files into a DuckDB file (plus CHECKPOINT), in the same process. ratio = bare s / ours s.
- Incremental: the same warehouse after adding 1 % new rows in a new file. ratio = inc / full.
- HTTP: payments through the local demo API, 0 % and 30 % injected faults (20 % 500/429, 10 %
  dropped connections). ratio = rows/s with faults / rows/s without.
"""

from __future__ import annotations

import dataclasses
import os
import shutil
import statistics
import time
from collections.abc import Callable
from pathlib import Path

import duckdb
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.csv as pacsv
import pyarrow.parquet as pq

from elt_demo.api import DemoApi, FaultPlan
from elt_demo.synthetic import SyntheticSpec, generate_frames
from elt_platform.connectors.load import load_source, make_connector
from elt_platform.project.sources import RetrySettings, SourceConfig
from elt_platform.store.warehouse import Warehouse

ROWS_PER_FILE = 1_000_000
HTTP_MAX_ROWS = 200_000  # the API serialises JSON in Python: rows/s, not size, is the point
CSV_COLUMNS = {
    "order_id": "BIGINT",
    "customer_id": "BIGINT",
    "product_id": "BIGINT",
    "quantity": "INTEGER",
    "unit_price": "DECIMAL(12,2)",
    "status": "VARCHAR",
    "ordered_at": "TIMESTAMP",
    "updated_at": "TIMESTAMP",
}
TOKEN_ENV = "ELT_BENCH_API_TOKEN"


def run(results_dir: Path, rows: int = 10_000_000) -> list[dict]:
    work = Path(results_dir).parent / "work" / "connectors"
    shutil.rmtree(work, ignore_errors=True)
    landing = work / "landing"
    frames = generate_frames(SyntheticSpec(rows=rows, seed=1))
    orders, payments = frames["orders"], frames["payments"]
    del frames
    repeat = 3 if rows <= 2_000_000 else 1
    try:
        _write_files(orders, landing / "orders", "parquet")
        _write_files(orders, landing / "orders_csv", "csv")
        entries = _file_loads(work, landing, orders.num_rows, repeat)
        entries += _incremental(work, landing, orders, repeat)
        entries += _http(work, landing, payments.slice(0, min(HTTP_MAX_ROWS, payments.num_rows)))
    finally:
        shutil.rmtree(work, ignore_errors=True)
    return entries


def _source(name: str, connector: str, **options) -> SourceConfig:
    return SourceConfig(
        name=name,
        connector=connector,
        options=options,
        owner="team:bench",
        primary_key=("order_id", "updated_at") if connector == "files" else ("payment_id",),
        retries=RetrySettings(max_retries=0),
    )


def _write_files(orders: pa.Table, folder: Path, fmt: str) -> None:
    folder.mkdir(parents=True, exist_ok=True)
    for i in range(0, orders.num_rows, ROWS_PER_FILE):
        chunk = orders.slice(i, ROWS_PER_FILE)
        if fmt == "parquet":
            pq.write_table(
                chunk,
                folder / f"orders-{i // ROWS_PER_FILE:05d}.parquet",
                compression="zstd",
                compression_level=1,
            )
        else:
            pacsv.write_csv(chunk, folder / f"orders-{i // ROWS_PER_FILE:05d}.csv")


def _timed(fn: Callable[[], object]) -> float:
    started = time.perf_counter()
    fn()
    return time.perf_counter() - started


def _bare_ctas(db: Path, reader: str) -> float:
    db.unlink(missing_ok=True)
    con = duckdb.connect(str(db))
    con.execute("SET enable_progress_bar = false")
    try:
        return _timed(
            lambda: (
                con.execute(f"CREATE TABLE t AS SELECT * FROM {reader}"),
                con.execute("CHECKPOINT"),
            )
        )
    finally:
        con.close()
        db.unlink(missing_ok=True)


def _ours(work: Path, landing: Path, source: SourceConfig) -> float:
    root = work / "wh"
    shutil.rmtree(root, ignore_errors=True)
    wh = Warehouse(root)
    connector = make_connector(source)
    seconds = _timed(
        lambda: load_source(wh, source, connector, "staging", sources_dir=landing, run_id="bench")
    )
    shutil.rmtree(root, ignore_errors=True)
    return seconds


def _file_loads(work: Path, landing: Path, rows: int, repeat: int) -> list[dict]:
    entries = []
    csv_cols = "{" + ", ".join(f"'{c}': '{t}'" for c, t in CSV_COLUMNS.items()) + "}"
    cases = [
        (
            "parquet",
            _source("orders", "files", path="orders/*.parquet", format="parquet"),
            f"read_parquet('{landing}/orders/*.parquet')",
        ),
        (
            "csv",
            _source(
                "orders_csv", "files", path="orders_csv/*.csv", format="csv", columns=CSV_COLUMNS
            ),
            f"read_csv('{landing}/orders_csv/*.csv', header = true, delim = ',', quote = '\"',"
            f" escape = '\"', strict_mode = true, auto_detect = false, columns = {csv_cols})",
        ),
    ]
    for fmt, source, reader in cases:
        bare = statistics.median(_bare_ctas(work / "bare.duckdb", reader) for _ in range(repeat))
        ours = statistics.median(_ours(work, landing, source) for _ in range(repeat))
        entries.append(
            {
                "name": f"connectors.files_{fmt}_full_load",
                "metric": f"load {rows:,} rows of {fmt.upper()} (speed vs bare DuckDB CTAS)",
                "value": round(ours, 2),
                "unit": "s",
                "baseline": round(bare, 2),
                "ratio": round(bare / ours, 2),
                "notes": f"ratio = bare/ours, target >= 0.5; {rows / ours:,.0f} rows/s; "
                f"median of {repeat}",
            }
        )
    return entries


def _incremental(work: Path, landing: Path, orders: pa.Table, repeat: int) -> list[dict]:
    source = _source("orders", "files", path="orders/*.parquet", format="parquet")
    connector = make_connector(source)
    added = max(1, orders.num_rows // 100)
    top = pc.max(orders["order_id"]).as_py()
    new = orders.slice(0, added).set_column(
        0, "order_id", pa.array(range(top + 1, top + 1 + added), pa.int64())
    )
    fulls, incs = [], []
    for i in range(repeat):
        root = work / "wh_inc"
        shutil.rmtree(root, ignore_errors=True)
        wh = Warehouse(root)

        def load(wh: Warehouse = wh) -> None:
            load_source(wh, source, connector, "staging", sources_dir=landing, run_id="bench")

        fulls.append(_timed(load))
        extra = landing / "orders" / f"orders-new-{i}.parquet"
        pq.write_table(new, extra, compression="zstd", compression_level=1)
        incs.append(_timed(load))
        extra.unlink()
        shutil.rmtree(root, ignore_errors=True)
    full, inc = statistics.median(fulls), statistics.median(incs)
    return [
        {
            "name": "connectors.files_incremental_1pct",
            "metric": f"incremental load of +{added:,} rows (1 %) vs full load",
            "value": round(inc, 3),
            "unit": "s",
            "baseline": round(full, 2),
            "ratio": round(inc / full, 3),
            "notes": "ratio = incremental/full, target <= 0.10; unchanged parts are hard-linked",
        }
    ]


def _http(work: Path, landing: Path, payments: pa.Table) -> list[dict]:
    data = work / "api"
    (data / "payments").mkdir(parents=True)
    pq.write_table(payments, data / "payments" / "payments.parquet")
    source = _source(
        "payments",
        "http",
        base_url="http://127.0.0.1:1",
        endpoint="/v1/payments",
        pagination="offset",
        page_size=1000,
        concurrency=4,
        auth_env=TOKEN_ENV,
        columns={
            "payment_id": "BIGINT",
            "order_id": "BIGINT",
            "method": "VARCHAR",
            "amount": "DECIMAL(12,2)",
            "paid_at": "TIMESTAMP",
        },
        timeout_seconds=5,
        max_attempts=12,
        backoff_seconds=0.02,
        max_backoff_seconds=0.5,
    )
    os.environ[TOKEN_ENV] = "bench-token"
    rates = {}
    try:
        for label, plan in (
            ("0", FaultPlan()),
            ("30", FaultPlan(error_rate=0.2, drop_rate=0.1, retry_after=0.05, seed=3)),
        ):
            with DemoApi(data, token="bench-token", faults=plan).running() as api:
                live = dataclasses.replace(source, options={**source.options, "base_url": api.url})
                seconds = _ours(work, landing, live)
            rates[label] = payments.num_rows / seconds
    finally:
        os.environ.pop(TOKEN_ENV, None)
    return [
        {
            "name": "connectors.http_rows_per_second_0pct_faults",
            "metric": f"HTTP offset pages of 1,000 (4 concurrent), {payments.num_rows:,} rows",
            "value": round(rates["0"]),
            "unit": "rows/s",
            "baseline": None,
            "ratio": None,
            "notes": "local demo API, no faults",
        },
        {
            "name": "connectors.http_rows_per_second_30pct_faults",
            "metric": "same with 30 % faults (20 % 500/429, 10 % dropped mid-page)",
            "value": round(rates["30"]),
            "unit": "rows/s",
            "baseline": round(rates["0"]),
            "ratio": round(rates["30"] / rates["0"], 2),
            "notes": "ratio = with faults / without; every row loaded exactly once",
        },
    ]
