"""SQL connector: one table of any SQLAlchemy database, by cursor column or full refresh.

Incremental reads take rows whose cursor (e.g. `updated_at`) is above the last loaded cursor minus
a look-back, so late-arriving rows are not missed; rows re-read by the look-back are dropped by
the merge when unchanged. The default source is a SQLite file, opened read-only.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import os
import re
import sqlite3
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import duckdb

from elt_platform.connectors.base import Batch, ExtractContext, SourcePart
from elt_platform.errors import (
    ConfigError,
    EltError,
    SourceDataError,
    SourceNotFound,
    SourceUnavailable,
)
from elt_platform.orchestration.dataset_names import DatasetName, sql_table_dataset
from elt_platform.project.sources import SourceConfig, check_known_options, option

_OPTIONS = {"url", "url_env", "table", "schema", "cursor", "lookback", "chunk_rows", "lock_timeout"}
_DURATION = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*([smhd]?)\s*$")
_UNIT_SECONDS = {"": 1, "s": 1, "m": 60, "h": 3600, "d": 86400}


@dataclass(frozen=True)
class SqlConnector:
    name: str
    url: str  # SQLAlchemy URL; `{sources_dir}` is replaced by the landing folder
    table: str
    url_env: str | None = None  # environment variable that overrides `url` (read at run time)
    schema: str | None = None
    cursor: str | None = None  # None: full refresh
    lookback: float = 0.0  # seconds for date/time cursors, cursor units for numeric ones
    chunk_rows: int = 100_000
    lock_timeout: float = 5.0
    kind: str = "sql"

    @classmethod
    def from_source(cls, source: SourceConfig) -> SqlConnector:
        check_known_options(source, _OPTIONS)
        table = option(source, "table", str)
        url = option(source, "url", str)
        if not table or not url:
            raise ConfigError(f"source {source.name!r}: the sql connector needs `url` and `table`")
        chunk = option(source, "chunk_rows", int, 100_000)
        if chunk < 1:
            raise ConfigError(f"source {source.name!r}: chunk_rows must be >= 1")
        return cls(
            name=source.name,
            url=url,
            table=table,
            url_env=option(source, "url_env", str),
            schema=option(source, "schema", str),
            cursor=option(source, "cursor", str),
            lookback=_duration(source.name, option(source, "lookback", (int, float, str), 0)),
            chunk_rows=chunk,
            lock_timeout=float(option(source, "lock_timeout", (int, float), 5.0)),
        )

    def extract(self, con: duckdb.DuckDBPyConnection, ctx: ExtractContext) -> Batch:
        import sqlalchemy as sa

        engine, shown = self._engine(ctx.sources_dir)
        try:
            with engine.connect() as conn:
                table = self._reflect(sa, conn, shown)
                if self.cursor and self.cursor not in table.c:
                    raise ConfigError(
                        f"source {self.name!r}: cursor column {self.cursor!r} is not in "
                        f"table {self.table!r} ({', '.join(table.c.keys())})"
                    )
                return self._read(sa, conn, table, ctx, shown)
        except sa.exc.OperationalError as exc:
            reason = str(exc.orig).strip() if exc.orig is not None else "operational error"
            raise SourceUnavailable(f"source {self.name!r}: {shown}: {reason}") from None
        except sa.exc.DBAPIError as exc:
            reason = str(exc.orig).strip() if exc.orig is not None else str(exc)
            raise SourceDataError(f"source {self.name!r}: {shown}: {reason}") from None
        finally:
            engine.dispose()

    def changed_since(self, sources_dir: Path, state: dict[str, Any]) -> str | None:
        """Why an extraction from `state` could bring rows, or None when it cannot: the rows its
        look-back would re-read (cursor above the last cursor minus the look-back) are exactly
        those recorded, by a digest of their values; a new, late or updated row changes it."""
        if not self.cursor or state.get("cursor") is None or "window_sha256" not in state:
            return "no cursor window recorded (full refresh or an older extraction)"
        import sqlalchemy as sa

        floor = _minus(_decode(state["cursor"]), self.lookback)
        try:
            engine, shown = self._engine(sources_dir)
        except EltError as exc:
            return f"probe failed: {exc}"  # the extraction reports it properly
        try:
            with engine.connect() as conn:
                table = self._reflect(sa, conn, shown)
                if self.cursor not in table.c:
                    return f"cursor column {self.cursor!r} is gone"
                rows = conn.execute(sa.select(table).where(table.c[self.cursor] > floor)).all()
        except (sa.exc.DBAPIError, EltError) as exc:
            return f"probe failed: {type(exc).__name__}"
        finally:
            engine.dispose()
        if rows_digest(rows) != state["window_sha256"]:
            return f"rows with {self.cursor} after {floor} changed"
        return None

    def resolved_url(self, sources_dir: Path):
        """The SQLAlchemy URL in effect: `url_env` if set, `{sources_dir}` filled in."""
        import sqlalchemy as sa

        raw = (os.environ.get(self.url_env) if self.url_env else None) or self.url
        try:
            return sa.engine.make_url(raw.replace("{sources_dir}", str(sources_dir)))
        except sa.exc.ArgumentError as exc:
            raise ConfigError(f"source {self.name!r}: invalid database url: {exc}") from None

    def datasets(self, sources_dir: Path) -> list[DatasetName]:
        return [sql_table_dataset(self.resolved_url(sources_dir), self.schema, self.table)]

    def _engine(self, sources_dir: Path):
        import sqlalchemy as sa

        url = self.resolved_url(sources_dir)
        shown = url.render_as_string(hide_password=True)
        if url.get_backend_name() != "sqlite":
            return sa.create_engine(url, poolclass=sa.pool.NullPool), shown
        path = Path(url.database or "")
        if not url.database or not path.is_file():
            raise SourceNotFound(
                f"source {self.name!r}: SQLite database {url.database or '(none)'} does not exist"
            )
        uri = path.resolve().as_uri() + "?mode=ro"  # read-only: never create or change it
        timeout = self.lock_timeout

        def connect() -> sqlite3.Connection:
            return sqlite3.connect(uri, uri=True, timeout=timeout, check_same_thread=False)

        return sa.create_engine("sqlite://", creator=connect, poolclass=sa.pool.NullPool), shown

    def _reflect(self, sa, conn, shown: str):
        try:
            return sa.Table(self.table, sa.MetaData(), schema=self.schema, autoload_with=conn)
        except sa.exc.NoSuchTableError:
            raise SourceNotFound(
                f"source {self.name!r}: table {self.table!r} does not exist in {shown}"
            ) from None

    def _read(self, sa, conn, table, ctx: ExtractContext, shown: str) -> Batch:
        import pyarrow as pa
        import pyarrow.parquet as pq

        types = [_arrow_type(sa, c.type) for c in table.columns]
        arrow_schema = pa.schema([(c.name, t) for c, t in zip(table.columns, types, strict=True)])
        query = sa.select(table)
        previous = ctx.state.get("cursor") if self.cursor else None
        read_after = None
        if previous is not None:
            read_after = _minus(_decode(previous), self.lookback)
            query = query.where(table.c[self.cursor] > read_after)
        result = conn.execution_options(stream_results=True, yield_per=self.chunk_rows).execute(
            query
        )
        parts: list[SourcePart] = []
        newest, done = _decode(previous) if previous is not None else None, 0
        cursor_index = list(table.c.keys()).index(self.cursor) if self.cursor else None
        window: list = []  # rows the next run's look-back re-reads (their digest is the probe's)
        while True:
            try:
                rows = result.fetchmany(self.chunk_rows)
            except (ValueError, TypeError) as exc:
                raise SourceDataError(
                    f"source {self.name!r}: table {self.table!r}, a row after row {done}: {exc}"
                ) from None
            if not rows and (parts or previous is not None):
                break
            label = f"table {self.table} rows {done + 1}-{done + len(rows)}"
            try:
                columns = list(zip(*rows, strict=True)) if rows else [[] for _ in types]
                arrays = [pa.array(col, type=t) for col, t in zip(columns, types, strict=True)]
            except (pa.ArrowException, ValueError, TypeError) as exc:
                raise SourceDataError(f"source {self.name!r}: {label}: {exc}") from None
            if cursor_index is not None and rows:
                top = max(v for v in columns[cursor_index] if v is not None)
                newest = top if newest is None else max(newest, top)
                floor = _minus(newest, self.lookback)
                window = [r for r in (*window, *rows) if _after(r[cursor_index], floor)]
            part = SourcePart(ctx.work_dir / f"sql-{len(parts):05d}.parquet", label)
            pq.write_table(pa.table(arrays, schema=arrow_schema), part.path, compression="zstd")
            parts.append(part)
            done += len(rows)
            if not rows:
                break
        return Batch(
            parts=parts,
            state=(
                {"cursor": _encode(newest), "window_sha256": rows_digest(window)}
                if self.cursor and newest is not None
                else {}
            ),
            position={
                "database": shown,
                "table": self.table,
                "cursor_column": self.cursor,
                "read_after": _encode(read_after),
                "cursor": _encode(newest),
                "lookback": self.lookback,
                "rows": done,
            },
            source_schema={c.name: str(c.type) for c in table.columns},
            bytes_read=sum(p.path.stat().st_size for p in parts),
            full_refresh=self.cursor is None,
            counters={"chunks": len(parts)},
        )


def rows_digest(rows) -> str:
    """Order-independent digest of rows as the driver returns them (the extraction's chunk rows
    and the probe's must come from the same query shape)."""
    return hashlib.sha256("\n".join(sorted(repr(tuple(r)) for r in rows)).encode()).hexdigest()


def _after(value: Any, floor: Any) -> bool:
    return value is not None and value > floor


def _arrow_type(sa, sql_type):
    import pyarrow as pa

    checks = [
        (sa.Boolean, pa.bool_()),
        (sa.Integer, pa.int64()),
        (sa.Float, pa.float64()),
        (sa.DateTime, pa.timestamp("us")),
        (sa.Date, pa.date32()),
        (sa.Time, pa.time64("us")),
        (sa.LargeBinary, pa.binary()),
    ]
    for kind, arrow in checks:
        if isinstance(sql_type, kind):
            return arrow
    if isinstance(sql_type, sa.Numeric):
        return pa.decimal128(sql_type.precision or 38, sql_type.scale or 0)
    return pa.string()


def _duration(source: str, value: Any) -> float:
    if isinstance(value, int | float):
        return float(value)
    match = _DURATION.match(str(value))
    if not match:
        raise ConfigError(f"source {source!r}: lookback must be a number or like 90s, 30m, 2h, 1d")
    return float(match.group(1)) * _UNIT_SECONDS[match.group(2)]


def _encode(value: Any) -> Any:
    if isinstance(value, dt.datetime | dt.date):
        return {"type": type(value).__name__, "value": value.isoformat()}
    return value


def _decode(value: Any) -> Any:
    if isinstance(value, dict):
        kind = dt.datetime if value["type"] == "datetime" else dt.date
        return kind.fromisoformat(value["value"])
    return value


def _minus(value: Any, lookback: float) -> Any:
    if isinstance(value, dt.datetime | dt.date):
        return value - dt.timedelta(seconds=lookback)
    return value - lookback if lookback else value
