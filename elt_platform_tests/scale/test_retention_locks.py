"""Retention locks every environment before rewriting versions; on PostgreSQL all of them on one
server session, so it works with more environments than the server accepts connections, and one
busy environment fails it with nothing taken and nothing rewritten."""

from __future__ import annotations

import subprocess
import sys

import psycopg2
import pytest

from elt_platform.errors import EnvironmentBusy
from elt_platform.governance.retention import enforce_retention
from elt_platform.project.contracts.from_dbt import contracts_for
from elt_platform.store.postgres_locks import ENV_LOCK_CLASS
from elt_platform.store.warehouse import Warehouse
from elt_platform_tests.conftest import direct_sql
from elt_platform_tests.governance.conftest import as_identity, copy_installation
from elt_platform_tests.governance.test_retention import NOW

pytestmark = pytest.mark.scale

HOLDER = """
import sys, time
from elt_platform.store.warehouse import Warehouse

wh = Warehouse(sys.argv[1], metadata=sys.argv[2])
wh.locks.acquire(sys.argv[3], holder="run on machine-a")
print("LOCKED", flush=True)
time.sleep(120)
"""


def _server_value(url: str, sql: str, params: tuple = ()):
    con = psycopg2.connect(url)
    try:
        with con.cursor() as cur:
            cur.execute(sql, params)
            return cur.fetchone()[0]
    finally:
        con.close()


def _held_environment_locks(url: str) -> int:
    return _server_value(
        url,
        "SELECT count(*) FROM pg_locks l JOIN pg_database d ON d.oid = l.database"
        " WHERE l.locktype = 'advisory' AND l.classid = %s AND d.datname = current_database()",
        (ENV_LOCK_CLASS,),
    )


def _with_sandboxes(platform_home, tmp_path, count: int):
    """A private copy of the built installation plus `count` idle sandboxes."""
    settings = copy_installation(platform_home, tmp_path / "home")
    store = Warehouse(settings.warehouse_dir, metadata=settings.metadata_url)
    for i in range(count):
        store.environments.create_sandbox(f"idle_{i:03d}", owner="ann@example.com")
    return settings, store


def _more_than_connections(url: str) -> int:
    limit = int(_server_value(url, "SELECT current_setting('max_connections')"))
    return max(120, limit + 20)


def test_retention_locks_more_environments_than_the_server_has_connections(platform_home, tmp_path):
    count = _more_than_connections(platform_home.metadata_url)
    settings, store = _with_sandboxes(platform_home, tmp_path, count)
    assert len(store.environments.list()) == count + 2  # prod and staging
    steward = as_identity(settings, "sue@example.com", "steward")

    report = enforce_retention(steward, contracts_for(settings), now=NOW)

    assert report.rows_removed > 0 and "orders" in report.rewritten_assets
    assert _held_environment_locks(settings.metadata_url) == 0  # all released with the session


def test_a_busy_environment_fails_retention_with_nothing_taken(platform_home, tmp_path):
    settings, store = _with_sandboxes(platform_home, tmp_path, 130)
    steward = as_identity(settings, "sue@example.com", "steward")
    tables = ("versions", "env_pointers", "release_entries", "ledger")
    before = [
        direct_sql(settings, (f"SELECT * FROM {t} ORDER BY 1, 2",), bypass=False) for t in tables
    ]
    holder = subprocess.Popen(
        [
            sys.executable,
            "-c",
            HOLDER,
            str(tmp_path / "machine_a"),
            settings.metadata_url,
            "idle_077",
        ],
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        assert holder.stdout.readline().strip() == "LOCKED"
        with pytest.raises(
            EnvironmentBusy,
            match=rf"'idle_077' is being written by run on machine-a \(pid {holder.pid} on ",
        ):
            enforce_retention(steward, contracts_for(settings), now=NOW)
        assert _held_environment_locks(settings.metadata_url) == 1  # the holder's only
        others = [r.name for r in store.environments.list() if r.name != "idle_077"]
        assert len(others) == 131
        store.locks.acquire_all(others, holder="a build")  # none was left taken
        store.locks.release_all()
    finally:
        holder.kill()
        holder.wait(timeout=30)
    after = [
        direct_sql(settings, (f"SELECT * FROM {t} ORDER BY 1, 2",), bypass=False) for t in tables
    ]
    assert after == before  # nothing rewritten, repointed or ledgered
