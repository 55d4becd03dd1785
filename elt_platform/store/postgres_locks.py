"""Environment write locks on PostgreSQL (when the metadata store is there): session-level
advisory locks, one dedicated connection per held lock, so two machines cannot write one
environment and a crashed or killed holder releases its locks with its connection.

Who holds a lock is recorded in `environment_locks` (for the busy message); the advisory lock, not
the row, is what excludes. The lock's key is `hashtext(environment)`: two names with the same
32-bit hash would exclude each other (a false "busy", never two writers). `store/locks.py` keeps
the in-process bookkeeping (re-entry by the run a launcher executes in its own process) for both
backends.
"""

from __future__ import annotations

import os
import socket
from dataclasses import dataclass
from typing import Any

import psycopg2
from sqlalchemy.engine import make_url

from elt_platform.errors import EnvironmentBusy
from elt_platform.store.postgres import CONNECT_TIMEOUT, ensure_schema
from elt_platform.store.service_urls import driver_url, unavailable

ENV_LOCK_CLASS = 0x454C56  # (class, hashtext(environment))

LOCKS_DDL = """
CREATE TABLE IF NOT EXISTS environment_locks (
    environment TEXT PRIMARY KEY,
    holder TEXT NOT NULL,
    pid INTEGER NOT NULL,
    host TEXT NOT NULL,
    acquired_at TEXT NOT NULL
);
"""


@dataclass
class AdvisoryLock:
    """One held environment lock: the connection whose session holds it."""

    environment: str
    holder: str
    connection: Any

    def describe(self) -> str:
        return f"{self.holder} (pid {os.getpid()} on {socket.gethostname()})"

    def release(self) -> None:
        try:
            with self.connection.cursor() as cur:
                cur.execute(
                    "SELECT pg_advisory_unlock(%s, hashtext(%s))",
                    (ENV_LOCK_CLASS, self.environment),
                )
        except psycopg2.Error:
            pass  # closing the session below releases it all the same
        finally:
            self.connection.close()


def dsn(url: str) -> str:
    """The URL as libpq reads it (no SQLAlchemy driver suffix)."""
    return make_url(driver_url(url)).set(drivername="postgresql").render_as_string(False)


def lock_environment(url: str, environment: str, holder: str) -> AdvisoryLock:
    """Take `environment`'s advisory lock on a new session, or raise EnvironmentBusy naming the
    holder (on any machine)."""
    ensure_schema(url, LOCKS_DDL)
    try:
        conn = psycopg2.connect(
            dsn(url),
            connect_timeout=CONNECT_TIMEOUT,
            application_name=f"elt-platform lock {environment}"[:63],
        )
    except psycopg2.OperationalError as exc:
        raise unavailable("environment locks", url, exc) from None
    conn.autocommit = True
    try:
        with conn.cursor() as cur:
            cur.execute(
                "SELECT pg_try_advisory_lock(%s, hashtext(%s))", (ENV_LOCK_CLASS, environment)
            )
            if cur.fetchone()[0]:
                cur.execute(
                    "INSERT INTO environment_locks (environment, holder, pid, host, acquired_at)"
                    " VALUES (%s, %s, %s, %s, now()::text) ON CONFLICT (environment) DO UPDATE"
                    " SET holder = excluded.holder, pid = excluded.pid, host = excluded.host,"
                    " acquired_at = excluded.acquired_at",
                    (environment, holder, os.getpid(), socket.gethostname()),
                )
                return AdvisoryLock(environment, holder, conn)
            cur.execute(
                "SELECT holder, pid, host FROM environment_locks WHERE environment = %s",
                (environment,),
            )
            row = cur.fetchone()
    except BaseException:
        conn.close()
        raise
    conn.close()
    current = f"{row[0]} (pid {row[1]} on {row[2]})" if row else "another process"
    raise EnvironmentBusy(f"environment {environment!r} is being written by {current}")
