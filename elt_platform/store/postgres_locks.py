"""Environment write locks on PostgreSQL (when the metadata store is there): session-level
advisory locks, so two machines cannot write one environment and a crashed or killed holder
releases its locks with its connection. One call locks a set of environments on one dedicated
session (all or none), so a holder of N environments (retention locks them all) uses one
connection, not N: the server's `max_connections` does not bound it (its shared lock table does:
`max_locks_per_transaction` x `max_connections` advisory locks, 6,400 by default).

Who holds a lock is recorded in `environment_locks` (for the busy message); the advisory lock, not
the row, is what excludes. The lock's key is `hashtext(environment)`: two names with the same
32-bit hash would exclude each other (a false "busy", never two writers). `store/locks.py` keeps
the in-process bookkeeping (re-entry by the run a launcher executes in its own process) for both
backends.
"""

from __future__ import annotations

import os
import socket
from collections.abc import Sequence
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
class LockSession:
    """The dedicated connection holding one call's locks; closed when the last is released."""

    connection: Any
    held: int


@dataclass
class AdvisoryLock:
    """One held environment lock on its (possibly shared) session."""

    environment: str
    holder: str
    session: LockSession

    def describe(self) -> str:
        return f"{self.holder} (pid {os.getpid()} on {socket.gethostname()})"

    def release(self) -> None:
        session = self.session
        session.held -= 1
        try:
            if session.held > 0:  # the session's other locks stay held
                with session.connection.cursor() as cur:
                    cur.execute(
                        "SELECT pg_advisory_unlock(%s, hashtext(%s))",
                        (ENV_LOCK_CLASS, self.environment),
                    )
        except psycopg2.Error:
            pass  # a broken session has lost its locks already
        finally:
            if session.held <= 0:
                session.connection.close()  # ends the session: releases its lock


def dsn(url: str) -> str:
    """The URL as libpq reads it (no SQLAlchemy driver suffix)."""
    return make_url(driver_url(url)).set(drivername="postgresql").render_as_string(False)


def lock_environments(url: str, environments: Sequence[str], holder: str) -> list[AdvisoryLock]:
    """Take the advisory locks of all `environments` (distinct names) on one new session, or
    none: if one is held (on any machine), release those taken and raise EnvironmentBusy naming
    its holder."""
    names = list(environments)
    if not names:
        return []
    ensure_schema(url, LOCKS_DDL)
    label = names[0] if len(names) == 1 else f"{len(names)} environments"
    try:
        conn = psycopg2.connect(
            dsn(url),
            connect_timeout=CONNECT_TIMEOUT,
            application_name=f"elt-platform lock {label}"[:63],
        )
    except psycopg2.OperationalError as exc:
        raise unavailable("environment locks", url, exc) from None
    conn.autocommit = True
    try:
        with conn.cursor() as cur:
            # One round trip: every lock is tried (none waits), then kept only if all were free.
            cur.execute(
                "SELECT e, pg_try_advisory_lock(%s, hashtext(e))"
                " FROM unnest(%s::text[]) WITH ORDINALITY AS t(e, n) ORDER BY n",
                (ENV_LOCK_CLASS, names),
            )
            busy = [e for e, taken in cur.fetchall() if not taken]
            if not busy:
                cur.execute(
                    "INSERT INTO environment_locks (environment, holder, pid, host, acquired_at)"
                    " SELECT e, %s, %s, %s, now()::text FROM unnest(%s::text[]) AS e"
                    " ON CONFLICT (environment) DO UPDATE SET holder = excluded.holder,"
                    " pid = excluded.pid, host = excluded.host,"
                    " acquired_at = excluded.acquired_at",
                    (holder, os.getpid(), socket.gethostname(), names),
                )
                session = LockSession(conn, held=len(names))
                return [AdvisoryLock(e, holder, session) for e in names]
            cur.execute("SELECT pg_advisory_unlock_all()")
            cur.execute(
                "SELECT holder, pid, host FROM environment_locks WHERE environment = %s",
                (busy[0],),
            )
            row = cur.fetchone()
    except BaseException:
        conn.close()
        raise
    conn.close()
    current = f"{row[0]} (pid {row[1]} on {row[2]})" if row else "another process"
    raise EnvironmentBusy(f"environment {busy[0]!r} is being written by {current}")
