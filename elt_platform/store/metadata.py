"""The metadata store: versions, builds, pointers, environments, releases, the ledger and the
domains' bookkeeping tables, in one SQLite file (WAL; the default) or one PostgreSQL database
(`ELT_METADATA_URL`, README: running at scale).

It is the single source of truth; catalogs and Dagster metadata are derived from it. The SQL is
written once in a plain SQLite flavour (`?` parameters, `ON CONFLICT`, SQLite DDL) and
`store/postgres.py` runs it on Postgres; `read()` and `transaction()` are the only way in.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from elt_platform.store.service_urls import metadata_backend, redact

SCHEMA = """
CREATE TABLE IF NOT EXISTS environments (
    name TEXT PRIMARY KEY,
    kind TEXT NOT NULL,
    created_at TEXT NOT NULL,
    owner TEXT,
    base_release TEXT,
    ttl_seconds INTEGER,
    current_release TEXT,
    config_json TEXT NOT NULL DEFAULT '{}'
);
CREATE TABLE IF NOT EXISTS versions (
    asset TEXT NOT NULL,
    version_id TEXT NOT NULL,
    path TEXT NOT NULL,
    rows INTEGER NOT NULL,
    bytes INTEGER NOT NULL,
    schema_json TEXT NOT NULL,
    created_at TEXT NOT NULL,
    environment TEXT NOT NULL,
    run_id TEXT,
    code_version TEXT,
    inputs_json TEXT NOT NULL DEFAULT '{}',
    params_json TEXT NOT NULL DEFAULT '{}',
    PRIMARY KEY (asset, version_id)
);
CREATE TABLE IF NOT EXISTS builds (
    build_id TEXT PRIMARY KEY,
    asset TEXT NOT NULL,
    version_id TEXT NOT NULL,
    environment TEXT NOT NULL,
    run_id TEXT,
    created_at TEXT NOT NULL,
    code_version TEXT,
    inputs_json TEXT NOT NULL DEFAULT '{}',
    params_json TEXT NOT NULL DEFAULT '{}',
    masked INTEGER NOT NULL DEFAULT 0,
    reused_from TEXT
);
CREATE TABLE IF NOT EXISTS build_checks (
    build_id TEXT NOT NULL,
    check_name TEXT NOT NULL,
    status TEXT NOT NULL,
    blocking INTEGER NOT NULL,
    detail TEXT NOT NULL DEFAULT '',
    carried_from TEXT,
    PRIMARY KEY (build_id, check_name)
);
CREATE TABLE IF NOT EXISTS run_outcomes (
    run_id TEXT PRIMARY KEY,
    status TEXT NOT NULL,
    recorded_at TEXT NOT NULL
);
CREATE TABLE IF NOT EXISTS env_pointers (
    environment TEXT NOT NULL,
    asset TEXT NOT NULL,
    version_id TEXT NOT NULL,
    updated_at TEXT NOT NULL,
    run_id TEXT,
    build_id TEXT,
    PRIMARY KEY (environment, asset)
);
CREATE TABLE IF NOT EXISTS releases (
    release_id TEXT PRIMARY KEY,
    seq INTEGER NOT NULL UNIQUE,
    created_at TEXT NOT NULL,
    source_environment TEXT NOT NULL,
    code_version TEXT,
    triggered_by TEXT NOT NULL,
    manifest_hash TEXT NOT NULL,
    gate_summary_json TEXT NOT NULL DEFAULT '{}',
    run_id TEXT
);
CREATE TABLE IF NOT EXISTS release_entries (
    release_id TEXT NOT NULL,
    asset TEXT NOT NULL,
    version_id TEXT NOT NULL,
    build_id TEXT,
    PRIMARY KEY (release_id, asset)
);
CREATE TABLE IF NOT EXISTS pointer_events (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    environment TEXT NOT NULL,
    action TEXT NOT NULL,
    release_id TEXT,
    previous_release TEXT,
    at TEXT NOT NULL,
    actor TEXT NOT NULL,
    run_id TEXT
);
CREATE TABLE IF NOT EXISTS release_holds (
    release_id TEXT NOT NULL,
    holder TEXT NOT NULL,
    reason TEXT NOT NULL DEFAULT '',
    created_at TEXT NOT NULL,
    PRIMARY KEY (release_id, holder)
);
CREATE INDEX IF NOT EXISTS ix_builds_version ON builds(asset, version_id);
CREATE INDEX IF NOT EXISTS ix_builds_run ON builds(run_id);
"""


def _migrate(con: Any) -> None:
    """Additive schema changes for metadata files created by earlier versions."""
    columns = {r[1] for r in con.execute("PRAGMA table_info(releases)")}
    if "collected_at" not in columns:
        con.execute("ALTER TABLE releases ADD COLUMN collected_at TEXT")
    for table in ("env_pointers", "release_entries"):  # pointers point at builds
        if "build_id" not in {r[1] for r in con.execute(f"PRAGMA table_info({table})")}:
            con.execute(f"ALTER TABLE {table} ADD COLUMN build_id TEXT")
    columns = {r[1] for r in con.execute("PRAGMA table_info(versions)")}
    if "files_json" not in columns:  # size and checksum of each file (store/checksums.py)
        con.execute("ALTER TABLE versions ADD COLUMN files_json TEXT")


def utc_now() -> str:
    return datetime.now(UTC).isoformat(timespec="microseconds")


class MetadataStore:
    """The metadata store at a location: a SQLite file path (or `sqlite:///path`), or a
    PostgreSQL URL. Every write goes through `transaction()`; connections behave like
    `sqlite3.Connection` on both backends (rows by name and position)."""

    def __init__(self, location: Path | str) -> None:
        self.url: str | None = None
        self.path: Path | None = None
        if metadata_backend(str(location)) == "postgresql":
            # psycopg2 comes with the `scale` extra: imported only when a URL asks for it.
            from elt_platform.store import postgres

            self.url = str(location)
            self._pg = postgres
            postgres.ensure_schema(self.url, SCHEMA)
            with self.transaction() as con:
                _migrate(con)
            return
        self.path = Path(str(location).removeprefix("sqlite:///"))
        self.path.parent.mkdir(parents=True, exist_ok=True)
        with self._connect() as con:
            con.execute("PRAGMA journal_mode=WAL")
            con.executescript(SCHEMA)
            _migrate(con)

    @property
    def dialect(self) -> str:
        return "sqlite" if self.url is None else "postgresql"

    @property
    def location(self) -> str:
        """The store's URL, for messages (without a password)."""
        return f"sqlite:///{self.path}" if self.url is None else redact(self.url)

    def _connect(self) -> sqlite3.Connection:
        con = sqlite3.connect(self.path, timeout=30.0, isolation_level=None)
        con.row_factory = sqlite3.Row
        con.execute("PRAGMA busy_timeout=30000")
        con.execute("PRAGMA foreign_keys=ON")
        return con

    @contextmanager
    def read(self) -> Iterator[Any]:
        """A connection for reads (autocommit; `BEGIN` ... `COMMIT` reads one snapshot)."""
        if self.url is not None:
            with self._pg.connection(self.url, writing=False) as con:
                yield con
            return
        con = self._connect()
        try:
            yield con
        finally:
            con.close()

    @contextmanager
    def transaction(self) -> Iterator[Any]:
        """A write transaction: all its writes become visible together or not at all, and
        writers are serialised (SQLite: BEGIN IMMEDIATE; Postgres: one advisory lock)."""
        if self.url is not None:
            with self._pg.connection(self.url, writing=True) as con:
                yield con
            return
        con = self._connect()
        try:
            con.execute("BEGIN IMMEDIATE")
            try:
                yield con
            except BaseException:
                con.execute("ROLLBACK")
                raise
            con.execute("COMMIT")
        finally:
            con.close()
