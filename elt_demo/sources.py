"""Write the synthetic dataset into the landing folder, skipping work when it is already there.

Besides the landing files, customers also go into a SQLite database (`db/shop.sqlite`), the
source of the SQL connector; payments are served over HTTP by `elt_demo.api` from the
landing folder.
"""

from __future__ import annotations

import json
import os
import sqlite3
from pathlib import Path

import pyarrow as pa
import pyarrow.compute as pc

from elt_demo.synthetic import LandingDirError, SyntheticSpec, generate_frames, write_landing
from elt_platform.errors import ConfigError

DATABASE = Path("db") / "shop.sqlite"
DATABASE_TABLES = ("customers",)


def ensure_synthetic_sources(out_dir: Path, *, rows: int, seed: int) -> tuple[bool, dict[str, int]]:
    """Generate the dataset for (rows, seed) unless the folder already holds exactly that."""
    try:
        spec = SyntheticSpec(rows=rows, seed=seed)
    except ValueError as exc:
        raise ConfigError(str(exc), hint="use --rows >= 100 and --seed >= 0") from exc
    manifest = out_dir / "_manifest.json"
    if manifest.exists():
        recorded = json.loads(manifest.read_text())
        if recorded.get("spec") == {"rows": rows, "seed": seed}:
            tables = recorded.get("tables", {})
            if (out_dir / DATABASE).exists():
                return False, {name: entry["rows"] for name, entry in tables.items()}
            frames = generate_frames(spec)  # landing files are there, the database is not
            write_source_database({t: frames[t] for t in DATABASE_TABLES}, out_dir / DATABASE)
            return True, {name: entry["rows"] for name, entry in tables.items()}
    frames = generate_frames(spec)
    try:
        write_landing(frames, out_dir)
    except LandingDirError as exc:
        raise ConfigError(str(exc), hint="pass --out with an empty or generated folder") from exc
    write_source_database({t: frames[t] for t in DATABASE_TABLES}, out_dir / DATABASE)
    return True, {name: table.num_rows for name, table in frames.items()}


def write_source_database(tables: dict[str, pa.Table], path: Path) -> Path:
    """Write `tables` into a new SQLite file at `path` (atomically: temp file, then rename).

    Times are stored as SQLAlchemy stores them in SQLite ('YYYY-MM-DD HH:MM:SS.ffffff'), which
    also sorts correctly as text, so cursor comparisons work in SQL.
    """
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.tmp")
    tmp.unlink(missing_ok=True)
    con = sqlite3.connect(tmp)
    try:
        for name, table in tables.items():
            columns = [f'"{f.name}" {_sqlite_type(f.type)}' for f in table.schema]
            columns[0] += " PRIMARY KEY"
            con.execute(f'CREATE TABLE "{name}" ({", ".join(columns)})')
            if "updated_at" in table.column_names:
                con.execute(f'CREATE INDEX "ix_{name}_updated_at" ON "{name}" (updated_at)')
            values = [_sqlite_values(table.column(i)) for i in range(table.num_columns)]
            marks = ", ".join("?" for _ in table.schema)
            con.executemany(f'INSERT INTO "{name}" VALUES ({marks})', zip(*values, strict=True))
        con.commit()
    finally:
        con.close()
    os.replace(tmp, path)
    return path


def _sqlite_type(arrow_type: pa.DataType) -> str:
    if pa.types.is_integer(arrow_type):
        return "INTEGER"
    if pa.types.is_decimal(arrow_type):
        return f"NUMERIC({arrow_type.precision}, {arrow_type.scale})"
    if pa.types.is_floating(arrow_type):
        return "REAL"
    if pa.types.is_timestamp(arrow_type):
        return "TIMESTAMP"
    if pa.types.is_date(arrow_type):
        return "DATE"
    return "TEXT"


def _sqlite_values(column: pa.ChunkedArray) -> list:
    if pa.types.is_timestamp(column.type):
        # %S of a microsecond timestamp prints the fraction too: '2024-07-03 06:07:44.000000'
        return pc.strftime(column, format="%Y-%m-%d %H:%M:%S").to_pylist()
    if pa.types.is_date(column.type):
        return pc.strftime(column, format="%Y-%m-%d").to_pylist()
    if pa.types.is_decimal(column.type):
        return [None if v is None else str(v) for v in column.to_pylist()]
    return column.to_pylist()
