"""PostgreSQL behind the metadata store (ELT_METADATA_URL; the embedded SQLite file is the default).

The platform's SQL is written once, SQLite-flavoured (`?`/`:name` parameters, `ON CONFLICT`,
SQLite DDL and a few SQLite idioms); this module runs it on Postgres through psycopg2 with
SQLAlchemy's connection pool. `translate` rewrites parameters to psycopg2's style and the idioms
the platform uses (`INSERT OR IGNORE`, `rowid`, `group_concat`, `json_each`, `json_extract(..)
= 1`, `PRAGMA table_info`); `postgres_ddl` widens DDL types (INTEGER -> BIGINT, AUTOINCREMENT ->
identity) and turns the ledger's refusing triggers into PL/pgSQL ones; rows read like
`sqlite3.Row` (by name and by position). Every write transaction takes one advisory lock first,
so writers are serialised exactly as SQLite's `BEGIN IMMEDIATE` serialises them (the ledger's
hash chain relies on it). Imported only when a PostgreSQL URL is configured (the `scale` extra).
"""

from __future__ import annotations

import os
import re
from collections.abc import Iterable, Iterator, Mapping, Sequence
from contextlib import contextmanager, suppress
from functools import lru_cache
from typing import Any

from elt_platform.errors import InvalidServiceUrl
from elt_platform.store.service_urls import driver_url, unavailable

try:
    import psycopg2
    import psycopg2.extensions
    import psycopg2.extras
    import sqlalchemy as sa
except ImportError as exc:  # pragma: no cover - depends on the installation
    raise InvalidServiceUrl(
        "a PostgreSQL URL is configured but psycopg2 is not installed",
        hint="install the scale extra: pip install -e '.[scale]' (make test-scale does)",
    ) from exc

# Advisory lock key (two-int form: class, object) held by every metadata write transaction.
WRITE_LOCK = (0x454C54, 1)
LOCK_TIMEOUT = "30s"  # as long as SQLite's busy timeout
CONNECT_TIMEOUT = 10

# What `SELECT name FROM sqlite_master WHERE type = 'table'` reads on Postgres.
SQLITE_MASTER_VIEW = """
CREATE OR REPLACE VIEW sqlite_master AS
SELECT 'table'::text AS type, table_name::text AS name, table_name::text AS tbl_name
FROM information_schema.tables
WHERE table_schema = current_schema() AND table_type = 'BASE TABLE';
"""


def _numeric(value: str | None, cursor: Any) -> int | float | None:
    # SQLite returns int or float from sum()/avg(); Postgres would return Decimal.
    if value is None:
        return None
    return float(value) if any(c in value for c in ".eEN") else int(value)


_NUMERIC = psycopg2.extensions.new_type((1700,), "ELT_NUMERIC", _numeric)

_ENGINES: dict[tuple[str, int], sa.Engine] = {}


def engine(url: str) -> sa.Engine:
    """One pooled engine per URL and process (pools must not cross a fork)."""
    key = (url, os.getpid())
    if key not in _ENGINES:
        created = sa.create_engine(
            driver_url(url),
            pool_size=2,
            max_overflow=16,
            pool_pre_ping=True,
            connect_args={"connect_timeout": CONNECT_TIMEOUT, "application_name": "elt-platform"},
        )

        @sa.event.listens_for(created, "connect")
        def _on_connect(dbapi_connection, _record) -> None:
            psycopg2.extensions.register_type(_NUMERIC, dbapi_connection)

        _ENGINES[key] = created
    return _ENGINES[key]


def dispose_engines() -> None:
    """Close every pooled connection of this process (tests that drop databases call it)."""
    for key in [k for k in _ENGINES if k[1] == os.getpid()]:
        _ENGINES.pop(key).dispose()
    _ensure_schema.cache_clear()


_IDIOMS = (
    (re.compile(r"\bINSERT\s+OR\s+IGNORE\s+INTO\b", re.I), "INSERT INTO"),
    (re.compile(r"\browid\b", re.I), "ctid"),  # insertion order and row identity
    (re.compile(r"\bgroup_concat\(", re.I), "string_agg("),
    (re.compile(r"\bjson_each\(([\w.]+)\)", re.I), r"json_each((\1)::json)"),
    # json_extract(col, '$.key') = 1: SQLite reads JSON true as 1.
    (
        re.compile(r"\bjson_extract\(([\w.]+),\s*'\$\.(\w+)'\)\s*=\s*1\b", re.I),
        r"((\1)::jsonb -> '\2') IN ('1'::jsonb, 'true'::jsonb)",
    ),
)
_PRAGMA_TABLE_INFO = re.compile(r"^\s*PRAGMA\s+table_info\((\w+)\)\s*;?\s*$", re.I)


@lru_cache(maxsize=4096)
def translate(sql: str) -> str:
    """SQLite-flavoured SQL as psycopg2 runs it: the idioms above, then `?` -> `%s`, `:name` ->
    `%(name)s` and `%` -> `%%` (placeholders outside quotes and comments; `%` everywhere, as
    psycopg2 reads the whole text)."""
    ignore = bool(_IDIOMS[0][0].search(sql))
    for pattern, replacement in _IDIOMS:
        sql = pattern.sub(replacement, sql)
    if ignore:
        sql = sql.rstrip().rstrip(";") + " ON CONFLICT DO NOTHING"
    out: list[str] = []
    i, n, quote = 0, len(sql), ""
    while i < n:
        c = sql[i]
        if c == "%":
            out.append("%%")
        elif quote:
            out.append(c)
            if c == quote:
                quote = ""
        elif c in "'\"":
            quote = c
            out.append(c)
        elif c == "-" and sql.startswith("--", i):
            end = sql.find("\n", i)
            end = n if end < 0 else end
            out.append(sql[i:end].replace("%", "%%"))
            i = end
            continue
        elif c == "?":
            out.append("%s")
        elif c == ":" and i + 1 < n and (sql[i + 1].isalpha() or sql[i + 1] == "_"):
            if i > 0 and sql[i - 1] == ":":  # a `::type` cast
                out.append(c)
            else:
                j = i + 1
                while j < n and (sql[j].isalnum() or sql[j] == "_"):
                    j += 1
                out.append(f"%({sql[i + 1 : j]})s")
                i = j
                continue
        else:
            out.append(c)
        i += 1
    return "".join(out)


_DDL_RULES = (
    # A SQLite trigger that refuses a statement (append-only tables) as a PL/pgSQL one.
    (re.compile(r"CREATE TRIGGER IF NOT EXISTS (\w+) BEFORE (\w+) ON (\w+)\s+"
                r"BEGIN SELECT RAISE\(ABORT, '([^']*)'\); END;", re.I),
     r"CREATE OR REPLACE FUNCTION \1_refuse() RETURNS trigger LANGUAGE plpgsql AS"
     r" $body$ BEGIN RAISE EXCEPTION '\4' USING ERRCODE = 'integrity_constraint_violation';"
     r" END $body$;"
     r" CREATE OR REPLACE TRIGGER \1 BEFORE \2 ON \3 FOR EACH ROW EXECUTE FUNCTION \1_refuse();"),
    (re.compile(r"\bINTEGER\s+PRIMARY\s+KEY\s+AUTOINCREMENT\b", re.I),
     "BIGINT GENERATED BY DEFAULT AS IDENTITY PRIMARY KEY"),
    (re.compile(r"\bINTEGER\b", re.I), "BIGINT"),  # SQLite integers are 64-bit
    (re.compile(r"\bREAL\b", re.I), "DOUBLE PRECISION"),
    (re.compile(r"\bBLOB\b", re.I), "BYTEA"),
)  # fmt: skip


@lru_cache(maxsize=256)
def postgres_ddl(script: str) -> str:
    """SQLite DDL as Postgres DDL (the schema text stays written once)."""
    for pattern, replacement in _DDL_RULES:
        script = pattern.sub(replacement, script)
    return script


def _adapt(params: Sequence[Any] | Mapping[str, Any]) -> Sequence[Any] | Mapping[str, Any]:
    # SQLite stores booleans as 0/1; a Postgres BIGINT column refuses `true`.
    if isinstance(params, Mapping):
        return {k: int(v) if isinstance(v, bool) else v for k, v in params.items()}
    return tuple(int(v) if isinstance(v, bool) else v for v in params)


class PgConnection:
    """The subset of `sqlite3.Connection` the platform uses, on one pooled Postgres connection
    inside one transaction."""

    dialect = "postgresql"

    def __init__(self, raw: Any, url: str, *, writing: bool) -> None:
        self._raw = raw
        self._url = url
        self._writing = writing

    def cursor(self) -> Any:
        return self._raw.cursor(cursor_factory=psycopg2.extras.DictCursor)

    def execute(self, sql: str, params: Sequence[Any] | Mapping[str, Any] = ()) -> Any:
        cur = self.cursor()
        word = sql.strip().rstrip(";").upper()
        if word.startswith("BEGIN") and not self._writing:
            # A read that wants one snapshot (on SQLite: a read transaction).
            cur.execute("BEGIN ISOLATION LEVEL REPEATABLE READ")
            return cur
        pragma = _PRAGMA_TABLE_INFO.match(sql)
        if pragma:  # (cid, name, type, notnull, dflt_value, pk), as SQLite answers
            cur.execute(
                "SELECT ordinal_position - 1, column_name::text, data_type::text,"
                " (is_nullable = 'NO')::int, column_default, 0"
                " FROM information_schema.columns WHERE table_schema = current_schema()"
                " AND table_name = %s ORDER BY ordinal_position",
                (pragma.group(1).lower(),),
            )
        elif word.startswith("PRAGMA"):
            pass  # SQLite connection settings: nothing to do on Postgres
        else:
            cur.execute(translate(sql), _adapt(params))
        return cur

    def executemany(self, sql: str, rows: Iterable[Sequence[Any] | Mapping[str, Any]]) -> Any:
        cur = self.cursor()
        psycopg2.extras.execute_batch(cur, translate(sql), [_adapt(r) for r in rows])
        return cur

    def executescript(self, script: str) -> None:
        """DDL (once per process, URL and script), serialised with every writer (concurrent
        CREATE TABLE IF NOT EXISTS can collide); outside a write transaction it commits at once,
        as SQLite's does."""
        if self._writing:
            self.cursor().execute(postgres_ddl(script))
            return
        _ensure_schema(self._url, script)


@contextmanager
def connection(url: str, *, writing: bool, service: str = "metadata store") -> Iterator[Any]:
    """A pooled connection. Writing: one transaction that first takes the global write lock,
    committed when the block ends or rolled back on an error. Reading: autocommit, as SQLite's
    connections are (each statement sees the latest commit; `BEGIN` ... `COMMIT` holds one
    snapshot)."""
    try:
        raw = engine(url).raw_connection()
    except (
        sa.exc.OperationalError,
        sa.exc.InterfaceError,
        psycopg2.OperationalError,
        psycopg2.InterfaceError,
    ) as exc:
        raise unavailable(service, url, getattr(exc, "orig", None) or exc) from None
    try:
        con = PgConnection(raw, url, writing=writing)
        if writing:
            cur = raw.cursor()
            cur.execute(f"SET LOCAL lock_timeout = '{LOCK_TIMEOUT}'")
            cur.execute("SELECT pg_advisory_xact_lock(%s, %s)", WRITE_LOCK)
        else:
            raw.driver_connection.autocommit = True
        try:
            yield con
        except BaseException:
            if writing:
                raw.rollback()
            raise
        if writing:
            raw.commit()
    finally:
        if not writing:
            _end_read(raw.driver_connection)
        raw.close()  # back to the pool


def _end_read(dbapi: Any) -> None:
    """Back to the pool's mode: a read's `BEGIN` left open is rolled back first."""
    with suppress(psycopg2.Error):
        if dbapi.info.transaction_status != psycopg2.extensions.TRANSACTION_STATUS_IDLE:
            dbapi.cursor().execute("ROLLBACK")
        dbapi.autocommit = False


def probe(url: str, service: str) -> None:
    """Connect once to `url` (for a service whose own client would retry for long, e.g. Dagster's
    storage): ServiceUnavailable naming `service` when the server does not answer or refuses."""
    try:
        dsn = sa.engine.make_url(driver_url(url)).set(drivername="postgresql")
        psycopg2.connect(dsn.render_as_string(False), connect_timeout=CONNECT_TIMEOUT).close()
    except psycopg2.Error as exc:
        raise unavailable(service, url, exc) from None


@lru_cache(maxsize=512)
def _ensure_schema(url: str, script: str) -> None:
    with connection(url, writing=True) as con:
        con.executescript(script)


def ensure_schema(url: str, script: str) -> None:
    """Create the tables of `script` (SQLite DDL) and the `sqlite_master` view, once per process
    and URL."""
    _ensure_schema(url, SQLITE_MASTER_VIEW)
    _ensure_schema(url, script)
