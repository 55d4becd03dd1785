"""Write generated tables as landing files (Parquet + one CSV), atomically, with a manifest.

Layout under ``out_dir``::

    _manifest.json
    customers/customers.parquet
    products/products.csv
    orders/orders-00000.parquet ...           first version of every order
    orders/orders-updates-00000.parquet ...   late-arriving updates (same order_id, later update)
    payments/payments-00000.parquet ...
"""

from __future__ import annotations

import json
import os
import shutil
import tempfile
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.csv as pacsv
import pyarrow.parquet as pq

from elt_demo.synthetic.generator import SCHEMAS, TABLE_NAMES, spec_from_table

MANIFEST_NAME = "_manifest.json"
MANIFEST_GENERATOR = "elt_demo.synthetic.write_landing"
MANIFEST_FORMAT_VERSION = 1
_PARQUET_OPTIONS = {"compression": "zstd", "compression_level": 1}
# DuckDB reads a Parquet file on one thread per row group. Chunked tables get parallelism from
# their many files and keep 1 Mi-row groups (smaller groups cost ~60 % more CPU to write); the
# single customers file is cut into groups small enough for every core to take a share.
_ROW_GROUP_ROWS = 1 << 20
_SINGLE_FILE_ROW_GROUP_ROWS = 1 << 18


class LandingDirError(Exception):
    """The landing directory cannot be written (e.g. it holds files write_landing did not make)."""


def write_landing(
    frames: dict[str, pa.Table], out_dir: Path, *, rows_per_file: int = 1_000_000
) -> dict[str, list[Path]]:
    """Write ``frames`` under ``out_dir`` and return the files written per table.

    Files are written to a temporary sibling that replaces ``out_dir`` only when complete. An
    existing ``out_dir`` is replaced only if it is empty or was itself made by write_landing.
    """
    if rows_per_file < 1:
        raise ValueError(f"rows_per_file must be >= 1, got {rows_per_file}")
    missing = [name for name in TABLE_NAMES if name not in frames]
    if missing:
        raise ValueError(f"frames is missing tables: {', '.join(missing)}")
    out_dir = Path(out_dir)
    _check_replaceable(out_dir)
    out_dir.parent.mkdir(parents=True, exist_ok=True)

    tmp_dir = Path(tempfile.mkdtemp(prefix=f".{out_dir.name}.tmp-", dir=out_dir.parent))
    try:
        tmp_dir.chmod(0o777 & ~_current_umask())  # mkdtemp makes it private (0700)
        jobs = _plan(frames, rows_per_file)
        for rel in {rel.parent for rel, _, _ in jobs}:
            (tmp_dir / rel).mkdir(parents=True, exist_ok=True)
        # Parquet encoding and zstd release the GIL: one writer thread per core.
        with ThreadPoolExecutor(max_workers=max(1, os.cpu_count() or 1)) as pool:
            list(pool.map(lambda job: job[2](job[1], tmp_dir / job[0]), jobs))
        manifest = _manifest(frames, jobs, rows_per_file, tmp_dir)
        (tmp_dir / MANIFEST_NAME).write_text(json.dumps(manifest, indent=2, sort_keys=True) + "\n")
        _swap_into_place(tmp_dir, out_dir)
    except BaseException:
        shutil.rmtree(tmp_dir, ignore_errors=True)
        raise

    written: dict[str, list[Path]] = {name: [] for name in TABLE_NAMES}
    for rel, _, _ in jobs:
        written[rel.parts[0]].append(out_dir / rel)
    return written


def read_manifest(landing_dir: Path) -> dict:
    """The manifest of a landing directory written by write_landing."""
    path = Path(landing_dir) / MANIFEST_NAME
    manifest = json.loads(path.read_text())
    if manifest.get("generator") != MANIFEST_GENERATOR:
        raise LandingDirError(f"{path} was not written by write_landing")
    return manifest


def raw_views_sql(landing_dir: Path, schema: str = "raw") -> list[str]:
    """DuckDB statements creating ``schema``.{customers,products,orders,payments} views over the
    landing files, with the products CSV typed exactly like the generated schema."""
    root = Path(landing_dir).resolve()

    def glob(table: str, pattern: str) -> str:
        return "'" + str(root / table / pattern).replace("'", "''") + "'"

    product_columns = ", ".join(
        f"'{field.name}': '{_duckdb_type(field.type)}'" for field in SCHEMAS["products"]
    )
    return [
        f"create schema if not exists {schema}",
        f"create or replace view {schema}.customers as "
        f"select * from read_parquet({glob('customers', '*.parquet')})",
        f"create or replace view {schema}.products as "
        f"select * from read_csv({glob('products', '*.csv')}, header = true, delim = ',', "
        f"quote = '\"', columns = {{{product_columns}}})",
        f"create or replace view {schema}.orders as "
        f"select * from read_parquet({glob('orders', '*.parquet')})",
        f"create or replace view {schema}.payments as "
        f"select * from read_parquet({glob('payments', '*.parquet')})",
    ]


# --------------------------------------------------------------------------------------------

Writer = Callable[[pa.Table, Path], None]


def _write_parquet(table: pa.Table, path: Path) -> None:
    pq.write_table(table, path, row_group_size=_ROW_GROUP_ROWS, **_PARQUET_OPTIONS)


def _write_single_parquet(table: pa.Table, path: Path) -> None:
    pq.write_table(table, path, row_group_size=_SINGLE_FILE_ROW_GROUP_ROWS, **_PARQUET_OPTIONS)


def _write_csv(table: pa.Table, path: Path) -> None:
    pacsv.write_csv(table, path, pacsv.WriteOptions(include_header=True, delimiter=","))


def _chunks(table: pa.Table, rows_per_file: int) -> list[pa.Table]:
    if table.num_rows == 0:
        return [table]  # keep one (empty) file so the layout and the schema are always present
    return [table.slice(i, rows_per_file) for i in range(0, table.num_rows, rows_per_file)]


def _split_orders(orders: pa.Table) -> tuple[pa.Table, pa.Table]:
    """First versions (updated_at == ordered_at) and late-arriving updates (updated_at later)."""
    is_update = pc.greater(orders["updated_at"], orders["ordered_at"])
    n_updates = pc.sum(is_update).as_py() or 0
    n_first = orders.num_rows - n_updates
    # generate_frames puts all updates last: then slicing avoids copying 10 M rows.
    if not pc.any(is_update.slice(0, n_first)).as_py():
        return orders.slice(0, n_first), orders.slice(n_first)
    return orders.filter(pc.invert(is_update)), orders.filter(is_update)


def _plan(frames: dict[str, pa.Table], rows_per_file: int) -> list[tuple[Path, pa.Table, Writer]]:
    first, updates = _split_orders(frames["orders"])
    jobs: list[tuple[Path, pa.Table, Writer]] = [
        (Path("customers/customers.parquet"), frames["customers"], _write_single_parquet),
        (Path("products/products.csv"), frames["products"], _write_csv),
    ]
    for prefix, table in (
        ("orders/orders", first),
        ("orders/orders-updates", updates),
        ("payments/payments", frames["payments"]),
    ):
        for i, chunk in enumerate(_chunks(table, rows_per_file)):
            jobs.append((Path(f"{prefix}-{i:05d}.parquet"), chunk, _write_parquet))
    return jobs


def _manifest(
    frames: dict[str, pa.Table],
    jobs: list[tuple[Path, pa.Table, Writer]],
    rows_per_file: int,
    root: Path,
) -> dict:
    spec = spec_from_table(frames["orders"])
    tables: dict[str, dict] = {name: {"rows": 0, "files": []} for name in TABLE_NAMES}
    for rel, table, _ in jobs:
        entry = tables[rel.parts[0]]
        entry["rows"] += table.num_rows
        entry["files"].append(
            {"path": rel.as_posix(), "rows": table.num_rows, "bytes": (root / rel).stat().st_size}
        )
    return {
        "generator": MANIFEST_GENERATOR,
        "format_version": MANIFEST_FORMAT_VERSION,
        "spec": None if spec is None else {"rows": spec.rows, "seed": spec.seed},
        "rows_per_file": rows_per_file,
        "tables": tables,
    }


def _check_replaceable(out_dir: Path) -> None:
    if not out_dir.exists():
        return
    if not out_dir.is_dir():
        raise LandingDirError(f"{out_dir} exists and is not a directory")
    if not any(out_dir.iterdir()):
        return
    try:
        read_manifest(out_dir)
    except (OSError, ValueError, LandingDirError) as exc:
        raise LandingDirError(
            f"refusing to overwrite {out_dir}: it is not empty and has no {MANIFEST_NAME} "
            "from write_landing; choose another directory or remove it"
        ) from exc


def _swap_into_place(tmp_dir: Path, out_dir: Path) -> None:
    """Replace out_dir by tmp_dir with renames; the old copy is deleted only after the swap."""
    if not out_dir.exists():
        tmp_dir.rename(out_dir)
        return
    old = Path(tempfile.mkdtemp(prefix=f".{out_dir.name}.old-", dir=out_dir.parent))
    old.rmdir()
    out_dir.rename(old)
    try:
        tmp_dir.rename(out_dir)
    except BaseException:
        old.rename(out_dir)
        raise
    shutil.rmtree(old, ignore_errors=True)


def _current_umask() -> int:
    mask = os.umask(0o022)
    os.umask(mask)
    return mask


def _duckdb_type(arrow_type: pa.DataType) -> str:
    if pa.types.is_int64(arrow_type):
        return "BIGINT"
    if pa.types.is_int32(arrow_type):
        return "INTEGER"
    if pa.types.is_string(arrow_type):
        return "VARCHAR"
    if pa.types.is_decimal(arrow_type):
        return f"DECIMAL({arrow_type.precision},{arrow_type.scale})"
    if pa.types.is_date32(arrow_type):
        return "DATE"
    if pa.types.is_timestamp(arrow_type):
        return "TIMESTAMP"
    raise TypeError(f"no DuckDB type mapping for {arrow_type}")
