"""What columns a new source has, read from the source itself when it is reachable (landing files,
a SQL table), so a scaffolded dbt YAML and staging model name them instead of `select *`."""

from __future__ import annotations

from pathlib import Path

import duckdb
import sqlalchemy as sa

from elt_platform.project.sources import SourceConfig
from elt_platform.sqlident import sql_literal

_READERS = {"parquet": "read_parquet", "csv": "read_csv_auto", "jsonl": "read_json_auto"}


def discover_columns(source: SourceConfig, sources_dir: Path) -> list[tuple[str, str]]:
    """(column, type) of the source's data, or [] when it cannot be read yet."""
    try:
        if source.connector == "files":
            return _file_columns(source, sources_dir)
        if source.connector == "sql":
            return _sql_columns(source, sources_dir)
    except (duckdb.Error, sa.exc.SQLAlchemyError, OSError):
        return []
    return []  # an HTTP API is not sampled: its first page may not show every field


def _file_columns(source: SourceConfig, sources_dir: Path) -> list[tuple[str, str]]:
    files = sorted(str(p) for p in sources_dir.glob(str(source.options["path"])) if p.is_file())
    reader = _READERS.get(str(source.options.get("format", "parquet")))
    if not files or reader is None:
        return []
    listing = "[" + ", ".join(sql_literal(f) for f in files[:5]) + "]"
    con = duckdb.connect()
    try:
        rows = con.execute(f"DESCRIBE SELECT * FROM {reader}({listing})").fetchall()
    finally:
        con.close()
    return [(r[0], str(r[1]).lower()) for r in rows]


def _sql_columns(source: SourceConfig, sources_dir: Path) -> list[tuple[str, str]]:
    url = str(source.options["url"]).replace("{sources_dir}", str(sources_dir))
    engine = sa.create_engine(url)
    try:
        columns = sa.inspect(engine).get_columns(str(source.options["table"]))
    finally:
        engine.dispose()
    return [(c["name"], str(c["type"]).lower()) for c in columns]
